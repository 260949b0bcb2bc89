/**
 * The patient chat's safety layer. Before retrieval, a question describing a possibly
 * life-threatening symptom, or asking for a diagnosis or a treatment decision, gets a fixed response
 * that sends the patient to a doctor or to emergency services; nothing is generated for it. After
 * generation, every sentence of an answer to a patient is checked: a claim without a citation, a
 * diagnosis or dosing advice is removed, whichever answerer wrote it.
 */
import lexicon from './safety-lexicon.json' with { type: 'json' };
import { PhraseMatcher } from '../../src/text/phrase-matcher.js';

interface Lexicon {
  criticalSymptoms: string[];
  diagnosticRequests: string[];
  recordQuestionMarkers: string;
  treatmentRequests: string[];
  responses: Record<Exclude<SafetyOutcome, 'ok'> | 'care_team_notified', string>;
  outgoing: { diagnosis: string[]; dosing: string[] };
}

const LEXICON: Lexicon = lexicon;
const CRITICAL = new PhraseMatcher(LEXICON.criticalSymptoms);
const DIAGNOSTIC = LEXICON.diagnosticRequests.map((p) => new RegExp(p));
const RECORD_QUESTION = new RegExp(LEXICON.recordQuestionMarkers);
const TREATMENT = LEXICON.treatmentRequests.map((p) => new RegExp(p));
const DIAGNOSIS_CLAIM = LEXICON.outgoing.diagnosis.map((p) => new RegExp(p, 'i'));
const DOSING_ADVICE = LEXICON.outgoing.dosing.map((p) => new RegExp(p, 'i'));

/** What the safety layer concluded about a turn. */
export type SafetyOutcome = 'ok' | 'critical_symptom' | 'diagnostic_request' | 'treatment_request' | 'no_information';

export interface Screening {
  outcome: SafetyOutcome;
  /** The critical phrases found (not negated). */
  matched: string[];
}

/** Screens a patient's question; `ok` means it may be answered from the record. */
export function screenQuestion(question: string): Screening {
  const critical = CRITICAL.find(question).filter((m) => !m.negated);
  if (critical.length > 0) return { outcome: 'critical_symptom', matched: [...new Set(critical.map((m) => m.phrase))] };
  const text = normalise(question);
  if (TREATMENT.some((re) => re.test(text))) return { outcome: 'treatment_request', matched: [] };
  // "Do I have any allergies recorded?" asks about the record, not for a diagnosis.
  if (DIAGNOSTIC.some((re) => re.test(text)) && !RECORD_QUESTION.test(text)) return { outcome: 'diagnostic_request', matched: [] };
  return { outcome: 'ok', matched: [] };
}

/** The fixed response for an outcome. */
export function fixedResponse(outcome: Exclude<SafetyOutcome, 'ok'>, careTeamNotified = false): string {
  return outcome === 'critical_symptom' && careTeamNotified ? `${LEXICON.responses[outcome]} ${LEXICON.responses.care_team_notified}` : LEXICON.responses[outcome];
}

/** Why an outgoing sentence may not reach a patient, if it may not. */
export function outgoingViolation(sentence: { text: string; kind: 'claim' | 'explanation'; citations: readonly number[] }): 'uncited_claim' | 'diagnosis' | 'dosing_advice' | undefined {
  if (DOSING_ADVICE.some((re) => re.test(sentence.text))) return 'dosing_advice';
  if (DIAGNOSIS_CLAIM.some((re) => re.test(sentence.text))) return 'diagnosis';
  if (sentence.kind === 'claim' && sentence.citations.length === 0) return 'uncited_claim';
  return undefined;
}

function normalise(text: string): string {
  return text.toLowerCase().replace(/[’']/g, '').replace(/\s+/g, ' ');
}
