/**
 * The text of an uploaded document, line by line with positions, as every extraction path
 * (PDF text layer, local OCR, Amazon Textract) produces it. Later stages (lab-value parsing,
 * RAG chunking) read only this shape, never the raw bytes.
 *
 * Coordinates have their origin at the top-left of the page, in the page's own units
 * (PDF points for PDF pages, pixels for images); `width`/`height` of the page are in the same units.
 */
export interface DocumentText {
  /** How the text was obtained: a PDF text layer, or OCR by the named provider. */
  method: 'pdf-text' | 'tesseract' | 'textract';
  pages: TextPage[];
}

export interface TextPage {
  /** 1-based page number. */
  number: number;
  width: number;
  height: number;
  /** How this page's text was obtained (a PDF can mix text pages and scanned pages). */
  method: DocumentText['method'];
  /** Lines in reading order: top to bottom, and left to right within a row. */
  lines: TextLine[];
}

export interface TextBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface TextLine extends TextBox {
  text: string;
  /** 0–1; 1 for a PDF text layer, the OCR engine's confidence otherwise. */
  confidence: number;
  words: TextWord[];
}

export interface TextWord extends TextBox {
  text: string;
  confidence: number;
}

/**
 * The document cannot be read at all (corrupt, password-protected, unsupported). Thrown instead of
 * returning empty text so that an upload is refused with a reason rather than stored as "no results".
 */
export class DocumentRejected extends Error {
  override readonly name = 'DocumentRejected';
  constructor(
    /** Machine-readable reason, stable across releases. */
    readonly reason: 'corrupt' | 'encrypted' | 'unsupported',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
