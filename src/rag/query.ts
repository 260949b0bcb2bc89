/**
 * A question turned into a PostgreSQL full-text query: the words that carry its topic, each widened
 * to its medical synonyms and abbreviations (src/rag/synonyms.json), OR-ed so that a chunk sharing
 * more of them ranks higher. PostgreSQL's English configuration then stems and drops stop words.
 */
import synonyms from './synonyms.json' with { type: 'json' };

const SYNONYMS: { groups: string[][] } = synonyms;

/** Question words that say what is asked, not about what (intent is read from them separately). */
const QUESTION_WORDS = new Set(
  (
    'what whats when where which who whom why how was were is are am be been my mine me i im ive you your yours the a an of for on in at to ' +
    'last latest recent recently most current currently newest previous earlier ever value values result results level levels reading readings ' +
    'number numbers show tell give list please can could would did do does have has had get got any much many about from since record records ' +
    'there this that these those it its and or with all every know check see find look me up one ones before after again more else next also too just ok okay thanks thank'
  ).split(' '),
);

const MAX_PHRASE = 4;

/** Synonym phrases by their words joined with spaces; each maps to every member of its groups. */
const PHRASES = new Map<string, Set<string>>();
/** The groups (concepts) each phrase belongs to, by index. */
const PHRASE_GROUPS = new Map<string, Set<number>>();
SYNONYMS.groups.forEach((group, index) => {
  for (const member of group) {
    const key = words(member).join(' ');
    const set = PHRASES.get(key) ?? new Set<string>();
    for (const m of group) set.add(words(m).join(' '));
    PHRASES.set(key, set);
    PHRASE_GROUPS.set(key, (PHRASE_GROUPS.get(key) ?? new Set()).add(index));
  }
});

/** The synonym groups (medical concepts) a text names, longest phrase first ("hemoglobin a1c" is HbA1c, not haemoglobin). */
export function concepts(text: string): Set<number> {
  const tokens = words(text);
  const found = new Set<number>();
  for (let i = 0; i < tokens.length; ) {
    let n = Math.min(MAX_PHRASE, tokens.length - i);
    for (; n >= 1; n--) {
      const groups = PHRASE_GROUPS.get(tokens.slice(i, i + n).join(' '));
      if (groups && !(n === 1 && QUESTION_WORDS.has(tokens[i]))) {
        for (const g of groups) found.add(g);
        break;
      }
    }
    i += Math.max(n, 1);
  }
  return found;
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

/**
 * The to_tsquery('english', …) text of each topic term of a question (its synonyms OR-ed); empty when
 * it names no topic ("what's new?"). A chunk is ranked first by how many terms it matches.
 */
export function termQueries(question: string): string[] {
  const alternative = (phrase: string): string => {
    const parts = phrase.split(' ');
    return parts.length === 1 ? parts[0] : `(${parts.join(' <-> ')})`;
  };
  return topicTerms(question).map((alternatives) => `(${alternatives.map(alternative).join(' | ')})`);
}
