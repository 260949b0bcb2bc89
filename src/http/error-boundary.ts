import type { Middleware } from 'koa';
import { ProviderError } from '../ai/llm.js';
import { FhirError, issue, outcomeOf } from '../fhir/outcome.js';
import type { Logger } from '../logger.js';
import type { AppState } from './request-id.js';

/**
 * Every failure becomes an OperationOutcome carrying the request id, with the right status.
 * A failed AI provider is a 502. Unexpected errors are logged (message and stack only — never request
 * content) and answered 500.
 */
export function errorBoundary(logger: Logger): Middleware<AppState> {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      let status = 500;
      let outcome = outcomeOf([issue('exception', 'Internal server error')]);
      if (err instanceof FhirError) {
        status = err.status;
        outcome = err.outcome;
        for (const [k, v] of Object.entries(err.headers)) {
          ctx.set(k, v);
        }
      } else if (err instanceof ProviderError) {
        // An AI provider (Bedrock) failed: a bad gateway, named by its message, which never holds the prompt.
        status = 502;
        outcome = outcomeOf([issue('transient', err.message)]);
        logger.warn({ requestId: ctx.state.requestId, err: err.message }, 'AI provider failed');
      } else {
        logger.error({ requestId: ctx.state.requestId, err: { message: (err as Error).message, stack: (err as Error).stack } }, 'unhandled error');
      }
      ctx.status = status;
      ctx.type = 'application/fhir+json';
      ctx.body = {
        ...outcome,
        id: ctx.state.requestId,
        issue: outcome.issue.map((i, n) => (n === 0 ? { ...i, diagnostics: `request id ${ctx.state.requestId}` } : i)),
      };
    }
  };
}
