import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { loadImage } from '@napi-rs/canvas';
import { getDocument } from '../src/documents/pdfjs.js';
import { generateLabDocuments, type LabTruth } from './fixtures/lab-documents.js';

/**
 * The project's own lab-report fixtures: every document opens, digital text layers really carry the
 * truth values on the stated page, scans carry none, images are 300-dpi letter pages, and the truth
 * files keep to the shared corpus schema with well-formed LOINC codes.
 */

const LETTER_300_DPI = { width: 2550, height: 3300 };

let dir: string;
let documents: string[];
let truths: LabTruth[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'carelens-lab-fixtures-'));
  documents = await generateLabDocuments(dir);
  truths = documents.map((doc) => JSON.parse(readFileSync(truthPath(doc), 'utf8')) as LabTruth);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function truthPath(document: string): string {
  return document.replace(/\.(pdf|png|jpg)$/, '.truth.json');
}

/** pdfjs normalises µ (U+00B5) to μ (U+03BC); NFKC does the same to both sides, and whitespace runs collapse. */
function normalise(text: string): string {
  return text.normalize('NFKC').replace(/\s+/g, ' ');
}

/** Each page's text as lines: items sharing a baseline, left to right. */
async function pageLines(path: string): Promise<string[][]> {
  const pdf = await getDocument({ data: new Uint8Array(readFileSync(path)), verbosity: 0 }).promise;
  try {
    const pages: string[][] = [];
    for (let n = 1; n <= pdf.numPages; n++) {
      const content = await (await pdf.getPage(n)).getTextContent();
      const rows = new Map<number, { x: number; str: string }[]>();
      for (const item of content.items) {
        if (!('str' in item) || item.str.trim() === '') continue;
        const y = Math.round(item.transform[5] ?? 0);
        rows.set(y, [...(rows.get(y) ?? []), { x: item.transform[4] ?? 0, str: item.str }]);
      }
      const lines = [...rows.entries()]
        .sort(([a], [b]) => b - a)
        .map(([, items]) => normalise(items.sort((a, b) => a.x - b.x).map((i) => i.str).join(' ')).trim());
      pages.push(lines);
    }
    return pages;
  } finally {
    await pdf.destroy();
  }
}

/** Every number printed on a page, with any comparator glued to it ("<0.01", ">90"). */
function printedNumbers(text: string): { comparator: string; value: number }[] {
  return [...text.matchAll(/([<>]?)(\d+(?:\.\d+)?)/g)].map((m) => ({ comparator: m[1] ?? '', value: Number(m[2]) }));
}

/** LOINC check digits are Luhn mod-10, which catches most mistyped codes. */
function loincCheckDigitValid(code: string): boolean {
  const m = /^(\d{1,7})-(\d)$/.exec(code);
  if (!m) return false;
  let sum = 0;
  [...(m[1] ?? '')].reverse().forEach((ch, i) => {
    const d = Number(ch) * (i % 2 === 0 ? 2 : 1);
    sum += d > 9 ? d - 9 : d;
  });
  return (10 - (sum % 10)) % 10 === Number(m[2]);
}

it('writes a dozen documents of every kind, each with its truth file', () => {
  expect(documents.length).toBeGreaterThanOrEqual(12);
  for (const [i, doc] of documents.entries()) {
    expect(existsSync(doc)).toBe(true);
    expect(existsSync(truthPath(doc))).toBe(true);
    expect(truths[i]?.document).toBe(basename(doc));
  }
  expect(new Set(truths.map((t) => t.kind))).toEqual(new Set(['digital-pdf', 'scan-image', 'scan-pdf']));
  expect(new Set(truths.map((t) => t.layout)).size).toBeGreaterThanOrEqual(6);
  expect(truths.some((t) => t.pages > 1 && t.kind === 'digital-pdf')).toBe(true);
  expect(readdirSync(dir)).toHaveLength(documents.length * 2);
});

it('keeps truth files to the shared schema with well-formed codes', () => {
  const iso = /^\d{4}-\d{2}-\d{2}$/;
  for (const truth of truths) {
    const where = truth.document;
    expect([where, truth.results.length >= 8]).toEqual([where, true]);
    expect(truth.lab).toBeTruthy();
    expect(truth.panels.length).toBeGreaterThan(0);
    expect(truth.patient.name).toBe(`${truth.patient.given} ${truth.patient.family}`);
    expect(['male', 'female']).toContain(truth.patient.sex);
    for (const date of [truth.collected, truth.reported, truth.patient.birthDate]) expect(date).toMatch(iso);
    for (const r of truth.results) {
      const codes = [r.loinc, ...(r.loincAlt ?? [])];
      expect([where, r.label, codes.filter((c) => !loincCheckDigitValid(c))]).toEqual([where, r.label, []]);
      expect(Number.isFinite(r.value)).toBe(true);
      expect([null, '<', '>']).toContain(r.comparator);
      expect([null, 'H', 'L', 'HH', 'LL', '*', '↑', '↓']).toContain(r.flag);
      expect(r.ucum).toBeTruthy();
      expect(r.referenceRange).toBeTruthy();
      expect(r.page >= 1 && r.page <= truth.pages).toBe(true);
    }
    for (const qual of truth.qualitative ?? []) expect(loincCheckDigitValid(qual.loinc)).toBe(true);
  }
});

it('prints every truth result on one line of the page it names', async () => {
  const digital = truths.filter((t) => t.kind === 'digital-pdf');
  expect(digital.length).toBeGreaterThanOrEqual(6);
  for (const truth of digital) {
    const pages = await pageLines(join(dir, truth.document));
    expect([truth.document, pages.length]).toEqual([truth.document, truth.pages]);
    for (const r of truth.results) {
      const line = (pages[r.page - 1] ?? []).find(
        (l) => l.includes(normalise(r.label)) && printedNumbers(l).some((n) => n.comparator === (r.comparator ?? '') && n.value === r.value),
      );
      const missing = [
        line === undefined ? 'label and value' : null,
        line !== undefined && r.unit !== '' && !line.includes(normalise(r.unit)) ? 'unit' : null,
        line !== undefined && !line.includes(normalise(r.referenceRange)) ? 'range' : null,
      ].filter((m) => m !== null);
      expect([truth.document, r.label, missing]).toEqual([truth.document, r.label, []]);
    }
  }
});

it('wraps scans into PDFs with no text layer', async () => {
  const scans = truths.filter((t) => t.kind === 'scan-pdf');
  expect(scans.length).toBeGreaterThanOrEqual(1);
  for (const truth of scans) {
    const pages = await pageLines(join(dir, truth.document));
    expect(pages).toEqual(Array.from({ length: truth.pages }, () => []));
  }
});

it('saves scan images as single 300-dpi letter pages', async () => {
  const images = truths.filter((t) => t.kind === 'scan-image');
  expect(new Set(images.map((t) => t.document.split('.').pop()))).toEqual(new Set(['png', 'jpg']));
  for (const truth of images) {
    expect(truth.pages).toBe(1);
    const image = await loadImage(readFileSync(join(dir, truth.document)));
    expect({ document: truth.document, width: image.width, height: image.height }).toEqual({ document: truth.document, ...LETTER_300_DPI });
  }
});

it('generates byte-identical output on every run', async () => {
  const again = mkdtempSync(join(tmpdir(), 'carelens-lab-fixtures-again-'));
  try {
    const second = await generateLabDocuments(again);
    expect(second.map((p) => basename(p))).toEqual(documents.map((p) => basename(p)));
    for (const name of readdirSync(dir)) {
      expect([name, readFileSync(join(again, name)).equals(readFileSync(join(dir, name)))]).toEqual([name, true]);
    }
  } finally {
    rmSync(again, { recursive: true, force: true });
  }
});
