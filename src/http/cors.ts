import cors from '@koa/cors';
import type { Middleware } from 'koa';
import type { AppState } from './request-id.js';

/**
 * CORS for what browser apps on other origins call: the FHIR API and SMART's discovery document
 * (SMART apps launched by an EHR), and the CDS Hooks services (CDS Hooks 2.0 §CORS). Callers prove
 * who they are with a bearer token, never a cookie, so a page on another origin holds no authority
 * its user did not hand it: any origin may call, without credentials. The authorization server's
 * endpoints answer CORS themselves (oidc-provider).
 */
export function crossOrigin(applies: (path: string) => boolean): Middleware<AppState> {
  const handler = cors({
    origin: '*',
    allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ['Authorization', 'Content-Type', 'Accept', 'Prefer', 'If-Match', 'If-None-Match', 'If-None-Exist', 'If-Modified-Since', 'X-Request-Id'],
    // What a FHIR client reads from a response: versioning, where a created resource is, and the request id to quote.
    exposeHeaders: ['ETag', 'Last-Modified', 'Location', 'Content-Location', 'X-Request-Id', 'WWW-Authenticate'],
    maxAge: 600,
    keepHeadersOnError: false, // the error boundary keeps the headers already set
  });
  return (ctx, next) => (applies(ctx.path) ? handler(ctx, next) : next());
}
