import type { SqlClient } from './sql.js';

/**
 * Schema migrations, applied in order at start-up inside one transaction each.
 * Append new migrations; never edit one that has shipped.
 *
 * Layout (after HAPI FHIR's and Medplum's designs): the current version of every resource in
 * `resource`, every version ever written in `resource_history`, and one search-index table per
 * search parameter type, keyed by (resource_type, id), so each search compiles to one SQL statement.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE resource (
    resource_type text NOT NULL,
    id text NOT NULL,
    version_id bigint NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    -- json, not jsonb: stored and returned as written (resourceType first), no binary conversion on every write
    content json,
    -- patient compartments this resource belongs to, as 'Patient/<id>'
    compartments text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (resource_type, id)
  );
  CREATE INDEX resource_type_updated_idx ON resource (resource_type, last_updated, id);
  CREATE INDEX resource_compartments_idx ON resource USING gin (compartments) WITH (fastupdate = off);

  CREATE TABLE resource_history (
    resource_type text NOT NULL,
    id text NOT NULL,
    version_id bigint NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    method text NOT NULL,
    -- json, not jsonb: stored and returned as written (resourceType first), no binary conversion on every write
    content json,
    PRIMARY KEY (resource_type, id, version_id)
  );
  CREATE INDEX resource_history_updated_idx ON resource_history (last_updated);
  CREATE INDEX resource_history_type_updated_idx ON resource_history (resource_type, last_updated);

  CREATE TABLE sp_token (
    -- item: for a composite parameter's components (code "<param>$<n>"), which value of the composite they belong to
    resource_type text NOT NULL, id text NOT NULL, code text NOT NULL, item integer,
    system text, value text, display text
  );
  CREATE INDEX sp_token_value_idx ON sp_token (resource_type, code, value, system);
  CREATE INDEX sp_token_res_idx ON sp_token (resource_type, id, code);

  CREATE TABLE sp_string (
    -- item: for a composite parameter's components (code "<param>$<n>"), which value of the composite they belong to
    resource_type text NOT NULL, id text NOT NULL, code text NOT NULL, item integer,
    value text NOT NULL, norm text NOT NULL
  );
  CREATE INDEX sp_string_norm_idx ON sp_string (resource_type, code, norm text_pattern_ops);
  CREATE INDEX sp_string_res_idx ON sp_string (resource_type, id, code);

  CREATE TABLE sp_date (
    -- item: for a composite parameter's components (code "<param>$<n>"), which value of the composite they belong to
    resource_type text NOT NULL, id text NOT NULL, code text NOT NULL, item integer,
    low timestamptz NOT NULL, high timestamptz NOT NULL
  );
  CREATE INDEX sp_date_range_idx ON sp_date (resource_type, code, low, high);
  CREATE INDEX sp_date_res_idx ON sp_date (resource_type, id, code);

  CREATE TABLE sp_number (
    -- item: for a composite parameter's components (code "<param>$<n>"), which value of the composite they belong to
    resource_type text NOT NULL, id text NOT NULL, code text NOT NULL, item integer,
    value numeric NOT NULL
  );
  CREATE INDEX sp_number_value_idx ON sp_number (resource_type, code, value);
  CREATE INDEX sp_number_res_idx ON sp_number (resource_type, id, code);

  CREATE TABLE sp_quantity (
    -- item: for a composite parameter's components (code "<param>$<n>"), which value of the composite they belong to
    resource_type text NOT NULL, id text NOT NULL, code text NOT NULL, item integer,
    value numeric NOT NULL, system text, unit text,
    -- value and unit converted to UCUM base units where the unit is known, for unit-independent search
    canonical_value numeric, canonical_unit text
  );
  CREATE INDEX sp_quantity_value_idx ON sp_quantity (resource_type, code, value);
  CREATE INDEX sp_quantity_res_idx ON sp_quantity (resource_type, id, code);

  CREATE TABLE sp_reference (
    -- item: for a composite parameter's components (code "<param>$<n>"), which value of the composite they belong to
    resource_type text NOT NULL, id text NOT NULL, code text NOT NULL, item integer,
    target_type text, target_id text, target text NOT NULL
  );
  CREATE INDEX sp_reference_target_idx ON sp_reference (resource_type, code, target_id, target_type);
  CREATE INDEX sp_reference_reverse_idx ON sp_reference (target_type, target_id);
  CREATE INDEX sp_reference_res_idx ON sp_reference (resource_type, id, code);

  CREATE TABLE sp_uri (
    -- item: for a composite parameter's components (code "<param>$<n>"), which value of the composite they belong to
    resource_type text NOT NULL, id text NOT NULL, code text NOT NULL, item integer,
    value text NOT NULL
  );
  CREATE INDEX sp_uri_value_idx ON sp_uri (resource_type, code, value);
  CREATE INDEX sp_uri_res_idx ON sp_uri (resource_type, id, code);
  `,
  `
  -- The authorization server's state (oidc-provider models: sessions, grants, codes, tokens, clients,
  -- replay-detection entries) plus carelens' own SMART launch contexts and signing keys, one JSON
  -- document per entity. Rows past expires_at are dead and purged lazily.
  CREATE TABLE oauth_entity (
    model text NOT NULL, id text NOT NULL, payload jsonb NOT NULL,
    grant_id text, user_code text, uid text,
    expires_at timestamptz, consumed_at timestamptz,
    PRIMARY KEY (model, id)
  );
  CREATE INDEX oauth_entity_grant_idx ON oauth_entity (grant_id) WHERE grant_id IS NOT NULL;
  CREATE INDEX oauth_entity_uid_idx ON oauth_entity (uid) WHERE uid IS NOT NULL;
  CREATE INDEX oauth_entity_expiry_idx ON oauth_entity (expires_at) WHERE expires_at IS NOT NULL;

  -- People who log in. fhir_user is the Practitioner, Patient or RelatedPerson they act as.
  CREATE TABLE app_user (
    id text PRIMARY KEY,
    username text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('patient', 'nurse', 'physician', 'admin')),
    fhir_user text,
    totp_secret text,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  `,
  `
  -- AuditEvents as committed by the request that caused them, before they become indexed FHIR
  -- resources (in bulk, in the background): one cheap insert on the request's path.
  CREATE TABLE audit_outbox (
    seq bigserial PRIMARY KEY,
    event jsonb NOT NULL
  );
  `,
  `
  -- Key for document content at rest when ENCRYPTION_KEYS is not configured (development, embedded default).
  CREATE TABLE encryption_key (
    id text PRIMARY KEY,
    key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  );

  -- Durable background jobs (the document pipeline). A worker claims a due job with SKIP LOCKED and
  -- holds a lease; a job whose worker died is claimed again when its lease runs out.
  CREATE TABLE job (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5,
    run_after timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
  );
  CREATE INDEX job_due_idx ON job (run_after) WHERE status IN ('queued', 'running');
  CREATE INDEX job_document_idx ON job ((payload->>'documentId')) WHERE kind = 'document-extract';

  -- The text of each processed document, line by line with positions, for later stages (lab values, RAG).
  CREATE TABLE document_text (
    document_id text NOT NULL,
    version_id bigint NOT NULL,
    content jsonb NOT NULL,
    -- the lines as plain text, searched by DocumentReference?_content
    plain text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id)
  );
  `,
  `
  -- The patient knowledge index (RAG): chunks of each patient's record, each from one source resource
  -- version, searched per patient by full-text (and by vector when an embedding provider is configured).
  -- rag_source says which version of each source is indexed, so a refresh redoes only what changed;
  -- rag_refresh keeps every refresh: what changed, why and when.
  CREATE TABLE rag_source (
    patient_id text NOT NULL,
    source text NOT NULL,
    -- the resource's versionId, plus '+text' once a document's text has been extracted
    version text NOT NULL,
    PRIMARY KEY (patient_id, source)
  );

  CREATE TABLE rag_chunk (
    patient_id text NOT NULL,
    source text NOT NULL,
    seq integer NOT NULL,
    source_version text NOT NULL,
    kind text NOT NULL,
    title text NOT NULL,
    section text,
    -- the date as the record gives it (answers quote it), and as an instant for ordering
    date_text text,
    chunk_date timestamptz,
    content text NOT NULL,
    -- what the answerer states from a structured source (value, unit, range, status…)
    fact jsonb,
    search tsvector NOT NULL,
    embedding real[],
    embedding_model text,
    PRIMARY KEY (patient_id, source, seq)
  );

  CREATE TABLE rag_refresh (
    patient_id text NOT NULL,
    version integer NOT NULL,
    reason text NOT NULL,
    trigger text NOT NULL,
    requested_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    -- when the risk assessments and health score were recomputed after this refresh
    insights_at timestamptz,
    added integer NOT NULL,
    updated integer NOT NULL,
    removed integer NOT NULL,
    chunks integer NOT NULL,
    changes jsonb NOT NULL,
    PRIMARY KEY (patient_id, version)
  );

  CREATE INDEX job_rag_patient_idx ON job ((payload->>'patientId')) WHERE kind = 'rag-refresh' AND status = 'queued';

  -- Work a user waits for (a document, a group assessment) goes before upkeep the server schedules
  -- itself (index refreshes after writes): lower runs first.
  ALTER TABLE job ADD COLUMN priority smallint NOT NULL DEFAULT 0;
  DROP INDEX job_due_idx;
  CREATE INDEX job_due_idx ON job (priority, run_after, id) WHERE status IN ('queued', 'running');
  `,
  `
  -- A search with two filters (Observation?patient=…&code=…) is answered either by probing the second
  -- filter for each candidate of the first, or by hashing every row of the second. The planner picks
  -- by estimate, and both ways must be cheap.
  --
  -- The estimate: the planner takes resource_type, code, system and value as independent, and they are
  -- not (a LOINC code occurs in one parameter of one type). Once AuditEvents (eight tokens each) made
  -- up most of the table, an Observation code held by 810 rows was estimated at 2, and a patient's
  -- search by code was driven from every Observation with that code (5 ms instead of 1).
  CREATE STATISTICS sp_token_value_stats (mcv) ON resource_type, code, system, value FROM sp_token;

  -- The probe: the per-resource indexes carry the values, so a candidate is checked from the index
  -- alone (and a sort by date reads its key the same way). Each replaces its prefix. Rebuilding these
  -- indexes at start-up takes some 6 s per million index rows on the 2-core development machine.
  DROP INDEX sp_token_res_idx;
  CREATE INDEX sp_token_res_idx ON sp_token (resource_type, id, code, value, system);
  DROP INDEX sp_string_res_idx;
  CREATE INDEX sp_string_res_idx ON sp_string (resource_type, id, code, norm);
  DROP INDEX sp_date_res_idx;
  CREATE INDEX sp_date_res_idx ON sp_date (resource_type, id, code, low, high);
  DROP INDEX sp_number_res_idx;
  CREATE INDEX sp_number_res_idx ON sp_number (resource_type, id, code, value);
  DROP INDEX sp_quantity_res_idx;
  CREATE INDEX sp_quantity_res_idx ON sp_quantity (resource_type, id, code, value);
  DROP INDEX sp_reference_res_idx;
  CREATE INDEX sp_reference_res_idx ON sp_reference (resource_type, id, code, target_id, target_type);
  DROP INDEX sp_uri_res_idx;
  CREATE INDEX sp_uri_res_idx ON sp_uri (resource_type, id, code, value);

  -- The hash: the token value index carries the id, as HAPI FHIR's token indexes carry the resource
  -- id, so the 810 rows are read from the index (0.2 ms) rather than from the table (1.5 ms). It costs
  -- space: the index can no longer fold repeated values (AuditEvents repeat theirs), 2 MB -> 20 MB for
  -- 170,000 tokens in the benchmark's data.
  DROP INDEX sp_token_value_idx;
  CREATE INDEX sp_token_value_idx ON sp_token (resource_type, code, value, system) INCLUDE (id);
  `,
  `
  -- A reference to one resource lists its referrers in id order, the default order of a search
  -- (search-sql.ts, searchFrom): a page of a patient's Observations reads that page only.
  DROP INDEX sp_reference_target_idx;
  CREATE INDEX sp_reference_target_idx ON sp_reference (resource_type, code, target_id, id, target_type);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export async function migrate(sql: SqlClient): Promise<void> {
  await sql.query('CREATE TABLE IF NOT EXISTS schema_migration (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  for (let i = 0; i < MIGRATIONS.length; i++) {
    const version = i + 1;
    await sql.transaction(async (tx) => {
      // Several API nodes may start together against one database: serialise migrations.
      await tx.query('SELECT pg_advisory_xact_lock(7243001)');
      const done = await tx.query('SELECT 1 FROM schema_migration WHERE version = $1', [version]);
      if (done.length > 0) {
        return;
      }
      for (const statement of splitStatements(MIGRATIONS[i])) {
        await tx.query(statement);
      }
      await tx.query('INSERT INTO schema_migration (version) VALUES ($1)', [version]);
    });
  }
}

export async function schemaVersion(sql: SqlClient): Promise<number> {
  const rows = await sql.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migration');
  return rows[0]?.v ?? 0;
}

/** PGlite's extended-protocol query() takes one statement at a time. */
function splitStatements(script: string): string[] {
  return script
    .split(/;\s*\n/)
    .map((s) => s.replace(/--[^\n]*\n/g, '\n').trim())
    .filter((s) => s.length > 0);
}
