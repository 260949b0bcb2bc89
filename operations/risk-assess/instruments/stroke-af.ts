/** Stroke risk in atrial fibrillation: CHA2DS2-VASc (Lip 2010), with the ESC 2024 CHA2DS2-VA in details. */
import type { Contribution, Facts } from '../../../src/risk/assessment.js';
import { STROKE_OUTCOME } from './cardiovascular.js';
import { type Instrument, type InstrumentResult, missingReason, withoutNumber } from './instrument.js';

/** Adjusted annual stroke/thromboembolism rate by score (Lip et al. cohort as tabulated in the ESC 2010 AF guideline). */
const ANNUAL_RATE = [0, 0.013, 0.022, 0.032, 0.04, 0.067, 0.098, 0.096, 0.067, 0.152];

export function cha2ds2vasc(x: { age: number; female: boolean; hf: boolean; hypertension: boolean; diabetes: boolean; strokeTia: boolean; vascular: boolean }): Contribution[] {
  return [
    { input: 'hf', value: x.hf ? 'yes' : 'no', contribution: x.hf ? 1 : 0 },
    { input: 'hypertension', value: x.hypertension ? 'yes' : 'no', contribution: x.hypertension ? 1 : 0 },
    { input: 'age', value: x.age, contribution: x.age >= 75 ? 2 : x.age >= 65 ? 1 : 0 },
    { input: 'diabetes', value: x.diabetes ? 'yes' : 'no', contribution: x.diabetes ? 1 : 0 },
    { input: 'stroke_tia', value: x.strokeTia ? 'yes' : 'no', contribution: x.strokeTia ? 2 : 0 },
    { input: 'vascular', value: x.vascular ? 'yes' : 'no', contribution: x.vascular ? 1 : 0 },
    { input: 'male', value: x.female ? 'female' : 'male', contribution: x.female ? 1 : 0 },
  ];
}

export const cha2ds2vascInstrument: Instrument = {
  model: 'cha2ds2-vasc',
  version: 'Lip 2010; ACC/AHA/ACCP/HRS 2023 thresholds',
  title: 'CHA2DS2-VASc stroke risk in atrial fibrillation',
  condition: 'stroke',
  inputs: ['af', 'age', 'male', 'hf', 'hypertension', 'antihypertensive', 'diabetes', 'stroke_tia', 'vascular'],
  assess(facts: Facts) {
    if (!facts.flag('af')) return withoutNumber('not_applicable', STROKE_OUTCOME, 'CHA2DS2-VASc applies to atrial fibrillation, which is not recorded');
    const age = facts.num('age');
    if (age === undefined) return withoutNumber('insufficient_data', STROKE_OUTCOME, missingReason(facts));
    const female = !facts.flag('male');
    const items = cha2ds2vasc({
      age, female, hf: facts.flag('hf'), hypertension: facts.flag('hypertension') || facts.flag('antihypertensive'),
      diabetes: facts.flag('diabetes'), strokeTia: facts.flag('stroke_tia'), vascular: facts.flag('vascular'),
    });
    const score = items.reduce((s, i) => s + i.contribution, 0);
    const withoutSex = score - (female ? 1 : 0);
    const category: NonNullable<InstrumentResult['category']> =
      withoutSex >= 2 ? { code: 'high', display: 'Anticoagulation recommended (≥2 in men, ≥3 in women)', risk: 'high' }
        : withoutSex === 1 ? { code: 'intermediate', display: 'Intermediate: consider anticoagulation (1 in men, 2 in women)', risk: 'moderate' }
          : { code: 'low', display: 'Low (0 in men, 1 in women): no anticoagulation for stroke prevention', risk: 'low' };
    return {
      status: 'ok',
      outcome: STROKE_OUTCOME,
      horizonYears: 1,
      probability: ANNUAL_RATE[score],
      score: { value: score, display: 'CHA2DS2-VASc points (0–9)' },
      category,
      thresholds: 'Anticoagulate at an annual thromboembolic risk ≥2%: CHA2DS2-VASc ≥2 in men, ≥3 in women (ACC/AHA/ACCP/HRS 2023); the probability is the adjusted annual stroke/thromboembolism rate for the score (ESC 2010 table)',
      intervalNote: 'A points score mapped to cohort event rates: no interval.',
      explanation: { method: 'points per item', scale: 'points', baseline: 0, contributions: items },
      details: [{ name: 'cha2ds2-va', value: withoutSex }],
      warnings: ['Non-valvular AF only (exclude moderate–severe mitral stenosis and mechanical valves); assess bleeding risk separately'],
      mitigation: category.code === 'low' ? undefined : 'Discuss oral anticoagulation (DOAC preferred) against bleeding risk.',
    };
  },
};
