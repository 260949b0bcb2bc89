import {
  AnalyzeDocumentCommand,
  DetectDocumentTextCommand,
  TextractClient,
  type Block,
  type BoundingBox,
} from '@aws-sdk/client-textract';

import type { TextLine, TextPage, TextWord } from '../documents/document-text.js';
import { imageSize } from '../documents/sniff.js';
import type { OcrProvider, PageImage } from './ocr.js';

/**
 * OCR by Amazon Textract, used instead of tesseract when AWS is configured. AnalyzeDocument with
 * TABLES is the default because lab reports are tables: Textract's LINE blocks split a table row
 * into one line per cell, whereas its CELL blocks say which cells share a row, so each table row is
 * rebuilt as one TextLine (cells left to right, their real positions kept, so the gaps between cells
 * stay visible to a row-based parser exactly as with the PDF text layer).
 */

export interface TextractOcrOptions {
  region: string;
  /** A non-AWS endpoint (a VPC endpoint, or a local stub in tests). */
  endpoint?: string;
  /** Defaults to the SDK's provider chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** SDK attempts per call including retries of throttling and 5xx; the SDK default is 3. */
  maxAttempts?: number;
  /** Default true: AnalyzeDocument with TABLES. False uses the cheaper DetectDocumentText (lines only). */
  tables?: boolean;
}

export class TextractError extends Error {
  override readonly name = 'TextractError';
}

export class TextractOcr implements OcrProvider {
  readonly name = 'textract';
  private readonly client: TextractClient;
  private readonly tables: boolean;

  constructor(options: TextractOcrOptions) {
    this.client = new TextractClient({
      region: options.region,
      endpoint: options.endpoint,
      credentials: options.credentials,
      maxAttempts: options.maxAttempts,
    });
    this.tables = options.tables ?? true;
  }

  async recognise(page: PageImage): Promise<TextPage> {
    const { width, height } = imageSize(page.bytes);
    const document = { Bytes: page.bytes };
    let blocks: Block[];
    try {
      const output = this.tables
        ? await this.client.send(new AnalyzeDocumentCommand({ Document: document, FeatureTypes: ['TABLES'] }))
        : await this.client.send(new DetectDocumentTextCommand({ Document: document }));
      blocks = output.Blocks ?? [];
    } catch (error) {
      const name = error instanceof Error ? error.name : 'Error';
      const message = error instanceof Error ? error.message : String(error);
      throw new TextractError(`Textract ${this.tables ? 'AnalyzeDocument' : 'DetectDocumentText'} failed: ${name}: ${message}`, {
        cause: error,
      });
    }
    return { number: page.number, width, height, method: 'textract', lines: blocksToLines(blocks, width, height) };
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/**
 * Textract's reading order for LINE blocks, except that the lines inside a table are replaced by one
 * line per table row, emitted where the table's first line was.
 */
function blocksToLines(blocks: Block[], width: number, height: number): TextLine[] {
  const byId = new Map<string, Block>();
  for (const block of blocks) {
    if (block.Id) {
      byId.set(block.Id, block);
    }
  }
  const children = (block: Block): Block[] =>
    (block.Relationships ?? [])
      .filter((relation) => relation.Type === 'CHILD')
      .flatMap((relation) => relation.Ids ?? [])
      .map((id) => byId.get(id))
      .filter((child): child is Block => child !== undefined);
  const toWord = (block: Block): TextWord => ({
    text: block.Text ?? '',
    ...pixelBox(block.Geometry?.BoundingBox, width, height),
    confidence: (block.Confidence ?? 0) / 100,
  });

  const tableOfWord = new Map<string, Block>();
  const rowsOfTable = new Map<Block, TextLine[]>();
  for (const table of blocks.filter((block) => block.BlockType === 'TABLE')) {
    const rows = new Map<number, { column: number; words: TextWord[] }[]>();
    for (const cell of children(table).filter((block) => block.BlockType === 'CELL')) {
      const words = children(cell).filter((block) => block.BlockType === 'WORD');
      for (const word of words) {
        tableOfWord.set(word.Id ?? '', table);
      }
      const row = rows.get(cell.RowIndex ?? 0) ?? [];
      row.push({ column: cell.ColumnIndex ?? 0, words: words.map(toWord).filter((word) => word.text !== '') });
      rows.set(cell.RowIndex ?? 0, row);
    }
    const lines = [...rows.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, cells]) => cells.sort((a, b) => a.column - b.column).flatMap((cell) => cell.words))
      .filter((words) => words.length > 0)
      .map(lineOf);
    rowsOfTable.set(table, lines);
  }

  const lines: TextLine[] = [];
  const emitted = new Set<Block>();
  for (const block of blocks) {
    if (block.BlockType !== 'LINE') {
      continue;
    }
    const words = children(block).filter((child) => child.BlockType === 'WORD');
    const table = words.map((word) => tableOfWord.get(word.Id ?? '')).find((found) => found !== undefined);
    if (table) {
      if (!emitted.has(table)) {
        emitted.add(table);
        lines.push(...(rowsOfTable.get(table) ?? []));
      }
      continue;
    }
    const converted = words.map(toWord).filter((word) => word.text !== '');
    if (converted.length > 0) {
      lines.push({ ...lineOf(converted), text: block.Text ?? converted.map((word) => word.text).join(' ') });
    }
  }
  // A table whose words appear in no LINE block (possible in hand-made or future payloads) is still kept.
  for (const [table, rows] of rowsOfTable) {
    if (!emitted.has(table)) {
      lines.push(...rows);
    }
  }
  return lines;
}

function lineOf(words: TextWord[]): TextLine {
  const x = Math.min(...words.map((word) => word.x));
  const y = Math.min(...words.map((word) => word.y));
  const right = Math.max(...words.map((word) => word.x + word.width));
  const bottom = Math.max(...words.map((word) => word.y + word.height));
  const confidence = words.reduce((sum, word) => sum + word.confidence, 0) / words.length;
  return { text: words.map((word) => word.text).join(' '), x, y, width: right - x, height: bottom - y, confidence, words };
}

/** Textract boxes are fractions of the page; TextPage positions are pixels of the image sent. */
function pixelBox(box: BoundingBox | undefined, width: number, height: number): { x: number; y: number; width: number; height: number } {
  return {
    x: (box?.Left ?? 0) * width,
    y: (box?.Top ?? 0) * height,
    width: (box?.Width ?? 0) * width,
    height: (box?.Height ?? 0) * height,
  };
}
