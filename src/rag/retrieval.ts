/**
 * Retrieval from one patient's chunks, and only theirs: every query is bound to the patient id, so no
 * question can reach another patient's record. Full-text search ranks by the question's topic terms
 * and their synonyms (newer first among equals); with an embedding provider, an exact cosine search
 * over the patient's vectors (a patient's corpus is small) is fused with it by reciprocal rank.
 */
import type { EmbeddingProvider } from '../ai/llm.js';
import type { SqlExecutor } from '../storage/sql.js';
import { concepts, termQueries } from './query.js';
import type { ChunkDraft, Fact } from './render.js';

/** A chunk as retrieved: what was rendered from its source, and which version of which source that was. */
export interface RetrievedChunk extends ChunkDraft {
  /** "<source>@<version>#<n>": stable for as long as that version of the source is indexed. */
  id: string;
  source: string;
  sourceVersion: string;
}

interface ChunkRow {
  source: string;
  seq: number;
  source_version: string;
  kind: string;
  title: string;
  section: string | null;
  date_text: string | null;
  content: string;
  fact: Fact | string | null;
}

const COLUMNS = 'source, seq, source_version, kind, title, section, date_text, content, fact';
/** Reciprocal rank fusion constant (Cormack et al. 2009). */
const RRF_K = 60;

export async function retrieve(db: SqlExecutor, embedder: EmbeddingProvider | undefined, patientId: string, question: string, k: number): Promise<RetrievedChunk[]> {
  const terms = termQueries(question);
  const candidates = k * 3;
  const lexical = terms.length > 0 ? await lexicalSearch(db, patientId, question, terms, candidates) : await newest(db, patientId, k);
  if (!embedder) return lexical.slice(0, k).map(chunkOf);
  const [vector] = await embedder.embed([question]);
  const rows = await db.query<ChunkRow & { embedding: number[] | string }>(
    `SELECT ${COLUMNS}, embedding FROM rag_chunk WHERE patient_id = $1 AND embedding IS NOT NULL AND embedding_model = $2`,
    [patientId, embedder.name],
  );
  const dense = rows
    .map((row) => ({ row, score: cosine(vector, typeof row.embedding === 'string' ? parseArray(row.embedding) : row.embedding) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, candidates)
    .map((x) => x.row);
  const fused = new Map<string, { row: ChunkRow; score: number }>();
  for (const list of [lexical, dense]) {
    list.forEach((row, rank) => {
      const key = `${row.source}#${row.seq}`;
      const entry = fused.get(key) ?? { row, score: 0 };
      entry.score += 1 / (RRF_K + rank + 1);
      fused.set(key, entry);
    });
  }
  return [...fused.values()]
    .sort((a, b) => b.score - a.score)
    .slice(0, k)
    .map((x) => chunkOf(x.row));
}

/** Candidates this many times the chunks wanted are ranked in full before the cut. */
const RERANK_POOL = 4;

/**
 * Chunks matching any of the question's terms, ranked by how many terms they match, then by how few
 * other concepts their title names (asked for haemoglobin, "Hemoglobin A1c" is another test), then by
 * full-text rank, then newest first.
 */
async function lexicalSearch(db: SqlExecutor, patientId: string, question: string, terms: string[], limit: number): Promise<ChunkRow[]> {
  const rows = await db.query<ChunkRow & { chunk_date: string | Date | null; coverage: string | number; rank: number }>(
    `SELECT ${COLUMNS}, chunk_date,
       (SELECT count(*) FROM unnest($4::text[]) AS t(term) WHERE search @@ to_tsquery('english', t.term)) AS coverage,
       ts_rank(search, q, 1) AS rank
     FROM rag_chunk, to_tsquery('english', $2) AS q
     WHERE patient_id = $1 AND search @@ q
     ORDER BY coverage DESC, rank DESC, chunk_date DESC NULLS LAST, source, seq LIMIT $3`,
    [patientId, terms.join(' | '), limit * RERANK_POOL, terms],
  );
  const asked = concepts(question);
  const other = (title: string): number => [...concepts(title)].filter((c) => !asked.has(c)).length;
  const time = (row: { chunk_date: string | Date | null }): number => (row.chunk_date ? new Date(row.chunk_date).getTime() : -Infinity);
  return rows
    .map((row, order) => ({ row, order, other: other(row.title) }))
    .sort((a, b) => Number(b.row.coverage) - Number(a.row.coverage) || a.other - b.other || b.row.rank - a.row.rank || time(b.row) - time(a.row) || a.order - b.order)
    .slice(0, limit)
    .map((x) => x.row);
}

/** A question without a topic ("anything new?") gets the newest of the record. */
function newest(db: SqlExecutor, patientId: string, k: number): Promise<ChunkRow[]> {
  return db.query<ChunkRow>(`SELECT ${COLUMNS} FROM rag_chunk WHERE patient_id = $1 ORDER BY chunk_date DESC NULLS LAST, source, seq LIMIT $2`, [patientId, k]);
}

function chunkOf(row: ChunkRow): RetrievedChunk {
  return {
    id: `${row.source}@${row.source_version}#${row.seq}`,
    source: row.source,
    sourceVersion: row.source_version,
    kind: row.kind,
    title: row.title,
    ...(row.section ? { section: row.section } : {}),
    ...(row.date_text ? { date: row.date_text } : {}),
    content: row.content,
    ...(row.fact ? { fact: typeof row.fact === 'string' ? (JSON.parse(row.fact) as Fact) : row.fact } : {}),
  };
}

function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** A real[] that arrives as PostgreSQL's text form "{0.1,0.2}". */
function parseArray(text: string): number[] {
  return text.replace(/[{}]/g, '').split(',').filter(Boolean).map(Number);
}
