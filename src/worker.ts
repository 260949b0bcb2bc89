import { join } from 'node:path';
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { FhirDefinitions } from './fhir/definitions.js';
import { projectRoot } from './fhir/operations.js';
import { createLogger } from './logger.js';
import { migrate } from './storage/migrations.js';
import { openSql } from './storage/sql.js';

/**
 * `npm run worker`: runs the background jobs (the document pipeline) in a process of its own,
 * against the same PostgreSQL database as the API nodes, which then run with IN_PROCESS_JOBS=false.
 * Any number of workers may run: each claims jobs with SKIP LOCKED.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.databaseUrl) {
    throw new ConfigError('a separate worker needs DATABASE_URL: the embedded PGlite database lives inside the API process');
  }
  const logger = createLogger(config.logLevel);
  const sql = await openSql({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 4 });
  await migrate(sql);
  const app = await createApp(config, sql, new FhirDefinitions(join(projectRoot(), 'profiles')), logger);
  app.jobs.start();
  logger.info('carelens worker running jobs');
  const stop = (): void => {
    void app.jobs
      .stop()
      .then(() => app.documents.close())
      .then(() => sql.close())
      .then(() => process.exit(0));
    setTimeout(() => process.exit(1), 60_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`carelens worker: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
