import type { Middleware } from 'koa';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';

export interface AppState {
  requestId: string;
}

const CALLER_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives every request an id (the caller's X-Request-Id when it is sane, else a new UUID), echoes
 * it, and writes one structured access-log line: method, route shape, status, duration — no query
 * values, bodies or ids from the URL's query, which may carry PHI.
 */
export function requestId(logger: Logger): Middleware<AppState> {
  return async (ctx, next) => {
    const given = ctx.get('X-Request-Id');
    ctx.state.requestId = CALLER_ID.test(given) ? given : randomUUID();
    ctx.set('X-Request-Id', ctx.state.requestId);
    if (!logger.isLevelEnabled('info')) {
      return next();
    }
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      logger.info(
        {
          requestId: ctx.state.requestId,
          method: ctx.method,
          path: ctx.path,
          status: ctx.status,
          ms: Number(process.hrtime.bigint() - start) / 1e6,
        },
        'request',
      );
    }
  };
}
