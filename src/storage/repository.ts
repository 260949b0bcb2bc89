import type { Resource } from '@medplum/fhirtypes';
import { newResourceId } from './resource-id.js';
import { FhirError, gone, notFound, preconditionFailed } from '../fhir/outcome.js';
import type { SearchRequest } from '../fhir/search/types.js';
import { INDEX_COLUMNS, type IndexRows, INDEX_TABLES, type SearchIndexer } from './search-index.js';
import { compileCount, compileLastN, compileSearch } from './search-sql.js';
import type { AttachmentCipher } from './attachment-cipher.js';
import type { SqlClient, SqlExecutor } from './sql.js';

/** One row of the resource table, or of its history. */
export interface StoredResource<T extends Resource = Resource> {
  resourceType: string;
  id: string;
  versionId: string;
  lastUpdated: string;
  deleted: boolean;
  /** Absent for a deletion. */
  resource?: T;
  /** The interaction that produced this version (history entries). */
  method?: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** In search results: the row's sort key values, for a paging cursor. */
  sortKey?: (string | null)[];
}

/** A write ready to be flushed: ids and versions assigned, index rows extracted. */
interface PreparedWrite {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  deleted: boolean;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  content: Resource | null;
  index: IndexRows | null;
  compartments: string[];
  /** False for a brand-new id: nothing to delete from the index first. */
  existed: boolean;
}

export interface HistoryOptions {
  since?: string;
  at?: string;
  /** Only versions written at or before this instant (stable paging). */
  snapshot?: string;
  count: number;
  offset: number;
}

export type Validate = (resource: Resource) => void;

/**
 * Runs inside the writing transaction for each created, updated or deleted resource (a deletion has
 * no `resource`), with the patient compartments ('Patient/<id>') it belongs to or belonged to.
 */
export type WriteHook = (writer: Writer, stored: StoredResource, compartments: readonly string[]) => Promise<void>;

/**
 * The FHIR repository: every read and write of resources goes through here. Each write is one
 * database transaction holding the current row, the immutable history version and the search
 * index rows, so a failure leaves nothing half-written.
 */
export class Repository {
  constructor(
    readonly sql: SqlClient,
    private readonly indexer: SearchIndexer,
    private readonly validate: Validate,
    private readonly cipher: AttachmentCipher,
    /** Told how many resources of each type each committed transaction wrote (planner statistics upkeep). */
    private readonly onCommit: (written: ReadonlyMap<string, number>) => void = () => undefined,
  ) {}

  /** Hooks run inside the transaction of every write, after it is prepared (jobs that must start with it). */
  readonly writeHooks: WriteHook[] = [];

  /** A stored row's content as clients see it (document content decrypted). */
  decode(content: unknown): Resource | undefined {
    if (content === null || content === undefined) {
      return undefined;
    }
    return this.cipher.open((typeof content === 'string' ? JSON.parse(content) : content) as Resource);
  }

  private toStored = (row: Row): StoredResource => {
    const content = this.decode(row.content);
    return {
      resourceType: row.resource_type,
      id: row.id,
      versionId: String(row.version_id),
      lastUpdated: content?.meta?.lastUpdated ?? new Date(row.last_updated.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString(),
      deleted: row.deleted,
      resource: content,
      method: row.method,
    };
  };

  async read(resourceType: string, id: string, db: SqlExecutor = this.sql): Promise<StoredResource> {
    const rows = await db.query<Row>(
      'SELECT resource_type, id, version_id, last_updated, deleted, content FROM resource WHERE resource_type = $1 AND id = $2',
      [resourceType, id],
    );
    if (rows.length === 0) {
      throw notFound(`${resourceType}/${id} is not known`);
    }
    const stored = this.toStored(rows[0]);
    if (stored.deleted) {
      throw deletedError(stored);
    }
    return stored;
  }

  /**
   * Re-extracts the search index rows and compartments of the stored resources (of one type, or all),
   * after the indexing rules change (a new SearchParameter, a new modifier's index). Batches of
   * `batchSize`, each its own transaction, in id order, so a large database is done in steps.
   */
  async reindex(resourceType?: string, batchSize = 500): Promise<number> {
    let done = 0;
    let after = ['', ''];
    for (;;) {
      const rows = await this.sql.query<Row>(
        `SELECT resource_type, id, version_id, last_updated, deleted, content FROM resource
         WHERE NOT deleted AND ($1::text IS NULL OR resource_type = $1) AND (resource_type, id) > ($2, $3)
         ORDER BY resource_type, id LIMIT $4`,
        [resourceType ?? null, after[0], after[1], batchSize],
      );
      if (rows.length === 0) return done;
      const writes = rows.map((row) => {
        const { rows: index, compartments } = this.indexOf(this.decode(row.content)!);
        return { resourceType: row.resource_type, id: row.id, index, compartments };
      });
      await this.sql.transaction(async (tx) => {
        const types = writes.map((w) => w.resourceType);
        const ids = writes.map((w) => w.id);
        for (const table of INDEX_TABLES) {
          await tx.query(`DELETE FROM sp_${table} s USING unnest($1::text[], $2::text[]) AS k(t, i) WHERE s.resource_type = k.t AND s.id = k.i`, [types, ids]);
        }
        await insertIndexRows(tx, writes);
        await tx.query(
          `UPDATE resource r SET compartments = x.p::text[] FROM unnest($1::text[], $2::text[], $3::text[]) AS x(t, i, p) WHERE r.resource_type = x.t AND r.id = x.i`,
          [types, ids, writes.map((w) => `{${w.compartments.map((c) => `"${c}"`).join(',')}}`)],
        );
      });
      done += rows.length;
      after = [rows[rows.length - 1].resource_type, rows[rows.length - 1].id];
    }
  }

  /** The newest version that has content: the current one, or the last before a deletion. */
  async lastContent(resourceType: string, id: string, db: SqlExecutor = this.sql): Promise<Resource | undefined> {
    const rows = await db.query<Row>(
      `SELECT resource_type, id, version_id, last_updated, deleted, content FROM resource_history
       WHERE resource_type = $1 AND id = $2 AND NOT deleted ORDER BY version_id DESC LIMIT 1`,
      [resourceType, id],
    );
    return rows[0] ? this.toStored(rows[0]).resource : undefined;
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredResource> {
    if (!/^\d{1,18}$/.test(versionId)) {
      throw notFound(`${resourceType}/${id} has no version ${versionId}`);
    }
    const rows = await this.sql.query<Row>(
      `SELECT resource_type, id, version_id, last_updated, deleted, content, method FROM resource_history
       WHERE resource_type = $1 AND id = $2 AND version_id = $3`,
      [resourceType, id, Number(versionId)],
    );
    if (rows.length === 0) {
      const exists = await this.sql.query('SELECT 1 FROM resource WHERE resource_type = $1 AND id = $2', [resourceType, id]);
      throw notFound(exists.length ? `${resourceType}/${id} has no version ${versionId}` : `${resourceType}/${id} is not known`);
    }
    const stored = this.toStored(rows[0]);
    if (stored.deleted) {
      throw deletedError(stored);
    }
    return stored;
  }

  /** Runs fn in one transaction with a writer that batches all its writes into a few statements at the end. */
  async transaction<T>(fn: (writer: Writer) => Promise<T>): Promise<T> {
    let written: ReadonlyMap<string, number> = new Map();
    const result = await this.sql.transaction(async (tx) => {
      const writer = new Writer(tx, this);
      const value = await fn(writer);
      await writer.flush();
      written = writer.written;
      return value;
    });
    if (written.size > 0) {
      this.onCommit(written);
    }
    return result;
  }

  create<T extends Resource>(resource: T): Promise<StoredResource<T>> {
    return this.transaction((w) => w.create(resource));
  }

  update<T extends Resource>(resource: T & { id: string }, ifMatch?: string): Promise<{ stored: StoredResource<T>; created: boolean }> {
    return this.transaction((w) => w.update(resource, ifMatch));
  }

  delete(resourceType: string, id: string): Promise<StoredResource | undefined> {
    return this.transaction((w) => w.delete(resourceType, id));
  }

  async search(request: SearchRequest, db: SqlExecutor = this.sql): Promise<StoredResource[]> {
    // A search across types reads each type apart (search-sql.ts): the types that have no rows at
    // all are left out first, as planning a part for each of R4's 147 types took 16-25 ms.
    const types = request.acrossTypes && (await this.typesStored(request.acrossTypes, db));
    if (types?.length === 0) {
      return [];
    }
    const { text, params } = compileSearch(request, types);
    const rows = await db.query<Row & Record<string, unknown>>(text, params, { customPlan: true });
    return rows.map((row) => {
      const sortKey: (string | null)[] = [];
      for (let i = 0; `sort_${i}` in row; i++) {
        const v = row[`sort_${i}`];
        sortKey.push(v === null || v === undefined ? null : String(v));
      }
      return { ...this.toStored(row), sortKey };
    });
  }

  /** Those of `types` that have rows (deleted ones too), found by skipping through the primary key: one probe per type stored. */
  private async typesStored(types: readonly string[], db: SqlExecutor): Promise<string[]> {
    const rows = await db.query<{ t: string }>(
      `WITH RECURSIVE stored(t) AS (
         SELECT min(resource_type) FROM resource
         UNION ALL
         SELECT (SELECT min(resource_type) FROM resource WHERE resource_type > stored.t) FROM stored WHERE stored.t IS NOT NULL)
       SELECT t FROM stored WHERE t = ANY($1::text[])`,
      [types],
    );
    return rows.map((row) => row.t);
  }

  async lastN(request: SearchRequest, max: number, db: SqlExecutor = this.sql): Promise<StoredResource[]> {
    const { text, params } = compileLastN(request, max);
    return (await db.query<Row>(text, params, { customPlan: true })).map(this.toStored);
  }

  /**
   * The newest `perCode` Observations per patient and code (own or component code) among `codes`
   * ("system|code"), for reading a few analytes out of large records. Driven from each patient's
   * references with per-row index probes: the general search plan hashes every Observation carrying
   * those codes server-wide, which a busy server cannot afford per call.
   */
  async latestObservations(patientIds: readonly string[], codes: readonly string[], perCode: number, db: SqlExecutor = this.sql): Promise<StoredResource[]> {
    if (patientIds.length === 0 || codes.length === 0) return [];
    const rows = await db.query<Row>(
      `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content FROM resource r JOIN (
         SELECT DISTINCT k.id FROM (
           SELECT t.id, row_number() OVER (PARTITION BY p.target_id, t.system, t.value ORDER BY t.effective DESC NULLS LAST, t.id) AS rank
           FROM sp_reference p
           CROSS JOIN LATERAL (
             SELECT tok.id, tok.system, tok.value,
               (SELECT max(d.low) FROM sp_date d WHERE d.resource_type = 'Observation' AND d.id = tok.id AND d.code = 'date') AS effective
             FROM sp_token tok
             WHERE tok.resource_type = 'Observation' AND tok.id = p.id AND tok.code = 'combo-code' AND tok.system || '|' || tok.value = ANY($2::text[])
             OFFSET 0
           ) t
           WHERE p.resource_type = 'Observation' AND p.code = 'patient' AND p.target_type = 'Patient' AND p.target_id = ANY($1::text[])
         ) k WHERE k.rank <= $3
       ) latest ON latest.id = r.id
       WHERE r.resource_type = 'Observation' AND NOT r.deleted`,
      [patientIds, codes, perCode],
    );
    return rows.map(this.toStored);
  }

  async count(request: SearchRequest, db: SqlExecutor = this.sql): Promise<number> {
    const { text, params } = compileCount(request);
    const rows = await db.query<{ count: number | string }>(text, params, { customPlan: true });
    return Number(rows[0]?.count ?? 0);
  }

  /** Current (non-deleted) resources by reference, for _include and bundle resolution. */
  async readMany(refs: readonly { resourceType: string; id: string }[], db: SqlExecutor = this.sql): Promise<StoredResource[]> {
    if (refs.length === 0) {
      return [];
    }
    const rows = await db.query<Row>(
      `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content
       FROM resource r JOIN unnest($1::text[], $2::text[]) AS k(t, i) ON r.resource_type = k.t AND r.id = k.i
       WHERE NOT r.deleted`,
      [refs.map((r) => r.resourceType), refs.map((r) => r.id)],
    );
    return rows.map(this.toStored);
  }

  /** The current version of every live resource of these types in a patient's compartment (what a derived index must match). */
  async compartmentVersions(
    patientId: string,
    types: readonly string[],
    db: SqlExecutor = this.sql,
  ): Promise<{ resourceType: string; id: string; versionId: string }[]> {
    const rows = await db.query<{ resource_type: string; id: string; version_id: string | number }>(
      `SELECT resource_type, id, version_id FROM resource
       WHERE compartments @> ARRAY[$1]::text[] AND NOT deleted AND resource_type = ANY($2::text[])`,
      [`Patient/${patientId}`, types],
    );
    return rows.map((r) => ({ resourceType: r.resource_type, id: r.id, versionId: String(r.version_id) }));
  }

  /** Targets of the given reference parameters of the given resources (for _include). */
  async referencesFrom(
    sources: readonly { resourceType: string; id: string }[],
    code: string,
    targetType: string | undefined,
    db: SqlExecutor = this.sql,
  ): Promise<{ resourceType: string; id: string }[]> {
    const rows = await db.query<{ target_type: string; target_id: string }>(
      `SELECT DISTINCT x.target_type, x.target_id FROM sp_reference x JOIN unnest($1::text[], $2::text[]) AS k(t, i)
         ON x.resource_type = k.t AND x.id = k.i
       WHERE x.code = $3 AND x.target_id IS NOT NULL AND x.target_type IS NOT NULL AND ($4::text IS NULL OR x.target_type = $4)`,
      [sources.map((s) => s.resourceType), sources.map((s) => s.id), code, targetType ?? null],
    );
    return rows.map((r) => ({ resourceType: r.target_type, id: r.target_id }));
  }

  /** Resources of sourceType whose reference parameter `code` points at any of the targets (for _revinclude). */
  async referencing(
    sourceType: string,
    code: string,
    targets: readonly { resourceType: string; id: string }[],
    limit: number,
    db: SqlExecutor = this.sql,
  ): Promise<StoredResource[]> {
    const rows = await db.query<Row>(
      `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content FROM resource r
       WHERE r.resource_type = $1 AND NOT r.deleted AND EXISTS (
         SELECT 1 FROM sp_reference x JOIN unnest($3::text[], $4::text[]) AS k(t, i) ON x.target_type = k.t AND x.target_id = k.i
         WHERE x.resource_type = r.resource_type AND x.id = r.id AND x.code = $2)
       ORDER BY r.id LIMIT $5`,
      [sourceType, code, targets.map((t) => t.resourceType), targets.map((t) => t.id), limit],
    );
    return rows.map(this.toStored);
  }

  async history(resourceType: string | undefined, id: string | undefined, options: HistoryOptions): Promise<{ entries: StoredResource[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (resourceType) {
      params.push(resourceType);
      where.push(`resource_type = $${params.length}`);
    }
    if (id) {
      params.push(id);
      where.push(`id = $${params.length}`);
    }
    if (options.since) {
      params.push(options.since);
      where.push(`last_updated >= $${params.length}`);
    }
    if (options.snapshot) {
      params.push(options.snapshot);
      where.push(`last_updated <= $${params.length}`);
    }
    if (options.at) {
      // _at: the versions that were current at that instant: the last version at or before it per resource.
      params.push(options.at);
      where.push(`last_updated <= $${params.length}`);
      where.push(`version_id = (SELECT max(h2.version_id) FROM resource_history h2 WHERE h2.resource_type = resource_history.resource_type
        AND h2.id = resource_history.id AND h2.last_updated <= $${params.length})`);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const totalRows = await this.sql.query<{ count: number | string }>(`SELECT count(*) AS count FROM resource_history ${clause}`, params);
    const rows = await this.sql.query<Row>(
      `SELECT resource_type, id, version_id, last_updated, deleted, content, method FROM resource_history ${clause}
       ORDER BY last_updated DESC, version_id DESC, resource_type, id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, options.count, options.offset],
    );
    return { entries: rows.map(this.toStored), total: Number(totalRows[0]?.count ?? 0) };
  }

  /** @internal used by Writer */
  indexOf(resource: Resource): { rows: IndexRows; compartments: string[] } {
    return this.indexer.extract(resource);
  }

  /** @internal used by Writer */
  check(resource: Resource): void {
    this.validate(resource);
  }

  /** @internal used by Writer */
  seal<T extends Resource>(resource: T): T {
    return this.cipher.seal(resource);
  }
}

/**
 * Collects the writes of one transaction. Reads inside it see the database as it was before the
 * transaction plus nothing pending, so callers (bundle processing) resolve everything first.
 */
export class Writer {
  private readonly pending: PreparedWrite[] = [];
  private readonly pendingKeys = new Set<string>();
  readonly now = new Date().toISOString();
  /** Resources written so far (flushed) in this transaction, by type. */
  readonly written = new Map<string, number>();

  constructor(
    readonly tx: SqlExecutor,
    private readonly repo: Repository,
  ) {}

  async create<T extends Resource>(resource: T, id: string = newResourceId()): Promise<StoredResource<T>> {
    return this.put(resource, id, 'POST', undefined, true);
  }

  /**
   * A resource the server itself composes from typed code (the audit trail): stored without the
   * structure validation a client's resource gets, which would double the cost of auditing a read.
   * Its builder's output is validated by the tests instead.
   */
  async createServerAuthored<T extends Resource>(resource: T): Promise<StoredResource<T>> {
    return this.put(resource, newResourceId(), 'POST', undefined, false);
  }

  async update<T extends Resource>(
    resource: T & { id: string },
    ifMatch?: string,
    method: 'PUT' | 'PATCH' = 'PUT',
  ): Promise<{ stored: StoredResource<T>; created: boolean }> {
    const current = await this.current(resource.resourceType, resource.id);
    if (ifMatch !== undefined) {
      const wanted = parseETag(ifMatch);
      if (!current || current.deleted || String(current.version_id) !== wanted) {
        throw preconditionFailed(
          `Version conflict: If-Match ${ifMatch} but the current version of ${resource.resourceType}/${resource.id} is ${current && !current.deleted ? current.version_id : 'none'}`,
        );
      }
    }
    const stored = await this.put(resource, resource.id, current ? method : 'PUT', current, true);
    return { stored, created: !current || current.deleted };
  }

  /** A new version of a resource the server composes from typed code (see createServerAuthored). */
  async updateServerAuthored<T extends Resource>(resource: T & { id: string }): Promise<StoredResource<T>> {
    return this.put(resource, resource.id, 'PUT', await this.current(resource.resourceType, resource.id), false);
  }

  async delete(resourceType: string, id: string): Promise<StoredResource | undefined> {
    const current = await this.current(resourceType, id);
    if (!current || current.deleted) {
      return undefined; // deleting what is not there succeeds (R4 §3.1.0.7.1)
    }
    const write: PreparedWrite = {
      resourceType,
      id,
      versionId: Number(current.version_id) + 1,
      lastUpdated: this.now,
      deleted: true,
      method: 'DELETE',
      content: null,
      index: null,
      compartments: [],
      existed: true,
    };
    this.enqueue(write);
    const stored: StoredResource = { resourceType, id, versionId: String(write.versionId), lastUpdated: this.now, deleted: true };
    for (const hook of this.repo.writeHooks) {
      await hook(this, stored, current.compartments);
    }
    return stored;
  }

  private async put<T extends Resource>(
    resource: T,
    id: string,
    method: PreparedWrite['method'],
    current: { version_id: number | string; deleted: boolean } | undefined,
    validate: boolean,
  ): Promise<StoredResource<T>> {
    const versionId = current ? Number(current.version_id) + 1 : 1;
    // resourceType first: FHIR JSON reads best that way, and the json column keeps key order.
    const content = Object.assign({ resourceType: resource.resourceType }, resource, {
      id,
      meta: { ...resource.meta, versionId: String(versionId), lastUpdated: this.now },
    }) as T;
    if (validate) {
      this.repo.check(content);
    }
    const { rows, compartments } = this.repo.indexOf(content);
    this.enqueue({
      resourceType: content.resourceType,
      id,
      versionId,
      lastUpdated: this.now,
      deleted: false,
      method,
      content: this.repo.seal(content),
      index: rows,
      compartments,
      existed: current !== undefined,
    });
    const stored: StoredResource<T> = { resourceType: content.resourceType, id, versionId: String(versionId), lastUpdated: this.now, deleted: false, resource: content };
    for (const hook of this.repo.writeHooks) {
      await hook(this, stored, compartments);
    }
    return stored;
  }

  private enqueue(write: PreparedWrite): void {
    const key = `${write.resourceType}/${write.id}`;
    if (this.pendingKeys.has(key)) {
      throw new FhirError(400, [
        { severity: 'error', code: 'duplicate', details: { text: `${key} is written more than once in the same transaction` } },
      ]);
    }
    this.pendingKeys.add(key);
    this.pending.push(write);
  }

  private async current(resourceType: string, id: string): Promise<{ version_id: number | string; deleted: boolean; compartments: string[] } | undefined> {
    // FOR UPDATE: concurrent writers of one resource are serialised, so versions never collide.
    const rows = await this.tx.query<{ version_id: number | string; deleted: boolean; compartments: string[] }>(
      'SELECT version_id, deleted, compartments FROM resource WHERE resource_type = $1 AND id = $2 FOR UPDATE',
      [resourceType, id],
    );
    return rows[0];
  }

  /** Writes everything queued: a handful of statements, whatever the number of resources. */
  async flush(): Promise<void> {
    const writes = this.pending.splice(0);
    if (writes.length === 0) {
      return;
    }
    for (const w of writes) {
      this.written.set(w.resourceType, (this.written.get(w.resourceType) ?? 0) + 1);
    }
    const types = writes.map((w) => w.resourceType);
    const ids = writes.map((w) => w.id);
    const versions = writes.map((w) => w.versionId);
    const updated = writes.map((w) => w.lastUpdated);
    const deleted = writes.map((w) => w.deleted);
    // Contents travel as one JSON array rather than a text[]: pg escapes every character of every
    // element of an array parameter, which cost more than the inserts themselves for large batches.
    const contents = JSON.stringify(writes.map((w) => w.content ?? null));
    const compartments = writes.map((w) => `{${w.compartments.map((c) => `"${c}"`).join(',')}}`);
    await this.tx.query(
      `INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content, compartments)
       SELECT x.t, x.i, x.v, x.u, x.d, CASE WHEN json_typeof(c.value) = 'null' THEN NULL ELSE c.value END, x.p::text[]
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::boolean[], $7::text[]) WITH ORDINALITY AS x(t, i, v, u, d, p, n)
         JOIN json_array_elements($6::json) WITH ORDINALITY AS c(value, n) ON c.n = x.n
       ON CONFLICT (resource_type, id) DO UPDATE SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated,
         deleted = EXCLUDED.deleted, content = EXCLUDED.content, compartments = EXCLUDED.compartments`,
      [types, ids, versions, updated, deleted, contents, compartments],
    );
    await this.tx.query(
      `INSERT INTO resource_history (resource_type, id, version_id, last_updated, deleted, method, content)
       SELECT x.t, x.i, x.v, x.u, x.d, x.m, CASE WHEN json_typeof(c.value) = 'null' THEN NULL ELSE c.value END
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::boolean[], $6::text[]) WITH ORDINALITY AS x(t, i, v, u, d, m, n)
         JOIN json_array_elements($7::json) WITH ORDINALITY AS c(value, n) ON c.n = x.n`,
      [types, ids, versions, updated, deleted, writes.map((w) => w.method), contents],
    );
    const replaced = writes.filter((w) => w.existed);
    if (replaced.length > 0) {
      const rt = replaced.map((w) => w.resourceType);
      const ri = replaced.map((w) => w.id);
      for (const table of INDEX_TABLES) {
        await this.tx.query(
          `DELETE FROM sp_${table} s USING unnest($1::text[], $2::text[]) AS k(t, i) WHERE s.resource_type = k.t AND s.id = k.i`,
          [rt, ri],
        );
      }
    }
    await insertIndexRows(this.tx, writes);
  }
}

async function insertIndexRows(tx: SqlExecutor, writes: readonly Pick<PreparedWrite, 'resourceType' | 'id' | 'index'>[]): Promise<void> {
  for (const name of INDEX_TABLES) {
    const columns = INDEX_COLUMNS[name] as readonly (readonly [string, string, string])[];
    const types: string[] = [];
    const ids: string[] = [];
    const values: unknown[][] = columns.map(() => []);
    for (const w of writes) {
      const rows = w.index?.[name] as Record<string, unknown[]> | undefined;
      if (!rows) {
        continue;
      }
      const n = rows.code.length;
      for (let k = 0; k < n; k++) {
        types.push(w.resourceType);
        ids.push(w.id);
      }
      // Column by column, padded to the row count: sparse columns (item) leave holes that become NULL.
      columns.forEach(([key], c) => {
        const column = rows[key];
        for (let k = 0; k < n; k++) {
          values[c].push(column[k] ?? null);
        }
      });
    }
    if (types.length === 0) {
      continue;
    }
    const names = columns.map(([, column]) => column).join(', ');
    const placeholders = columns.map(([, , cast], n) => `$${n + 3}::${cast}[]`).join(', ');
    await tx.query(`INSERT INTO sp_${name} (resource_type, id, ${names}) SELECT * FROM unnest($1::text[], $2::text[], ${placeholders})`, [
      types,
      ids,
      ...values,
    ]);
  }
}

interface Row {
  resource_type: string;
  id: string;
  version_id: number | string;
  last_updated: string;
  deleted: boolean;
  content: Resource | string | null;
  method?: StoredResource['method'];
}

function deletedError(stored: StoredResource): FhirError {
  const err = gone(`${stored.resourceType}/${stored.id} was deleted`);
  err.headers.ETag = `W/"${stored.versionId}"`;
  return err;
}

/** W/"3" → "3" (If-Match may carry a weak or a strong ETag). */
export function parseETag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}
