import { AuditLog, type AuditPacing } from '../src/audit/audit-log.js';
import { createLogger } from '../src/logger.js';
import { BACKENDS, useServer } from './harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The background move of the audit outbox into AuditEvent resources, driven by a real AuditLog on
 * the server's database: it waits while traffic goes on within its bounds, keeps a backlog past its
 * bounds down batch by batch, and moves everything once traffic pauses.
 */
describe.each(BACKENDS)('audit trail indexing pace (%s)', (backend) => {
  const server = useServer(backend);

  const outboxSize = async (): Promise<number> => Number((await server.sql.query<{ n: string }>('SELECT count(*) AS n FROM audit_outbox'))[0].n);

  /**
   * Reads recorded by one client: `perTick` events every 40 ms (or slower on a loaded machine), `ticks`
   * times; the outbox size after each tick.
   */
  async function traffic(audit: AuditLog, clientId: string, ticks: number, perTick: number): Promise<{ recorded: number; sizes: number[] }> {
    const sizes: number[] = [];
    let recorded = 0;
    for (let tick = 0; tick < ticks; tick++) {
      await Promise.all(
        Array.from({ length: perTick }, () =>
          audit.record({ kind: 'rest', interaction: 'read', action: 'R', status: 200, clientId, what: [`Observation/pace-${recorded++}`] }),
        ),
      );
      sizes.push(await outboxSize());
      await sleep(40);
    }
    return { recorded, sizes };
  }

  async function indexedEvents(clientId: string): Promise<number> {
    const found = await server.request(`AuditEvent?agent:identifier=urn:carelens:client|${clientId}&_summary=count`);
    expect(found.status).toBe(200);
    return found.body.total;
  }

  async function withAuditLog(pacing: AuditPacing, run: (audit: AuditLog) => Promise<void>): Promise<void> {
    const audit = new AuditLog(server.repository, createLogger('silent'), pacing);
    await audit.materialize(); // what the server recorded before (its token issue) is not this test's
    audit.start(50);
    try {
      await run(audit);
    } finally {
      await audit.stop();
    }
  }

  test('traffic within the bounds: nothing is moved until it pauses, then everything', async () => {
    await withAuditLog({ quietMs: 1000, backlogLimit: 10_000, maxDelayMs: 60_000 }, async (audit) => {
      const { recorded, sizes } = await traffic(audit, 'pace-within', 30, 1);
      expect(recorded).toBe(30);
      expect(sizes[sizes.length - 1]).toBe(recorded);
      const deadline = Date.now() + 10_000;
      while ((await outboxSize()) > 0 && Date.now() < deadline) {
        await sleep(50);
      }
      expect(await outboxSize()).toBe(0);
      expect(await indexedEvents('pace-within')).toBe(recorded);
    });
  });

  test('past the size bound, batches move during the traffic and keep the backlog near the bound', async () => {
    await withAuditLog({ quietMs: 2000, backlogLimit: 200, maxDelayMs: 60_000 }, async (audit) => {
      const { recorded, sizes } = await traffic(audit, 'pace-size', 60, 10);
      expect(recorded).toBe(600);
      // Moved while recording went on, yet only what was past the bound (a batch is 100 events).
      const reached = sizes.findIndex((size) => size > 200);
      expect(reached).toBeGreaterThanOrEqual(0);
      expect(Math.max(...sizes)).toBeLessThan(recorded / 2);
      expect(Math.min(...sizes.slice(reached))).toBeGreaterThan(80);
      await audit.materialize();
      expect(await outboxSize()).toBe(0);
      expect(await indexedEvents('pace-size')).toBe(recorded);
    });
  });

  test('past the age bound, what has waited too long is moved during the traffic', async () => {
    await withAuditLog({ quietMs: 2000, backlogLimit: 10_000, maxDelayMs: 500 }, async (audit) => {
      const { recorded } = await traffic(audit, 'pace-age', 55, 2);
      const [oldest] = await server.sql.query<{ waited: number }>(
        `SELECT extract(epoch FROM now() - min((event->>'recorded')::timestamptz)) * 1000 AS waited FROM audit_outbox`,
      );
      expect(await outboxSize()).toBeLessThan(recorded);
      expect(Number(oldest.waited)).toBeLessThan(500 + 1500);
      await audit.materialize();
      expect(await indexedEvents('pace-age')).toBe(recorded);
    });
  });
});
