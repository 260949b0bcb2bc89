/**
 * Accuracy harness for document extraction: `npm run bench:extract [-- [--verbose] [--kind K] folder...]`.
 *
 * Runs text extraction + lab-value parsing over every document that has a `<name>.truth.json`
 * beside it and scores (LOINC code, value, UCUM unit) triples against the truth, separately for
 * digital PDFs and scans, with throughput and peak memory. Without folders it reads
 * ../shared/data/lab-reports (when present) and the project's generated fixtures.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import type { OcrProvider } from '../src/ai/ocr.js';
import { TesseractOcr } from '../src/ai/tesseract-ocr.js';
import { extractText } from '../src/documents/extract-text.js';
import { parseLabResults, type LabResult } from '../src/documents/lab-parser.js';
import type { DocumentMediaType } from '../src/documents/sniff.js';
import { generateLabDocuments } from '../test/fixtures/lab-documents.js';

/** The ground-truth file format shared with ../shared/data/lab-reports. */
export interface TruthFile {
  document: string;
  kind: string;
  layout?: string;
  pages?: number;
  results: TruthResult[];
}

export interface TruthResult {
  label: string;
  loinc: string;
  loincAlt?: string[];
  value: number;
  ucum: string;
  ucumAlt?: string[];
}

export interface Score {
  truth: number;
  predicted: number;
  matched: number;
  misses: TruthResult[];
  falsePositives: LabResult[];
}

/** Values are compared as numbers: "4.0" and 4 are the same result. */
function sameValue(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 + 1e-6 * Math.abs(b);
}

function matches(predicted: LabResult, truth: TruthResult): boolean {
  const codes = [truth.loinc, ...(truth.loincAlt ?? [])];
  const units = [truth.ucum, ...(truth.ucumAlt ?? [])];
  return codes.includes(predicted.loinc) && sameValue(predicted.value, truth.value) && units.includes(predicted.ucum);
}

/** One-to-one matching of predicted to true triples (a duplicate prediction is a false positive). */
export function scoreDocument(predicted: LabResult[], truth: TruthResult[]): Score {
  const unused = new Set(predicted);
  const misses: TruthResult[] = [];
  for (const expected of truth) {
    const hit = [...unused].find((p) => matches(p, expected));
    if (hit) unused.delete(hit);
    else misses.push(expected);
  }
  return {
    truth: truth.length,
    predicted: predicted.length,
    matched: truth.length - misses.length,
    misses,
    falsePositives: [...unused],
  };
}

export function f1(score: Pick<Score, 'truth' | 'predicted' | 'matched'>): { precision: number; recall: number; f1: number } {
  const precision = score.predicted === 0 ? 0 : score.matched / score.predicted;
  const recall = score.truth === 0 ? 0 : score.matched / score.truth;
  return { precision, recall, f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall) };
}

const MEDIA_TYPES: Record<string, DocumentMediaType> = {
  '.pdf': 'application/pdf',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
};

export interface TruthDocument {
  path: string;
  mediaType: DocumentMediaType;
  truth: TruthFile;
}

/** Every document in `folder` with a truth file beside it, in name order. */
export async function truthDocuments(folder: string): Promise<TruthDocument[]> {
  const names = (await readdir(folder)).filter((name) => name.endsWith('.truth.json')).sort();
  const documents: TruthDocument[] = [];
  for (const name of names) {
    const truth = JSON.parse(await readFile(join(folder, name), 'utf8')) as TruthFile;
    const path = join(folder, truth.document);
    const mediaType = MEDIA_TYPES[extname(path).toLowerCase()];
    if (!mediaType || !existsSync(path)) {
      console.warn(`skipping ${name}: document ${truth.document} missing or of an unknown type`);
      continue;
    }
    documents.push({ path, mediaType, truth });
  }
  return documents;
}

/** digital-pdf, or scan (scan-pdf and scan-image are scored together, as the targets are). */
function kindOf(truth: TruthFile): 'digital' | 'scan' {
  return truth.kind === 'digital-pdf' ? 'digital' : 'scan';
}

interface KindTotals {
  documents: number;
  pages: number;
  ms: number;
  /** The first document pays one-off start-up (pdf.js worker, fonts, tesseract model); reported apart. */
  firstDocumentMsPerPage: number;
  slowestPageMs: number;
  truth: number;
  predicted: number;
  matched: number;
}

const TARGETS = { digital: { f1: 0.97, msPerPage: 300 }, scan: { f1: 0.9, msPerPage: 5000 } } as const;

const USAGE = `usage: npm run bench:extract -- [--verbose] [--kind digital|scan] [folder...]

  folder        folders holding documents with <name>.truth.json beside them
                (default: ../shared/data/lab-reports and the generated fixtures)
  --kind K      only digital PDFs or only scans
  --verbose     list each document's misses and false positives`;

async function defaultFolders(): Promise<{ folders: string[]; cleanup: () => Promise<void> }> {
  const folders: string[] = [];
  const shared = resolve('../shared/data/lab-reports');
  if (existsSync(shared)) folders.push(shared);
  else console.log(`note: ${shared} is absent; scoring the project's own fixtures only`);
  const generated = await generatedFixtures();
  folders.push(generated.folder);
  return { folders, cleanup: generated.cleanup };
}

/** The project's own generated documents (varied layouts, digital and scanned), in a temporary folder. */
async function generatedFixtures(): Promise<{ folder: string; cleanup: () => Promise<void> }> {
  const folder = await mkdtemp(join(tmpdir(), 'carelens-lab-fixtures-'));
  await generateLabDocuments(folder);
  return { folder, cleanup: () => rm(folder, { recursive: true, force: true }) };
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { verbose: { type: 'boolean', default: false }, kind: { type: 'string' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.kind !== undefined && values.kind !== 'digital' && values.kind !== 'scan') {
    console.error(`bench:extract: --kind must be digital or scan\n\n${USAGE}`);
    return 2;
  }
  const { folders, cleanup } = positionals.length > 0 ? { folders: positionals.map((p) => resolve(p)), cleanup: async () => undefined } : await defaultFolders();
  // TesseractOcr starts its worker on first use, so a digital-only run measures the text layer alone.
  const ocr: OcrProvider = new TesseractOcr();
  try {
    const documents = (await Promise.all(folders.map(truthDocuments))).flat().filter((d) => !values.kind || kindOf(d.truth) === values.kind);
    if (documents.length === 0) {
      console.error('bench:extract: no documents with truth files found');
      return 1;
    }
    console.log(`bench:extract — ${documents.length} documents from ${folders.join(', ')}`);
    const totals = new Map<'digital' | 'scan', KindTotals>();
    for (const document of documents) {
      const kind = kindOf(document.truth);
      const bytes = new Uint8Array(await readFile(document.path));
      const started = performance.now();
      const text = await extractText(bytes, document.mediaType, ocr);
      const report = parseLabResults(text);
      const ms = performance.now() - started;
      const score = scoreDocument(report.results, document.truth.results);
      const pages = text.pages.length;
      const total = totals.get(kind);
      const first = total === undefined;
      const sum = total ?? { documents: 0, pages: 0, ms: 0, firstDocumentMsPerPage: ms / pages, slowestPageMs: 0, truth: 0, predicted: 0, matched: 0 };
      totals.set(kind, {
        ...sum,
        documents: sum.documents + 1,
        pages: sum.pages + pages,
        ms: sum.ms + ms,
        slowestPageMs: first ? 0 : Math.max(sum.slowestPageMs, ms / pages),
        truth: sum.truth + score.truth,
        predicted: sum.predicted + score.predicted,
        matched: sum.matched + score.matched,
      });
      if (values.verbose || score.misses.length + score.falsePositives.length > 0) {
        const { f1: docF1 } = f1(score);
        console.log(`  ${basename(document.path)} [${document.truth.kind}, ${document.truth.layout ?? '?'}] F1 ${docF1.toFixed(3)} (${score.matched}/${score.truth} found, ${score.falsePositives.length} extra) ${(ms / pages).toFixed(0)} ms/page`);
        if (values.verbose) {
          for (const miss of score.misses) console.log(`      miss  ${miss.loinc} ${miss.value} ${miss.ucum}  "${miss.label}"`);
          for (const extra of score.falsePositives) console.log(`      extra ${extra.loinc} ${extra.value} ${extra.ucum}  "${extra.label}" (page ${extra.page})`);
        }
      }
    }
    printTotals(totals);
    return 0;
  } finally {
    await ocr.close();
    await cleanup();
  }
}

function printTotals(totals: Map<'digital' | 'scan', KindTotals>): void {
  console.log('');
  console.log('kind      docs pages  truth  pred  match  precision  recall     F1   ms/page  slowest  pages/s  target');
  for (const kind of ['digital', 'scan'] as const) {
    const total = totals.get(kind);
    if (!total) continue;
    const { precision, recall, f1: score } = f1(total);
    const msPerPage = total.ms / total.pages;
    const target = TARGETS[kind];
    const slowest = total.documents > 1 ? total.slowestPageMs : total.firstDocumentMsPerPage;
    const met = score >= target.f1 && slowest < target.msPerPage;
    console.log(
      [
        kind.padEnd(8),
        String(total.documents).padStart(5),
        String(total.pages).padStart(5),
        String(total.truth).padStart(6),
        String(total.predicted).padStart(5),
        String(total.matched).padStart(6),
        precision.toFixed(3).padStart(10),
        recall.toFixed(3).padStart(7),
        score.toFixed(3).padStart(6),
        msPerPage.toFixed(0).padStart(9),
        slowest.toFixed(0).padStart(8),
        (1000 / msPerPage).toFixed(2).padStart(8),
        `  ${met ? 'met' : 'MISSED'} (F1 ≥ ${target.f1}, < ${target.msPerPage} ms/page)`,
      ].join(' '),
    );
  }
  for (const [kind, total] of totals) {
    console.log(`${kind}: first document ${total.firstDocumentMsPerPage.toFixed(0)} ms/page including start-up (not in "slowest")`);
  }
  // ru_maxrss covers the whole process including tesseract's worker threads.
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
