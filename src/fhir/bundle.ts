import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { newResourceId } from '../storage/resource-id.js';
import type { Writer } from '../storage/repository.js';
import { badRequest, FhirError, issue } from './outcome.js';
import { type FhirRouter, withVersionHeaders } from './router.js';
import type { FhirRequest, FhirResponse } from './types.js';

type Method = NonNullable<NonNullable<BundleEntry['request']>['method']>;

/** Transaction processing order (R4 §3.1.0.11.2): deletes, creates, updates, then reads. */
const ORDER: Record<Method, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request', 404: 'Not Found',
  405: 'Method Not Allowed', 409: 'Conflict', 410: 'Gone', 412: 'Precondition Failed', 422: 'Unprocessable Entity', 500: 'Internal Server Error',
};

/** Batch and transaction Bundles, posted to the FHIR base. */
export function installBundleHandler(router: FhirRouter): void {
  router.bundleHandler = (req, scope) => processBundle(router, req, scope);
}

async function processBundle(router: FhirRouter, req: FhirRequest, scope?: Writer): Promise<FhirResponse> {
  const bundle = router.bodyResource(req, 'Bundle') as Bundle;
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw badRequest(`Only batch and transaction Bundles can be posted to the base, not type "${bundle.type}"`, 'Bundle.type');
  }
  if (scope) {
    throw badRequest('A Bundle cannot be nested inside another batch or transaction');
  }
  const entries = bundle.entry ?? [];
  entries.forEach((e, i) => checkEntry(e, i));
  const response =
    bundle.type === 'transaction' ? await processTransaction(router, entries, req) : await processBatch(router, entries, req);
  return { status: 200, resource: response, headers: {} };
}

function checkEntry(entry: BundleEntry, index: number): void {
  const method = entry.request?.method;
  if (!method || !(method in ORDER)) {
    throw badRequest(`Bundle.entry[${index}].request.method is missing or invalid`, `Bundle.entry[${index}].request.method`);
  }
  if (!entry.request?.url) {
    throw badRequest(`Bundle.entry[${index}].request.url is missing`, `Bundle.entry[${index}].request.url`);
  }
  if ((method === 'POST' || method === 'PUT') && !entry.resource) {
    throw badRequest(`Bundle.entry[${index}] (${method}) has no resource`, `Bundle.entry[${index}].resource`);
  }
}

async function processBatch(router: FhirRouter, entries: BundleEntry[], outer: FhirRequest): Promise<Bundle> {
  const out: BundleEntry[] = [];
  for (const [i, entry] of entries.entries()) {
    try {
      const result = await router.handle(entryRequest(entry, outer));
      out.push(responseEntry(router, result, outer));
    } catch (err) {
      if (!(err instanceof FhirError)) {
        throw err;
      }
      out.push({ response: { status: statusLine(err.status), outcome: withEntry(err.outcome, i) } });
    }
  }
  return { resourceType: 'Bundle', type: 'batch-response', entry: out };
}

async function processTransaction(router: FhirRouter, entries: BundleEntry[], outer: FhirRequest): Promise<Bundle> {
  return router.repo.transaction(async (writer) => {
    // 1. Give every new resource its id up front, so references between entries can be rewritten.
    const ids = new Map<string, string>(); // fullUrl → Type/id
    const skip = new Set<number>(); // conditional creates that matched an existing resource
    const results: FhirResponse[] = new Array(entries.length);
    // 0. Deletes come first (R4 http.html#trules), and are flushed: the conditional creates, updates and
    //    references resolved below must not match what this transaction deletes.
    for (const [i, entry] of entries.entries()) {
      if (entry.request!.method === 'DELETE') {
        results[i] = await atEntry(i, () => router.handle(entryRequest(entry, outer), writer));
      }
    }
    await writer.flush();
    // Criteria of conditional creates this transaction will perform ("Patient?identifier=…" → Patient/<new id>):
    // nothing in the database matches them yet, so a repeated ifNoneExist, or a conditional reference with the
    // same criteria, means the resource this transaction creates.
    const createdByCriteria = new Map<string, { target: string; entry: number }>();
    const aliases = new Map<number, number>(); // duplicate conditional create → the entry that creates
    for (const [i, entry] of entries.entries()) {
      await atEntry(i, async () => {
        const { method, url } = entry.request!;
        const type = url.split(/[/?]/)[0];
        if (method === 'POST' && entry.resource) {
          let target = `${type}/${newResourceId()}`;
          const criteria = entry.request!.ifNoneExist ? criteriaKey(type, entry.request!.ifNoneExist) : undefined;
          const earlier = criteria ? createdByCriteria.get(criteria) : undefined;
          const existing = entry.request!.ifNoneExist && !earlier
            ? await router.conditionalMatch(type, entry.request!.ifNoneExist, writer, 'ifNoneExist', outer.access)
            : undefined;
          if (earlier) {
            target = earlier.target;
            skip.add(i);
            aliases.set(i, earlier.entry);
          } else if (existing) {
            target = `${type}/${existing.id}`;
            skip.add(i);
            results[i] = withVersionHeaders(200, existing, router.location(existing));
          }
          if (entry.fullUrl) {
            ids.set(entry.fullUrl, target);
          }
          if (!skip.has(i)) {
            entry.resource = { ...entry.resource, id: target.split('/')[1] };
            if (criteria) {
              createdByCriteria.set(criteria, { target, entry: i });
            }
          }
        } else if (method === 'PUT' && url.includes('?')) {
          const match = await router.conditionalMatch(type, url.slice(url.indexOf('?') + 1), writer, 'Conditional update', outer.access);
          const id = router.conditionalUpdateId(match, entry.resource as Resource) ?? newResourceId();
          entry.request = { ...entry.request!, url: `${type}/${id}` };
          // The update needs the id in the body too (it is checked against the URL).
          entry.resource = { ...(entry.resource as Resource), id };
          if (entry.fullUrl) {
            ids.set(entry.fullUrl, `${type}/${id}`);
          }
        } else if (method === 'PUT' && entry.fullUrl) {
          ids.set(entry.fullUrl, url.split('?')[0]);
        }
      });
    }

    // 2. Rewrite urn:uuid and conditional references inside every resource.
    const conditionalCache = new Map<string, string>();
    for (const [i, entry] of entries.entries()) {
      if (entry.resource && !skip.has(i)) {
        await atEntry(i, async () => {
          entry.resource = (await rewriteReferences(entry.resource, ids, async (ref) => {
            const [type, query] = [ref.slice(0, ref.indexOf('?')), ref.slice(ref.indexOf('?') + 1)];
            let resolved = conditionalCache.get(ref) ?? createdByCriteria.get(criteriaKey(type, query))?.target;
            if (!resolved) {
              if (!router.defs.isResourceType(type)) {
                throw badRequest(`Conditional reference ${ref} names an unknown resource type`);
              }
              const match = await router.conditionalMatch(type, query, writer, `Conditional reference ${ref}`, outer.access);
              if (!match) {
                throw new FhirError(412, [issue('not-found', `Conditional reference ${ref} matched no resource; exactly one is required`)]);
              }
              resolved = `${type}/${match.id}`;
              conditionalCache.set(ref, resolved);
            }
            return resolved;
          })) as Resource;
        });
      }
    }

    // 3. Run the interactions in the order the spec requires; reads come after the writes are flushed.
    const order = entries.map((_, i) => i).sort((a, b) => ORDER[entries[a].request!.method] - ORDER[entries[b].request!.method] || a - b);
    let flushed = false;
    for (const i of order) {
      if (skip.has(i) || entries[i].request!.method === 'DELETE') {
        continue;
      }
      const entry = entries[i];
      if (ORDER[entry.request!.method] === 3 && !flushed) {
        await writer.flush();
        flushed = true;
      }
      results[i] = await atEntry(i, () => {
        const req = entryRequest(entry, outer);
        // POST with a pre-assigned id is a create under that id.
        if (entry.request!.method === 'POST') {
          return createWithId(router, writer, req, entry.resource as Resource & { id: string });
        }
        return router.handle(req, writer);
      });
    }
    // A repeated conditional create found the resource the first one created, as if it had existed.
    for (const [i, first] of aliases) {
      results[i] = { ...results[first], status: 200 };
    }
    return {
      resourceType: 'Bundle',
      type: 'transaction-response',
      entry: results.map((r) => responseEntry(router, r, outer)),
    } satisfies Bundle;
  });
}

/** Search criteria as a comparable key: the same parameters in any order are the same criteria. */
function criteriaKey(type: string, query: string): string {
  const params = [...new URLSearchParams(query)].map(([k, v]) => `${k}=${v}`).sort();
  return `${type}?${params.join('&')}`;
}

async function createWithId(router: FhirRouter, writer: Writer, req: FhirRequest, resource: Resource & { id: string }): Promise<FhirResponse> {
  const type = req.path.split(/[/?]/)[0];
  const body = router.bodyResource({ ...req, body: resource }, type);
  if (req.access) {
    router.guard.require(req.access, type, 'c');
  }
  const stored = await router.checkWritten(req, await writer.create(body, resource.id), 'c', writer);
  return withVersionHeaders(201, stored, router.location(stored));
}

async function atEntry<T>(index: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof FhirError) {
      throw new FhirError(
        err.status,
        err.issues.map((i) => ({
          ...i,
          details: { text: `Bundle.entry[${index}]: ${i.details?.text ?? i.diagnostics ?? i.code}` },
          expression: (i.expression ?? ['']).map((e) => `Bundle.entry[${index}]${e ? '.resource.' + e.replace(/^[A-Z][A-Za-z]+\./, '') : ''}`),
        })),
      );
    }
    throw err;
  }
}

function withEntry(outcome: OperationOutcome, index: number): OperationOutcome {
  return { ...outcome, issue: outcome.issue.map((i) => ({ ...i, expression: [...(i.expression ?? []), `Bundle.entry[${index}]`] })) };
}

function entryRequest(entry: BundleEntry, outer: FhirRequest): FhirRequest {
  const url = entry.request!.url.replace(/^\//, '');
  const q = url.indexOf('?');
  return {
    method: entry.request!.method as FhirRequest['method'],
    path: q >= 0 ? url.slice(0, q) : url,
    query: q >= 0 ? [...new URLSearchParams(url.slice(q + 1))] : [],
    body: entry.resource,
    ifMatch: entry.request!.ifMatch,
    ifNoneMatch: entry.request!.ifNoneMatch,
    ifNoneExist: entry.request!.ifNoneExist,
    ifModifiedSince: entry.request!.ifModifiedSince,
    lenient: outer.lenient,
    preferReturn: outer.preferReturn,
    access: outer.access,
  };
}

function responseEntry(router: FhirRouter, r: FhirResponse, outer: FhirRequest): BundleEntry {
  const stored = r.resource;
  const include = stored && outer.preferReturn !== 'minimal' && outer.preferReturn !== 'OperationOutcome';
  return {
    ...(stored && stored.id && stored.resourceType !== 'Bundle' ? { fullUrl: `${router.options.baseUrl}/${stored.resourceType}/${stored.id}` } : {}),
    ...(include ? { resource: stored } : {}),
    response: {
      status: statusLine(r.status),
      ...(r.headers.Location ? { location: r.headers.Location } : {}),
      ...(r.headers.ETag ? { etag: r.headers.ETag } : {}),
      ...(stored?.meta?.lastUpdated ? { lastModified: stored.meta.lastUpdated } : {}),
    },
  };
}

function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trim();
}

/** Replaces links: fullUrls of entries by their new Type/id (in references, uris and urls), and Type?query references by the one match. */
async function rewriteReferences(value: unknown, ids: Map<string, string>, resolve: (ref: string) => Promise<string>): Promise<unknown> {
  if (Array.isArray(value)) {
    return Promise.all(value.map((v) => rewriteReferences(v, ids, resolve)));
  }
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'reference' && typeof v === 'string') {
      out[k] = ids.get(v) ?? (/^[A-Z][A-Za-z]+\?/.test(v) ? await resolve(v) : v);
      if (v.startsWith('urn:uuid:') && !ids.has(v)) {
        throw badRequest(`Reference ${v} does not match the fullUrl of any entry in the transaction`);
      }
    } else if (typeof v === 'string' && v.startsWith('urn:uuid:') && ids.has(v)) {
      // R4 §3.1.0.11.2: links are replaced wherever they appear (uri and url elements too, e.g. Attachment.url).
      out[k] = ids.get(v);
    } else {
      out[k] = await rewriteReferences(v, ids, resolve);
    }
  }
  return out;
}
