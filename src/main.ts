import type { Server } from 'node:http';
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { buildDemoBundle } from './demo/demo-bundle.js';
import { FhirDefinitions } from './fhir/definitions.js';
import { projectRoot } from './fhir/operations.js';
import { preloadRequiredBindings } from './fhir/terminology.js';
import { createLogger } from './logger.js';
import { migrate } from './storage/migrations.js';
import { openSql } from './storage/sql.js';
import { join } from 'node:path';

/** Starts carelens: config → database + migrations → definitions → app → listen; stops gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config;
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
  const sql = await openSql({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize });
  await migrate(sql);
  const defs = new FhirDefinitions(join(projectRoot(), 'profiles'));
  preloadRequiredBindings(); // keep the one-off value-set expansion off the first write
  const app = await createApp(config, sql, defs, logger);

  if (config.loadDemoData) {
    const response = await app.router.handle({ method: 'POST', path: '', query: [], body: buildDemoBundle(), lenient: false, preferReturn: 'minimal' });
    logger.info({ status: response.status }, 'demo data loaded');
  }

  app.statistics.start();
  const server: Server = app.koa.listen(config.port, config.host);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ port, database: sql.kind }, 'carelens listening');
  process.stdout.write(
    `\ncarelens is running (${sql.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL'})\n` +
      `  FHIR base URL:        ${config.baseUrl}\n` +
      `  CapabilityStatement:  ${config.baseUrl}/metadata\n` +
      `  Try:                  curl ${config.baseUrl}/Patient?_count=5\n` +
      `  Health / metrics:     http://${config.host}:${port}/healthz  /readyz  /metrics\n\n`,
  );

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    app.statistics.stop();
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    // close() stops accepting and waits for in-flight requests; idle keep-alive sockets are closed at once.
    server.close(() => {
      void sql.close().then(() => process.exit(0));
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(1), 15_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`carelens: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
