import process from 'node:process';
import { parseArgs } from 'node:util';

export interface BenchOptions {
  baseUrl: URL;
  token: string | undefined;
  bundles: number;
  obsPerBundle: number;
  everythingSize: number;
  riskObservations: number;
  riskBatch: number;
  reads: number;
  searches: number;
  /** As many untimed calls before each read and search phase as it times. */
  warmUp: boolean;
  /** Pause between the ingest and the reads, in seconds. */
  settleSeconds: number;
  json: boolean;
  metricsUrl: URL | undefined;
  pid: number | undefined;
  seed: number;
}

export const USAGE = `usage: node dist/bench/bench.js <baseUrl> [bearerToken] [options]

  --bundles N           transaction bundles per ingest phase (default 40)
  --obs-per-bundle N    Observations per bundle, besides its Patient (default 200)
  --everything-size N   resources behind the $everything patient, 0 skips (default 5000)
  --risk-observations N Observations of the $risk-assess patient, 0 skips (default 2000)
  --risk-batch N        patients in the Group/$risk-assess batch, 0 skips (default 1000)
  --reads N             GET Observation/<id> requests, 0 skips (default 4000)
  --searches N          calls per search query, 0 skips (default 300)
  --settle S            seconds to pause after the ingest, so that work it leaves the server
                        (statistics, vacuum, deferred indexing) is not timed as reads (default 10)
  --no-warmup           time reads and searches from the first call (default: as many untimed
                        calls first, reported apart, so the figures are of a warmed-up server)
  --metrics-url URL     Prometheus endpoint exposing process_resident_memory_bytes
  --pid N               read the server's VmRSS from /proc/N/status instead
  --seed N              seed for the synthetic data (default: random, printed)
  --json                also print a one-line JSON summary
  --help                show this text`;

export class UsageError extends Error {}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values, positionals } = parseCommandLine(argv);
  if (values.help) return 'help';
  if (positionals.length === 0) throw new UsageError('missing <baseUrl>');
  if (positionals.length > 2) throw new UsageError(`unexpected argument: ${positionals[2]}`);

  return {
    baseUrl: parseHttpUrl('baseUrl', positionals[0], true),
    token: positionals[1] || undefined,
    bundles: parseInteger('bundles', values.bundles, 40, 1),
    obsPerBundle: parseInteger('obs-per-bundle', values['obs-per-bundle'], 200, 0),
    everythingSize: parseInteger('everything-size', values['everything-size'], 5000, 0),
    riskObservations: parseInteger('risk-observations', values['risk-observations'], 2000, 0),
    riskBatch: parseInteger('risk-batch', values['risk-batch'], 1000, 0),
    reads: parseInteger('reads', values.reads, 4000, 0),
    searches: parseInteger('searches', values.searches, 300, 0),
    warmUp: values['no-warmup'] !== true,
    settleSeconds: parseInteger('settle', values.settle, 10, 0),
    json: values.json === true,
    metricsUrl: values['metrics-url'] === undefined ? undefined : parseHttpUrl('--metrics-url', values['metrics-url'], false),
    pid: values.pid === undefined ? undefined : parseInteger('pid', values.pid, 0, 1),
    seed: values.seed === undefined ? randomSeed() : parseInteger('seed', values.seed, 0, 0),
  };
}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        bundles: { type: 'string' },
        'obs-per-bundle': { type: 'string' },
        'everything-size': { type: 'string' },
        'risk-observations': { type: 'string' },
        'risk-batch': { type: 'string' },
        reads: { type: 'string' },
        searches: { type: 'string' },
        'metrics-url': { type: 'string' },
        pid: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        'no-warmup': { type: 'boolean' },
        settle: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function parseInteger(flag: string, raw: string | undefined, defaultValue: number, min: number): number {
  if (raw === undefined) return defaultValue;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${flag} expects a whole number, got "${raw}"`);
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${flag} must be an integer >= ${min}`);
  return value;
}

function parseHttpUrl(name: string, raw: string, isBase: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${name} is not a valid URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${name} must be an http(s) URL: ${raw}`);
  if (isBase) {
    if (url.search || url.hash) throw new UsageError(`${name} must not contain a query or fragment: ${raw}`);
    // Request paths are appended as "<base>/<path>", so the base is kept without a trailing slash.
    url.pathname = url.pathname.replace(/\/+$/, '');
  }
  return url;
}

function randomSeed(): number {
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}
