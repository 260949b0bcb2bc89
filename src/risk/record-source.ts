/** Patient records read from this server's repository (the operations' RecordSource). */
import type { Observation, Resource } from '@medplum/fhirtypes';
import type { FhirRouter } from '../fhir/router.js';
import type { Writer } from '../storage/repository.js';
import type { RecordSource } from './patient-record.js';

export function repositorySource(router: FhirRouter, scope: Writer | undefined): RecordSource {
  const db = router.db(scope);
  return {
    search: async (type, query): Promise<Resource[]> =>
      (await router.repo.search({ ...router.parseSearch(type, query, false), count: 100_000, offset: 0 }, db)).map((s) => s.resource!),
    latestObservations: async (ids, codes, perCode): Promise<Observation[]> =>
      (await router.repo.latestObservations(ids, codes, perCode, db)).map((s) => s.resource as Observation),
  };
}
