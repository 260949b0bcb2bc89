/**
 * The pieces of a recommendation: stage-based tests marked done / due / overdue from the
 * Observations present, lifestyle advice adapted to stated preferences, and a follow-up interval
 * from the risk profile. Shared by $recommend and $health-score.
 */
import type { Assessment } from '../../src/risk/assessment.js';
import { type Comparison, satisfies } from '../../src/risk/comparison.js';
import { catalogueSpec } from '../risk-assess/engine.js';
import { type InputSpec, type Inputs, observationCodes, resolveInputs } from '../../src/risk/inputs.js';
import { latestObservation, observationDate, type PatientRecord } from '../../src/risk/patient-record.js';
import catalogue from './inputs.json' with { type: 'json' };
import lifestyle from './lifestyle.json' with { type: 'json' };
import testBook from './tests.json' with { type: 'json' };

export type TestStatus = 'done' | 'due' | 'overdue';

export interface TestItem {
  id: string;
  display: string;
  stage: number;
  orderCode: string;
  resultCodes: string[];
  intervalDays: number;
}

export interface TestRecommendation {
  test: TestItem;
  status: TestStatus;
  last?: { date: string; reference: string };
}

const LOINC = 'http://loinc.org';
const DAY = 86_400_000;
/** The preference answers of inputs.json, plus the shared inputs of the $risk-assess catalogue they sit beside. */
export const LIFESTYLE_INPUTS: InputSpec[] = [...(catalogue.inputs as InputSpec[]), ...['physically_active', 'daily_vegetables', 'smoker', 'breast_cancer_history'].map(catalogueSpec)];
const TESTS = testBook.tests as TestItem[];

/** Every LOINC code the tests and inputs read, for loading the record. */
export function planCodes(): string[] {
  return [...new Set([...TESTS.flatMap((t) => t.resultCodes.map((c) => `${LOINC}|${c}`)), ...observationCodes(LIFESTYLE_INPUTS)])];
}

export function lifestyleInputs(record: PatientRecord, asOf: Date): Inputs {
  return resolveInputs(LIFESTYLE_INPUTS, record, { asOf, lookbackDays: 730 });
}

/** The stages that apply: 1 always; 2 at medium/high breast-cancer markers; 3 with breast cancer. */
export function stagesFor(assessments: readonly Assessment[], inputs: Inputs): number[] {
  const breast = assessments.find((a) => a.model === 'breast-markers' && a.status === 'ok');
  const stages = [1];
  if (breast?.category && breast.category.code !== 'low') stages.push(2);
  if (inputs.get('breast_cancer_history')?.value === 1) stages.push(3);
  return stages;
}

export function testRecommendations(record: PatientRecord, stages: readonly number[], asOf: Date): TestRecommendation[] {
  return TESTS.filter((t) => stages.includes(t.stage)).map((test) => {
    const latest = latestObservation(record, test.resultCodes);
    if (!latest) return { test, status: 'due' };
    const date = observationDate(latest)!;
    const ageDays = (asOf.getTime() - Date.parse(date)) / DAY;
    const status: TestStatus = ageDays <= test.intervalDays ? 'done' : ageDays <= test.intervalDays + testBook.graceDays ? 'due' : 'overdue';
    return { test, status, last: { date, reference: `Observation/${latest.id}` } };
  });
}

export function lifestyleAdvice(inputs: Inputs): { topic: string; advice: string }[] {
  const holds = (c: Comparison & { input: string }): boolean => {
    const v = inputs.get(c.input)?.value;
    return typeof v === 'number' && satisfies(v, c);
  };
  const advice = lifestyle.items.filter((i) => holds(i.when)).map(({ topic, advice }) => ({ topic, advice }));
  const preference = String(inputs.get('dietary_preference')?.value ?? 'default').toLowerCase();
  const diets = lifestyle.diets as Record<string, string>;
  advice.push({ topic: 'diet', advice: diets[preference] ?? diets.default });
  return advice;
}

/** Follow-up from the highest risk among the published instruments' answers. */
export function followUp(assessments: readonly Assessment[]): { months: number; reason: string } {
  const risks = assessments.filter((a) => a.status === 'ok' && !a.researchGrade).map((a) => a.category?.risk);
  if (risks.includes('high') || risks.includes('certain')) return { months: 1, reason: 'A high risk was found: review with your clinician within a month' };
  if (risks.includes('moderate')) return { months: 3, reason: 'A moderate risk was found: review within three months' };
  return { months: 12, reason: 'No raised risk was found: yearly review' };
}
