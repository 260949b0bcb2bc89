import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';

import { BedrockEmbeddings } from '../src/ai/bedrock-embeddings.js';
import { BedrockLlm } from '../src/ai/bedrock-llm.js';
import { ProviderError, type LlmRequest } from '../src/ai/llm.js';
import { createEmbeddingProvider, createLlmProvider } from '../src/ai/llm-provider.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { startBedrockStub, stubEmbedding, type BedrockStub, type BedrockStubOptions } from './bedrock-stub.js';

const CHAT_MODEL = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
const EMBEDDING_MODEL = 'amazon.titan-embed-text-v2:0';
const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };
/** Words that must never reach an error message: they stand for a patient's record. */
const SECRET = 'Jane Doe MRN 4471 HIV positive';

const request: LlmRequest = {
  system: `Answer only from the sources. [1] ${SECRET}`,
  messages: [{ role: 'user', content: `What is the latest HbA1c of ${SECRET}?` }],
  maxTokens: 400,
};

async function withStub<T>(options: BedrockStubOptions, run: (stub: BedrockStub) => Promise<T>): Promise<T> {
  const stub = await startBedrockStub(options);
  try {
    return await run(stub);
  } finally {
    await stub.close();
  }
}

async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const pieces: string[] = [];
  for await (const piece of stream) {
    pieces.push(piece);
  }
  return pieces;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

const cosine = (a: number[], b: number[]): number => a.reduce((sum, value, i) => sum + value * b[i], 0);

describe('BedrockLlm through the real SDK against a local stub', () => {
  const llm = (stub: BedrockStub, modelId = CHAT_MODEL): BedrockLlm => new BedrockLlm({ region: 'us-east-1', endpoint: stub.endpoint, credentials, maxAttempts: 1, modelId });

  it('streams the reply in pieces and sends an Anthropic Messages body', async () => {
    const reply = 'HbA1c was 6.8 % on 2024-03-02 [1], down from 7.4 % [2].';
    await withStub({ reply: () => reply, chunkSize: 7 }, async (stub) => {
      const provider = llm(stub);
      const pieces = await collect(provider.stream(request)).finally(() => provider.close());
      expect(provider.name).toBe(`bedrock:${CHAT_MODEL}`);
      expect(pieces.length).toBe(Math.ceil(reply.length / 7));
      expect(pieces.join('')).toBe(reply);

      expect(stub.requests).toHaveLength(1);
      const [received] = stub.requests;
      expect(received).toMatchObject({ modelId: CHAT_MODEL, streaming: true, path: `/model/${encodeURIComponent(CHAT_MODEL)}/invoke-with-response-stream` });
      expect(received.body).toEqual({
        anthropic_version: 'bedrock-2023-05-31',
        max_tokens: 400,
        system: request.system,
        messages: request.messages,
      });
    });
  });

  it('gives the stub request to a reply function and uses its default answer otherwise', async () => {
    const seen: unknown[] = [];
    await withStub({ reply: (chat) => (seen.push(chat), 'ok') }, async (stub) => {
      const provider = llm(stub);
      await collect(provider.stream(request)).finally(() => provider.close());
    });
    expect(seen).toEqual([{ modelId: CHAT_MODEL, system: request.system, messages: request.messages }]);

    await withStub({}, async (stub) => {
      const provider = llm(stub);
      const pieces = await collect(provider.stream({ system: '', messages: [{ role: 'user', content: 'Hello?' }], maxTokens: 10 })).finally(() => provider.close());
      const text = pieces.join('');
      expect(text).toBe('Stub answer to: Hello?');
      // An empty system prompt is left out: Anthropic refuses an empty one.
      expect(stub.requests[0].body).not.toHaveProperty('system');
    });
  });

  it.each(['ThrottlingException', 'ModelStreamErrorException', 'InternalServerException', 'ValidationException'])(
    'turns a mid-stream %s exception event into a ProviderError without the prompt',
    async (type) => {
      await withStub({ reply: () => ({ error: type, partial: 'The latest HbA1c was' }), chunkSize: 5 }, async (stub) => {
        const provider = llm(stub);
        const pieces: string[] = [];
        const error = await failure(
          (async () => {
            for await (const piece of provider.stream(request)) {
              pieces.push(piece);
            }
          })().finally(() => provider.close()),
        );
        // What was generated before the failure did arrive; the caller decides what to do with it.
        expect(pieces.join('')).toBe('The latest HbA1c was');
        expect(error).toBeInstanceOf(ProviderError);
        expect(error.message).toBe(`Bedrock InvokeModelWithResponseStream failed: ${type}`);
        expect(error.message).not.toContain('Jane');
      });
    },
  );

  it.each([
    [429, 'ThrottlingException'],
    [403, 'AccessDeniedException'],
    [400, 'ValidationException'],
  ])('turns an HTTP %p %s into a ProviderError without the prompt', async (status, type) => {
    await withStub({ reply: () => ({ error: type, status }) }, async (stub) => {
      const provider = llm(stub);
      const error = await failure(collect(provider.stream(request)).finally(() => provider.close()));
      expect(error).toBeInstanceOf(ProviderError);
      expect(error.message).toBe(`Bedrock InvokeModelWithResponseStream failed: ${type} (HTTP ${status})`);
      expect(error.message).not.toContain('Jane');
    });
  });

  it('reports an unreachable endpoint as a ProviderError', async () => {
    const stub = await startBedrockStub();
    const endpoint = stub.endpoint;
    await stub.close();
    const provider = new BedrockLlm({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1, modelId: CHAT_MODEL });
    const error = await failure(collect(provider.stream(request)).finally(() => provider.close()));
    expect(error).toBeInstanceOf(ProviderError);
    // Under plain Node this reads "failed: Error (ECONNREFUSED)". Inside jest's VM the socket error
    // comes from the host realm, fails the SDK's `instanceof Error` check and is re-wrapped as a bare
    // Error whose code is lost.
    expect(error.message).toMatch(/^Bedrock InvokeModelWithResponseStream failed: Error\b/);
  });

  it.each([
    ['ends cleanly', false],
    ['is cut off', true],
  ])('does not pass off a stream that %s before message_stop as a complete answer', async (_case, destroy) => {
    const codec = new EventStreamCodec(toUtf8, fromUtf8);
    const chunk = (event: object): Uint8Array =>
      codec.encode({
        headers: { ':event-type': { type: 'string', value: 'chunk' }, ':message-type': { type: 'string', value: 'event' }, ':content-type': { type: 'string', value: 'application/json' } },
        body: fromUtf8(JSON.stringify({ bytes: Buffer.from(JSON.stringify(event)).toString('base64') })),
      });
    const server = createServer((req, res) => {
      req.resume().on('end', () => {
        res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
        res.write(chunk({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'No known ' } }));
        setTimeout(() => (destroy ? res.destroy() : res.end()), 20);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const provider = new BedrockLlm({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1, modelId: CHAT_MODEL });
    const pieces: string[] = [];
    const error = await failure(
      (async () => {
        for await (const piece of provider.stream(request)) pieces.push(piece);
      })().finally(() => {
        provider.close();
        server.closeAllConnections();
        server.close();
      }),
    );
    expect(pieces).toEqual(['No known ']);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.message).toMatch(/^Bedrock InvokeModelWithResponseStream failed: /);
    if (!destroy) {
      expect(error.message).toBe('Bedrock InvokeModelWithResponseStream failed: the stream ended before message_stop');
    }
  });

  it('lets the consumer stop early', async () => {
    await withStub({ reply: () => 'x'.repeat(500), chunkSize: 10 }, async (stub) => {
      const provider = llm(stub);
      const pieces: string[] = [];
      for await (const piece of provider.stream(request)) {
        pieces.push(piece);
        if (pieces.length === 3) break;
      }
      provider.close();
      expect(pieces).toEqual(['x'.repeat(10), 'x'.repeat(10), 'x'.repeat(10)]);
    });
  });
});

describe('BedrockEmbeddings through the real SDK against a local stub', () => {
  const embeddings = (stub: BedrockStub, dimensions?: number): BedrockEmbeddings =>
    new BedrockEmbeddings({ region: 'us-east-1', endpoint: stub.endpoint, credentials, maxAttempts: 1, modelId: EMBEDDING_MODEL, dimensions });

  it('embeds each text with one Titan call, keeping order, with the dimensions asked for', async () => {
    const texts = Array.from({ length: 11 }, (_, i) => `note ${i}: patient reports ${i % 2 ? 'chest pain' : 'headache'} on day ${i}`);
    await withStub({}, async (stub) => {
      const provider = embeddings(stub, 512);
      const vectors = await provider.embed(texts).finally(() => provider.close());
      expect(provider.name).toBe(`bedrock:${EMBEDDING_MODEL}`);
      expect(vectors).toEqual(texts.map((text) => stubEmbedding(text, 512)));
      expect(stub.requests).toHaveLength(texts.length);
      // Sent concurrently, so in any order; each exactly once.
      const byText = (a: Record<string, unknown>, b: Record<string, unknown>): number => String(a.inputText).localeCompare(String(b.inputText));
      expect(stub.requests.map((r) => r.body).sort(byText)).toEqual(texts.map((inputText) => ({ inputText, dimensions: 512, normalize: true })).sort(byText));
      expect(stub.requests.every((r) => r.modelId === EMBEDDING_MODEL && !r.streaming && r.path === `/model/${encodeURIComponent(EMBEDDING_MODEL)}/invoke`)).toBe(true);
    });
  });

  it('leaves the dimensions to the model when none are configured, and embeds nothing for no texts', async () => {
    await withStub({}, async (stub) => {
      const provider = embeddings(stub);
      const [vector] = await provider.embed(['metformin 500 mg']);
      expect(await provider.embed([])).toEqual([]);
      provider.close();
      expect(stub.requests).toHaveLength(1);
      expect(stub.requests[0].body).toEqual({ inputText: 'metformin 500 mg', normalize: true });
      expect(vector).toHaveLength(256);
    });
  });

  it('places texts that share words closer than unrelated ones', async () => {
    await withStub({}, async (stub) => {
      const provider = embeddings(stub);
      const [query, related, unrelated] = await provider
        .embed(['latest HbA1c result for diabetes', 'HbA1c 6.8 % diabetes follow-up result', 'knee x-ray shows no fracture'])
        .finally(() => provider.close());
      expect(cosine(query, query)).toBeCloseTo(1, 10);
      expect(cosine(query, related)).toBeGreaterThan(cosine(query, unrelated));
      expect(cosine(query, related)).toBeGreaterThan(0.5);
    });
  });

  it('cuts a text to Titan character limit, and again when it is over the token limit', async () => {
    await withStub({}, async (stub) => {
      const provider = embeddings(stub);
      const long = 'a '.repeat(40_000); // 80,000 characters, 40,000 "tokens"
      const [vector] = await provider.embed([long]).finally(() => provider.close());
      expect(vector).toHaveLength(256);
      const sent = stub.requests.map((r) => String(r.body.inputText).length);
      expect(sent[0]).toBe(50_000);
      expect(sent.length).toBeGreaterThan(1);
      expect(sent.at(-1)).toBeLessThanOrEqual(8_192 * 2);
    });
  });

  it('turns a failed call into a ProviderError without the text, and stops sending the batch', async () => {
    await withStub({ embeddingError: (text) => (text.includes('fail') ? { error: 'ThrottlingException' } : undefined) }, async (stub) => {
      const provider = new BedrockEmbeddings({ region: 'us-east-1', endpoint: stub.endpoint, credentials, maxAttempts: 1, modelId: EMBEDDING_MODEL, concurrency: 1 });
      const texts = ['one', `fail ${SECRET}`, 'three', 'four'];
      const error = await failure(provider.embed(texts).finally(() => provider.close()));
      expect(error).toBeInstanceOf(ProviderError);
      expect(error.message).toBe('Bedrock InvokeModel failed: ThrottlingException (HTTP 429)');
      expect(error.message).not.toContain('Jane');
      expect(stub.requests).toHaveLength(2);
    });
  });

  it('reports Titan refusing an empty text', async () => {
    await withStub({}, async (stub) => {
      const provider = embeddings(stub);
      const error = await failure(provider.embed(['fine', '']).finally(() => provider.close()));
      expect(error).toBeInstanceOf(ProviderError);
      expect(error.message).toBe('Bedrock InvokeModel failed: ValidationException (HTTP 400)');
    });
  });
});

describe('Bedrock provider factories', () => {
  it('return undefined when Bedrock or the model is not configured', () => {
    expect(createLlmProvider(undefined)).toBeUndefined();
    expect(createEmbeddingProvider(undefined)).toBeUndefined();
    expect(createLlmProvider({ region: 'us-east-1', embeddingModel: EMBEDDING_MODEL })).toBeUndefined();
    expect(createEmbeddingProvider({ region: 'us-east-1', chatModel: CHAT_MODEL })).toBeUndefined();
  });

  it('build Bedrock providers for the configured models', async () => {
    await withStub({}, async (stub) => {
      const config = { region: 'us-east-1', endpoint: stub.endpoint, chatModel: CHAT_MODEL, embeddingModel: EMBEDDING_MODEL, embeddingDimensions: 1024 };
      const llm = createLlmProvider(config);
      const embeddings = createEmbeddingProvider(config);
      expect(llm).toBeInstanceOf(BedrockLlm);
      expect(embeddings).toBeInstanceOf(BedrockEmbeddings);
      expect([llm?.name, embeddings?.name]).toEqual([`bedrock:${CHAT_MODEL}`, `bedrock:${EMBEDDING_MODEL}`]);
      // Credentials from the environment, as in production (the SDK's default chain).
      const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
      process.env.AWS_ACCESS_KEY_ID = 'AKIDTEST';
      process.env.AWS_SECRET_ACCESS_KEY = 'secret';
      try {
        const [vector] = await embeddings!.embed(['blood pressure']);
        expect(vector).toHaveLength(1024);
      } finally {
        restore('AWS_ACCESS_KEY_ID', saved.id);
        restore('AWS_SECRET_ACCESS_KEY', saved.secret);
        (llm as BedrockLlm).close();
        (embeddings as BedrockEmbeddings).close();
      }
    });
  });
});

function restore(name: string, value: string | undefined): void {
  if (value === undefined) {
    delete process.env[name];
  } else {
    process.env[name] = value;
  }
}

describe('Bedrock configuration', () => {
  const load = (env: Record<string, string>) => loadConfig(env, []);

  it('is absent unless a region is set', () => {
    expect(load({}).bedrock).toBeUndefined();
  });

  it('reads the region, endpoint, models and dimensions', () => {
    expect(
      load({
        BEDROCK_REGION: 'eu-central-1',
        BEDROCK_ENDPOINT: 'https://vpce-123.bedrock-runtime.eu-central-1.vpce.amazonaws.com',
        BEDROCK_CHAT_MODEL: CHAT_MODEL,
        BEDROCK_EMBEDDING_MODEL: EMBEDDING_MODEL,
        BEDROCK_EMBEDDING_DIMENSIONS: '512',
      }).bedrock,
    ).toEqual({
      region: 'eu-central-1',
      endpoint: 'https://vpce-123.bedrock-runtime.eu-central-1.vpce.amazonaws.com',
      chatModel: CHAT_MODEL,
      embeddingModel: EMBEDDING_MODEL,
      embeddingDimensions: 512,
    });
    expect(load({ BEDROCK_REGION: 'us-east-1', BEDROCK_EMBEDDING_MODEL: EMBEDDING_MODEL }).bedrock).toEqual({
      region: 'us-east-1',
      endpoint: undefined,
      chatModel: undefined,
      embeddingModel: EMBEDDING_MODEL,
      embeddingDimensions: undefined,
    });
  });

  it.each([
    [{ BEDROCK_REGION: 'us-east-1' }, /BEDROCK_REGION needs BEDROCK_CHAT_MODEL .* or BEDROCK_EMBEDDING_MODEL/],
    [{ BEDROCK_CHAT_MODEL: CHAT_MODEL }, /need BEDROCK_REGION/],
    [{ BEDROCK_REGION: 'us-east-1', BEDROCK_CHAT_MODEL: CHAT_MODEL, BEDROCK_ENDPOINT: 'localhost:4566' }, /BEDROCK_ENDPOINT must be an absolute http\(s\) URL, got "localhost:4566"/],
    [{ BEDROCK_REGION: 'us-east-1', BEDROCK_CHAT_MODEL: CHAT_MODEL, BEDROCK_ENDPOINT: 'ftp://example.com' }, /BEDROCK_ENDPOINT must be an absolute http\(s\) URL/],
    [{ BEDROCK_REGION: 'us-east-1', BEDROCK_EMBEDDING_MODEL: EMBEDDING_MODEL, BEDROCK_EMBEDDING_DIMENSIONS: '768' }, /BEDROCK_EMBEDDING_DIMENSIONS must be one of 256, 512, 1024, got "768"/],
  ])('rejects %p', (env, message) => {
    expect(() => load(env)).toThrow(ConfigError);
    expect(() => load(env)).toThrow(message);
  });
});
