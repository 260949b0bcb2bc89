import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Browser, decodeEntities, parseForms } from './browser.js';
import { startSmartApp, type SmartApp } from './smart-app.js';

/** Self-tests of the test utilities browser.ts and smart-app.ts against throwaway local servers. */

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function listen(handler: Handler): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const FORM_PAGE = `<!doctype html><html><body>
<form id="search" action="/search"><input name="q" value="x"></form>
<form method='post' action='/submit?a=1&amp;b=2' class="login">
  <input type="hidden" name="token" value="a&amp;b &quot;q&quot; &#39;s&#39; &lt;x&gt; &#x41;">
  <input value='pre filled' name='username' type=text>
  <input name="password" type="password">
  <input type="checkbox" name="remember" checked>
  <input type="checkbox" name="spam" value="yes">
  <input type="radio" name="color" value="red">
  <input type="radio" name="color" value="blue" checked="checked">
  <input name="off" value="1" disabled>
  <select name="patient"><option value="p1">One</option><option value="p2" selected>Two &amp; co</option></select>
  <select name="first"><option>Alpha &amp; Beta</option><option value="b">B</option></select>
  <textarea name="note">
line &lt;1&gt;</textarea>
  <button type="submit" name="decision" value="allow">Allow</button>
  <button name="decision" value="deny">Deny</button>
  <input type="submit" name="other" value="x">
</form>
<form method="post" action="/307"><input name="k" value="v"></form>
</body></html>`;

describe('Browser', () => {
  let site: { origin: string; close(): Promise<void> };
  const seen: Array<{ method: string; path: string; cookie: string; body: string; origin: string }> = [];

  beforeAll(async () => {
    site = await listen((req, res, body) => {
      const path = req.url ?? '/';
      seen.push({ method: req.method ?? '', path, cookie: req.headers.cookie ?? '', body, origin: req.headers.origin ?? '' });
      if (path === '/dir/start') {
        res.writeHead(302, {
          'set-cookie': ['sid=abc; Path=/; HttpOnly; SameSite=Lax', 'scoped=1; Path=/form', 'dirdefault=2', 'old=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT'],
          location: '../form?x=1',
        });
        res.end();
      } else if (path.startsWith('/form')) {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(FORM_PAGE);
      } else if (path.startsWith('/submit')) {
        res.writeHead(303, { 'set-cookie': 'scoped=; Path=/form; Max-Age=0', location: `${site.origin}/done` });
        res.end();
      } else if (path === '/307') {
        res.writeHead(307, { location: '/echo' });
        res.end();
      } else if (path === '/to-app') {
        res.writeHead(302, { location: 'http://app.invalid/cb?code=c1&state=s1' });
        res.end();
      } else if (path === '/loop') {
        res.writeHead(302, { location: '/loop' });
        res.end();
      } else json(res, 200, { method: req.method, path, body, cookie: req.headers.cookie ?? '' });
    });
  });
  afterAll(() => site.close());

  test('follows relative redirects, keeps cookies by path, submits a form with defaults and overrides', async () => {
    const browser = new Browser();
    const form = await browser.get(`${site.origin}/dir/start`);
    expect(form.status).toBe(200);
    expect(form.url).toBe(`${site.origin}/form?x=1`);
    expect(form.stopped).toBe(false);
    // Path=/form is sent to /form, the default path (/dir) is not; an expired cookie is never stored.
    expect(seen.at(-1)?.cookie).toBe('sid=abc; scoped=1');
    expect(browser.cookiesFor(`${site.origin}/dir/x`)).toEqual({ sid: 'abc', dirdefault: '2' });

    const done = await browser.submit(form, { password: 's3cret', username: 'nurse' }, { formIndex: 1 });
    const post = seen.find((s) => s.path.startsWith('/submit'));
    expect(post?.method).toBe('POST');
    expect(post?.path).toBe('/submit?a=1&b=2');
    expect(post?.origin).toBe(site.origin);
    expect([...new URLSearchParams(post?.body)]).toEqual([
      ['token', `a&b "q" 's' <x> A`],
      ['username', 'nurse'],
      ['password', 's3cret'],
      ['remember', 'on'],
      ['color', 'blue'],
      ['patient', 'p2'],
      ['first', 'Alpha & Beta'],
      ['note', 'line <1>'],
      ['decision', 'allow'], // the first submit button, as on pressing Enter
    ]);
    // 303 after POST becomes a GET; Max-Age=0 deleted the cookie.
    expect(done.url).toBe(`${site.origin}/done`);
    expect(JSON.parse(done.html)).toMatchObject({ method: 'GET', path: '/done', cookie: 'sid=abc' });
    expect(browser.cookiesFor(`${site.origin}/form`)).toEqual({ sid: 'abc' });
  });

  test('submits the chosen button, GET forms, and repeats a POST on 307', async () => {
    const browser = new Browser();
    const form = await browser.get(`${site.origin}/form`);
    await browser.submit(form, {}, { formIndex: 1, button: { name: 'decision', value: 'deny' } });
    const post = seen.filter((s) => s.path.startsWith('/submit')).at(-1);
    expect(new URLSearchParams(post?.body).getAll('decision')).toEqual(['deny']);

    const search = await browser.submit(form, { q: 'a b' });
    expect(JSON.parse(search.html)).toMatchObject({ method: 'GET', path: '/search?q=a+b' });

    const echoed = await browser.submit(form, {}, { formIndex: 2 });
    expect(JSON.parse(echoed.html)).toMatchObject({ method: 'POST', path: '/echo', body: 'k=v' });

    await expect(browser.submit(form, {}, { formIndex: 3 })).rejects.toThrow(/no form #3/);
  });

  test('stops at stopAt prefixes without fetching, and gives up on redirect loops', async () => {
    const browser = new Browser({ stopAt: ['http://app.invalid/cb'] });
    const page = await browser.get(`${site.origin}/to-app`);
    expect(page).toMatchObject({ url: 'http://app.invalid/cb?code=c1&state=s1', status: 302, html: '', stopped: true });
    await expect(new Browser({ maxRedirects: 3 }).get(`${site.origin}/loop`)).rejects.toThrow(/more than 3 redirects/);
  });

  test('parses entities and quirky markup', () => {
    expect(decodeEntities('&amp;lt; &#60; &#x3c; &bogus; &QUOT;')).toBe('&lt; < < &bogus; "');
    const [form] = parseForms(`<FORM ACTION="a>b" Method=POST><INPUT NAME=x VALUE=1 /><input name="y" value='"q"' type="hidden"/></FORM>`, 'http://h/p/q');
    expect(form).toEqual({ action: 'http://h/p/a%3Eb', method: 'POST', fields: [['x', '1'], ['y', '"q"']], buttons: [] });
  });
});

/**
 * A fake SMART server (discovery, authorize, token, Patient read) so the app's fhirclient flow
 * can be checked end to end without carelens' authorization server.
 */
describe('startSmartApp against a fake SMART server', () => {
  let fake: { origin: string; close(): Promise<void> };
  let app: SmartApp;
  let confidential: SmartApp;
  let s256 = true;
  const codes = new Map<string, { challenge: string; redirectUri: string; launch: string | null; scope: string }>();
  const tokenAuth: string[] = [];

  beforeAll(async () => {
    fake = await listen((req, res, body) => {
      const url = new URL(req.url ?? '/', fake.origin);
      if (url.pathname === '/fhir/.well-known/smart-configuration') {
        json(res, 200, {
          authorization_endpoint: `${fake.origin}/auth/authorize`,
          token_endpoint: `${fake.origin}/auth/token`,
          code_challenge_methods_supported: s256 ? ['S256'] : ['plain'],
        });
      } else if (url.pathname === '/auth/authorize') {
        const q = url.searchParams;
        const code = `code-${codes.size}`;
        codes.set(code, { challenge: q.get('code_challenge') ?? '', redirectUri: q.get('redirect_uri') ?? '', launch: q.get('launch'), scope: q.get('scope') ?? '' });
        res.writeHead(302, { location: `${q.get('redirect_uri')}?code=${code}&state=${encodeURIComponent(q.get('state') ?? '')}` });
        res.end();
      } else if (url.pathname === '/auth/token') {
        const form = new URLSearchParams(body);
        const grant = codes.get(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        tokenAuth.push(req.headers.authorization ?? `client_id=${form.get('client_id')}`);
        if (!grant || createHash('sha256').update(verifier).digest('base64url') !== grant.challenge || form.get('redirect_uri') !== grant.redirectUri) {
          json(res, 400, { error: 'invalid_grant' });
          return;
        }
        const idToken = ['e30', Buffer.from(JSON.stringify({ fhirUser: `${fake.origin}/fhir/Practitioner/pr1` })).toString('base64url'), ''].join('.');
        json(res, 200, {
          access_token: `tok-${form.get('code')}`,
          token_type: 'Bearer',
          expires_in: 300,
          scope: grant.scope,
          patient: grant.launch ? 'p-ehr' : 'p-standalone',
          ...(grant.launch ? { encounter: 'e1' } : {}),
          id_token: idToken,
        });
      } else if (url.pathname.startsWith('/fhir/Patient/') && req.headers.authorization?.startsWith('Bearer tok-')) {
        json(res, 200, { resourceType: 'Patient', id: url.pathname.split('/').pop() });
      } else json(res, 401, { error: 'unauthorized' });
    });
    app = await startSmartApp({ clientId: 'demo-app', scope: 'launch openid fhirUser patient/*.rs' });
    confidential = await startSmartApp({ clientId: 'conf-app', clientSecret: 'sekret', scope: 'launch/patient patient/*.rs', redirectPath: '/cb' });
  });
  afterAll(async () => {
    await app.close();
    await confidential.close();
    await fake.close();
  });

  test('EHR launch redirects to the discovered authorization endpoint with PKCE S256, aud and launch', async () => {
    const browser = new Browser({ stopAt: [`${fake.origin}/auth/`] });
    const page = await browser.get(app.launchUrl(`${fake.origin}/fhir`, 'L-1'));
    expect(page.stopped).toBe(true);
    const target = new URL(page.url);
    expect(`${target.origin}${target.pathname}`).toBe(`${fake.origin}/auth/authorize`);
    expect(Object.fromEntries(target.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: 'demo-app',
      scope: 'launch openid fhirUser patient/*.rs',
      redirect_uri: app.redirectUri,
      aud: `${fake.origin}/fhir`,
      launch: 'L-1',
      code_challenge_method: 'S256',
    });
    expect(target.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(target.searchParams.get('state')).toBeTruthy();
  });

  test('EHR launch completes: token exchange with the verifier, patient, encounter, fhirUser, Patient read', async () => {
    const page = await new Browser().get(app.launchUrl(`${fake.origin}/fhir`, 'L-2'));
    expect(page.url.startsWith(`${app.redirectUri}?code=`)).toBe(true);
    expect(page.status).toBe(200);
    const result = JSON.parse(page.html);
    expect(result).toMatchObject({
      patient: 'p-ehr',
      encounter: 'e1',
      fhirUser: 'Practitioner/pr1',
      tokenResponse: { token_type: 'Bearer', patient: 'p-ehr' },
      patientResource: { resourceType: 'Patient', id: 'p-ehr' },
    });
    expect(tokenAuth.at(-1)).toBe('client_id=demo-app'); // a public client
  });

  test('interleaved launches keep their own state; standalone confidential client uses Basic auth', async () => {
    const iss = `${fake.origin}/fhir`;
    const [a, b] = [new Browser({ stopAt: [`${fake.origin}/auth/`] }), new Browser({ stopAt: [`${fake.origin}/auth/`] })];
    const first = await a.get(app.launchUrl(iss, 'L-a'));
    const second = await b.get(confidential.launchUrl(iss));
    const third = await b.get(app.launchUrl(iss, undefined, { scope: 'launch/patient patient/*.rs' }));
    [a.stopAt, b.stopAt] = [[], []];
    const results = await Promise.all([b.get(third.url), a.get(first.url), b.get(second.url)]);
    expect(results.map((p) => JSON.parse(p.html).patient)).toEqual(['p-standalone', 'p-ehr', 'p-standalone']);
    expect(new URL(second.url).searchParams.get('redirect_uri')).toBe(`${confidential.origin}/cb`);
    expect(new URL(third.url).searchParams.has('launch')).toBe(false);
    expect(tokenAuth).toContain(`Basic ${Buffer.from('conf-app:sekret').toString('base64')}`);
  });

  test('errors come back as 500 JSON: no S256 advertised, denied authorization, unknown state', async () => {
    s256 = false;
    try {
      const page = await new Browser().get(app.launchUrl(`${fake.origin}/fhir`, 'L-3'));
      expect(page.status).toBe(500);
      expect(JSON.parse(page.html).error).toMatch(/S256/);
    } finally {
      s256 = true;
    }
    const denied = await new Browser().get(`${app.redirectUri}?error=access_denied&error_description=nope&state=x`);
    expect([denied.status, JSON.parse(denied.html).error]).toEqual([500, 'access_denied: nope']);
    const unknown = await new Browser().get(`${app.redirectUri}?code=c&state=never-issued`);
    expect([unknown.status, JSON.parse(unknown.html).error]).toEqual([500, expect.stringMatching(/No state found/)]);
  });
});
