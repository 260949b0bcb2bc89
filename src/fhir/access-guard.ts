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
 * Patients whose Consent denies the caller are outside every rule.
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

  /** The search filter that keeps a search of `type` within the policy (403 when it grants none); undefined when nothing restricts it. */
  searchRestriction(policy: AccessPolicy, type: string): SearchFilter | undefined {
    const rules = this.require(policy, type, 's');
    const exclude = (policy.context.consentDenied ?? []).map((p) => `Patient/${p}`);
    if (rules.some(isUnrestricted) && exclude.length === 0) {
      return undefined;
    }
    return this.filterFor(type, rules, exclude);
  }

  /**
   * Chains (subject:Patient.name=…) and _has reach into other resource types, whose values decide
   * the result: the caller must be allowed to search those types too (403 otherwise), and a linked
   * type the caller sees only in part is limited the same way, so a chain cannot test a resource
   * the caller could not have searched for directly. Returns the extra filters to AND in.
   */
  linkedRestrictions(policy: AccessPolicy, filters: SearchFilter[]): SearchFilter[] {
    const extra: SearchFilter[] = [];
    const visit = (filter: SearchFilter, topLevel: boolean): void => {
      if (filter.kind === 'chain') {
        for (const type of filter.targetTypes) {
          const restriction = this.searchRestriction(policy, type);
          if (restriction && topLevel && filter.targetTypes.length === 1) {
            extra.push({ ...filter, filter: restriction });
          }
        }
        visit(filter.filter, false);
      } else if (filter.kind === 'has') {
        const restriction = this.searchRestriction(policy, filter.sourceType);
        if (restriction && topLevel) {
          extra.push({ ...filter, filter: restriction });
        }
        visit(filter.filter, false);
      }
    };
    filters.forEach((f) => visit(f, true));
    return extra;
  }

  async assertPermits(policy: AccessPolicy, resource: Resource, permission: Permission, db: SqlExecutor): Promise<void> {
    const rules = this.require(policy, resource.resourceType, permission);
    if (!(await this.permits(policy, resource, rules, db))) {
      throw forbidden(`This access token does not allow ${VERBS[permission]} on ${resource.resourceType}/${resource.id ?? '(new)'}`);
    }
  }

  /** True when deciding on `resource` takes a query against its stored search index (a query restriction). */
  needsStoredIndex(policy: AccessPolicy, resource: Resource, permission: Permission): boolean {
    const candidates = this.candidates(policy, resource, this.require(policy, resource.resourceType, permission));
    return candidates !== true && candidates.length > 0;
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
        return rules.length > 0 && (await this.permits(policy, resource, rules, db));
      }),
    );
    return bundle.entry ? { ...bundle, entry: entries.filter((_, i) => allowed[i]) } : bundle;
  }

  /**
   * Whether `resource` falls within `rules`. A patient limit and a Consent are checked on the
   * resource itself; a query restriction by running it against the stored resource (so the
   * caller's transaction, if any, must already hold the resource's index rows).
   */
  private async permits(policy: AccessPolicy, resource: Resource, rules: AccessRule[], db: SqlExecutor): Promise<boolean> {
    const candidates = this.candidates(policy, resource, rules);
    if (candidates === true || candidates.length === 0 || !resource.id) {
      return candidates === true;
    }
    const type = resource.resourceType;
    const request = this.router.parseSearch(type, [['_id', resource.id]], false);
    request.filters.push(this.filterFor(type, candidates.map((r) => ({ query: r.query })), []));
    return (await this.router.repo.search({ ...request, count: 1, offset: 0, sort: [] }, db)).length > 0;
  }

  /** true when a rule admits the resource outright; else the query-restricted rules left to check. */
  private candidates(policy: AccessPolicy, resource: Resource, rules: AccessRule[]): true | AccessRule[] {
    const denied = policy.context.consentDenied ?? [];
    if (rules.some(isUnrestricted) && denied.length === 0) {
      return true;
    }
    const compartments = this.router.repo.indexOf(resource).compartments;
    if (denied.some((p) => compartments.includes(`Patient/${p}`))) {
      return [];
    }
    const candidates = rules.filter((r) => !r.patient || compartments.includes(`Patient/${r.patient}`));
    return candidates.some((r) => r.query.length === 0) ? true : candidates;
  }

  private filterFor(type: string, rules: AccessRule[], excludeCompartments: string[]): SearchFilter {
    return {
      kind: 'access',
      alternatives: rules.map((rule) => ({
        ...(rule.patient ? { compartment: rule.patient } : {}),
        filters: rule.query.length ? this.router.parseSearch(type, rule.query, false).filters : [],
      })),
      excludeCompartments,
    };
  }
}

function isUnrestricted(rule: AccessRule): boolean {
  return !rule.patient && rule.query.length === 0;
}
