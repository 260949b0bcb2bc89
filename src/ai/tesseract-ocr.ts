import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import Tesseract from 'tesseract.js';

import type { TextLine, TextPage, TextWord } from '../documents/document-text.js';
import { imageSize } from '../documents/sniff.js';
import type { OcrProvider, PageImage } from './ocr.js';

/**
 * Local OCR with tesseract.js (WebAssembly), fully offline: the English LSTM model ships in
 * @tesseract.js-data/eng and the core in tesseract.js-core, both from node_modules.
 *
 * One worker is created on first use and reused (start-up costs ≈ 0.35 s, a page ≈ 1 s); calls are
 * serialised because a worker processes one image at a time and interleaved jobs would only queue inside it.
 */

const require = createRequire(import.meta.url);
const packageDir = (name: string): string => dirname(require.resolve(`${name}/package.json`));

/** The integerised "best" LSTM model: as accurate as "best", faster, and what tesseract.js itself defaults to. */
const LANG_PATH = join(packageDir('@tesseract.js-data/eng'), '4.0.0_best_int');

export interface TesseractOcrOptions {
  /** DPI tesseract assumes when the image does not say; the pipeline produces ≈ 300-dpi pages. */
  dpi?: number;
}

export class TesseractOcr implements OcrProvider {
  readonly name = 'tesseract';
  private worker: Promise<Tesseract.Worker> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: TesseractOcrOptions = {}) {}

  recognise(page: PageImage): Promise<TextPage> {
    if (this.closed) {
      return Promise.reject(new Error('TesseractOcr is closed'));
    }
    const run = this.queue.then(() => this.recogniseNow(page));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) {
      await (await worker.catch(() => undefined))?.terminate();
    }
  }

  private getWorker(): Promise<Tesseract.Worker> {
    this.worker ??= this.createWorker();
    return this.worker;
  }

  private async createWorker(): Promise<Tesseract.Worker> {
    const worker = await Tesseract.createWorker('eng', Tesseract.OEM.LSTM_ONLY, {
      langPath: LANG_PATH,
      // The files in 4.0.0_best_int are eng.traineddata.gz.
      gzip: true,
      cacheMethod: 'none',
      // In Node tesseract.js loads the core with require(); corePath only matters in browsers, but a
      // local path guarantees that no code path ever reaches for the CDN default.
      corePath: packageDir('tesseract.js-core'),
      workerPath: join(packageDir('tesseract.js'), 'src', 'worker-script', 'node', 'index.js'),
    });
    await worker.setParameters({
      // Fully automatic segmentation without OSD: the default (single block) merged table rows.
      tessedit_pageseg_mode: Tesseract.PSM.AUTO,
      user_defined_dpi: String(this.options.dpi ?? 300),
    });
    return worker;
  }

  private async recogniseNow(page: PageImage): Promise<TextPage> {
    let worker: Tesseract.Worker;
    try {
      worker = await this.getWorker();
    } catch (error) {
      // A failed start must not poison every later call.
      this.worker = undefined;
      throw error;
    }
    const image = Buffer.from(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength);
    const { data } = await worker.recognize(image, {}, { blocks: true, text: false });
    const size = imageSize(page.bytes);
    return {
      number: page.number,
      width: size.width,
      height: size.height,
      method: 'tesseract',
      lines: toLines(data.blocks ?? []),
    };
  }
}

function toLines(blocks: Tesseract.Block[]): TextLine[] {
  const lines: TextLine[] = [];
  for (const block of blocks) {
    for (const paragraph of block.paragraphs) {
      for (const line of paragraph.lines) {
        const words: TextWord[] = line.words
          .filter((word) => word.text.trim() !== '')
          .map((word) => ({ text: word.text, ...box(word.bbox), confidence: word.confidence / 100 }));
        if (words.length > 0) {
          lines.push({
            text: words.map((word) => word.text).join(' '),
            ...box(line.bbox),
            confidence: line.confidence / 100,
            words,
          });
        }
      }
    }
  }
  return lines;
}

function box(bbox: Tesseract.Bbox): { x: number; y: number; width: number; height: number } {
  return { x: bbox.x0, y: bbox.y0, width: bbox.x1 - bbox.x0, height: bbox.y1 - bbox.y0 };
}
