/**
 * Type 2 diabetes: ADA diagnostic thresholds on HbA1c and fasting glucose (Standards of Care §2),
 * FINDRISC (Lindström 2003) and the ADA Risk Test (Bang 2009) for people without labs.
 */
import type { Contribution, Facts } from '../../../src/risk/assessment.js';
import { type Instrument, type InstrumentResult, missingReason, SNOMED, withoutNumber } from './instrument.js';

const T2DM = { system: SNOMED, code: '44054006', display: 'Diabetes mellitus type 2' };

export function adaCategory(hba1c: number | undefined, fpg: number | undefined): 'diabetes' | 'prediabetes' | 'normal' {
  if ((hba1c !== undefined && hba1c >= 6.5) || (fpg !== undefined && fpg >= 126)) return 'diabetes';
  if ((hba1c !== undefined && hba1c >= 5.7) || (fpg !== undefined && fpg >= 100)) return 'prediabetes';
  return 'normal';
}

export const adaGlycaemia: Instrument = {
  model: 'ada-glycaemia',
  version: 'ADA Standards of Care in Diabetes, section 2',
  title: 'Glycaemic status by ADA diagnostic thresholds',
  condition: 'diabetes',
  inputs: ['hba1c', 'fpg', 'diabetes', 'pregnant'],
  assess(facts: Facts) {
    if (facts.flag('diabetes')) {
      return withoutNumber('not_applicable', T2DM, 'Diabetes is already diagnosed (active Condition)');
    }
    const hba1c = facts.has('hba1c') ? facts.num('hba1c') : undefined;
    const fpg = facts.has('fpg') ? facts.num('fpg') : undefined;
    if (hba1c === undefined && fpg === undefined) {
      facts.missing.add('hba1c or fpg');
      return withoutNumber('insufficient_data', T2DM, 'Required inputs missing: HbA1c or fasting plasma glucose');
    }
    const status = adaCategory(hba1c, fpg);
    const category: NonNullable<InstrumentResult['category']> =
      status === 'diabetes' ? { code: 'diabetes-range', display: 'In the diabetes range: confirm with a repeat test', risk: 'high' }
        : status === 'prediabetes' ? { code: 'prediabetes', display: 'Prediabetes range', risk: 'moderate' }
          : { code: 'normal', display: 'Normal glycaemia', risk: 'low' };
    return {
      status: 'ok',
      outcome: T2DM,
      category,
      thresholds: 'HbA1c ≥6.5% or FPG ≥126 mg/dL diabetes range; HbA1c 5.7–6.4% or FPG 100–125 mg/dL prediabetes',
      intervalNote: 'A classification of measured values: no interval.',
      details: [...(hba1c === undefined ? [] : [{ name: 'hba1c', value: hba1c, unit: '%' }]), ...(fpg === undefined ? [] : [{ name: 'fpg', value: fpg, unit: 'mg/dL' }])],
      warnings: [
        'Without unequivocal hyperglycaemia a diagnosis needs two abnormal results',
        ...(facts.flag('pregnant') ? ['HbA1c is unreliable in the second and third trimesters'] : []),
      ],
      mitigation: status === 'normal' ? 'Rescreen per ADA (every 3 years from 35, sooner with risk factors).' : status === 'prediabetes' ? 'Lifestyle programme (≥7% weight loss, 150 min/week activity); test yearly.' : 'Repeat HbA1c or FPG to confirm; clinician review.',
    };
  },
};

/** FINDRISC bands: estimated 10-year risk of type 2 diabetes. */
const FINDRISC_BANDS: [number, NonNullable<InstrumentResult['category']>, number][] = [
  [6, { code: 'low', display: 'Low (<7 points): about 1 in 100', risk: 'low' }, 0.01],
  [11, { code: 'slightly-elevated', display: 'Slightly elevated (7–11): about 1 in 25', risk: 'low' }, 0.04],
  [14, { code: 'moderate', display: 'Moderate (12–14): about 1 in 6', risk: 'moderate' }, 1 / 6],
  [20, { code: 'high', display: 'High (15–20): about 1 in 3', risk: 'high' }, 1 / 3],
  [26, { code: 'very-high', display: 'Very high (>20): about 1 in 2', risk: 'high' }, 0.5],
];

export const findrisc: Instrument = {
  model: 'findrisc',
  version: 'FINDRISC 0–26 (Lindström & Tuomilehto 2003; public form)',
  title: 'Finnish Diabetes Risk Score',
  condition: 'diabetes',
  inputs: ['age', 'male', 'bmi', 'waist', 'physically_active', 'daily_vegetables', 'antihypertensive', 'antihypertensive_ever', 'high_glucose_history', 'family_diabetes', 'diabetes'],
  assess(facts: Facts) {
    if (facts.flag('diabetes')) return withoutNumber('not_applicable', T2DM, 'Diabetes is already diagnosed (active Condition)');
    const age = facts.num('age');
    const bmi = facts.num('bmi');
    const waist = facts.num('waist');
    const active = facts.answer('physically_active');
    const vegetables = facts.answer('daily_vegetables');
    const glucose = facts.answer('high_glucose_history');
    const family = facts.code('family_diabetes');
    const bpMeds = facts.flag('antihypertensive') || facts.inputs.get('antihypertensive_ever')?.value === 1;
    if (age === undefined || bmi === undefined || waist === undefined || active === undefined || vegetables === undefined || glucose === undefined || family === undefined) {
      return withoutNumber('insufficient_data', T2DM, missingReason(facts));
    }
    const male = facts.flag('male');
    const items: Contribution[] = [
      { input: 'age', value: age, contribution: age < 45 ? 0 : age < 55 ? 2 : age < 65 ? 3 : 4 },
      { input: 'bmi', value: bmi, contribution: bmi < 25 ? 0 : bmi <= 30 ? 1 : 3 },
      { input: 'waist', value: waist, contribution: male ? (waist < 94 ? 0 : waist <= 102 ? 3 : 4) : waist < 80 ? 0 : waist <= 88 ? 3 : 4 },
      { input: 'physically_active', value: active ? 'yes' : 'no', contribution: active ? 0 : 2 },
      { input: 'daily_vegetables', value: vegetables ? 'yes' : 'no', contribution: vegetables ? 0 : 1 },
      { input: 'antihypertensive', value: bpMeds ? 'yes' : 'no', contribution: bpMeds ? 2 : 0 },
      { input: 'high_glucose_history', value: glucose ? 'yes' : 'no', contribution: glucose ? 5 : 0 },
      { input: 'family_diabetes', value: family, contribution: family === 'first-degree' ? 5 : family === 'second-degree' ? 3 : 0 },
    ];
    const score = items.reduce((s, i) => s + i.contribution, 0);
    const [, category, risk] = FINDRISC_BANDS.find(([max]) => score <= max)!;
    return {
      status: 'ok',
      outcome: T2DM,
      horizonYears: 10,
      probability: risk,
      score: { value: score, display: 'FINDRISC points (0–26)' },
      category,
      thresholds: '<7 low, 7–11 slightly elevated, 12–14 moderate, 15–20 high, >20 very high; the probability is the band’s published estimate',
      intervalNote: 'A points score whose bands carry approximate published risks: no interval.',
      explanation: { method: 'points per item', scale: 'points', baseline: 0, contributions: items },
      warnings: ['Derived in a Finnish population; the outcome was drug-treated diabetes'],
      mitigation: score >= 12 ? 'Test HbA1c or fasting glucose; structured lifestyle programme.' : 'Healthy diet and activity; reassess in 3 years.',
    };
  },
};

export const adaRiskTest: Instrument = {
  model: 'ada-risk-test',
  version: 'ADA Risk Test (Bang 2009, ADA version with gestational diabetes)',
  title: 'ADA Type 2 Diabetes Risk Test',
  condition: 'diabetes',
  inputs: ['age', 'male', 'gestational_diabetes', 'family_diabetes', 'hypertension', 'antihypertensive', 'physically_active', 'bmi', 'diabetes'],
  assess(facts: Facts) {
    if (facts.flag('diabetes')) return withoutNumber('not_applicable', T2DM, 'Diabetes is already diagnosed (active Condition)');
    const age = facts.num('age');
    const bmi = facts.num('bmi');
    const active = facts.answer('physically_active');
    const family = facts.code('family_diabetes');
    const male = facts.flag('male');
    const gestational = male ? false : facts.answer('gestational_diabetes');
    if (age === undefined || bmi === undefined || active === undefined || family === undefined || gestational === undefined) {
      return withoutNumber('insufficient_data', T2DM, missingReason(facts));
    }
    const hypertension = facts.flag('hypertension') || facts.flag('antihypertensive');
    const items: Contribution[] = [
      { input: 'age', value: age, contribution: age < 40 ? 0 : age < 50 ? 1 : age < 60 ? 2 : 3 },
      { input: 'male', value: male ? 'male' : 'female', contribution: male ? 1 : 0 },
      { input: 'gestational_diabetes', value: gestational ? 'yes' : 'no', contribution: gestational ? 1 : 0 },
      { input: 'family_diabetes', value: family, contribution: family === 'first-degree' ? 1 : 0 },
      { input: 'hypertension', value: hypertension ? 'yes' : 'no', contribution: hypertension ? 1 : 0 },
      { input: 'physically_active', value: active ? 'yes' : 'no', contribution: active ? 0 : 1 },
      { input: 'bmi', value: bmi, contribution: bmi < 25 ? 0 : bmi < 30 ? 1 : bmi < 40 ? 2 : 3 },
    ];
    const score = items.reduce((s, i) => s + i.contribution, 0);
    return {
      status: 'ok',
      outcome: T2DM,
      score: { value: score, display: 'ADA Risk Test points (0–11)' },
      category: score >= 5 ? { code: 'high', display: 'High risk (≥5): test for diabetes', risk: 'high' } : { code: 'low', display: 'Lower risk (<5)', risk: 'low' },
      thresholds: '≥5 points: at increased risk of undiagnosed type 2 diabetes (Bang 2009)',
      intervalNote: 'A points score: no interval.',
      explanation: { method: 'points per item', scale: 'points', baseline: 0, contributions: items },
      mitigation: score >= 5 ? 'Test HbA1c or fasting plasma glucose.' : undefined,
    };
  },
};
