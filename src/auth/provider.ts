import Provider, { errors, type KoaContextWithOIDC, type UnknownObject } from 'oidc-provider';
import type { Logger } from '../logger.js';
import { resourceScopeOf } from './clients.js';
import type { ServerSecrets } from './keys.js';
import { NON_RESOURCE_SCOPES, narrowScopes, parseScopes } from './scopes.js';
import type { SmartContextStore } from './smart-context.js';
import type { OAuthStore } from './store.js';
import type { UserStore } from './users.js';

/** Where the authorization server's endpoints live, below the issuer. */
export const AUTH_ROUTES = {
  authorization: '/auth/authorize',
  token: '/auth/token',
  jwks: '/auth/jwks',
  introspection: '/auth/introspect',
  revocation: '/auth/revoke',
  userinfo: '/auth/userinfo',
  end_session: '/auth/logout',
} as const;


export interface ProviderOptions {
  issuer: string;
  /** The FHIR base URL: the one resource server (audience) tokens are issued for. */
  fhirBaseUrl: string;
  accessTokenTtl: number;
  store: OAuthStore;
  secrets: ServerSecrets;
  users: UserStore;
  contexts: SmartContextStore;
  logger: Logger;
  /** Awaited before the token response is sent: when it fails, so does the token request. */
  onTokenIssued: (event: { clientId?: string; userId?: string; patient?: string; ip: string }) => Promise<void>;
}

/**
 * The OAuth 2.0 / OpenID Connect protocol machinery (oidc-provider), configured for SMART App
 * Launch 2.0 and SMART Backend Services: authorization code with PKCE S256 always, refresh
 * tokens with rotation for offline_access and online_access, client_credentials with
 * private_key_jwt, introspection and revocation. Access tokens are opaque and stored, so
 * revocation takes effect on the next request and introspection works.
 *
 * SMART's dynamic resource scopes (patient/Observation.rs?category=…) are not static OIDC
 * scopes: they are the scope of the FHIR resource server, narrowed here to what the client is
 * registered for. The launch context (patient, encounter) chosen during the interaction is
 * kept per grant and copied into each access token issued under it.
 */
export function createProvider(options: ProviderOptions): Provider {
  const { fhirBaseUrl, users, contexts } = options;
  // Form-POSTed authorization requests arrive cross-site, which needs SameSite=None cookies, which browsers
  // accept only with Secure, i.e. over HTTPS. On plain HTTP (local development) authorization is GET-only.
  const secure = authorizePostSupported(options.issuer);
  const cookie = { signed: true, secure, sameSite: secure ? ('none' as const) : ('lax' as const) };

  const provider = new Provider(options.issuer, {
    adapter: options.store.adapterFactory(),
    jwks: options.secrets.jwks as never,
    cookies: { keys: options.secrets.cookieKeys, long: cookie, short: cookie },
    routes: AUTH_ROUTES,
    scopes: [...NON_RESOURCE_SCOPES],
    claims: { openid: ['sub'], fhirUser: ['fhirUser'], profile: ['preferred_username'] },
    // SMART apps read fhirUser from the ID token, even when an access token is issued too.
    conformIdTokenClaims: false,
    extraParams: ['launch', 'aud'],
    enableHttpPostMethods: secure,
    pkce: { required: () => true },
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384', 'RS256', 'ES256', 'PS384'] },
    responseTypes: ['code'],
    extraClientMetadata: {
      properties: ['smart_resource_scope'],
      validator: (_ctx, key, value) => {
        if (key === 'smart_resource_scope' && value !== undefined && typeof value !== 'string') {
          throw new errors.InvalidClientMetadata('smart_resource_scope must be a string of SMART scopes');
        }
      },
    },
    ttl: {
      AccessToken: options.accessTokenTtl,
      ClientCredentials: options.accessTokenTtl,
      IdToken: options.accessTokenTtl,
      AuthorizationCode: 60,
      Interaction: 3600,
      Session: 8 * 3600,
      Grant: 90 * 24 * 3600,
      RefreshToken: (_ctx, token) => (token.scopes.has('offline_access') ? 90 * 24 * 3600 : 8 * 3600),
    },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access') || code.scopes.has('online_access')),
    // online_access tokens end with the user's session; offline_access ones outlive it.
    expiresWithSession: async (_ctx, code) => !code.scopes.has('offline_access'),
    interactions: { url: (_ctx, interaction) => `/auth/interaction/${interaction.uid}` },
    // No silent reuse of an earlier grant: every launch has its own context (patient, encounter), so the
    // user confirms each authorization and it gets a grant of its own.
    loadExistingGrant: async (ctx) => {
      const grantId = (ctx.oidc.result as { consent?: { grantId?: string } } | undefined)?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // SMART clients name the FHIR server with `aud`, not `resource`.
        defaultResource: () => fhirBaseUrl,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => {
          if (resource !== fhirBaseUrl) {
            throw new errors.InvalidTarget(`the only resource this server issues tokens for is ${fhirBaseUrl}`);
          }
          return {
            scope: resourceScopesFor(ctx, resourceScopeOf(client as { smart_resource_scope?: unknown })),
            audience: fhirBaseUrl,
            accessTokenFormat: 'opaque',
            accessTokenTTL: options.accessTokenTtl,
          };
        },
      },
    },
    findAccount: async (_ctx, sub) => {
      const user = await users.findById(sub);
      if (!user) {
        return undefined;
      }
      return {
        accountId: sub,
        claims: () => ({
          sub,
          preferred_username: user.username,
          ...(user.fhirUser ? { fhirUser: `${fhirBaseUrl}/${user.fhirUser}` } : {}),
        }),
      };
    },
    extraTokenClaims: async (_ctx, token) => {
      const grantId = 'grantId' in token ? token.grantId : undefined;
      const context = grantId ? await contexts.forGrant(grantId) : undefined;
      return context as UnknownObject | undefined;
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = errorPage(String(out.error ?? 'error'), String(out.error_description ?? ''));
    },
  });
  provider.proxy = true;

  provider.use(async (ctx, next) => {
    // OpenID Connect issues offline_access only with prompt=consent; SMART apps ask for it without,
    // and carelens asks the user's consent on every authorization anyway.
    if (ctx.path === AUTH_ROUTES.authorization && ctx.method === 'GET') {
      const params = new URLSearchParams(ctx.querystring);
      if (params.get('scope')?.split(' ').includes('offline_access') && !params.has('prompt')) {
        params.set('prompt', 'consent');
        ctx.querystring = params.toString();
      }
    }
    await next();
    // SMART launch context is returned beside the access token (patient, encounter, need_patient_banner, smart_style_url).
    if (ctx.path === AUTH_ROUTES.token && ctx.status === 200 && isTokenBody(ctx.body)) {
      const token = await provider.AccessToken.find(ctx.body.access_token);
      const extra = token?.extra as Record<string, unknown> | undefined;
      await options.onTokenIssued({
        clientId: ctx.oidc.client?.clientId,
        ...(token?.accountId ? { userId: token.accountId } : {}),
        ...(typeof extra?.patient === 'string' ? { patient: extra.patient } : {}),
        ip: ctx.ip,
      });
      // The token's own scope lists its resource scopes; SMART apps expect every granted scope.
      const grant = token?.grantId ? await provider.Grant.find(token.grantId) : undefined;
      const granted = [...(grant?.getOIDCScope().split(' ') ?? []), ...String(ctx.body.scope ?? '').split(' ')].filter(Boolean);
      ctx.body.scope = [...new Set(granted)].join(' ');
      if (extra) {
        for (const key of ['patient', 'encounter', 'need_patient_banner', 'smart_style_url', 'fhirContext']) {
          if (extra[key] !== undefined) {
            ctx.body[key] = extra[key];
          }
        }
      }
    }
  });

  provider.on('server_error', (_ctx, err) => options.logger.error({ err: { message: err.message } }, 'authorization server error'));
  return provider;
}

export function authorizePostSupported(issuer: string): boolean {
  return issuer.startsWith('https:');
}

/**
 * The SMART resource scopes a token may carry: those the request asked for (or, when a code or
 * refresh token is exchanged, those granted then), narrowed to the client's registration.
 */
function resourceScopesFor(ctx: KoaContextWithOIDC, clientScope: string): string {
  const entities = ctx.oidc.entities as { AuthorizationCode?: { scope?: string }; RefreshToken?: { scope?: string } };
  const requested = ctx.oidc.params?.scope ?? entities.AuthorizationCode?.scope ?? entities.RefreshToken?.scope ?? '';
  const resourceOnly = parseScopes(String(requested)).resourceScopes.map((s) => s.raw).join(' ');
  return [...new Set(narrowScopes(resourceOnly, clientScope))].join(' ');
}

function isTokenBody(body: unknown): body is Record<string, unknown> & { access_token: string } {
  return typeof body === 'object' && body !== null && typeof (body as { access_token?: unknown }).access_token === 'string';
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} – carelens</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
label{display:block;margin-top:1rem;font-weight:600}input,select{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}
button{font-size:1rem;padding:.5rem 1rem;margin:1rem .5rem 0 0}.error{color:#a00;font-weight:600}
:focus{outline:3px solid #1a5fb4;outline-offset:2px}</style></head>
<body><main><h1>${escapeHtml(title)}</h1>
${body}
</main></body></html>`;
}

function errorPage(error: string, description: string): string {
  return page('Sign-in problem', `<p class="error" role="alert">${escapeHtml(error)}</p><p>${escapeHtml(description)}</p>`);
}
