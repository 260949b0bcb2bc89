/**
 * A tiny SMART on FHIR app for end-to-end tests, driven by the real SMART client library
 * (fhirclient, smart-on-fhir/client-js) through its Node API. Drive it with test/browser.ts:
 *
 *   GET /launch?iss=&launch=   EHR launch       -> 302 to the authorization endpoint
 *   GET /standalone?iss=       standalone launch -> 302 to the authorization endpoint
 *   GET <redirectPath>         redirect_uri: code exchange, then reads Patient/<patient>;
 *                              200 JSON SmartAppResult, or 500 { error } on any failure
 *
 * fhirclient discovers the endpoints from `${iss}/.well-known/smart-configuration` (falling back
 * to the CapabilityStatement's oauth-uris extension if that fails), always sends
 * `aud=<iss>`, and with pkceMode 'required' refuses to launch unless
 * code_challenge_methods_supported includes S256.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SmartAppOptions {
  clientId: string;
  scope: string;
  /** Confidential client: sent as HTTP Basic (client_secret_basic) at the token endpoint. */
  clientSecret?: string;
  /** Path of the redirect_uri on the app; default '/callback'. */
  redirectPath?: string;
}

export interface SmartApp {
  /** http://127.0.0.1:<port> */
  origin: string;
  /** The redirect_uri the app sends; the client has to be registered with it. */
  redirectUri: string;
  /** EHR launch URL when `launch` is given, else standalone launch URL. `scope` overrides the app's scope for this launch. */
  launchUrl(iss: string, launch?: string, opts?: { scope?: string }): string;
  close(): Promise<void>;
}

/** What the redirect_uri responds with once fhirclient has a token and has read the patient. */
export interface SmartAppResult {
  patient: string;
  encounter: string | null;
  fhirUser: string | null;
  tokenResponse: Record<string, unknown>;
  patientResource: unknown;
}

// The slice of fhirclient's Node API used here. Its own typings are deliberately not imported:
// they carry `/// <reference lib="dom" />`, which would put DOM globals (fetch, Response,
// setTimeout, ...) into the type-check of the whole project, src included.
interface SmartStorage {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<unknown>;
  unset(key: string): Promise<boolean>;
}
interface AuthorizeParams {
  clientId: string;
  scope: string;
  redirectUri: string;
  clientSecret?: string;
  pkceMode: 'ifSupported' | 'required' | 'disabled' | 'unsafeV1';
}
interface SmartClient {
  readonly patient: { readonly id: string | null };
  readonly encounter: { readonly id: string | null };
  readonly state: { tokenResponse?: Record<string, unknown> };
  getFhirUser(): string | null;
  request(url: string): Promise<unknown>;
}
interface SmartApi {
  authorize(params: AuthorizeParams): Promise<string | void>;
  ready(): Promise<SmartClient>;
}
type SmartFactory = (req: IncomingMessage, res: ServerResponse, storage: SmartStorage) => SmartApi;

let factory: Promise<SmartFactory> | undefined;
function loadFhirclient(): Promise<SmartFactory> {
  // A non-literal specifier keeps tsc from resolving fhirclient's typings (see above).
  const specifier: string = 'fhirclient';
  factory ??= import(specifier).then((mod: unknown) => {
    // CommonJS `module.exports = smart` arrives as the default export.
    const smart = typeof mod === 'object' && mod !== null && 'default' in mod ? mod.default : mod;
    if (typeof smart !== 'function') throw new Error('fhirclient did not export the smart(req, res, storage) function');
    return smart as SmartFactory;
  });
  return factory;
}

/** fhirclient's key for "the current launch" in session-like storage. */
const SMART_KEY = 'SMART_KEY';

/**
 * fhirclient's default Node storage lives on req.session. This one is a single map for the app,
 * made safe for concurrent launches by never storing SMART_KEY: authorize() would otherwise
 * delete the state of whichever launch wrote SMART_KEY last. ready() then finds the state by
 * the `state` parameter the authorization server echoes, which it always does in this flow.
 */
function launchStorage(): SmartStorage {
  const states = new Map<string, unknown>();
  return {
    async get(key) {
      return key === SMART_KEY ? undefined : states.get(key);
    },
    async set(key, value) {
      if (key !== SMART_KEY) states.set(key, value);
      return value;
    },
    async unset(key) {
      return states.delete(key);
    },
  };
}

export async function startSmartApp(options: SmartAppOptions): Promise<SmartApp> {
  const smart = await loadFhirclient();
  const storage = launchStorage();
  const redirectPath = options.redirectPath ?? '/callback';

  const authorize = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    // fhirclient itself reads `iss` and `launch` from the request URL; it resolves a relative
    // redirectUri against the request's Host, i.e. this server's origin.
    await smart(req, res, storage).authorize({
      clientId: options.clientId,
      scope: url.searchParams.get('scope') ?? options.scope,
      redirectUri: redirectPath,
      clientSecret: options.clientSecret,
      pkceMode: 'required',
    });
  };

  const callback = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const client = await smart(req, res, storage).ready();
    const patient = client.patient.id;
    // fhirclient takes the patient only from the token response's `patient` field.
    if (!patient) throw new Error(`token response has no patient: ${JSON.stringify(client.state.tokenResponse)}`);
    const result: SmartAppResult = {
      patient,
      encounter: client.encounter.id ?? null,
      fhirUser: client.getFhirUser() ?? null,
      tokenResponse: client.state.tokenResponse ?? {},
      // A token that may not read the Patient (a restricted scope, an admin) still completes the launch.
      patientResource: await client.request(`Patient/${patient}`).catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) })),
    };
    send(res, 200, result);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app.invalid');
    const handler =
      url.pathname === '/launch' || url.pathname === '/standalone'
        ? authorize(req, res, url)
        : url.pathname === redirectPath
          ? callback(req, res)
          : Promise.resolve(send(res, 404, { error: `no route ${url.pathname}` }));
    handler.catch((err: unknown) => {
      if (res.headersSent) res.end();
      else send(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  return {
    origin,
    redirectUri: `${origin}${redirectPath}`,
    launchUrl(iss, launch, opts = {}) {
      const url = new URL(launch === undefined ? '/standalone' : '/launch', origin);
      url.searchParams.set('iss', iss);
      if (launch !== undefined) url.searchParams.set('launch', launch);
      if (opts.scope !== undefined) url.searchParams.set('scope', opts.scope);
      return url.href;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
