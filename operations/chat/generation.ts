/**
 * Answers written by a language model (Amazon Bedrock), held to the record: the model sees only the
 * retrieved chunks, numbered, and must cite them; its text is cut into sentences as it streams, and
 * each sentence passes the hallucination guard before it goes anywhere. A sentence that no retrieved
 * chunk supports (its numbers absent from the chunk, or too few of its words in it) is dropped; a
 * supported sentence citing the wrong chunk, or none, is given the chunk that supports it.
 */
import type { LlmMessage, LlmProvider } from '../../src/ai/llm.js';
import { concepts, words } from '../../src/rag/query.js';
import { formatDate } from '../../src/rag/render.js';
import type { RetrievedChunk } from '../../src/rag/retrieval.js';
import type { AnswerSentence, Audience } from './answerer.js';

export interface GenerationInput {
  question: string;
  audience: Audience;
  chunks: readonly RetrievedChunk[];
  /** Earlier turns of the conversation, oldest first. */
  history: LlmMessage[];
  /** What the doctor adds about the situation (doctor chat). */
  additionalContext?: string;
}

export type GuardedSentence = AnswerSentence & { supported: boolean };

const MAX_TOKENS = 700;
/** Share of a sentence's content words a chunk must contain to support it. */
const MIN_OVERLAP = 0.5;
const COMMON = new Set(
  'the and for with that this from your you are was were has have had not but its his her their they them our out all any can may also been than then there these those which what when where who whom how into onto over under about after before during while within without between such each other more most some only very just both either neither per via upon date dated record records recorded shows showed show listed lists says said value result results level levels test tests reading readings note noted patient patients doctor most recent latest last current previous earlier later since until ago'.split(
    ' ',
  ),
);

export function systemPrompt(input: GenerationInput): string {
  const sources = input.chunks
    .map((c, i) => `[${i + 1}] ${c.title}${c.section ? ` — ${c.section}` : ''} (${formatDate(c.date)}): ${c.content}`)
    .join('\n');
  const voice =
    input.audience === 'patient'
      ? 'You are answering a patient about their own health record. Use plain, friendly language and explain medical terms. Never diagnose, never suggest a diagnosis, and never advise on starting, stopping or dosing any treatment; for those, tell the patient to ask their doctor.'
      : 'You are supporting a clinician with decision support about one patient. Be concise and evidence-style: findings with values, units, dates and reference ranges.';
  return [
    voice,
    "Answer ONLY from the numbered sources below, which are the patient's own record. If they do not contain the answer, say that the record does not say.",
    'End every sentence with the number of the source it rests on, in square brackets, e.g. [2]. Do not state anything that no source says.',
    ...(input.additionalContext ? [`The clinician adds this context: ${input.additionalContext}`] : []),
    'Sources:',
    sources || '(none)',
  ].join('\n\n');
}

/** The model's answer, sentence by sentence, each checked against the chunks. */
export async function* generatedSentences(llm: LlmProvider, input: GenerationInput): AsyncIterable<GuardedSentence> {
  let buffer = '';
  const stream = llm.stream({ system: systemPrompt(input), messages: [...input.history, { role: 'user', content: input.question }], maxTokens: MAX_TOKENS });
  for await (const piece of stream) {
    buffer += piece;
    for (let cut = sentenceEnd(buffer); cut > 0; cut = sentenceEnd(buffer)) {
      const sentence = buffer.slice(0, cut);
      buffer = buffer.slice(cut);
      const guarded = guard(sentence, input.chunks);
      if (guarded) yield guarded;
    }
  }
  const rest = guard(buffer, input.chunks);
  if (rest) yield rest;
}

/** Where the first complete sentence ends (after its citation markers), or 0 if none is complete yet. */
function sentenceEnd(text: string): number {
  const m = /[.!?](?:\s*\[\d+(?:\s*,\s*\d+)*\])*(?=\s)|\n/.exec(text);
  return m ? m.index + m[0].length : 0;
}

/** A sentence with its citations checked and corrected; undefined for empty text. */
export function guard(raw: string, chunks: readonly RetrievedChunk[]): GuardedSentence | undefined {
  const cited = [...raw.matchAll(/\[(\d+(?:\s*,\s*\d+)*)\]/g)].flatMap((m) => m[1].split(',').map((n) => Number(n.trim()) - 1)).filter((i) => i >= 0 && i < chunks.length);
  const text = raw.replace(/\s*\[\d+(?:\s*,\s*\d+)*\]/g, '').replace(/\s+/g, ' ').trim();
  if (!text) return undefined;
  const supporting = chunks.map((_, i) => i).filter((i) => supports(chunks[i], text));
  const citations = cited.filter((i) => supporting.includes(i));
  return { text, kind: 'claim', citations: citations.length > 0 ? citations : supporting.slice(0, 1), supported: supporting.length > 0 };
}

/** Whether a chunk supports a sentence: every number in it, and most of its content words, are in the chunk. */
export function supports(chunk: RetrievedChunk, sentence: string): boolean {
  const source = `${chunk.title} ${chunk.section ?? ''} ${chunk.content} ${formatDate(chunk.date)} ${chunk.date ?? ''}`;
  const sourceNumbers = new Set(source.match(/\d+(?:\.\d+)?/g) ?? []);
  if (!(sentence.match(/\d+(?:\.\d+)?/g) ?? []).every((n) => sourceNumbers.has(n))) return false;
  const stem = (w: string): string => w.replace(/(ies|es|s|ed|ing)$/, '');
  const sourceWords = new Set(words(source).map(stem));
  const sourceConcepts = concepts(source);
  // A word is in the chunk as itself or as a synonym ("HbA1c" for "Hemoglobin A1c").
  const found = (w: string): boolean => sourceWords.has(stem(w)) || [...concepts(w)].some((c) => sourceConcepts.has(c));
  const content = words(sentence).filter((w) => w.length > 2 && !COMMON.has(w) && !/^\d/.test(w));
  if (content.length === 0) return false;
  return content.filter(found).length / content.length >= MIN_OVERLAP;
}
