import type { Context } from 'koa';
import { informational } from '../fhir/outcome.js';
import { Readable } from 'node:stream';
import type { FhirRequest, FhirResponse, ServerSentEvent } from '../fhir/types.js';

/** Writes a FhirResponse, honouring Prefer: return=minimal | representation | OperationOutcome for writes. */
export function fhirResponse(ctx: Context, request: FhirRequest, response: FhirResponse): void {
  ctx.status = response.status;
  for (const [k, v] of Object.entries(response.headers)) {
    ctx.set(k, v);
  }
  const isWrite = request.method === 'POST' || request.method === 'PUT' || request.method === 'PATCH';
  const isOperation = request.path.includes('$') || request.path === '' || request.path === '/';
  if (response.events) {
    ctx.type = 'text/event-stream';
    ctx.set('Cache-Control', 'no-cache');
    // Proxies must pass each event on at once rather than buffer the stream.
    ctx.set('X-Accel-Buffering', 'no');
    ctx.body = Readable.from(eventStream(response.events));
    return;
  }
  let body = response.resource;
  if (isWrite && !isOperation && body) {
    if (request.preferReturn === 'minimal') {
      body = undefined;
    } else if (request.preferReturn === 'OperationOutcome') {
      body = informational(`${response.status === 201 ? 'Created' : 'Updated'} ${body.resourceType}/${body.id}`);
    }
  }
  if (body?.resourceType === 'Binary' && (request.method === 'GET' || request.method === 'HEAD') && wantsNativeBinary(ctx)) {
    // The native form: the bytes with their own type. Never rendered as active content by a browser on this origin.
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Content-Security-Policy', "sandbox; default-src 'none'");
    ctx.type = body.contentType ?? 'application/octet-stream';
    ctx.body = request.method === 'HEAD' ? null : Buffer.from(body.data ?? '', 'base64');
    ctx.status = response.status;
    return;
  }
  if (response.status === 304 || response.status === 204 || body === undefined || request.method === 'HEAD') {
    ctx.body = null;
    ctx.status = response.status; // setting body to null resets status to 204
    if (body !== undefined && request.method === 'HEAD') {
      ctx.type = 'application/fhir+json';
    }
    return;
  }
  ctx.type = 'application/fhir+json';
  // _pretty (http.html, a general parameter): indented for people reading the response.
  const pretty = request.query.some(([key, value]) => key === '_pretty' && value === 'true');
  ctx.body = pretty ? JSON.stringify(body, null, 2) : JSON.stringify(body);
}

/** A Binary read gets its native form unless the caller asks for FHIR JSON (Accept or _format). */
function wantsNativeBinary(ctx: Context): boolean {
  return !ctx.query._format && !/json/i.test(ctx.get('Accept'));
}

/** Server-Sent Events wire format: one `event:` and one `data:` line (JSON) per event, a blank line after each. */
async function* eventStream(events: AsyncIterable<ServerSentEvent>): AsyncIterable<string> {
  for await (const e of events) {
    yield `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
  }
}
