import type { Group, Parameters, ParametersParameter, Patient, RiskAssessment } from '@medplum/fhirtypes';
import { createBackgroundTask, updateBackgroundTask } from '../../src/jobs/background-task.js';
import { badRequest, informational } from '../../src/fhir/outcome.js';
import { numberParam, type OperationContext, type OperationSetup } from '../../src/fhir/operations.js';
import type { FhirRouter } from '../../src/fhir/router.js';
import type { FhirRequest, FhirResponse } from '../../src/fhir/types.js';
import type { Job } from '../../src/jobs/job-queue.js';
import type { ModelRegistry } from '../../src/ml/model-registry.js';
import { loadPatientRecords, recordFromResources } from '../../src/risk/patient-record.js';
import { postedResources, repositorySource, requireRecordAccess } from '../../src/risk/record-source.js';
import type { Writer } from '../../src/storage/repository.js';
import { CONDITIONS, type ConditionCode } from './conditions.js';
import { type AssessOptions, assessRecords, type PatientAssessments, recordCodes } from './engine.js';
import { ASSESSMENT_IDENTIFIER, assessmentPart, identifierValue, riskAssessment, sameAssessment } from './output.js';

/** Groups larger than this are assessed by a durable background job (202 + Task polling). */
export const SYNC_BATCH_LIMIT = 100;
const BATCH_CHUNK = 100;
const BATCH_JOB = 'risk-assess-batch';
const DEFAULT_LOOKBACK_DAYS = 730;

interface BatchPayload {
  taskId: string;
  groupId: string;
  conditions: ConditionCode[];
  lookbackDays: number;
}

/** Registers the batch job handler in whichever process runs jobs. */
export const setup: OperationSetup = ({ router, platform }) => {
  platform.jobs.handle(BATCH_JOB, {
    run: (job: Job) => runBatchJob(router, platform.models, job.payload as BatchPayload),
    failed: async (job: Job, reason: string) => {
      await updateBackgroundTask(router.repo, (job.payload as BatchPayload).taskId, (task) => ({ ...task, status: 'failed', statusReason: { text: reason } }));
    },
  });
};

/**
 * $risk-assess on Patient/[id] (stored record; results saved as RiskAssessments), on Group/[id]
 * (every member; large groups as a job) and on Patient (type level: a posted Bundle or Parameters
 * with the data, nothing saved).
 */
export async function handler(ctx: OperationContext): Promise<Parameters | FhirResponse> {
  const options: AssessOptions = { conditions: parseConditions(ctx.params), lookbackDays: parseLookback(ctx.params), asOf: new Date() };
  const access = ctx.request.access;
  requireRecordAccess(ctx.router, access);
  const models = ctx.platform.models;
  const cardBase = modelCardBase(ctx.router);
  if (ctx.level === 'type') {
    const posted = postedResources('POST Patient/$risk-assess', ctx.bodyResource, ctx.params);
    if (posted.length === 0) throw badRequest('POST Patient/$risk-assess needs the patient data: a Bundle, or Parameters with "resource" parts');
    const record = recordFromResources(posted);
    if (typeof record === 'string') throw badRequest(record);
    const [result] = await assessRecords(models, [record], options);
    return { resourceType: 'Parameters', parameter: result.assessments.map((a) => assessmentPart(a, result.inputs, cardBase)) };
  }
  requireRecordAccess(ctx.router, access, { creates: ['RiskAssessment'], updates: ['RiskAssessment'] });
  if (ctx.resourceType === 'Group') {
    return assessGroup(ctx, options);
  }
  const patient = (await ctx.router.repo.read('Patient', ctx.id!, ctx.router.db(ctx.scope))).resource as Patient;
  const [result] = await assessPatients(ctx.router, models, [patient], options, ctx.scope, ctx.request);
  return { resourceType: 'Parameters', parameter: patientParts(result, cardBase) };
}

function patientParts(result: PatientAssessments & { saved: Map<string, string> }, cardBase: string): ParametersParameter[] {
  const id = result.record.patient.id!;
  return result.assessments.map((a) => assessmentPart(a, result.inputs, cardBase, result.saved.get(identifierValue(id, a.condition))));
}

/** Loads, assesses and saves a set of stored patients in one transaction. */
async function assessPatients(
  router: FhirRouter,
  models: ModelRegistry,
  patients: Patient[],
  options: AssessOptions,
  scope: Writer | undefined,
  request: FhirRequest | undefined,
): Promise<(PatientAssessments & { saved: Map<string, string> })[]> {
  const records = await loadPatientRecords(repositorySource(router, scope), patients, { observationCodes: recordCodes(models, options.conditions) });
  const results = await assessRecords(models, [...records.values()], options);
  const saved = await router.write(scope, async (w) => {
    const ids = new Map<string, string>();
    // By patient only: a system-only identifier match would select every RiskAssessment the server holds.
    const existing = await router.repo.search(
      { ...router.parseSearch('RiskAssessment', [['patient', patients.map((p) => `Patient/${p.id}`).join(',')]], false), count: 100_000, offset: 0 },
      w.tx,
    );
    const byKey = new Map(existing.map((s) => [(s.resource as RiskAssessment).identifier?.find((i) => i.system === ASSESSMENT_IDENTIFIER)?.value, s.resource as RiskAssessment & { id: string }]));
    for (const result of results) {
      const patientId = result.record.patient.id!;
      for (const condition of options.conditions) {
        // Published instruments come first in result.assessments, so the primary answer leads.
        const answered = result.assessments.filter((a) => a.condition === condition && a.status === 'ok');
        if (answered.length === 0) continue;
        const key = identifierValue(patientId, condition);
        const resource = riskAssessment(patientId, answered, result.inputs, options.asOf, modelCardBase(router));
        const current = byKey.get(key);
        if (current && sameAssessment(current, resource)) {
          ids.set(key, current.id);
          continue;
        }
        // Composed by riskAssessment() from typed code and validated by the tests, like the audit trail.
        const stored = current ? await w.updateServerAuthored({ ...resource, id: current.id }) : await w.createServerAuthored(resource);
        if (request) await router.checkWritten(request, stored, current ? 'u' : 'c', w);
        ids.set(key, stored.id);
      }
    }
    return ids;
  });
  return results.map((r) => ({ ...r, saved }));
}

async function assessGroup(ctx: OperationContext, options: AssessOptions): Promise<Parameters | FhirResponse> {
  const group = (await ctx.router.repo.read('Group', ctx.id!, ctx.router.db(ctx.scope))).resource as Group;
  const members = groupPatients(group);
  if (members.length > SYNC_BATCH_LIMIT || ctx.request.respondAsync) {
    const task = await ctx.router.write(ctx.scope, async (w) => {
      const stored = await createBackgroundTask(w, {
        code: BATCH_JOB,
        display: 'Risk assessment of a group',
        focus: `Group/${ctx.id}`,
        input: [
          { type: { text: 'conditions' }, valueString: options.conditions.join(',') },
          { type: { text: 'members' }, valueInteger: members.length },
        ],
      });
      const payload: BatchPayload = { taskId: stored.id, groupId: ctx.id!, conditions: [...options.conditions], lookbackDays: options.lookbackDays };
      await ctx.platform.jobs.enqueue(w.tx, BATCH_JOB, payload);
      return stored;
    });
    ctx.platform.jobs.notify(); // committed now (enqueue's own wake can run before the commit)
    const base = ctx.router.options.baseUrl;
    return {
      status: 202,
      resource: informational(`Accepted: ${members.length} patients of Group/${ctx.id} are being assessed by Task/${task.id}`),
      headers: { 'Content-Location': `${base}/Task/${task.id}/$status` },
    };
  }
  const patients = await readPatients(ctx.router, members, ctx.scope);
  if (ctx.request.access) {
    for (const patient of patients) await ctx.router.guard.assertPermits(ctx.request.access, patient, 'r', ctx.router.db(ctx.scope));
  }
  const results = await assessPatients(ctx.router, ctx.platform.models, patients, options, ctx.scope, ctx.request);
  const cardBase = modelCardBase(ctx.router);
  return {
    resourceType: 'Parameters',
    parameter: results.map((r) => ({
      name: 'patient',
      part: [{ name: 'subject', valueReference: { reference: `Patient/${r.record.patient.id}` } }, ...patientParts(r, cardBase)],
    })),
  };
}

async function runBatchJob(router: FhirRouter, models: ModelRegistry, payload: BatchPayload): Promise<void> {
  await updateBackgroundTask(router.repo, payload.taskId, (task) => ({ ...task, status: 'in-progress', businessStatus: { text: 'ASSESSING' } }));
  const group = (await router.repo.read('Group', payload.groupId)).resource as Group;
  const members = groupPatients(group);
  const options: AssessOptions = { conditions: payload.conditions, lookbackDays: payload.lookbackDays, asOf: new Date(), explain: false };
  const counts = { assessed: 0, saved: 0, insufficient: 0 };
  const chunks: string[][] = [];
  for (let i = 0; i < members.length; i += BATCH_CHUNK) chunks.push(members.slice(i, i + BATCH_CHUNK));
  // Two chunks at a time: one chunk's database writes overlap the other's reading and scoring.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < chunks.length) {
      const patients = await readPatients(router, chunks[next++], undefined);
      const results = await assessPatients(router, models, patients, options, undefined, undefined);
      for (const r of results) {
        counts.assessed++;
        counts.saved += new Set(r.assessments.filter((a) => a.status === 'ok').map((a) => a.condition)).size;
        counts.insufficient += r.assessments.filter((a) => a.status === 'insufficient_data').length;
      }
    }
  };
  await Promise.all([worker(), worker()]);
  await updateBackgroundTask(router.repo, payload.taskId, (task) => ({
    ...task,
    status: 'completed',
    businessStatus: { text: 'COMPLETED' },
    output: [
      { type: { text: 'patients-assessed' }, valueInteger: counts.assessed },
      { type: { text: 'risk-assessments' }, valueInteger: counts.saved },
      { type: { text: 'assessments-insufficient-data' }, valueInteger: counts.insufficient },
    ],
  }));
}

function groupPatients(group: Group): string[] {
  const ids = (group.member ?? [])
    .filter((m) => !m.inactive)
    .map((m) => /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(m.entity.reference ?? '')?.[1])
    .filter((id): id is string => id !== undefined);
  return [...new Set(ids)];
}

async function readPatients(router: FhirRouter, ids: readonly string[], scope: Writer | undefined): Promise<Patient[]> {
  const stored = await router.repo.readMany(ids.map((id) => ({ resourceType: 'Patient', id })), router.db(scope));
  return stored.filter((s) => !s.deleted && s.resource).map((s) => s.resource as Patient);
}

function parseConditions(params: Parameters): ConditionCode[] {
  const values = (params.parameter ?? [])
    .filter((p) => p.name === 'condition')
    .flatMap((p) => String(p.valueCode ?? p.valueString ?? '').split(','))
    .map((c) => c.trim())
    .filter(Boolean);
  const unknown = values.filter((v) => !(CONDITIONS as readonly string[]).includes(v));
  if (unknown.length > 0) {
    throw badRequest(`Unknown condition ${unknown.map((u) => `"${u}"`).join(', ')}; valid conditions are: ${CONDITIONS.join(', ')}`, 'condition');
  }
  return values.length > 0 ? [...new Set(values)] as ConditionCode[] : [...CONDITIONS];
}

function parseLookback(params: Parameters): number {
  const days = numberParam(params, 'lookbackDays');
  if (days === undefined) return DEFAULT_LOOKBACK_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 36_500) throw badRequest('lookbackDays must be a whole number of days between 1 and 36500', 'lookbackDays');
  return days;
}

/** Where model cards are served (GET /models/<name>). */
function modelCardBase(router: FhirRouter): string {
  return `${new URL(router.options.baseUrl).origin}/models`;
}
