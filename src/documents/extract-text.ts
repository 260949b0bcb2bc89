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
 * image for images. OCR runs on an upscaled and deskewed copy: upscaling is undone, the deskew is not,
 * so positions are those of the straightened page (rotated about its centre by the measured skew,
 * ≈ 35 px per degree at the corners of a 300-dpi page), which keeps each row on one horizontal line.
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
    const page = await ocr.recognise({ number, mediaType, bytes: input });
    return { ...page, lines: mergeRows(page.lines) };
  }
  const tesseract = ocr.name === 'tesseract';
  const prepared = await preprocessImage(input, { deskew: tesseract, binarise: tesseract });
  const page = await ocr.recognise({ number, mediaType: 'image/png', bytes: prepared.png });
  return {
    ...page,
    width: Math.round(page.width / prepared.scale),
    height: Math.round(page.height / prepared.scale),
    lines: scaleLines(mergeRows(page.lines), 1 / prepared.scale),
  };
}

/**
 * OCR engines cut a table row into one line per cell when the columns are far apart (tesseract treats
 * each column as a block), and emit blocks column by column. The lab parser reads a row as one line
 * whose cells are separated by wide gaps between word boxes, as the PDF text layer delivers it, so
 * lines whose vertical centres fall within each other's band are merged, words left to right.
 */
function mergeRows(lines: TextLine[]): TextLine[] {
  // Medians over the words, so a speck or a tall bracket glued to a line does not shift it off its row.
  const centre = (line: TextLine): number => median(line.words.map((word) => word.y + word.height / 2), line.y + line.height / 2);
  const height = (line: TextLine): number => median(line.words.map((word) => word.height), line.height);
  const sorted = lines.map((line) => ({ line, centre: centre(line), height: height(line) })).sort((a, b) => a.centre - b.centre);
  const rows: TextLine[][] = [];
  let seed: (typeof sorted)[number] | undefined;
  for (const entry of sorted) {
    // Compared with the row's first line, so a row cannot creep downwards line by line.
    if (seed && Math.abs(entry.centre - seed.centre) < 0.5 * Math.min(seed.height, entry.height)) {
      rows[rows.length - 1].push(entry.line);
    } else {
      rows.push([entry.line]);
      seed = entry;
    }
  }
  return rows.map((row) => {
    if (row.length === 1) {
      return row[0];
    }
    row.sort((a, b) => a.x - b.x);
    const words = row.flatMap((line) => line.words).sort((a, b) => a.x - b.x);
    const x = Math.min(...row.map((line) => line.x));
    const y = Math.min(...row.map((line) => line.y));
    const right = Math.max(...row.map((line) => line.x + line.width));
    const bottom = Math.max(...row.map((line) => line.y + line.height));
    const weight = (line: TextLine): number => Math.max(1, line.words.length);
    const confidence = row.reduce((sum, line) => sum + line.confidence * weight(line), 0) / row.reduce((sum, line) => sum + weight(line), 0);
    return { text: words.map((word) => word.text).join(' '), x, y, width: right - x, height: bottom - y, confidence, words };
  });
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

function median(values: number[], fallback: number): number {
  if (values.length === 0) {
    return fallback;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
