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
  // A byte order mark is not part of the JSON (RFC 8259 §8.1 lets a reader ignore one; some clients send it).
  const text = Buffer.concat(chunks).toString('utf8').replace(/^\uFEFF/, '');
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
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw badRequest(`The body is not valid JSON: ${(err as Error).message}`);
  }
  const repeated = repeatedProperty(text);
  if (repeated !== undefined) {
    throw badRequest(`The body names the property "${repeated}" twice in one object: FHIR JSON names each property once, and reading it would silently keep only the last value`);
  }
  return { body, contentType };
}

/**
 * The first property name an object of (valid) JSON repeats, which JSON.parse resolves by keeping
 * the last value. One pass over the text: string contents are skipped with indexOf, so a large
 * base64 attachment costs little.
 */
function repeatedProperty(text: string): string | undefined {
  const objects: (Set<string> | undefined)[] = []; // a Set per open object, undefined per open array
  let expectingName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = text.indexOf('"', i + 1);
      while (isEscaped(text, end)) {
        end = text.indexOf('"', end + 1);
      }
      const names = objects[objects.length - 1];
      if (expectingName && names) {
        const raw = text.slice(i + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (names.has(name)) {
          return name;
        }
        names.add(name);
        expectingName = false;
      }
      i = end;
    } else if (c === '{') {
      objects.push(new Set());
      expectingName = true;
    } else if (c === '[') {
      objects.push(undefined);
    } else if (c === '}' || c === ']') {
      objects.pop();
    } else if (c === ',') {
      expectingName = objects[objects.length - 1] !== undefined;
    }
  }
  return undefined;
}

/** Whether the quote at `at` is escaped: preceded by an odd number of backslashes. */
function isEscaped(text: string, at: number): boolean {
  let backslashes = 0;
  while (text[at - 1 - backslashes] === '\\') {
    backslashes++;
  }
  return backslashes % 2 === 1;
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
