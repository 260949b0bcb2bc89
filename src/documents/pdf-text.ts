/**
 * Tier 1 of document extraction: the text layer of a digital PDF, with positions, rebuilt into
 * lines so that table rows (and the cells within them) survive for the lab-value parser.
 *
 * Pages without a text layer (scans) are reported as `hasText: false` so that the caller can render
 * and OCR just those pages; `openPdf` gives the caller the same loaded document for rendering.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { getDocument, Util, type PDFDocumentProxy, type PDFPageProxy } from './pdfjs.js';

import { DocumentRejected, type TextLine, type TextPage, type TextWord } from './document-text.js';

export interface PdfTextPage extends TextPage {
  hasText: true;
}

/** A page whose text must come from OCR: it carries no (or almost no) text layer. */
export interface PdfImagePage {
  number: number;
  width: number;
  height: number;
  hasText: false;
}

export type PdfPage = PdfTextPage | PdfImagePage;

export interface PdfText {
  pages: PdfPage[];
}

type PdfTextContentItem = Awaited<ReturnType<PDFPageProxy['getTextContent']>>['items'][number];

/** A scan with a stamped page number or header still needs OCR; real text pages carry far more. */
const MIN_TEXT_CHARACTERS = 20;

const standardFontDataUrl = (() => {
  const require = createRequire(import.meta.url);
  // pdfjs reads the URL as a file-system path in Node and appends file names, hence the trailing slash.
  return join(dirname(require.resolve('pdfjs-dist/package.json')), 'standard_fonts') + '/';
})();

/**
 * Loads a PDF with settings that are safe and quiet on a server: no eval, no font faces, no
 * network fetches. The caller owns the result and must `destroy()` it.
 * Throws DocumentRejected for corrupt or password-protected files.
 */
export async function openPdf(bytes: Uint8Array): Promise<PDFDocumentProxy> {
  const task = getDocument({
    // pdfjs transfers (detaches) the buffer it is given; copy so that the caller's bytes stay usable.
    data: bytes.slice(),
    standardFontDataUrl,
    isEvalSupported: false,
    disableFontFace: true,
    useSystemFonts: false,
    useWorkerFetch: false,
    stopAtErrors: false,
    verbosity: 0,
  });
  try {
    return await task.promise;
  } catch (err) {
    await task.destroy().catch(() => undefined);
    throw rejection(err);
  }
}

function rejection(err: unknown): DocumentRejected {
  const name = err instanceof Error ? err.name : '';
  const detail = err instanceof Error ? err.message : String(err);
  if (name === 'PasswordException') {
    return new DocumentRejected('encrypted', `PDF is password-protected and cannot be read (${detail})`, { cause: err });
  }
  if (name === 'InvalidPDFException') {
    return new DocumentRejected('corrupt', `PDF structure is invalid or truncated (${detail})`, { cause: err });
  }
  return new DocumentRejected('corrupt', `PDF could not be opened: ${detail}`, { cause: err });
}

export async function readPdfText(bytes: Uint8Array): Promise<PdfText> {
  const doc = await openPdf(bytes);
  try {
    const pages: PdfPage[] = [];
    for (let number = 1; number <= doc.numPages; number++) {
      const page = await doc.getPage(number);
      try {
        pages.push(await readPageText(page));
      } finally {
        page.cleanup();
      }
    }
    return { pages };
  } catch (err) {
    throw err instanceof DocumentRejected ? err : rejection(err);
  } finally {
    await doc.destroy();
  }
}

interface Fragment {
  text: string;
  x: number;
  right: number;
  baseline: number;
  size: number;
}

/** Text of one page, in viewport coordinates (top-left origin, PDF points, page rotation applied). */
export async function readPageText(page: PDFPageProxy): Promise<PdfPage> {
  const viewport = page.getViewport({ scale: 1 });
  const { width, height } = viewport;
  const content = await page.getTextContent({ disableNormalization: false });
  const fragments = content.items.flatMap((item) => toFragments(item, viewport.transform));
  const characters = fragments.reduce((sum, f) => sum + f.text.length, 0);
  if (characters < MIN_TEXT_CHARACTERS) {
    return { number: page.pageNumber, width, height, hasText: false };
  }
  const lines = splitColumns(groupRows(fragments)).map(toLine);
  return { number: page.pageNumber, width, height, method: 'pdf-text', lines, hasText: true };
}

/** Splits one text item into word fragments; glyph positions inside an item are interpolated. */
function toFragments(item: PdfTextContentItem, viewportTransform: number[]): Fragment[] {
  if (!('str' in item) || item.str.trim() === '') return [];
  const [a, b, c, d, e, f] = Util.transform(viewportTransform, item.transform);
  // Rotated text (diagonal watermarks, vertical margin notes) never belongs to a result row.
  if (Math.abs(b) > 0.01 * Math.abs(a) || Math.abs(c) > 0.01 * Math.abs(d) || a <= 0) return [];
  const size = Math.abs(d) || item.height;
  const scaleX = Math.hypot(a, b) / (Math.hypot(item.transform[0], item.transform[1]) || 1);
  const itemWidth = item.width * scaleX;
  const perChar = item.str.length > 0 ? itemWidth / item.str.length : 0;
  const out: Fragment[] = [];
  for (const match of item.str.matchAll(/\S+/g)) {
    const start = e + match.index * perChar;
    out.push({ text: match[0], x: start, right: start + match[0].length * perChar, baseline: f, size });
  }
  return out;
}

interface Row {
  baseline: number;
  fragments: Fragment[];
}

/** Rows by baseline (±3 pt, or less for tiny fonts), each sorted left to right with split glyph runs re-joined. */
function groupRows(fragments: Fragment[]): Row[] {
  const sorted = [...fragments].sort((p, q) => p.baseline - q.baseline || p.x - q.x);
  const rows: Row[] = [];
  for (const fragment of sorted) {
    const tolerance = Math.min(3, fragment.size * 0.4);
    const row = rows.at(-1);
    if (row && Math.abs(fragment.baseline - row.baseline) <= tolerance) {
      row.fragments.push(fragment);
    } else {
      rows.push({ baseline: fragment.baseline, fragments: [fragment] });
    }
  }
  for (const row of rows) {
    row.fragments.sort((p, q) => p.x - q.x);
    row.fragments = joinTouching(row.fragments);
  }
  return rows;
}

/** Ligatures and kerning split words into separate items ("In" "fl" "ammation"); touching runs are one word. */
function joinTouching(fragments: Fragment[]): Fragment[] {
  const out: Fragment[] = [];
  for (const fragment of fragments) {
    const previous = out.at(-1);
    if (previous && fragment.x - previous.right < fragment.size * 0.08 && fragment.x >= previous.x) {
      out[out.length - 1] = { ...previous, text: previous.text + fragment.text, right: Math.max(previous.right, fragment.right) };
    } else {
      out.push(fragment);
    }
  }
  return out;
}

/** Cells: runs of words separated by at most about one space. */
function cellsOf(row: Row): Fragment[][] {
  const cells: Fragment[][] = [];
  for (const fragment of row.fragments) {
    const cell = cells.at(-1);
    const last = cell?.at(-1);
    if (cell && last && fragment.x - last.right <= fragment.size * 0.6) cell.push(fragment);
    else cells.push([fragment]);
  }
  return cells;
}

/** Rows with this many cells on each side of a gutter look like two tables printed side by side. */
const MIN_CELLS_PER_SIDE = 3;
const ALIGN_TOLERANCE = 1;
const MIN_COLUMN_ROWS = 3;
/** Gutter between side-by-side tables, in ems of the text beside it. */
const MIN_GUTTER_EMS = 1.5;

/**
 * Two-column layouts put two result tables side by side; one visual row then holds two results,
 * often on baselines a point or two apart. A single table has gutters too (label | value | unit |
 * range), so a gutter only counts as a page column boundary when several rows have a full row's
 * worth of cells on both sides and the right side starts, at the same x each time, with text
 * (a left-aligned name column) rather than a number, a range or a unit column near the row's end.
 * Each side is then grouped into rows on its own.
 */
function splitColumns(rows: Row[]): Row[] {
  const rowCells = rows.map(cellsOf);
  const boundary = columnBoundary(rowCells);
  if (boundary === undefined) return rows;
  const spanning: Fragment[] = [];
  const left: Fragment[] = [];
  const right: Fragment[] = [];
  rows.forEach((row, index) => {
    const crossing = rowCells[index].some((cell) => cell[0].x < boundary && cell.at(-1)!.right > boundary);
    for (const fragment of row.fragments) {
      if (crossing) spanning.push(fragment);
      else if (fragment.x < boundary) left.push(fragment);
      else right.push(fragment);
    }
  });
  return [...groupRows(spanning), ...groupRows(left), ...groupRows(right)].sort(
    (p, q) => p.baseline - q.baseline || p.fragments[0].x - q.fragments[0].x,
  );
}

function columnBoundary(rowCells: Fragment[][][]): number | undefined {
  const candidates = new Map<number, { rows: number; gutter: number }>();
  for (const cells of rowCells) {
    for (let i = MIN_CELLS_PER_SIDE; i <= cells.length - MIN_CELLS_PER_SIDE; i++) {
      const start = cells[i][0];
      if (!/^\p{L}/u.test(start.text)) continue;
      const x = Math.round(start.x);
      const gutter = (start.x - cells[i - 1].at(-1)!.right) / start.size;
      const candidate = candidates.get(x) ?? { rows: 0, gutter: Infinity };
      candidates.set(x, { rows: candidate.rows + 1, gutter: Math.min(candidate.gutter, gutter) });
    }
  }
  // The widest gutter wins: the space between two tables is wider than between a table's own columns.
  let boundary: number | undefined;
  let widest = MIN_GUTTER_EMS;
  for (const [x, candidate] of candidates) {
    let rows = 0;
    for (let near = x - ALIGN_TOLERANCE; near <= x + ALIGN_TOLERANCE; near++) rows += candidates.get(near)?.rows ?? 0;
    if (rows >= MIN_COLUMN_ROWS && candidate.gutter > widest) {
      boundary = x - ALIGN_TOLERANCE - 0.5;
      widest = candidate.gutter;
    }
  }
  return boundary;
}

function toLine(row: Row): TextLine {
  const words: TextWord[] = row.fragments.map((f) => ({
    text: f.text,
    x: f.x,
    // Ascenders reach about 0.8 em above the baseline, descenders 0.2 em below.
    y: f.baseline - f.size * 0.8,
    width: f.right - f.x,
    height: f.size,
    confidence: 1,
  }));
  const x = Math.min(...words.map((w) => w.x));
  const y = Math.min(...words.map((w) => w.y));
  const right = Math.max(...words.map((w) => w.x + w.width));
  const bottom = Math.max(...words.map((w) => w.y + w.height));
  return { text: words.map((w) => w.text).join(' '), x, y, width: right - x, height: bottom - y, confidence: 1, words };
}
