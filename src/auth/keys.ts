import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { OAuthStore } from './store.js';

export interface ServerSecrets {
  /** Private signing keys (ID tokens), published without their private parts at the JWKS endpoint. */
  jwks: { keys: JWK[] };
  /** Keys that sign the authorization server's cookies. */
  cookieKeys: string[];
}

/**
 * The authorization server's keys, created on first start and kept in the database, so every
 * worker and every restart signs with the same keys and issued ID tokens stay verifiable.
 * Concurrent first starts race on one row: the loser reads the winner's keys.
 */
export async function loadServerSecrets(store: OAuthStore): Promise<ServerSecrets> {
  const model = store.model('ServerSecrets');
  const existing = await model.find('current');
  if (existing) {
    return existing as unknown as ServerSecrets;
  }
  const generated: ServerSecrets = {
    jwks: { keys: [await privateJwk('RS256'), await privateJwk('ES256')] },
    cookieKeys: [randomBytes(32).toString('base64url')],
  };
  await model.insertNew('current', generated as never);
  return (await model.find('current')) as unknown as ServerSecrets;
}

async function privateJwk(alg: 'RS256' | 'ES256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}` };
}
