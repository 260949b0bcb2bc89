import type { DocumentReference } from '@medplum/fhirtypes';
import { informational } from '../../src/fhir/outcome.js';
import type { OperationContext } from '../../src/fhir/operations.js';
import type { FhirResponse } from '../../src/fhir/types.js';

/** DocumentReference/[id]/$extract: start the pipeline again; 202 with the polling URL. */
export async function handler(ctx: OperationContext): Promise<FhirResponse> {
  const task = await ctx.router.write(ctx.scope, async (w) => {
    const doc = (await ctx.router.repo.read('DocumentReference', ctx.id!, w.tx)).resource as DocumentReference & { id: string };
    if (ctx.request.access) {
      await ctx.router.guard.assertPermits(ctx.request.access, doc, 'u', w.tx);
    }
    return ctx.platform.documents.enqueue(w, doc);
  });
  const base = ctx.router.options.baseUrl;
  return {
    status: 202,
    resource: informational(`Accepted: DocumentReference/${ctx.id} is being processed again by Task/${task.id}`),
    headers: { 'Content-Location': `${base}/Task/${task.id}/$status` },
  };
}
