/**
 * SMART App Launch 2.0 scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
 * v1 scopes (`.read`, `.write`, `.*`) are normalised to their v2 permission sets so the rest of the
 * server only ever reasons about c/r/u/d/s.
 */

export type ScopeContext = 'patient' | 'user' | 'system';
export type Permission = 'c' | 'r' | 'u' | 'd' | 's'; // create, read, update, delete, search

/** One clinical-data scope, e.g. patient/Observation.rs?category=laboratory */
export interface ResourceScope {
  raw: string; // the scope as written
  context: ScopeContext;
  resourceType: string; // a resource type or '*'
  permissions: ReadonlySet<Permission>;
  /** v2 query restriction as [name, value] pairs (URL-decoded), empty when none. */
  query: [string, string][];
  version: 1 | 2;
}

export interface ParsedScopes {
  resourceScopes: ResourceScope[];
  /** Everything else that is a recognised scope: openid, fhirUser, profile, launch, launch/patient, launch/encounter, offline_access, online_access */
  other: Set<string>;
  /** Scopes that are neither (unknown words, malformed resource scopes) — callers drop them. */
  unrecognised: string[];
}

/** Scopes that are not about resource types (SMART App Launch 2.0 §Scopes and launch context). */
export const NON_RESOURCE_SCOPES: readonly string[] = [
  'openid',
  'fhirUser',
  'profile',
  'launch',
  'launch/patient',
  'launch/encounter',
  'offline_access',
  'online_access',
];
const OTHER_SCOPES: ReadonlySet<string> = new Set(NON_RESOURCE_SCOPES);

const V1_PERMISSIONS: Readonly<Record<string, readonly Permission[]>> = {
  read: ['r', 's'],
  write: ['c', 'u', 'd'],
  '*': ['c', 'r', 'u', 'd', 's'],
};

// The spec fixes the letter order so every permission set has exactly one spelling: "rs" is valid,
// "sr" and "rr" are not. RESOURCE_SCOPE already rules out the empty string.
const V2_PERMISSIONS = /^c?r?u?d?s?$/;

// The permission part is everything up to an optional '?', so the query may itself contain '.'.
const RESOURCE_SCOPE = /^(patient|user|system)\/([A-Z][A-Za-z]+|\*)\.([^?]+)(\?.*)?$/;

function splitScopes(scope: string | undefined): string[] {
  return (scope ?? '').split(/\s+/).filter((s) => s !== '');
}

/**
 * Parses the query restriction; undefined means malformed. A restriction that decodes to nothing
 * (e.g. "?&") or has a nameless pair would otherwise read as "unrestricted" and silently widen access.
 */
function parseQuery(query: string): [string, string][] | undefined {
  const pairs = [...new URLSearchParams(query)];
  if (pairs.length === 0 || pairs.some(([name]) => name === '')) return undefined;
  return pairs;
}

function parsePermissions(text: string, hasQuery: boolean): { permissions: Permission[]; version: 1 | 2 } | undefined {
  const v1 = Object.hasOwn(V1_PERMISSIONS, text) ? V1_PERMISSIONS[text] : undefined;
  if (v1) return hasQuery ? undefined : { permissions: [...v1], version: 1 };
  if (!V2_PERMISSIONS.test(text)) return undefined;
  return { permissions: [...text] as Permission[], version: 2 };
}

function parseResourceScope(raw: string): ResourceScope | undefined {
  const match = RESOURCE_SCOPE.exec(raw);
  if (!match) return undefined;
  const [, context, resourceType, permissionText, queryPart] = match;
  const parsedPermissions = parsePermissions(permissionText, queryPart !== undefined);
  if (!parsedPermissions) return undefined;
  const query = queryPart === undefined ? [] : parseQuery(queryPart.slice(1));
  if (!query) return undefined;
  return {
    raw,
    context: context as ScopeContext,
    resourceType,
    permissions: new Set(parsedPermissions.permissions),
    query,
    version: parsedPermissions.version,
  };
}

export function parseScopes(scope: string | undefined): ParsedScopes {
  const parsed: ParsedScopes = { resourceScopes: [], other: new Set(), unrecognised: [] };
  for (const token of splitScopes(scope)) {
    const resourceScope = parseResourceScope(token);
    if (resourceScope) parsed.resourceScopes.push(resourceScope);
    else if (OTHER_SCOPES.has(token)) parsed.other.add(token);
    else parsed.unrecognised.push(token);
  }
  return parsed;
}

/** True when s is a syntactically valid SMART scope (resource scope v1/v2 or one of the `other` words). */
export function isSmartScope(s: string): boolean {
  // A single scope never contains whitespace; without this check the query part would accept it.
  if (/\s/.test(s)) return false;
  return OTHER_SCOPES.has(s) || parseResourceScope(s) !== undefined;
}

function coversType(scope: ResourceScope, resourceType: string): boolean {
  return scope.resourceType === '*' || scope.resourceType === resourceType;
}

/**
 * The resource scopes in `parsed` that grant `permission` on `resourceType` in one of `contexts`.
 * Empty array = not permitted. Several may match; each may carry its own query restriction, and the
 * caller treats them as OR (a resource is allowed if it satisfies any matching scope's restriction;
 * a scope with an empty query means unrestricted).
 */
export function grantsFor(
  parsed: ParsedScopes,
  contexts: readonly ScopeContext[],
  resourceType: string,
  permission: Permission,
): ResourceScope[] {
  return parsed.resourceScopes.filter(
    (scope) => contexts.includes(scope.context) && coversType(scope, resourceType) && scope.permissions.has(permission),
  );
}

/** Canonical string of the granted scopes (space-separated, in the order given, duplicates removed). */
export function formatScopes(scopes: readonly string[]): string {
  return [...new Set(scopes.flatMap((s) => splitScopes(s)))].join(' ');
}

// Restrictions are ANDed search parameters, so their order carries no meaning.
function queryKey(query: readonly [string, string][]): string {
  return JSON.stringify(query.map((pair) => JSON.stringify(pair)).sort());
}

function covers(allowed: ResourceScope, requested: ResourceScope): boolean {
  return (
    allowed.context === requested.context &&
    coversType(allowed, requested.resourceType) &&
    [...requested.permissions].every((p) => allowed.permissions.has(p)) &&
    (allowed.query.length === 0 || queryKey(allowed.query) === queryKey(requested.query))
  );
}

/**
 * Narrows `requested` to what `allowed` permits, scope by scope (used when a client asks for more than it
 * is registered for). A requested resource scope survives if some allowed scope of the same context covers its
 * resource type (or '*') and all its permissions; its query restriction is kept. When the allowed scope has a
 * query restriction, the requested one survives only if it has the same restriction. `other` words survive if
 * present in allowed. Returns the surviving scope strings in requested order.
 */
export function narrowScopes(requested: string, allowed: string): string[] {
  const allowedScopes = parseScopes(allowed);
  return splitScopes(requested).filter((token) => {
    if (OTHER_SCOPES.has(token)) return allowedScopes.other.has(token);
    const scope = parseResourceScope(token);
    return scope !== undefined && allowedScopes.resourceScopes.some((a) => covers(a, scope));
  });
}
