import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { ChannelListener, SqlClient } from '../storage/sql.js';

/** Models whose entities are access tokens, as the resource server looks them up. */
const ACCESS_TOKEN_MODELS = ['AccessToken', 'ClientCredentials'];
/** Where every process learns that an access token was revoked (the payload is its value). */
const REVOKED_CHANNEL = 'carelens_token_revoked';
/** Access tokens remembered per process: beyond this, the longest-held are forgotten first. */
const TOKEN_CACHE_SIZE = 10_000;

/**
 * Persistence for the authorization server: oidc-provider's models (Session, Grant,
 * AuthorizationCode, AccessToken, RefreshToken, ClientCredentials, Client, ReplayDetection, …)
 * and carelens' own SMART entities, as JSON documents in one table. Keeping them in the FHIR
 * database means tokens survive restarts, revocation is seen by every worker at once, and
 * nothing else must run beside the server.
 */
export class OAuthStore {
  private readonly accessTokens = new AccessTokenCache();

  constructor(readonly sql: SqlClient) {}

  /** Starts remembering access tokens: safe once this process hears every revocation. */
  start(): Promise<void> {
    return this.sql.listen(REVOKED_CHANNEL, this.accessTokens);
  }

  /** oidc-provider's adapter factory: one adapter per model name. */
  adapterFactory(): (model: string) => Adapter {
    return (model) => this.model(model);
  }

  model(name: string): ModelAdapter {
    return new ModelAdapter(this.sql, name, this.accessTokens);
  }

  /**
   * An unexpired access token by its value, whichever grant issued it (authorization code or client
   * credentials): the resource server's lookup on every request, answered from memory after the
   * first (the caller checks expiry).
   */
  async findAccessToken(value: string): Promise<AdapterPayload | undefined> {
    const known = this.accessTokens.get(value);
    if (known) {
      return known;
    }
    const epoch = this.accessTokens.epoch;
    const rows = await this.sql.query<Row>(
      `SELECT payload, consumed_at FROM oauth_entity WHERE id = $1 AND model = ANY($2::text[])
       AND (expires_at IS NULL OR expires_at > now())`,
      [value, ACCESS_TOKEN_MODELS],
    );
    const token = rows[0] ? withConsumed(rows[0]) : undefined;
    if (token) {
      this.accessTokens.remember(value, token, epoch);
    }
    return token;
  }
}

/**
 * Access tokens this process has looked up. A revoked token must stop working at once in every
 * process, so entries are kept only while the revocation channel is heard: revoking deletes the
 * token and notifies every process (this one included) in the same statement.
 */
class AccessTokenCache implements ChannelListener {
  private readonly tokens = new Map<string, AdapterPayload>();
  private heard = false;
  /** Counts revocations: a lookup that began before one may have read the token it revoked, and is not kept. */
  epoch = 0;

  get(value: string): AdapterPayload | undefined {
    return this.tokens.get(value);
  }

  remember(value: string, token: AdapterPayload, epoch: number): void {
    if (!this.heard || epoch !== this.epoch) {
      return;
    }
    if (this.tokens.size >= TOKEN_CACHE_SIZE) {
      this.tokens.delete(this.tokens.keys().next().value as string);
    }
    this.tokens.set(value, token);
  }

  forget(value: string): void {
    this.epoch++;
    this.tokens.delete(value);
  }

  message(value: string): void {
    this.forget(value);
  }

  listening(on: boolean): void {
    this.epoch++;
    this.heard = on;
    this.tokens.clear();
  }
}

interface Row {
  payload: AdapterPayload | string;
  consumed_at: string | null;
}

export class ModelAdapter implements Adapter {
  constructor(
    private readonly sql: SqlClient,
    private readonly model: string,
    private readonly accessTokens: AccessTokenCache,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000).toISOString() : null;
    await this.sql.query(
      `INSERT INTO oauth_entity (model, id, payload, grant_id, user_code, uid, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id,
         user_code = EXCLUDED.user_code, uid = EXCLUDED.uid, expires_at = EXCLUDED.expires_at`,
      [this.model, id, JSON.stringify(payload), payload.grantId ?? null, payload.userCode ?? null, payload.uid ?? null, expiresAt],
    );
  }

  /** Inserts only when absent; false when the id was already taken (replay detection, key creation races). */
  async insertNew(id: string, payload: AdapterPayload, expiresIn?: number): Promise<boolean> {
    const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000).toISOString() : null;
    const rows = await this.sql.query(
      `INSERT INTO oauth_entity (model, id, payload, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (model, id) DO NOTHING RETURNING id`,
      [this.model, id, JSON.stringify(payload), expiresAt],
    );
    return rows.length === 1;
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('id = $2', id);
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('uid = $2', uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('user_code = $2', userCode);
  }

  async list(): Promise<AdapterPayload[]> {
    const rows = await this.sql.query<Row>(
      'SELECT payload, consumed_at FROM oauth_entity WHERE model = $1 AND (expires_at IS NULL OR expires_at > now()) ORDER BY id',
      [this.model],
    );
    return rows.map(withConsumed);
  }

  async consume(id: string): Promise<void> {
    await this.sql.query('UPDATE oauth_entity SET consumed_at = now() WHERE model = $1 AND id = $2', [this.model, id]);
  }

  async destroy(id: string): Promise<void> {
    await this.revoke('model = $1 AND id = $2', [this.model, id]);
  }

  /** Revoking a grant ends every token and code issued under it, whatever the model. */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.revoke('grant_id = $1', [grantId]);
  }

  /** Deletes entities and, for access tokens, tells every process in the same statement (NOTIFY is sent on commit). */
  private async revoke(condition: string, params: unknown[]): Promise<void> {
    const n = params.length;
    const rows = await this.sql.query<{ id: string }>(
      `WITH gone AS (DELETE FROM oauth_entity WHERE ${condition} RETURNING model, id)
       SELECT id, pg_notify($${n + 1}, id) FROM gone WHERE model = ANY($${n + 2}::text[])`,
      [...params, REVOKED_CHANNEL, ACCESS_TOKEN_MODELS],
    );
    rows.forEach((row) => this.accessTokens.forget(row.id));
  }

  private async findWhere(condition: string, value: string): Promise<AdapterPayload | undefined> {
    const rows = await this.sql.query<Row>(
      `SELECT payload, consumed_at FROM oauth_entity
       WHERE model = $1 AND ${condition} AND (expires_at IS NULL OR expires_at > now())`,
      [this.model, value],
    );
    return rows[0] ? withConsumed(rows[0]) : undefined;
  }
}

function withConsumed(row: Row): AdapterPayload {
  const payload = typeof row.payload === 'string' ? (JSON.parse(row.payload) as AdapterPayload) : row.payload;
  return row.consumed_at ? { ...payload, consumed: Math.floor(Date.parse(row.consumed_at) / 1000) } : payload;
}
