import { FhirError, issue } from '../fhir/outcome.js';
import type { AccessContext } from './policy.js';
import { parseScopes } from './scopes.js';
import type { TokenContext } from './smart-context.js';
import type { OAuthStore } from './store.js';

/** oidc-provider's opaque tokens: 43 base64url characters. Anything else (a JWT, say) is not ours. */
const OPAQUE_TOKEN = /^[A-Za-z0-9_-]{20,128}$/;

export function unauthorized(description: string, error?: 'invalid_token' | 'invalid_request'): FhirError {
  const challenge = error
    ? `Bearer realm="carelens", error="${error}", error_description="${description.replace(/"/g, "'")}"`
    : 'Bearer realm="carelens"';
  return new FhirError(401, [issue('login', description)], { 'WWW-Authenticate': challenge });
}

/**
 * The resource server's side of the token: looks the bearer token up in the authorization
 * server's store (so a revoked token stops working on the next request) and returns who it acts
 * for. Tokens signed by someone else, of any algorithm, are never looked at: carelens only honours
 * the opaque tokens it issued itself.
 */
export async function authenticateBearer(store: OAuthStore, authorization: string | undefined, audience: string): Promise<AccessContext> {
  if (!authorization) {
    throw unauthorized('This request needs an access token: send Authorization: Bearer <token>');
  }
  const match = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (!match) {
    throw unauthorized('The Authorization header must be "Bearer <token>"', 'invalid_request');
  }
  const value = match[1];
  const token = OPAQUE_TOKEN.test(value) ? await store.findAccessToken(value) : undefined;
  if (!token || typeof token.exp !== 'number' || token.exp <= Date.now() / 1000) {
    throw unauthorized('The access token is invalid, expired or revoked', 'invalid_token');
  }
  const aud = token.aud;
  if (aud !== audience && !(Array.isArray(aud) && aud.includes(audience))) {
    throw unauthorized('The access token was not issued for this FHIR server', 'invalid_token');
  }
  const extra = (token.extra ?? {}) as TokenContext;
  const isUser = token.kind === 'AccessToken';
  return {
    clientId: String(token.clientId),
    kind: isUser ? 'user' : 'system',
    scopes: parseScopes(token.scope),
    ...(extra.patient ? { patient: extra.patient } : {}),
    ...(extra.encounter ? { encounter: extra.encounter } : {}),
    ...(isUser && token.accountId ? { userId: token.accountId } : {}),
    ...(extra.role ? { role: extra.role } : {}),
    ...(extra.fhirUser ? { fhirUser: extra.fhirUser } : {}),
  };
}
