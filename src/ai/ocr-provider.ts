import type { OcrProvider } from './ocr.js';
import { TesseractOcr } from './tesseract-ocr.js';
import { TextractOcr } from './textract-ocr.js';

export interface OcrConfig {
  /** Present when AWS is configured; credentials come from the SDK's default provider chain. */
  textract?: { region: string; endpoint?: string };
}

/** Amazon Textract when configured, otherwise local tesseract.js (offline, nothing leaves the server). */
export function createOcrProvider(config: OcrConfig): OcrProvider {
  if (config.textract) {
    return new TextractOcr({ region: config.textract.region, endpoint: config.textract.endpoint });
  }
  return new TesseractOcr();
}
