import { parse, PGlite, protocol, types as pgliteTypes } from '@electric-sql/pglite';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

/**
 * The one SQL interface the server uses. Two implementations share the same SQL:
 * a `pg` pool against a PostgreSQL server, and PGlite (PostgreSQL in WASM) in-process.
 */
export interface SqlExecutor {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<R[]>;
}

export interface QueryOptions {
  /**
   * Plan for these parameter values on every execution instead of reusing a prepared statement's
   * plan: for search statements, whose best plan depends on the values (a generic plan once chose an
   * index scan 100x slower for a sort subquery).
   */
  customPlan?: boolean;
}

/** What listen() reports: every NOTIFY on the channel, and whether notifications are being heard. */
export interface ChannelListener {
  message(payload: string): void;
  /** false when the listening connection is lost (notifications sent meanwhile are missed); true once it listens again. */
  listening(on: boolean): void;
}

export interface SqlClient extends SqlExecutor {
  readonly kind: 'postgres' | 'pglite';
  /** Runs fn in one transaction: committed if fn resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Hears pg_notify(channel, …) from every process using the database, until close(). Until
   * listener.listening(true), notifications may be missed.
   */
  listen(channel: string, listener: ChannelListener): Promise<void>;
  /** Pool statistics for metrics. */
  poolStats(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}

/**
 * Statements with parameters are sent as named prepared statements (unless a custom plan is asked
 * for inside a transaction), so PostgreSQL parses and plans each shape once per connection
 * (measured: 4,200 → 6,800 reads/s). Every varying value is a parameter, so the number of shapes
 * stays small; the cap bounds server memory regardless.
 */
const MAX_PREPARED_STATEMENTS = 500;

/** How long a lost listening connection waits before connecting again. */
const RELISTEN_DELAY_MS = 1000;

/**
 * Makes a connection plan every execution of a prepared statement for its values. Custom-plan
 * statements run on such connections as named statements, so PostgreSQL parses each once per
 * connection instead of on every call: for a patient's Observations by code, 0.5 ms of the 2.2 ms it
 * spent per call. (On the main pool that setting would re-plan every read by id too.) Set once the
 * connection is made rather than as a connection option, which an `options` in DATABASE_URL would
 * silently replace.
 */
const CUSTOM_PLAN_SETTING = 'SET plan_cache_mode = force_custom_plan';

class PostgresClient implements SqlClient {
  readonly kind = 'postgres';
  private readonly statementNames = new Map<string, string>();
  /** The connections that LISTEN: outside the pool, since a pooled connection is shared between queries. */
  private readonly listeners = new Set<pg.Client>();
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    /** Where custom-plan statements run outside transactions (see CUSTOM_PLAN_SETTING). */
    private readonly customPlanPool: pg.Pool,
    private readonly connectionString: string,
  ) {}

  /** Inside a transaction a custom plan is asked for by leaving the statement unnamed: its connection reuses plans. */
  private statement(text: string, params?: readonly unknown[], options?: QueryOptions): pg.QueryConfig {
    return options?.customPlan ? { text, values: params as unknown[] | undefined } : this.named(text, params);
  }

  private named(text: string, params?: readonly unknown[]): pg.QueryConfig {
    if (!params || params.length === 0) {
      return { text, values: params as unknown[] | undefined };
    }
    let name = this.statementNames.get(text);
    if (!name && this.statementNames.size < MAX_PREPARED_STATEMENTS) {
      name = `carelens_${this.statementNames.size + 1}`;
      this.statementNames.set(text, name);
    }
    return { name, text, values: params as unknown[] };
  }

  async query<R extends object>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<R[]> {
    const pool = options?.customPlan ? this.customPlanPool : this.pool;
    const result = await pool.query(this.named(text, params));
    return result.rows as R[];
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const conn = await this.pool.connect();
    try {
      await conn.query('BEGIN');
      const tx: SqlExecutor = {
        query: async <R extends object>(text: string, params?: readonly unknown[], options?: QueryOptions) =>
          (await conn.query(this.statement(text, params, options))).rows as R[],
      };
      const result = await fn(tx);
      await conn.query('COMMIT');
      return result;
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      conn.release();
    }
  }

  /** Resolves once listening, or once the first attempt failed: the listener hears listening(true) when a retry succeeds. */
  async listen(channel: string, listener: ChannelListener): Promise<void> {
    await this.connectListener(channel, listener).catch(() => this.relisten(channel, listener));
  }

  private async connectListener(channel: string, listener: ChannelListener): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString });
    const onLost = (): void => {
      if (!this.listeners.delete(client)) {
        return; // not listening yet (connectListener's caller retries) or already reported
      }
      listener.listening(false);
      void client.end().catch(() => undefined);
      this.relisten(channel, listener);
    };
    client.on('notification', (n) => {
      if (n.channel === channel) {
        listener.message(n.payload ?? '');
      }
    });
    client.on('error', onLost);
    client.on('end', onLost);
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (err) {
      void client.end().catch(() => undefined);
      throw err;
    }
    this.listeners.add(client);
    listener.listening(true);
  }

  private relisten(channel: string, listener: ChannelListener): void {
    if (this.closed) {
      return;
    }
    setTimeout(() => {
      this.connectListener(channel, listener).catch(() => this.relisten(channel, listener));
    }, RELISTEN_DELAY_MS).unref();
  }

  poolStats(): { total: number; idle: number; waiting: number } {
    const pools = [this.pool, this.customPlanPool];
    const sum = (count: (pool: pg.Pool) => number): number => pools.reduce((n, pool) => n + count(pool), 0);
    return { total: sum((p) => p.totalCount), idle: sum((p) => p.idleCount), waiting: sum((p) => p.waitingCount) };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.listeners].map((client) => client.end().catch(() => undefined)));
    await Promise.all([this.pool.end(), this.customPlanPool.end()]);
  }
}

/** A statement PGlite has parsed under a name, with the types of its parameters. */
interface PreparedStatement {
  name: string;
  paramTypes: number[];
}

class PgliteClient implements SqlClient {
  readonly kind = 'pglite';
  private readonly statements = new Map<string, PreparedStatement>();

  constructor(private readonly db: PGlite) {}

  /**
   * Statements with parameters run as named prepared statements, as on PostgreSQL: PGlite's own
   * query() parses, describes and plans every statement in five protocol exchanges (measured on a
   * read by id: 259 µs, against 93 µs bound to a prepared statement in one exchange). Statements
   * inside transaction() still take PGlite's path, through its transaction object.
   */
  async query<R extends object>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<R[]> {
    if (!params || params.length === 0 || options?.customPlan || (!this.statements.has(text) && this.statements.size >= MAX_PREPARED_STATEMENTS)) {
      return (await this.db.query<R>(text, params as unknown[])).rows;
    }
    // The same exclusion as PGlite's query(): never inside another caller's open transaction, one statement at a time.
    return this.db._runExclusiveTransaction(() => this.db._runExclusiveQuery(() => this.execute<R>(text, params)));
  }

  private async execute<R extends object>(text: string, params: readonly unknown[]): Promise<R[]> {
    const statement = this.statements.get(text) ?? (await this.prepare(text));
    const values = params.map((value, i) => {
      if (value === null || value === undefined) {
        return null;
      }
      const serializer = this.db.serializers[statement.paramTypes[i]];
      return serializer ? serializer(value) : String(value);
    });
    const { serialize } = protocol;
    const messages = await this.db.execProtocolStream(
      Buffer.concat([serialize.bind({ statement: statement.name, values }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]),
    );
    return (parse.parseResults(messages, this.db.parsers)[0]?.rows ?? []) as R[];
  }

  private async prepare(text: string): Promise<PreparedStatement> {
    const name = `carelens_${this.statements.size + 1}`;
    const { serialize } = protocol;
    const messages = await this.db.execProtocolStream(
      Buffer.concat([serialize.parse({ name, text, types: [] }), serialize.describe({ type: 'S', name }), serialize.sync()]),
      { syncToFs: false },
    );
    const statement = { name, paramTypes: parse.parseDescribeStatementResults(messages) };
    this.statements.set(text, statement);
    return statement;
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.db.transaction(async (t) =>
      fn({
        query: async <R extends object>(text: string, params?: readonly unknown[]) =>
          (await t.query<R>(text, params as unknown[])).rows,
      }),
    );
  }

  async listen(channel: string, listener: ChannelListener): Promise<void> {
    await this.db.listen(channel, (payload) => listener.message(payload));
    listener.listening(true);
  }

  poolStats(): { total: number; idle: number; waiting: number } {
    return { total: 1, idle: 1, waiting: 0 };
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

// Keep numeric values exact (strings) and timestamps as ISO strings, identically on both backends.
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (v) => v);
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export async function openSql(options: { databaseUrl?: string; dataDir: string; poolSize: number }): Promise<SqlClient> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize });
    const customPlanPool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize });
    // Queued on the new connection before any query the pool hands it.
    customPlanPool.on('connect', (client) => void client.query(CUSTOM_PLAN_SETTING).catch(() => undefined));
    for (const p of [pool, customPlanPool]) {
      // An idle client that errors (server restart) must not crash the process.
      p.on('error', () => undefined);
    }
    return new PostgresClient(pool, customPlanPool, options.databaseUrl);
  }
  if (options.dataDir !== 'memory://') {
    mkdirSync(options.dataDir, { recursive: true });
    if (!existsSync(join(options.dataDir, 'PG_VERSION'))) {
      await initPgliteDataDir(options.dataDir);
    }
  }
  const db = await PGlite.create(options.dataDir, {
    parsers: { [pgliteTypes.TIMESTAMPTZ]: (v: string) => v, [pgliteTypes.INT8]: (v: string) => Number(v) },
    // PGlite's buffer pool lives in WebAssembly memory, which never shrinks, and its files are read
    // through the system's page cache anyway. Measured after 16,000 Observations (reads/s, RSS):
    // 128 MB 914-978, 601-616 MiB; 64 MB 882-898, 559-658 MiB; 32 MB 815-870, 499-528 MiB.
    postgresqlconf: ['shared_buffers=64MB'],
  });
  return new PgliteClient(db);
}

/**
 * Creates a new PGlite data directory (initdb) in a child process. initdb runs in a WebAssembly
 * instance of its own, and the memory it took stays with the process that ran it (a worker thread
 * left ~180 MB behind in the allocator): here it goes back to the system when the child exits.
 */
function initPgliteDataDir(dataDir: string): Promise<void> {
  const pglite = pathToFileURL(createRequire(import.meta.url).resolve('@electric-sql/pglite')).href;
  const script = 'import(process.argv[1]).then(async ({ PGlite }) => (await PGlite.create(process.argv[2])).close())';
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, pglite, dataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`creating the PGlite database in ${dataDir} failed (exit ${code}): ${stderr.trim().slice(-500)}`)),
    );
  });
}
