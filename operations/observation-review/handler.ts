import type { Observation, Provenance, Quantity } from '@medplum/fhirtypes';
import { REVIEW_TAG } from '../../src/documents/pipeline.js';
import { badRequest } from '../../src/fhir/outcome.js';
import { type OperationContext, paramValue } from '../../src/fhir/operations.js';
import type { FhirRequest } from '../../src/fhir/types.js';

/** Observation/[id]/$review: approve or correct an extracted value; one transaction, with the caller's own access. */
export async function handler(ctx: OperationContext): Promise<Observation> {
  const decision = paramValue(ctx.params, 'decision');
  if (decision !== 'approve' && decision !== 'correct') {
    throw badRequest('$review needs decision = approve or correct', 'decision');
  }
  const corrected = paramValue(ctx.params, 'value') as Quantity | undefined;
  if (decision === 'correct' && typeof corrected?.value !== 'number') {
    throw badRequest('decision=correct needs a value (Quantity with a numeric value)', 'value');
  }
  const reason = paramValue(ctx.params, 'reason');
  const as = (method: FhirRequest['method'], path: string, body?: unknown): FhirRequest => ({ ...ctx.request, method, path, query: [], body, ifMatch: undefined });
  return ctx.router.write(ctx.scope, async (w) => {
    const current = (await ctx.router.repo.read('Observation', ctx.id!, w.tx)).resource as Observation & { id: string };
    if (current.status !== 'preliminary') {
      throw badRequest(`Observation/${ctx.id} is ${current.status}: only preliminary (extracted, unreviewed) values are reviewed`);
    }
    const { tag, ...meta } = current.meta ?? {};
    const tags = (tag ?? []).filter((t) => !(t.system === REVIEW_TAG.system && t.code === REVIEW_TAG.code));
    const next: Observation = {
      ...current,
      meta: tags.length > 0 ? { ...meta, tag: tags } : meta,
      status: 'final',
      ...(decision === 'correct' ? { valueQuantity: { ...current.valueQuantity, ...corrected } } : {}),
    };
    // Through the router with the caller's access, and conditional on the version reviewed.
    const updated = (await ctx.router.handle({ ...as('PUT', `Observation/${current.id}`, next), ifMatch: `W/"${current.meta?.versionId}"` }, w))
      .resource as Observation & { id: string };
    if (decision === 'correct') {
      const who = ctx.request.access?.context.fhirUser;
      const provenance: Provenance = {
        resourceType: 'Provenance',
        target: [{ reference: `Observation/${updated.id}/_history/${updated.meta?.versionId}` }],
        recorded: w.now,
        activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'UPDATE', display: 'revise' }] },
        ...(typeof reason === 'string' ? { reason: [{ text: reason }] } : {}),
        agent: [
          {
            type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'verifier', display: 'Verifier' }] },
            who: who ? { reference: who } : { display: `client ${ctx.request.access?.context.clientId ?? 'internal'}` },
          },
        ],
        entity: [
          { role: 'revision', what: { reference: `Observation/${current.id}/_history/${current.meta?.versionId}` } },
          ...(current.derivedFrom ?? []).map((source) => ({ role: 'source' as const, what: source })),
        ],
      };
      await ctx.router.handle(as('POST', 'Provenance', provenance), w);
    }
    const reviews = await ctx.platform.documents.openReviews(current.id, w.tx);
    for (const task of reviews) {
      await ctx.router.handle(as('PUT', `Task/${task.id}`, { ...task, status: 'completed', lastModified: w.now, output: [{ type: { text: decision }, valueReference: { reference: `Observation/${updated.id}` } }] }), w);
    }
    return updated;
  });
}
