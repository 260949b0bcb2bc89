/**
 * The grounded extractive answerer: composes an answer from the retrieved chunks alone, so the chat
 * works offline and can state nothing the record does not say. Structured facts are quoted exactly
 * (value, unit, date, reference range); document passages are quoted, never paraphrased. Patients get
 * plain sentences and short explanations of the terms used; doctors get terse, evidence-style lines.
 */
import glossary from './glossary.json' with { type: 'json' };
import type { RetrievedChunk } from '../../src/rag/retrieval.js';
import { words } from '../../src/rag/query.js';
import { type Fact, formatDate, withoutSemanticTag } from '../../src/rag/render.js';

export type Audience = 'patient' | 'doctor';

export interface AnswerSentence {
  text: string;
  /** A claim states something from the record and must cite it; an explanation says what a term means. */
  kind: 'claim' | 'explanation';
  /** Indices into the retrieved chunks. */
  citations: number[];
}

const GLOSSARY = glossary.terms.map((t) => ({ ...t, re: new RegExp(t.match, 'i') }));

const PREVIOUS = /\b(before (that|this|it)|the one before|previous (one|result|reading)|earlier one)\b/i;
const HISTORY = /\b(history|trend|over time|all (my|the|of)|previous|past|each time|every time|changed|over the (years|months))\b/i;
const LIST = /\b(what|which|list)\b.*\b(medications|medicines|drugs|tablets|conditions|problems|diagnoses|vaccines|vaccinations|immuni[sz]ations|shots|allergies|procedures|operations|visits|appointments)\b/i;
const LIST_KINDS: Record<string, string[]> = {
  medication: ['MedicationRequest', 'MedicationStatement'],
  condition: ['Condition'],
  immunization: ['Immunization'],
  allergy: ['AllergyIntolerance'],
  procedure: ['Procedure'],
  encounter: ['Encounter'],
};
const LIST_WORDS: [RegExp, string][] = [
  [/\b(medications|medicines|drugs|tablets)\b/i, 'medication'],
  [/\b(conditions|problems|diagnoses)\b/i, 'condition'],
  [/\b(vaccines|vaccinations|immuni[sz]ations|shots)\b/i, 'immunization'],
  [/\ballergies\b/i, 'allergy'],
  [/\b(procedures|operations)\b/i, 'procedure'],
  [/\b(visits|appointments)\b/i, 'encounter'],
];
const MAX_HISTORY = 5;
const MAX_LIST = 8;

export function extractiveAnswer(question: string, chunks: readonly RetrievedChunk[], audience: Audience): AnswerSentence[] {
  if (chunks.length === 0) return [];
  const listKind = LIST.test(question) ? LIST_WORDS.find(([re]) => re.test(question))?.[1] : undefined;
  if (listKind) {
    const kinds = LIST_KINDS[listKind];
    const seen = new Set<string>();
    const items = chunks
      .map((chunk, index) => ({ chunk, index }))
      .filter(({ chunk }) => kinds.includes(chunk.kind) && !seen.has(chunk.title.toLowerCase()) && seen.add(chunk.title.toLowerCase()))
      .slice(0, MAX_LIST);
    if (items.length > 0) return items.map(({ chunk, index }) => ({ kind: 'claim', text: statement(chunk, audience, question), citations: [index] }));
  }
  const primary = chunks[0];
  const sameTest = chunks
    .map((chunk, index) => ({ chunk, index }))
    .filter(({ chunk }) => chunk.kind === primary.kind && chunk.title === primary.title)
    .sort((a, b) => (b.chunk.date ?? '').localeCompare(a.chunk.date ?? ''));
  if (primary.fact?.type === 'result' && HISTORY.test(question) && sameTest.length > 1) {
    const shown = sameTest.slice(0, MAX_HISTORY);
    const lead =
      audience === 'patient'
        ? { kind: 'claim' as const, text: `Your record has ${sameTest.length === chunks.length ? 'these' : 'these recent'} ${primary.title} results, newest first:`, citations: shown.map((s) => s.index) }
        : { kind: 'claim' as const, text: `${primary.title}, newest first:`, citations: shown.map((s) => s.index) };
    return [lead, ...shown.map(({ chunk, index }) => ({ kind: 'claim' as const, text: historyLine(chunk, audience), citations: [index] }))];
  }
  // The newest of the best-matching test or item answers "what was my last …" and most other questions.
  const best = primary.fact?.type === 'result' ? ((PREVIOUS.test(question) && sameTest[1]) || sameTest[0]) : { chunk: primary, index: 0 };
  const answer: AnswerSentence[] = [{ kind: 'claim', text: statement(best.chunk, audience, question), citations: [best.index] }];
  // A passage of a report comes after the report's own conclusion, when that was retrieved too.
  const summary = best.chunk.fact ? -1 : chunks.findIndex((c) => c.source === best.chunk.source && c.fact?.type === 'report');
  if (summary >= 0) answer.unshift({ kind: 'claim', text: statement(chunks[summary], audience, question), citations: [summary] });
  // A doctor gets the next distinct findings too: evidence, not one line.
  if (audience === 'doctor') {
    const titles = new Set([best.chunk.title]);
    for (let i = 1; i < chunks.length && answer.length < 3; i++) {
      if (titles.has(chunks[i].title)) continue;
      titles.add(chunks[i].title);
      answer.push({ kind: 'claim', text: statement(chunks[i], audience, question), citations: [i] });
    }
  }
  return answer;
}

/** Plain-language explanations of the terms an answer to a patient uses (each term once). */
export function explanations(sentences: readonly AnswerSentence[]): AnswerSentence[] {
  const text = sentences.map((s) => s.text).join(' ');
  return GLOSSARY.filter((g) => g.re.test(text))
    .slice(0, 3)
    .map((g) => ({ kind: 'explanation', text: g.explanation, citations: [] }));
}

function statement(chunk: RetrievedChunk, audience: Audience, question: string): string {
  const fact = chunk.fact;
  const date = formatDate(chunk.date);
  if (!fact) return passageStatement(chunk, audience, question);
  return audience === 'patient' ? patientStatement(fact, date) : doctorStatement(fact, date);
}

function patientStatement(fact: Fact, date: string): string {
  fact = { ...fact, name: withoutSemanticTag(fact.name) };
  switch (fact.type) {
    case 'result':
      return `Your ${fact.name} on ${date} was ${fact.value}${rangePhrase(fact)}.`;
    case 'condition':
      return `Your record lists ${fact.name}${fact.onset ? `, first noted on ${formatDate(fact.onset)}` : ''}${
        fact.abatement ? `; it is marked as resolved on ${formatDate(fact.abatement)}` : fact.clinicalStatus ? `; its status is ${fact.clinicalStatus}` : ''
      }.`;
    case 'medication':
      // Never the dosage: quoted to a patient it reads as dosing advice. The prescription itself says how to take it.
      return `Your record shows ${fact.name}, prescribed on ${date} (status: ${fact.status}).`;
    case 'encounter':
      return `You had a visit on ${date}: ${fact.name}${fact.reason ? `, for ${fact.reason}` : ''}.`;
    case 'procedure':
      return `Your record shows a procedure on ${date}: ${fact.name}.`;
    case 'immunization':
      return `You received a vaccination on ${date}: ${fact.name}.`;
    case 'allergy':
      return `Your record lists an allergy or intolerance: ${fact.name}${fact.reaction ? ` (reaction: ${fact.reaction})` : ''}.`;
    case 'report':
      return `Your ${fact.name} report is dated ${date}${fact.conclusion ? `; its conclusion reads: "${fact.conclusion}"` : ''}.`;
  }
}

function doctorStatement(fact: Fact, date: string): string {
  switch (fact.type) {
    case 'result':
      return `${fact.name}: ${fact.value}${fact.range ? ` (ref ${fact.range})` : ''}${fact.flag && fact.flag !== 'normal' ? `, ${fact.flag.toUpperCase()}` : ''} on ${date}${fact.status !== 'final' ? ` [${fact.status}]` : ''}.`;
    case 'condition':
      return `${fact.name}: ${fact.clinicalStatus ?? 'status not recorded'}${fact.onset ? `, onset ${formatDate(fact.onset)}` : ''}${fact.abatement ? `, resolved ${formatDate(fact.abatement)}` : ''}.`;
    case 'medication':
      return `${fact.name}: ${fact.status}, ordered ${date}${fact.dosage ? `; sig: ${fact.dosage}` : ''}.`;
    case 'encounter':
      return `${fact.name} on ${date}${fact.reason ? ` for ${fact.reason}` : ''}.`;
    case 'procedure':
      return `${fact.name} (${fact.status}) on ${date}.`;
    case 'immunization':
      return `${fact.name} given ${date} (${fact.status}).`;
    case 'allergy':
      return `Allergy/intolerance: ${fact.name}${fact.reaction ? `, reaction ${fact.reaction}` : ''}${fact.criticality ? `, criticality ${fact.criticality}` : ''}.`;
    case 'report':
      return `${fact.name} report ${date}${fact.conclusion ? `: ${fact.conclusion}` : ''}.`;
  }
}

function historyLine(chunk: RetrievedChunk, audience: Audience): string {
  const fact = chunk.fact as Extract<Fact, { type: 'result' }>;
  const date = formatDate(chunk.date);
  return audience === 'patient' ? `${date}: ${fact.value}${rangePhrase(fact)}.` : `${date}: ${fact.value}${fact.flag && fact.flag !== 'normal' ? ` ${fact.flag.toUpperCase()}` : ''}.`;
}

function rangePhrase(fact: Extract<Fact, { type: 'result' }>): string {
  if (!fact.range) return '';
  switch (fact.flag) {
    case 'normal':
      return `, within the normal range of ${fact.range}`;
    case 'high':
      return `, above the normal range of ${fact.range}`;
    case 'low':
      return `, below the normal range of ${fact.range}`;
    case 'abnormal':
      return `, which the laboratory marked as outside its normal range of ${fact.range}`;
    default:
      return ` (the laboratory's normal range is ${fact.range})`;
  }
}

/** A document passage, quoted: its one or two sentences that share most words with the question's topic. */
function passageStatement(chunk: RetrievedChunk, audience: Audience, question: string): string {
  const source = `${chunk.title}${chunk.section ? ` (${chunk.section})` : ''}, ${formatDate(chunk.date)}`;
  const excerpt = bestSentences(chunk.content, question);
  return audience === 'patient' ? `Your ${source} says: "${excerpt}"` : `${source}: "${excerpt}"`;
}

function bestSentences(content: string, question: string): string {
  const questionTerms = new Set(words(question).filter((w) => w.length > 2));
  const sentences = content.split(/(?<=[.!?])\s+/).filter(Boolean);
  if (sentences.length <= 2) return content;
  const scored = sentences.map((s, i) => ({ i, score: words(s).filter((w) => questionTerms.has(w)).length }));
  const top = scored.sort((a, b) => b.score - a.score || a.i - b.i)[0].i;
  return sentences.slice(top, top + 2).join(' ');
}
