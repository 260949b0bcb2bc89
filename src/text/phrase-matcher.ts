/**
 * Finds clinical phrases in free text the way a clinician reads it: tolerant of common misspellings
 * (one edit in words of five letters or more, two from nine) and of plurals, and negation-aware in
 * the manner of NegEx (Chapman et al., J Biomed Inform 2001): a phrase preceded in the same clause by
 * a negation trigger ("no", "denies", "without", "negative for"…) or followed by "ruled out" is
 * found but marked negated, so "no chest pain" never counts as chest pain.
 */
import { editDistance } from './edit-distance.js';

export interface PhraseMatch {
  phrase: string;
  /** The words of the text that matched. */
  text: string;
  negated: boolean;
}

interface Token {
  word: string;
  /** A clause boundary (punctuation, "but", "however") comes before this token. */
  clauseStart: boolean;
}

const PRE_NEGATION = [['no'], ['not'], ['denies'], ['denied'], ['deny'], ['denying'], ['without'], ['never'], ['nor'], ['negative', 'for'], ['free', 'of'], ['absence', 'of'], ['no', 'sign', 'of'], ['no', 'signs', 'of'], ['no', 'history', 'of']];
const POST_NEGATION = [['ruled', 'out'], ['is', 'absent'], ['was', 'absent'], ['not', 'present']];
/** "Not only", "no increase in" and the like do not negate what follows. */
const PSEUDO_NEGATION = [['not', 'only'], ['no', 'longer'], ['not', 'just']];
const CLAUSE_BREAKS = new Set(['but', 'however', 'although', 'though', 'except', 'apart']);
/** Words between a trigger and the phrase it negates. */
const NEGATION_WINDOW = 5;

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let clauseStart = true;
  for (const piece of text.toLowerCase().replace(/[’']/g, '').split(/([.;:!?,\n()]|\s+)/)) {
    if (!piece || /^\s+$/.test(piece)) continue;
    if (/^[.;:!?,\n()]$/.test(piece)) {
      clauseStart = true;
      continue;
    }
    for (const word of piece.split(/[^a-z0-9]+/).filter(Boolean)) {
      if (CLAUSE_BREAKS.has(word)) {
        clauseStart = true;
        continue;
      }
      tokens.push({ word, clauseStart });
      clauseStart = false;
    }
  }
  return tokens;
}

export class PhraseMatcher {
  private readonly phrases: { phrase: string; words: string[] }[];

  constructor(phrases: readonly string[]) {
    this.phrases = phrases.map((phrase) => ({ phrase, words: tokenize(phrase).map((t) => t.word) })).filter((p) => p.words.length > 0);
  }

  /** Every phrase found in the text, each occurrence once, negated or not. */
  find(text: string): PhraseMatch[] {
    const tokens = tokenize(text);
    const found: PhraseMatch[] = [];
    for (const { phrase, words } of this.phrases) {
      for (let start = 0; start + words.length <= tokens.length; start++) {
        if (!words.every((w, k) => sameWord(w, tokens[start + k].word) && (k === 0 || !tokens[start + k].clauseStart))) continue;
        const end = start + words.length;
        found.push({ phrase, text: tokens.slice(start, end).map((t) => t.word).join(' '), negated: negatedBefore(tokens, start) || negatedAfter(tokens, end) });
      }
    }
    return found;
  }
}

function sameWord(expected: string, actual: string): boolean {
  if (expected === actual) return true;
  const singular = (w: string): string => (w.length > 3 && w.endsWith('s') && !w.endsWith('ss') ? w.slice(0, -1) : w);
  if (singular(expected) === singular(actual)) return true;
  if (expected.length < 5 || /\d/.test(expected)) return false;
  const budget = expected.length >= 9 ? 2 : 1;
  return Math.abs(expected.length - actual.length) <= budget && editDistance(expected, actual, budget) <= budget;
}

function startsAt(tokens: readonly Token[], i: number, words: readonly string[]): boolean {
  return words.every((w, k) => tokens[i + k]?.word === w && (k === 0 || !tokens[i + k].clauseStart));
}

function negatedBefore(tokens: readonly Token[], start: number): boolean {
  // Scan back within the clause and the window for a trigger that ends before the phrase.
  for (let i = start - 1; i >= 0 && start - i <= NEGATION_WINDOW + 2; i--) {
    if (tokens[i + 1].clauseStart) return false;
    if (PRE_NEGATION.some((t) => i + t.length <= start && startsAt(tokens, i, t)) && !PSEUDO_NEGATION.some((t) => startsAt(tokens, i, t))) return true;
  }
  return false;
}

function negatedAfter(tokens: readonly Token[], end: number): boolean {
  return POST_NEGATION.some((t) => startsAt(tokens, end, t) && !tokens[end].clauseStart);
}
