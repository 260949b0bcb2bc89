import { createLogger } from '../src/logger.js';
import { BACKGROUND, JobQueue, PermanentJobError } from '../src/jobs/job-queue.js';
import { migrate } from '../src/storage/migrations.js';
import { openSql, type SqlClient } from '../src/storage/sql.js';

/**
 * The durable job queue on a real (embedded) database: transient failures are retried with
 * exponential backoff, a permanent failure or too many attempts fail the job alone, and a job whose
 * worker died is taken over when its lease runs out.
 */
describe('job queue', () => {
  let sql: SqlClient;
  beforeAll(async () => {
    sql = await openSql({ dataDir: 'memory://', poolSize: 1 });
    await migrate(sql);
  });
  afterAll(() => sql.close());

  const row = async (id: string) =>
    (
      await sql.query<{ status: string; attempts: number; last_error: string | null; delay_ms: number }>(
        'SELECT status, attempts, last_error, extract(epoch FROM (run_after - now())) * 1000 AS delay_ms FROM job WHERE id = $1',
        [id],
      )
    )[0];

  test('a transient failure is retried after a delay that doubles, then succeeds', async () => {
    const queue = new JobQueue(sql, createLogger('silent'), { backoffMs: 60_000 });
    let calls = 0;
    queue.handle('flaky', {
      run: async () => {
        calls++;
        if (calls < 3) {
          throw new Error(`connection reset ${calls}`);
        }
      },
    });
    const id = await queue.enqueue(sql, 'flaky', { n: 1 });
    expect(await queue.runOne()).toBe(true);
    const first = await row(id);
    expect([first.status, first.attempts, first.last_error]).toEqual(['queued', 1, 'connection reset 1']);
    expect(Number(first.delay_ms)).toBeGreaterThan(55_000);
    expect(await queue.runOne()).toBe(false); // not due yet

    await sql.query('UPDATE job SET run_after = now() WHERE id = $1', [id]);
    await queue.runOne();
    const second = await row(id);
    expect(second.attempts).toBe(2);
    expect(Number(second.delay_ms)).toBeGreaterThan(115_000); // 2 × the first delay

    await sql.query('UPDATE job SET run_after = now() WHERE id = $1', [id]);
    await queue.runOne();
    expect((await row(id)).status).toBe('done');
    expect(calls).toBe(3);
  });

  test('due jobs a user waits for run before background upkeep, whatever their order', async () => {
    const queue = new JobQueue(sql, createLogger('silent'));
    const ran: string[] = [];
    queue.handle('ordered', { run: async (job) => void ran.push((job.payload as { name: string }).name) });
    await queue.enqueue(sql, 'ordered', { name: 'upkeep 1' }, { priority: BACKGROUND });
    await queue.enqueue(sql, 'ordered', { name: 'upkeep 2' }, { priority: BACKGROUND });
    await queue.enqueue(sql, 'ordered', { name: 'requested' });
    await queue.drain();
    expect(ran).toEqual(['requested', 'upkeep 1', 'upkeep 2']);
  });

  test('finished jobs of a kind that asks for it are purged once kept long enough; failed ones and other kinds stay', async () => {
    const queue = new JobQueue(sql, createLogger('silent'));
    queue.handle('short-lived', { run: async () => undefined, keepDoneMs: 60_000 });
    queue.handle('a-record', { run: async () => undefined });
    const old = await queue.enqueue(sql, 'short-lived', {});
    const recent = await queue.enqueue(sql, 'short-lived', {});
    const record = await queue.enqueue(sql, 'a-record', {});
    const failed = await queue.enqueue(sql, 'short-lived', {});
    await queue.drain();
    await sql.query("UPDATE job SET status = 'failed', finished_at = now() - interval '1 day' WHERE id = $1", [failed]);
    await sql.query("UPDATE job SET finished_at = now() - interval '2 minutes' WHERE id = ANY($1::bigint[])", [[old, record]]);
    expect(await queue.purge()).toBe(1);
    const left = (await sql.query<{ id: string | number }>('SELECT id FROM job WHERE id = ANY($1::bigint[])', [[old, recent, record, failed]])).map((r) => String(r.id));
    expect(left.sort()).toEqual([recent, record, failed].sort());
  });

  test('a permanent failure fails the job at once and tells its handler, other jobs still run', async () => {
    const queue = new JobQueue(sql, createLogger('silent'));
    const failed: string[] = [];
    const ran: string[] = [];
    queue.handle('doc', {
      run: async (job) => {
        const { name } = job.payload as { name: string };
        if (name === 'poison') {
          throw new PermanentJobError('the document cannot be read');
        }
        ran.push(name);
      },
      failed: async (job, reason) => {
        failed.push(`${(job.payload as { name: string }).name}: ${reason}`);
      },
    });
    const poison = await queue.enqueue(sql, 'doc', { name: 'poison' });
    await queue.enqueue(sql, 'doc', { name: 'fine' });
    await queue.drain();
    expect((await row(poison)).status).toBe('failed');
    expect(failed).toEqual(['poison: the document cannot be read']);
    expect(ran).toEqual(['fine']);
  });

  test('after max attempts a job fails; a job whose worker died is taken over when its lease expires', async () => {
    const queue = new JobQueue(sql, createLogger('silent'), { backoffMs: 0 });
    queue.handle('always-fails', { run: async () => Promise.reject(new Error('still down')) });
    const id = await queue.enqueue(sql, 'always-fails', {}, { maxAttempts: 2 });
    await queue.drain();
    expect(await row(id)).toMatchObject({ status: 'failed', attempts: 2, last_error: 'still down' });

    let ran = 0;
    queue.handle('abandoned', { run: async () => void ran++ });
    const abandoned = await queue.enqueue(sql, 'abandoned', {});
    await sql.query("UPDATE job SET status = 'running', attempts = 1, lease_until = now() + interval '1 hour' WHERE id = $1", [abandoned]);
    expect(await queue.runOne()).toBe(false); // its lease still holds
    await sql.query("UPDATE job SET lease_until = now() - interval '1 second' WHERE id = $1", [abandoned]);
    expect(await queue.runOne()).toBe(true);
    expect(await row(abandoned)).toMatchObject({ status: 'done', attempts: 2 });
    expect(ran).toBe(1);
  });
});
