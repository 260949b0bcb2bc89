import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';

import { ProviderError } from './llm.js';

/** What every Bedrock provider needs to reach the service; the model is per provider. */
export interface BedrockClientOptions {
  region: string;
  /** A non-AWS endpoint (a VPC endpoint, or a local stub in tests). */
  endpoint?: string;
  /** Defaults to the SDK's provider chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** SDK attempts per call including retries of throttling and 5xx; the SDK default is 3. */
  maxAttempts?: number;
}

/** Giving up on a connection that does not open is better than holding a clinician's request open. */
const CONNECTION_TIMEOUT_MS = 5_000;
/**
 * Silence on an open socket this long means the call is stuck. Generous because a large prompt can
 * take tens of seconds to its first token; the stream keeps the socket busy after that.
 */
const SOCKET_IDLE_TIMEOUT_MS = 60_000;

/**
 * Always HTTP/1.1 (NodeHttpHandler), not the client's HTTP/2 default: InvokeModel and
 * InvokeModelWithResponseStream are served over HTTP/1.1 (only the bidirectional stream API needs
 * HTTP/2, and carelens does not use it), the default HTTP/2 handler disables concurrent streams so
 * it would not multiplex anyway, and one transport means the path tests exercise against a local
 * HTTP/1.1 stub is the one production runs.
 */
export function createBedrockClient(options: BedrockClientOptions): BedrockRuntimeClient {
  return new BedrockRuntimeClient({
    region: options.region,
    endpoint: options.endpoint,
    credentials: options.credentials,
    maxAttempts: options.maxAttempts,
    requestHandler: new NodeHttpHandler({ connectionTimeout: CONNECTION_TIMEOUT_MS, socketTimeout: SOCKET_IDLE_TIMEOUT_MS }),
  });
}

/**
 * The AWS error's name (and HTTP status or socket code when there is one), but not its message:
 * validation messages may quote the request, and the request is a patient's record.
 * The original stays reachable as `cause` for debugging.
 */
export function bedrockFailure(operation: string, error: unknown): ProviderError {
  if (error instanceof ProviderError) {
    return error;
  }
  const name = error instanceof Error ? error.name : 'Error';
  const detail: string[] = [];
  if (typeof error === 'object' && error !== null) {
    const status = (error as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
    const code = (error as { code?: unknown }).code;
    if (typeof status === 'number') {
      detail.push(`HTTP ${status}`);
    }
    if (typeof code === 'string' && code !== name) {
      detail.push(code);
    }
  }
  return new ProviderError(`Bedrock ${operation} failed: ${name}${detail.length > 0 ? ` (${detail.join(', ')})` : ''}`, { cause: error });
}
