/**
 * Embeddings from a local ONNX model (a sentence-transformers export such as all-MiniLM-L6-v2) placed
 * in a folder with its WordPiece vocabulary: model.onnx + vocab.txt. Nothing leaves the server and
 * nothing is downloaded; the operator puts the files there. Inputs are BERT's (input_ids,
 * attention_mask and, when the model takes it, token_type_ids); the output is the model's
 * `sentence_embedding` when it has one, else its token vectors mean-pooled over the attention mask;
 * vectors are L2-normalised.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import ort from 'onnxruntime-node';
import { type EmbeddingProvider, ProviderError } from './llm.js';

/** Tokens per text, [CLS] and [SEP] included (all-MiniLM-L6-v2 was trained on 256). */
const MAX_TOKENS = 256;
/** Texts run through the model at once. */
const BATCH = 16;
/** Longest word WordPiece splits; longer ones are [UNK], as in BERT. */
const MAX_WORD = 100;

export class OnnxEmbeddings implements EmbeddingProvider {
  readonly name: string;
  private readonly vocab: Map<string, number>;
  private session?: Promise<ort.InferenceSession>;

  constructor(private readonly dir: string) {
    for (const file of ['model.onnx', 'vocab.txt']) {
      if (!existsSync(join(dir, file))) throw new Error(`The local embedding model in ${dir} has no ${file}`);
    }
    // A token's id is its line number.
    const lines = readFileSync(join(dir, 'vocab.txt'), 'utf8').split(/\r?\n/);
    if (lines.at(-1) === '') lines.pop();
    this.vocab = new Map(lines.map((token, id) => [token, id]));
    for (const token of ['[CLS]', '[SEP]', '[UNK]', '[PAD]']) {
      if (!this.vocab.has(token)) throw new Error(`The vocabulary of ${dir} has no ${token}`);
    }
    this.name = `onnx:${basename(dir)}`;
  }

  async embed(texts: readonly string[]): Promise<number[][]> {
    this.session ??= ort.InferenceSession.create(join(this.dir, 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const session = await this.session;
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += BATCH) {
      vectors.push(...(await this.run(session, texts.slice(start, start + BATCH))));
    }
    return vectors;
  }

  private async run(session: ort.InferenceSession, texts: readonly string[]): Promise<number[][]> {
    const tokenised = texts.map((t) => this.tokenise(t));
    const length = Math.max(...tokenised.map((t) => t.length));
    const ids = new BigInt64Array(texts.length * length);
    const mask = new BigInt64Array(texts.length * length);
    tokenised.forEach((tokens, row) =>
      tokens.forEach((id, col) => {
        ids[row * length + col] = BigInt(id);
        mask[row * length + col] = 1n;
      }),
    );
    const shape = [texts.length, length];
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, shape), attention_mask: new ort.Tensor('int64', mask, shape) };
    if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(ids.length), shape);
    let output: ort.Tensor;
    try {
      const result = await session.run(feeds);
      output = result.sentence_embedding ?? result[session.outputNames[0]];
    } catch (err) {
      throw new ProviderError(`The local embedding model failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
    const data = output.data as Float32Array;
    const dim = output.dims[output.dims.length - 1];
    return tokenised.map((tokens, row) => {
      const vector = new Array<number>(dim).fill(0);
      if (output.dims.length === 2) {
        for (let k = 0; k < dim; k++) vector[k] = data[row * dim + k];
      } else {
        // Mean of the token vectors the attention mask keeps (padding excluded).
        for (let col = 0; col < tokens.length; col++) for (let k = 0; k < dim; k++) vector[k] += data[(row * length + col) * dim + k] / tokens.length;
      }
      const norm = Math.hypot(...vector) || 1;
      return vector.map((v) => v / norm);
    });
  }

  /** BERT's uncased tokenisation: lower case, accents stripped, split on spaces and punctuation, then WordPiece. */
  private tokenise(text: string): number[] {
    const words = text
      .toLowerCase()
      .normalize('NFD')
      .replace(/\p{Mn}/gu, '')
      .split(/\s+|(?=[\p{P}\p{S}])|(?<=[\p{P}\p{S}])/u)
      .filter(Boolean);
    const ids = [this.vocab.get('[CLS]')!];
    for (const word of words) {
      for (const id of this.wordPiece(word)) {
        if (ids.length === MAX_TOKENS - 1) break;
        ids.push(id);
      }
    }
    ids.push(this.vocab.get('[SEP]')!);
    return ids;
  }

  /** Greedy longest-match-first into vocabulary pieces ("##" marks a continuation); a word that cannot be split is [UNK]. */
  private wordPiece(word: string): number[] {
    if (word.length > MAX_WORD) return [this.vocab.get('[UNK]')!];
    const pieces: number[] = [];
    for (let start = 0; start < word.length; ) {
      let end = word.length;
      let id: number | undefined;
      for (; end > start; end--) {
        id = this.vocab.get((start > 0 ? '##' : '') + word.slice(start, end));
        if (id !== undefined) break;
      }
      if (id === undefined) return [this.vocab.get('[UNK]')!];
      pieces.push(id);
      start = end;
    }
    return pieces;
  }
}
