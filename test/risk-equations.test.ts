import { baselineShapley, Facts } from '../src/risk/assessment.js';
import type { Inputs, ResolvedInput } from '../src/risk/inputs.js';
import { pce, prevent, type PreventInputs } from '../operations/risk-assess/instruments/cardiovascular.js';
import { ckdEpi2021, kfre } from '../operations/risk-assess/instruments/kidney.js';
import { apri, fib4 } from '../operations/risk-assess/instruments/liver.js';
import { cha2ds2vasc } from '../operations/risk-assess/instruments/stroke-af.js';
import { findrisc } from '../operations/risk-assess/instruments/glycaemia.js';
import { whoBand, whoSeverity } from '../operations/risk-assess/instruments/anaemia.js';
import { interpretThyroid } from '../operations/risk-assess/instruments/thyroid.js';

/**
 * Every published equation against worked examples from its source publication, official calculator
 * or reference implementation (sources next to each; the ledger is models/VERIFICATION.md).
 */

const inputs = (values: Record<string, number | string>): Inputs =>
  new Map(Object.entries(values).map(([name, value]): [string, ResolvedInput] => [name, { name, value, basis: ['QuestionnaireResponse/q'], excluded: [], series: [] }]));

describe('Pooled Cohort Equations (Goff 2014)', () => {
  const base = { age: 55, tc: 213, hdl: 50, treated: 0, smoker: 0, dm: 0 };
  test.each([
    // Guideline worked example (Goff 2014 full report; printed to 0.1 pp): 55 y, TC 213, HDL 50, SBP 120 untreated.
    ['white women', true, false, 120, 0.021],
    ['African-American women', true, true, 120, 0.03],
    ['white men', false, false, 120, 0.053],
    ['African-American men', false, true, 120, 0.061],
    // CVrisk (CRAN) test file: the same patient with SBP 140.
    ['white women, SBP 140', true, false, 140, 0.0276],
    ['African-American women, SBP 140', true, true, 140, 0.0508],
    ['white men, SBP 140', false, false, 140, 0.0701],
    ['African-American men, SBP 140', false, true, 140, 0.0795],
  ])('%s', (_, female, black, sbp, expected) => {
    expect(Math.abs(pce({ ...base, female, black, sbp }) - expected)).toBeLessThanOrEqual(0.001);
  });
});

describe('AHA PREVENT base 10-year (Khan 2024)', () => {
  // preventr 0.12.0 tests: 50 y, SBP 160 on treatment, TC 200, HDL 45, diabetes, non-smoker, eGFR 90, BMI 35, no statin.
  const example: PreventInputs = { female: true, age: 50, tc: 200, hdl: 45, sbp: 160, dm: 1, smoking: 0, egfr: 90, bmi: 35, antihtn: 1, statin: 0 };
  test.each([
    ['female', true, { cvd: 0.147, ascvd: 0.092, hf: 0.081, chd: 0.044, stroke: 0.054 }],
    ['male', false, { cvd: 0.163, ascvd: 0.102, hf: 0.106, chd: 0.056, stroke: 0.052 }],
  ] as const)('%s example, all five outcomes', (_, female, expected) => {
    for (const [outcome, value] of Object.entries(expected)) {
      expect(prevent(outcome as keyof typeof expected, { ...example, female })).toBeCloseTo(value, 3);
    }
  });
  test('PooledCohort README example (55 y, TC 213, HDL 50, SBP 120, eGFR 100, BMI 28): ASCVD', () => {
    const x: PreventInputs = { female: true, age: 55, tc: 213, hdl: 50, sbp: 120, dm: 0, smoking: 0, egfr: 100, bmi: 28, antihtn: 0, statin: 0 };
    expect(prevent('ascvd', x)).toBeCloseTo(0.01910652, 6);
    expect(prevent('ascvd', { ...x, female: false })).toBeCloseTo(0.02778896, 6);
  });
});

describe('kidney', () => {
  test.each([
    // The CKD-EPI 2021 equation as published by kidney.org (values computed from it to 0.1).
    [0.9, 55, true, 75.5],
    [1.0, 50, false, 91.7],
    [2.0, 70, false, 35.2],
    [0.6, 30, true, 123.8],
  ])('CKD-EPI 2021: creatinine %s mg/dL, age %s, female %s → %s', (scr, age, female, expected) => {
    expect(ckdEpi2021(scr, age, female)).toBeCloseTo(expected, 1);
  });
  test.each([
    // Tangri-group calculator (North American), quoted in an MDedge Q&A; the calculator truncates to 0.1 pp.
    [63, 0, 45, 30, 0.004, 0.013],
    [55, 1, 38, 150, 0.029, 0.09],
  ])('KFRE 4-variable: age %s, male %s, eGFR %s, ACR %s mg/g', (age, male, egfr, uacr, two, five) => {
    expect(Math.abs(kfre({ age, male, egfr, uacr }, 2) - two)).toBeLessThanOrEqual(0.0015);
    expect(Math.abs(kfre({ age, male, egfr, uacr }, 5) - five)).toBeLessThanOrEqual(0.0015);
  });
});

describe('liver, anaemia, thyroid, stroke in AF, FINDRISC', () => {
  test('FIB-4 (Sterling 2006) and APRI (Wai 2003) from their formulas', () => {
    expect(fib4(55, 60, 50, 150)).toBeCloseTo(3.11, 2);
    expect(fib4(70, 30, 30, 200)).toBeCloseTo(1.92, 2);
    expect(apri(60, 40, 150)).toBeCloseTo(1.0, 6);
  });
  test('WHO haemoglobin cut-offs and severity', () => {
    expect(whoSeverity(125, whoBand(40, true, false)!)).toBe('mild');
    expect(whoSeverity(125, whoBand(40, false, false)!)).toBe('none');
    expect(whoSeverity(75, whoBand(40, false, false)!)).toBe('severe');
    expect(whoSeverity(95, whoBand(30, false, true)!)).toBe('moderate');
    expect(whoSeverity(100, whoBand(30, false, true)!)).toBe('mild');
    expect(whoBand(1, true, false)!.cutoff).toBe(105);
  });
  test('TSH / free T4 matrix', () => {
    const ranges: [[number, number], [number, number]] = [[0.4, 4.0], [0.8, 1.8]];
    expect(interpretThyroid(12, 0.5, ...ranges).code).toBe('overt-hypothyroidism');
    expect(interpretThyroid(12, 1.2, ...ranges).code).toBe('subclinical-hypothyroidism');
    expect(interpretThyroid(10, 1.2, ...ranges).code).toBe('mild-subclinical-hypothyroidism');
    expect(interpretThyroid(0.05, 2.5, ...ranges).code).toBe('overt-hyperthyroidism');
    expect(interpretThyroid(0.05, 1.2, ...ranges).code).toBe('subclinical-hyperthyroidism-grade-2');
    expect(interpretThyroid(0.3, 1.2, ...ranges).code).toBe('subclinical-hyperthyroidism-grade-1');
    expect(interpretThyroid(2, 1.2, ...ranges).code).toBe('euthyroid');
  });
  test('CHA2DS2-VASc (Lip 2010 point table)', () => {
    const score = (x: Parameters<typeof cha2ds2vasc>[0]): number => cha2ds2vasc(x).reduce((s, i) => s + i.contribution, 0);
    const none = { hf: false, hypertension: false, diabetes: false, strokeTia: false, vascular: false };
    expect(score({ ...none, age: 72, female: true, hypertension: true })).toBe(3);
    expect(score({ ...none, age: 80, female: false, strokeTia: true, diabetes: true })).toBe(5);
  });
  test('FINDRISC (official form): 58-year-old woman, BMI 28, waist 85, inactive, on BP drugs, a parent with diabetes → 16, high', () => {
    const facts = new Facts(inputs({ age: 58, male: 0, bmi: 28, waist: 85, physically_active: 0, daily_vegetables: 1, antihypertensive: 1, high_glucose_history: 0, family_diabetes: 'first-degree' }));
    const result = findrisc.assess(facts);
    expect(result.score?.value).toBe(16);
    expect(result.category?.code).toBe('high');
  });
});

test('baseline Shapley values sum exactly to the difference from the reference, including interactions', () => {
  const f = (v: Record<string, number>): number => 0.3 * v.a + 0.2 * v.b * v.c - Math.log(v.c) + v.a * v.b * v.c;
  const x = { a: 2, b: 3, c: 4 };
  const ref = { a: 1, b: 1, c: 1 };
  const { baseline, contributions } = baselineShapley(f, x, ref);
  expect(baseline).toBeCloseTo(f(ref), 12);
  expect(baseline + Object.values(contributions).reduce((s, v) => s + v, 0)).toBeCloseTo(f(x), 12);
  // Symmetric inputs in a symmetric term share it equally.
  const sym = baselineShapley((v) => v.p * v.q, { p: 2, q: 2 }, { p: 0, q: 0 });
  expect(sym.contributions.p).toBeCloseTo(sym.contributions.q, 12);
});
