import type { Resource } from '@medplum/fhirtypes';
import type { FhirDefinitions, TopLevelElements } from './definitions.js';
import { badRequest } from './outcome.js';

export type Summary = 'true' | 'text' | 'data' | 'count' | 'false';
const SUMMARIES: readonly string[] = ['true', 'text', 'data', 'count', 'false'];

/** A _summary value; `count` only where there is a search (http.html lists _summary for every interaction, count for searches). */
export function parseSummary(value: string, search: boolean): Summary {
  if (!SUMMARIES.includes(value) || (!search && value === 'count')) {
    throw badRequest(`_summary must be true, text, data${search ? ', count' : ''} or false, got "${value}"`, '_summary');
  }
  return value as Summary;
}

export function parseElements(value: string): string[] {
  return value.split(',').map((e) => e.trim()).filter(Boolean);
}

/**
 * _summary and _elements of a read or vread: "general parameters" of every interaction
 * (http.html), so a client can fetch one resource in part as it can a search's matches.
 */
export function subsetForRead(defs: FhirDefinitions, resource: Resource, query: readonly [string, string][]): Resource {
  let summary: Summary | undefined;
  let elements: string[] | undefined;
  for (const [key, value] of query) {
    if (key === '_summary') {
      summary = parseSummary(value, false);
    } else if (key === '_elements') {
      elements = parseElements(value);
    }
  }
  return summary || elements ? applySummary(defs, resource, summary, elements) : resource;
}

/**
 * _summary and _elements (FHIR R4 §3.1.1.5.8–9): subsets of a resource, tagged SUBSETTED so
 * nobody mistakes them for the whole resource and writes them back.
 */
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

/** The element name a JSON key stands for: a choice key such as valueQuantity stands for value. */
function elementName(key: string, elements: TopLevelElements): string {
  for (const choice of elements.choices) {
    if (key.length > choice.length && key.startsWith(choice) && /[A-Z]/.test(key[choice.length])) {
      return choice;
    }
  }
  return key;
}

function subset(resource: Resource, elements: TopLevelElements, keep: (name: string) => boolean): Resource {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) {
    if (key === 'resourceType' || keep(key) || keep(elementName(key, elements))) {
      out[key] = value;
    }
  }
  const meta = (out.meta as Resource['meta']) ?? {};
  out.meta = { ...meta, tag: [...(meta.tag ?? []), SUBSETTED] };
  return out as unknown as Resource;
}

export function applySummary(
  defs: FhirDefinitions,
  resource: Resource,
  summary: Summary | undefined,
  elements?: string[],
): Resource {
  const top = defs.topLevelElements(resource.resourceType);
  if (elements && elements.length > 0) {
    // R4 §3.1.1.5.9: servers SHOULD also return mandatory elements, so the subset stays valid.
    const wanted = new Set([...elements, ...top.mandatory]);
    return subset(resource, top, (k) => wanted.has(k));
  }
  switch (summary) {
    case 'true':
      return subset(resource, top, (k) => top.summary.has(k));
    case 'text':
      return subset(resource, top, (k) => k === 'text' || top.mandatory.has(k));
    case 'data':
      return subset(resource, top, (k) => k !== 'text');
    default:
      return resource;
  }
}
