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

const BY_CODE = new WeakMap<PatientRecord, Map<string, Observation[]>>();

/** The record's observations with any of these "system|code"s (own code or a component's), newest first. */
export function observationsWithCodes(record: PatientRecord, codes: readonly string[]): Observation[] {
  let index = BY_CODE.get(record);
  if (!index) {
    index = new Map();
    for (const o of record.observations) {
      const keys = new Set([...(o.code?.coding ?? []), ...(o.component ?? []).flatMap((c) => c.code?.coding ?? [])].map((c) => `${c.system}|${c.code}`));
      for (const key of keys) {
        const list = index.get(key) ?? [];
        list.push(o);
        index.set(key, list);
      }
    }
    BY_CODE.set(record, index);
  }
  if (codes.length === 1) return index.get(codes[0]) ?? [];
  const found = new Set(codes.flatMap((code) => index!.get(code) ?? []));
  return record.observations.filter((o) => found.has(o));
}

/** Where records come from: internal searches (no paging) and the newest observations per patient and code. */
export interface RecordSource {
  search(type: string, query: [string, string][]): Promise<Resource[]>;
  latestObservations(patientIds: readonly string[], codes: readonly string[], perCode: number): Promise<Observation[]>;
}

/** What to load beyond the Patient: the observation codes any input reads (the look-back applies when inputs resolve). */
export interface RecordQuery {
  observationCodes: readonly string[];
}

/**
 * Results kept per code: the latest value, earlier ones when it is implausible, and enough history
 * to confirm a result persisting over 3 months (CKD).
 */
const RESULTS_PER_CODE = 8;

const RECORD_TYPES = ['Observation', 'Condition', 'MedicationStatement', 'MedicationRequest', 'QuestionnaireResponse'] as const;

/**
 * Records for many patients with one query per resource type (a batch is chunked by the caller):
 * observations are limited to the newest few per code that inputs read (code or component code).
 */
export async function loadPatientRecords(source: RecordSource, patients: readonly Patient[], query: RecordQuery): Promise<Map<string, PatientRecord>> {
  const records = new Map<string, PatientRecord>();
  for (const patient of patients) {
    records.set(patient.id!, { patient, observations: [], conditions: [], medications: [], answers: [] });
  }
  if (patients.length === 0) return records;
  const subjects = patients.map((p) => `Patient/${p.id}`).join(',');
  const [observations, conditions, statements, requests, answers] = await Promise.all([
    source.latestObservations(patients.map((p) => p.id!), query.observationCodes, RESULTS_PER_CODE),
    source.search('Condition', [['patient', subjects]]),
    source.search('MedicationStatement', [['patient', subjects]]),
    source.search('MedicationRequest', [['patient', subjects], ['status', 'active']]),
    source.search('QuestionnaireResponse', [['patient', subjects]]),
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

const NO_RESULT = new Set(['entered-in-error', 'cancelled', 'registered']);

/** Whether an Observation carries a result (not withdrawn, cancelled or merely registered). */
export function isResulted(o: Observation): boolean {
  return !NO_RESULT.has(o.status);
}

/** The newest resulted Observation coded with any of these LOINC codes, if the record has one. */
export function latestObservation(record: PatientRecord, loincCodes: readonly string[]): Observation | undefined {
  let best: { observation: Observation; time: number } | undefined;
  for (const o of record.observations) {
    const date = observationDate(o);
    if (!date || !isResulted(o) || !o.code?.coding?.some((c) => c.system === 'http://loinc.org' && loincCodes.includes(c.code!))) continue;
    const time = Date.parse(date);
    if (!best || time > best.time) best = { observation: o, time };
  }
  return best?.observation;
}

export function observationDate(o: Observation): string | undefined {
  return o.effectiveDateTime ?? o.effectivePeriod?.end ?? o.effectivePeriod?.start ?? o.effectiveInstant ?? o.issued;
}

function sortRecord(record: PatientRecord): void {
  const newestFirst = (a: string | undefined, b: string | undefined): number => (b ?? '').localeCompare(a ?? '');
  record.observations.sort((a, b) => newestFirst(observationDate(a), observationDate(b)));
  record.answers.sort((a, b) => newestFirst(a.authored, b.authored));
}
