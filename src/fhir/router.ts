import type { Binary, Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { parseETag, type Repository, type StoredResource, type Writer } from '../storage/repository.js';
import type { SqlExecutor } from '../storage/sql.js';
import type { FhirDefinitions } from './definitions.js';
import type { AccessPolicy } from '../auth/policy.js';
import type { Permission } from '../auth/scopes.js';
import { AccessGuard } from './access-guard.js';
import { applyFhirPathPatch, isFhirPathPatch } from './fhirpath-patch.js';
import { badRequest, FhirError, forbidden, issue, notFound, notSupported, preconditionFailed } from './outcome.js';
import type { OperationRegistry } from './operations.js';
import { parseSearch } from './search/parse.js';
import type { SearchRequest } from './search/types.js';
import { executeSearch } from './searchset.js';
import { subsetForRead } from './summary.js';
import { FORMAT_PARAMETERS, type FhirRequest, type FhirResponse } from './types.js';

export interface RouterOptions {
  baseUrl: string;
  /** The authorization server's issuer, advertised in the CapabilityStatement. */
  issuer: string;
  defaultPageSize: number;
  maxPageSize: number;
}

const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * The FHIR REST dispatcher: maps a FhirRequest (from HTTP or from a Bundle entry) to an
 * interaction (R4 §3.1.0) and runs it against the repository. `scope` is the transaction a
 * Bundle runs in; without one, each write is its own transaction.
 */
export class FhirRouter {
  operations?: OperationRegistry;
  readonly guard = new AccessGuard(this);

  constructor(
    readonly defs: FhirDefinitions,
    readonly repo: Repository,
    readonly options: RouterOptions,
  ) {}

  async handle(req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
    const segments = req.path.split('/').filter((s) => s.length > 0);
    const [type, id, sub, vid, extra] = segments;
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    // A malformed If-Match is the client's mistake, not a version conflict (which would be 412).
    if (req.ifMatch !== undefined && !/^(W\/)?"[^"]+"$/.test(req.ifMatch.trim())) {
      throw badRequest(`If-Match must be an ETag such as W/"3", got "${req.ifMatch}"`);
    }

    if (segments.length === 0) {
      if (method === 'POST') {
        return this.requireBundleHandler()(req, scope);
      }
      if (method === 'GET') {
        return this.systemSearch(req.query, req, scope);
      }
      throw notSupported(`${req.method} on the FHIR base is not supported`);
    }
    if (type === '_search' && segments.length === 1 && method === 'POST') {
      return this.systemSearch([...req.query, ...formParams(req)], req, scope);
    }
    if (type === 'metadata' && segments.length === 1 && method === 'GET') {
      return { status: 200, resource: this.requireOperations().capabilityStatement(), headers: {} };
    }
    if (type === '_history' && segments.length === 1 && method === 'GET') {
      this.requireWholeServer(req, 'history across all resource types');
      return this.history(req, undefined, undefined);
    }
    if (type.startsWith('$')) {
      // System-level operations are server reports and maintenance: for the operator and for admins.
      if (req.access?.context.role !== 'admin') {
        this.requireWholeServer(req, `$${type.slice(1)}`);
      }
      return this.operation(req, scope, () => this.requireOperations().invoke(req, { level: 'system', operation: type.slice(1) }, scope));
    }
    if (!this.defs.isResourceType(type)) {
      throw notFound(`Unknown resource type "${type}"`);
    }

    if (segments.length === 1) {
      switch (method) {
        case 'GET':
          return this.search(type, req.query, req, scope);
        case 'POST':
          return this.create(type, req, scope);
        case 'PUT':
          return this.conditionalWrite(type, req, scope, 'PUT');
        case 'PATCH':
          return this.conditionalWrite(type, req, scope, 'PATCH');
        case 'DELETE':
          return this.conditionalDelete(type, req, scope);
      }
    }
    if (id === '_search' && segments.length === 2 && method === 'POST') {
      return this.search(type, [...req.query, ...formParams(req)], req, scope);
    }
    if (id === '_history' && segments.length === 2 && method === 'GET') {
      if (req.access && !req.access.unrestricted(type, 's')) {
        throw forbidden(`History of all ${type} resources needs unrestricted access to ${type}: search instead`);
      }
      return this.history(req, type, undefined);
    }
    if (id.startsWith('$')) {
      if (req.access) {
        this.guard.require(req.access, type, 'r');
      }
      return this.operation(req, scope, () =>
        this.requireOperations().invoke(req, { level: 'type', resourceType: type, operation: id.slice(1) }, scope),
      );
    }
    if (!ID_RE.test(id)) {
      throw badRequest(`Invalid id "${id}": ids are 1-64 characters of A-Z, a-z, 0-9, - and .`);
    }
    if (segments.length === 2) {
      switch (method) {
        case 'GET':
          return this.read(type, id, req, scope);
        case 'PUT':
          return this.update(type, id, req, scope);
        case 'PATCH':
          return this.patch(type, id, req, scope);
        case 'DELETE':
          return this.delete(type, id, req, scope);
      }
    }
    if (sub?.startsWith('$') && segments.length === 3) {
      await this.checkInstance(req, type, id, 'r', scope);
      return this.operation(req, scope, () =>
        this.requireOperations().invoke(req, { level: 'instance', resourceType: type, id, operation: sub.slice(1) }, scope),
      );
    }
    if (sub === '_history' && method === 'GET' && segments.length === 3) {
      await this.checkInstance(req, type, id, 'r', scope);
      return this.history(req, type, id);
    }
    if (sub === '_history' && method === 'GET' && segments.length === 4 && !extra) {
      const version = await this.repo.vread(type, id, vid);
      if (req.access && version.resource) {
        await this.guard.assertPermits(req.access, version.resource, 'r', this.db(scope));
      }
      return subsetted(withVersionHeaders(200, version), this.defs, req);
    }
    throw new FhirError(405, [issue('not-supported', `${req.method} ${req.path} is not a FHIR interaction this server supports`)]);
  }

  /** Set by the bundle module (kept separate so this file stays about single interactions). */
  bundleHandler?: (req: FhirRequest, scope?: Writer) => Promise<FhirResponse>;

  private requireBundleHandler(): NonNullable<FhirRouter['bundleHandler']> {
    if (!this.bundleHandler) {
      throw new Error('bundle handler not installed');
    }
    return this.bundleHandler;
  }

  private requireOperations(): OperationRegistry {
    if (!this.operations) {
      throw new Error('operation registry not installed');
    }
    return this.operations;
  }

  db(scope?: Writer): SqlExecutor {
    return scope ? scope.tx : this.repo.sql;
  }

  /** The current version (if any) is one the caller may change: they cannot take over a resource outside their access. */
  private async checkCurrent(req: FhirRequest, type: string, id: string, permission: Permission, w: Writer): Promise<void> {
    this.guard.require(req.access!, type, permission);
    const current = await this.repo.read(type, id, w.tx).catch((err: unknown) => {
      if (err instanceof FhirError && (err.status === 404 || err.status === 410)) {
        return undefined; // nothing there to take over: the written version is checked instead
      }
      throw err;
    });
    if (current) {
      await this.guard.assertPermits(req.access!, current.resource!, permission, w.tx);
    }
  }

  /**
   * The version just written is one the caller may write (its patient, its query restriction).
   * Checked inside the write's transaction, after its index rows are flushed: a refusal rolls it back.
   */
  async checkWritten<T extends StoredResource>(req: FhirRequest, stored: T, permission: Permission, w: Writer): Promise<T> {
    if (req.access && stored.resource) {
      // Flushing ends the transaction's write batching, so only when a query restriction needs the index rows.
      if (this.guard.needsStoredIndex(req.access, stored.resource, permission)) {
        await w.flush();
      }
      await this.guard.assertPermits(req.access, stored.resource, permission, w.tx);
    }
    return stored;
  }

  /** Runs fn with the caller's transaction, or in a new one. */
  write<T>(scope: Writer | undefined, fn: (w: Writer) => Promise<T>): Promise<T> {
    return scope ? fn(scope) : this.repo.transaction(fn);
  }

  /** Every search (plain, conditional, operation) is parsed here, so all get the same semantics. */
  parseSearch(type: string, query: Iterable<[string, string]>, lenient: boolean): SearchRequest {
    return parseSearch(this.defs, type, query, {
      lenient,
      defaultCount: this.options.defaultPageSize,
      maxCount: this.options.maxPageSize,
      baseUrl: this.options.baseUrl,
    });
  }

  /** 403 unless the caller may act on the whole server (system-wide history, system-level operations). */
  private requireWholeServer(req: FhirRequest, what: string): void {
    const access = req.access;
    if (access && !(access.context.kind === 'system' && access.unrestricted('*', 'r'))) {
      throw forbidden(`${what} needs a system token with unrestricted read access (system/*.rs)`);
    }
  }

  /** The caller may act on this instance: checked against its current version (or its last one, when deleted). */
  private async checkInstance(req: FhirRequest, type: string, id: string, permission: Permission, scope?: Writer): Promise<void> {
    if (!req.access) {
      return;
    }
    this.guard.require(req.access, type, permission);
    const latest = await this.repo.lastContent(type, id, this.db(scope));
    if (latest) {
      await this.guard.assertPermits(req.access, latest, permission, this.db(scope));
    }
  }

  /** Runs an operation and keeps only what the caller may read of a Bundle it returns. */
  private async operation(req: FhirRequest, scope: Writer | undefined, run: () => Promise<FhirResponse>): Promise<FhirResponse> {
    const response = await run();
    if (req.access && response.resource?.resourceType === 'Bundle') {
      return { ...response, resource: await this.guard.filterBundle(req.access, response.resource, this.db(scope)) };
    }
    if (req.access && response.resource && response.resource.resourceType !== 'OperationOutcome' && response.resource.resourceType !== 'Parameters') {
      await this.guard.assertPermits(req.access, response.resource, 'r', this.db(scope));
    }
    return response;
  }

  private async read(type: string, id: string, req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
    const stored = await this.repo.read(type, id, this.db(scope));
    if (req.access) {
      await this.guard.assertPermits(req.access, stored.resource!, 'r', this.db(scope));
    }
    if (req.ifNoneMatch && parseETag(req.ifNoneMatch) === stored.versionId) {
      return { status: 304, headers: versionHeaders(stored) };
    }
    if (req.ifModifiedSince && Date.parse(req.ifModifiedSince) >= Math.floor(Date.parse(stored.lastUpdated) / 1000) * 1000) {
      return { status: 304, headers: versionHeaders(stored) };
    }
    return subsetted(withVersionHeaders(200, stored), this.defs, req);
  }

  /**
   * search-system (`GET [base]?_type=Patient,Group&_lastUpdated=gt…`): the types named by _type,
   * or every type. Each parameter must be one of every type searched (the common ones, _id,
   * _lastUpdated, _tag…, when there is no _type), and the caller must be able to search each
   * type unrestricted: access limited to compartments, or short of patients who withheld consent,
   * searches one type at a time.
   */
  private async systemSearch(query: [string, string][], req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
    const named = query.filter(([key]) => key === '_type').flatMap(([, value]) => value.split(',').map((t) => t.trim()));
    const unknown = named.find((t) => !this.defs.isResourceType(t));
    if (unknown !== undefined) {
      throw badRequest(`_type names "${unknown}", which is not a resource type`, '_type');
    }
    const types = named.length > 0 ? [...new Set(named)] : [...this.defs.resourceTypes].sort();
    const access = req.access;
    const limited = access ? types.find((t) => this.guard.searchRestriction(access, t) !== undefined) : undefined;
    if (limited) {
      throw forbidden(`A search across types needs unrestricted search access to each type searched (not to ${limited}): search one type at a time`);
    }
    const request = this.parseSearch(types[0], query.filter(([key]) => key !== '_type'), req.lenient);
    const used = [
      ...request.filters.flatMap((f) => (f.kind === 'value' || f.kind === 'chain' || f.kind === 'composite' ? [f.param] : [])),
      ...request.sort.flatMap((rule) => (typeof rule.param === 'string' ? [] : [rule.param])),
    ];
    if (request.filters.some((f) => f.kind === 'has') || request.include.length > 0 || request.revinclude.length > 0) {
      throw badRequest('_has, _include and _revinclude need a resource type: search one type at a time');
    }
    for (const type of types) {
      const missing = used.find((param) => this.defs.getSearchParam(type, param.code)?.type !== param.type);
      if (missing) {
        throw badRequest(`${missing.code} is not a search parameter of ${type}: a search across types takes only parameters every type searched has${named.length ? '' : ' (name the types with _type)'}`, missing.code);
      }
    }
    request.acrossTypes = types;
    if (named.length > 0) {
      request.canonicalQuery = [`_type=${types.join(',')}`, request.canonicalQuery].filter(Boolean).join('&');
    }
    return { status: 200, resource: await executeSearch(this, request, this.db(scope)), headers: {} };
  }

  private async search(type: string, query: [string, string][], req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
    const request = this.parseSearch(type, query, req.lenient);
    if (!req.access) {
      return { status: 200, resource: await executeSearch(this, request, this.db(scope)), headers: {} };
    }
    const restriction = this.guard.searchRestriction(req.access, type);
    request.filters.push(...(restriction ? [restriction] : []), ...this.guard.linkedRestrictions(req.access, request.filters));
    const bundle = await executeSearch(this, request, this.db(scope));
    // Matches are already within the caller's access; included resources are checked one by one.
    const filtered = await this.guard.filterBundle(req.access, bundle, this.db(scope), (i) => bundle.entry?.[i]?.search?.mode !== 'include');
    return { status: 200, resource: filtered, headers: {} };
  }

  /**
   * The resource a conditional interaction's criteria select (If-None-Exist, conditional update, patch
   * and delete, conditional references), or undefined when none does. Criteria that select more than
   * one resource are a 412: a conditional interaction must never pick one arbitrarily.
   */
  async conditionalMatch(
    type: string,
    query: string,
    scope: Writer | undefined,
    interaction: string,
    access: AccessPolicy | undefined,
  ): Promise<StoredResource | undefined> {
    const params = [...new URLSearchParams(query)];
    if (params.length === 0) {
      throw badRequest(`${interaction} on ${type} needs search criteria`);
    }
    const request = this.parseSearch(type, params, false);
    // Criteria are a search: they see only what the caller may search, so a match cannot reveal anything else.
    const restriction = access && this.guard.searchRestriction(access, type);
    if (restriction) {
      request.filters.push(restriction);
    }
    const matches = await this.repo.search({ ...request, count: 2, offset: 0, sort: [] }, this.db(scope));
    if (matches.length > 1) {
      throw preconditionFailed(`${interaction} on ${type} matched more than one resource; the criteria must select one`);
    }
    return matches[0];
  }

  /** The id a conditional update writes: the match's, else the body's own (update-as-create); undefined means create. */
  conditionalUpdateId(match: StoredResource | undefined, resource: Resource): string | undefined {
    if (match && resource.id && resource.id !== match.id) {
      throw badRequest(`The resource id "${resource.id}" does not match the resource found by the conditional update (${match.id})`, 'id');
    }
    return match?.id ?? resource.id;
  }

  private async create(type: string, req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
    const resource = this.bodyResource(req, type);
    if (req.access) {
      this.guard.require(req.access, type, 'c');
    }
    const existing = req.ifNoneExist ? await this.conditionalMatch(type, req.ifNoneExist, scope, 'If-None-Exist', req.access) : undefined;
    if (existing) {
      return withVersionHeaders(200, existing, this.location(existing));
    }
    const { id: _ignored, ...withoutId } = resource;
    const stored = await this.write(scope, async (w) => this.checkWritten(req, await w.create(withoutId as Resource), 'c', w));
    return withVersionHeaders(201, stored, this.location(stored));
  }

  private async update(type: string, id: string, req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
    const resource = this.bodyResource(req, type, id);
    if (!resource.id) {
      throw badRequest('The resource in an update must have an id, equal to the id in the URL', 'id');
    }
    if (resource.id !== id) {
      throw badRequest(`The resource id "${resource.id}" does not match the id in the URL "${id}"`, 'id');
    }
    const result = await this.write(scope, async (w) => {
      if (req.access) {
        await this.checkCurrent(req, type, id, 'u', w);
      }
      const written = await w.update({ ...resource, id }, req.ifMatch);
      await this.checkWritten(req, written.stored, written.created ? 'c' : 'u', w);
      return written;
    });
    const { stored, created } = result;
    return withVersionHeaders(created ? 201 : 200, stored, created ? this.location(stored) : undefined);
  }

  private async patch(type: string, id: string, req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
    const ops = patchDocument(req.body);
    const fhirPath = isFhirPathPatch(ops);
    if (!Array.isArray(ops) && !fhirPath) {
      throw badRequest('A PATCH body must be a JSON Patch document (application/json-patch+json) or a FHIRPath Patch Parameters resource (application/fhir+json)');
    }
    const stored = await this.write(scope, async (w) => {
      const current = await this.repo.read(type, id, w.tx);
      if (req.access) {
        await this.guard.assertPermits(req.access, current.resource!, 'u', w.tx);
      }
      if (req.ifMatch && parseETag(req.ifMatch) !== current.versionId) {
        throw preconditionFailed(`Version conflict: If-Match ${req.ifMatch} but the current version is ${current.versionId}`);
      }
      const patched = fhirPath ? applyFhirPathPatch(current.resource!, ops) : applyJsonPatch(current.resource!, ops as Operation[]);
      if (patched.resourceType !== type || patched.id !== id) {
        throw new FhirError(422, [issue('processing', 'A patch must not change resourceType or id')]);
      }
      // Conditional on the version just patched: a concurrent write in between is a 412, not a lost update.
      return this.checkWritten(req, (await w.update({ ...patched, id }, current.versionId, 'PATCH')).stored, 'u', w);
    });
    return withVersionHeaders(200, stored);
  }

  private async delete(type: string, id: string, req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
    const result = await this.write(scope, async (w) => {
      if (req.access) {
        await this.checkCurrent(req, type, id, 'd', w);
      }
      return w.delete(type, id);
    });
    return { status: 204, headers: result ? { ETag: `W/"${result.versionId}"` } : {} };
  }

  private async conditionalWrite(type: string, req: FhirRequest, scope: Writer | undefined, method: 'PUT' | 'PATCH'): Promise<FhirResponse> {
    const query = new URLSearchParams(req.query).toString();
    const match = await this.conditionalMatch(type, query, scope, method === 'PUT' ? 'Conditional update' : 'Conditional patch', req.access);
    if (method === 'PATCH') {
      if (!match) {
        throw notFound(`Conditional patch matched no ${type}`);
      }
      return this.patch(type, match.id, req, scope);
    }
    const resource = this.bodyResource(req, type);
    const id = this.conditionalUpdateId(match, resource);
    if (id) {
      return this.update(type, id, { ...req, body: { ...resource, id } }, scope);
    }
    return this.create(type, { ...req, ifNoneExist: undefined }, scope);
  }

  private async conditionalDelete(type: string, req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
    const match = await this.conditionalMatch(type, new URLSearchParams(req.query).toString(), scope, 'Conditional delete', req.access);
    return match ? this.delete(type, match.id, req, scope) : { status: 204, headers: {} };
  }

  private async history(req: FhirRequest, type: string | undefined, id: string | undefined): Promise<FhirResponse> {
    const q = new URLSearchParams(req.query);
    const since = q.get('_since') ?? undefined;
    const at = q.get('_at') ?? undefined;
    // Paging links pin the newest version the first page saw, so later writes cannot shift the pages.
    const snapshot = q.get('_snapshot') ?? new Date().toISOString();
    for (const [name, value] of [['_since', since], ['_at', at], ['_snapshot', snapshot]] as const) {
      if (value !== undefined && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
        throw badRequest(`${name} must be an instant with a time zone, e.g. 2024-01-01T00:00:00Z`, name);
      }
    }
    for (const key of q.keys()) {
      if (!['_since', '_at', '_snapshot', '_count', '_offset', ...FORMAT_PARAMETERS].includes(key) && !req.lenient) {
        throw badRequest(`Unknown history parameter "${key}"`, key);
      }
    }
    const count = Math.min(intParam(q, '_count', this.options.defaultPageSize), this.options.maxPageSize);
    const offset = intParam(q, '_offset', 0);
    if (type && id) {
      // 404 for an id that never existed (a deleted one still has history)
      const exists = await this.repo.sql.query('SELECT 1 FROM resource WHERE resource_type = $1 AND id = $2', [type, id]);
      if (exists.length === 0) {
        throw notFound(`${type}/${id} is not known`);
      }
    }
    const { entries, total } = await this.repo.history(type, id, { since, at, snapshot, count, offset });
    const selfPath = [type, id, '_history'].filter(Boolean).join('/');
    const keep = new URLSearchParams([...q].filter(([k]) => k !== '_offset' && k !== '_snapshot'));
    keep.set('_snapshot', snapshot);
    const link = (o: number): string => `${this.options.baseUrl}/${selfPath}?${withParam(keep, '_offset', String(o))}`;
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'history',
      total,
      link: [
        { relation: 'self', url: link(offset) },
        ...(offset + entries.length < total ? [{ relation: 'next', url: link(offset + count) }] : []),
        ...(offset > 0 ? [{ relation: 'previous', url: link(Math.max(0, offset - count)) }] : []),
      ],
      entry: entries.map((e) => this.historyEntry(e)),
    };
    return { status: 200, resource: bundle, headers: {} };
  }

  private historyEntry(e: StoredResource): BundleEntry {
    const method = e.method ?? 'PUT';
    return {
      fullUrl: `${this.options.baseUrl}/${e.resourceType}/${e.id}`,
      ...(e.resource ? { resource: e.resource } : {}),
      request: { method, url: method === 'POST' ? e.resourceType : `${e.resourceType}/${e.id}` },
      response: {
        status: e.deleted ? '204 No Content' : method === 'POST' ? '201 Created' : '200 OK',
        etag: `W/"${e.versionId}"`,
        lastModified: e.lastUpdated,
      },
    };
  }

  location(stored: StoredResource): string {
    return `${this.options.baseUrl}/${stored.resourceType}/${stored.id}/_history/${stored.versionId}`;
  }

  /** The request body as a resource of the expected type, or a precise 400. */
  bodyResource(req: FhirRequest, type: string, id?: string): Resource {
    const body = req.body;
    if (Buffer.isBuffer(body)) {
      if (type !== 'Binary') {
        throw new FhirError(415, [issue('not-supported', `Unsupported Content-Type "${req.contentType}": send application/fhir+json`)]);
      }
      // A Binary in its native form (R4 §2.42.1): the bytes are the content, the headers its metadata. No bytes, no data (FHIR has no empty base64Binary).
      const binary: Binary = {
        resourceType: 'Binary',
        ...(id ? { id } : {}),
        contentType: req.contentType ?? 'application/octet-stream',
        ...(body.length > 0 ? { data: body.toString('base64') } : {}),
      };
      if (req.securityContext) {
        binary.securityContext = { reference: req.securityContext };
      }
      return binary;
    }
    if (body === undefined || body === null) {
      throw badRequest('The request has no body: a FHIR resource in JSON is required');
    }
    if (typeof body !== 'object' || Array.isArray(body)) {
      throw badRequest('The request body must be a JSON object (a FHIR resource)');
    }
    const resourceType = (body as { resourceType?: unknown }).resourceType;
    if (typeof resourceType !== 'string') {
      throw badRequest('The resource has no resourceType', 'resourceType');
    }
    if (resourceType !== type) {
      throw badRequest(`The resource is a ${resourceType} but the URL is for ${type}`, 'resourceType');
    }
    return body as Resource;
  }
}

function formParams(req: FhirRequest): [string, string][] {
  if (typeof req.body === 'string') {
    return [...new URLSearchParams(req.body)];
  }
  return [];
}

function intParam(q: URLSearchParams, name: string, fallback: number): number {
  const raw = q.get(name);
  if (raw === null) {
    return fallback;
  }
  if (!/^\d{1,9}$/.test(raw)) {
    throw badRequest(`${name} must be a non-negative integer, got "${raw}"`, name);
  }
  return Number(raw);
}

function withParam(params: URLSearchParams, key: string, value: string): string {
  const copy = new URLSearchParams(params);
  copy.set(key, value);
  return copy.toString();
}

/**
 * The patch a body carries: as sent, or — in a Bundle entry, which can only hold a resource — a JSON
 * Patch inside a Binary (R4 §3.1.0.7.1).
 */
function patchDocument(body: unknown): unknown {
  const binary = body as Binary | undefined;
  if (binary?.resourceType === 'Binary' && /json-patch/.test(binary.contentType ?? '') && binary.data) {
    try {
      return JSON.parse(Buffer.from(binary.data, 'base64').toString('utf8'));
    } catch {
      throw badRequest('The Binary holding the JSON Patch does not contain valid JSON');
    }
  }
  return body;
}

/** RFC 6902 JSON Patch on a copy; a patch that does not apply is a 422. */
function applyJsonPatch(resource: Resource, ops: Operation[]): Resource {
  try {
    const invalid = jsonpatch.validate(ops, resource);
    if (invalid) {
      throw invalid;
    }
    return jsonpatch.applyPatch(structuredClone(resource), ops, true, false).newDocument;
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : 'invalid patch';
    throw new FhirError(422, [issue('processing', `JSON Patch could not be applied: ${message}`)]);
  }
}

export function versionHeaders(stored: StoredResource): Record<string, string> {
  return { ETag: `W/"${stored.versionId}"`, 'Last-Modified': new Date(stored.lastUpdated).toUTCString() };
}

/** A read's or vread's resource in the part _summary / _elements ask for. */
function subsetted(response: FhirResponse, defs: FhirDefinitions, req: FhirRequest): FhirResponse {
  return response.resource ? { ...response, resource: subsetForRead(defs, response.resource, req.query) } : response;
}

export function withVersionHeaders(status: number, stored: StoredResource, location?: string): FhirResponse {
  return {
    status,
    resource: stored.resource,
    headers: { ...versionHeaders(stored), ...(location ? { Location: location } : {}) },
  };
}

