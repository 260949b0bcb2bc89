/**
 * Triage of a presentation: NEWS2 from the vital signs, then every rule in rules.json evaluated
 * against the free text (negation- and misspelling-aware) and the resolved inputs. The most urgent
 * rule sets the urgency; all that fired are the reasons.
 */
import { type Comparison, satisfies } from '../../src/risk/comparison.js';
import { PhraseMatcher } from '../../src/text/phrase-matcher.js';
import { type Consciousness, news2, type News2Result } from './news2.js';
import ruleBook from './rules.json' with { type: 'json' };

export type Urgency = 'RED' | 'AMBER' | 'GREEN';

export type Condition = { phrases: string[] } | ({ input: string } & Comparison) | { allOf: Condition[] } | { anyOf: Condition[] };

export interface Rule {
  id: string;
  urgency: Urgency;
  when: Condition;
  message: string;
  source: string;
  specialty?: string;
  timeToAction?: string;
  safetyNetting?: string;
}

export interface Presentation {
  /** Free text: chief complaint, symptoms (coded symptoms contribute their display text). */
  text: string[];
  /** Numeric inputs: vital signs, painScore, pregnant (1/0), age. */
  values: Map<string, number>;
  consciousness?: Consciousness;
  onOxygen?: boolean;
  spo2Scale: 1 | 2;
}

export interface FiredRule {
  rule: Rule;
  /** What made it fire: the phrases found, or the values compared. */
  evidence: string[];
}

export interface TriageResult {
  urgency: Urgency;
  timeToAction: string;
  fired: FiredRule[];
  specialties: string[];
  safetyNetting: string[];
  news2: News2Result;
  /** Phrases found but negated ("no chest pain"), reported so a reader sees they were considered. */
  negated: string[];
  warnings: string[];
}

const RULES = ruleBook.rules as Rule[];
const ORDER: Record<Urgency, number> = { RED: 3, AMBER: 2, GREEN: 1 };
const matchers = new Map<Condition, PhraseMatcher>();

export function triage(p: Presentation): TriageResult {
  const score = news2({
    respiratoryRate: p.values.get('respiratoryRate'),
    spo2: p.values.get('spo2'),
    spo2Scale: p.spo2Scale,
    onOxygen: p.onOxygen,
    systolic: p.values.get('systolic'),
    pulse: p.values.get('pulse'),
    consciousness: p.consciousness,
    temperature: p.values.get('temperature'),
  });
  const values = new Map(p.values);
  if (score.components.length > 0) {
    values.set('news2', score.total);
    values.set('news2Single3', score.singleParameter3 ? 1 : 0);
  }
  const text = p.text.join('. ');
  const negated = new Set<string>();
  const fired: FiredRule[] = [];
  for (const rule of RULES) {
    const evidence: string[] = [];
    if (holds(rule.when, text, values, evidence, negated)) fired.push({ rule, evidence });
  }
  fired.sort((a, b) => ORDER[b.rule.urgency] - ORDER[a.rule.urgency]);
  const urgency: Urgency = fired[0]?.rule.urgency ?? 'GREEN';
  const leading = fired.filter((f) => f.rule.urgency === urgency);
  const age = p.values.get('age');
  const warnings = [
    ...(score.components.length > 0 && score.missing.length > 0 ? [`NEWS2 is incomplete (missing ${score.missing.join(', ')}): the total is a lower bound`] : []),
    ...(age !== undefined && age < 16 ? ['NEWS2 is not validated under 16 years: use a paediatric early warning score'] : []),
    ...(p.values.get('pregnant') === 1 ? ['NEWS2 is not validated in pregnancy: use an obstetric early warning score'] : []),
  ];
  return {
    urgency,
    timeToAction: leading.find((f) => f.rule.timeToAction)?.rule.timeToAction ?? ruleBook.timeToAction[urgency],
    fired,
    specialties: [...new Set(fired.map((f) => f.rule.specialty).filter((s): s is string => s !== undefined))],
    safetyNetting: [...new Set([...fired.map((f) => f.rule.safetyNetting).filter((s): s is string => s !== undefined), ruleBook.safetyNetting[urgency]])],
    news2: score,
    negated: [...negated].filter((phrase) => !fired.some((f) => f.evidence.includes(phrase))),
    warnings,
  };
}

function holds(c: Condition, text: string, values: Map<string, number>, evidence: string[], negated: Set<string>): boolean {
  if ('allOf' in c) {
    const collected: string[] = [];
    const ok = c.allOf.every((sub) => holds(sub, text, values, collected, negated));
    if (ok) evidence.push(...collected);
    return ok;
  }
  if ('anyOf' in c) {
    let ok = false;
    for (const sub of c.anyOf) ok = holds(sub, text, values, evidence, negated) || ok;
    return ok;
  }
  if ('phrases' in c) {
    let matcher = matchers.get(c);
    if (!matcher) {
      matcher = new PhraseMatcher(c.phrases);
      matchers.set(c, matcher);
    }
    const found = matcher.find(text);
    found.filter((m) => m.negated).forEach((m) => negated.add(m.text));
    const positive = found.filter((m) => !m.negated);
    evidence.push(...new Set(positive.map((m) => m.text)));
    return positive.length > 0;
  }
  const value = values.get(c.input);
  if (value === undefined) return false;
  const ok = satisfies(value, c);
  if (ok) evidence.push(`${c.input} ${value}`);
  return ok;
}

export function allRules(): readonly Rule[] {
  return RULES;
}
