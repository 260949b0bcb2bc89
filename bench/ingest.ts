import type { HttpClient, HttpResult } from './http-client.js';
import { createdReference, expectBundle, ResponseError } from './fhir-json.js';
import type { GeneratedTransaction } from './synthetic.js';

export interface PreparedTransaction {
  json: string;
  resources: number;
  family: string | undefined;
}

export interface PatientRef {
  id: string;
  family: string;
}

/** Ids the server assigned during ingest, used as targets for the read and search phases. */
export interface IngestedIds {
  patients: PatientRef[];
  observationIds: string[];
}

export function emptyIds(): IngestedIds {
  return { patients: [], observationIds: [] };
}

/** Serialised ahead of time so JSON encoding is not part of the timed loop. */
export function prepare(transaction: GeneratedTransaction): PreparedTransaction {
  return { json: JSON.stringify(transaction.bundle), resources: transaction.resources, family: transaction.family };
}

/** POSTs one transaction to the base URL; resolves with the response time in ms. See recordTransactionResponse. */
export async function postTransaction(
  client: HttpClient,
  transaction: PreparedTransaction,
  ids: IngestedIds,
): Promise<number> {
  const result = await client.postFhir('', transaction.json);
  recordTransactionResponse(result, transaction, ids);
  return result.ms;
}

/**
 * Records the created ids and returns the Patient id, if any.
 * Throws unless the reply is 200 + a transaction-response with one 2xx entry per request entry.
 */
export function recordTransactionResponse(
  result: HttpResult,
  transaction: PreparedTransaction,
  ids: IngestedIds,
): string | undefined {
  const bundle = expectBundle(result, 200, 'transaction-response');
  const entries = bundle.entry ?? [];
  if (entries.length !== transaction.resources) {
    throw new ResponseError(`transaction-response has ${entries.length} entries for ${transaction.resources} requests`);
  }
  const rejected = entries.find((entry) => !entry.response?.status?.startsWith('2'));
  if (rejected) throw new ResponseError(`transaction entry status ${String(rejected.response?.status)}`);

  let patientId: string | undefined;
  for (const entry of entries) {
    const created = createdReference(entry);
    if (created?.resourceType === 'Observation') ids.observationIds.push(created.id);
    if (created?.resourceType === 'Patient') patientId = created.id;
  }
  if (patientId && transaction.family) ids.patients.push({ id: patientId, family: transaction.family });
  return patientId;
}
