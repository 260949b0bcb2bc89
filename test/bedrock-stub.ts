import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { EventStreamCodec, type MessageHeaders } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';

/**
 * A local stand-in for the Bedrock Runtime HTTP API (HTTP/1.1, ephemeral port), so the real SDK can
 * be exercised end to end: InvokeModel for Titan text embeddings and Anthropic Messages, and
 * InvokeModelWithResponseStream for Anthropic Messages as an AWS event stream. It validates requests
 * the way Bedrock does where tests could otherwise pass against a lenient stub (Anthropic's required
 * fields, Titan's character and token limits, Titan's dimensions).
 *
 * Errors: a reply of {error} without a status is sent as an exception event inside a 200 stream (how
 * Bedrock reports throttling or a model failure after the stream began); with a status, or on
 * InvokeModel, as an HTTP error with x-amzn-ErrorType. The SDK surfaces both as an error named after
 * the exception (e.g. ThrottlingException).
 */

export interface StubChatRequest {
  modelId: string;
  system: string;
  /** Content blocks are flattened to their text. */
  messages: { role: string; content: string }[];
}

/** The reply text, or an AWS error by name ("ThrottlingException"); `partial` is streamed before a mid-stream exception. */
export type StubReply = string | { error: string; status?: number; partial?: string };

export interface BedrockStubOptions {
  /** Default: "Stub answer to: <the last user message>". */
  reply?: (request: StubChatRequest) => StubReply;
  /** Characters per content_block_delta; default 12. */
  chunkSize?: number;
  /** Fail an embedding call instead of answering it (e.g. to simulate throttling). */
  embeddingError?: (inputText: string) => { error: string; status?: number } | undefined;
}

export interface StubRecordedRequest {
  /** URL-decoded, e.g. "amazon.titan-embed-text-v2:0". */
  modelId: string;
  /** As received, e.g. "/model/amazon.titan-embed-text-v2%3A0/invoke". */
  path: string;
  streaming: boolean;
  body: Record<string, unknown>;
}

export interface BedrockStub {
  /** Pass as the provider's endpoint. */
  endpoint: string;
  /** Every request received, oldest first; clear with `requests.length = 0`. */
  requests: StubRecordedRequest[];
  close(): Promise<void>;
}

const TITAN_MAX_CHARACTERS = 50_000;
const TITAN_MAX_TOKENS = 8_192;
const TITAN_DIMENSIONS = [256, 512, 1024];

/** HTTP statuses Bedrock Runtime uses for its modelled errors. */
const STATUS: Record<string, number> = {
  AccessDeniedException: 403,
  InternalServerException: 500,
  ModelErrorException: 424,
  ModelNotReadyException: 429,
  ModelStreamErrorException: 424,
  ModelTimeoutException: 408,
  ResourceNotFoundException: 404,
  ServiceQuotaExceededException: 400,
  ServiceUnavailableException: 503,
  ThrottlingException: 429,
  ValidationException: 400,
};

class StubError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = STATUS[type] ?? 400,
  ) {
    super(message);
  }
}

export async function startBedrockStub(options: BedrockStubOptions = {}): Promise<BedrockStub> {
  const requests: StubRecordedRequest[] = [];
  const reply = options.reply ?? defaultReply;
  const chunkSize = Math.max(1, options.chunkSize ?? 12);
  const codec = new EventStreamCodec(toUtf8, fromUtf8);

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = request.url ?? '/';
    const route = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream)$/.exec(path.split('?')[0]);
    const raw = await readBody(request);
    if (request.method !== 'POST' || !route) {
      throw new StubError('UnknownOperationException', `no route for ${request.method} ${path}`, 404);
    }
    const modelId = decodeURIComponent(route[1]);
    const streaming = route[2] === 'invoke-with-response-stream';
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw new StubError('ValidationException', 'Malformed input request: the body is not JSON');
    }
    requests.push({ modelId, path, streaming, body });

    if (modelId.startsWith('amazon.titan-embed')) {
      if (streaming) {
        throw new StubError('ValidationException', 'The model does not support streaming');
      }
      sendJson(response, 200, embed(body, options.embeddingError));
      return;
    }
    if (!modelId.includes('anthropic.')) {
      throw new StubError('ResourceNotFoundException', `the stub knows no model ${modelId}`);
    }
    const chat = chatRequest(modelId, body);
    const answer = reply(chat);
    if (typeof answer !== 'string' && (!streaming || answer.status !== undefined)) {
      throw new StubError(awsName(answer.error), 'The stub was told to fail this call.', answer.status);
    }
    if (!streaming) {
      const text = answer as string;
      sendJson(response, 200, {
        id: `msg_${randomUUID()}`,
        type: 'message',
        role: 'assistant',
        model: modelId,
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: countTokens(JSON.stringify(chat)), output_tokens: countTokens(text) },
      });
      return;
    }
    response.writeHead(200, {
      'content-type': 'application/vnd.amazon.eventstream',
      'x-amzn-bedrock-content-type': 'application/json',
      'x-amzn-requestid': randomUUID(),
    });
    const text = typeof answer === 'string' ? answer : (answer.partial ?? '');
    const events: object[] = [
      {
        type: 'message_start',
        message: { id: `msg_${randomUUID()}`, type: 'message', role: 'assistant', model: modelId, content: [], stop_reason: null, usage: { input_tokens: countTokens(JSON.stringify(chat)), output_tokens: 1 } },
      },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    ];
    for (let start = 0; start < text.length; start += chunkSize) {
      events.push({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: text.slice(start, start + chunkSize) } });
    }
    for (const event of events) {
      response.write(chunkMessage(codec, event));
    }
    if (typeof answer !== 'string') {
      const headers: MessageHeaders = {
        ':message-type': { type: 'string', value: 'exception' },
        // The exception's member name in the ResponseStream union: lower camel case.
        ':exception-type': { type: 'string', value: memberName(answer.error) },
        ':content-type': { type: 'string', value: 'application/json' },
      };
      response.end(codec.encode({ headers, body: fromUtf8(JSON.stringify({ message: 'The stub was told to fail mid-stream.' })) }));
      return;
    }
    const outputTokens = countTokens(text);
    for (const event of [
      { type: 'content_block_stop', index: 0 },
      { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: outputTokens } },
      { type: 'message_stop', 'amazon-bedrock-invocationMetrics': { inputTokenCount: 1, outputTokenCount: outputTokens, invocationLatency: 1, firstByteLatency: 1 } },
    ]) {
      response.write(chunkMessage(codec, event));
    }
    response.end();
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      const failure = error instanceof StubError ? error : new StubError('InternalServerException', String(error));
      if (response.headersSent) {
        response.destroy();
        return;
      }
      response.setHeader('x-amzn-errortype', failure.type);
      sendJson(response, failure.status, { message: failure.message });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/**
 * A deterministic stand-in for a semantic embedding: lower-cased word tokens hashed (FNV-1a) into
 * `dimensions` buckets, L2-normalised, so texts sharing words have a higher cosine similarity.
 */
export function stubEmbedding(text: string, dimensions = 256): number[] {
  const vector = new Array<number>(dimensions).fill(0);
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    let hash = 0x811c9dc5;
    for (let i = 0; i < word.length; i++) {
      hash = Math.imul(hash ^ word.charCodeAt(i), 0x01000193) >>> 0;
    }
    vector[hash % dimensions] += 1;
  }
  const norm = Math.hypot(...vector);
  return norm === 0 ? vector : vector.map((value) => value / norm);
}

function embed(body: Record<string, unknown>, embeddingError: BedrockStubOptions['embeddingError']): { embedding: number[]; inputTextTokenCount: number } {
  const { inputText, dimensions } = body;
  if (typeof inputText !== 'string' || inputText.trim() === '') {
    throw new StubError('ValidationException', 'Malformed input request: inputText must be a non-empty string, please reformat your input and try again.');
  }
  if (inputText.length > TITAN_MAX_CHARACTERS) {
    throw new StubError('ValidationException', `Malformed input request: expected maxLength: ${TITAN_MAX_CHARACTERS}, actual: ${inputText.length}, please reformat your input and try again.`);
  }
  if (dimensions !== undefined && !TITAN_DIMENSIONS.includes(dimensions as number)) {
    throw new StubError('ValidationException', `Malformed input request: dimensions must be one of ${TITAN_DIMENSIONS.join(', ')}`);
  }
  const tokens = countTokens(inputText);
  if (tokens > TITAN_MAX_TOKENS) {
    throw new StubError('ValidationException', `400 Bad Request: Too many input tokens. Max input tokens: ${TITAN_MAX_TOKENS}, request input token count: ${tokens}`);
  }
  const failure = embeddingError?.(inputText);
  if (failure) {
    throw new StubError(awsName(failure.error), 'The stub was told to fail this call.', failure.status);
  }
  return { embedding: stubEmbedding(inputText, (dimensions as number | undefined) ?? 256), inputTextTokenCount: tokens };
}

function chatRequest(modelId: string, body: Record<string, unknown>): StubChatRequest {
  const { anthropic_version: version, max_tokens: maxTokens, system, messages } = body;
  if (version !== 'bedrock-2023-05-31') {
    throw new StubError('ValidationException', 'Malformed input request: anthropic_version must be bedrock-2023-05-31');
  }
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new StubError('ValidationException', 'Malformed input request: max_tokens must be a positive integer');
  }
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new StubError('ValidationException', 'Malformed input request: messages must be a non-empty array');
  }
  return {
    modelId,
    system: flatten(system),
    messages: messages.map((message: { role?: unknown; content?: unknown }) => {
      if (message?.role !== 'user' && message?.role !== 'assistant') {
        throw new StubError('ValidationException', 'Malformed input request: message role must be user or assistant');
      }
      return { role: message.role, content: flatten(message.content) };
    }),
  };
}

/** Anthropic content is a string or a list of blocks. */
function flatten(content: unknown): string {
  if (typeof content === 'string') {
    return content;
  }
  if (Array.isArray(content)) {
    return content.map((block: { text?: unknown }) => (typeof block?.text === 'string' ? block.text : '')).join('');
  }
  return '';
}

function defaultReply(request: StubChatRequest): string {
  const question = [...request.messages].reverse().find((message) => message.role === 'user')?.content ?? '';
  return `Stub answer to: ${question}`;
}

function chunkMessage(codec: EventStreamCodec, event: object): Uint8Array {
  const headers: MessageHeaders = {
    ':event-type': { type: 'string', value: 'chunk' },
    ':message-type': { type: 'string', value: 'event' },
    ':content-type': { type: 'string', value: 'application/json' },
  };
  const bytes = Buffer.from(JSON.stringify(event), 'utf8').toString('base64');
  return codec.encode({ headers, body: fromUtf8(JSON.stringify({ bytes })) });
}

/** Rough token count: words and punctuation marks, as a subword tokenizer would at least produce. */
function countTokens(text: string): number {
  return (text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? []).length;
}

/** "throttlingException" or "ThrottlingException" → "ThrottlingException" (the HTTP error type). */
function awsName(error: string): string {
  return error.charAt(0).toUpperCase() + error.slice(1);
}

/** → "throttlingException" (the event-stream exception type). */
function memberName(error: string): string {
  return error.charAt(0).toLowerCase() + error.slice(1);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID() }).end(JSON.stringify(body));
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
