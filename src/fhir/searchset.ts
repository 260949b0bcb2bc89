import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type { StoredResource } from '../storage/repository.js';
import type { SqlExecutor } from '../storage/sql.js';
import { outcomeOf } from './outcome.js';
import type { FhirRouter } from './router.js';
import type { IncludeRule, SearchRequest } from './search/types.js';
import { encodeCursor } from './search/parse.js';
import { applySummary } from './summary.js';

/** Cap on resources added by _include/_revinclude per page, so one page cannot pull a whole database. */
const MAX_INCLUDED = 1000;
const MAX_ITERATIONS = 4;

/** Runs a parsed search and assembles the searchset Bundle: matches, includes, total and paging links. */
export async function executeSearch(router: FhirRouter, req: SearchRequest, db: SqlExecutor): Promise<Bundle> {
  const { repo, options } = router;
  const countOnly = req.summary === 'count' || req.count === 0;
  const backwards = req.cursor?.direction === 'previous';
  // One extra row tells whether another page lies beyond this one, without a count query.
  const rows = countOnly ? [] : await repo.search({ ...req, count: req.count + 1 }, db);
  const more = rows.length > req.count;
  const matches = rows.slice(0, req.count);
  if (backwards) {
    matches.reverse(); // a previous page is read in reverse order
  }
  const hasNext = backwards || more;
  const hasPrevious = backwards ? more : req.cursor !== undefined || req.offset > 0;

  let total: number | undefined;
  // Free only when this page is the whole result (or its known last part, by offset).
  const known = !countOnly && !req.cursor && !hasNext && (matches.length > 0 || req.offset === 0);
  if (countOnly) {
    total = await repo.count(req, db);
  } else if (req.total !== 'none' && known) {
    total = req.offset + matches.length;
  } else if (req.total === 'accurate' || req.total === 'estimate') {
    total = await repo.count(req, db);
  }

  const included = countOnly ? [] : await resolveIncludes(router, req, matches, db);
  // Paging links carry keyset cursors, so pages do not shift while resources are created or deleted.
  const url = (extra?: [string, string]): string => {
    const query = [req.canonicalQuery, extra ? `${extra[0]}=${extra[1]}` : ''].filter(Boolean).join('&');
    return `${options.baseUrl}${req.acrossTypes ? '' : `/${req.resourceType}`}${query ? '?' + query : ''}`;
  };
  const cursorLink = (direction: 'next' | 'previous', row: StoredResource): string =>
    url(['_cursor', encodeCursor({ direction, values: row.sortKey ?? [] })]);
  const self = req.cursor
    ? url(['_cursor', encodeCursor(req.cursor)])
    : req.offset > 0
      ? url(['_offset', String(req.offset)])
      : url();
  const link: Bundle['link'] = [{ relation: 'self', url: self }];
  if (!countOnly) {
    link.push({ relation: 'first', url: url() });
    if (hasNext && matches.length > 0) {
      link.push({ relation: 'next', url: cursorLink('next', matches[matches.length - 1]) });
    }
    if (hasPrevious && matches.length > 0) {
      link.push({ relation: 'previous', url: cursorLink('previous', matches[0]) });
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
