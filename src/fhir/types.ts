import type { Resource } from '@medplum/fhirtypes';
import type { AccessPolicy } from '../auth/policy.js';

/** The general parameters (http.html) the HTTP layer honours on every interaction: each handler takes them as known and leaves them alone. */
export const FORMAT_PARAMETERS: readonly string[] = ['_format', '_pretty'];

/**
 * A FHIR interaction request, independent of HTTP: the REST layer builds one from a Koa context,
 * and batch/transaction processing builds one per Bundle entry, so both go through one dispatcher.
 */
export interface FhirRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  /** Path below the FHIR base, without leading slash, e.g. "Patient/123/_history/2". */
  path: string;
  query: [string, string][];
  body?: unknown;
  /** Media type of the body when it is not a FHIR resource (JSON Patch, form). */
  contentType?: string;
  ifMatch?: string;
  ifNoneMatch?: string;
  ifNoneExist?: string;
  ifModifiedSince?: string;
  /** X-Security-Context of a Binary sent in its native form: the resource that governs access to it. */
  securityContext?: string;
  /** Prefer: respond-async (R4 §3.1.0.3.6 asynchronous pattern) */
  respondAsync?: boolean;
  /** Prefer: handling=lenient */
  lenient: boolean;
  /** Accept: text/event-stream on an operation: an operation that can stream its answer does (Server-Sent Events). */
  eventStream?: boolean;
  /** Prefer: return=… (R4 §3.1.0.3); bundle entries follow the Prefer header of the Bundle request. */
  preferReturn?: 'minimal' | 'representation' | 'OperationOutcome';
  /** What the caller may do (from the access token); absent only for the server's own internal calls. */
  access?: AccessPolicy;
}

export interface FhirResponse {
  status: number;
  resource?: Resource;
  headers: Record<string, string>;
  /** Server-Sent Events sent instead of a resource, as they come (an operation answering a request with `eventStream`). */
  events?: AsyncIterable<ServerSentEvent>;
}

export interface ServerSentEvent {
  event: string;
  data: unknown;
}
