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
  warmUp: boolean,
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

  const read = async (id: string): Promise<number> => {
    const response = await client.get(`Observation/${encodeURIComponent(id)}`);
    expectStatus(response, 200);
    if (parseResourceType(response.body) !== 'Observation') throw new ResponseError('200 but the body is not an Observation');
    return response.ms;
  };
  await warmUpFirst(report, 'read', '', warmUp ? count : 0, READ_CONCURRENCY, () => read(rng.pick(observationIds)));
  const targets = Array.from({ length: count }, () => rng.pick(observationIds));
  const result = await runPool(count, READ_CONCURRENCY, (i) => read(targets[i]));

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
  warmUp: boolean,
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
    report.note(query.label);
    let firstCallEntries: number | undefined;
    // Cycle through the ingested patients so the server cannot answer every call from one cached page.
    const search = async (i: number): Promise<number> => {
      const response = await client.get(query.path(patients[i % patients.length]));
      const bundle = expectBundle(response, 200, 'searchset');
      if (i === 0) firstCallEntries ??= bundle.entry?.length ?? 0;
      return response.ms;
    };
    await warmUpFirst(report, query.key, '  ', warmUp ? count : 0, SEARCH_CONCURRENCY, search);
    const result = await runPool(count, SEARCH_CONCURRENCY, search);

    report.latencies(query.key, '  ', result, [50, 95]);
    report.figure(`${query.key}.firstCallEntries`, '  entries returned by the first call', firstCallEntries, 'entries', 0);
    report.failures(query.key, '  ', result, 'requests');
  }
}

/**
 * Untimed calls before a phase: the first calls of a kind pay for the JIT compilation of its code
 * path, in the server and in this client, and for cold database caches, which the figures of a
 * server in service do not include. Reported apart, so nothing measured is hidden.
 */
async function warmUpFirst(
  report: Report,
  key: string,
  indent: string,
  count: number,
  concurrency: number,
  task: (index: number) => Promise<number>,
): Promise<void> {
  if (count === 0) return;
  const result = await runPool(count, concurrency, task);
  report.figure(`${key}.warmUp.reqPerSec`, `${indent}warm-up, ${count} calls first: throughput`, perSecond(result.succeeded, result.elapsedMs), 'req/s');
  report.latencies(`${key}.warmUp`, `${indent}warm-up `, result, [99]);
  report.failures(`${key}.warmUp`, `${indent}warm-up: `, result, 'requests');
}
