/**
 * The patient knowledge index: chunks of each patient's record (src/rag/render.ts), kept in step
 * with it. A refresh compares the versions of the patient's sources with what is indexed and redoes
 * only what changed (new and changed sources re-chunked, removed ones dropped), records what changed
 * and why as a new index version, and then has the patient's insights (risk assessments, health
 * score) recomputed. Writes to a patient's data schedule a refresh a few seconds later, so a burst of
 * writes (a transaction Bundle, a document's extracted results) is indexed once.
 */
import type { DocumentReference, Resource } from '@medplum/fhirtypes';
import type { EmbeddingProvider } from '../ai/llm.js';
import type { DocumentPipeline } from '../documents/pipeline.js';
import { BACKGROUND, type JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../logger.js';
import type { Repository, StoredResource, Writer } from '../storage/repository.js';
import type { SqlExecutor } from '../storage/sql.js';
import { type ChunkDraft, isIndexedSource, renderChunks, SOURCE_TYPES } from './render.js';

export const REFRESH_REASONS = ['new_report', 'consultation_update', 'new_result', 'record_update', 'removal', 'manual'] as const;
export type RefreshReason = (typeof REFRESH_REASONS)[number];

/** What started a refresh: a write to the record, a caller's request, or a chat turn finding the index behind. */
export type RefreshTrigger = 'write' | 'request' | 'chat';

export interface SourceChange {
  /** "Observation/123" */
  source: string;
  change: 'added' | 'updated' | 'removed';
  /** The indexed version (absent for a removal). */
  version?: string;
}

export interface RefreshRecord {
  patientId: string;
  /** The index version this refresh made; absent when nothing had changed and nothing was recorded. */
  version?: number;
  reason: RefreshReason;
  trigger: RefreshTrigger;
  requestedAt: string;
  finishedAt: string;
  added: number;
  updated: number;
  removed: number;
  /** Chunks in the patient's index afterwards. */
  chunks: number;
  changes: SourceChange[];
  /** When the insights were recomputed after this refresh (absent while pending). */
  insightsAt?: string;
}

export interface RagIndexOptions {
  /** Schedule a refresh when a patient's data is written. */
  autoRefresh: boolean;
  /** How long after the first write a scheduled refresh runs (gathers a burst of writes into one). */
  delayMs: number;
  embedder?: EmbeddingProvider;
}

interface Plan {
  patientId: string;
  /** Source → indexed version, as read when the plan was made. */
  indexed: Map<string, string>;
  changes: (SourceChange & { resourceType: string; id: string })[];
}

interface RefreshPayload {
  patientId: string;
  requestedAt: string;
}

export const REFRESH_JOB = 'rag-refresh';
/** Changes kept per history entry (the counts are always complete). */
const MAX_RECORDED_CHANGES = 500;

export class RagIndex {
  /** Recompute a patient's insights after their index changed (registered by the operations that own them). */
  readonly insights: ((patientId: string) => Promise<void>)[] = [];
  private readonly scheduled = new WeakMap<Writer, Set<string>>();

  constructor(
    private readonly repo: Repository,
    private readonly jobs: JobQueue,
    documents: DocumentPipeline,
    readonly options: RagIndexOptions,
    private readonly logger: Logger,
  ) {
    if (options.autoRefresh) {
      repo.writeHooks.push((w, stored, compartments) => this.onWrite(w, stored, compartments));
      documents.textExtracted.push(async (doc: DocumentReference) => {
        const patientId = doc.subject?.reference?.match(/^Patient\/(.+)$/)?.[1];
        if (patientId) await this.schedule(repo.sql, patientId);
      });
    }
    // The history is rag_refresh; the job rows are only the queue, so they go after a day.
    jobs.handle(REFRESH_JOB, { run: (job) => this.runScheduled(job.payload as RefreshPayload), keepDoneMs: 24 * 3600_000 });
  }

  get embeddingModel(): string | undefined {
    return this.options.embedder?.name;
  }

  /** Inside a write's transaction: a refresh for each patient whose indexed data it touches. */
  private async onWrite(w: Writer, stored: StoredResource, compartments: readonly string[]): Promise<void> {
    const relevant = stored.resource ? isIndexedSource(stored.resource) : (SOURCE_TYPES as readonly string[]).includes(stored.resourceType);
    if (!relevant) return;
    let done = this.scheduled.get(w);
    if (!done) this.scheduled.set(w, (done = new Set()));
    for (const compartment of compartments) {
      const patientId = compartment.slice('Patient/'.length);
      if (done.has(patientId)) continue;
      done.add(patientId);
      await this.schedule(w.tx, patientId);
    }
  }

  /**
   * Queues a refresh unless one is already queued for the patient (it will see this change too). A
   * refresh already running may have read the record before this change, so it does not count.
   */
  async schedule(db: SqlExecutor, patientId: string): Promise<void> {
    // The kind is literal so the planner can use the partial index job_rag_patient_idx.
    const queued = await db.query(`SELECT 1 FROM job WHERE kind = '${REFRESH_JOB}' AND status = 'queued' AND payload->>'patientId' = $1 LIMIT 1`, [patientId]);
    if (queued.length > 0) return;
    const payload: RefreshPayload = { patientId, requestedAt: new Date().toISOString() };
    await this.jobs.enqueue(db, REFRESH_JOB, payload, { delayMs: this.options.delayMs, priority: BACKGROUND });
  }

  private async runScheduled(payload: RefreshPayload): Promise<void> {
    await this.run(payload.patientId, { trigger: 'write', requestedAt: payload.requestedAt });
  }

  /** A refresh followed by the insights it makes stale. */
  async run(patientId: string, request: { trigger: RefreshTrigger; reason?: RefreshReason; requestedAt?: string }): Promise<RefreshRecord> {
    const record = await this.refresh(patientId, request);
    const stale = await this.repo.sql.query('SELECT 1 FROM rag_refresh WHERE patient_id = $1 AND insights_at IS NULL LIMIT 1', [patientId]);
    if (stale.length > 0) {
      for (const recompute of this.insights) {
        try {
          await recompute(patientId);
        } catch (err) {
          // The index is current either way; a failed recomputation is retried by the next refresh.
          this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'rag: recomputing insights failed');
          return record;
        }
      }
      const rows = await this.repo.sql.query<{ insights_at: string | Date }>(
        'UPDATE rag_refresh SET insights_at = now() WHERE patient_id = $1 AND insights_at IS NULL RETURNING insights_at',
        [patientId],
      );
      if (rows[0]) record.insightsAt = new Date(rows[0].insights_at).toISOString();
    }
    return record;
  }

  /** How many sources have changed since the patient was last indexed (to decide between answering now and 202). */
  async pendingChanges(patientId: string): Promise<number> {
    return (await this.plan(patientId)).changes.length;
  }

  /**
   * Brings the patient's index up to date with their record. Reading and chunking (and embedding)
   * happen outside any transaction; the changes are then applied in one transaction under a
   * per-patient lock, each only if no other refresh has indexed that source since this one read it,
   * so concurrent refreshes of one patient apply in order and never put back an older version.
   */
  async refresh(patientId: string, request: { trigger: RefreshTrigger; reason?: RefreshReason; requestedAt?: string }): Promise<RefreshRecord> {
    const requestedAt = request.requestedAt ?? new Date().toISOString();
    const plan = await this.plan(patientId);
    if (plan.changes.length === 0 && request.trigger !== 'request') {
      // Nothing to do and nothing to record (every chat turn asks).
      const count = await this.repo.sql.query<{ n: string | number }>('SELECT count(*) AS n FROM rag_chunk WHERE patient_id = $1', [patientId]);
      const now = new Date().toISOString();
      return { patientId, reason: request.reason ?? 'manual', trigger: request.trigger, requestedAt, finishedAt: now, added: 0, updated: 0, removed: 0, chunks: Number(count[0].n), changes: [] };
    }
    const changed = plan.changes.filter((c) => c.change !== 'removed');
    const loaded = new Map((await this.repo.readMany(changed)).map((s) => [`${s.resourceType}/${s.id}`, s.resource!]));
    const texts = await this.documentTexts(changed.filter((c) => c.resourceType === 'DocumentReference').map((c) => c.id));
    const drafts = new Map<string, ChunkDraft[]>();
    // carelens' own derived results share the compartment: remembered as seen, never reported as changes.
    const derived = new Set<string>();
    for (const c of changed) {
      const resource = loaded.get(c.source);
      if (resource && !isIndexedSource(resource)) derived.add(c.source);
      drafts.set(c.source, resource && !derived.has(c.source) ? renderChunks(resource, texts.get(c.id)) : []);
    }
    const embeddings = await this.embed([...drafts.values()].flat());
    const reason = request.reason ?? reasonOf(plan.changes.filter((c) => !derived.has(c.source)), loaded);
    return this.repo.sql.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(7243002, hashtext($1))', [patientId]);
      const now = await indexedVersions(tx, patientId, plan.changes.map((c) => c.source));
      const applied = plan.changes.filter((c) => now.get(c.source) === plan.indexed.get(c.source));
      const sources = applied.map((c) => c.source);
      await tx.query('DELETE FROM rag_chunk WHERE patient_id = $1 AND source = ANY($2::text[])', [patientId, sources]);
      await tx.query('DELETE FROM rag_source WHERE patient_id = $1 AND source = ANY($2::text[])', [patientId, sources]);
      const rows = applied.flatMap((c) =>
        (drafts.get(c.source) ?? []).map((d, seq) => ({
          source: c.source,
          seq,
          version: c.version,
          kind: d.kind,
          title: d.title,
          section: d.section ?? null,
          date: d.date ?? null,
          instant: timestampOf(d.date),
          content: d.content,
          titleWords: searchable(d.title),
          sectionWords: searchable(d.section ?? ''),
          contentWords: searchable(d.content),
          fact: d.fact ?? null,
          embedding: embeddings.get(d) ?? null,
        })),
      );
      if (rows.length > 0) {
        await tx.query(
          `INSERT INTO rag_chunk (patient_id, source, seq, source_version, kind, title, section, date_text, chunk_date, content, fact, search, embedding, embedding_model)
           SELECT $1, c->>'source', (c->>'seq')::int, c->>'version', c->>'kind', c->>'title', c->>'section', c->>'date', (c->>'instant')::timestamptz, c->>'content',
             CASE WHEN json_typeof(c->'fact') = 'null' THEN NULL ELSE (c->'fact')::jsonb END,
             setweight(to_tsvector('english', c->>'titleWords'), 'A') || setweight(to_tsvector('english', c->>'sectionWords'), 'B') || to_tsvector('english', c->>'contentWords'),
             CASE WHEN json_typeof(c->'embedding') = 'null' THEN NULL ELSE ARRAY(SELECT json_array_elements_text(c->'embedding'))::real[] END,
             CASE WHEN json_typeof(c->'embedding') = 'null' THEN NULL ELSE $2 END
           FROM json_array_elements($3::json) AS c`,
          [patientId, this.embeddingModel ?? null, JSON.stringify(rows)],
        );
      }
      const kept = applied.filter((c) => c.change !== 'removed');
      if (kept.length > 0) {
        await tx.query(
          `INSERT INTO rag_source (patient_id, source, version) SELECT $1, s, v FROM unnest($2::text[], $3::text[]) AS x(s, v)`,
          [patientId, kept.map((c) => c.source), kept.map((c) => c.version!)],
        );
      }
      const count = await tx.query<{ n: string | number }>('SELECT count(*) AS n FROM rag_chunk WHERE patient_id = $1', [patientId]);
      const finishedAt = new Date().toISOString();
      const reported = applied.filter((c) => !derived.has(c.source));
      const changes = reported.map(({ source, change, version }): SourceChange => ({ source, change, ...(version ? { version } : {}) }));
      const record: RefreshRecord = {
        patientId,
        reason,
        trigger: request.trigger,
        requestedAt,
        finishedAt,
        added: reported.filter((c) => c.change === 'added').length,
        updated: reported.filter((c) => c.change === 'updated').length,
        removed: reported.filter((c) => c.change === 'removed').length,
        chunks: Number(count[0].n),
        changes,
      };
      // A refresh that changed nothing is history only when someone asked for it.
      if (reported.length === 0 && request.trigger !== 'request') return record;
      const next = await tx.query<{ v: number }>('SELECT coalesce(max(version), 0) + 1 AS v FROM rag_refresh WHERE patient_id = $1', [patientId]);
      record.version = Number(next[0].v);
      await tx.query(
        `INSERT INTO rag_refresh (patient_id, version, reason, trigger, requested_at, finished_at, added, updated, removed, chunks, changes, insights_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [
          patientId,
          record.version,
          reason,
          request.trigger,
          requestedAt,
          finishedAt,
          record.added,
          record.updated,
          record.removed,
          record.chunks,
          JSON.stringify(changes.slice(0, MAX_RECORDED_CHANGES)),
          // Nothing changed: the insights of the previous version still hold.
          reported.length === 0 ? finishedAt : null,
        ],
      );
      return record;
    });
  }

  /** The index's current version for a patient (0 before the first refresh): cached answers are valid for one version. */
  async version(patientId: string, db: SqlExecutor = this.repo.sql): Promise<number> {
    const rows = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM rag_refresh WHERE patient_id = $1', [patientId]);
    return Number(rows[0]?.v ?? 0);
  }

  /** The index's state for a patient: size, last refreshes, and whether a refresh is waiting. */
  async status(patientId: string, historyCount = 20): Promise<{ chunks: number; sources: number; pendingRefreshAt?: string; history: RefreshRecord[] }> {
    const sql = this.repo.sql;
    const [chunks, sources, pending, history] = await Promise.all([
      sql.query<{ n: string | number }>('SELECT count(*) AS n FROM rag_chunk WHERE patient_id = $1', [patientId]),
      sql.query<{ n: string | number }>('SELECT count(*) AS n FROM rag_source WHERE patient_id = $1', [patientId]),
      sql.query<{ run_after: string | Date }>(`SELECT min(run_after) AS run_after FROM job WHERE kind = $1 AND status IN ('queued', 'running') AND payload->>'patientId' = $2`, [
        REFRESH_JOB,
        patientId,
      ]),
      sql.query<HistoryRow>('SELECT * FROM rag_refresh WHERE patient_id = $1 ORDER BY version DESC LIMIT $2', [patientId, historyCount]),
    ]);
    return {
      chunks: Number(chunks[0].n),
      sources: Number(sources[0].n),
      ...(pending[0]?.run_after ? { pendingRefreshAt: new Date(pending[0].run_after).toISOString() } : {}),
      history: history.map(historyRecord),
    };
  }

  private async plan(patientId: string): Promise<Plan> {
    const current = await this.repo.compartmentVersions(patientId, SOURCE_TYPES);
    const docIds = current.filter((c) => c.resourceType === 'DocumentReference').map((c) => c.id);
    const textVersions = new Map(
      docIds.length === 0
        ? []
        : (await this.repo.sql.query<{ document_id: string; version_id: string | number }>('SELECT document_id, version_id FROM document_text WHERE document_id = ANY($1::text[])', [docIds])).map(
            (r) => [r.document_id, String(r.version_id)],
          ),
    );
    const indexed = new Map(
      (await this.repo.sql.query<{ source: string; version: string }>('SELECT source, version FROM rag_source WHERE patient_id = $1', [patientId])).map((r) => [r.source, r.version]),
    );
    const changes: Plan['changes'] = [];
    const seen = new Set<string>();
    for (const c of current) {
      const source = `${c.resourceType}/${c.id}`;
      // A document's extracted text arrives after the document itself: it is a change of its own.
      const text = textVersions.get(c.id);
      const version = c.resourceType === 'DocumentReference' && text ? `${c.versionId}+text${text}` : c.versionId;
      seen.add(source);
      const was = indexed.get(source);
      if (was !== version) changes.push({ source, resourceType: c.resourceType, id: c.id, version, change: was === undefined ? 'added' : 'updated' });
    }
    for (const source of indexed.keys()) {
      if (!seen.has(source)) {
        const [resourceType, id] = source.split('/');
        changes.push({ source, resourceType, id, change: 'removed' });
      }
    }
    return { patientId, indexed, changes };
  }

  private async documentTexts(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.repo.sql.query<{ document_id: string; plain: string }>('SELECT document_id, plain FROM document_text WHERE document_id = ANY($1::text[])', [ids]);
    return new Map(rows.map((r) => [r.document_id, r.plain]));
  }

  private async embed(drafts: ChunkDraft[]): Promise<Map<ChunkDraft, number[]>> {
    const embedder = this.options.embedder;
    if (!embedder || drafts.length === 0) return new Map();
    const vectors = await embedder.embed(drafts.map(embeddingText));
    return new Map(drafts.map((d, i) => [d, vectors[i]]));
  }
}

/** What a chunk's vector is made of: the source's title and section give a short passage its context. */
export function embeddingText(d: { title: string; section?: string | null; content: string }): string {
  return [d.title, d.section, d.content].filter(Boolean).join('. ');
}

async function indexedVersions(db: SqlExecutor, patientId: string, sources: string[]): Promise<Map<string, string>> {
  if (sources.length === 0) return new Map();
  const rows = await db.query<{ source: string; version: string }>('SELECT source, version FROM rag_source WHERE patient_id = $1 AND source = ANY($2::text[])', [patientId, sources]);
  return new Map(rows.map((r) => [r.source, r.version]));
}

/** Why the index changed, from the most telling change: a report, then a consultation, then a result. */
function reasonOf(changes: Plan['changes'], loaded: Map<string, Resource>): RefreshReason {
  const live = changes.filter((c) => c.change !== 'removed');
  if (live.length === 0) return changes.length > 0 ? 'removal' : 'manual';
  const isNote = (r: Resource | undefined): boolean =>
    r?.resourceType === 'DocumentReference' && (r.category ?? []).some((c) => c.coding?.some((x) => x.code === 'clinical-note'));
  if (live.some((c) => (c.resourceType === 'DiagnosticReport' || c.resourceType === 'DocumentReference') && !isNote(loaded.get(c.source)))) return 'new_report';
  if (live.some((c) => c.resourceType === 'Encounter' || isNote(loaded.get(c.source)))) return 'consultation_update';
  if (live.some((c) => c.resourceType === 'Observation')) return 'new_result';
  return 'record_update';
}

/**
 * Text as the full-text index should read it: words separated by spaces. PostgreSQL's parser takes
 * "A1c/Hemoglobin.total" or "[Mass/volume]" for a single path or host token, hiding the words in it.
 */
function searchable(text: string): string {
  return text.replace(/[^\p{L}\p{N}]+/gu, ' ');
}

/** A chunk date as a timestamp PostgreSQL accepts: partial FHIR dates ("2020", "2020-03") start their period. */
function timestampOf(date: string | undefined): string | null {
  if (!date) return null;
  if (/^\d{4}$/.test(date)) return `${date}-01-01`;
  if (/^\d{4}-\d{2}$/.test(date)) return `${date}-01`;
  return date;
}

interface HistoryRow {
  patient_id: string;
  version: number;
  reason: RefreshReason;
  trigger: RefreshTrigger;
  requested_at: string | Date;
  finished_at: string | Date;
  insights_at: string | Date | null;
  added: number;
  updated: number;
  removed: number;
  chunks: number;
  changes: SourceChange[] | string;
}

function historyRecord(row: HistoryRow): RefreshRecord {
  return {
    patientId: row.patient_id,
    version: Number(row.version),
    reason: row.reason,
    trigger: row.trigger,
    requestedAt: new Date(row.requested_at).toISOString(),
    finishedAt: new Date(row.finished_at).toISOString(),
    ...(row.insights_at ? { insightsAt: new Date(row.insights_at).toISOString() } : {}),
    added: row.added,
    updated: row.updated,
    removed: row.removed,
    chunks: row.chunks,
    changes: typeof row.changes === 'string' ? (JSON.parse(row.changes) as SourceChange[]) : row.changes,
  };
}
