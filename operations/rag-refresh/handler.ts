import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest, informational } from '../../src/fhir/outcome.js';
import { paramValue, type OperationContext, type OperationSetup } from '../../src/fhir/operations.js';
import type { FhirResponse } from '../../src/fhir/types.js';
import { createBackgroundTask, updateBackgroundTask } from '../../src/jobs/background-task.js';
import type { Job } from '../../src/jobs/job-queue.js';
import type { RefreshReason, RefreshRecord } from '../../src/rag/rag-index.js';
import { SOURCE_TYPES } from '../../src/rag/render.js';
import { requireRecordAccess } from '../../src/risk/record-source.js';

/** More changed sources than this are refreshed by a background job (202 + Task polling). */
export const SYNC_REFRESH_LIMIT = 1000;
const REQUEST_JOB = 'rag-refresh-request';
const CALLER_REASONS: readonly RefreshReason[] = ['manual', 'new_report', 'consultation_update'];
/** The insights a refresh makes stale, recomputed by their own operations. */
const INSIGHT_OPERATIONS = ['risk-assess', 'health-score'];

interface RequestPayload {
  taskId: string;
  patientId: string;
  reason: RefreshReason;
  requestedAt: string;
}

export const setup: OperationSetup = ({ router, platform }) => {
  platform.rag.insights.push(async (patientId) => {
    for (const operation of INSIGHT_OPERATIONS) {
      await router.operations!.invoke(
        { method: 'POST', path: `Patient/${patientId}/$${operation}`, query: [], lenient: false },
        { level: 'instance', resourceType: 'Patient', id: patientId, operation },
      );
    }
  });
  platform.jobs.handle(REQUEST_JOB, {
    run: async (job: Job) => {
      const payload = job.payload as RequestPayload;
      await updateBackgroundTask(router.repo, payload.taskId, (task) => ({ ...task, status: 'in-progress', businessStatus: { text: 'REFRESHING' } }));
      const record = await platform.rag.run(payload.patientId, { trigger: 'request', reason: payload.reason, requestedAt: payload.requestedAt });
      await updateBackgroundTask(router.repo, payload.taskId, (task) => ({
        ...task,
        status: 'completed',
        businessStatus: { text: 'COMPLETED' },
        output: refreshParts(record)
          .filter((p) => p.name !== 'change')
          .map((p) => ({ type: { text: p.name }, ...valueOf(p) })),
      }));
    },
    failed: async (job: Job, reason: string) => {
      await updateBackgroundTask(router.repo, (job.payload as RequestPayload).taskId, (task) => ({ ...task, status: 'failed', statusReason: { text: reason } }));
    },
  });
};

/** Patient/[id]/$rag-refresh: refresh now (Parameters describing the refresh), or as a background job for large changes. */
export async function handler(ctx: OperationContext): Promise<Parameters | FhirResponse> {
  requireRecordAccess(ctx.router, ctx.request.access, { alsoRead: [...SOURCE_TYPES] });
  const reason = (paramValue(ctx.params, 'reason') as string | undefined) ?? 'manual';
  if (!CALLER_REASONS.includes(reason as RefreshReason)) {
    throw badRequest(`reason must be one of ${CALLER_REASONS.join(', ')}`, 'reason');
  }
  const rag = ctx.platform.rag;
  const patientId = ctx.id!;
  const requestedAt = new Date().toISOString();
  if (ctx.request.respondAsync || (await rag.pendingChanges(patientId)) > SYNC_REFRESH_LIMIT) {
    const task = await ctx.router.write(ctx.scope, async (w) => {
      const created = await createBackgroundTask(w, { code: REQUEST_JOB, display: "Refresh of a patient's knowledge index", focus: `Patient/${patientId}`, for: `Patient/${patientId}` });
      await ctx.platform.jobs.enqueue(w.tx, REQUEST_JOB, { taskId: created.id, patientId, reason: reason as RefreshReason, requestedAt } satisfies RequestPayload);
      return created;
    });
    ctx.platform.jobs.notify();
    return {
      status: 202,
      resource: informational(`Accepted: the knowledge index of Patient/${patientId} is being refreshed by Task/${task.id}`),
      headers: { 'Content-Location': `${ctx.router.options.baseUrl}/Task/${task.id}/$status` },
    };
  }
  const record = await rag.run(patientId, { trigger: 'request', reason: reason as RefreshReason, requestedAt });
  return { resourceType: 'Parameters', parameter: refreshParts(record) };
}

/** A refresh as Parameters parts (also each history entry of $rag-status). */
export function refreshParts(record: RefreshRecord): ParametersParameter[] {
  return [
    ...(record.version !== undefined ? [{ name: 'version', valueInteger: record.version }] : []),
    { name: 'reason', valueCode: record.reason },
    { name: 'trigger', valueCode: record.trigger },
    { name: 'requestedAt', valueInstant: record.requestedAt },
    { name: 'finishedAt', valueInstant: record.finishedAt },
    ...(record.insightsAt ? [{ name: 'insightsAt', valueInstant: record.insightsAt }] : []),
    { name: 'added', valueInteger: record.added },
    { name: 'updated', valueInteger: record.updated },
    { name: 'removed', valueInteger: record.removed },
    { name: 'chunks', valueInteger: record.chunks },
    ...record.changes.map((c) => ({
      name: 'change',
      part: [
        { name: 'source', valueReference: { reference: c.source } },
        { name: 'change', valueCode: c.change },
        ...(c.version ? [{ name: 'version', valueString: c.version }] : []),
      ],
    })),
  ];
}

function valueOf(p: ParametersParameter): Pick<ParametersParameter, 'valueInteger' | 'valueCode' | 'valueInstant'> {
  return p.valueInteger !== undefined ? { valueInteger: p.valueInteger } : p.valueInstant ? { valueInstant: p.valueInstant } : { valueCode: p.valueCode };
}
