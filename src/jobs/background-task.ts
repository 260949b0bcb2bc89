/**
 * The Task a client polls (Task/[id]/$status) while a background job works for it: created in the
 * transaction that enqueues the job, then moved through its statuses by the job.
 */
import type { Task, TaskInput } from '@medplum/fhirtypes';
import { TASK_CODES } from '../documents/pipeline.js';
import type { Repository, Writer } from '../storage/repository.js';

export async function createBackgroundTask(
  w: Writer,
  spec: { code: string; display: string; focus: string; for?: string; input?: TaskInput[] },
): Promise<Task & { id: string }> {
  const stored = await w.create<Task>({
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    code: { coding: [{ system: TASK_CODES, code: spec.code, display: spec.display }] },
    focus: { reference: spec.focus },
    ...(spec.for ? { for: { reference: spec.for } } : {}),
    authoredOn: w.now,
    ...(spec.input ? { input: spec.input } : {}),
  });
  return stored.resource as Task & { id: string };
}

export async function updateBackgroundTask(repo: Repository, id: string, change: (task: Task & { id: string }) => Task): Promise<void> {
  await repo.transaction(async (w) => {
    const task = (await repo.read('Task', id, w.tx)).resource as Task & { id: string };
    await w.update({ ...change(task), id, lastModified: w.now } as Task & { id: string });
  });
}
