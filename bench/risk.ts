import { performance } from 'node:perf_hooks';

import type { Patient } from '@medplum/fhirtypes';
import { describeError, type HttpClient } from './http-client.js';
import { ResponseError } from './fhir-json.js';
import { emptyIds, postTransaction, prepare, recordTransactionResponse } from './ingest.js';
import type { Report } from './report.js';
import { runPool } from './stats.js';
import { observationTransaction, patientTransaction, type Random } from './synthetic.js';

const RISK_RUNS = 50;
const RISK_WARM_UP = 3;
const BATCH_INGEST_CLIENTS = 4;
const POLL_MS = 100;
const MAX_ENTRIES_PER_BUNDLE = 500;

/**
 * Patient/$risk-assess for every condition on one patient with `observations` Observations
 * (latency), then Group/$risk-assess over `batch` patients (throughput, run as a background job).
 */
export async function benchRisk(client: HttpClient, report: Report, rng: Random, observations: number, batch: number, tag: string): Promise<void> {
  report.section(`5. $risk-assess: all conditions on one patient with ${observations} Observations, ${RISK_RUNS} runs; then a ${batch}-patient Group`);
  if (observations > 0) await singlePatient(client, report, rng, observations, tag);
  if (batch > 0) await group(client, report, rng, batch, tag);
}

/** An adult in every instrument's age range, so all of them compute. */
function adult<T extends { bundle: { entry?: { resource?: unknown }[] } }>(transaction: T, rng: Random): T {
  const patient = transaction.bundle.entry![0].resource as Patient;
  patient.birthDate = `${rng.int(1950, 1990)}-0${rng.int(1, 9)}-1${rng.int(0, 9)}`;
  return transaction;
}

async function singlePatient(client: HttpClient, report: Report, rng: Random, observations: number, tag: string): Promise<void> {
  const ids = emptyIds();
  const first = prepare(adult(patientTransaction(rng, Math.min(observations, MAX_ENTRIES_PER_BUNDLE), `${tag}-risk`), rng));
  let patientId: string | undefined;
  try {
    patientId = recordTransactionResponse(await client.postFhir('', first.json), first, ids);
    for (let remaining = observations - MAX_ENTRIES_PER_BUNDLE; remaining > 0; remaining -= MAX_ENTRIES_PER_BUNDLE) {
      await postTransaction(client, prepare(observationTransaction(rng, `Patient/${patientId}`, Math.min(remaining, MAX_ENTRIES_PER_BUNDLE))), ids);
    }
  } catch (err) {
    report.note(`skipped: ingesting the patient failed: ${describeError(err)}`);
    return;
  }
  const assess = async (): Promise<number> => {
    const result = await client.postFhir(`Patient/${patientId}/$risk-assess`, '{"resourceType":"Parameters"}');
    if (result.status !== 200) throw new ResponseError(`$risk-assess answered ${result.status}`);
    return result.ms;
  };
  for (let i = 0; i < RISK_WARM_UP; i++) await assess().catch(() => undefined);
  const result = await runPool(RISK_RUNS, 1, assess);
  report.note(`Patient/${patientId} (${ids.observationIds.length} Observations), all conditions, sequential requests`);
  report.latencies('risk.single', '  ', result, [50, 95, 99]);
  report.failures('risk.single', '  ', result, 'requests');
}

async function group(client: HttpClient, report: Report, rng: Random, size: number, tag: string): Promise<void> {
  const ids = emptyIds();
  const bundles = Array.from({ length: size }, () => prepare(adult(patientTransaction(rng, 21, `${tag}-batch`), rng)));
  const ingest = await runPool(size, BATCH_INGEST_CLIENTS, (i) => postTransaction(client, bundles[i], ids));
  if (ingest.failures > 0) report.note(`${ingest.failures} patient bundles failed: ${ingest.firstFailure}`);
  const members = ids.patients.map((p) => ({ entity: { reference: `Patient/${p.id}` } }));
  const created = await client.postFhir('Group', JSON.stringify({ resourceType: 'Group', type: 'person', actual: true, member: members }));
  if (created.status !== 201) {
    report.note(`skipped: creating the Group failed with ${created.status}`);
    return;
  }
  const groupId = (JSON.parse(created.body) as { id: string }).id;
  const started = performance.now();
  const accepted = await client.postFhir(`Group/${groupId}/$risk-assess`, '{"resourceType":"Parameters"}');
  const statusUrl = accepted.headers['content-location'];
  if (accepted.status !== 202 || typeof statusUrl !== 'string') {
    report.note(`skipped: Group/$risk-assess answered ${accepted.status} without a status URL`);
    return;
  }
  for (;;) {
    const status = await client.getUrl(new URL(statusUrl));
    if (status.status === 200) break;
    if (status.status !== 202) {
      report.note(`the batch job failed: ${status.status} ${status.body.slice(0, 200)}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  const seconds = (performance.now() - started) / 1000;
  report.figure('risk.batchPatients', 'patients in the Group', members.length, 'patients', 0);
  report.figure('risk.batchSeconds', 'Group/$risk-assess, 202 to completed Task', seconds, 's', 2);
  report.figure('risk.batchRate', 'batch throughput', members.length / seconds, 'patients/s', 0);
}
