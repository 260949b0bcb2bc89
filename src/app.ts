import Router from '@koa/router';
import Koa from 'koa';
import { AuditLog } from './audit/audit-log.js';
import { auditedRequest, restAuditRecord } from './audit/rest-audit.js';
import { type AuthServer, createAuthServer } from './auth/auth-server.js';
import type { Config } from './config.js';
import { installBundleHandler } from './fhir/bundle.js';
import type { FhirDefinitions } from './fhir/definitions.js';
import { OperationRegistry, type Platform, projectRoot } from './fhir/operations.js';
import { everythingOperation } from './fhir/operations/everything.js';
import { lastnOperation } from './fhir/operations/lastn.js';
import { matchOperation } from './fhir/operations/match.js';
import { validateOperation } from './fhir/operations/validate.js';
import { FhirError, notFound } from './fhir/outcome.js';
import { FhirRouter } from './fhir/router.js';
import type { FhirRequest } from './fhir/types.js';
import { assertValid } from './fhir/validation.js';
import { acceptsEventStream, checkAcceptable, readBody } from './http/body.js';
import { crossOrigin } from './http/cors.js';
import { errorBoundary } from './http/error-boundary.js';
import { Metrics } from './http/metrics.js';
import { type AppState, requestId } from './http/request-id.js';
import { fhirResponse } from './http/response.js';
import type { Logger } from './logger.js';
import { schemaVersion, SCHEMA_VERSION } from './storage/migrations.js';
import { Repository } from './storage/repository.js';
import { SearchIndexer } from './storage/search-index.js';
import { TableMaintenance } from './storage/maintenance.js';
import { AttachmentCipher } from './storage/attachment-cipher.js';
import { createOcrProvider } from './ai/ocr-provider.js';
import { DocumentPipeline } from './documents/pipeline.js';
import { JobQueue } from './jobs/job-queue.js';
import { ModelMonitor } from './ml/model-monitor.js';
import { CdsClientAuth } from './cds/client-auth.js';
import { CdsServices } from './cds/cds-hooks.js';
import { ModelRegistry } from './ml/model-registry.js';
import { RagIndex } from './rag/rag-index.js';
import { createEmbeddingProvider, createLlmProvider } from './ai/llm-provider.js';
import { join, resolve } from 'node:path';
import type { SqlClient } from './storage/sql.js';

export interface App {
  koa: Koa<AppState>;
  router: FhirRouter;
  maintenance: TableMaintenance;
  auth: AuthServer;
  audit: AuditLog;
  /** Durable background jobs; started by whichever process runs them (API by default, or `npm run worker`). */
  jobs: JobQueue;
  documents: DocumentPipeline;
  models: ModelRegistry;
}

/**
 * Assembles the server. Read top to bottom, this is the path of a request:
 * request id + access log → metrics → error boundary → operability endpoints → authorization
 * server (SMART discovery, OAuth endpoints, sign-in pages, launch and admin APIs) → FHIR
 * dispatcher, which authenticates the bearer token, applies its access policy and audits.
 */
export async function createApp(config: Config, sql: SqlClient, defs: FhirDefinitions, logger: Logger): Promise<App> {
  const maintenance = new TableMaintenance(sql, logger);
  const repo = new Repository(
    sql,
    new SearchIndexer(defs, config.baseUrl),
    (resource) => assertValid(defs, resource, { unknownProfile: config.unknownProfile }),
    await AttachmentCipher.open(sql, config.encryptionKeys, (message) => logger.warn(message)),
    (written) => maintenance.recordWrites(written),
  );
  const fhir = new FhirRouter(defs, repo, {
    baseUrl: config.baseUrl,
    issuer: config.issuer,
    defaultPageSize: config.defaultPageSize,
    maxPageSize: config.maxPageSize,
  });
  installBundleHandler(fhir);
  const jobs = new JobQueue(sql, logger);
  const documents = new DocumentPipeline(
    repo,
    (type, query) => fhir.parseSearch(type, query, false),
    jobs,
    () => createOcrProvider({ textract: config.textract }),
    { maxBytes: config.documentMaxBytes, reviewThreshold: config.reviewThreshold },
    logger,
  );
  const metrics = new Metrics(sql);
  const models = new ModelRegistry(join(projectRoot(), 'models'), new ModelMonitor(metrics.registry), logger);
  const loaded = await models.reload();
  for (const failure of loaded.failed) {
    logger.warn({ model: failure.name, err: failure.error }, 'model not loaded');
  }
  const rag = new RagIndex(
    repo,
    jobs,
    documents,
    {
      autoRefresh: config.rag.autoRefresh,
      delayMs: config.rag.refreshDelayMs,
      embedder: createEmbeddingProvider(config.bedrock, config.localEmbeddingModel && resolve(projectRoot(), 'models', config.localEmbeddingModel)),
    },
    logger,
  );
  const platform: Platform = { jobs, documents, models, rag, llm: createLlmProvider(config.bedrock) };
  const operations = new OperationRegistry(fhir, platform);
  for (const op of [validateOperation, everythingOperation, lastnOperation, matchOperation]) {
    operations.register(op);
  }
  await operations.loadCustomOperations();
  await operations.publishDefinitions();
  const audit = new AuditLog(repo, logger);
  const auth = await createAuthServer({
    config,
    sql,
    logger,
    fhir,
    audit,
  });

  const koa = new Koa<AppState>({ proxy: true });
  koa.use(requestId(logger));
  koa.use(metrics.middleware());
  koa.use(errorBoundary(logger));
  const fhirPrefix = new URL(config.baseUrl).pathname.replace(/\/$/, '');
  const isFhirPath = (path: string): boolean => path === fhirPrefix || path.startsWith(fhirPrefix + '/');
  koa.use(crossOrigin((path) => isFhirPath(path) || path === '/cds-services' || path.startsWith('/cds-services/')));

  const ops = new Router<AppState>();
  ops.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  ops.get('/readyz', async (ctx) => {
    try {
      const version = await schemaVersion(sql);
      const ready = version === SCHEMA_VERSION;
      ctx.status = ready ? 200 : 503;
      ctx.body = { status: ready ? 'ready' : 'migrating', database: sql.kind, schemaVersion: version };
    } catch {
      ctx.status = 503;
      ctx.body = { status: 'database unreachable', database: sql.kind };
    }
  });
  ops.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  ops.get('/', (ctx) => {
    ctx.body = { name: 'carelens', fhirBaseUrl: config.baseUrl, capabilityStatement: `${config.baseUrl}/metadata` };
  });
  // Model cards are public documentation; monitoring and reloading are for admins.
  ops.get('/models', (ctx) => {
    ctx.body = { models: models.list() };
  });
  ops.get('/models/:name', (ctx) => {
    const card = models.card(ctx.params.name);
    if (!card) throw notFound(`No model named "${ctx.params.name}"`);
    ctx.body = card;
  });
  ops.get('/models/:name/card.md', (ctx) => {
    const markdown = models.cardMarkdown(ctx.params.name);
    if (markdown === undefined) throw notFound(`No model card for "${ctx.params.name}"`);
    ctx.type = 'text/markdown; charset=utf-8';
    ctx.body = markdown;
  });
  ops.get('/admin/models', async (ctx) => {
    await auth.requireAdmin(ctx);
    ctx.body = { models: models.list(), monitoring: models.monitor.snapshot() };
  });
  ops.post('/admin/models/reload', async (ctx) => {
    await auth.requireAdmin(ctx);
    ctx.body = await models.reload();
  });
  koa.use(ops.routes());
  // CDS Hooks services authenticate their callers themselves (signed client JWTs, not SMART tokens).
  const cds = new CdsServices(fhir, platform, new CdsClientAuth(config.cdsClients, config.cdsAllowUnsigned), new URL(config.baseUrl).origin, config.maxBodyBytes);
  await cds.load(projectRoot());
  koa.use(cds.routes().routes());
  koa.use(auth.middleware);

  koa.use(async (ctx, next) => {
    if (!isFhirPath(ctx.path)) {
      return next();
    }
    const path = decodeURIComponent(ctx.path.slice(fhirPrefix.length));
    const binary = /^\/*Binary(\/[^/$]+)?\/*$/.test(path) || /^\/*Binary\/[^/$]+\/_history\/[^/]+\/*$/.test(path);
    // Operations may stream their answer as Server-Sent Events; everything else is FHIR JSON.
    const operation = /(^|\/)\$[^/]+\/*$/.test(path);
    checkAcceptable(ctx, binary && ctx.method === 'GET', operation);
    // The CapabilityStatement is public (clients discover the authorization server from it); all else needs a token.
    const isPublic = path.replace(/^\/+|\/+$/g, '') === 'metadata' && (ctx.method === 'GET' || ctx.method === 'HEAD');
    const access = isPublic
      ? undefined
      : await auth.accessPolicy(ctx).catch(async (err: unknown) => {
          await audit.record(restAuditRecord(ctx, { method: ctx.method, path, query: ctx.querystring }, err instanceof FhirError ? err.status : 500));
          throw err;
        });
    const { body, contentType } = await readBody(ctx, config.maxBodyBytes, binary);
    const prefer = ctx.get('Prefer');
    const request: FhirRequest = {
      method: ctx.method as FhirRequest['method'],
      path,
      query: [...new URLSearchParams(ctx.querystring)],
      body,
      contentType,
      ifMatch: ctx.get('If-Match') || undefined,
      ifNoneMatch: ctx.get('If-None-Match') || undefined,
      ifNoneExist: ctx.get('If-None-Exist') || undefined,
      ifModifiedSince: ctx.get('If-Modified-Since') || undefined,
      securityContext: ctx.get('X-Security-Context') || undefined,
      respondAsync: /respond-async/.test(prefer),
      lenient: /handling=lenient/.test(prefer),
      eventStream: operation && acceptsEventStream(ctx),
      preferReturn: /return=minimal/.test(prefer)
        ? 'minimal'
        : /return=OperationOutcome/i.test(prefer)
          ? 'OperationOutcome'
          : /return=representation/.test(prefer)
            ? 'representation'
            : undefined,
    };
    const response = access ? await auditedRequest(audit, ctx, { ...request, access }, () => fhir.handle({ ...request, access })) : await fhir.handle(request);
    fhirResponse(ctx, request, request.respondAsync ? await documents.asyncResponse(response, config.baseUrl) : response);
  });

  return { koa, router: fhir, maintenance, auth, audit, jobs, documents, models };
}

