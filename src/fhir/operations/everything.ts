import type { Bundle } from '@medplum/fhirtypes';
import { badRequest } from '../outcome.js';
import { type OperationModule, paramValue } from '../operations.js';
import { dateRange, MAX_INSTANT, MIN_INSTANT } from '../search/ranges.js';

/**
 * Patient/$everything (R4 Patient-everything): the patient and every resource in its patient
 * compartment, paged, with _since, _type, and start / end. Those are care dates, not record dates:
 * a resource is kept when its clinical date (its type's `date` search parameter: an Observation's
 * effective time, an Encounter's period, …) meets the range, or when it has none to judge by (the
 * Patient, a Medication, a Condition, which R4 gives no `date`): a record export leaves out only
 * what is known to lie outside.
 */
export const everythingOperation: OperationModule = {
  definition: {
    resourceType: 'OperationDefinition',
    id: 'Patient-everything',
    url: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
    name: 'Everything',
    status: 'active',
    kind: 'operation',
    code: 'everything',
    resource: ['Patient'],
    system: false,
    type: false,
    instance: true,
    parameter: [
      { name: 'start', use: 'in', min: 0, max: '1', type: 'date' },
      { name: 'end', use: 'in', min: 0, max: '1', type: 'date' },
      { name: '_since', use: 'in', min: 0, max: '1', type: 'instant' },
      { name: '_type', use: 'in', min: 0, max: '*', type: 'code' },
      { name: '_count', use: 'in', min: 0, max: '1', type: 'integer' },
      { name: '_offset', use: 'in', min: 0, max: '1', type: 'integer' },
      { name: 'return', use: 'out', min: 1, max: '1', type: 'Bundle' },
    ],
  },
  async handler(ctx) {
    const { router, id } = ctx;
    const since = paramValue(ctx.params, '_since') as string | undefined;
    if (since !== undefined && !dateRange(since)) {
      throw badRequest(`_since must be an instant, got "${since}"`, '_since');
    }
    const types = (paramValue(ctx.params, '_type') as string | undefined)?.split(',').map((t) => t.trim()).filter(Boolean);
    for (const t of types ?? []) {
      if (!router.defs.isResourceType(t)) {
        throw badRequest(`Unknown resource type "${t}" in _type`, '_type');
      }
    }
    const [start, end] = (['start', 'end'] as const).map((name) => {
      const value = paramValue(ctx.params, name) as string | undefined;
      const range = value === undefined ? undefined : dateRange(value);
      if (value !== undefined && !range) {
        throw badRequest(`${name} must be a date, got "${value}"`, name);
      }
      return value === undefined ? undefined : { value, range: range! };
    });
    const count = Math.min(intOf(paramValue(ctx.params, '_count'), 5000, '_count'), 10000);
    const offset = intOf(paramValue(ctx.params, '_offset'), 0, '_offset');
    const params: unknown[] = [[`Patient/${id}`]];
    let where = 'compartments @> $1::text[] AND NOT deleted';
    if (since) {
      params.push(dateRange(since)!.low);
      where += ` AND last_updated >= $${params.length}`;
    }
    if (start || end) {
      params.push(start?.range.low ?? MIN_INSTANT, end?.range.high ?? MAX_INSTANT);
      const clinicalDate = `FROM sp_date d WHERE d.resource_type = r.resource_type AND d.id = r.id AND d.code = 'date'`;
      where += ` AND (NOT EXISTS (SELECT 1 ${clinicalDate})
        OR EXISTS (SELECT 1 ${clinicalDate} AND d.low < $${params.length}::timestamptz AND d.high > $${params.length - 1}::timestamptz))`;
    }
    if (types) {
      params.push(types);
      where += ` AND resource_type = ANY($${params.length}::text[])`;
    } else {
      // The audit trail names the patient (so it is in their compartment) but is not part of their record.
      where += ` AND resource_type <> 'AuditEvent'`;
    }
    const rows = await router.db(ctx.scope).query<{ resource_type: string; id: string; content: unknown }>(
      `SELECT resource_type, id, content FROM resource r WHERE ${where}
       ORDER BY (resource_type = 'Patient') DESC, resource_type, id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, count + 1, offset],
    );
    const base = router.options.baseUrl;
    const hasNext = rows.length > count;
    const page = rows.slice(0, count);
    const link = (o: number): string =>
      `${base}/Patient/${id}/$everything?${new URLSearchParams([
        ...(start ? [['start', start.value] as [string, string]] : []),
        ...(end ? [['end', end.value] as [string, string]] : []),
        ...(since ? [['_since', since] as [string, string]] : []),
        ...(types ? [['_type', types.join(',')] as [string, string]] : []),
        ['_count', String(count)],
        ['_offset', String(o)],
      ]).toString()}`;
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      ...(hasNext || offset > 0 ? {} : { total: page.length }),
      link: [{ relation: 'self', url: link(offset) }, ...(hasNext ? [{ relation: 'next', url: link(offset + count) }] : [])],
      entry: page.map((r) => ({
        fullUrl: `${base}/${r.resource_type}/${r.id}`,
        resource: router.repo.decode(r.content),
        search: { mode: 'match' },
      })),
    };
    return bundle;
  },
};

function intOf(value: unknown, fallback: number, name: string): number {
  if (value === undefined) {
    return fallback;
  }
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw badRequest(`${name} must be a non-negative integer`, name);
  }
  return n;
}
