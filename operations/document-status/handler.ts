import type { Bundle, BundleEntry, Resource, Task } from '@medplum/fhirtypes';
import { TASK_CODES } from '../../src/documents/pipeline.js';
import { badRequest, FhirError, issue } from '../../src/fhir/outcome.js';
import type { OperationContext } from '../../src/fhir/operations.js';
import type { FhirResponse } from '../../src/fhir/types.js';

const RUNNING = new Set(['draft', 'requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold']);

/**
 * Task/[id]/$status: the asynchronous-request polling location of a carelens background Task (the
 * document pipeline, group risk assessment). A finished document Task answers with what it wrote;
 * other finished Tasks answer with themselves (their outputs).
 */
export async function handler(ctx: OperationContext): Promise<FhirResponse> {
  const task = (await ctx.router.repo.read('Task', ctx.id!, ctx.router.db(ctx.scope))).resource as Task;
  const code = task.code?.coding?.find((c) => c.system === TASK_CODES)?.code;
  if (!code) {
    throw badRequest(`Task/${ctx.id} is not a carelens background Task: $status reports on those only`);
  }
  const stage = task.businessStatus?.text ?? task.status;
  if (RUNNING.has(task.status)) {
    return { status: 202, resource: task, headers: { 'X-Progress': stage, 'Retry-After': '2' } };
  }
  if (task.status !== 'completed') {
    throw new FhirError(422, [issue('processing', `The task could not be processed (${stage}): ${task.statusReason?.text ?? 'no reason recorded'}`)]);
  }
  if (code !== 'extract-document') {
    return { status: 200, resource: task, headers: {} };
  }
  const references = [task.focus?.reference, ...(task.output ?? []).map((o) => o.valueReference?.reference)].filter((r): r is string => Boolean(r));
  const found = await ctx.router.repo.readMany(
    references.map((r) => {
      const [resourceType, id] = r.split('/');
      return { resourceType, id };
    }),
    ctx.router.db(ctx.scope),
  );
  const base = ctx.router.options.baseUrl;
  const entry = (resource: Resource, status: string): BundleEntry => ({
    fullUrl: `${base}/${resource.resourceType}/${resource.id}`,
    resource,
    response: { status, location: `${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`, lastModified: resource.meta?.lastUpdated },
  });
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'batch-response',
    entry: [entry(task, '200 OK'), ...found.map((f) => entry(f.resource!, '201 Created'))],
  };
  return { status: 200, resource: bundle, headers: {} };
}
