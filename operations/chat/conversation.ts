/**
 * Chat conversations as FHIR Communications in the patient's compartment: each turn is a question
 * (sent by the Patient or the Practitioner) and an answer in response to it, both carrying the
 * conversation id as an identifier, so a thread is `Communication?identifier=<system>|<id>`. An
 * answer carries its text, a contentReference to every source it cites (versioned), the chunk ids it
 * was composed from, and its safety outcome. A critical symptom also raises an alert Communication
 * to the patient's care team.
 */
import type { CareTeam, Communication, Patient } from '@medplum/fhirtypes';
import { createHash, randomUUID } from 'node:crypto';
import { CARELENS } from '../../src/documents/pipeline.js';
import { badRequest } from '../../src/fhir/outcome.js';
import type { FhirRouter } from '../../src/fhir/router.js';
import type { FhirRequest } from '../../src/fhir/types.js';
import type { LlmMessage } from '../../src/ai/llm.js';
import type { Writer } from '../../src/storage/repository.js';
import type { SafetyOutcome } from './safety.js';

export const CONVERSATION_SYSTEM = `${CARELENS}/conversation`;
export const CHAT_CATEGORY = `${CARELENS}/CodeSystem/chat-message`;
export const CHUNK_EXTENSION = `${CARELENS}/StructureDefinition/rag-chunk`;
export const SAFETY_EXTENSION = `${CARELENS}/StructureDefinition/chat-safety`;
export const CONSULT_EXTENSION = `${CARELENS}/StructureDefinition/requires-doctor-consultation`;
export const GENERATOR_EXTENSION = `${CARELENS}/StructureDefinition/answer-generator`;

const ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** Earlier turns given to a language model as context. */
const HISTORY_MESSAGES = 6;

export interface Thread {
  id: string;
  patientId: string;
  /** "Patient/<id>" or "Practitioner/<id>": who asks in this thread. */
  asker: string;
  /** Earlier messages, oldest first. */
  history: LlmMessage[];
}

export interface Citation {
  n: number;
  chunkId: string;
  /** "Observation/123/_history/2" */
  reference: string;
  title: string;
  date?: string;
}

/**
 * The thread a turn belongs to. A patient starts a new thread unless they continue one; a doctor has
 * one thread per patient unless they name another. A named thread must be this asker's with this patient.
 */
export async function openThread(router: FhirRouter, scope: Writer | undefined, patientId: string, asker: string, requested: string | undefined): Promise<Thread> {
  if (requested !== undefined && !ID.test(requested)) throw badRequest('conversationId must be 1-64 characters of A-Z, a-z, 0-9, - and .', 'conversationId');
  const id =
    requested ??
    (asker.startsWith('Practitioner/') ? `d-${createHash('sha256').update(`${asker}|Patient/${patientId}`).digest('base64url').slice(0, 32).replace(/_/g, '.')}` : randomUUID());
  const messages = (
    await router.repo.search(
      { ...router.parseSearch('Communication', [['identifier', `${CONVERSATION_SYSTEM}|${id}`], ['_sort', '-sent']], false), count: 200, offset: 0 },
      router.db(scope),
    )
  ).map((s) => s.resource as Communication);
  const foreign = messages.some((m) => m.subject?.reference !== `Patient/${patientId}` || ![m.sender?.reference, ...(m.recipient ?? []).map((r) => r.reference)].includes(asker));
  if (foreign) throw badRequest(`Conversation ${id} belongs to another patient or participant; start a new one or omit conversationId`, 'conversationId');
  const history = messages
    .slice(0, HISTORY_MESSAGES)
    .reverse()
    .map((m): LlmMessage => ({ role: m.sender?.reference === asker ? 'user' : 'assistant', content: m.payload?.[0]?.contentString ?? '' }))
    .filter((m) => m.content);
  return { id, patientId, asker, history };
}

export interface TurnRecord {
  thread: Thread;
  question: string;
  additionalContext?: string;
  answer: string;
  citations: Citation[];
  chunkIds: string[];
  safety: SafetyOutcome;
  requiresDoctorConsultation: boolean;
  generator: string;
}

/** Saves a turn (question and answer; an alert to the care team for a critical symptom). */
export async function saveTurn(
  router: FhirRouter,
  scope: Writer | undefined,
  request: FhirRequest,
  turn: TurnRecord,
): Promise<{ question: string; answer: string; alert?: string }> {
  const { thread } = turn;
  const subject = { reference: `Patient/${thread.patientId}` };
  const identifier = [{ system: CONVERSATION_SYSTEM, value: thread.id }];
  return router.write(scope, async (w) => {
    const question = await w.create<Communication>({
      resourceType: 'Communication',
      identifier,
      status: 'completed',
      category: [{ coding: [{ system: CHAT_CATEGORY, code: 'question', display: 'Chat question' }] }],
      subject,
      sender: { reference: thread.asker },
      sent: w.now,
      payload: [{ contentString: turn.question }, ...(turn.additionalContext ? [{ contentString: `Additional context: ${turn.additionalContext}` }] : [])],
    });
    await router.checkWritten(request, question, 'c', w);
    const critical = turn.safety === 'critical_symptom';
    const answer = await w.create<Communication>({
      resourceType: 'Communication',
      extension: [
        { url: SAFETY_EXTENSION, valueCode: turn.safety },
        { url: CONSULT_EXTENSION, valueBoolean: turn.requiresDoctorConsultation },
        { url: GENERATOR_EXTENSION, valueString: turn.generator },
        ...turn.chunkIds.map((id) => ({ url: CHUNK_EXTENSION, valueString: id })),
      ],
      identifier,
      status: 'completed',
      category: [{ coding: [{ system: CHAT_CATEGORY, code: 'answer', display: 'Chat answer' }] }],
      ...(critical ? { priority: 'stat' as const } : {}),
      subject,
      inResponseTo: [{ reference: `Communication/${question.id}` }],
      recipient: [{ reference: thread.asker }],
      sent: w.now,
      payload: [
        { contentString: turn.answer },
        ...turn.citations.map((c) => ({ contentReference: { reference: c.reference, display: `[${c.n}] ${c.title}${c.date ? `, ${c.date}` : ''}` } })),
      ],
    });
    await router.checkWritten(request, answer, 'c', w);
    let alert: string | undefined;
    if (critical) {
      // Written by the server for the care team, whoever is chatting: the patient need not be allowed to message clinicians directly.
      const recipients = await careTeam(router, w, thread.patientId);
      const stored = await w.createServerAuthored<Communication>({
        resourceType: 'Communication',
        status: 'completed',
        category: [{ coding: [{ system: CHAT_CATEGORY, code: 'care-team-alert', display: 'Care team alert from patient chat' }] }],
        priority: 'stat',
        subject,
        about: [{ reference: `Communication/${question.id}` }],
        ...(recipients.length > 0 ? { recipient: recipients } : {}),
        sent: w.now,
        reasonCode: [{ text: 'Possible life-threatening symptom reported in patient chat' }],
        payload: [{ contentString: 'The patient described a possibly life-threatening symptom in the carelens chat and was told to contact emergency services. Please contact the patient.' }],
      });
      alert = stored.id;
    }
    return { question: question.id, answer: answer.id, ...(alert ? { alert } : {}) };
  });
}

/** Who looks after the patient: their general practitioners and the members of their active care teams. */
async function careTeam(router: FhirRouter, w: Writer, patientId: string): Promise<NonNullable<Communication['recipient']>> {
  const patient = (await router.repo.read('Patient', patientId, w.tx)).resource as Patient;
  const teams = (
    await router.repo.search({ ...router.parseSearch('CareTeam', [['patient', `Patient/${patientId}`], ['status', 'active']], false), count: 50, offset: 0 }, w.tx)
  ).map((s) => s.resource as CareTeam);
  const references = [
    ...(patient.generalPractitioner ?? []).map((r) => r.reference),
    ...teams.flatMap((t) => (t.participant ?? []).map((p) => p.member?.reference)),
  ].filter((r): r is string => Boolean(r) && /^(Practitioner|PractitionerRole|Organization|CareTeam)\//.test(r!));
  return [...new Set(references)].map((reference) => ({ reference }));
}
