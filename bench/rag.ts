/**
 * `npm run bench:rag -- <baseUrl> [bearerToken] [options]`: the knowledge index and chat against a
 * running server. 1) The chat evaluation over the Synthea patients of ../shared/data: retrieval
 * recall@5, exact-fact accuracy, citations, isolation, chat-turn latency. 2) $rag-refresh of a
 * patient with 2,000 resources (full, then incremental) and chat turns on that patient. 3) The lag
 * from a write to the patient's insights being current, when the server refreshes automatically.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { parseArgs } from 'node:util';

import type { Parameters, ParametersParameter, Task } from '@medplum/fhirtypes';
import { describeError, HttpClient } from './http-client.js';
import { emptyIds, postTransaction, prepare, recordTransactionResponse } from './ingest.js';
import { evaluate, type EvalTransport, loadSynthea } from './rag-eval.js';
import { Report } from './report.js';
import { percentile } from './stats.js';
import { observationTransaction, patientTransaction, Random } from './synthetic.js';

const USAGE = `usage: node dist/bench/rag.js <baseUrl> [bearerToken] [options]

  --synthea DIR       Synthea R4 bundles to evaluate on (default ../shared/data/synthea-r4; skipped when absent)
  --big N             resources of the $rag-refresh patient, 0 skips (default 2000)
  --turns N           chat turns timed on that patient (default 60)
  --no-lag            skip the write-to-insights lag measurement
  --seed N            seed for the synthetic patient (default 1)
  --help              show this text`;

const MAX_ENTRIES_PER_BUNDLE = 500;
const LAG_TIMEOUT_MS = 6 * 60_000;
const POLL_MS = 200;
const REFRESH_POLL_MS = 25;
const TOPICS = [
  'heart rate', 'blood pressure', 'systolic blood pressure', 'respiratory rate', 'temperature', 'weight', 'height', 'BMI', 'oxygen saturation', 'glucose',
  'HbA1c', 'cholesterol', 'triglycerides', 'LDL', 'HDL', 'creatinine', 'urea nitrogen', 'sodium', 'potassium', 'haemoglobin',
];
const PHRASINGS = ['What was my last %?', 'How has my % changed over time?', 'Show me my % results'];

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { synthea: { type: 'string' }, big: { type: 'string' }, turns: { type: 'string' }, 'no-lag': { type: 'boolean' }, seed: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const client = new HttpClient(new URL(positionals[0].replace(/\/+$/, '')), positionals[1] || undefined);
  const report = new Report();
  const synthea = resolve(values.synthea ?? join('..', 'shared', 'data', 'synthea-r4'));
  const big = Number(values.big ?? 2000);
  const turns = Number(values.turns ?? 60);
  report.header('carelens knowledge index and chat benchmark', [
    ['target', client.base.href],
    ['Synthea', existsSync(synthea) ? synthea : `${synthea} (absent: evaluation skipped)`],
    ['refresh patient', `${big} resources`],
    ['client', `node ${process.version}`],
  ]);
  try {
    if (existsSync(synthea)) await evaluation(client, report, synthea);
    let patient: string | undefined;
    if (big > 0) patient = await refreshAndChat(client, report, big, turns, new Random(Number(values.seed ?? 1)));
    if (!values['no-lag'] && patient) await insightLag(client, report, patient);
  } finally {
    client.close();
  }
  console.log('bench:rag: done');
  return 0;
}

function transport(client: HttpClient): EvalTransport {
  return {
    post: async (path, json) => {
      const res = await client.postFhir(path, JSON.stringify(json));
      return { status: res.status, body: JSON.parse(res.body) as unknown, ms: res.ms };
    },
    get: async (path) => {
      const res = await client.get(path);
      return { status: res.status, body: JSON.parse(res.body) as unknown };
    },
  };
}

async function evaluation(client: HttpClient, report: Report, folder: string): Promise<void> {
  report.section('1. Chat evaluation over the Synthea patients (local answerer)');
  const http = transport(client);
  const patients = await loadSynthea(http, folder);
  const refreshMs: number[] = [];
  for (const p of patients) {
    const res = await client.postFhir(`${p.patient}/$rag-refresh`, '{"resourceType":"Parameters"}');
    if (res.status !== 200) throw new Error(`${p.patient}/$rag-refresh answered ${res.status}`);
    refreshMs.push(res.ms);
  }
  const result = await evaluate(http, patients);
  report.note(`${patients.length} patients, ${result.questions} questions generated from their data; ${result.redirected} redirected by the safety layer (not scored)`);
  report.figure('rag.eval.recallAt5', 'retrieval recall@5 (target >= 0.9)', result.recallAt5, '', 3);
  report.figure('rag.eval.accuracy', 'answer exact-fact accuracy (target >= 0.85)', result.accuracy, '', 3);
  report.figure('rag.eval.citations', 'answers with citations', result.citationPresence, '', 3);
  report.figure('rag.eval.isolation', "other patients' sources in answers", result.isolationViolations, '', 0);
  for (const p of [50, 95, 99]) report.figure(`rag.eval.chat.p${p}Ms`, `chat turn latency p${p} (target p95 < 300)`, percentile(result.latenciesMs, p), 'ms');
  report.figure('rag.eval.refresh.maxMs', 'first $rag-refresh per patient, slowest', Math.max(...refreshMs), 'ms');
  for (const miss of result.misses) report.note(`miss (${miss.why}): "${miss.question}" → "${miss.answer.slice(0, 140)}"`);
}

async function refreshAndChat(client: HttpClient, report: Report, size: number, turns: number, rng: Random): Promise<string | undefined> {
  report.section(`2. $rag-refresh of a patient with ${size} resources, then chat turns on that patient`);
  const ids = emptyIds();
  let patient: string;
  try {
    const first = prepare(patientTransaction(rng, Math.min(size - 1, MAX_ENTRIES_PER_BUNDLE), `bench-rag-${Date.now()}`));
    patient = `Patient/${recordTransactionResponse(await client.postFhir('', first.json), first, ids)}`;
    for (let remaining = size - 1 - MAX_ENTRIES_PER_BUNDLE; remaining > 0; remaining -= MAX_ENTRIES_PER_BUNDLE) {
      await postTransaction(client, prepare(observationTransaction(rng, patient, Math.min(remaining, MAX_ENTRIES_PER_BUNDLE))), ids);
    }
  } catch (err) {
    report.note(`skipped: ingesting the patient failed: ${describeError(err)}`);
    return undefined;
  }
  // Asked at once, before any automatic refresh the writes scheduled: this call indexes everything.
  const full = await refresh(client, patient);
  report.figure('rag.refresh.fullMs', `full refresh, ${size} resources (target < 3000)`, full.ms, 'ms');
  if (full.async) report.note(`answered 202: timed until its Task completed (polled every ${REFRESH_POLL_MS} ms)`);
  report.note(`indexed ${full.added} sources into ${full.chunks} chunks`);
  await postTransaction(client, prepare(observationTransaction(rng, patient, 20)), ids);
  const incremental = await refresh(client, patient);
  report.figure('rag.refresh.incrementalMs', 'incremental refresh after 20 new results', incremental.ms, 'ms');
  const latencies: number[] = [];
  let failures = 0;
  for (let i = 0; i < turns; i++) {
    const question = PHRASINGS[Math.floor(i / TOPICS.length) % PHRASINGS.length].replace('%', TOPICS[i % TOPICS.length]);
    const res = await client.postFhir(`${patient}/$chat`, JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'message', valueString: question }] }));
    if (res.status === 200) latencies.push(res.ms);
    else failures++;
  }
  latencies.sort((a, b) => a - b);
  for (const p of [50, 95, 99]) report.figure(`rag.chat.big.p${p}Ms`, `chat turn latency p${p} (distinct questions)`, percentile(latencies, p), 'ms');
  report.figure('rag.chat.big.failures', 'failed chat turns', failures, `of ${turns}`, 0);
  return patient;
}

/** A refresh as a client sees it: answered at once, or (a large one) 202 and the Task polled until it completes. */
async function refresh(client: HttpClient, patient: string): Promise<{ ms: number; added: number; chunks: number; async: boolean }> {
  const started = performance.now();
  let res = await client.postFhir(`${patient}/$rag-refresh`, '{"resourceType":"Parameters"}');
  const async = res.status === 202;
  if (async) {
    const location = new URL(String(res.headers['content-location']));
    do {
      await new Promise((r) => setTimeout(r, REFRESH_POLL_MS));
      res = await client.getUrl(location);
    } while (res.status === 202);
  }
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`${patient}/$rag-refresh answered ${res.status}`);
  const body = JSON.parse(res.body) as Parameters | Task;
  const integer = (name: string): number =>
    body.resourceType === 'Parameters'
      ? (body.parameter?.find((p) => p.name === name)?.valueInteger ?? 0)
      : (body.output?.find((o) => o.type.text === name)?.valueInteger ?? 0);
  return { ms, added: integer('added') + integer('updated'), chunks: integer('chunks'), async };
}

/**
 * From a write to the refreshed index and recomputed insights, as $rag-status reports them: the
 * refresh whose changes include the written Observation (writes arriving while a refresh is queued
 * join it, so that refresh may have been requested earlier).
 */
async function insightLag(client: HttpClient, report: Report, patient: string): Promise<void> {
  report.section('3. Lag from a write to current insights (automatic refresh)');
  // An isolated write: refreshes the earlier writes scheduled have run first.
  for (let waited = 0; waited < LAG_TIMEOUT_MS; waited += POLL_MS) {
    const status = (JSON.parse((await client.get(`${patient}/$rag-status?_count=0`)).body) as Parameters).parameter ?? [];
    if (!status.some((p) => p.name === 'pendingRefreshAt')) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const ids = emptyIds();
  const written = Date.now();
  await postTransaction(client, prepare(observationTransaction(new Random(written >>> 0), patient, 1)), ids);
  const source = `Observation/${ids.observationIds[0]}`;
  const deadline = written + LAG_TIMEOUT_MS;
  let sawPending = false;
  while (Date.now() < deadline) {
    const status = (JSON.parse((await client.get(`${patient}/$rag-status?_count=5`)).body) as Parameters).parameter ?? [];
    sawPending ||= status.some((p) => p.name === 'pendingRefreshAt');
    const refresh = status
      .filter((p) => p.name === 'refresh')
      .map((p) => p.part ?? [])
      .find((parts) => parts.some((c) => c.name === 'change' && c.part?.some((x) => x.valueReference?.reference === source)));
    const value = (name: string): ParametersParameter | undefined => refresh?.find((p) => p.name === name);
    const insightsAt = value('insightsAt')?.valueInstant;
    if (refresh && insightsAt) {
      report.figure('rag.lag.ms', 'write → index refreshed and insights current (target < 300000)', Date.parse(insightsAt) - written, 'ms', 0);
      report.note(`refresh ${value('version')?.valueInteger} (trigger ${value('trigger')?.valueCode}, reason ${value('reason')?.valueCode})`);
      return;
    }
    if (!refresh && !sawPending && Date.now() - written > 2000) {
      report.note('skipped: no refresh was scheduled by the write (the server runs with RAG_AUTO_REFRESH=false)');
      return;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  report.note(`no refresh within ${LAG_TIMEOUT_MS / 60_000} minutes`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench:rag: ${describeError(err)}`);
    process.exit(1);
  },
);
