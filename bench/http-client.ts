import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';

export const REQUEST_TIMEOUT_MS = 60_000;
const MAX_SOCKETS = 16;

export interface HttpResult {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  /** From sending the request until the last byte of the body arrived. */
  ms: number;
}

/**
 * Minimal keep-alive HTTP client bound to one origin: requests to any other
 * origin are refused, so the benchmark only ever talks to the server it was given.
 */
export class HttpClient {
  private readonly agent: http.Agent;
  private readonly prefix: string;

  constructor(
    readonly base: URL,
    private readonly token: string | undefined,
    private readonly accept = 'application/fhir+json',
  ) {
    const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS };
    this.agent = base.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.prefix = base.href.replace(/\/+$/, '');
  }

  /** Resolves a path relative to the base URL; '' is the base itself. */
  urlFor(path: string): URL {
    return new URL(path === '' ? this.prefix : `${this.prefix}/${path}`);
  }

  get(path: string): Promise<HttpResult> {
    return this.send('GET', this.urlFor(path));
  }

  getUrl(url: URL): Promise<HttpResult> {
    return this.send('GET', url);
  }

  postFhir(path: string, json: string): Promise<HttpResult> {
    return this.send('POST', this.urlFor(path), json);
  }

  /** A POST outside the FHIR API (same origin), without the FHIR bearer token: e.g. a CDS Hooks call. */
  postUrl(url: URL, body: string, contentType: string): Promise<HttpResult> {
    return this.send('POST', url, body, { contentType, authorize: false });
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: 'GET' | 'POST', url: URL, body?: string, options = { contentType: 'application/fhir+json', authorize: true }): Promise<HttpResult> {
    if (url.origin !== this.base.origin) {
      return Promise.reject(new Error(`refusing to send a request outside ${this.base.origin}: ${url.href}`));
    }
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const headers: http.OutgoingHttpHeaders = { Accept: this.accept };
    if (this.token && options.authorize) headers.Authorization = `Bearer ${this.token}`;
    if (payload) {
      headers['Content-Type'] = options.contentType;
      headers['Content-Length'] = payload.length;
    }
    const transport = url.protocol === 'https:' ? https : http;

    return new Promise<HttpResult>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outcome();
      };
      const started = performance.now();

      const request = transport.request(url, { method, headers, agent: this.agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          settle(() =>
            resolve({
              status: response.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              headers: response.headers,
              ms: performance.now() - started,
            }),
          ),
        );
        response.on('error', (err) => settle(() => reject(err)));
        response.on('close', () => {
          if (!response.complete) settle(() => reject(new Error(`${method} ${url.href}: response aborted`)));
        });
      });

      // The timeout covers the whole exchange, not only socket idle time.
      const timer = setTimeout(() => {
        const err = new Error(`${method} ${url.href}: timed out after ${REQUEST_TIMEOUT_MS / 1000} s`);
        settle(() => reject(err));
        request.destroy(err);
      }, REQUEST_TIMEOUT_MS);

      request.on('error', (err) => settle(() => reject(err)));
      request.end(payload);
    });
  }
}

/** Readable text for network errors, including Node's AggregateError for dual-stack connects, whose message is empty. */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError) {
    const inner = err.errors.map((e: unknown) => describeError(e)).filter((s) => s !== '');
    return inner.length > 0 ? [...new Set(inner)].join('; ') : errorCode(err) ?? 'AggregateError';
  }
  if (err instanceof Error) return err.message || errorCode(err) || err.name;
  return String(err);
}

function errorCode(err: Error): string | undefined {
  const code: unknown = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
