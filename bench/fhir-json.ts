import type { Bundle, BundleEntry } from '@medplum/fhirtypes';

import type { HttpResult } from './http-client.js';

export interface CreatedRef {
  resourceType: string;
  id: string;
}

export class ResponseError extends Error {}

type BundleType = NonNullable<Bundle['type']>;

/** Throws a ResponseError unless the response is `expectedStatus` with a Bundle of one of `expectedTypes`. */
export function expectBundle(result: HttpResult, expectedStatus: number, ...expectedTypes: BundleType[]): Bundle {
  expectStatus(result, expectedStatus);
  const bundle = parseBundle(result.body);
  if (!bundle) throw new ResponseError(`HTTP ${result.status} but the body is not a FHIR Bundle: ${snippet(result.body)}`);
  if (!bundle.type || !expectedTypes.includes(bundle.type)) {
    throw new ResponseError(`expected Bundle.type ${expectedTypes.join(' or ')}, got ${String(bundle.type)}`);
  }
  return bundle;
}

export function parseBundle(body: string): Bundle | undefined {
  const value = parseJson(body);
  if (!isObject(value) || value.resourceType !== 'Bundle') return undefined;
  if (value.entry !== undefined && !Array.isArray(value.entry)) return undefined;
  return value as unknown as Bundle;
}

export function expectStatus(result: HttpResult, expectedStatus: number): void {
  if (result.status !== expectedStatus) throw new ResponseError(`HTTP ${result.status}: ${snippet(result.body)}`);
}

export function parseResourceType(body: string): string | undefined {
  const value = parseJson(body);
  return isObject(value) && typeof value.resourceType === 'string' ? value.resourceType : undefined;
}

export function nextLink(bundle: Bundle): string | undefined {
  return bundle.link?.find((link) => link.relation === 'next')?.url;
}

/** Type and id of what a transaction-response entry created, from response.location or the returned resource. */
export function createdReference(entry: BundleEntry): CreatedRef | undefined {
  const location = entry.response?.location;
  if (location) {
    // Accepts "Observation/abc", "Observation/abc/_history/1" and absolute URLs ending that way.
    const match = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?\/?$/.exec(location.split('?')[0]);
    if (match) return { resourceType: match[1], id: match[2] };
  }
  const resource = entry.resource;
  return resource?.id ? { resourceType: resource.resourceType, id: resource.id } : undefined;
}

export function snippet(body: string, length = 500): string {
  return body.length > length ? `${body.slice(0, length)}…` : body;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
