/** Patient records for operations: read from this server's repository, or from what a caller posted. */
import type { Bundle, Observation, Parameters, Resource } from '@medplum/fhirtypes';
import type { AccessPolicy } from '../auth/policy.js';
import { badRequest } from '../fhir/outcome.js';
import type { FhirRouter } from '../fhir/router.js';
import type { Writer } from '../storage/repository.js';
import { bundleResources, RECORD_RESOURCE_TYPES, type RecordSource } from './patient-record.js';

export function repositorySource(router: FhirRouter, scope: Writer | undefined): RecordSource {
  const db = router.db(scope);
  return {
    search: async (type, query): Promise<Resource[]> =>
      (await router.repo.search({ ...router.parseSearch(type, query, false), count: 100_000, offset: 0 }, db)).map((s) => s.resource!),
    latestObservations: async (ids, codes, perCode): Promise<Observation[]> =>
      (await router.repo.latestObservations(ids, codes, perCode, db)).map((s) => s.resource as Observation),
  };
}

/**
 * 403 unless the caller may read every resource type a record is made of (plus `alsoRead`) and
 * create/update what the operation saves: an operation over the record must not reveal more than
 * the caller could search for.
 */
export function requireRecordAccess(
  router: FhirRouter,
  access: AccessPolicy | undefined,
  options: { alsoRead?: string[]; creates?: string[]; updates?: string[] } = {},
): void {
  if (!access) return;
  for (const type of [...RECORD_RESOURCE_TYPES, ...(options.alsoRead ?? [])]) router.guard.require(access, type, 'r');
  for (const type of options.creates ?? []) router.guard.require(access, type, 'c');
  for (const type of options.updates ?? []) router.guard.require(access, type, 'u');
}

/** The resources a caller posted to a type-level operation: a Bundle body, or Parameters `resource` parts (a Bundle part is unpacked). */
export function postedResources(operation: string, body: Resource | undefined, params: Parameters): Resource[] {
  if (body?.resourceType === 'Bundle') return bundleResources(body as Bundle);
  if (body) throw badRequest(`${operation} takes a Bundle or Parameters, not ${body.resourceType}`);
  return (params.parameter ?? []).flatMap((p) => (p.resource?.resourceType === 'Bundle' ? bundleResources(p.resource as Bundle) : p.resource ? [p.resource] : []));
}
