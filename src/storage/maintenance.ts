import type { Logger } from '../logger.js';
import type { SqlClient } from './sql.js';

const TABLES = ['resource', 'resource_history', 'sp_token', 'sp_string', 'sp_date', 'sp_number', 'sp_quantity', 'sp_reference', 'sp_uri'];

/** When the next ANALYZE is due. */
export interface AnalyzePacing {
  /** Resources written since the last run that make it due on a small database… */
  minWrites: number;
  /** …or this fraction of the resources there were at the last run, when that is more. */
  growth: number;
  /** The pause after a run, as a multiple of how long the run took. */
  pauseFactor: number;
}

/**
 * Autovacuum's default rule (a tenth of the table changed) with a fifth, as writes here also count the
 * audit trail's; and a pause of ten times the run, because ANALYZE samples a fixed number of rows,
 * so a run costs about the same (2 s of a PostgreSQL core for 180,000 index rows here) whatever was
 * written: at most a tenth of a core however fast writes come.
 */
const DEFAULT_PACING: AnalyzePacing = { minWrites: 1000, growth: 0.2, pauseFactor: 10 };

/**
 * The audit outbox deletes every row it ever holds (see AuditLog): without VACUUM the space of each
 * stays taken for good and the table only grows (measured: 123 MB holding 1,000 live rows after
 * 80,000 requests; VACUUM brought it to 1.9 MB in under a second). Vacuumed this often, it stays
 * small and each run takes milliseconds.
 */
const OUTBOX_VACUUM_INTERVAL_MS = 60_000;

/**
 * Keeps the tables in shape where the database does not do it itself. Planner statistics: without
 * them PostgreSQL estimates one row per index lookup after a bulk load and picks plans 10-100x slower
 * (measured: 49 ms vs 5 ms for Observation?patient&code&_sort); PGlite has no autovacuum at all, a
 * server's autovacuum may lag a large ingest or be off (it is off on the PostgreSQL of our CI
 * machines). ANALYZE runs once at start, in the background, then whenever the data has grown enough
 * since the last run (see AnalyzePacing), checked on an interval. Where no autovacuum runs, those runs
 * are VACUUM (ANALYZE), which also frees the space of updated and deleted rows and marks pages
 * all-visible for index-only scans, and the audit outbox is vacuumed on its own, more often.
 */
export class TableMaintenance {
  /** Resources written since the last run, by type. */
  private writtenByType = new Map<string, number>();
  /** Rows of each resource type as the statistics of the last run have them (types they do not list: none). */
  private analyzedTypes = new Map<string, number>();
  private tick?: () => Promise<void>;
  private outboxVacuumedAt = -Infinity;
  private timer?: NodeJS.Timeout;
  private running = false;
  /** Whether this process vacuums: decided on the first run, from the database itself. */
  private vacuums?: boolean;
  /** Resources in the database at the end of the last run, and when that run ended and how long it took. */
  private last = { resources: 0, endedAt: 0, tookMs: 0 };

  constructor(
    private readonly sql: SqlClient,
    private readonly logger: Logger,
    private readonly pacing: AnalyzePacing = DEFAULT_PACING,
  ) {}

  /** Called by the repository after each committed transaction, with the resources it wrote by type. */
  recordWrites(byType: ReadonlyMap<string, number>): void {
    let outgrew = false;
    for (const [type, count] of byType) {
      const before = this.writtenByType.get(type) ?? 0;
      this.writtenByType.set(type, before + count);
      outgrew ||= before < this.statisticsRows(type) && before + count >= this.statisticsRows(type);
    }
    if (outgrew) {
      void this.tick?.();
    }
  }

  start(intervalMs = 5_000): void {
    this.tick = async (): Promise<void> => {
      await this.vacuumOutboxIfDue();
      await this.refreshIfDue();
    };
    // A database written by an earlier run may never have been analysed.
    void this.vacuumOutboxIfDue().then(() => this.refresh());
    this.timer = setInterval(() => void this.tick?.(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.tick = undefined;
    clearInterval(this.timer);
  }

  isDue(now = Date.now()): boolean {
    const { resources, endedAt, tookMs } = this.last;
    let written = 0;
    for (const count of this.writtenByType.values()) {
      written += count;
    }
    const grown = written >= Math.max(this.pacing.minWrites, this.pacing.growth * resources) && now >= endedAt + this.pacing.pauseFactor * tookMs;
    return !this.running && (grown || this.typeOutgrewStatistics());
  }

  /**
   * One resource type has been written at least as many times as the statistics say it has rows
   * (and at least minWrites): the planner takes it for next to empty, and the plans it picks for it
   * (a nested loop that runs the index lookup once per row) slow down with every row added:
   * measured, the first Group/$risk-assess of a thousand patients on a fresh server took 23-41 s
   * instead of 3-5, its lookup of existing RiskAssessments growing from 2 s to 16 s per batch. Such
   * a run does not wait for the pause; as the type must double between runs, they stay few.
   */
  private typeOutgrewStatistics(): boolean {
    for (const [type, count] of this.writtenByType) {
      if (count >= this.statisticsRows(type)) {
        return true;
      }
    }
    return false;
  }

  /** The rows of a type as the last statistics have them, and at least minWrites. */
  private statisticsRows(type: string): number {
    return Math.max(this.pacing.minWrites, this.analyzedTypes.get(type) ?? 0);
  }

  async refreshIfDue(): Promise<boolean> {
    return this.isDue() ? this.refresh() : false;
  }

  private async refresh(): Promise<boolean> {
    this.running = true;
    this.writtenByType.clear();
    const began = Date.now();
    try {
      const command = (await this.withoutAutovacuum()) ? 'VACUUM (ANALYZE)' : 'ANALYZE';
      for (const table of TABLES) {
        await this.sql.query(`${command} ${table}`);
      }
      // reltuples and the most common resource types are ANALYZE's own estimates: no count(*) over a large table.
      const [stats] = await this.sql.query<{ rows: number | string; types: string[] | null; freqs: number[] | null }>(
        `SELECT c.reltuples AS rows, s.most_common_vals::text::text[] AS types, s.most_common_freqs AS freqs
         FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema() AND s.tablename = 'resource' AND s.attname = 'resource_type'
         WHERE c.oid = 'resource'::regclass`,
      );
      const resources = Math.max(0, Number(stats?.rows ?? 0));
      this.analyzedTypes = new Map((stats?.types ?? []).map((type, i) => [type, Math.round(resources * Number(stats?.freqs?.[i] ?? 0))]));
      this.last = { resources, endedAt: Date.now(), tookMs: Date.now() - began };
      return true;
    } catch (err) {
      this.logger.warn({ err: { message: (err as Error).message } }, 'ANALYZE failed');
      return false;
    } finally {
      this.running = false;
    }
  }

  /**
   * VACUUM of the audit outbox where no autovacuum runs: every audited request inserts and later deletes a row,
   * so without it the table grows by the whole request history. Paced by time, since reads write it too.
   */
  async vacuumOutboxIfDue(now = Date.now()): Promise<boolean> {
    if (now < this.outboxVacuumedAt + OUTBOX_VACUUM_INTERVAL_MS) {
      return false;
    }
    this.outboxVacuumedAt = now;
    try {
      if (!(await this.withoutAutovacuum())) {
        return false;
      }
      await this.sql.query('VACUUM audit_outbox');
      return true;
    } catch (err) {
      this.logger.warn({ err: { message: (err as Error).message } }, 'VACUUM of the audit outbox failed');
      return false;
    }
  }

  /** PGlite runs no autovacuum whatever its setting says (it has no background workers); a server may have it off. */
  private async withoutAutovacuum(): Promise<boolean> {
    if (this.vacuums === undefined) {
      const [row] = await this.sql.query<{ on: boolean }>(`SELECT current_setting('autovacuum')::boolean AS on`);
      this.vacuums = this.sql.kind === 'pglite' || !row.on;
    }
    return this.vacuums;
  }
}
