/**
 * A patient's record as the risk engine reads it: the Patient and the resources its inputs come
 * from, newest first. Loaded from the repository for stored patients (many at once for a batch) or
 * assembled from a posted Bundle for data that is not stored.
 */
import type {
  Bundle,
  Condition,
  MedicationRequest,
  MedicationStatement,
  Observation,
  Patient,
  QuestionnaireResponse,
  Reference,
  Resource,
} from '@medplum/fhirtypes';

export interface PatientRecord {
  patient: Patient;
  /** Newest first (effective date, then issued). */
  observations: Observation[];
  conditions: Condition[];
  medications: (MedicationStatement | MedicationRequest)[];
  /** Newest first (authored). */
  answers: QuestionnaireResponse[];
}

/** Runs an internal search (no paging) and returns the matching resources. */
export type SearchFn = (type: string, query: [string, string][]) => Promise<Resource[]>;

/** What to load beyond the Patient: the observation codes any input reads, and how far back. */
export interface RecordQuery {
  observationCodes: readonly string[];
  since: Date;
}

const RECORD_TYPES = ['Observation', 'Condition', 'MedicationStatement', 'MedicationRequest', 'QuestionnaireResponse'] as const;

/**
 * Records for many patients with one query per resource type (a batch is chunked by the caller):
 * observations are limited to the codes inputs read (code or component code) within the look-back.
 */
export async function loadPatientRecords(search: SearchFn, patients: readonly Patient[], query: RecordQuery): Promise<Map<string, PatientRecord>> {
  const records = new Map<string, PatientRecord>();
  for (const patient of patients) {
    records.set(patient.id!, { patient, observations: [], conditions: [], medications: [], answers: [] });
  }
  if (patients.length === 0) return records;
  const subjects = patients.map((p) => `Patient/${p.id}`).join(',');
  const [observations, conditions, statements, requests, answers] = await Promise.all([
    query.observationCodes.length === 0
      ? Promise.resolve([])
      : search('Observation', [
          ['patient', subjects],
          ['combo-code', query.observationCodes.join(',')],
          ['date', `ge${query.since.toISOString().slice(0, 10)}`],
        ]),
    search('Condition', [['patient', subjects]]),
    search('MedicationStatement', [['patient', subjects]]),
    search('MedicationRequest', [['patient', subjects], ['status', 'active']]),
    search('QuestionnaireResponse', [['patient', subjects]]),
  ]);
  const recordOf = (subject: Reference | undefined): PatientRecord | undefined => records.get(subject?.reference?.replace(/^.*Patient\//, '') ?? '');
  for (const o of observations as Observation[]) recordOf(o.subject)?.observations.push(o);
  for (const c of conditions as Condition[]) recordOf(c.subject)?.conditions.push(c);
  for (const m of [...statements, ...requests] as (MedicationStatement | MedicationRequest)[]) recordOf(m.subject)?.medications.push(m);
  for (const q of answers as QuestionnaireResponse[]) recordOf(q.subject)?.answers.push(q);
  for (const record of records.values()) sortRecord(record);
  return records;
}

/**
 * The record carried by a posted Bundle or by Parameters parts (type-level $risk-assess): exactly
 * one Patient, and the resources about it.
 */
export function recordFromResources(resources: readonly Resource[]): PatientRecord | string {
  const patients = resources.filter((r): r is Patient => r.resourceType === 'Patient');
  if (patients.length !== 1) {
    return `The posted data must contain exactly one Patient (found ${patients.length})`;
  }
  const record: PatientRecord = { patient: patients[0], observations: [], conditions: [], medications: [], answers: [] };
  for (const r of resources) {
    if (r.resourceType === 'Observation') record.observations.push(r);
    else if (r.resourceType === 'Condition') record.conditions.push(r);
    else if (r.resourceType === 'MedicationStatement' || r.resourceType === 'MedicationRequest') record.medications.push(r);
    else if (r.resourceType === 'QuestionnaireResponse') record.answers.push(r);
  }
  sortRecord(record);
  return record;
}

/** The resources of a Bundle's entries, for recordFromResources. */
export function bundleResources(bundle: Bundle): Resource[] {
  return (bundle.entry ?? []).map((e) => e.resource).filter((r): r is Resource => r !== undefined);
}

export const RECORD_RESOURCE_TYPES: readonly string[] = ['Patient', ...RECORD_TYPES];

export function observationDate(o: Observation): string | undefined {
  return o.effectiveDateTime ?? o.effectivePeriod?.end ?? o.effectivePeriod?.start ?? o.effectiveInstant ?? o.issued;
}

function sortRecord(record: PatientRecord): void {
  const newestFirst = (a: string | undefined, b: string | undefined): number => (b ?? '').localeCompare(a ?? '');
  record.observations.sort((a, b) => newestFirst(observationDate(a), observationDate(b)));
  record.answers.sort((a, b) => newestFirst(a.authored, b.authored));
}
