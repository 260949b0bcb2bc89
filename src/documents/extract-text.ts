import type { OcrProvider, PageImage } from '../ai/ocr.js';
import { DocumentRejected, type DocumentText, type TextLine, type TextPage } from './document-text.js';
import { openPdf, readPageText } from './pdf-text.js';
import { ImageDecodeError, preprocessImage, type RasterImage } from './preprocess.js';
import { renderPdfPage } from './render-pdf.js';
import { sniffMediaType, type DocumentMediaType } from './sniff.js';

/**
 * The one entry point from document bytes to positioned text. Digital PDFs keep their text layer
 * (exact, instant); scanned PDF pages and images go through render → preprocess → OCR.
 * Coordinates come back in the page's own units: PDF points for PDF pages, pixels of the uploaded
 * image for images (OCR runs on an upscaled or deskewed copy; positions are scaled back, while
 * deskew leaves them in the straightened frame, which differs by at most a few pixels per degree).
 */
export async function extractText(bytes: Uint8Array, mediaType: DocumentMediaType, ocr: OcrProvider): Promise<DocumentText> {
  const actual = sniffMediaType(bytes);
  if (actual !== mediaType) {
    throw new DocumentRejected('unsupported', `content is ${actual ?? 'not a PDF, PNG or JPEG'}, not ${mediaType} as declared`);
  }
  const pages = mediaType === 'application/pdf' ? await pdfPages(bytes, ocr) : [await imagePage(bytes, mediaType, ocr)];
  const method = pages.every((page) => page.method === 'pdf-text') ? 'pdf-text' : ocr.name;
  return { method, pages };
}

async function pdfPages(bytes: Uint8Array, ocr: OcrProvider): Promise<TextPage[]> {
  const pdf = await openPdf(bytes);
  try {
    const pages: TextPage[] = [];
    for (let number = 1; number <= pdf.numPages; number++) {
      const page = await pdf.getPage(number);
      const text = await readPageText(page).finally(() => page.cleanup());
      if (text.hasText) {
        const { hasText: _, ...textPage } = text;
        pages.push(textPage);
        continue;
      }
      const rendered = await renderPdfPage(pdf, number);
      const recognised = await recognise(rendered, number, 'image/png', ocr);
      // OCR positions are pixels of the 300-dpi rendering; the page contract is PDF points.
      pages.push({ ...recognised, width: text.width, height: text.height, lines: scaleLines(recognised.lines, 1 / rendered.scale) });
    }
    return pages;
  } catch (error) {
    throw error instanceof ImageDecodeError ? new DocumentRejected('corrupt', error.message, { cause: error }) : error;
  } finally {
    await pdf.destroy();
  }
}

async function imagePage(bytes: Uint8Array, mediaType: PageImage['mediaType'], ocr: OcrProvider): Promise<TextPage> {
  try {
    return await recognise(bytes, 1, mediaType, ocr);
  } catch (error) {
    throw error instanceof ImageDecodeError ? new DocumentRejected('corrupt', error.message, { cause: error }) : error;
  }
}

/** Preprocesses for the provider and runs OCR; positions come back in the input's pixels. */
async function recognise(
  input: Uint8Array | RasterImage,
  number: number,
  mediaType: PageImage['mediaType'],
  ocr: OcrProvider,
): Promise<TextPage> {
  // Textract does its own binarisation and deskew and reads grayscale better than a thresholded copy;
  // it only needs encoded bytes, so an uploaded image goes to it untouched.
  if (ocr.name === 'textract' && input instanceof Uint8Array) {
    return ocr.recognise({ number, mediaType, bytes: input });
  }
  const tesseract = ocr.name === 'tesseract';
  const prepared = await preprocessImage(input, { deskew: tesseract, binarise: tesseract });
  const page = await ocr.recognise({ number, mediaType: 'image/png', bytes: prepared.png });
  return {
    ...page,
    width: Math.round(page.width / prepared.scale),
    height: Math.round(page.height / prepared.scale),
    lines: scaleLines(page.lines, 1 / prepared.scale),
  };
}

function scaleLines(lines: TextLine[], factor: number): TextLine[] {
  if (factor === 1) {
    return lines;
  }
  const scale = <T extends { x: number; y: number; width: number; height: number }>(box: T): T => ({
    ...box,
    x: box.x * factor,
    y: box.y * factor,
    width: box.width * factor,
    height: box.height * factor,
  });
  return lines.map((line) => ({ ...scale(line), words: line.words.map(scale) }));
}
