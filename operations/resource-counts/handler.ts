import type { Parameters } from '@medplum/fhirtypes';
import { badRequest } from '../../src/fhir/outcome.js';
import { type OperationContext, paramValue } from '../../src/fhir/operations.js';

/** $resource-counts: the number of current resources per type (the example custom operation). */
export async function handler(ctx: OperationContext): Promise<Parameters> {
  const filter = (paramValue(ctx.params, '_type') as string | undefined)?.split(',').map((t) => t.trim()).filter(Boolean);
  for (const type of filter ?? []) {
    if (!ctx.router.defs.isResourceType(type)) {
      throw badRequest(`Unknown resource type "${type}" in _type`, '_type');
    }
  }
  const rows = await ctx.router.db(ctx.scope).query<{ resource_type: string; total: number | string }>(
    `SELECT resource_type, count(*) AS total FROM resource WHERE NOT deleted AND ($1::text[] IS NULL OR resource_type = ANY($1::text[]))
     GROUP BY resource_type ORDER BY resource_type`,
    [filter ?? null],
  );
  return {
    resourceType: 'Parameters',
    parameter: rows.map((r) => ({
      name: 'count',
      part: [
        { name: 'type', valueCode: r.resource_type },
        { name: 'total', valueInteger: Number(r.total) },
      ],
    })),
  };
}
