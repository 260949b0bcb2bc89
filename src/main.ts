import cluster from 'node:cluster';
import type { Server } from 'node:http';
import { createApp } from './app.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { DEMO_ADMIN_TOTP_SECRET, DEMO_OPERATOR, DEMO_USERS, seedDemoAccess } from './demo/demo-access.js';
import { buildDemoBundle } from './demo/demo-bundle.js';
import { FhirDefinitions } from './fhir/definitions.js';
import { projectRoot } from './fhir/operations.js';
import { preloadRequiredBindings } from './fhir/terminology.js';
import { keepConnectionsAlive } from './http/keep-alive.js';
import { createLogger, type Logger } from './logger.js';
import { migrate } from './storage/migrations.js';
import { openSql } from './storage/sql.js';
import { collectAndCompact, collectWhenIdle, type GarbageCollector } from './runtime/idle-collector.js';
import { join } from 'node:path';

/**
 * Starts carelens: config → database + migrations → definitions → app → listen; stops gracefully on
 * SIGTERM/SIGINT. With WORKERS > 1 the primary process migrates the database once and then runs that
 * many HTTP workers (Node cluster) sharing the port, to use every core; each worker is this same path.
 */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`carelens: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (config.workers > 1 && cluster.isPrimary) {
    return supervise(config, logger);
  }
  const sql = await openSql({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize });
  await migrate(sql);
  const defs = new FhirDefinitions(join(projectRoot(), 'profiles'));
  preloadRequiredBindings(); // keep the one-off value-set expansion off the first write
  const app = await createApp(config, sql, defs, logger);

  // In a cluster the first worker loads the demo set; the load is idempotent (PUTs) anyway.
  if (config.loadDemoData && (cluster.isPrimary || cluster.worker?.id === 1)) {
    const response = await app.router.handle({ method: 'POST', path: '', query: [], body: buildDemoBundle(), lenient: false, preferReturn: 'minimal' });
    await seedDemoAccess(app.auth);
    logger.info({ status: response.status }, 'demo data and demo users loaded');
  }

  // Reading the R4 definitions leaves some 130 MB of parse garbage, which V8 keeps resident until
  // memory runs short; one full collection once booted hands it back, and later ones whenever the
  // server falls idle after a burst of work. `npm start`, `npm run serve` and the container run node
  // with --expose-gc for this; without it nothing is collected early.
  const gc = (globalThis as { gc?: GarbageCollector }).gc;
  if (gc) collectAndCompact(gc);
  const stopCollecting = gc ? collectWhenIdle(gc) : undefined;
  app.maintenance.start();
  app.audit.start();
  if (config.inProcessJobs) {
    if (sql.kind === 'pglite') {
      await app.jobs.recoverOrphans();
    }
    app.jobs.start();
  }
  const server: Server = keepConnectionsAlive(app.koa.listen(config.port, config.host));
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (err) => reject(new Error(`cannot listen on ${config.host}:${config.port}: ${err.message}`)));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ port, database: sql.kind }, 'carelens listening');
  if (cluster.isPrimary) {
    printBanner(config, port, sql.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL');
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    app.maintenance.stop();
    stopCollecting?.();
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    // close() stops accepting and waits for in-flight requests; idle keep-alive sockets are closed at once.
    server.close(() => {
      void Promise.all([app.jobs.stop(), app.audit.stop()])
        .then(() => app.documents.close())
        .catch(() => undefined) // what is left in the outbox is moved at the next start
        .then(() => sql.close())
        .then(() => process.exit(0));
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(1), 15_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function printBanner(config: Config, port: number, database: string): void {
  const operator = config.adminClient ?? (config.loadDemoData ? DEMO_OPERATOR : undefined);
  const token = operator
    ? `  Get a token:          curl -s -u '${operator.id}:${config.adminClient ? '<CARELENS_ADMIN_CLIENT_SECRET>' : operator.secret}' \\\n` +
      `                          -d grant_type=client_credentials -d 'scope=system/*.rs' ${config.issuer}/auth/token\n` +
      `  Then:                 curl -H "Authorization: Bearer <access_token>" ${config.baseUrl}/Patient?_count=5\n`
    : `  Access:               every FHIR request needs a SMART token; set CARELENS_ADMIN_CLIENT_ID/SECRET for an operator client\n`;
  const users = config.loadDemoData
    ? `  Demo sign-in users:   ${DEMO_USERS.map((u) => `${u.username} / ${u.password}`).join(', ')}\n` +
      `                        (admin also needs a TOTP code: secret ${DEMO_ADMIN_TOTP_SECRET})\n`
    : '';
  process.stdout.write(
    `\ncarelens is running (${database})\n` +
      `  FHIR base URL:        ${config.baseUrl}\n` +
      `  CapabilityStatement:  ${config.baseUrl}/metadata\n` +
      `  SMART configuration:  ${config.baseUrl}/.well-known/smart-configuration\n` +
      token +
      users +
      `  Health / metrics:     http://${config.host}:${port}/healthz  /readyz  /metrics\n\n`,
  );
}

/** Cluster primary: migrate once, fork the workers, replace any that die, and pass shutdown signals on. */
async function supervise(config: Config, logger: Logger): Promise<void> {
  const sql = await openSql({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 });
  await migrate(sql);
  await sql.close();
  let stopping = false;
  let failed = false;
  const served = new Set<number>();
  cluster.on('listening', (worker) => {
    served.add(worker.id);
    if (served.size === config.workers) {
      printBanner(config, config.port, `PostgreSQL, ${config.workers} workers`);
    }
  });
  cluster.on('exit', (worker, code) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        process.exit(failed ? 1 : 0);
      }
    } else if (!served.has(worker.id)) {
      // It failed before serving (its error is on stderr): restarting would only loop.
      logger.error({ worker: worker.id, code }, 'worker failed to start; stopping');
      failed = true;
      stop('SIGTERM');
    } else {
      logger.error({ worker: worker.id, code }, 'worker exited; starting a new one');
      cluster.fork();
    }
  });
  for (let i = 0; i < config.workers; i++) {
    cluster.fork();
  }
  function stop(signal: NodeJS.Signals): void {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) {
      process.exit(1);
    }
    for (const worker of workers) {
      worker?.process.kill(signal);
    }
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`carelens: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
