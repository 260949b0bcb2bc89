import type { Bundle, Resource } from '@medplum/fhirtypes';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Browser, type Page } from './browser.js';
import { BACKENDS, clientCredentialsToken, create, OPERATOR, startServer, type TestServer, useServer } from './harness.js';
import { type SmartApp, startSmartApp } from './smart-app.js';

/**
 * SMART on FHIR end to end: discovery, EHR and standalone launches driven by the real
 * fhirclient library, backend services through openid-client with private_key_jwt, and the
 * access-control battery (cross-patient isolation by every path, scopes, roles, tokens, audit).
 */
const PASSWORD = 'correct horse battery staple';

describe.each(BACKENDS)('SMART on FHIR security on %s', (backend) => {
  const server = useServer(backend);
  let admin: (path: string, init?: RequestInit & { json?: unknown }) => ReturnType<TestServer['request']>;
  let patientA: string;
  let patientB: string;
  let encounterA: string;
  let obsLabA: string;
  let obsVitalA: string;
  let obsLabB: string;
  let adminTotp: TOTP;
  let practitioner: string;
  let app: SmartApp;
  let patientToken: string;
  let patientRefresh: string;

  const lab = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] };
  const vital = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] };
  const glucose = { coding: [{ system: 'http://loinc.org', code: '2339-0', display: 'Glucose' }] };
  const observation = (patient: string, category: typeof lab, value: number): Resource =>
    ({
      resourceType: 'Observation',
      status: 'final',
      category: [category],
      code: glucose,
      subject: { reference: `Patient/${patient}` },
      effectiveDateTime: '2024-05-01T10:00:00Z',
      valueQuantity: { value, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
    }) as Resource;

  beforeAll(async () => {
    admin = (path, init) => server.request(/^\//.test(path) ? `${server.origin}${path}` : path, init);
    patientA = (await create(server, { resourceType: 'Patient', name: [{ family: 'Ames', given: ['Ada'] }], birthDate: '1970-01-01' })).id;
    patientB = (await create(server, { resourceType: 'Patient', name: [{ family: 'Bell', given: ['Bo'] }], birthDate: '1980-01-01' })).id;
    encounterA = (await create(server, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${patientA}` } })).id;
    obsLabA = (await create(server, observation(patientA, lab, 90))).id;
    obsVitalA = (await create(server, observation(patientA, vital, 95))).id;
    obsLabB = (await create(server, observation(patientB, lab, 180))).id;
    practitioner = (await create(server, { resourceType: 'Practitioner', name: [{ family: 'Nightingale' }] })).id;

    for (const user of [
      { username: 'nurse1', role: 'nurse', fhirUser: `Practitioner/${practitioner}` },
      { username: 'doctor1', role: 'physician', fhirUser: `Practitioner/${practitioner}` },
      { username: 'ada', role: 'patient', fhirUser: `Patient/${patientA}` },
      { username: 'locked1', role: 'nurse' },
    ]) {
      const res = await admin('/admin/users', { method: 'POST', json: { ...user, password: PASSWORD } });
      expect(res.status).toBe(201);
    }
    const adminUser = await admin('/admin/users', { method: 'POST', json: { username: 'admin1', role: 'admin', password: PASSWORD } });
    expect(adminUser.status).toBe(201);
    adminTotp = new TOTP({ secret: Secret.fromBase32(new URL(adminUser.body.totpUri).searchParams.get('secret')!) });

    app = await startSmartApp({ clientId: 'demo-app', scope: 'launch openid fhirUser patient/*.rs offline_access' });
    const registered = await registerClient({
      client_id: 'demo-app',
      client_name: 'Demo app',
      redirect_uris: [app.redirectUri],
      token_endpoint_auth_method: 'none',
      scope: 'launch launch/patient openid fhirUser offline_access online_access patient/*.rs patient/*.read user/*.rs patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory',
    });
    expect(registered.status).toBe(201);
    expect(registered.body.client_secret).toBeUndefined();
  });

  afterAll(async () => {
    await app?.close();
  });

  /** Drives a browser through sign-in (and the patient picker when shown) to the app's redirect; returns the app's JSON. */
  async function launch(url: string, username: string, options: { pick?: string; totp?: string } = {}): Promise<any> {
    const browser = new Browser();
    let page: Page = await browser.get(url);
    expect(page.html).toContain('Sign in');
    page = await browser.submit(page, { username, password: PASSWORD, ...(options.totp ? { totp: options.totp } : {}) });
    if (page.html.includes('Choose a patient')) {
      page = await browser.submit(page, options.pick ? { patient: options.pick } : {});
    }
    expect(page.html).toContain('Allow access?');
    page = await browser.submit(page, {}, { button: { name: 'decision', value: 'allow' } });
    expect({ status: page.status, html: page.status === 200 ? '' : page.html }).toEqual({ status: 200, html: '' });
    return JSON.parse(page.html);
  }

  const withToken = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } });
  const registerClient = (registration: Record<string, unknown>) => admin('/admin/clients', { method: 'POST', json: registration });

  test('discovery: smart-configuration, openid-configuration and a public CapabilityStatement that points at them', async () => {
    const smart = await server.request('.well-known/smart-configuration', { anonymous: true });
    expect(smart.status).toBe(200);
    expect(smart.body.code_challenge_methods_supported).toEqual(['S256']);
    for (const key of ['authorization_endpoint', 'token_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'jwks_uri', 'grant_types_supported', 'scopes_supported', 'capabilities']) {
      expect(smart.body[key]).toBeDefined();
    }
    for (const capability of ['launch-ehr', 'launch-standalone', 'client-public', 'client-confidential-symmetric', 'client-confidential-asymmetric', 'context-ehr-patient', 'context-standalone-patient', 'permission-v1', 'permission-v2', 'permission-patient', 'permission-user', 'sso-openid-connect']) {
      expect(smart.body.capabilities).toContain(capability);
    }
    const openid = await fetch(`${server.origin}/.well-known/openid-configuration`).then((r) => r.json() as Promise<any>);
    expect(openid.token_endpoint).toBe(smart.body.token_endpoint);
    expect(openid.code_challenge_methods_supported).toEqual(['S256']);
    const metadata = await server.request('metadata', { anonymous: true });
    expect(metadata.status).toBe(200);
    const security = metadata.body.rest[0].security;
    expect(security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    const uris = security.extension.find((e: any) => e.url.endsWith('oauth-uris')).extension;
    expect(uris.find((e: any) => e.url === 'token').valueUri).toBe(smart.body.token_endpoint);
  });

  test('no token, a bad token, an alg=none or foreign token: 401 with WWW-Authenticate', async () => {
    const none = await server.request(`Patient/${patientA}`, { anonymous: true });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    expect(none.body.resourceType).toBe('OperationOutcome');
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: server.origin, scope: 'system/*.cruds' })).toString('base64url')}.`;
    const { privateKey } = await generateKeyPair('RS256');
    const foreign = await new SignJWT({ scope: 'system/*.cruds' }).setProtectedHeader({ alg: 'RS256' }).setIssuer('https://evil.example').setAudience(server.base).setExpirationTime('1h').sign(privateKey);
    const hs256 = await new SignJWT({ scope: 'system/*.cruds' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(server.origin).sign(new TextEncoder().encode('guessed-secret-guessed-secret-32b'));
    for (const token of ['not-a-real-token-but-long-enough-to-look-up', unsigned, foreign, hs256]) {
      const res = await server.request(`Patient/${patientA}`, withToken(token));
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });

  test('backend services: openid-client with private_key_jwt (ES384), scopes enforced, client assertions not replayable', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES384', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'hie-1', alg: 'ES384' };
    const reg = await registerClient({ client_id: 'hie', client_name: 'Regional HIE', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, scope: 'system/Observation.rs system/Patient.rs' });
    expect(reg.status).toBe(201);
    const config = await oidc.discovery(new URL(server.origin), 'hie', undefined, oidc.PrivateKeyJwt({ key: privateKey, kid: 'hie-1' }), {
      execute: [oidc.allowInsecureRequests],
    });
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'system/Observation.rs system/Encounter.rs' });
    expect(tokens.scope).toBe('system/Observation.rs'); // Encounter was not registered
    const search = await server.request('Observation?code=http://loinc.org|2339-0', withToken(tokens.access_token));
    expect(search.status).toBe(200);
    expect(search.body.entry.map((e: any) => e.resource.id).sort()).toEqual([obsLabA, obsVitalA, obsLabB].sort());
    expect((await server.request(`Patient/${patientA}`, withToken(tokens.access_token))).status).toBe(403);
    const write = await server.request('Observation', { method: 'POST', ...withToken(tokens.access_token), json: observation(patientA, lab, 1) });
    expect(write.status).toBe(403);
    expect(write.body.issue[0].code).toBe('forbidden');

    // The same signed client assertion (same jti) is accepted once.
    const tokenEndpoint = `${server.origin}/auth/token`;
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES384', kid: 'hie-1' })
      .setIssuer('hie')
      .setSubject('hie')
      .setAudience(tokenEndpoint)
      .setJti(`jti-${Math.random()}`)
      .setExpirationTime('5m')
      .sign(privateKey);
    const exchange = () =>
      fetch(tokenEndpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          scope: 'system/Patient.rs',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
        }),
      });
    expect((await exchange()).status).toBe(200);
    const replay = await exchange();
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as any).error).toBe('invalid_client');
    // An assertion signed with a key the client never registered is refused.
    const { privateKey: otherKey } = await generateKeyPair('ES384');
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'ES384', kid: 'hie-1' }).setIssuer('hie').setSubject('hie').setAudience(tokenEndpoint).setJti(`jti-${Math.random()}`).setExpirationTime('5m').sign(otherKey);
    const forgedRes = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: forged }),
    });
    expect(forgedRes.status).toBe(401);
    // Algorithm confusion: the registered public key used as an HMAC secret (HS256), and alg=none.
    const hmac = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'hie-1' })
      .setIssuer('hie')
      .setSubject('hie')
      .setAudience(tokenEndpoint)
      .setJti(`jti-${Math.random()}`)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(jwk)));
    const unsignedAssertion = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'hie', sub: 'hie', aud: tokenEndpoint, jti: `jti-${Math.random()}`, exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url')}.`;
    for (const bad of [hmac, unsignedAssertion]) {
      const res = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: bad }),
      });
      expect(res.status).toBe(401);
    }
  });

  test('backend services with keys published at a jwks_uri (RS384)', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS384', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'feed-1', alg: 'RS384', use: 'sig' }] };
    const keyServer = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
    try {
      const jwksUri = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/jwks.json`;
      const reg = await registerClient({ client_id: 'lab-feed', client_name: 'Lab feed', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwksUri, scope: 'system/Observation.cruds' });
      expect(reg.status).toBe(201);
      const config = await oidc.discovery(new URL(server.origin), 'lab-feed', undefined, oidc.PrivateKeyJwt({ key: privateKey, kid: 'feed-1' }), {
        execute: [oidc.allowInsecureRequests],
      });
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'system/Observation.cruds' });
      const created = await server.request('Observation', { method: 'POST', ...withToken(tokens.access_token), json: observation(patientB, lab, 150) });
      expect(created.status).toBe(201);
    } finally {
      keyServer.close();
    }
  });

  test('EHR launch with fhirclient: the EHR mints a launch handle, the app gets patient, encounter and fhirUser', async () => {
    const minted = await admin('/auth/launch', { method: 'POST', json: { patient: patientA, encounter: encounterA } });
    expect(minted.status).toBe(201);
    const result = await launch(app.launchUrl(server.base, minted.body.launch), 'nurse1');
    expect(result.patient).toBe(patientA);
    expect(result.encounter).toBe(encounterA);
    expect(result.patientResource.id).toBe(patientA);
    expect(result.fhirUser).toMatch(/^Practitioner\//);
    expect(result.tokenResponse.id_token).toBeDefined();
    expect(result.tokenResponse.need_patient_banner).toBe(false);
    expect(result.tokenResponse.scope.split(' ')).toEqual(expect.arrayContaining(['launch', 'openid', 'fhirUser', 'patient/*.rs']));

    const browser = new Browser();
    const unknown = await browser.get(app.launchUrl(server.base, 'no-such-launch-handle'));
    const after = await browser.submit(unknown, { username: 'nurse1', password: PASSWORD });
    expect(after.status).toBe(500);
    expect(after.html).toContain('launch handle is unknown');
  });

  test('standalone launch as a patient user: their own record, a refresh token, and nothing of anyone else by any path', async () => {
    const result = await launch(app.launchUrl(server.base, undefined, { scope: 'launch/patient openid fhirUser patient/*.rs offline_access' }), 'ada');
    expect(result.patient).toBe(patientA);
    expect(result.tokenResponse.need_patient_banner).toBe(true);
    expect(result.tokenResponse.refresh_token).toBeDefined();
    patientToken = result.tokenResponse.access_token;
    patientRefresh = result.tokenResponse.refresh_token;
    const as = (path: string, init: RequestInit & { json?: unknown } = {}) => server.request(path, { ...init, headers: { ...(init.headers as object), Authorization: `Bearer ${patientToken}` } });

    // Patients cannot mint EHR launch contexts (for anyone).
    expect((await admin('/auth/launch', { method: 'POST', json: { patient: patientB }, headers: { Authorization: `Bearer ${patientToken}` } })).status).toBe(403);
    // direct reads
    expect((await as(`Patient/${patientA}`)).status).toBe(200);
    expect((await as(`Observation/${obsLabA}`)).status).toBe(200);
    expect((await as(`Patient/${patientB}`)).status).toBe(403);
    expect((await as(`Observation/${obsLabB}`)).status).toBe(403);
    expect((await as(`Observation/${obsLabB}/_history/1`)).status).toBe(403);
    expect((await as(`Observation/${obsLabB}/_history`)).status).toBe(403);
    // searches, including ones that name the other patient, chains, reverse chains and includes
    const ids = (b: Bundle) => (b.entry ?? []).map((e) => `${e.resource!.resourceType}/${e.resource!.id}`).sort();
    expect(ids((await as('Observation')).body)).toEqual([`Observation/${obsLabA}`, `Observation/${obsVitalA}`].sort());
    expect(ids((await as(`Observation?subject=Patient/${patientB}`)).body)).toEqual([]);
    expect(ids((await as('Observation?subject:Patient.family=Bell')).body)).toEqual([]);
    expect(ids((await as('Patient?_has:Observation:patient:code=2339-0')).body)).toEqual([`Patient/${patientA}`]);
    expect(ids((await as(`Observation?_id=${obsLabB},${obsLabA}&_include=Observation:subject`)).body)).toEqual([`Observation/${obsLabA}`, `Patient/${patientA}`].sort());
    expect(ids((await as('Patient?_revinclude=Observation:subject')).body)).toEqual([`Observation/${obsLabA}`, `Observation/${obsVitalA}`, `Patient/${patientA}`].sort());
    const total = await as('Observation?_summary=count');
    expect(total.body.total).toBe(2);
    // history and operations
    expect((await as('Observation/_history')).status).toBe(403);
    expect((await as('_history')).status).toBe(403);
    expect((await as(`Patient/${patientB}/$everything`)).status).toBe(403);
    const everything = await as(`Patient/${patientA}/$everything`);
    expect(everything.status).toBe(200);
    expect(ids(everything.body).every((r) => ![`Patient/${patientB}`, `Observation/${obsLabB}`].includes(r))).toBe(true);
    const lastn = await as(`Observation/$lastn?patient=${patientB}`);
    expect(lastn.body.entry ?? []).toEqual([]);
    // batch and transaction entries are checked one by one
    const batch = await as('', {
      method: 'POST',
      json: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient/${patientB}` } }, { request: { method: 'GET', url: `Patient/${patientA}` } }] },
    });
    expect(batch.body.entry.map((e: any) => e.response.status)).toEqual([expect.stringMatching(/^403/), expect.stringMatching(/^200/)]);
    const tx = await as('', {
      method: 'POST',
      json: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: observation(patientA, vital, 1), request: { method: 'POST', url: 'Observation' } }] },
    });
    expect(tx.status).toBe(403); // patient/*.rs grants no create
    // writes into another patient's record are refused even with write scopes (see the role test)
    expect((await as(`Observation/${obsLabB}`, { method: 'DELETE' })).status).toBe(403);
    expect((await server.request(`Observation/${obsLabB}`)).status).toBe(200);
  });

  test('standalone launch by a practitioner picks a patient; a confidential client authenticates with its secret', async () => {
    const options = { clientId: 'ward-dashboard', scope: 'launch/patient openid fhirUser patient/*.rs online_access', clientSecret: '' };
    const ward = await startSmartApp(options);
    try {
      const reg = await registerClient({
        client_id: 'ward-dashboard',
        client_name: 'Ward dashboard',
        redirect_uris: [ward.redirectUri],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'launch/patient openid fhirUser user/*.cruds patient/*.rs online_access',
      });
      expect(reg.status).toBe(201);
      expect(reg.body.client_secret).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      expect((await admin('/admin/clients/ward-dashboard')).body.client_secret).toBeUndefined();
      options.clientSecret = reg.body.client_secret;
      const result = await launch(ward.launchUrl(server.base), 'nurse1', { pick: patientB });
      expect(result.patient).toBe(patientB);
      expect(result.patientResource.name[0].family).toBe('Bell');
      expect(result.tokenResponse.refresh_token).toBeDefined(); // online_access
    } finally {
      await ward.close();
    }
  });

  test('refresh tokens rotate; revocation takes effect at once; an expired token is refused', async () => {
    const refresh = (token: string) =>
      fetch(`${server.origin}/auth/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: 'demo-app' }),
      });
    const first = await refresh(patientRefresh);
    expect(first.status).toBe(200);
    const rotated = (await first.json()) as any;
    expect(rotated.refresh_token).toBeDefined();
    expect(rotated.refresh_token).not.toBe(patientRefresh);
    expect(rotated.patient).toBe(patientA); // the launch context survives the refresh
    expect((await server.request(`Patient/${patientA}`, withToken(rotated.access_token))).status).toBe(200);
    // The used refresh token cannot be used again.
    expect((await refresh(patientRefresh)).status).toBe(400);

    const revoke = await fetch(`${server.origin}/auth/revoke`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: rotated.access_token, client_id: 'demo-app' }),
    });
    expect(revoke.status).toBe(200);
    expect((await server.request(`Patient/${patientA}`, withToken(rotated.access_token))).status).toBe(401);

    const introspect = async (token: string) =>
      (
        await fetch(`${server.origin}/auth/introspect`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token, client_id: 'demo-app' }),
        })
      ).json() as Promise<any>;
    expect((await introspect(rotated.access_token)).active).toBe(false);

    // Expiry: a token whose lifetime has passed (moved into the past in the store) does not work. A
    // token the server has already seen is checked against the same expiry, kept with it.
    const issue = () => clientCredentialsToken(server.origin, 'test-operator', 'test-operator-secret-0123456789', 'system/Patient.rs');
    expect((await server.request(`Patient/${patientA}`, withToken(await issue()))).status).toBe(200);
    const expired = await issue();
    await server.sql.query(
      `UPDATE oauth_entity SET expires_at = now() - interval '1 second',
         payload = jsonb_set(payload::jsonb, '{exp}', to_jsonb(extract(epoch from now())::int - 1))
       WHERE model = 'ClientCredentials' AND id = $1`,
      [expired],
    );
    expect((await server.request(`Patient/${patientA}`, withToken(expired))).status).toBe(401);
  });

  test('v2 query restrictions: patient/Observation.rs?category=laboratory sees lab results only', async () => {
    const minted = await admin('/auth/launch', { method: 'POST', json: { patient: patientA } });
    const scope = 'launch openid patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory';
    const result = await launch(app.launchUrl(server.base, minted.body.launch, { scope }), 'doctor1');
    const token = result.tokenResponse.access_token;
    const search = await server.request('Observation', withToken(token));
    expect(search.body.entry.map((e: any) => e.resource.id)).toEqual([obsLabA]);
    // A chain into a type the token cannot search is refused rather than used as an oracle.
    expect((await server.request('Observation?subject:Patient.family=Ames', withToken(token))).status).toBe(403);
    expect((await server.request(`Observation/${obsLabA}`, withToken(token))).status).toBe(200);
    expect((await server.request(`Observation/${obsVitalA}`, withToken(token))).status).toBe(403);
    expect((await server.request(`Patient/${patientA}`, withToken(token))).status).toBe(403);
  });

  test('roles: nurses record observations but not diagnoses; physicians record diagnoses; admins read no clinical data', async () => {
    const userApp = await startSmartApp({ clientId: 'ehr-ui', scope: 'launch openid fhirUser user/*.cruds' });
    const registered = await registerClient({ client_id: 'ehr-ui', client_name: 'EHR UI', redirect_uris: [userApp.redirectUri], token_endpoint_auth_method: 'none', scope: 'launch openid fhirUser user/*.cruds' });
    expect(registered.status).toBe(201);
    try {
      const tokenFor = async (username: string, totp?: string): Promise<string> => {
        const minted = await admin('/auth/launch', { method: 'POST', json: { patient: patientA } });
        const result = await launch(userApp.launchUrl(server.base, minted.body.launch), username, { totp });
        return result.tokenResponse.access_token;
      };
      const condition = { resourceType: 'Condition', subject: { reference: `Patient/${patientA}` }, code: { text: 'Type 2 diabetes' } };
      const nurse = await tokenFor('nurse1');
      expect((await server.request('Observation', { method: 'POST', ...withToken(nurse), json: observation(patientB, vital, 70) })).status).toBe(201);
      expect((await server.request('Condition', { method: 'POST', ...withToken(nurse), json: condition })).status).toBe(403);
      expect((await server.request(`Patient/${patientB}`, withToken(nurse))).status).toBe(200);
      // Patient B's Consent denies this practitioner: B's record disappears for them, by read and by search.
      const consent = await create(server, {
        resourceType: 'Consent',
        status: 'active',
        scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
        category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
        patient: { reference: `Patient/${patientB}` },
        policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] },
        provision: { type: 'deny', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: { reference: `Practitioner/${practitioner}` } }] },
      });
      expect((await server.request(`Patient/${patientB}`, withToken(nurse))).status).toBe(403);
      expect((await server.request(`Observation/${obsLabB}`, withToken(nurse))).status).toBe(403);
      const seen = await server.request('Observation?code=http://loinc.org|2339-0&_count=100', withToken(nurse));
      expect(seen.body.entry.map((e: any) => e.resource.subject.reference)).not.toContain(`Patient/${patientB}`);
      expect(seen.body.entry.map((e: any) => e.resource.id)).toContain(obsLabA);
      // Withdrawn consent (inactive) no longer blocks.
      expect((await server.request(`Consent/${consent.id}`, { method: 'PUT', json: { ...consent, status: 'inactive' } })).status).toBe(200);
      expect((await server.request(`Patient/${patientB}`, withToken(nurse))).status).toBe(200);
      const doctor = await tokenFor('doctor1');
      expect((await server.request('Condition', { method: 'POST', ...withToken(doctor), json: condition })).status).toBe(201);
      const adminToken = await tokenFor('admin1', adminTotp.generate());
      expect((await server.request(`Observation/${obsLabA}`, withToken(adminToken))).status).toBe(403);
      const report = await server.request('$resource-counts', withToken(adminToken));
      expect(report.status).toBe(200);
      expect((await server.request('_history', withToken(adminToken))).status).toBe(403);
      expect((await server.request('$resource-counts', withToken(nurse))).status).toBe(403);
      const audit = await server.request('AuditEvent?_count=5', withToken(adminToken));
      expect(audit.status).toBe(200);
      expect(audit.body.entry.length).toBeGreaterThan(0);
    } finally {
      await userApp.close();
    }
  });

  test('admins need their second factor; five wrong passwords lock an account', async () => {
    const browser = new Browser();
    const minted = await admin('/auth/launch', { method: 'POST', json: { patient: patientA } });
    let page = await browser.get(app.launchUrl(server.base, minted.body.launch));
    page = await browser.submit(page, { username: 'admin1', password: PASSWORD });
    expect(page.status).toBe(401);
    expect(page.html).toContain('6-digit code');

    const attacker = new Browser();
    let locked = await attacker.get(app.launchUrl(server.base, minted.body.launch));
    for (let i = 0; i < 5; i++) {
      locked = await attacker.submit(locked, { username: 'locked1', password: 'wrong password!!' });
    }
    expect(locked.status).toBe(423);
    const right = await attacker.submit(locked, { username: 'locked1', password: PASSWORD });
    expect(right.status).toBe(423);
    expect(right.html).toContain('locked');
  });

  test('audit: every access, refusal, login and token issue is an AuditEvent; nobody can change or delete one', async () => {
    const refused = await server.request(`AuditEvent?entity=Patient/${patientB}&outcome=4&_count=100`);
    expect(refused.status).toBe(200);
    expect(refused.body.entry.length).toBeGreaterThan(0);
    const logins = await server.request('AuditEvent?subtype=http://dicom.nema.org/resources/ontology/DCM|110122&_count=100');
    const outcomes = new Set(logins.body.entry.map((e: any) => e.resource.outcome));
    expect(outcomes).toEqual(new Set(['0', '4']));
    const tokens = await server.request('AuditEvent?subtype=urn:carelens:audit|token-issue&_count=1');
    expect(tokens.body.entry).toHaveLength(1);
    const one = refused.body.entry[0].resource;
    expect(one.entity.some((e: any) => e.type?.code === 'XrequestId')).toBe(true);
    // AuditEvents are stored without per-write validation: every kind the server writes must be valid R4.
    for (const event of [one, logins.body.entry[0].resource, tokens.body.entry[0].resource]) {
      const validated = await server.request('AuditEvent/$validate', { method: 'POST', json: event });
      expect(validated.body.issue.filter((i: any) => i.severity === 'error')).toEqual([]);
    }
    expect((await server.request(`AuditEvent/${one.id}`, { method: 'PUT', json: { ...one, outcome: '0' } })).status).toBe(403);
    expect((await server.request(`AuditEvent/${one.id}`, { method: 'DELETE' })).status).toBe(403);
    expect((await server.request(`AuditEvent/${one.id}`)).body.outcome).toBe('4');
  });

  test('the AuditEvent of a read is there at once, however the audit trail is reached', async () => {
    const requestIds = ['everything', 'revinclude', 'search-form'].map((name) => `audit-${name}-${Date.now()}`);
    for (const requestId of requestIds) {
      expect((await server.request(`Patient/${patientA}`, { headers: { 'X-Request-Id': requestId } })).status).toBe(200);
    }
    const auditedRequestIds = (bundle: any): string[] =>
      bundle.entry
        .filter((e: any) => e.resource.resourceType === 'AuditEvent')
        .flatMap((e: any) => e.resource.entity.filter((x: any) => x.type?.code === 'XrequestId').map((x: any) => x.what.identifier.value));
    const everything = await server.request(`Patient/${patientA}/$everything?_type=AuditEvent&_count=1000`);
    expect(everything.status).toBe(200);
    expect(auditedRequestIds(everything.body)).toContain(requestIds[0]);
    const revincluded = await server.request(`Patient?_id=${patientA}&_revinclude=AuditEvent:patient&_count=1000`);
    expect(auditedRequestIds(revincluded.body)).toContain(requestIds[1]);
    const form = await server.request('Patient/_search', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `_id=${patientA}&_revinclude=AuditEvent:patient&_count=1000`,
    });
    expect(auditedRequestIds(form.body)).toContain(requestIds[2]);
  });
});

// Several processes (WORKERS > 1, or several hosts) each remember the tokens they have seen: a
// revocation through one must stop the token on all of them.
// Only PostgreSQL is shared between processes (PGlite lives inside one).
(BACKENDS.includes('postgres') ? describe : describe.skip)('token revocation across processes on postgres', () => {
  const backend = 'postgres';
  const first = useServer(backend);
  let second: TestServer | undefined;
  beforeAll(async () => {
    // The same FHIR base for both, as behind one load balancer: tokens are issued for that audience.
    second = await startServer(backend, { BASE_URL: first.base }, first);
  });
  afterAll(() => second?.close());

  /** A token, and a read with it on the second server (which then remembers the token). */
  async function tokenSeenBySecond(family: string): Promise<{ token: string; readOnSecond: () => Promise<number> }> {
    const patient = await first.request('Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family }] } });
    const token = await clientCredentialsToken(first.origin, OPERATOR.id, OPERATOR.secret, 'system/Patient.rs');
    const readOnSecond = async () =>
      (await second!.request(`${second!.origin}/fhir/Patient/${patient.body.id}`, { headers: { Authorization: `Bearer ${token}` } })).status;
    expect(await readOnSecond()).toBe(200);
    expect(await readOnSecond()).toBe(200);
    return { token, readOnSecond };
  }

  const revokeThroughFirst = (token: string): Promise<Response> =>
    fetch(`${first.origin}/auth/revoke`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Authorization: `Basic ${Buffer.from(`${OPERATOR.id}:${OPERATOR.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ token }),
    });

  test('a token revoked through one server stops working on another sharing the database', async () => {
    const { token, readOnSecond } = await tokenSeenBySecond('Revoked');
    expect((await revokeThroughFirst(token)).status).toBe(200);
    // The other server hears of it by a notification from the database: a moment, not a request, later.
    let status = await readOnSecond();
    for (const deadline = Date.now() + 1000; status === 200 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      status = await readOnSecond();
    }
    expect(status).toBe(401);
  });

  test('a server that lost its notification connection stops trusting the tokens it remembers', async () => {
    const { token, readOnSecond } = await tokenSeenBySecond('Unheard');
    // The database ends every listening session, as a restart or a network cut would: a notification sent now is lost.
    await first.sql.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await revokeThroughFirst(token)).status).toBe(200);
    expect(await readOnSecond()).toBe(401);
  });
});
