/**
 * The chat evaluation, shared by `npm run bench:rag` and the test suite: loads Synthea bundles
 * through the FHIR API, asks each patient the questions generated from their own data, and scores
 * retrieval (is the answering source among the first 5 chunks the answer was composed from), the
 * answer (does it state the value and date), citations and isolation (only the patient's own sources).
 */
import type { Bundle, Communication, Parameters } from '@medplum/fhirtypes';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EvalQuestion, questionsFor } from './rag-questions.js';

/** How the evaluation talks to a server; `body` is the parsed JSON response. */
export interface EvalTransport {
  post(path: string, json: unknown): Promise<{ status: number; body: unknown; ms: number }>;
  get(path: string): Promise<{ status: number; body: unknown }>;
}

export interface LoadedPatient {
  /** "Patient/<server id>" */
  patient: string;
  questions: EvalQuestion[];
  /** Every resource the bundle stored ("Observation/123"). */
  sources: Set<string>;
}

/** Loads a Synthea folder: hospital and practitioner bundles first (they are referenced conditionally), then each patient. */
export async function loadSynthea(transport: EvalTransport, folder: string): Promise<LoadedPatient[]> {
  const files = readdirSync(folder).filter((f) => f.endsWith('.json'));
  const shared = files.filter((f) => /^(hospital|practitioner)Information/.test(f));
  const patients: LoadedPatient[] = [];
  for (const file of [...shared, ...files.filter((f) => !shared.includes(f))]) {
    const bundle = JSON.parse(readFileSync(join(folder, file), 'utf8')) as Bundle;
    const res = await transport.post('', bundle);
    if (res.status !== 200) throw new Error(`loading ${file} failed: ${res.status}`);
    if (shared.includes(file)) continue;
    const references = new Map<string, string>();
    (bundle.entry ?? []).forEach((entry, i) => {
      const location = (res.body as Bundle).entry?.[i]?.response?.location;
      // base/Type/id/_history/n
      const typeId = /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})\/_history\/\d+$/.exec(location ?? '')?.[1];
      if (entry.fullUrl && typeId) references.set(entry.fullUrl, typeId);
    });
    const patient = [...references.values()].find((r) => r.startsWith('Patient/'));
    if (!patient) continue;
    patients.push({ patient, questions: questionsFor(bundle, patient, references), sources: new Set(references.values()) });
  }
  return patients;
}

export interface EvalResult {
  questions: number;
  /** Answered from the record (not redirected by the safety layer). */
  answered: number;
  /** Redirected by the safety layer (a condition named like a symptom, e.g. "chest pain"): not scored. */
  redirected: number;
  recallAt5: number;
  accuracy: number;
  /** Share of answered questions whose answer cites at least one source. */
  citationPresence: number;
  /** Citations or chunks of another patient's record (must be 0). */
  isolationViolations: number;
  /** Chat turn latencies (ms), ascending. */
  latenciesMs: number[];
  /** A few failures, for reading. */
  misses: { question: string; answer: string; why: string }[];
}

const MAX_MISSES = 12;

export async function evaluate(transport: EvalTransport, patients: readonly LoadedPatient[]): Promise<EvalResult> {
  let answered = 0;
  let redirected = 0;
  let retrieved = 0;
  let correct = 0;
  let cited = 0;
  let violations = 0;
  const latenciesMs: number[] = [];
  const misses: EvalResult['misses'] = [];
  const total = patients.reduce((n, p) => n + p.questions.length, 0);
  for (const { patient, questions, sources } of patients) {
    for (const q of questions) {
      const res = await transport.post(`${patient}/$chat`, { resourceType: 'Parameters', parameter: [{ name: 'message', valueString: q.question }] });
      if (res.status !== 200) throw new Error(`${patient}/$chat answered ${res.status}`);
      latenciesMs.push(res.ms);
      const parameters = (res.body as Parameters).parameter ?? [];
      const answer = parameters.find((p) => p.name === 'answer')?.valueString ?? '';
      const safety = parameters.find((p) => p.name === 'safety')?.valueCode;
      if (safety !== 'ok' && safety !== 'no_information') {
        redirected++;
        continue;
      }
      answered++;
      const citations = parameters.filter((p) => p.name === 'citation').map((c) => c.part!.find((x) => x.name === 'source')!.valueReference!.reference!.replace(/\/_history\/.*$/, ''));
      const response = await transport.get(parameters.find((p) => p.name === 'response')!.valueReference!.reference!);
      const chunks = ((response.body as Communication).extension ?? []).filter((e) => e.url.endsWith('/rag-chunk')).map((e) => e.valueString!.split('@')[0]);
      violations += [...citations, ...chunks].filter((s) => !sources.has(s)).length;
      if (citations.length > 0) cited++;
      const found = chunks.slice(0, 5).some((s) => q.sources.includes(s));
      const right = q.facts.every((f) => answer.includes(f));
      if (found) retrieved++;
      if (right) correct++;
      if ((!found || !right) && misses.length < MAX_MISSES) misses.push({ question: q.question, answer, why: !found ? 'source not in the top 5 chunks' : `missing ${q.facts.filter((f) => !answer.includes(f)).join(', ')}` });
    }
  }
  return {
    questions: total,
    answered,
    redirected,
    recallAt5: answered ? retrieved / answered : 0,
    accuracy: answered ? correct / answered : 0,
    citationPresence: answered ? cited / answered : 0,
    isolationViolations: violations,
    latenciesMs: latenciesMs.sort((a, b) => a - b),
    misses,
  };
}
