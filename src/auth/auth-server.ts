import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import type { AuditLog } from '../audit/audit-log.js';
import type { Config } from '../config.js';
import { badRequest, FhirError, forbidden, issue, notFound } from '../fhir/outcome.js';
import type { FhirRouter } from '../fhir/router.js';
import { readBody, readJsonObject } from '../http/body.js';
import type { AppState } from '../http/request-id.js';
import type { Logger } from '../logger.js';
import type { SqlClient } from '../storage/sql.js';
import { authenticateBearer } from './bearer.js';
import { patientsDenying } from './consent.js';
import { type ClientRegistration, ClientRegistrationError, ClientRegistry } from './clients.js';
import { interactionRoutes } from './interactions.js';
import { loadServerSecrets } from './keys.js';
import { AccessPolicy, type AccessContext } from './policy.js';
import { AUTH_ROUTES, authorizePostSupported, createProvider } from './provider.js';
import { NON_RESOURCE_SCOPES } from './scopes.js';
import { SmartContextStore } from './smart-context.js';
import { OAuthStore } from './store.js';
import { type Role, UserError, UserStore } from './users.js';

export interface AuthServer {
  provider: Provider;
  users: UserStore;
  clients: ClientRegistry;
  contexts: SmartContextStore;
  /** Serves the authorization server, SMART discovery, the EHR launch API and the admin API. */
  middleware: Middleware<AppState>;
  /** What the caller behind a request's bearer token may do (401 without a valid token): their token's grants, their role, and the Consents that exclude them. */
  accessPolicy(ctx: Context): Promise<AccessPolicy>;
  /** 401/403 unless the caller is an admin user or the operator client. */
  requireAdmin(ctx: Context): Promise<void>;
}

export interface AuthServerOptions {
  config: Config;
  sql: SqlClient;
  logger: Logger;
  fhir: FhirRouter;
  /** Logins, failed logins and token issues are audited. */
  audit: AuditLog;
}

/** SMART App Launch 2.0 capabilities this server implements (advertised in smart-configuration). */
const CAPABILITIES = [
  'launch-ehr', 'launch-standalone', 'client-public', 'client-confidential-symmetric',
  'client-confidential-asymmetric', 'context-ehr-patient', 'context-ehr-encounter', 'context-standalone-patient',
  'context-banner', 'context-style', 'sso-openid-connect', 'permission-offline', 'permission-online',
  'permission-patient', 'permission-user', 'permission-v1', 'permission-v2',
];

export async function createAuthServer(options: AuthServerOptions): Promise<AuthServer> {
  const { config, fhir } = options;
  const store = new OAuthStore(options.sql);
  await store.start();
  const users = new UserStore(options.sql);
  const contexts = new SmartContextStore(store);
  const provider = createProvider({
    issuer: config.issuer,
    fhirBaseUrl: config.baseUrl,
    accessTokenTtl: config.accessTokenTtl,
    store,
    secrets: await loadServerSecrets(store),
    users,
    contexts,
    logger: options.logger,
    onTokenIssued: (event) => options.audit.record({ kind: 'token', interaction: 'token-issue', action: 'E', status: 200, ...event }),
  });
  const clients = new ClientRegistry(provider, store);
  if (config.adminClient) {
    await clients.ensureAdminClient(config.adminClient.id, config.adminClient.secret);
  }
  const authenticate = (ctx: Context): Promise<AccessContext> => authenticateBearer(store, ctx.get('Authorization') || undefined, config.baseUrl);
  const fhirPrefix = new URL(config.baseUrl).pathname.replace(/\/$/, '');
  const smartStyleUrl = `${config.issuer}/auth/smart-style.json`;

  const router = new Router<AppState>();
  router.get(`${fhirPrefix}/.well-known/smart-configuration`, (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = smartConfiguration(config);
  });
  router.get('/auth/smart-style.json', (ctx) => {
    ctx.body = { color_background: '#ffffff', color_highlight: '#1a5fb4', color_text: '#1c1c1c', dim_border_radius: '4px', font_family_body: 'system-ui, sans-serif' };
  });

  // EHR launch: an EHR user (or the EHR's backend client) fixes the context, the app gets an opaque handle.
  router.post('/auth/launch', async (ctx) => {
    const access = await authenticate(ctx);
    if (access.role === 'patient' || (access.kind === 'user' && !access.role)) {
      throw forbidden('Only EHR users and systems can create launch contexts');
    }
    const body = await readJsonObject(ctx, config.maxBodyBytes);
    const patient = optionalId(body.patient, 'patient');
    const encounter = optionalId(body.encounter, 'encounter');
    const policy = new AccessPolicy(access);
    for (const [type, id] of [['Patient', patient], ['Encounter', encounter]] as const) {
      if (id) {
        const stored = await fhir.repo.read(type, id);
        await fhir.guard.assertPermits(policy, stored.resource!, 'r', fhir.repo.sql);
      }
    }
    ctx.status = 201;
    ctx.body = { launch: await contexts.createLaunch({ ...(patient ? { patient } : {}), ...(encounter ? { encounter } : {}) }) };
  });

  const admin = async (ctx: Context): Promise<void> => {
    const access = await authenticate(ctx);
    const operator = access.kind === 'system' && new AccessPolicy(access).unrestricted('*', 'c');
    if (access.role !== 'admin' && !operator) {
      throw forbidden('The admin API is for admin users and the operator client');
    }
  };
  router.get('/admin/clients', async (ctx) => {
    await admin(ctx);
    ctx.body = await clients.list();
  });
  router.post('/admin/clients', async (ctx) => {
    await admin(ctx);
    const body = await readJsonObject(ctx, config.maxBodyBytes);
    try {
      ctx.body = await clients.register(body as unknown as ClientRegistration);
      ctx.status = 201;
    } catch (err) {
      throw err instanceof ClientRegistrationError ? badRequest(err.message) : err;
    }
  });
  router.get('/admin/clients/:id', async (ctx) => {
    await admin(ctx);
    const found = await clients.get(ctx.params.id);
    if (!found) {
      throw notFound(`No client ${ctx.params.id}`);
    }
    ctx.body = found;
  });
  router.delete('/admin/clients/:id', async (ctx) => {
    await admin(ctx);
    if (!(await clients.remove(ctx.params.id))) {
      throw notFound(`No client ${ctx.params.id}`);
    }
    ctx.status = 204;
  });
  router.get('/admin/users', async (ctx) => {
    await admin(ctx);
    ctx.body = await users.list();
  });
  router.post('/admin/users', async (ctx) => {
    await admin(ctx);
    const body = await readJsonObject(ctx, config.maxBodyBytes);
    try {
      ctx.body = await users.enrol(
        {
          username: String(body.username ?? ''),
          password: String(body.password ?? ''),
          role: String(body.role ?? '') as Role,
          ...(typeof body.fhirUser === 'string' ? { fhirUser: body.fhirUser } : {}),
        },
        { secondFactor: body.totp === true },
      );
      ctx.status = 201;
    } catch (err) {
      throw err instanceof UserError ? badRequest(err.message) : err;
    }
  });

  router.use(
    interactionRoutes({
      provider,
      users,
      contexts,
      fhir,
      fhirBaseUrl: config.baseUrl,
      smartStyleUrl,
      grantTtlSeconds: 90 * 24 * 3600,
      onLogin: (event) =>
        options.audit.record({
          kind: 'login',
          interaction: 'login',
          action: 'E',
          status: event.outcome === 'success' ? 200 : 401,
          ...(event.userId ? { userId: event.userId } : {}),
          ...(event.clientId ? { clientId: event.clientId } : {}),
          ip: event.ip,
        }),
    }).routes(),
  );

  const oidc = provider.callback();
  const protocol: Middleware<AppState> = async (ctx, next) => {
    if (!isProviderPath(ctx.path)) {
      return next();
    }
    ctx.respond = false;
    await oidc(ctx.req, ctx.res);
  };
  const middleware = compose([router.routes() as Middleware<AppState>, protocol]);
  const accessPolicy = async (ctx: Context): Promise<AccessPolicy> => {
    const caller = await authenticate(ctx);
    return new AccessPolicy(caller.fhirUser ? { ...caller, consentDenied: await patientsDenying(fhir, caller.fhirUser) } : caller);
  };
  return { provider, users, clients, contexts, middleware, accessPolicy, requireAdmin: admin };
}

const PROVIDER_PATHS = new Set<string>([...Object.values(AUTH_ROUTES), '/.well-known/openid-configuration']);

function isProviderPath(path: string): boolean {
  return PROVIDER_PATHS.has(path) || path.startsWith(`${AUTH_ROUTES.authorization}/`) || path.startsWith(`${AUTH_ROUTES.end_session}/`);
}

/** SMART App Launch 2.0 §Well-known: the discovery document apps read before they authorize. */
function smartConfiguration(config: Config): Record<string, unknown> {
  const at = (path: string): string => `${config.issuer}${path}`;
  return {
    issuer: config.issuer,
    jwks_uri: at(AUTH_ROUTES.jwks),
    authorization_endpoint: at(AUTH_ROUTES.authorization),
    token_endpoint: at(AUTH_ROUTES.token),
    introspection_endpoint: at(AUTH_ROUTES.introspection),
    revocation_endpoint: at(AUTH_ROUTES.revocation),
    userinfo_endpoint: at(AUTH_ROUTES.userinfo),
    management_endpoint: at('/admin/clients'),
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384', 'RS256', 'ES256'],
    scopes_supported: [
      ...NON_RESOURCE_SCOPES,
      'patient/*.cruds', 'user/*.cruds', 'system/*.cruds', 'patient/*.rs', 'user/*.rs', 'system/*.rs',
      'patient/*.read', 'user/*.read', 'system/*.read', 'patient/*.write', 'user/*.write', 'system/*.write',
    ],
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    capabilities: authorizePostSupported(config.issuer) ? [...CAPABILITIES, 'authorize-post'] : CAPABILITIES,
  };
}

function optionalId(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(value)) {
    throw new FhirError(400, [issue('invalid', `${name} must be a resource id`, name)]);
  }
  return value;
}
