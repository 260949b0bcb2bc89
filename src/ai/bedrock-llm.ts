import { InvokeModelWithResponseStreamCommand, type BedrockRuntimeClient, type ResponseStream } from '@aws-sdk/client-bedrock-runtime';

import { bedrockFailure, createBedrockClient, type BedrockClientOptions } from './bedrock-client.js';
import { ProviderError, type LlmProvider, type LlmRequest } from './llm.js';

/**
 * Generation by an Anthropic Claude model on Amazon Bedrock, streamed so the answer appears as it is
 * written. The body is Anthropic's Messages format, so the model id must be a Claude model or an
 * inference profile / ARN that resolves to one.
 */

export interface BedrockLlmOptions extends BedrockClientOptions {
  /** e.g. "anthropic.claude-3-5-sonnet-20240620-v1:0" or an inference profile such as "us.anthropic.…". */
  modelId: string;
}

const OPERATION = 'InvokeModelWithResponseStream';

/** The subset of Anthropic's streaming events this provider reads. */
interface AnthropicEvent {
  type?: string;
  delta?: { type?: string; text?: string };
  error?: { type?: string };
}

export class BedrockLlm implements LlmProvider {
  readonly name: string;
  private readonly client: BedrockRuntimeClient;
  private readonly modelId: string;

  constructor(options: BedrockLlmOptions) {
    this.client = createBedrockClient(options);
    this.modelId = options.modelId;
    this.name = `bedrock:${options.modelId}`;
  }

  async *stream(request: LlmRequest): AsyncIterable<string> {
    const body = JSON.stringify({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: request.maxTokens,
      // Anthropic rejects an empty system prompt rather than ignoring it.
      ...(request.system ? { system: request.system } : {}),
      messages: request.messages.map(({ role, content }) => ({ role, content })),
    });
    let events: AsyncIterable<ResponseStream>;
    try {
      const output = await this.client.send(
        new InvokeModelWithResponseStreamCommand({ modelId: this.modelId, contentType: 'application/json', accept: 'application/json', body }),
      );
      if (!output.body) {
        throw new ProviderError(`Bedrock ${OPERATION} failed: no response stream`);
      }
      events = output.body;
    } catch (error) {
      throw bedrockFailure(OPERATION, error);
    }

    // The SDK throws a stream's exception event (throttling, model error…) from the iteration itself;
    // the union's exception members are checked too in case a future SDK yields them instead.
    let stopped = false;
    try {
      for await (const event of events) {
        if (!event.chunk) {
          const member = Object.entries(event).find(([, value]) => value !== undefined)?.[0] ?? 'unknown event';
          throw new ProviderError(`Bedrock ${OPERATION} failed: ${member}`);
        }
        const parsed = parseEvent(event.chunk.bytes);
        if (parsed.type === 'content_block_delta' && parsed.delta?.type === 'text_delta' && parsed.delta.text) {
          yield parsed.delta.text;
        } else if (parsed.type === 'message_stop') {
          stopped = true;
        } else if (parsed.type === 'error') {
          throw new ProviderError(`Bedrock ${OPERATION} failed: ${parsed.error?.type ?? 'error event'}`);
        }
      }
    } catch (error) {
      throw bedrockFailure(OPERATION, error);
    }
    // A stream cut short would otherwise pass for a complete answer.
    if (!stopped) {
      throw new ProviderError(`Bedrock ${OPERATION} failed: the stream ended before message_stop`);
    }
  }

  /** Frees the client's sockets; the provider is unusable afterwards. */
  close(): void {
    this.client.destroy();
  }
}

function parseEvent(bytes: Uint8Array | undefined): AnthropicEvent {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(bytes ?? new Uint8Array()).toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) {
      return parsed as AnthropicEvent;
    }
  } catch {
    // Reported below without the bytes, which may hold generated text about a patient.
  }
  throw new ProviderError(`Bedrock ${OPERATION} failed: unreadable stream event`);
}
