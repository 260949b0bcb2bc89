import { performance } from 'node:perf_hooks';

import { describeError, type HttpClient } from './http-client.js';
import { expectBundle, nextLink, ResponseError } from './fhir-json.js';
import { emptyIds, postTransaction, prepare, recordTransactionResponse } from './ingest.js';
import type { Report } from './report.js';
import { percentile } from './stats.js';
import { observationTransaction, patientTransaction, type Random } from './synthetic.js';

export const EVERYTHING_RUNS = 5;
const MAX_ENTRIES_PER_BUNDLE = 500;
const MAX_PAGES = 10_000;

interface EverythingRun {
  seconds: number;
  entries: number;
  pages: number;
}

export async function benchEverything(
  client: HttpClient,
  report: Report,
  rng: Random,
  size: number,
  identifierValue: string,
): Promise<void> {
  report.section(`4. Patient/$everything over ${size} resources, ${EVERYTHING_RUNS} runs`);
  if (size === 0) {
    report.note('skipped (--everything-size 0)');
    return;
  }

  const patientId = await ingestLargePatient(client, report, rng, size, identifierValue);
  if (patientId === undefined) return;

  const runs: EverythingRun[] = [];
  let firstFailure: string | undefined;
  let rewrittenNextLink: string | undefined;
  for (let i = 0; i < EVERYTHING_RUNS; i++) {
    try {
      runs.push(
        await fetchEverything(client, patientId, (original) => {
          rewrittenNextLink ??= original;
        }),
      );
    } catch (err) {
      firstFailure ??= describeError(err);
    }
  }

  const seconds = runs.map((run) => run.seconds).sort((a, b) => a - b);
  report.figure('everything.minSeconds', 'time, min', seconds[0], 's', 3);
  report.figure('everything.medianSeconds', 'time, median', percentile(seconds, 50), 's', 3);
  report.figure('everything.entries', 'entries retrieved per run (all pages)', runs[0]?.entries, 'entries', 0);
  report.figure('everything.pages', 'pages per run', runs[0]?.pages, 'pages', 0);
  report.figure('everything.failures', 'failures', EVERYTHING_RUNS - runs.length, `of ${EVERYTHING_RUNS} runs`, 0);
  if (new Set(runs.map((run) => run.entries)).size > 1) {
    report.note(`entry counts differ between runs: ${runs.map((run) => run.entries).join(', ')}`);
  }
  if (firstFailure !== undefined) report.note(`first failure: ${firstFailure}`);
  if (rewrittenNextLink !== undefined) {
    report.note(`next links point outside the base origin (e.g. ${rewrittenNextLink}); they were followed on ${client.base.origin}`);
  }
}

/**
 * Creates one Patient with `size` resources in total: the first transaction holds the
 * Patient itself, later ones reference it by the id the server assigned.
 */
async function ingestLargePatient(
  client: HttpClient,
  report: Report,
  rng: Random,
  size: number,
  identifierValue: string,
): Promise<string | undefined> {
  const started = performance.now();
  const ids = emptyIds();
  const first = prepare(patientTransaction(rng, Math.min(size, MAX_ENTRIES_PER_BUNDLE) - 1, identifierValue));

  let patientId: string | undefined;
  try {
    patientId = recordTransactionResponse(await client.postFhir('', first.json), first, ids);
  } catch (err) {
    report.note(`skipped: the Patient's first transaction failed: ${describeError(err)}`);
    return undefined;
  }
  if (patientId === undefined) {
    report.note('skipped: the transaction-response gave no Patient location');
    return undefined;
  }

  let ingested = first.resources;
  let failedBundles = 0;
  for (let remaining = size - first.resources; remaining > 0; remaining -= MAX_ENTRIES_PER_BUNDLE) {
    const next = prepare(observationTransaction(rng, `Patient/${patientId}`, Math.min(remaining, MAX_ENTRIES_PER_BUNDLE)));
    try {
      await postTransaction(client, next, ids);
      ingested += next.resources;
    } catch (err) {
      if (failedBundles++ === 0) report.note(`ingest failure: ${describeError(err)}`);
    }
  }

  report.note(`patient: Patient/${patientId}`);
  report.figure('everything.ingestedResources', 'resources ingested for the patient', ingested, 'resources', 0);
  report.figure('everything.ingestSeconds', 'ingest time (sequential, <= 500 per bundle)', (performance.now() - started) / 1000, 's', 2);
  report.figure('everything.ingestFailures', 'ingest failures', failedBundles, 'bundles', 0);
  return patientId;
}

async function fetchEverything(
  client: HttpClient,
  patientId: string,
  onRewrite: (originalLink: string) => void,
): Promise<EverythingRun> {
  const started = performance.now();
  const visited = new Set<string>();
  let url: URL | undefined = client.urlFor(`Patient/${encodeURIComponent(patientId)}/$everything`);
  let entries = 0;
  let pages = 0;

  while (url !== undefined) {
    if (visited.has(url.href)) throw new ResponseError(`next link loops back to ${url.href}`);
    if (pages >= MAX_PAGES) throw new ResponseError(`gave up after ${MAX_PAGES} pages`);
    visited.add(url.href);

    const bundle = expectBundle(await client.getUrl(url), 200, 'searchset', 'collection');
    pages++;
    entries += bundle.entry?.length ?? 0;
    const link = nextLink(bundle);
    url = link === undefined ? undefined : resolveNextLink(client, link, onRewrite);
  }
  return { seconds: (performance.now() - started) / 1000, entries, pages };
}

function resolveNextLink(client: HttpClient, link: string, onRewrite: (originalLink: string) => void): URL {
  const url = new URL(link, `${client.urlFor('').href}/`);
  if (url.origin === client.base.origin) return url;
  // Servers behind a proxy often advertise another host name; stay on the base origin rather than follow it.
  onRewrite(link);
  return new URL(`${url.pathname}${url.search}`, client.base.origin);
}
