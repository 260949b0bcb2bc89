import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { AccessPolicy, AccessRule } from '../auth/policy.js';
import type { Permission } from '../auth/scopes.js';
import type { SqlExecutor } from '../storage/sql.js';
import { forbidden } from './outcome.js';
import type { FhirRouter } from './router.js';
import type { SearchFilter } from './search/types.js';

const VERBS: Record<Permission, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

/**
 * Applies an AccessPolicy at the points where resources enter or leave: the interaction itself
 * (403 without a grant), every search (an SQL filter, so pages and totals only ever count what
 * the caller may see), and every single resource read, written or returned by an operation.
 */
export class AccessGuard {
  constructor(private readonly router: FhirRouter) {}

  /** The rules granting `permission` on `type`, or a 403. */
  require(policy: AccessPolicy, type: string, permission: Permission): AccessRule[] {
    const rules = policy.rules(type, permission);
    if (rules.length === 0) {
      throw forbidden(`This access token does not allow ${VERBS[permission]} on ${type}`);
    }
    return rules;
  }

  /** The search filter that keeps a search within `rules`; undefined when they do not restrict it. */
  searchFilter(type: string, rules: AccessRule[]): SearchFilter | undefined {
    if (rules.some(isUnrestricted)) {
      return undefined;
    }
    return {
      kind: 'access',
      alternatives: rules.map((rule) => ({
        ...(rule.patient ? { compartment: rule.patient } : {}),
        filters: rule.query.length ? this.router.parseSearch(type, rule.query, false).filters : [],
      })),
    };
  }

  /**
   * Whether `resource` falls within `rules`. A patient limit is checked on the resource itself; a
   * query restriction by running it against the stored resource (so the caller's transaction, if
   * any, must already hold the resource's search index rows: see `needsStoredIndex`).
   */
  async permits(resource: Resource, rules: AccessRule[], db: SqlExecutor): Promise<boolean> {
    const candidates = this.candidates(resource, rules);
    if (candidates === true || candidates.length === 0 || !resource.id) {
      return candidates === true;
    }
    const type = resource.resourceType;
    const request = this.router.parseSearch(type, [['_id', resource.id]], false);
    request.filters.push(this.searchFilter(type, candidates.map((r) => ({ query: r.query })))!);
    return (await this.router.repo.search({ ...request, count: 1, offset: 0, sort: [] }, db)).length > 0;
  }

  /** True when deciding on `resource` takes a query against its stored search index. */
  needsStoredIndex(resource: Resource, rules: AccessRule[]): boolean {
    const candidates = this.candidates(resource, rules);
    return candidates !== true && candidates.length > 0;
  }

  /** true when a rule admits the resource outright; else the query-restricted rules left to check. */
  private candidates(resource: Resource, rules: AccessRule[]): true | AccessRule[] {
    if (rules.some(isUnrestricted)) {
      return true;
    }
    const compartments = this.router.repo.indexOf(resource).compartments;
    const candidates = rules.filter((r) => !r.patient || compartments.includes(`Patient/${r.patient}`));
    return candidates.some((r) => r.query.length === 0) ? true : candidates;
  }

  async assertPermits(policy: AccessPolicy, resource: Resource, permission: Permission, db: SqlExecutor): Promise<void> {
    const rules = this.require(policy, resource.resourceType, permission);
    if (!(await this.permits(resource, rules, db))) {
      throw forbidden(`This access token does not allow ${VERBS[permission]} on ${resource.resourceType}/${resource.id ?? '(new)'}`);
    }
  }

  /** Drops the entries of a Bundle the caller may not read (includes, operation results). */
  async filterBundle(policy: AccessPolicy, bundle: Bundle, db: SqlExecutor, keep: (entryIndex: number) => boolean = () => false): Promise<Bundle> {
    const entries = bundle.entry ?? [];
    const allowed = await Promise.all(
      entries.map(async (entry, i) => {
        const resource = entry.resource;
        if (!resource || keep(i) || resource.resourceType === 'OperationOutcome') {
          return true;
        }
        const rules = policy.rules(resource.resourceType, 'r');
        return rules.length > 0 && (await this.permits(resource, rules, db));
      }),
    );
    return bundle.entry ? { ...bundle, entry: entries.filter((_, i) => allowed[i]) } : bundle;
  }
}

function isUnrestricted(rule: AccessRule): boolean {
  return !rule.patient && rule.query.length === 0;
}
