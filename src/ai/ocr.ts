import type { TextPage } from '../documents/document-text.js';

/** One page image handed to OCR: PNG or JPEG bytes. */
export interface PageImage {
  number: number;
  mediaType: 'image/png' | 'image/jpeg';
  bytes: Uint8Array;
}

/**
 * Optical character recognition behind one interface: tesseract.js locally (the default, offline),
 * Amazon Textract when AWS is configured.
 */
export interface OcrProvider {
  readonly name: 'tesseract' | 'textract';
  recognise(page: PageImage): Promise<TextPage>;
  close(): Promise<void>;
}
