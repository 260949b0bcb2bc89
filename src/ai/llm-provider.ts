import { BedrockEmbeddings } from './bedrock-embeddings.js';
import { BedrockLlm } from './bedrock-llm.js';
import type { EmbeddingProvider, LlmProvider } from './llm.js';
import { OnnxEmbeddings } from './onnx-embeddings.js';

/** Amazon Bedrock settings from the environment; credentials come from the SDK's default provider chain. */
export interface BedrockConfig {
  region: string;
  /** A VPC endpoint, or a local stub in tests. */
  endpoint?: string;
  /** An Anthropic Claude model or inference profile; absent: answers stay extractive. */
  chatModel?: string;
  /** A Titan Text Embeddings model; absent: retrieval stays full-text only. */
  embeddingModel?: string;
  /** 256, 512 or 1024. */
  embeddingDimensions?: number;
}

/** Bedrock generation when a chat model is configured; undefined means the local extractive answerer. */
export function createLlmProvider(config: BedrockConfig | undefined): LlmProvider | undefined {
  if (!config?.chatModel) {
    return undefined;
  }
  return new BedrockLlm({ region: config.region, endpoint: config.endpoint, modelId: config.chatModel });
}

/**
 * Bedrock embeddings when an embedding model is configured there, else the local ONNX model in
 * `localModelDir` when there is one; undefined means full-text search alone.
 */
export function createEmbeddingProvider(config: BedrockConfig | undefined, localModelDir?: string): EmbeddingProvider | undefined {
  if (!config?.embeddingModel) {
    return localModelDir ? new OnnxEmbeddings(localModelDir) : undefined;
  }
  return new BedrockEmbeddings({
    region: config.region,
    endpoint: config.endpoint,
    modelId: config.embeddingModel,
    dimensions: config.embeddingDimensions,
  });
}
