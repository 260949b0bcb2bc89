import { InvokeModelCommand, type BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';

import { bedrockFailure, createBedrockClient, type BedrockClientOptions } from './bedrock-client.js';
import { ProviderError, type EmbeddingProvider } from './llm.js';

/**
 * Embeddings by Amazon Titan Text Embeddings V2 on Amazon Bedrock. Titan embeds one text per
 * InvokeModel call, so a batch is a set of calls run a few at a time: enough to hide latency, few
 * enough to stay clear of the account's requests-per-minute quota (embedding models are throttled by
 * requests, not tokens).
 */

export interface BedrockEmbeddingsOptions extends BedrockClientOptions {
  /** e.g. "amazon.titan-embed-text-v2:0". The request body is Titan's. */
  modelId: string;
  /** 256, 512 or 1024 (Titan V2's default). Vectors of different sizes cannot share an index. */
  dimensions?: number;
  /** Calls in flight at once for one embed(); default 4. */
  concurrency?: number;
}

/** Titan V2 rejects more than 50,000 characters outright. */
const MAX_CHARACTERS = 50_000;
/**
 * Titan also rejects more than 8,192 tokens, which dense text (numbers, units, codes — a lab report)
 * reaches well under 50,000 characters, and there is no tokenizer to count them locally. So a text
 * refused for its token count is cut in proportion to the counts the error reports and sent again.
 */
const TOKEN_LIMIT_RETRIES = 3;

export class BedrockEmbeddings implements EmbeddingProvider {
  readonly name: string;
  private readonly client: BedrockRuntimeClient;
  private readonly modelId: string;
  private readonly dimensions: number | undefined;
  private readonly concurrency: number;

  constructor(options: BedrockEmbeddingsOptions) {
    this.client = createBedrockClient(options);
    this.modelId = options.modelId;
    this.dimensions = options.dimensions;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.name = `bedrock:${options.modelId}`;
  }

  async embed(texts: readonly string[]): Promise<number[][]> {
    const vectors: number[][] = new Array<number[]>(texts.length);
    let next = 0;
    let failed = false;
    // Workers take the next index until none is left, so order is kept and, after a failure, the
    // rest of the batch is not sent for nothing.
    const worker = async (): Promise<void> => {
      while (!failed && next < texts.length) {
        const index = next++;
        try {
          vectors[index] = await this.embedOne(texts[index]);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, texts.length) }, worker));
    return vectors;
  }

  /** Frees the client's sockets; the provider is unusable afterwards. */
  close(): void {
    this.client.destroy();
  }

  private async embedOne(input: string): Promise<number[]> {
    let text = truncate(input, MAX_CHARACTERS);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.invoke(text);
      } catch (error) {
        const keep = tokenLimitRatio(error);
        if (keep === undefined || attempt >= TOKEN_LIMIT_RETRIES) {
          throw bedrockFailure('InvokeModel', error);
        }
        text = truncate(text, Math.floor(text.length * keep));
      }
    }
  }

  private async invoke(inputText: string): Promise<number[]> {
    const output = await this.client.send(
      new InvokeModelCommand({
        modelId: this.modelId,
        contentType: 'application/json',
        accept: 'application/json',
        body: JSON.stringify({ inputText, ...(this.dimensions ? { dimensions: this.dimensions } : {}), normalize: true }),
      }),
    );
    let embedding: unknown;
    try {
      embedding = (JSON.parse(output.body.transformToString('utf8')) as { embedding?: unknown }).embedding;
    } catch {
      throw new ProviderError('Bedrock InvokeModel failed: unreadable response');
    }
    if (!Array.isArray(embedding) || embedding.length === 0 || !embedding.every((value) => typeof value === 'number' && Number.isFinite(value))) {
      throw new ProviderError('Bedrock InvokeModel failed: the response has no embedding');
    }
    if (this.dimensions && embedding.length !== this.dimensions) {
      throw new ProviderError(`Bedrock InvokeModel failed: expected ${this.dimensions} dimensions, got ${embedding.length}`);
    }
    return embedding as number[];
  }
}

/**
 * The share of the text to keep when Titan refused it for its token count, e.g. "Too many input
 * tokens. Max input tokens: 8192, request input token count: 9875"; undefined for any other error.
 */
function tokenLimitRatio(error: unknown): number | undefined {
  if (!(error instanceof Error) || error.name !== 'ValidationException' || !/too many input tokens/i.test(error.message)) {
    return undefined;
  }
  const counts = /max input tokens:\s*(\d+)[^\d]+?(\d+)/i.exec(error.message);
  const max = Number(counts?.[1]);
  const actual = Number(counts?.[2]);
  // A margin below the exact proportion, since tokens are not spread evenly through the text.
  return max > 0 && actual > max ? (max / actual) * 0.9 : 0.8;
}

/** Cuts to at most `length` UTF-16 units without splitting a surrogate pair. */
function truncate(text: string, length: number): string {
  if (text.length <= length) {
    return text;
  }
  const code = text.charCodeAt(length - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? length - 1 : length);
}
