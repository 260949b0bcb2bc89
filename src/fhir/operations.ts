import type { CapabilityStatement, OperationDefinition, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import type { DocumentPipeline } from '../documents/pipeline.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { LlmProvider } from '../ai/llm.js';
import type { ModelRegistry } from '../ml/model-registry.js';
import type { RagIndex } from '../rag/rag-index.js';
import type { Writer } from '../storage/repository.js';
import { buildCapabilityStatement } from './capability.js';
import { badRequest, FhirError, issue, notFound } from './outcome.js';
import type { FhirRouter } from './router.js';
import { FORMAT_PARAMETERS, type FhirRequest, type FhirResponse } from './types.js';

/** The platform services operations build on, beyond the FHIR router. */
export interface Platform {
  jobs: JobQueue;
  documents: DocumentPipeline;
  models: ModelRegistry;
  /** The patient knowledge index (chunks, refreshes, retrieval). */
  rag: RagIndex;
  /** Generation for chat answers when configured (Amazon Bedrock); absent: the grounded extractive answerer. */
  llm?: LlmProvider;
}

/** What an operation handler receives: the platform's public API plus the parsed invocation. */
export interface OperationContext {
  router: FhirRouter;
  platform: Platform;
  request: FhirRequest;
  level: 'system' | 'type' | 'instance';
  resourceType?: string;
  id?: string;
  /** Input parameters: the POSTed Parameters resource, or GET query parameters as valueString parts. */
  params: Parameters;
  /** The POSTed body when it is a resource other than Parameters (e.g. $validate of a resource). */
  bodyResource?: Resource;
  scope?: Writer;
}

/** An operation: its OperationDefinition (what /metadata advertises) and its handler. */
export interface OperationModule {
  definition: OperationDefinition;
  handler: (ctx: OperationContext) => Promise<Resource | FhirResponse>;
  /**
   * Inputs the definition does not declare are search parameters of the operation's resource type
   * (as R4 defines $lastn), which the handler parses and checks itself.
   */
  takesSearchParameters?: true;
}

/** An operation module's optional boot hook (e.g. registering the job handlers it enqueues). */
export type OperationSetup = (context: { router: FhirRouter; platform: Platform }) => void | Promise<void>;

/** Reads a parameter's value (valueX or resource) by name. */
export function paramValue(params: Parameters, name: string): unknown {
  const p = params.parameter?.find((x) => x.name === name);
  if (!p) {
    return undefined;
  }
  if (p.resource) {
    return p.resource;
  }
  const key = Object.keys(p).find((k) => k.startsWith('value'));
  return key ? p[key as keyof ParametersParameter] : undefined;
}

/** A numeric parameter (valueDecimal, valueInteger, valueQuantity, or a query string); 400 when it is not a number. */
export function numberParam(params: Parameters, name: string): number | undefined {
  const value = paramValue(params, name);
  if (value === undefined) return undefined;
  const raw = typeof value === 'object' && value !== null ? (value as { value?: number }).value : Number(value);
  if (raw === undefined || !Number.isFinite(raw)) throw badRequest(`${name} must be a number`, name);
  return raw;
}

/** A boolean parameter (valueBoolean, or "true"/"false" in a query string); 400 otherwise. */
export function booleanParam(params: Parameters, name: string): boolean | undefined {
  const value = paramValue(params, name);
  if (value === undefined || typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw badRequest(`${name} must be true or false`, name);
}

/**
 * The operations the server runs: the built-in FHIR operations and every folder of operations/,
 * discovered at boot, so adding an operation means adding a folder, not editing the router.
 */
export class OperationRegistry {
  private readonly byCode = new Map<string, OperationModule[]>();
  private capability?: CapabilityStatement;

  constructor(
    private readonly router: FhirRouter,
    private readonly platform: Platform,
  ) {
    router.operations = this;
  }

  register(op: OperationModule): void {
    const list = this.byCode.get(op.definition.code) ?? [];
    list.push(op);
    this.byCode.set(op.definition.code, list);
    this.capability = undefined;
  }

  get all(): OperationModule[] {
    return [...this.byCode.values()].flat();
  }

  capabilityStatement(): CapabilityStatement {
    this.capability ??= buildCapabilityStatement(this.router, this.all);
    return this.capability;
  }

  async invoke(
    request: FhirRequest,
    target: { level: OperationContext['level']; operation: string; resourceType?: string; id?: string },
    scope?: Writer,
  ): Promise<FhirResponse> {
    const op = (this.byCode.get(target.operation) ?? []).find((o) => appliesTo(o.definition, target.level, target.resourceType));
    if (!op) {
      throw notFound(`Operation $${target.operation} is not defined ${target.resourceType ? `for ${target.resourceType} ` : ''}at ${target.level} level`);
    }
    if (request.method === 'GET' && op.definition.affectsState) {
      throw new FhirError(405, [issue('not-supported', `$${target.operation} changes data and must be invoked with POST`)]);
    }
    if (request.method !== 'GET' && request.method !== 'POST') {
      throw new FhirError(405, [issue('not-supported', `Operations are invoked with GET or POST, not ${request.method}`)]);
    }
    if (target.level === 'instance') {
      await this.router.repo.read(target.resourceType!, target.id!, this.router.db(scope)); // 404/410 before the handler runs
    }
    let params: Parameters = { resourceType: 'Parameters', parameter: request.query.map(([name, valueString]) => ({ name, valueString })) };
    let bodyResource: Resource | undefined;
    if (request.method === 'POST' && request.body !== undefined) {
      const body = request.body as Resource;
      if (typeof body !== 'object' || body === null || typeof body.resourceType !== 'string') {
        throw badRequest('An operation body must be a Parameters resource (or the resource the operation takes)');
      }
      if (body.resourceType === 'Parameters') {
        params = { ...body, parameter: [...(body.parameter ?? []), ...(params.parameter ?? [])] };
      } else {
        bodyResource = body;
      }
    }
    if (!op.takesSearchParameters) {
      params = checkInputs(op.definition, params, request.lenient);
    }
    const result = await op.handler({ router: this.router, platform: this.platform, request, ...target, params, bodyResource, scope });
    return 'status' in result && 'headers' in result ? (result as FhirResponse) : { status: 200, resource: result as Resource, headers: {} };
  }

  /**
   * Stores every registered OperationDefinition as a resource under its own id, so that each
   * definition /metadata names can be read (OperationDefinition/[id]) and its canonical resolved
   * (OperationDefinition?url=…) like any other resource. An unchanged one is left as it is, so a
   * restart writes no version; a changed one gets a new version. Every process does this at boot:
   * when two boot at once, the later insert of a new definition conflicts, and its retry finds the
   * other's write and leaves it.
   */
  async publishDefinitions(): Promise<void> {
    const definitions = this.all.map((op) => op.definition as OperationDefinition & { id: string });
    const repo = this.router.repo;
    const publish = (): Promise<void> =>
      repo.transaction(async (w) => {
        const stored = await repo.readMany(definitions.map(({ id }) => ({ resourceType: 'OperationDefinition', id })), w.tx);
        const current = new Map(stored.map((s) => [s.id, s.resource]));
        for (const definition of definitions) {
          const { meta: _meta, ...content } = current.get(definition.id) ?? {};
          if (!isDeepStrictEqual(content, definition)) {
            await w.update(definition).catch((err: unknown) => {
              throw err instanceof FhirError && err.status === 422
                ? new Error(`OperationDefinition/${definition.id} is not valid: ${err.issues.map((i) => `${i.expression?.join() ?? ''} ${i.details?.text ?? ''}`.trim()).join('; ')}`)
                : err;
            });
          }
        }
      });
    await publish().catch(publish);
  }

  /** Loads every operations/<name>/ folder: operation.json (OperationDefinition) + handler module. */
  async loadCustomOperations(): Promise<void> {
    const root = projectRoot();
    const dir = join(root, 'operations');
    if (!existsSync(dir)) {
      return;
    }
    for (const name of readdirSync(dir).sort()) {
      const jsonPath = join(dir, name, 'operation.json');
      if (!existsSync(jsonPath)) {
        continue;
      }
      const definition = JSON.parse(readFileSync(jsonPath, 'utf8')) as OperationDefinition;
      if (definition.resourceType !== 'OperationDefinition' || !definition.code || !definition.id) {
        throw new Error(`operations/${name}/operation.json is not an OperationDefinition with an id and a code`);
      }
      // Relative specifier: resolves to the compiled handler under dist/ and to the .ts source under jest.
      const module = (await import(`../../operations/${name}/handler.js`)) as { handler?: OperationModule['handler']; setup?: OperationSetup };
      if (typeof module.handler !== 'function') {
        throw new Error(`operations/${name}/handler must export a function named handler`);
      }
      await module.setup?.({ router: this.router, platform: this.platform });
      this.register({ definition, handler: module.handler });
    }
  }
}

/**
 * An operation's inputs against its definition: an input it does not declare is refused (400), as an
 * unknown search parameter is, rather than silently ignored — or dropped under Prefer: handling=lenient —
 * and one declared at most once may not be given twice.
 */
function checkInputs(definition: OperationDefinition, params: Parameters, lenient: boolean): Parameters {
  const declared = new Map((definition.parameter ?? []).filter((p) => p.use === 'in').map((p) => [p.name, p.max]));
  const seen = new Map<string, number>();
  const parameter = (params.parameter ?? []).filter((p) => {
    if (FORMAT_PARAMETERS.includes(p.name)) return false;
    if (!declared.has(p.name)) {
      if (lenient) return false;
      throw badRequest(
        `Unknown parameter "${p.name}" for $${definition.code}; it takes ${[...declared.keys()].join(', ') || 'no parameters'} (send Prefer: handling=lenient to ignore unknown parameters)`,
        p.name,
      );
    }
    seen.set(p.name, (seen.get(p.name) ?? 0) + 1);
    return true;
  });
  for (const [name, count] of seen) {
    if (declared.get(name) === '1' && count > 1) {
      throw badRequest(`Parameter "${name}" of $${definition.code} may be given once, got ${count}`, name);
    }
  }
  return { ...params, parameter };
}

/** Whether an operation is defined at this level for this type: one on `Resource`, or on no type named, is on every type. */
export function appliesTo(def: OperationDefinition, level: OperationContext['level'], resourceType?: string): boolean {
  if (level === 'system') {
    return def.system === true;
  }
  if ((level === 'type' && !def.type) || (level === 'instance' && !def.instance)) {
    return false;
  }
  const types = def.resource ?? [];
  return types.length === 0 || types.includes(resourceType as never) || types.includes('Resource' as never);
}

/** The folder holding package.json, found from this module's location (works from src/ and dist/src/). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    }
    dir = parent;
  }
  return dir;
}

