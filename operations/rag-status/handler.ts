import type { Parameters } from '@medplum/fhirtypes';
import { badRequest } from '../../src/fhir/outcome.js';
import { numberParam, type OperationContext } from '../../src/fhir/operations.js';
import { SOURCE_TYPES } from '../../src/rag/render.js';
import { requireRecordAccess } from '../../src/risk/record-source.js';
import { refreshParts } from '../rag-refresh/handler.js';

/** Patient/[id]/$rag-status: the index's size, any waiting refresh, and its refresh history. */
export async function handler(ctx: OperationContext): Promise<Parameters> {
  requireRecordAccess(ctx.router, ctx.request.access, { alsoRead: [...SOURCE_TYPES] });
  const count = numberParam(ctx.params, '_count') ?? 20;
  if (!Number.isInteger(count) || count < 0 || count > 200) throw badRequest('_count must be a whole number from 0 to 200', '_count');
  const status = await ctx.platform.rag.status(ctx.id!, count);
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'chunks', valueInteger: status.chunks },
      { name: 'sources', valueInteger: status.sources },
      ...(status.pendingRefreshAt ? [{ name: 'pendingRefreshAt', valueInstant: status.pendingRefreshAt }] : []),
      ...(ctx.platform.rag.embeddingModel ? [{ name: 'embeddingModel', valueString: ctx.platform.rag.embeddingModel }] : []),
      ...status.history.map((record) => ({ name: 'refresh', part: refreshParts(record) })),
    ],
  };
}
