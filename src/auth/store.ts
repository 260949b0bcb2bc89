import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { SqlClient } from '../storage/sql.js';

/**
 * Persistence for the authorization server: oidc-provider's models (Session, Grant,
 * AuthorizationCode, AccessToken, RefreshToken, ClientCredentials, Client, ReplayDetection, …)
 * and carelens' own SMART entities, as JSON documents in one table. Keeping them in the FHIR
 * database means tokens survive restarts, revocation is seen by every worker at once, and
 * nothing else must run beside the server.
 */
export class OAuthStore {
  constructor(readonly sql: SqlClient) {}

  /** oidc-provider's adapter factory: one adapter per model name. */
  adapterFactory(): (model: string) => Adapter {
    return (model) => new ModelAdapter(this.sql, model);
  }

  model(name: string): ModelAdapter {
    return new ModelAdapter(this.sql, name);
  }

  /**
   * An unexpired access token by its value, whichever grant issued it (authorization code or client
   * credentials): the resource server's one lookup per request.
   */
  async findAccessToken(value: string): Promise<AdapterPayload | undefined> {
    const rows = await this.sql.query<Row>(
      `SELECT payload, consumed_at FROM oauth_entity WHERE id = $1 AND model IN ('AccessToken', 'ClientCredentials')
       AND (expires_at IS NULL OR expires_at > now())`,
      [value],
    );
    return rows[0] ? withConsumed(rows[0]) : undefined;
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
    await this.sql.query('DELETE FROM oauth_entity WHERE model = $1 AND id = $2', [this.model, id]);
  }

  /** Revoking a grant ends every token and code issued under it, whatever the model. */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.sql.query('DELETE FROM oauth_entity WHERE grant_id = $1', [grantId]);
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
