import process from 'node:process';

import { benchEverything } from './everything.js';
import { benchRisk } from './risk.js';
import { benchCds } from './cds.js';
import { snippet } from './fhir-json.js';
import { describeError, HttpClient, REQUEST_TIMEOUT_MS, type HttpResult } from './http-client.js';
import { emptyIds, postTransaction, prepare, recordTransactionResponse, type IngestedIds, type PreparedTransaction } from './ingest.js';
import { parseOptions, UsageError, USAGE, type BenchOptions } from './options.js';
import { benchReads, benchSearches, READ_CONCURRENCY, SEARCH_CONCURRENCY } from './queries.js';
import { Report, type FigureValue } from './report.js';
import { describeRssSource, sampleRss, type RssSample, type RssSource } from './rss.js';
import { perSecond, runPool } from './stats.js';
import { patientTransaction, Random } from './synthetic.js';

const CONCURRENT_INGEST_CLIENTS = 4;
/** How long the benchmark leaves the server idle before its last memory sample. */
const SETTLE_MS = 3000;

class FatalError extends Error {}

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`bench: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }

  const client = new HttpClient(options.baseUrl, options.token);
  const report = new Report();
  const rssSource = rssSourceFor(options);
  try {
    printHeader(report, options, rssSource);
    const rssBefore = await sampleRss(rssSource);
    const rng = new Random(options.seed);
    const runTag = `bench-${options.seed.toString(16)}`;

    const ids = await benchIngest(client, report, rng, options, runTag);
    await new Promise((resolve) => setTimeout(resolve, options.settleSeconds * 1000));
    await benchReads(client, report, rng, ids.observationIds, options.reads, options.warmUp);
    await benchSearches(client, report, ids.patients, options.searches, options.warmUp);
    await benchEverything(client, report, rng, options.everythingSize, `${runTag}-everything`);
    await benchRisk(client, report, rng, options.riskObservations, options.riskBatch, `${runTag}-risk`);
    await benchCds(client, report, options.baseUrl.origin);
    await reportRss(report, rssSource, rssBefore);
  } catch (err) {
    if (!(err instanceof FatalError)) throw err;
    console.error(`bench: ${err.message}`);
    return 1;
  } finally {
    client.close();
  }

  if (options.json) console.log(report.toJson(jsonSettings(options)));
  console.log('bench: done');
  return 0;
}

function printHeader(report: Report, options: BenchOptions, rssSource: RssSource): void {
  const perBundle = options.obsPerBundle + 1;
  report.header('carelens FHIR benchmark', [
    ['target', options.baseUrl.href],
    ['authorization', options.token ? 'Bearer token (not shown)' : 'none'],
    ['seed', String(options.seed)],
    ['ingest', `${options.bundles} bundles x ${perBundle} resources (1 Patient + ${options.obsPerBundle} Observations) per phase, after 1 untimed warm-up bundle`],
    ['ingest clients', `1 (sequential), then ${CONCURRENT_INGEST_CLIENTS} (concurrent, new bundles)`],
    ['pause after ingest', `${options.settleSeconds} s`],
    ['reads', `${options.reads} at concurrency ${READ_CONCURRENCY}${warmUpNote(options.warmUp)}`],
    ['searches', `${options.searches} per query at concurrency ${SEARCH_CONCURRENCY}${warmUpNote(options.warmUp)}`],
    ['$everything patient', `${options.everythingSize} resources`],
    ['$risk-assess', `one patient with ${options.riskObservations} Observations; a Group of ${options.riskBatch} patients`],
    ['server RSS', describeRssSource(rssSource)],
    ['request timeout', `${REQUEST_TIMEOUT_MS / 1000} s`],
    ['client', `node ${process.version}`],
  ]);
}

async function benchIngest(
  client: HttpClient,
  report: Report,
  rng: Random,
  options: BenchOptions,
  runTag: string,
): Promise<IngestedIds> {
  let serial = 0;
  const nextBundles = (count: number): PreparedTransaction[] =>
    Array.from({ length: count }, () => prepare(patientTransaction(rng, options.obsPerBundle, `${runTag}-${++serial}`)));

  const ids = emptyIds();
  report.section('1. Transaction ingest');
  await warmUp(client, report, nextBundles(1)[0], ids);

  const phases = [
    { key: 'ingest.sequential', label: 'sequential, 1 client: ', clients: 1 },
    { key: 'ingest.concurrent', label: `concurrent, ${CONCURRENT_INGEST_CLIENTS} clients: `, clients: CONCURRENT_INGEST_CLIENTS },
  ];
  for (const phase of phases) {
    const bundles = nextBundles(options.bundles);
    const result = await runPool(bundles.length, phase.clients, (i) => postTransaction(client, bundles[i], ids));
    const resources = result.succeeded * (options.obsPerBundle + 1);
    report.figure(`${phase.key}.bundlesPerSec`, `${phase.label}throughput`, perSecond(result.succeeded, result.elapsedMs), 'bundles/s');
    report.figure(`${phase.key}.resourcesPerSec`, `${phase.label}throughput`, perSecond(resources, result.elapsedMs), 'resources/s');
    report.latencies(phase.key, `${phase.label}bundle `, result, [50, 95]);
    report.failures(phase.key, phase.label, result, 'bundles');
  }
  report.figure('ingest.patientIds', 'Patient ids collected', ids.patients.length, 'ids', 0);
  report.figure('ingest.observationIds', 'Observation ids collected', ids.observationIds.length, 'ids', 0);
  return ids;
}

/** The first transaction doubles as the reachability check: no point measuring a server that rejects it. */
async function warmUp(client: HttpClient, report: Report, bundle: PreparedTransaction, ids: IngestedIds): Promise<void> {
  let result: HttpResult;
  try {
    result = await client.postFhir('', bundle.json);
  } catch (err) {
    throw new FatalError(`server unreachable at ${client.base.href}: ${describeError(err)}`);
  }
  if (result.status < 200 || result.status >= 300) {
    throw new FatalError(`the first transaction was rejected: HTTP ${result.status}\n${snippet(result.body)}`);
  }
  try {
    recordTransactionResponse(result, bundle, ids);
  } catch (err) {
    report.note(`warm-up bundle: unexpected response: ${describeError(err)}`);
  }
}

function warmUpNote(warmUp: boolean): string {
  return warmUp ? ', after as many untimed calls' : '';
}

function rssSourceFor(options: BenchOptions): RssSource {
  if (options.pid !== undefined) return { kind: 'pid', pid: options.pid };
  if (options.metricsUrl !== undefined) {
    // The token is only forwarded when the metrics endpoint lives on the benchmarked server.
    const token = options.metricsUrl.origin === options.baseUrl.origin ? options.token : undefined;
    return { kind: 'metrics', url: options.metricsUrl, token };
  }
  return { kind: 'none' };
}

async function reportRss(report: Report, source: RssSource, before: RssSample | undefined): Promise<void> {
  report.section('7. Server memory');
  if (source.kind === 'none') {
    report.note('RSS: not available (pass --metrics-url)');
    return;
  }
  const after = await sampleRss(source);
  // A server at rest after a load: what it holds once it had a moment to give back what it no longer uses.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const settled = await sampleRss(source);
  for (const [key, label, sample] of [
    ['rss.beforeMiB', 'RSS before the run', before],
    ['rss.afterMiB', 'RSS after the run', after],
    ['rss.settledMiB', `RSS after the run, ${SETTLE_MS / 1000} s idle`, settled],
  ] as const) {
    report.figure(key, label, sample && 'mib' in sample ? sample.mib : undefined, 'MiB');
    if (sample && 'error' in sample) report.note(`RSS unavailable: ${sample.error}`);
  }
}

function jsonSettings(options: BenchOptions): Record<string, FigureValue> {
  return {
    baseUrl: options.baseUrl.href,
    authorization: options.token ? 'bearer' : 'none',
    seed: options.seed,
    bundles: options.bundles,
    obsPerBundle: options.obsPerBundle,
    everythingSize: options.everythingSize,
    riskObservations: options.riskObservations,
    riskBatch: options.riskBatch,
    reads: options.reads,
    searches: options.searches,
    warmUp: options.warmUp ? 'as many calls' : 'none',
    settleSeconds: options.settleSeconds,
  };
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`bench: unexpected error: ${describeError(err)}`);
    process.exitCode = 1;
  },
);
