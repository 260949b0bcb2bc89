import type { Context } from 'koa';
import { badRequest, FhirError, issue } from '../fhir/outcome.js';
import { parseMultipart } from './multipart.js';

const JSON_TYPES = ['application/fhir+json', 'application/json', 'application/json-patch+json'];
const FORM = 'application/x-www-form-urlencoded';
const MULTIPART = 'multipart/form-data';

/**
 * Reads the request body: FHIR JSON, JSON Patch, a search form, or (where `raw` allows, i.e. a
 * Binary written in its native form) any other media type as bytes. Enforces the size limit
 * while streaming (413 before the whole body is buffered) and answers 415 for other media types.
 */
export async function readBody(ctx: Context, maxBytes: number, raw = false): Promise<{ body?: unknown; contentType?: string }> {
  if (!ctx.get('Content-Length') && !ctx.get('Transfer-Encoding')) {
    return {}; // no body (GET, HEAD, most DELETEs): skip reading the stream
  }
  const length = Number(ctx.get('Content-Length') || 0);
  if (length > maxBytes) {
    throw tooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      throw tooLarge(maxBytes);
    }
    chunks.push(chunk as Buffer);
  }
  const contentType = (ctx.get('Content-Type').split(';')[0] || '').trim().toLowerCase();
  if (size === 0) {
    // An empty Binary is still a Binary (refused later, with a reason, if it claims to be a document).
    return raw && contentType && !JSON_TYPES.includes(contentType) ? { body: Buffer.alloc(0), contentType } : {};
  }
  if (raw && contentType && !JSON_TYPES.includes(contentType) && !contentType.includes('xml')) {
    return { body: Buffer.concat(chunks), contentType };
  }
  if (contentType === MULTIPART) {
    return { body: await parseMultipart(Buffer.concat(chunks), ctx.get('Content-Type')), contentType: 'application/fhir+json' };
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (contentType === FORM) {
    return { body: text, contentType };
  }
  if (contentType.includes('xml')) {
    throw new FhirError(415, [issue('not-supported', 'XML is not supported: send application/fhir+json')]);
  }
  if (!JSON_TYPES.includes(contentType)) {
    throw new FhirError(415, [
      issue('not-supported', `Unsupported Content-Type "${contentType || '(none)'}": send application/fhir+json`),
    ]);
  }
  try {
    return { body: JSON.parse(text), contentType };
  } catch (err) {
    throw badRequest(`The body is not valid JSON: ${(err as Error).message}`);
  }
}

function tooLarge(maxBytes: number): FhirError {
  return new FhirError(413, [issue('too-costly', `The request body exceeds the limit of ${maxBytes} bytes`)]);
}

/**
 * _format and Accept: this server speaks FHIR JSON only, except that a Binary is read in its native
 * form (R4 Binary §2.42.1) when the caller does not ask for JSON.
 */
export function checkAcceptable(ctx: Context, nativeAllowed = false, eventStreamAllowed = false): void {
  if ((nativeAllowed || (eventStreamAllowed && acceptsEventStream(ctx))) && !ctx.query._format) {
    return;
  }
  const format = ctx.query._format;
  const f = Array.isArray(format) ? format[0] : format;
  if (f && !['json', 'application/json', 'application/fhir+json'].includes(f)) {
    throw new FhirError(406, [issue('not-supported', `_format=${f} is not supported: this server produces application/fhir+json only`)]);
  }
  const accept = ctx.get('Accept');
  // Most clients send */* or a JSON type: only run full negotiation for anything else.
  if (accept && accept !== '*/*' && !accept.includes('json') && !ctx.accepts('application/fhir+json', 'application/json', 'json')) {
    throw new FhirError(406, [issue('not-supported', `Cannot produce ${accept}: this server produces application/fhir+json only`)]);
  }
}

/** The caller asks for Server-Sent Events (a streaming operation's answer). */
export function acceptsEventStream(ctx: Context): boolean {
  return /text\/event-stream/i.test(ctx.get('Accept'));
}

/** A JSON object body (admin APIs, CDS Hooks): 400 for anything else. */
export async function readJsonObject(ctx: Context, maxBytes: number): Promise<Record<string, unknown>> {
  const { body } = await readBody(ctx, maxBytes);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}
