import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import type { FhirDefinitions } from './definitions.js';
import { FhirError } from './outcome.js';
import { checkRequiredBindings } from './terminology.js';

export interface ValidationOptions {
  /** Validate against this profile in addition to those in meta.profile. */
  profile?: string;
  /** What an unknown meta.profile is: an error (reject) or a warning. */
  unknownProfile: 'error' | 'warning';
}

/**
 * Validates a resource against the R4 base definition (structure, cardinality, invariants,
 * required value-set bindings) and every profile it claims in meta.profile that the server knows.
 * Returns all issues; callers decide whether errors reject (writes) or are reported ($validate).
 */
export function validate(defs: FhirDefinitions, resource: Resource, options: ValidationOptions): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  if (!defs.isResourceType(resource.resourceType)) {
    return [{ severity: 'error', code: 'invalid', details: { text: `Unknown resource type "${resource.resourceType}"` }, expression: ['resourceType'] }];
  }
  const checked = withoutLargeBinaries(resource) as Resource;
  issues.push(...withoutFalseInvariantFailures(resource, medplumIssues(checked)));
  issues.push(...checkRequiredBindings(resource));

  const profiles = [...(resource.meta?.profile ?? []), ...(options.profile ? [options.profile] : [])];
  for (const url of new Set(profiles)) {
    const profile = defs.getProfile(url);
    if (!profile) {
      issues.push({
        severity: options.unknownProfile,
        code: 'not-supported',
        details: { text: `Profile ${url} is not known to this server; the resource was not checked against it` },
        expression: ['meta.profile'],
      });
      continue;
    }
    issues.push(...medplumIssues(checked, profile));
    issues.push(...checkRequiredBindings(resource, profile));
  }
  // A profile's snapshot repeats the base definition, so a base violation is found once per profile too.
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.severity}|${i.expression?.join()}|${i.details?.text ?? i.diagnostics}`;
    return !seen.has(key) && seen.add(key) !== undefined;
  });
}

/**
 * FHIR caps strings at 1 MB, but not base64Binary content (documents, images); Medplum's validator
 * applies the cap to both. The structure check therefore sees a short stand-in for any `data` value
 * over 1 MB that is plain base64 (Binary.data, Attachment.data, Signature.data); everything else,
 * including over-long strings elsewhere, is checked as sent. Returns the resource itself when no
 * value is replaced, so ordinary resources cost no copy.
 */
const STRING_LIMIT = 1024 * 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function withoutLargeBinaries(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(withoutLargeBinaries);
    return items.some((item, i) => item !== value[i]) ? items : value;
  }
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, v] of Object.entries(value)) {
    const replaced = key === 'data' && typeof v === 'string' && v.length > STRING_LIMIT && BASE64.test(v) ? 'AAAA' : withoutLargeBinaries(v);
    if (replaced !== v) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[key] = replaced;
    }
  }
  return copy ?? value;
}

function medplumIssues(resource: Resource, profile?: StructureDefinition): OperationOutcomeIssue[] {
  try {
    const result = validateResource(resource, profile ? { profile } : undefined);
    return (result ?? []).filter((i) => i.severity === 'error' || i.severity === 'warning');
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      return err.outcome.issue ?? [];
    }
    throw err;
  }
}

/**
 * Medplum evaluates ras-2 ("probability is decimal implies (probability as decimal) <= 100") as failed
 * when a prediction has no probability at all, where FHIRPath gives an empty (passing) result. A
 * category-only prediction (qualitativeRisk without a number) is valid R4, so that report is dropped.
 */
function withoutFalseInvariantFailures(resource: Resource, issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  if (resource.resourceType !== 'RiskAssessment') return issues;
  return issues.filter((issue) => {
    const index = /^Constraint ras-2 /.test(issue.details?.text ?? '') ? /prediction\[(\d+)\]/.exec(issue.expression?.[0] ?? '')?.[1] : undefined;
    return index === undefined || resource.prediction?.[Number(index)]?.probabilityDecimal !== undefined || resource.prediction?.[Number(index)]?.probabilityRange !== undefined;
  });
}

/** For writes: throws 422 with every error found. */
export function assertValid(defs: FhirDefinitions, resource: Resource, options: ValidationOptions): void {
  const issues = validate(defs, resource, options);
  if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
    throw new FhirError(422, issues);
  }
}
