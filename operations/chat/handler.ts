import type { Condition, Encounter, MedicationRequest, Parameters, ParametersParameter, Patient, Reference } from '@medplum/fhirtypes';
import { badRequest, forbidden } from '../../src/fhir/outcome.js';
import { paramValue, type OperationContext } from '../../src/fhir/operations.js';
import type { FhirResponse, ServerSentEvent } from '../../src/fhir/types.js';
import { topicTerms } from '../../src/rag/query.js';
import { conceptText, formatDate, SOURCE_TYPES } from '../../src/rag/render.js';
import { retrieve, type RetrievedChunk } from '../../src/rag/retrieval.js';
import { ageInYears } from '../../src/risk/inputs.js';
import { repositorySource, requireRecordAccess } from '../../src/risk/record-source.js';
import { type AnswerSentence, type Audience, explanations, extractiveAnswer } from './answerer.js';
import { type Citation, openThread, saveTurn, type Thread } from './conversation.js';
import { generatedSentences } from './generation.js';
import { fixedResponse, outgoingViolation, type SafetyOutcome, screenQuestion } from './safety.js';

const MAX_MESSAGE = 2000;
/** Chunks retrieved for a turn. */
const TOP_K = 8;
const CACHE_SIZE = 1000;

interface Turn {
  audience: Audience;
  patient: Patient & { id: string };
  thread: Thread;
  message: string;
  additionalContext?: string;
}

/** An answer before it is saved: reusable while the patient's index version is unchanged. */
interface Answer {
  sentences: AnswerSentence[];
  chunks: RetrievedChunk[];
  safety: SafetyOutcome;
  generator: string;
  removed: number;
}

/**
 * Answers by patient, audience, index version and question, per server (its index): a refresh makes
 * a new version, so stale answers are never served.
 */
const answerCaches = new WeakMap<object, Map<string, Answer>>();

/**
 * Patient/[id]/$chat and Practitioner/[id]/$chat. The answer streams as Server-Sent Events when
 * asked for (a `delta` per sentence, each already through the guard and the safety check), or
 * comes whole as Parameters.
 */
export async function handler(ctx: OperationContext): Promise<Parameters | FhirResponse> {
  const turn = await openTurn(ctx);
  const conversation = converse(ctx, turn);
  if (ctx.request.eventStream) {
    return { status: 200, headers: {}, events: streamed(conversation) };
  }
  for (;;) {
    const step = await conversation.next();
    if (step.done) return step.value;
  }
}

async function* streamed(conversation: AsyncGenerator<ServerSentEvent, Parameters>): AsyncIterable<ServerSentEvent> {
  try {
    for (;;) {
      const step = await conversation.next();
      if (step.done) {
        yield { event: 'done', data: step.value };
        return;
      }
      yield step.value;
    }
  } catch (err) {
    // The response has begun: a failure is reported as an event, not an HTTP status (nothing was saved).
    yield { event: 'error', data: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: err instanceof Error && err.name === 'ProviderError' ? err.message : 'The answer could not be completed' }] } };
  }
}

async function openTurn(ctx: OperationContext): Promise<Turn> {
  const access = ctx.request.access;
  const message = paramValue(ctx.params, 'message');
  if (typeof message !== 'string' || !message.trim()) throw badRequest('message is required: the question, as a string', 'message');
  if (message.length > MAX_MESSAGE) throw badRequest(`message is longer than ${MAX_MESSAGE} characters`, 'message');
  const additional = paramValue(ctx.params, 'additionalContext');
  if (additional !== undefined && (typeof additional !== 'string' || additional.length > MAX_MESSAGE)) {
    throw badRequest(`additionalContext must be a string of at most ${MAX_MESSAGE} characters`, 'additionalContext');
  }
  const conversationId = paramValue(ctx.params, 'conversationId');
  if (conversationId !== undefined && typeof conversationId !== 'string') throw badRequest('conversationId must be a string', 'conversationId');
  requireRecordAccess(ctx.router, access, { alsoRead: [...SOURCE_TYPES, 'Communication'], creates: ['Communication'] });
  const db = ctx.router.db(ctx.scope);
  let patientId: string;
  let asker: string;
  if (ctx.resourceType === 'Patient') {
    if (additional !== undefined) throw badRequest('additionalContext is for Practitioner/[id]/$chat', 'additionalContext');
    const role = access?.context.role;
    if (role && role !== 'patient') throw forbidden('Patient/[id]/$chat is the patient\'s own chat; clinicians ask through Practitioner/[id]/$chat');
    patientId = ctx.id!;
    asker = `Patient/${patientId}`;
  } else {
    const user = access?.context.kind === 'user' ? access.context.fhirUser : undefined;
    if (access && access.context.kind === 'user' && user !== `Practitioner/${ctx.id}`) {
      throw forbidden(`Practitioner/${ctx.id}/$chat is that practitioner's chat; you sign in as ${user ?? 'no FHIR user'}`);
    }
    const target = paramValue(ctx.params, 'patient') as Reference | string | undefined;
    const reference = typeof target === 'string' ? target : target?.reference;
    patientId = /^(?:Patient\/)?([A-Za-z0-9\-.]{1,64})$/.exec(reference ?? '')?.[1] ?? '';
    if (!patientId) throw badRequest('patient is required: a Reference to the Patient the question is about', 'patient');
    asker = `Practitioner/${ctx.id}`;
  }
  const patient = (await ctx.router.repo.read('Patient', patientId, db)).resource as Patient & { id: string };
  if (access) await ctx.router.guard.assertPermits(access, patient, 'r', db);
  const thread = await openThread(ctx.router, ctx.scope, patientId, asker, conversationId);
  return {
    audience: ctx.resourceType === 'Patient' ? 'patient' : 'doctor',
    patient,
    thread,
    message: message.trim(),
    ...(typeof additional === 'string' && additional.trim() ? { additionalContext: additional.trim() } : {}),
  };
}

async function* converse(ctx: OperationContext, turn: Turn): AsyncGenerator<ServerSentEvent, Parameters> {
  const screening = turn.audience === 'patient' ? screenQuestion(turn.message) : { outcome: 'ok' as const, matched: [] };
  yield { event: 'meta', data: { conversationId: turn.thread.id, audience: turn.audience, safety: screening.outcome } };
  const citer = new Citer();
  let answer: Answer;
  if (screening.outcome !== 'ok') {
    const fixed = fixedResponse(screening.outcome, screening.outcome === 'critical_symptom');
    answer = { sentences: [{ kind: 'explanation', text: fixed, citations: [] }], chunks: [], safety: screening.outcome, generator: 'safety', removed: 0 };
    yield { event: 'delta', data: { text: fixed } };
  } else {
    answer = yield* answerFromRecord(ctx, turn, citer);
  }
  const text = answer.sentences.map((s) => s.text + citer.markers(s, answer.chunks)).join(' ');
  const citations = citer.citations;
  const requiresDoctorConsultation = answer.safety === 'critical_symptom' || answer.safety === 'diagnostic_request' || answer.safety === 'treatment_request';
  const saved = await saveTurn(ctx.router, ctx.scope, ctx.request, {
    thread: turn.thread,
    question: turn.message,
    ...(turn.additionalContext ? { additionalContext: turn.additionalContext } : {}),
    answer: text,
    citations,
    chunkIds: answer.chunks.map((c) => c.id),
    safety: answer.safety,
    requiresDoctorConsultation,
    generator: answer.generator,
  });
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'answer', valueString: text },
      { name: 'conversationId', valueString: turn.thread.id },
      { name: 'safety', valueCode: answer.safety },
      { name: 'requiresDoctorConsultation', valueBoolean: requiresDoctorConsultation },
      ...(answer.safety === 'critical_symptom' ? [{ name: 'careTeamNotified', valueBoolean: saved.alert !== undefined }] : []),
      { name: 'generator', valueString: answer.generator },
      ...citations.map(
        (c): ParametersParameter => ({
          name: 'citation',
          part: [
            { name: 'n', valueInteger: c.n },
            { name: 'source', valueReference: { reference: c.reference, display: c.title } },
            { name: 'title', valueString: c.title },
            ...(c.date ? [{ name: 'date', valueString: c.date }] : []),
            { name: 'chunk', valueString: c.chunkId },
          ],
        }),
      ),
      ...(answer.removed > 0 ? [{ name: 'removedSentences', valueInteger: answer.removed }] : []),
      { name: 'question', valueReference: { reference: `Communication/${saved.question}` } },
      { name: 'response', valueReference: { reference: `Communication/${saved.answer}` } },
      ...(turn.audience === 'doctor' ? [await patientSummary(ctx, turn.patient)] : []),
    ],
  };
}

/** Retrieval and generation (or the cache), streaming each sentence that passes as a `delta`. */
async function* answerFromRecord(ctx: OperationContext, turn: Turn, citer: Citer): AsyncGenerator<ServerSentEvent, Answer> {
  const { rag, llm } = ctx.platform;
  const patientId = turn.patient.id;
  // The record may have changed since the last refresh: answer from what it says now.
  await rag.refresh(patientId, { trigger: 'chat' });
  // A follow-up without a topic of its own ("and the one before?") is about the previous question.
  const previous = [...turn.thread.history].reverse().find((m) => m.role === 'user')?.content;
  const query = topicTerms(turn.message).length === 0 && previous ? `${previous} ${turn.message}` : turn.message;
  const key = JSON.stringify([patientId, turn.audience, await rag.version(patientId), query.toLowerCase(), turn.additionalContext ?? '', llm ? turn.thread.history : []]);
  let answerCache = answerCaches.get(rag);
  if (!answerCache) answerCaches.set(rag, (answerCache = new Map()));
  const cached = answerCache.get(key);
  if (cached) {
    for (const s of cached.sentences) yield { event: 'delta', data: { text: s.text + citer.markers(s, cached.chunks) } };
    return cached;
  }
  const chunks = await retrieve(ctx.router.repo.sql, rag.options.embedder, patientId, query, TOP_K);
  const kept: AnswerSentence[] = [];
  let removed = 0;
  const candidates = llm
    ? guardedGeneration(llm, turn, query, chunks, () => removed++)
    : fromArray(extractiveAnswer(query, chunks, turn.audience));
  for await (const sentence of candidates) {
    if (turn.audience === 'patient' && outgoingViolation(sentence)) {
      removed++;
      continue;
    }
    kept.push(sentence);
    yield { event: 'delta', data: { text: sentence.text + citer.markers(sentence, chunks) } };
  }
  let safety: SafetyOutcome = 'ok';
  if (!kept.some((s) => s.kind === 'claim')) {
    safety = 'no_information';
    kept.length = 0;
    kept.push({ kind: 'explanation', text: turn.audience === 'patient' ? fixedResponse('no_information') : 'The record has nothing on this.', citations: [] });
    yield { event: 'delta', data: { text: kept[0].text } };
  } else if (turn.audience === 'patient') {
    for (const explanation of explanations(kept)) {
      kept.push(explanation);
      yield { event: 'delta', data: { text: explanation.text } };
    }
  }
  const answer: Answer = { sentences: kept, chunks: safety === 'ok' ? chunks : [], safety, generator: llm ? llm.name : 'extractive', removed };
  answerCache.set(key, answer);
  if (answerCache.size > CACHE_SIZE) answerCache.delete(answerCache.keys().next().value!);
  return answer;
}

async function* guardedGeneration(
  llm: NonNullable<OperationContext['platform']['llm']>,
  turn: Turn,
  query: string,
  chunks: RetrievedChunk[],
  onUnsupported: () => void,
): AsyncIterable<AnswerSentence> {
  if (chunks.length === 0) return;
  for await (const sentence of generatedSentences(llm, { question: query, audience: turn.audience, chunks, history: turn.thread.history, ...(turn.additionalContext ? { additionalContext: turn.additionalContext } : {}) })) {
    if (sentence.supported) yield { text: sentence.text, kind: sentence.kind, citations: sentence.citations };
    else onUnsupported();
  }
}

async function* fromArray<T>(items: readonly T[]): AsyncIterable<T> {
  yield* items;
}

/** Numbers citations in order of first use, as sentences are emitted; each cites a version of a source. */
class Citer {
  readonly citations: Citation[] = [];

  /** The sentence's " [n]" markers, registering the chunks it cites. */
  markers(sentence: AnswerSentence, chunks: readonly RetrievedChunk[]): string {
    const numbers = new Set<number>();
    for (const index of sentence.citations) {
      const chunk = chunks[index];
      if (!chunk) continue;
      let citation = this.citations.find((c) => c.chunkId === chunk.id);
      if (!citation) {
        citation = {
          n: this.citations.length + 1,
          chunkId: chunk.id,
          reference: `${chunk.source}/_history/${chunk.sourceVersion.split('+')[0]}`,
          title: chunk.title,
          ...(chunk.date ? { date: formatDate(chunk.date) } : {}),
        };
        this.citations.push(citation);
      }
      numbers.add(citation.n);
    }
    return numbers.size > 0 ? ` [${[...numbers].join(', ')}]` : '';
  }
}

/** What a doctor sees first: age, gender, last consultation, active conditions and medications. */
async function patientSummary(ctx: OperationContext, patient: Patient & { id: string }): Promise<ParametersParameter> {
  const source = repositorySource(ctx.router, ctx.scope);
  const subject = `Patient/${patient.id}`;
  const [encounters, conditions, medications] = await Promise.all([
    source.search('Encounter', [['patient', subject], ['date', `le${new Date().toISOString()}`], ['_sort', '-date'], ['_count', '1']]),
    source.search('Condition', [['patient', subject], ['clinical-status', 'active']]),
    source.search('MedicationRequest', [['patient', subject], ['status', 'active']]),
  ]);
  const age = ageInYears(patient, new Date());
  const last = encounters[0] as Encounter | undefined;
  return {
    name: 'patientSummary',
    part: [
      ...(age !== undefined ? [{ name: 'age', valueInteger: age }] : []),
      ...(patient.gender ? [{ name: 'gender', valueCode: patient.gender }] : []),
      ...(last?.period?.start ? [{ name: 'lastConsultation', valueString: `${formatDate(last.period.start)}: ${conceptText(last.type?.[0]) ?? 'visit'}` }] : []),
      ...(conditions as Condition[]).map((c) => ({ name: 'activeCondition', valueString: conceptText(c.code) ?? 'condition' })),
      ...(medications as MedicationRequest[]).map((m) => ({ name: 'activeMedication', valueString: conceptText(m.medicationCodeableConcept) ?? m.medicationReference?.display ?? 'medication' })),
    ],
  };
}
