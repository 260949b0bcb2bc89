import type { Resource } from '@medplum/fhirtypes';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { FhirDefinitions } from '../src/fhir/definitions.js';
import { keepConnectionsAlive } from '../src/http/keep-alive.js';
import { createLogger } from '../src/logger.js';
import type { Repository } from '../src/storage/repository.js';
import { migrate } from '../src/storage/migrations.js';
import { openSql, type SqlClient } from '../src/storage/sql.js';

/**
 * Starts a real carelens HTTP server on an ephemeral port for a test file: on the embedded PGlite
 * (in memory) and, when CARELENS_TEST_DATABASE_URL points at a PostgreSQL server, on a fresh
 * database of its own there. Tests talk to it over HTTP only.
 */
export type Backend = 'pglite' | 'postgres';

export const PG_URL = process.env.CARELENS_TEST_DATABASE_URL;

/** The backends this run covers; PostgreSQL only when CARELENS_TEST_DATABASE_URL is set (CI sets it). */
export const BACKENDS: Backend[] = PG_URL ? ['pglite', 'postgres'] : ['pglite'];
if (!PG_URL && !process.env.CARELENS_QUIET_SKIP) {
  process.env.CARELENS_QUIET_SKIP = '1';
  console.warn('CARELENS_TEST_DATABASE_URL is not set: tests run on the embedded PGlite only, PostgreSQL runs are skipped');
}

export const SHARED_DATA = join(process.cwd(), '..', 'shared', 'data');
export const hasSharedData = (sub: string): boolean => existsSync(join(SHARED_DATA, sub));

let definitions: FhirDefinitions | undefined;
/** The R4 definitions every test server uses, loaded (and indexed into @medplum/core) on first call. */
export function defs(): FhirDefinitions {
  definitions ??= new FhirDefinitions(join(process.cwd(), 'profiles'));
  return definitions;
}

export interface TestServer {
  base: string;
  origin: string;
  sql: SqlClient;
  /** The PostgreSQL database it uses; absent on PGlite. */
  databaseUrl?: string;
  /** The operator client's system/*.cruds token, sent by request() unless the call brings its own Authorization. */
  token: string;
  /**
   * fetch against the FHIR base (or any absolute URL); `path` may start with "/" or not.
   * `anonymous` sends no Authorization header.
   */
  request(path: string, init?: RequestInit & { json?: unknown; anonymous?: boolean }): Promise<TestResponse>;
  /** Runs every due background job to completion, as a separate `npm run worker` process would. */
  runJobs(): Promise<void>;
  /** The server's repository, for operator tasks that have no HTTP API (npm run admin -- reindex). */
  repository: Repository;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  // Test convenience: assertions reach into arbitrary response JSON.
  body: any;
  text: string;
}

/**
 * `sharing` starts a second server process's worth of app on another server's PostgreSQL database,
 * as WORKERS > 1 or several hosts would run; that database stays the other server's to drop.
 */
export async function startServer(backend: Backend, env: Record<string, string> = {}, sharing?: TestServer): Promise<TestServer> {
  let dropDatabase: (() => Promise<void>) | undefined;
  let databaseUrl: string | undefined = sharing?.databaseUrl;
  if (backend === 'postgres' && !databaseUrl) {
    const name = `carelens_t_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(PG_URL!);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    dropDatabase = async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    };
  }
  // PGlite keeps its data in memory unless the test gives it a DATA_DIR.
  const sql = await openSql({ databaseUrl, dataDir: env.DATA_DIR ?? 'memory://', poolSize: 8 });
  await migrate(sql);
  // The port is known only after listen: build config with a placeholder, then fix the base URL.
  const server: Server = await new Promise((resolve) => {
    const srv = keepConnectionsAlive(createServer());
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
  const port = (server.address() as AddressInfo).port;
  const config = loadConfig(
    {
      PORT: String(port),
      LOG_LEVEL: process.env.CARELENS_TEST_LOG_LEVEL ?? 'silent',
      CARELENS_ADMIN_CLIENT_ID: OPERATOR.id,
      CARELENS_ADMIN_CLIENT_SECRET: OPERATOR.secret,
      // Background index refreshes (and the insights they recompute) would write into other suites' data while they assert on it: the RAG suites turn them on.
      RAG_AUTO_REFRESH: 'false',
      ...env,
    },
    [],
  );
  const app = await createApp(config, sql, defs(), createLogger(config.logLevel));
  server.on('request', app.koa.callback());
  if (config.inProcessJobs) {
    app.jobs.start();
  }
  const origin = `http://127.0.0.1:${port}`;
  const base = config.baseUrl;
  const token = await clientCredentialsToken(origin, OPERATOR.id, OPERATOR.secret, 'system/*.cruds');
  return {
    base,
    origin,
    sql,
    databaseUrl,
    token,
    async request(path, init = {}) {
      const url = /^https?:/.test(path) ? path : `${base}/${path.replace(/^\//, '')}`;
      const headers = new Headers(init.headers);
      if (!init.anonymous && !headers.has('Authorization')) {
        headers.set('Authorization', `Bearer ${token}`);
      }
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        if (!headers.has('Content-Type')) {
          headers.set('Content-Type', 'application/fhir+json');
        }
      }
      const res = await fetch(url, { ...init, headers, body });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    runJobs: () => app.jobs.drain(),
    repository: app.router.repo,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await app.jobs.stop();
      await app.documents.close();
      await sql.close();
      await dropDatabase?.();
    },
  };
}

/**
 * Registers beforeAll/afterAll hooks that start and stop a server for the enclosing describe block,
 * and returns a handle usable in tests (and in later beforeAll hooks) once it is up.
 */
export function useServer(backend: Backend, env: Record<string, string> = {}): TestServer {
  let started: TestServer | undefined;
  beforeAll(async () => {
    started = await startServer(backend, env);
  });
  afterAll(async () => {
    await started?.close();
  });
  const current = (): TestServer => {
    if (!started) {
      throw new Error('the test server is not started: use it inside tests or hooks');
    }
    return started;
  };
  return {
    get base() {
      return current().base;
    },
    get origin() {
      return current().origin;
    },
    get sql() {
      return current().sql;
    },
    get databaseUrl() {
      return current().databaseUrl;
    },
    get token() {
      return current().token;
    },
    request: (path, init) => current().request(path, init),
    runJobs: () => current().runJobs(),
    get repository() {
      return current().repository;
    },
    close: () => current().close(),
  };
}

/** The operator client every test server is started with (CARELENS_ADMIN_CLIENT_ID / _SECRET). */
export const OPERATOR = { id: 'test-operator', secret: 'test-operator-secret-0123456789' };

/** A token from the token endpoint for a client_secret_basic client (RFC 6749 §4.4). */
export async function clientCredentialsToken(origin: string, clientId: string, secret: string, scope: string): Promise<string> {
  const res = await fetch(`${origin}/auth/token`, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !body.access_token) {
    throw new Error(`client_credentials for ${clientId} failed: ${res.status} ${JSON.stringify(body)}`);
  }
  return body.access_token;
}

/** POSTs a resource and returns what the server stored. */
export async function create<T extends Resource>(server: TestServer, resource: T): Promise<T & { id: string }> {
  const res = await server.request(resource.resourceType, { method: 'POST', json: resource });
  if (res.status !== 201) {
    throw new Error(`create ${resource.resourceType} failed: ${res.status} ${res.text}`);
  }
  return res.body;
}
