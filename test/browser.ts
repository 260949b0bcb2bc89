/**
 * A scripted browser for OAuth / SMART App Launch tests: a cookie jar, manual redirect following
 * and HTML form submission over Node's global fetch. No JavaScript, no rendering; it is meant
 * for server-rendered pages (login, consent, patient picker) and redirect chains.
 *
 * Redirect chains can be stopped before a URL is fetched: a redirect whose resolved Location
 * starts with one of `browser.stopAt` is not followed, and the page returned is
 * `{ url: <that Location>, status: <the 3xx status>, html: '', headers: <the 3xx response headers>, stopped: true }`.
 * That lets a test catch e.g. `https://app.example/cb?code=...` for a client that is not running.
 * Leave `stopAt` empty to follow everything (e.g. into a running test app).
 */

export interface Page {
  /** The URL the page was fetched from, or the Location that was not followed (`stopped`). */
  url: string;
  /** The final response status, or the 3xx status of the redirect that was not followed. */
  status: number;
  /** Response body as text ('' when stopped). */
  html: string;
  headers: Headers;
  /** True when a redirect to a `stopAt` prefix ended the chain. */
  stopped: boolean;
}

export interface BrowserOptions {
  /** URL prefixes that redirects are not followed into. */
  stopAt?: string[];
  /** Upper bound on redirects per navigation, against redirect loops. */
  maxRedirects?: number;
}

export interface SubmitOptions {
  /** Which form on the page (document order); default 0. */
  formIndex?: number;
  /**
   * The submit button "clicked": its name=value is sent. Without it the first named submit
   * button of the form is sent, as pressing Enter in a browser does.
   */
  button?: { name: string; value: string };
}

interface Cookie {
  name: string;
  value: string;
  /** Host the cookie belongs to (lower case, no port: like browsers, cookies ignore ports). */
  domain: string;
  /** Without a Domain attribute a cookie goes back to exactly its host, not subdomains. */
  hostOnly: boolean;
  path: string;
}

export interface ParsedForm {
  action: string;
  method: 'GET' | 'POST';
  /** Successful controls in document order; a name may repeat (checkboxes, multi-selects). */
  fields: Array<[string, string]>;
  /** Named submit buttons, in document order. */
  buttons: Array<{ name: string; value: string }>;
}

export class Browser {
  stopAt: string[];
  /** Every URL requested, in order (plus stopped Locations); handy in failure messages. */
  readonly history: string[] = [];
  private readonly maxRedirects: number;
  private cookies: Cookie[] = [];

  constructor(options: BrowserOptions = {}) {
    this.stopAt = options.stopAt ?? [];
    this.maxRedirects = options.maxRedirects ?? 20;
  }

  async get(url: string): Promise<Page> {
    return this.navigate(url, 'GET');
  }

  async submit(page: Page, fields: Record<string, string>, opts: SubmitOptions = {}): Promise<Page> {
    const forms = parseForms(page.html, page.url);
    const index = opts.formIndex ?? 0;
    const form = forms[index];
    if (!form) {
      throw new Error(`no form #${index} on ${page.url} (status ${page.status}, ${forms.length} forms): ${page.html.slice(0, 500)}`);
    }
    const data = [...form.fields];
    const button = opts.button ?? form.buttons[0];
    if (button) data.push([button.name, button.value]);
    // An override takes the place of the first control of that name and drops the others.
    for (const [name, value] of Object.entries(fields)) {
      const at = data.findIndex(([n]) => n === name);
      if (at < 0) {
        data.push([name, value]);
        continue;
      }
      data[at] = [name, value];
      for (let i = data.length - 1; i > at; i--) if (data[i][0] === name) data.splice(i, 1);
    }
    const body = new URLSearchParams(data).toString();
    if (form.method === 'GET') {
      const target = new URL(form.action);
      target.search = body;
      return this.navigate(target.href, 'GET');
    }
    return this.navigate(form.action, 'POST', body, new URL(page.url).origin);
  }

  /** Cookies the jar would send to `url`, by name. */
  cookiesFor(url: string): Record<string, string> {
    return Object.fromEntries(this.matching(new URL(url)).map((c) => [c.name, c.value]));
  }

  private async navigate(start: string, startMethod: 'GET' | 'POST', startBody?: string, origin?: string): Promise<Page> {
    let url = start;
    let method = startMethod;
    let body = startBody;
    for (let hop = 0; hop <= this.maxRedirects; hop++) {
      this.history.push(url);
      const target = new URL(url);
      const headers: Record<string, string> = { accept: 'text/html,application/json;q=0.9,*/*;q=0.8' };
      const cookie = this.matching(target).map((c) => `${c.name}=${c.value}`).join('; ');
      if (cookie) headers.cookie = cookie;
      if (body !== undefined) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        // Browsers send Origin on form POSTs; a CSRF check on the server may rely on it.
        if (origin) headers.origin = origin;
      }
      const res = await fetch(url, { method, headers, body, redirect: 'manual' });
      this.store(target, res.headers.getSetCookie());
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        const next = new URL(location, url).href;
        if (this.stopAt.some((prefix) => next.startsWith(prefix))) {
          this.history.push(next);
          return { url: next, status: res.status, html: '', headers: res.headers, stopped: true };
        }
        // 307/308 repeat the request as is; 301/302/303 turn a POST into a GET, as browsers do.
        if (res.status !== 307 && res.status !== 308) {
          method = 'GET';
          body = undefined;
        }
        url = next;
        continue;
      }
      return { url, status: res.status, html: await res.text(), headers: res.headers, stopped: false };
    }
    throw new Error(`more than ${this.maxRedirects} redirects: ${this.history.slice(-5).join(' -> ')}`);
  }

  private matching(url: URL): Cookie[] {
    const host = url.hostname.toLowerCase();
    return this.cookies.filter(
      (c) => (c.hostOnly ? host === c.domain : host === c.domain || host.endsWith(`.${c.domain}`)) && pathMatches(url.pathname, c.path),
    );
  }

  private store(url: URL, setCookies: string[]): void {
    for (const header of setCookies) {
      const [pair = '', ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie: Cookie = {
        name: pair.slice(0, eq).trim(),
        value: pair.slice(eq + 1).trim(),
        domain: url.hostname.toLowerCase(),
        hostOnly: true,
        path: defaultPath(url.pathname),
      };
      let expired = false;
      for (const attribute of attributes) {
        const [rawKey = '', ...rest] = attribute.split('=');
        const key = rawKey.trim().toLowerCase();
        const value = rest.join('=').trim();
        if (key === 'path' && value.startsWith('/')) cookie.path = value;
        else if (key === 'domain' && value) {
          cookie.domain = value.replace(/^\./, '').toLowerCase();
          cookie.hostOnly = false;
        } else if (key === 'max-age') expired = Number(value) <= 0;
        // Only expiry matters here: a past Expires is how servers delete cookies.
        else if (key === 'expires' && !attributes.some((a) => /^\s*max-age=/i.test(a))) expired = Date.parse(value) < Date.now();
      }
      this.cookies = this.cookies.filter((c) => !(c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path));
      if (!expired) this.cookies.push(cookie);
    }
  }
}

/** RFC 6265 §5.1.4: the request path matches the cookie path at a "/" boundary. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

/** RFC 6265 §5.1.4: without a Path attribute, the directory of the request path. */
function defaultPath(requestPath: string): string {
  const slash = requestPath.lastIndexOf('/');
  return slash <= 0 ? '/' : requestPath.slice(0, slash);
}

// Attribute lists may contain ">" inside quoted values, so tags are matched quote-aware.
const ATTRS = `((?:[^>"']|"[^"]*"|'[^']*')*)`;
const FORM_RE = new RegExp(`<form\\b${ATTRS}>([\\s\\S]*?)</form\\s*>`, 'gi');
const CONTROL_RE = new RegExp(
  `<input\\b${ATTRS}>|<button\\b${ATTRS}>([\\s\\S]*?)</button\\s*>|<select\\b${ATTRS}>([\\s\\S]*?)</select\\s*>|<textarea\\b${ATTRS}>([\\s\\S]*?)</textarea\\s*>`,
  'gi',
);
const OPTION_RE = new RegExp(`<option\\b${ATTRS}>([\\s\\S]*?)(?=<option\\b|</select|</optgroup|$)`, 'gi');
const ATTR_RE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;

/** Attribute names lower-cased; values entity-decoded; a bare attribute has value ''. */
export function parseAttributes(source: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const m of source.matchAll(ATTR_RE)) {
    const name = m[1].toLowerCase();
    if (!attributes.has(name)) attributes.set(name, decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return attributes;
}

const NAMED: Record<string, string> = { amp: '&', quot: '"', apos: "'", lt: '<', gt: '>', nbsp: '\u00a0' };

export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, entity: string) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED[entity.toLowerCase()] ?? whole;
  });
}

/** The forms of a page as a browser would submit them, with `action` resolved against `pageUrl`. */
export function parseForms(html: string, pageUrl: string): ParsedForm[] {
  const forms: ParsedForm[] = [];
  for (const formMatch of html.matchAll(FORM_RE)) {
    const attrs = parseAttributes(formMatch[1]);
    const action = attrs.get('action');
    const form: ParsedForm = {
      action: new URL(action ? action : pageUrl, pageUrl).href,
      method: attrs.get('method')?.toUpperCase() === 'POST' ? 'POST' : 'GET',
      fields: [],
      buttons: [],
    };
    for (const m of formMatch[2].matchAll(CONTROL_RE)) {
      const [, inputAttrs, buttonAttrs, , selectAttrs, selectBody, textareaAttrs, textareaBody] = m;
      const a = parseAttributes(inputAttrs ?? buttonAttrs ?? selectAttrs ?? textareaAttrs ?? '');
      const name = a.get('name');
      if (!name || a.has('disabled')) continue;
      if (inputAttrs !== undefined) {
        const type = (a.get('type') ?? 'text').toLowerCase();
        if (type === 'submit' || type === 'image') form.buttons.push({ name, value: a.get('value') ?? '' });
        else if (type === 'checkbox' || type === 'radio') {
          if (a.has('checked')) form.fields.push([name, a.get('value') ?? 'on']);
        } else if (type !== 'button' && type !== 'reset' && type !== 'file') form.fields.push([name, a.get('value') ?? '']);
      } else if (buttonAttrs !== undefined) {
        if ((a.get('type') ?? 'submit').toLowerCase() === 'submit') form.buttons.push({ name, value: a.get('value') ?? '' });
      } else if (selectAttrs !== undefined) {
        form.fields.push(...selectValues(selectBody ?? '', a.has('multiple')).map((v): [string, string] => [name, v]));
      } else {
        // The HTML parser drops one newline right after <textarea>.
        form.fields.push([name, decodeEntities((textareaBody ?? '').replace(/^\r?\n/, ''))]);
      }
    }
    forms.push(form);
  }
  return forms;
}

function selectValues(body: string, multiple: boolean): string[] {
  const options = [...body.matchAll(OPTION_RE)].map((m) => {
    const a = parseAttributes(m[1]);
    const text = decodeEntities(m[2].replace(/<[^>]*>/g, '')).replace(/\s+/g, ' ').trim();
    return { value: a.get('value') ?? text, selected: a.has('selected'), disabled: a.has('disabled') };
  });
  const selected = options.filter((o) => o.selected && !o.disabled);
  if (multiple) return selected.map((o) => o.value);
  // A single select shows its last selected option, else its first enabled one.
  const chosen = selected.at(-1) ?? options.find((o) => !o.disabled);
  return chosen ? [chosen.value] : [];
}
