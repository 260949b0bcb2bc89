import type { HttpClient } from './http-client.js';
import { expectBundle, expectStatus, parseResourceType, ResponseError } from './fhir-json.js';
import type { PatientRef } from './ingest.js';
import type { Report } from './report.js';
import { perSecond, runPool } from './stats.js';
import { HEART_RATE_LOINC, type Random } from './synthetic.js';

export const READ_CONCURRENCY = 8;
export const SEARCH_CONCURRENCY = 4;

export async function benchReads(
  client: HttpClient,
  report: Report,
  rng: Random,
  observationIds: readonly string[],
  count: number,
): Promise<void> {
  report.section(`2. Read by id: GET Observation/<id>, concurrency ${READ_CONCURRENCY}`);
  if (count === 0) {
    report.note('skipped (--reads 0)');
    return;
  }
  if (observationIds.length === 0) {
    report.note('skipped: the ingest returned no Observation ids');
    return;
  }

  const targets = Array.from({ length: count }, () => rng.pick(observationIds));
  const result = await runPool(count, READ_CONCURRENCY, async (i) => {
    const response = await client.get(`Observation/${encodeURIComponent(targets[i])}`);
    expectStatus(response, 200);
    if (parseResourceType(response.body) !== 'Observation') throw new ResponseError('200 but the body is not an Observation');
    return response.ms;
  });

  report.figure('read.reqPerSec', 'throughput', perSecond(result.succeeded, result.elapsedMs), 'req/s');
  report.latencies('read', '', result, [50, 95, 99]);
  report.failures('read', '', result, 'requests');
}

interface SearchQuery {
  key: string;
  label: string;
  path: (patient: PatientRef) => string;
}

const SEARCH_QUERIES: readonly SearchQuery[] = [
  {
    key: 'search.obsByPatientCodeSorted',
    label: `Observation?patient=<id>&code=http://loinc.org|${HEART_RATE_LOINC}&_sort=-date&_count=10`,
    path: (patient) =>
      `Observation?${new URLSearchParams({ patient: patient.id, code: `http://loinc.org|${HEART_RATE_LOINC}`, _sort: '-date', _count: '10' })}`,
  },
  {
    key: 'search.obsBySubject',
    label: 'Observation?subject=Patient/<id>&_count=50',
    path: (patient) => `Observation?${new URLSearchParams({ subject: `Patient/${patient.id}`, _count: '50' })}`,
  },
  {
    key: 'search.patientByName',
    label: 'Patient?name=<family name>',
    path: (patient) => `Patient?${new URLSearchParams({ name: patient.family })}`,
  },
];

export async function benchSearches(
  client: HttpClient,
  report: Report,
  patients: readonly PatientRef[],
  count: number,
): Promise<void> {
  report.section(`3. Searches, ${count} calls each, concurrency ${SEARCH_CONCURRENCY}`);
  if (count === 0) {
    report.note('skipped (--searches 0)');
    return;
  }
  if (patients.length === 0) {
    report.note('skipped: the ingest returned no Patient ids');
    return;
  }

  for (const query of SEARCH_QUERIES) {
    let firstCallEntries: number | undefined;
    const result = await runPool(count, SEARCH_CONCURRENCY, async (i) => {
      // Cycle through the ingested patients so the server cannot answer every call from one cached page.
      const response = await client.get(query.path(patients[i % patients.length]));
      const bundle = expectBundle(response, 200, 'searchset');
      if (i === 0) firstCallEntries = bundle.entry?.length ?? 0;
      return response.ms;
    });

    report.note(query.label);
    report.latencies(query.key, '  ', result, [50, 95]);
    report.figure(`${query.key}.firstCallEntries`, '  entries returned by the first call', firstCallEntries, 'entries', 0);
    report.failures(query.key, '  ', result, 'requests');
  }
}
