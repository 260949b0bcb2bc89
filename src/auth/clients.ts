import { randomBytes, randomUUID } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { AdapterPayload, ClientMetadata } from 'oidc-provider';
import { parseScopes } from './scopes.js';
import type { OAuthStore } from './store.js';

/** What an operator gives to register an app or a backend service (RFC 7591 names). */
export interface ClientRegistration {
  client_id?: string;
  client_name: string;
  /** Apps that launch (authorization code) have redirect URIs; backend services have none. */
  redirect_uris?: string[];
  token_endpoint_auth_method: 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  /** Public keys for private_key_jwt: inline, or published at jwks_uri. */
  jwks?: { keys: Record<string, unknown>[] };
  jwks_uri?: string;
  /** The most the client may ask for, e.g. "launch openid fhirUser patient/*.rs offline_access". */
  scope: string;
}

export class ClientRegistrationError extends Error {}

/**
 * Registered SMART apps and backend clients, stored as oidc-provider Client metadata so the
 * protocol library reads them directly. Metadata is validated by the library before it is saved.
 */
export class ClientRegistry {
  constructor(
    private readonly provider: Provider,
    private readonly store: OAuthStore,
  ) {}

  /** Registers a client; a generated client_secret is returned once, here, and never shown again. */
  async register(input: ClientRegistration): Promise<ClientMetadata> {
    const parsed = parseScopes(input.scope);
    if (parsed.unrecognised.length > 0) {
      throw new ClientRegistrationError(`Not SMART scopes: ${parsed.unrecognised.join(' ')}`);
    }
    const launches = (input.redirect_uris?.length ?? 0) > 0;
    const method = input.token_endpoint_auth_method;
    if (!launches && method === 'none') {
      throw new ClientRegistrationError('A client without redirect_uris is a backend service and must authenticate (private_key_jwt or a secret)');
    }
    if (method === 'private_key_jwt' && !input.jwks && !input.jwks_uri) {
      throw new ClientRegistrationError('private_key_jwt needs the client\'s public keys: jwks or jwks_uri');
    }
    const clientId = input.client_id ?? randomUUID();
    if (!/^[A-Za-z0-9._~-]{3,128}$/.test(clientId)) {
      throw new ClientRegistrationError('client_id must be 3-128 characters of A-Z a-z 0-9 . _ ~ -');
    }
    const metadata: ClientMetadata = {
      client_id: clientId,
      client_name: input.client_name,
      token_endpoint_auth_method: method,
      ...registeredScopes(input.scope),
      grant_types: launches ? ['authorization_code', 'refresh_token'] : ['client_credentials'],
      response_types: launches ? ['code'] : [],
      redirect_uris: input.redirect_uris ?? [],
      ...(input.jwks ? { jwks: input.jwks as ClientMetadata['jwks'] } : {}),
      ...(input.jwks_uri ? { jwks_uri: input.jwks_uri } : {}),
      ...(method === 'client_secret_basic' || method === 'client_secret_post' ? { client_secret: randomBytes(32).toString('base64url') } : {}),
    };
    await this.save(metadata);
    return metadata;
  }

  /**
   * The operator client from CARELENS_ADMIN_CLIENT_ID / _SECRET: client_credentials with
   * client_secret_basic and every system scope. Re-applied at each start, so a changed secret takes effect.
   */
  async ensureAdminClient(id: string, secret: string): Promise<void> {
    await this.save({
      client_id: id,
      client_name: 'carelens operator',
      client_secret: secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      ...registeredScopes('system/*.cruds system/*.*'),
    });
  }

  async list(): Promise<ClientMetadata[]> {
    return (await this.store.model('Client').list()).map((c) => withoutSecret(c as ClientMetadata));
  }

  async get(id: string): Promise<ClientMetadata | undefined> {
    const found = await this.store.model('Client').find(id);
    return found ? withoutSecret(found as ClientMetadata) : undefined;
  }

  async remove(id: string): Promise<boolean> {
    const exists = await this.store.model('Client').find(id);
    await this.store.model('Client').destroy(id);
    return exists !== undefined;
  }

  private async save(metadata: ClientMetadata): Promise<void> {
    try {
      await this.provider.Client.validate(metadata);
    } catch (err) {
      const e = err as { error_description?: string; message: string };
      throw new ClientRegistrationError(e.error_description ?? e.message);
    }
    await this.store.model('Client').upsert(metadata.client_id, metadata as AdapterPayload);
  }
}

/**
 * A registration's scope, split the way oidc-provider needs it: `scope` may hold only the
 * server's static scopes (openid, launch, …), so SMART resource scopes go in `smart_resource_scope`.
 */
function registeredScopes(scope: string): { scope?: string; smart_resource_scope: string } {
  const parsed = parseScopes(scope);
  const statics = [...parsed.other].join(' ');
  return { ...(statics ? { scope: statics } : {}), smart_resource_scope: parsed.resourceScopes.map((s) => s.raw).join(' ') };
}

/** The resource scopes a registered client may be granted. */
export function resourceScopeOf(client: { smart_resource_scope?: unknown }): string {
  return typeof client.smart_resource_scope === 'string' ? client.smart_resource_scope : '';
}

function withoutSecret(metadata: ClientMetadata): ClientMetadata {
  const { client_secret: _secret, ...rest } = metadata;
  return rest as ClientMetadata;
}
