import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { badRequest } from '../outcome.js';
import { type OperationModule, paramValue } from '../operations.js';

/**
 * Observation/$lastn (R4 Observation-lastn): the most recent `max` Observations for each code,
 * within the Observation search the caller gives (patient, category, code, date…).
 */
export const lastnOperation: OperationModule = {
  definition: {
    resourceType: 'OperationDefinition',
    id: 'Observation-lastn',
    url: 'http://hl7.org/fhir/OperationDefinition/Observation-lastn',
    name: 'LastN',
    status: 'active',
    kind: 'operation',
    code: 'lastn',
    resource: ['Observation'],
    system: false,
    type: true,
    instance: false,
    parameter: [
      { name: 'max', use: 'in', min: 0, max: '1', type: 'positiveInt' },
      { name: 'return', use: 'out', min: 1, max: '1', type: 'Bundle' },
    ],
  },
  takesSearchParameters: true,
  async handler(ctx) {
    const maxRaw = paramValue(ctx.params, 'max');
    const max = maxRaw === undefined ? 1 : Number(maxRaw);
    if (!Number.isInteger(max) || max < 1) {
      throw badRequest(`max must be a positive integer, got "${String(maxRaw)}"`, 'max');
    }
    const criteria = (ctx.params.parameter ?? [])
      .filter((p) => p.name !== 'max' && typeof p.valueString === 'string')
      .map((p) => [p.name, p.valueString as string] as [string, string]);
    if (!criteria.some(([k]) => ['patient', 'subject'].includes(k.split(':')[0]) || k.startsWith('subject.') || k.startsWith('patient.'))) {
      throw badRequest('$lastn needs a patient or subject parameter', 'patient');
    }
    const request = ctx.router.parseSearch('Observation', criteria.filter(([k]) => k !== '_count' && k !== '_sort'), ctx.request.lenient);
    request.sort = [{ param: ctx.router.defs.getSearchParam('Observation', 'date')!, descending: true }];
    const rows = await ctx.router.repo.lastN(request, max, ctx.router.db(ctx.scope));
    const entry: BundleEntry[] = rows.map((r) => ({
      fullUrl: `${ctx.router.options.baseUrl}/Observation/${r.id}`,
      resource: r.resource,
      search: { mode: 'match' },
    }));
    const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: entry.length, entry };
    return bundle;
  },
};
