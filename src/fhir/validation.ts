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
  issues.push(...medplumIssues(resource));
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
    issues.push(...medplumIssues(resource, profile));
    issues.push(...checkRequiredBindings(resource, profile));
  }
  // A profile's snapshot repeats the base definition, so a base violation is found once per profile too.
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.severity}|${i.expression?.join()}|${i.details?.text ?? i.diagnostics}`;
    return !seen.has(key) && seen.add(key) !== undefined;
  });
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

/** For writes: throws 422 with every error found. */
export function assertValid(defs: FhirDefinitions, resource: Resource, options: ValidationOptions): void {
  const issues = validate(defs, resource, options);
  if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
    throw new FhirError(422, issues);
  }
}
