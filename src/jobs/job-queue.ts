import type { Logger } from '../logger.js';
import type { SqlClient, SqlExecutor } from '../storage/sql.js';

/** The priority of upkeep the server schedules for itself: it runs when no job a user waits for is due. */
export const BACKGROUND = 10;

export interface Job<P = unknown> {
  id: string;
  kind: string;
  payload: P;
  attempts: number;
  maxAttempts: number;
}

/** A failure that will not go away by retrying (a corrupt document): the job fails at once. */
export class PermanentJobError extends Error {}

export interface JobHandler {
  run(job: Job): Promise<void>;
  /** Told when the job has failed for good, with the reason (e.g. to mark the Task it tracks). */
  failed?(job: Job, reason: string): Promise<void>;
  /** Delete this kind's finished jobs after this long (default: keep them). */
  keepDoneMs?: number;
}

interface JobRow {
  id: string | number;
  kind: string;
  payload: unknown;
  attempts: number;
  max_attempts: number;
}

export interface JobQueueOptions {
  /** How long a claimed job is held before another worker may take it over (its worker is presumed dead). */
  leaseMs?: number;
  /** Idle polling interval; new jobs enqueued in this process wake the worker at once. */
  pollMs?: number;
  /** First retry delay; doubles with each attempt. */
  backoffMs?: number;
}

/** Finished jobs are purged at most this often. */
const PURGE_EVERY_MS = 60 * 60_000;

/**
 * Durable background jobs in the database, so they survive restarts and any number of API or
 * worker processes share them. A job is enqueued inside the transaction of the write that causes it
 * (it exists exactly when the write does); workers claim due jobs with FOR UPDATE SKIP LOCKED under
 * a lease, retry transient failures with exponential backoff, and fail a job alone when it keeps failing.
 */
export class JobQueue {
  private readonly handlers = new Map<string, JobHandler>();
  private running = false;
  private wake?: () => void;
  private looping?: Promise<void>;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly backoffMs: number;
  private lastPurge = 0;

  constructor(
    private readonly sql: SqlClient,
    private readonly logger: Logger,
    options: JobQueueOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 2 * 60_000;
    this.pollMs = options.pollMs ?? 1000;
    this.backoffMs = options.backoffMs ?? 2000;
  }

  /**
   * Deletes the finished jobs of kinds whose handler sets `keepDoneMs`, once that long has passed (the
   * worker does it hourly); returns how many. Other kinds are kept: a job row can be a record (a
   * document's extraction says its content was read), and failed jobs keep their error.
   */
  async purge(): Promise<number> {
    this.lastPurge = Date.now();
    let purged = 0;
    for (const [kind, handler] of this.handlers) {
      if (handler.keepDoneMs === undefined) continue;
      const rows = await this.sql.query(
        `DELETE FROM job WHERE kind = $1 AND status = 'done' AND finished_at < now() - ($2::bigint * interval '1 millisecond') RETURNING id`,
        [kind, handler.keepDoneMs],
      );
      purged += rows.length;
    }
    return purged;
  }

  handle(kind: string, handler: JobHandler): void {
    this.handlers.set(kind, handler);
  }

  /**
   * Adds a job in the caller's transaction, due now or after `delayMs` (to gather a burst of triggers
   * into one run). Due jobs run by priority (0, the default, first; BACKGROUND after), then in order.
   */
  async enqueue(db: SqlExecutor, kind: string, payload: unknown, options: { maxAttempts?: number; delayMs?: number; priority?: number } = {}): Promise<string> {
    const rows = await db.query<{ id: string | number }>(
      `INSERT INTO job (kind, payload, max_attempts, run_after, priority) VALUES ($1, $2, $3, now() + ($4::int * interval '1 millisecond'), $5) RETURNING id`,
      [kind, JSON.stringify(payload), options.maxAttempts ?? 5, options.delayMs ?? 0, options.priority ?? 0],
    );
    // Committed a moment later by the caller; a worker in this process looks as soon as it can.
    setImmediate(() => this.wake?.());
    return String(rows[0].id);
  }

  /** Jobs were committed: a worker in this process looks now rather than at its next poll. */
  notify(): void {
    this.wake?.();
  }

  /**
   * Jobs marked running that no process can be running: with the embedded database only this
   * process uses it, so after a restart they are queued again at once rather than after their lease.
   */
  async recoverOrphans(): Promise<void> {
    await this.sql.query("UPDATE job SET status = 'queued', run_after = now() WHERE status = 'running'");
  }

  start(): void {
    if (this.running) {
      return;
    }
    this.running = true;
    this.looping = this.loop();
  }

  /** Stops claiming; waits for the jobs in hand to finish. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.looping;
    this.looping = undefined;
  }

  /** Runs due jobs until none is left (a test standing in for a worker process). */
  async drain(): Promise<void> {
    while (await this.runOne()) {
      // keep going
    }
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let worked = false;
      try {
        worked = await this.runOne();
      } catch (err) {
        this.logger.error({ err: errorText(err) }, 'job queue: claiming a job failed');
      }
      if (!worked && this.running && Date.now() - this.lastPurge > PURGE_EVERY_MS) {
        await this.purge().catch((err: unknown) => this.logger.error({ err: errorText(err) }, 'job queue: purging finished jobs failed'));
      }
      if (!worked && this.running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.pollMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  /** Claims and runs one due job; false when there is none. */
  async runOne(): Promise<boolean> {
    const kinds = [...this.handlers.keys()];
    const rows = await this.sql.query<JobRow>(
      `UPDATE job SET status = 'running', attempts = attempts + 1, lease_until = now() + ($2::int * interval '1 millisecond')
       WHERE id = (
         SELECT id FROM job
         WHERE kind = ANY($1::text[]) AND run_after <= now()
           AND (status = 'queued' OR (status = 'running' AND lease_until < now()))
         ORDER BY priority, run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING id, kind, payload, attempts, max_attempts`,
      [kinds, this.leaseMs],
    );
    const row = rows[0];
    if (!row) {
      return false;
    }
    const job: Job = {
      id: String(row.id),
      kind: row.kind,
      payload: typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload,
      attempts: row.attempts,
      maxAttempts: row.max_attempts,
    };
    try {
      await this.handlers.get(job.kind)!.run(job);
      await this.sql.query("UPDATE job SET status = 'done', finished_at = now(), last_error = NULL WHERE id = $1", [job.id]);
    } catch (err) {
      const permanent = err instanceof PermanentJobError || job.attempts >= job.maxAttempts;
      const delay = this.backoffMs * 2 ** (job.attempts - 1);
      this.logger.warn({ job: job.id, kind: job.kind, attempt: job.attempts, permanent, err: errorText(err) }, 'job failed');
      await this.sql.query(
        permanent
          ? "UPDATE job SET status = 'failed', finished_at = now(), last_error = $2 WHERE id = $1"
          : "UPDATE job SET status = 'queued', run_after = now() + ($3::int * interval '1 millisecond'), last_error = $2 WHERE id = $1",
        permanent ? [job.id, errorText(err)] : [job.id, errorText(err), delay],
      );
      if (permanent) {
        await this.handlers.get(job.kind)!.failed?.(job, errorText(err));
      }
    }
    return true;
  }
}

/** Error messages only: a job's payload and stack may carry PHI, the message is written by our code. */
function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
