import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type { StoredResource } from '../storage/repository.js';
import type { SqlExecutor } from '../storage/sql.js';
import { outcomeOf } from './outcome.js';
import type { FhirRouter } from './router.js';
import type { IncludeRule, SearchRequest } from './search/types.js';
import { applySummary } from './summary.js';

/** Cap on resources added by _include/_revinclude per page, so one page cannot pull a whole database. */
const MAX_INCLUDED = 1000;
const MAX_ITERATIONS = 4;

/** Runs a parsed search and assembles the searchset Bundle: matches, includes, total and paging links. */
export async function executeSearch(router: FhirRouter, req: SearchRequest, db: SqlExecutor): Promise<Bundle> {
  const { repo, options } = router;
  const countOnly = req.summary === 'count' || req.count === 0;
  // One extra row tells whether a next page exists without a count query.
  const rows = countOnly ? [] : await repo.search({ ...req, count: req.count + 1 }, db);
  const hasNext = rows.length > req.count;
  const matches = rows.slice(0, req.count);

  let total: number | undefined;
  const known = !countOnly && !hasNext && (matches.length > 0 || req.offset === 0);
  if (countOnly) {
    total = await repo.count(req, db);
  } else if (req.total !== 'none' && known) {
    total = req.offset + matches.length;
  } else if (req.total === 'accurate' || req.total === 'estimate') {
    total = await repo.count(req, db);
  }

  const included = countOnly ? [] : await resolveIncludes(router, req, matches, db);
  const self = (offset: number): string =>
    `${options.baseUrl}/${req.resourceType}?${req.canonicalQuery}${req.canonicalQuery ? '&' : ''}_offset=${offset}`;
  const link: Bundle['link'] = [{ relation: 'self', url: self(req.offset) }];
  if (!countOnly) {
    link.push({ relation: 'first', url: self(0) });
    if (hasNext) {
      link.push({ relation: 'next', url: self(req.offset + req.count) });
    }
    if (req.offset > 0) {
      link.push({ relation: 'previous', url: self(Math.max(0, req.offset - req.count)) });
    }
  }
  const entry: BundleEntry[] = [
    ...matches.map((m) => toEntry(router, m, 'match', req)),
    ...included.map((m) => toEntry(router, m, 'include', req)),
  ];
  if (req.warnings.length > 0) {
    entry.push({
      resource: outcomeOf(req.warnings.map((w) => ({ severity: 'warning', code: 'not-supported', details: { text: w } }))),
      search: { mode: 'outcome' },
    });
  }
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(total !== undefined ? { total } : {}),
    link,
    ...(entry.length > 0 ? { entry } : {}),
  };
}

function toEntry(router: FhirRouter, stored: StoredResource, mode: 'match' | 'include', req: SearchRequest): BundleEntry {
  return {
    fullUrl: `${router.options.baseUrl}/${stored.resourceType}/${stored.id}`,
    resource: applySummary(router.defs, stored.resource as Resource, req.summary, req.elements),
    search: { mode },
  };
}

async function resolveIncludes(router: FhirRouter, req: SearchRequest, matches: StoredResource[], db: SqlExecutor): Promise<StoredResource[]> {
  if (matches.length === 0 || (req.include.length === 0 && req.revinclude.length === 0)) {
    return [];
  }
  const seen = new Set(matches.map(key));
  const out: StoredResource[] = [];
  let frontier = matches;
  for (let round = 0; round < MAX_ITERATIONS && frontier.length > 0 && out.length < MAX_INCLUDED; round++) {
    // The first round applies every rule to the matches; later rounds only :iterate rules to what was just added.
    const rules = (list: IncludeRule[]): IncludeRule[] => (round === 0 ? list : list.filter((r) => r.iterate));
    const added: StoredResource[] = [];
    for (const rule of rules(req.include)) {
      const sources = frontier.filter((f) => f.resourceType === rule.sourceType);
      if (sources.length === 0) {
        continue;
      }
      const refs = (await router.repo.referencesFrom(sources, rule.param.code, rule.targetType, db)).filter((r) => !seen.has(key(r)));
      for (const found of await router.repo.readMany(refs, db)) {
        addOnce(found, seen, added);
      }
    }
    for (const rule of rules(req.revinclude)) {
      const found = await router.repo.referencing(rule.sourceType, rule.param.code, frontier, MAX_INCLUDED, db);
      for (const f of found) {
        addOnce(f, seen, added);
      }
    }
    out.push(...added);
    frontier = added;
  }
  return out.slice(0, MAX_INCLUDED);
}

function key(r: { resourceType: string; id: string }): string {
  return `${r.resourceType}/${r.id}`;
}

function addOnce(r: StoredResource, seen: Set<string>, out: StoredResource[]): void {
  if (!seen.has(key(r))) {
    seen.add(key(r));
    out.push(r);
  }
}
