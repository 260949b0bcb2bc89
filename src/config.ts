import type { BedrockConfig } from './ai/llm-provider.js';

/**
 * One typed configuration object, read from the environment once at start-up.
 * Invalid values stop the process with a message naming the variable, rather than
 * surfacing later as a confusing runtime failure.
 */
export interface Config {
  /** TCP port the HTTP server listens on. */
  port: number;
  /** Host/interface to bind. */
  host: string;
  /** Public base URL of the FHIR endpoint (used in Location headers, fullUrls and links). */
  baseUrl: string;
  /** PostgreSQL connection string; when absent the embedded PGlite database is used. */
  databaseUrl?: string;
  /** Data directory of the embedded database. */
  dataDir: string;
  /** Size of the pg connection pool (ignored by PGlite, which has one connection). */
  databasePoolSize: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest accepted request body in bytes. */
  maxBodyBytes: number;
  /** Default and maximum page sizes for search. */
  defaultPageSize: number;
  maxPageSize: number;
  /** What to do with a meta.profile the server does not know: reject (error) or accept with a warning. */
  unknownProfile: 'error' | 'warning';
  /** Load the demo data set at start-up. */
  loadDemoData: boolean;
  /** The authorization server's issuer (its discovery document is at <issuer>/.well-known/openid-configuration). */
  issuer: string;
  /** Operator client ensured at start-up (client_credentials, client_secret_basic, system/*.* scopes). */
  adminClient?: { id: string; secret: string };
  /** Access token lifetime in seconds. */
  accessTokenTtl: number;
  /** HTTP worker processes (Node cluster); more than one needs PostgreSQL, since PGlite lives in one process. */
  workers: number;
  /**
   * Keys that encrypt document content (Binary.data, inline attachments) at rest, newest first: the
   * first encrypts, all decrypt, so keys rotate by prepending one. Absent: a key kept in the database.
   */
  encryptionKeys?: { id: string; key: Buffer }[];
  /** Largest document (decoded attachment) accepted. */
  documentMaxBytes: number;
  /** Run background jobs (the document pipeline) in this process; false when `npm run worker` runs them. */
  inProcessJobs: boolean;
  /** Amazon Textract replaces local OCR when a region is configured. */
  textract?: { region: string; endpoint?: string };
  /** Amazon Bedrock answers questions and embeds text when a region and at least one model are configured. */
  bedrock?: BedrockConfig;
  /** A local ONNX embedding model's folder (model.onnx + vocab.txt) under models/, or an absolute path. */
  localEmbeddingModel?: string;
  /** The patient knowledge index: refreshed automatically after writes to a patient's data, this long after the first. */
  rag: { autoRefresh: boolean; refreshDelayMs: number };
  /** Extracted lab values with a confidence below this get a clinician review Task. */
  reviewThreshold: number;
  /** CDS Hooks clients allowed to call /cds-services: their JWT issuer and where their public keys are. */
  cdsClients: CdsClient[];
  /** Accept CDS Hooks calls without a signed JWT (development only). */
  cdsAllowUnsigned: boolean;
}

/** A registered CDS client: its signing keys come from jwksUrl (which a JWT's jku must equal) or are inline. */
export interface CdsClient {
  iss: string;
  jwksUrl?: string;
  jwks?: { keys: Record<string, unknown>[] };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  if (['1', 'true', 'yes'].includes(raw.toLowerCase())) {
    return true;
  }
  if (['0', 'false', 'no'].includes(raw.toLowerCase())) {
    return false;
  }
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)): Config {
  const port = int(env, 'PORT', 8080, 0, 65535);
  const host = env.HOST || '127.0.0.1';
  const baseUrl = (env.BASE_URL || `http://${host === '0.0.0.0' ? 'localhost' : host}:${port}/fhir`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(baseUrl)) {
    throw new ConfigError(`BASE_URL must be an absolute http(s) URL, got "${baseUrl}"`);
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must start with postgres:// or postgresql://');
  }
  const defaultPageSize = int(env, 'DEFAULT_PAGE_SIZE', 20, 1, 1000);
  const maxPageSize = int(env, 'MAX_PAGE_SIZE', 1000, 1, 10000);
  if (defaultPageSize > maxPageSize) {
    throw new ConfigError('DEFAULT_PAGE_SIZE must not exceed MAX_PAGE_SIZE');
  }
  const workers = int(env, 'WORKERS', 1, 1, 64);
  if (workers > 1 && !databaseUrl) {
    throw new ConfigError('WORKERS above 1 needs DATABASE_URL: the embedded PGlite database lives inside one process');
  }
  const adminClientId = env.CARELENS_ADMIN_CLIENT_ID || undefined;
  const adminClientSecret = env.CARELENS_ADMIN_CLIENT_SECRET || undefined;
  if (Boolean(adminClientId) !== Boolean(adminClientSecret)) {
    throw new ConfigError('CARELENS_ADMIN_CLIENT_ID and CARELENS_ADMIN_CLIENT_SECRET must be set together');
  }
  if (adminClientSecret && adminClientSecret.length < 16) {
    throw new ConfigError('CARELENS_ADMIN_CLIENT_SECRET must be at least 16 characters');
  }
  const issuer = (env.ISSUER || new URL(baseUrl).origin).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(issuer)) {
    throw new ConfigError(`ISSUER must be an absolute http(s) URL, got "${issuer}"`);
  }
  const textractRegion = env.TEXTRACT_REGION || undefined;
  return {
    port,
    host,
    baseUrl,
    databaseUrl,
    dataDir: env.DATA_DIR || './data',
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, 1, 200),
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    // Room for a 20 MB document as base64 inside JSON.
    maxBodyBytes: int(env, 'MAX_BODY_BYTES', 32 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    defaultPageSize,
    maxPageSize,
    unknownProfile: oneOf(env, 'UNKNOWN_PROFILE', ['error', 'warning'] as const, 'error'),
    loadDemoData: argv.includes('--demo') || bool(env, 'LOAD_DEMO_DATA', false),
    workers,
    issuer,
    adminClient: adminClientId && adminClientSecret ? { id: adminClientId, secret: adminClientSecret } : undefined,
    accessTokenTtl: int(env, 'ACCESS_TOKEN_TTL', 3600, 60, 86400),
    encryptionKeys: encryptionKeys(env.ENCRYPTION_KEYS),
    documentMaxBytes: int(env, 'DOCUMENT_MAX_BYTES', 20 * 1024 * 1024, 1024, 512 * 1024 * 1024),
    inProcessJobs: bool(env, 'IN_PROCESS_JOBS', true),
    textract: textractRegion ? { region: textractRegion, endpoint: env.TEXTRACT_ENDPOINT || undefined } : undefined,
    bedrock: bedrock(env),
    localEmbeddingModel: localEmbeddingModel(env),
    rag: { autoRefresh: bool(env, 'RAG_AUTO_REFRESH', true), refreshDelayMs: int(env, 'RAG_REFRESH_DELAY_MS', 5000, 0, 300_000) },
    reviewThreshold: fraction(env, 'EXTRACTION_REVIEW_THRESHOLD', 0.8),
    cdsClients: cdsClients(env.CDS_CLIENTS),
    cdsAllowUnsigned: bool(env, 'CDS_ALLOW_UNSIGNED', false),
  };
}

/** BEDROCK_REGION with BEDROCK_CHAT_MODEL and/or BEDROCK_EMBEDDING_MODEL; BEDROCK_ENDPOINT only for a stub or VPC endpoint. */
function bedrock(env: NodeJS.ProcessEnv): BedrockConfig | undefined {
  const region = env.BEDROCK_REGION || undefined;
  const endpoint = env.BEDROCK_ENDPOINT || undefined;
  const chatModel = env.BEDROCK_CHAT_MODEL || undefined;
  const embeddingModel = env.BEDROCK_EMBEDDING_MODEL || undefined;
  const dimensions = env.BEDROCK_EMBEDDING_DIMENSIONS || undefined;
  if (!region) {
    // Models without a region would silently leave the server on its local fallbacks.
    if (chatModel || embeddingModel) {
      throw new ConfigError('BEDROCK_CHAT_MODEL and BEDROCK_EMBEDDING_MODEL need BEDROCK_REGION');
    }
    return undefined;
  }
  if (!chatModel && !embeddingModel) {
    throw new ConfigError('BEDROCK_REGION needs BEDROCK_CHAT_MODEL (answers) or BEDROCK_EMBEDDING_MODEL (semantic search), or both');
  }
  if (endpoint && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new ConfigError(`BEDROCK_ENDPOINT must be an absolute http(s) URL, got "${endpoint}"`);
  }
  if (dimensions && !['256', '512', '1024'].includes(dimensions)) {
    throw new ConfigError(`BEDROCK_EMBEDDING_DIMENSIONS must be one of 256, 512, 1024, got "${dimensions}"`);
  }
  return { region, endpoint, chatModel, embeddingModel, embeddingDimensions: dimensions ? Number(dimensions) : undefined };
}

/** LOCAL_EMBEDDING_MODEL: a folder under models/ (or an absolute path) holding model.onnx and vocab.txt. */
function localEmbeddingModel(env: NodeJS.ProcessEnv): string | undefined {
  const folder = env.LOCAL_EMBEDDING_MODEL || undefined;
  if (folder && env.BEDROCK_EMBEDDING_MODEL) {
    throw new ConfigError('Set BEDROCK_EMBEDDING_MODEL or LOCAL_EMBEDDING_MODEL, not both: an index holds vectors of one model');
  }
  return folder;
}

/** CDS_CLIENTS='[{"iss":"https://ehr.example","jwksUrl":"https://ehr.example/.well-known/jwks.json"}]' */
function cdsClients(raw: string | undefined): CdsClient[] {
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError('CDS_CLIENTS must be a JSON array of {"iss", "jwksUrl" or "jwks"}');
  }
  const valid =
    Array.isArray(parsed) &&
    parsed.every(
      (c: Partial<CdsClient>) =>
        typeof c?.iss === 'string' && ((typeof c.jwksUrl === 'string' && /^https?:\/\//.test(c.jwksUrl)) || Array.isArray(c.jwks?.keys)),
    );
  if (!valid) throw new ConfigError('CDS_CLIENTS must be a JSON array of {"iss", "jwksUrl" (http(s) URL) or "jwks" ({"keys": [...]})}');
  return parsed as CdsClient[];
}

/** ENCRYPTION_KEYS="<id>:<base64 of 32 bytes>,<older id>:<older key>" */
function encryptionKeys(raw: string | undefined): Config['encryptionKeys'] {
  if (!raw) {
    return undefined;
  }
  return raw.split(',').map((entry) => {
    const [id, material] = entry.trim().split(':');
    const key = Buffer.from(material ?? '', 'base64');
    if (!id || !/^[A-Za-z0-9_-]{1,32}$/.test(id) || key.length !== 32) {
      throw new ConfigError('ENCRYPTION_KEYS must be comma-separated <id>:<base64 of 32 random bytes> entries (id: letters, digits, _ or -)');
    }
    return { id, key };
  });
}

function fraction(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigError(`${name} must be a number between 0 and 1, got "${raw}"`);
  }
  return value;
}
