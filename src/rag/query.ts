/**
 * A question turned into a PostgreSQL full-text query: the words that carry its topic, each widened
 * to its medical synonyms and abbreviations (src/rag/synonyms.json), OR-ed so that a chunk sharing
 * more of them ranks higher. PostgreSQL's English configuration then stems and drops stop words.
 */
import { readFileSync } from 'node:fs';

const SYNONYMS = JSON.parse(readFileSync(new URL('./synonyms.json', import.meta.url), 'utf8')) as { groups: string[][] };

/** Question words that say what is asked, not about what (intent is read from them separately). */
const QUESTION_WORDS = new Set(
  (
    'what whats when where which who whom why how was were is are am be been my mine me i im ive you your yours the a an of for on in at to ' +
    'last latest recent recently most current currently newest previous earlier ever value values result results level levels reading readings ' +
    'number numbers show tell give list please can could would did do does have has had get got any much many about from since record records ' +
    'there this that these those it its and or with all every know check see find look me up'
  ).split(' '),
);

const MAX_PHRASE = 4;

/** Synonym phrases by their words joined with spaces; each maps to every member of its groups. */
const PHRASES = new Map<string, Set<string>>();
for (const group of SYNONYMS.groups) {
  for (const member of group) {
    const key = words(member).join(' ');
    const set = PHRASES.get(key) ?? new Set<string>();
    for (const m of group) set.add(words(m).join(' '));
    PHRASES.set(key, set);
  }
}

export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[’']/g, '')
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** The topic terms of a question, each with its synonyms (phrases as word lists). */
export function topicTerms(question: string): string[][] {
  const tokens = words(question);
  const terms: string[][] = [];
  for (let i = 0; i < tokens.length; ) {
    let matched = false;
    for (let n = Math.min(MAX_PHRASE, tokens.length - i); n >= 1; n--) {
      const phrase = tokens.slice(i, i + n).join(' ');
      const group = PHRASES.get(phrase);
      if (group && !(n === 1 && QUESTION_WORDS.has(phrase))) {
        terms.push([...group]);
        i += n;
        matched = true;
        break;
      }
    }
    if (!matched) {
      if (!QUESTION_WORDS.has(tokens[i]) && tokens[i].length > 1) terms.push([tokens[i]]);
      i++;
    }
  }
  return terms;
}

/** The to_tsquery('english', …) text of a question, or undefined when it names no topic ("what's new?"). */
export function tsQuery(question: string): string | undefined {
  const terms = topicTerms(question);
  if (terms.length === 0) return undefined;
  const alternative = (phrase: string): string => {
    const parts = phrase.split(' ');
    return parts.length === 1 ? parts[0] : `(${parts.join(' <-> ')})`;
  };
  return terms.map((alternatives) => `(${alternatives.map(alternative).join(' | ')})`).join(' | ');
}
