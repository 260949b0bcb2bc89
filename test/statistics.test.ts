import { createLogger } from '../src/logger.js';
import { StatisticsRefresher } from '../src/storage/statistics.js';
import { BACKENDS, useServer } from './harness.js';

/** Planner statistics upkeep on the server's real database: when ANALYZE runs, and that it does. */
describe.each(BACKENDS)('planner statistics (%s)', (backend) => {
  const server = useServer(backend);

  const estimatedResources = async (): Promise<number> =>
    Number((await server.sql.query<{ rows: number | string }>(`SELECT reltuples AS rows FROM pg_class WHERE oid = 'resource'::regclass`))[0].rows);

  test('runs after enough writes, then waits for a fifth more data and for ten times its own duration', async () => {
    const patients = Array.from({ length: 60 }, (_, i) => ({
      request: { method: 'POST', url: 'Patient' },
      resource: { resourceType: 'Patient', name: [{ family: `Statistics${i}` }] },
    }));
    const written = await server.request('', { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry: patients } });
    expect(written.status).toBe(200);

    const refresher = new StatisticsRefresher(server.sql, createLogger('silent'), { minWrites: 10, growth: 0.2, pauseFactor: 10 });
    refresher.recordWrites(9);
    expect(await refresher.refreshIfDue()).toBe(false);
    refresher.recordWrites(1);
    expect(await refresher.refreshIfDue()).toBe(true);
    // ANALYZE ran: the planner's estimate of the resource table now counts the patients.
    const resources = await estimatedResources();
    expect(resources).toBeGreaterThanOrEqual(60);

    const later = Date.now() + 3_600_000;
    const fifth = Math.max(10, Math.ceil(0.2 * resources));
    refresher.recordWrites(fifth - 1);
    expect(refresher.isDue(later)).toBe(false);
    refresher.recordWrites(1);
    expect(refresher.isDue(later)).toBe(true);
    // Enough written, but the run just ended: the pause (ten times the run, which took some milliseconds) is not over.
    expect(refresher.isDue()).toBe(false);
  });
});
