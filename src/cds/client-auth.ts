/**
 * CDS client authentication (CDS Hooks 2.0 §Trusting CDS Clients): the client signs a JWT per call
 * (header kid, optional jku; claims iss, aud = the service endpoint URL, exp, iat, jti) with a key
 * from its registered JWK Set. Only registered issuers are trusted, a jku must be the issuer's own
 * registered JWK Set URL (never an arbitrary URL from the token), and each jti is accepted once.
 */
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { CdsClient } from '../config.js';
import { FhirError, issue } from '../fhir/outcome.js';

const ALGORITHMS = ['ES384', 'RS384', 'ES256', 'RS256', 'ES512', 'RS512'];

export class CdsClientAuth {
  private readonly keys = new Map<string, JWTVerifyGetKey>();
  /** iss|jti → expiry (ms), pruned as they expire. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly clients: readonly CdsClient[],
    private readonly allowUnsigned: boolean,
  ) {}

  async verify(authorization: string | undefined, audience: string): Promise<void> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) {
      if (this.allowUnsigned) return;
      throw unauthorized('A CDS Hooks call needs a signed JWT in Authorization: Bearer (CDS_ALLOW_UNSIGNED is off)');
    }
    let iss: string | undefined;
    let jku: string | undefined;
    try {
      iss = decodeJwt(token).iss;
      jku = decodeProtectedHeader(token).jku;
    } catch {
      throw unauthorized('The bearer token is not a JWT');
    }
    const client = this.clients.find((c) => c.iss === iss);
    if (!client) throw unauthorized(`The JWT issuer ${iss ? `"${iss}" ` : ''}is not a registered CDS client`);
    if (jku !== undefined && jku !== client.jwksUrl) throw unauthorized('The JWT jku is not the JWK Set URL registered for its issuer');
    try {
      const { payload } = await jwtVerify(token, this.keySet(client), { issuer: client.iss, audience, algorithms: ALGORITHMS, requiredClaims: ['exp', 'iat', 'jti'], clockTolerance: 30 });
      this.once(`${client.iss}|${payload.jti}`, payload.exp! * 1000);
    } catch (err) {
      if (err instanceof FhirError) throw err;
      throw unauthorized(`The CDS client JWT was rejected: ${(err as Error).message}`);
    }
  }

  private keySet(client: CdsClient): JWTVerifyGetKey {
    let keys = this.keys.get(client.iss);
    if (!keys) {
      keys = client.jwks ? createLocalJWKSet(client.jwks as Parameters<typeof createLocalJWKSet>[0]) : createRemoteJWKSet(new URL(client.jwksUrl!));
      this.keys.set(client.iss, keys);
    }
    return keys;
  }

  private once(key: string, expires: number): void {
    const now = Date.now();
    for (const [k, exp] of this.seen) if (exp < now) this.seen.delete(k);
    if (this.seen.has(key)) throw unauthorized('The JWT jti was already used (replay)');
    this.seen.set(key, expires);
  }
}

function unauthorized(text: string): FhirError {
  return new FhirError(401, [issue('login', text)], { 'WWW-Authenticate': 'Bearer realm="cds-services"' });
}
