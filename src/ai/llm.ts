/**
 * Provider interfaces for generation and embeddings. Amazon Bedrock implements both when configured;
 * without it carelens answers with its grounded extractive answerer and retrieves by full-text search
 * alone, so nothing leaves the server.
 */

export interface LlmMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface LlmRequest {
  /** Instructions and the retrieved, numbered sources the answer must rest on. */
  system: string;
  /** The conversation so far, ending with the user's question. */
  messages: LlmMessage[];
  maxTokens: number;
}

export interface LlmProvider {
  /** Names the provider and model in answers' provenance, e.g. "bedrock:anthropic.claude-3-5-sonnet-20240620-v1:0". */
  readonly name: string;
  /** The answer's text as it is generated, in pieces of any length. */
  stream(request: LlmRequest): AsyncIterable<string>;
}

export interface EmbeddingProvider {
  /** Names the provider and model; stored with each vector so a model change re-embeds. */
  readonly name: string;
  /** One vector per text, in order. */
  embed(texts: readonly string[]): Promise<number[][]>;
}

/** The provider failed (throttled, refused, unreachable): the message names the call and the AWS error, never the prompt. */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
}
