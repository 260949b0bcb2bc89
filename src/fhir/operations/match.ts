import type { Bundle, BundleEntry, Patient } from '@medplum/fhirtypes';
import type { StoredResource } from '../../storage/repository.js';
import { normalizeString } from '../../storage/search-index.js';
import { badRequest } from '../outcome.js';
import { type OperationModule, paramValue } from '../operations.js';

const MATCH_GRADE = 'http://hl7.org/fhir/StructureDefinition/match-grade';

/**
 * Patient/$match (R4 Patient-match): deterministic matching on identifier, name and birth date.
 * Scores: same identifier 1.0 (certain); same family, given and birth date 0.9 (probable);
 * same family and birth date 0.6 (possible); anything less is not returned.
 */
export const matchOperation: OperationModule = {
  definition: {
    resourceType: 'OperationDefinition',
    id: 'Patient-match',
    url: 'http://hl7.org/fhir/OperationDefinition/Patient-match',
    name: 'Match',
    status: 'active',
    kind: 'operation',
    code: 'match',
    resource: ['Patient'],
    system: false,
    type: true,
    instance: false,
    parameter: [
      { name: 'resource', use: 'in', min: 1, max: '1', type: 'Resource' },
      { name: 'onlyCertainMatches', use: 'in', min: 0, max: '1', type: 'boolean' },
      { name: 'count', use: 'in', min: 0, max: '1', type: 'integer' },
      { name: 'return', use: 'out', min: 1, max: '1', type: 'Bundle' },
    ],
  },
  async handler(ctx) {
    if (ctx.request.method !== 'POST') {
      throw badRequest('$match is invoked with POST and a Parameters body holding the Patient');
    }
    const patient = (paramValue(ctx.params, 'resource') ?? ctx.bodyResource) as Patient | undefined;
    if (!patient || patient.resourceType !== 'Patient') {
      throw badRequest('$match needs a Patient in the "resource" parameter', 'resource');
    }
    const onlyCertain = paramValue(ctx.params, 'onlyCertainMatches') === true;
    const count = Number(paramValue(ctx.params, 'count') ?? 10);
    const { router } = ctx;
    const db = router.db(ctx.scope);
    const candidates = new Map<string, StoredResource>();
    const find = async (query: [string, string][]): Promise<void> => {
      const req = router.parseSearch('Patient', query, false);
      for (const r of await router.repo.search({ ...req, count: 100 }, db)) {
        candidates.set(r.id, r);
      }
    };
    for (const id of patient.identifier ?? []) {
      if (id.value) {
        await find([['identifier', id.system ? `${id.system}|${id.value}` : id.value]]);
      }
    }
    const family = patient.name?.[0]?.family;
    if (family && patient.birthDate) {
      await find([['family:exact', family], ['birthdate', patient.birthDate]]);
    }
    const scored = [...candidates.values()]
      .map((c) => ({ c, score: score(patient, c.resource as Patient) }))
      .filter((s) => s.score >= (onlyCertain ? 1 : 0.6))
      .sort((a, b) => b.score - a.score || a.c.id.localeCompare(b.c.id))
      .slice(0, count);
    const entry: BundleEntry[] = scored.map(({ c, score }) => ({
      fullUrl: `${router.options.baseUrl}/Patient/${c.id}`,
      resource: c.resource,
      search: {
        mode: 'match',
        score,
        extension: [{ url: MATCH_GRADE, valueCode: score >= 1 ? 'certain' : score >= 0.9 ? 'probable' : 'possible' }],
      },
    }));
    const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: entry.length, entry };
    return bundle;
  },
};

function score(input: Patient, candidate: Patient): number {
  const sameIdentifier = (input.identifier ?? []).some((a) =>
    (candidate.identifier ?? []).some((b) => a.value && a.value === b.value && (a.system ?? '') === (b.system ?? '')),
  );
  if (sameIdentifier) {
    return 1;
  }
  const norm = (s?: string): string => normalizeString(s ?? '');
  const family = norm(input.name?.[0]?.family);
  const sameFamily = family !== '' && (candidate.name ?? []).some((n) => norm(n.family) === family);
  const sameBirth = !!input.birthDate && input.birthDate === candidate.birthDate;
  const given = norm(input.name?.[0]?.given?.[0]);
  const sameGiven = given !== '' && (candidate.name ?? []).some((n) => (n.given ?? []).some((g) => norm(g) === given));
  if (sameFamily && sameBirth && sameGiven) {
    return 0.9;
  }
  return sameFamily && sameBirth ? 0.6 : 0;
}
