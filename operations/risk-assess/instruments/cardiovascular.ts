/**
 * 10-year cardiovascular risk: AHA PREVENT base equations (Khan 2024; primary) and the 2013 ACC/AHA
 * Pooled Cohort Equations (Goff 2014; kept for comparison). Coefficients transcribed from the
 * sources named in models/prevent-10yr/card.json and models/pce-ascvd/card.json.
 */
import { baselineShapley, type Facts, sigmoid } from '../../../src/risk/assessment.js';
import { egfrOf } from './kidney.js';
import { type Instrument, type InstrumentResult, missingReason, NO_INTERVAL, round, SNOMED, withoutNumber } from './instrument.js';

export const CVD_OUTCOME = { system: SNOMED, code: '49601007', display: 'Disorder of cardiovascular system' };
export const STROKE_OUTCOME = { system: SNOMED, code: '230690007', display: 'Cerebrovascular accident' };

/** 2018 AHA/ACC cholesterol guideline tiers for 10-year ASCVD risk. */
export function ascvdTier(p: number): NonNullable<InstrumentResult['category']> {
  if (p < 0.05) return { code: 'low', display: 'Low (<5%)', risk: 'low' };
  if (p < 0.075) return { code: 'borderline', display: 'Borderline (5–<7.5%)', risk: 'moderate' };
  if (p < 0.2) return { code: 'intermediate', display: 'Intermediate (7.5–<20%)', risk: 'moderate' };
  return { code: 'high', display: 'High (≥20%)', risk: 'high' };
}
export const ASCVD_TIERS = 'low <5%, borderline 5–<7.5%, intermediate 7.5–<20%, high ≥20% (2018 AHA/ACC cholesterol guideline)';

// ---- PREVENT ---------------------------------------------------------------------------------

type PreventOutcome = 'cvd' | 'ascvd' | 'hf' | 'chd' | 'stroke';
type Coefficients = readonly number[];
/**
 * Base 10-year model, [female, male] per outcome. Term order: age, non-HDL-C, HDL-C, SBP <110, SBP ≥110,
 * diabetes, smoking, BMI <30, BMI ≥30, eGFR <60, eGFR ≥60, antihypertensive, statin, treated SBP,
 * treated non-HDL-C, age × (non-HDL-C, HDL-C, SBP ≥110, diabetes, smoking, BMI ≥30, eGFR <60), constant.
 */
const PREVENT: Record<PreventOutcome, readonly [Coefficients, Coefficients]> = {
  cvd: [
    [0.7939329, 0.0305239, -0.1606857, -0.2394003, 0.3600781, 0.8667604, 0.5360739, 0, 0, 0.6045917, 0.0433769, 0.3151672, -0.1477655, -0.0663612, 0.1197879, -0.0819715, 0.0306769, -0.0946348, -0.27057, -0.078715, 0, -0.1637806, -3.307728],
    [0.7688528, 0.0736174, -0.0954431, -0.4347345, 0.3362658, 0.7692857, 0.4386871, 0, 0, 0.5378979, 0.0164827, 0.288879, -0.1337349, -0.0475924, 0.150273, -0.0517874, 0.0191169, -0.1049477, -0.2251948, -0.0895067, 0, -0.1543702, -3.031168],
  ],
  ascvd: [
    [0.719883, 0.1176967, -0.151185, -0.0835358, 0.3592852, 0.8348585, 0.4831078, 0, 0, 0.4864619, 0.0397779, 0.2265309, -0.0592374, -0.0395762, 0.0844423, -0.0567839, 0.0325692, -0.1035985, -0.2417542, -0.0791142, 0, -0.1671492, -3.819975],
    [0.7099847, 0.1658663, -0.1144285, -0.2837212, 0.3239977, 0.7189597, 0.3956973, 0, 0, 0.3690075, 0.0203619, 0.2036522, -0.0865581, -0.0322916, 0.114563, -0.0300005, 0.0232747, -0.0927024, -0.2018525, -0.0970527, 0, -0.1217081, -3.500655],
  ],
  hf: [
    [0.8998235, 0, 0, -0.4559771, 0.3576505, 1.038346, 0.583916, -0.0072294, 0.2997706, 0.7451638, 0.0557087, 0.3534442, 0, -0.0981511, 0, 0, 0, -0.0946663, -0.3581041, -0.1159453, -0.003878, -0.1884289, -4.310409],
    [0.8972642, 0, 0, -0.6811466, 0.3634461, 0.923776, 0.5023736, -0.0485841, 0.3726929, 0.6926917, 0.0251827, 0.2980922, 0, -0.0497731, 0, 0, 0, -0.1289201, -0.3040924, -0.1401688, 0.0068126, -0.1797778, -3.946391],
  ],
  chd: [
    [0.7587146, 0.1810949, -0.2014507, -0.0881827, 0.3547731, 0.9045358, 0.5410917, 0, 0, 0.5198725, 0.0325935, 0.2010642, -0.036195, -0.0891238, 0.0750716, -0.0683256, 0.0484755, -0.0898086, -0.2569041, -0.0786607, 0, -0.1597513, -4.608751],
    [0.7423283, 0.2572109, -0.1820374, -0.3174515, 0.312778, 0.7485249, 0.3912047, 0, 0, 0.376487, 0.0193687, 0.1588199, -0.0494555, -0.0577851, 0.0809765, -0.0517872, 0.0489033, -0.0850404, -0.2107552, -0.1206397, 0, -0.07795, -4.156753],
  ],
  stroke: [
    [0.6907849, 0.0534279, -0.1055109, -0.113078, 0.3665217, 0.8013721, 0.4187039, 0, 0, 0.4539767, 0.0515087, 0.2494624, -0.0798829, -0.0079039, 0.0833101, -0.0409242, 0.016994, -0.1191213, -0.2480549, -0.0998063, 0, -0.1759075, -4.409199],
    [0.722513, 0.0263348, -0.0248959, -0.268104, 0.3474634, 0.684699, 0.3874844, 0, 0, 0.3877827, 0.0201965, 0.232963, -0.1178935, 0.0120926, 0.155739, 0.0141928, -0.0111745, -0.1155391, -0.2123743, -0.0824133, 0, -0.180789, -4.20881],
  ],
};

export interface PreventInputs {
  female: boolean;
  age: number;
  tc: number;
  hdl: number;
  sbp: number;
  dm: number;
  smoking: number;
  egfr: number;
  bmi: number;
  antihtn: number;
  statin: number;
}

/** The PREVENT linear predictor (log-odds) for one outcome. */
export function preventLogOdds(outcome: PreventOutcome, x: PreventInputs): number {
  const c = PREVENT[outcome][x.female ? 0 : 1];
  const a = (x.age - 55) / 10;
  const nonHdl = (x.tc - x.hdl) * 0.02586 - 3.5;
  const hdl = (x.hdl * 0.02586 - 1.3) / 0.3;
  const sbpLow = (Math.min(x.sbp, 110) - 110) / 20;
  const sbpHigh = (Math.max(x.sbp, 110) - 130) / 20;
  const bmiLow = (Math.min(x.bmi, 30) - 25) / 5;
  const bmiHigh = (Math.max(x.bmi, 30) - 30) / 5;
  const egfrLow = (Math.min(x.egfr, 60) - 60) / -15;
  const egfrHigh = (Math.max(x.egfr, 60) - 90) / -15;
  const terms = [a, nonHdl, hdl, sbpLow, sbpHigh, x.dm, x.smoking, bmiLow, bmiHigh, egfrLow, egfrHigh, x.antihtn, x.statin,
    sbpHigh * x.antihtn, nonHdl * x.statin, a * nonHdl, a * hdl, a * sbpHigh, a * x.dm, a * x.smoking, a * bmiHigh, a * egfrLow, 1];
  return terms.reduce((sum, t, i) => sum + t * c[i], 0);
}

export function prevent(outcome: PreventOutcome, x: PreventInputs): number {
  return sigmoid(preventLogOdds(outcome, x));
}

/**
 * The inclusion ranges of the PREVENT equations as the preventr reference implementation enforces
 * them (eGFR 15–140 and BMI to 39.9, the narrower of preventr and the Stata port); SBP 181–200 is
 * inside the development range but preventr stops at 180, so it is accepted with a warning.
 */
const PREVENT_RANGES: Record<string, [number, number]> = { age: [30, 79], tc: [130, 320], hdl: [20, 100], sbp: [90, 200], bmi: [18.5, 39.9], egfr: [15, 140] };

function preventInstrument(outcome: 'ascvd' | 'stroke'): Instrument {
  const isStroke = outcome === 'stroke';
  return {
    model: 'prevent-10yr',
    version: 'base 10-year (Khan 2024)',
    title: isStroke ? 'AHA PREVENT 10-year stroke risk' : 'AHA PREVENT 10-year ASCVD risk',
    condition: isStroke ? 'stroke' : 'cardiovascular',
    inputs: ['age', 'male', 'tc', 'hdl', 'sbp', 'bmi', 'egfr', 'creatinine', 'diabetes', 'hba1c', 'smoker', 'antihypertensive', 'statin', 'vascular', 'stroke_tia'],
    assess(facts) {
      const outcomeCode = isStroke ? STROKE_OUTCOME : CVD_OUTCOME;
      const age = facts.num('age');
      const tc = facts.num('tc');
      const hdl = facts.num('hdl');
      const sbp = facts.num('sbp');
      const egfr = egfrOf(facts);
      const bmi = facts.has('bmi') ? facts.num('bmi')! : 25; // BMI enters only the HF model, reported in details
      if (age === undefined || tc === undefined || hdl === undefined || sbp === undefined || egfr === undefined) {
        return withoutNumber('insufficient_data', outcomeCode, missingReason(facts), { intervalNote: NO_INTERVAL });
      }
      if (facts.flag('vascular') || facts.flag('stroke_tia')) {
        return withoutNumber('not_applicable', outcomeCode, 'PREVENT is for people without known cardiovascular disease (prior MI, stroke/TIA or PAD is recorded)');
      }
      const values = { age, tc, hdl, sbp, bmi, egfr };
      const outside = Object.entries(PREVENT_RANGES)
        .filter(([k]) => k !== 'bmi' || facts.has('bmi'))
        .filter(([k, [lo, hi]]) => values[k as keyof typeof values] < lo || values[k as keyof typeof values] > hi);
      if (outside.length > 0) {
        return withoutNumber('not_applicable', outcomeCode,
          `Outside the range PREVENT was developed on: ${outside.map(([k, [lo, hi]]) => `${k} ${round(values[k as keyof typeof values], 1)} (valid ${lo}–${hi})`).join(', ')}`);
      }
      const dm = facts.flag('diabetes') || (facts.num('hba1c') ?? 0) >= 6.5 ? 1 : 0;
      facts.missing.delete('hba1c');
      const x: PreventInputs = { female: !facts.flag('male'), age, tc, hdl, sbp, dm, smoking: facts.flag('smoker') ? 1 : 0, egfr, bmi,
        antihtn: facts.flag('antihypertensive') ? 1 : 0, statin: facts.flag('statin') ? 1 : 0 };
      const p = prevent(outcome, x);
      // Reference: same age and sex with optimal risk factors.
      const reference = { tc: 170, hdl: 50, sbp: 110, dm: 0, smoking: 0, egfr: 90, antihtn: 0, statin: 0 };
      const explained = baselineShapley(
        (v) => preventLogOdds(outcome, { ...x, ...v }),
        { tc, hdl, sbp, dm: x.dm, smoking: x.smoking, egfr, antihtn: x.antihtn, statin: x.statin },
        reference,
      );
      const details = (['cvd', 'ascvd', 'hf', 'chd', 'stroke'] as const).map((o) => ({ name: `prevent-${o}-10yr`, value: round(prevent(o, x), 4), unit: '1' }));
      const warnings = [
        ...(facts.has('bmi') ? [] : ['BMI missing: the heart-failure detail uses BMI 25']),
        ...(sbp > 180 ? ['SBP above 180 mmHg: inside the development range, but hypertensive urgency needs assessment first (preventr refuses it)'] : []),
      ];
      return {
        status: 'ok',
        outcome: outcomeCode,
        horizonYears: 10,
        probability: p,
        category: isStroke ? strokeTier(p) : ascvdTier(p),
        thresholds: isStroke ? 'low <3%, moderate 3–<10%, high ≥10% (carelens display bands; no guideline tiers exist for PREVENT stroke)' : ASCVD_TIERS,
        intervalNote: NO_INTERVAL,
        explanation: {
          method: 'baseline Shapley against the same age and sex with TC 170, HDL 50, SBP 110 untreated, eGFR 90, no diabetes, non-smoker, no statin',
          scale: 'log-odds',
          baseline: explained.baseline,
          contributions: Object.entries(explained.contributions).map(([input, contribution]) => ({ input, value: (x as unknown as Record<string, number>)[input], contribution })),
        },
        details: [...details, { name: 'egfr-used', value: round(egfr, 1), unit: 'mL/min/{1.73_m2}' }],
        warnings,
        mitigation: 'Discuss blood pressure, lipids, smoking, activity and weight; risk-based statin and antihypertensive decisions per the 2019 ACC/AHA primary-prevention guideline.',
      };
    },
  };
}

function strokeTier(p: number): NonNullable<InstrumentResult['category']> {
  if (p < 0.03) return { code: 'low', display: 'Low (<3%)', risk: 'low' };
  if (p < 0.1) return { code: 'moderate', display: 'Moderate (3–<10%)', risk: 'moderate' };
  return { code: 'high', display: 'High (≥10%)', risk: 'high' };
}

export const preventAscvd = preventInstrument('ascvd');
export const preventStroke = preventInstrument('stroke');

// ---- Pooled Cohort Equations -----------------------------------------------------------------

interface PceCoefficients {
  lnAge: number; lnAge2: number; lnTc: number; lnAgeTc: number; lnHdl: number; lnAgeHdl: number;
  lnTsbp: number; lnAgeTsbp: number; lnUsbp: number; lnAgeUsbp: number; smoker: number; lnAgeSmoker: number; dm: number;
  mean: number; s10: number;
}
/** Table A of Goff 2014 with the ACC estimator's full-precision group means, baseline survivals and African-American female coefficients. */
const PCE: Record<'whiteFemale' | 'blackFemale' | 'whiteMale' | 'blackMale', PceCoefficients> = {
  whiteFemale: { lnAge: -29.799, lnAge2: 4.884, lnTc: 13.54, lnAgeTc: -3.114, lnHdl: -13.578, lnAgeHdl: 3.149, lnTsbp: 2.019, lnAgeTsbp: 0, lnUsbp: 1.957, lnAgeUsbp: 0, smoker: 7.574, lnAgeSmoker: -1.665, dm: 0.661, mean: -29.1817, s10: 0.96652 },
  blackFemale: { lnAge: 17.1141, lnAge2: 0, lnTc: 0.9396, lnAgeTc: 0, lnHdl: -18.9196, lnAgeHdl: 4.4748, lnTsbp: 29.2907, lnAgeTsbp: -6.4321, lnUsbp: 27.8197, lnAgeUsbp: -6.0873, smoker: 0.6908, lnAgeSmoker: 0, dm: 0.8738, mean: 86.6081, s10: 0.95334 },
  whiteMale: { lnAge: 12.344, lnAge2: 0, lnTc: 11.853, lnAgeTc: -2.664, lnHdl: -7.99, lnAgeHdl: 1.769, lnTsbp: 1.797, lnAgeTsbp: 0, lnUsbp: 1.764, lnAgeUsbp: 0, smoker: 7.837, lnAgeSmoker: -1.795, dm: 0.658, mean: 61.1816, s10: 0.91436 },
  blackMale: { lnAge: 2.469, lnAge2: 0, lnTc: 0.302, lnAgeTc: 0, lnHdl: -0.307, lnAgeHdl: 0, lnTsbp: 1.916, lnAgeTsbp: 0, lnUsbp: 1.809, lnAgeUsbp: 0, smoker: 0.549, lnAgeSmoker: 0, dm: 0.645, mean: 19.5425, s10: 0.89536 },
};

export interface PceInputs {
  female: boolean;
  black: boolean;
  age: number;
  tc: number;
  hdl: number;
  sbp: number;
  treated: number;
  smoker: number;
  dm: number;
}

/** The PCE individual sum minus the group mean: the log of the hazard ratio against the average. */
export function pceLogHazard(x: PceInputs): number {
  const c = PCE[`${x.black ? 'black' : 'white'}${x.female ? 'Female' : 'Male'}`];
  const la = Math.log(x.age);
  const sbp = Math.log(x.sbp);
  const sum =
    c.lnAge * la + c.lnAge2 * la * la + c.lnTc * Math.log(x.tc) + c.lnAgeTc * la * Math.log(x.tc) + c.lnHdl * Math.log(x.hdl) + c.lnAgeHdl * la * Math.log(x.hdl) +
    x.treated * (c.lnTsbp * sbp + c.lnAgeTsbp * la * sbp) + (1 - x.treated) * (c.lnUsbp * sbp + c.lnAgeUsbp * la * sbp) +
    c.smoker * x.smoker + c.lnAgeSmoker * la * x.smoker + c.dm * x.dm;
  return sum - c.mean;
}

export function pce(x: PceInputs): number {
  const c = PCE[`${x.black ? 'black' : 'white'}${x.female ? 'Female' : 'Male'}`];
  return 1 - c.s10 ** Math.exp(pceLogHazard(x));
}

const PCE_RANGES: Record<string, [number, number]> = { age: [40, 79], tc: [130, 320], hdl: [20, 100], sbp: [90, 200] };

export const pceAscvd: Instrument = {
  model: 'pce-ascvd',
  version: '2013 (Goff 2014, Table A)',
  title: 'ACC/AHA Pooled Cohort Equations, 10-year hard ASCVD',
  condition: 'cardiovascular',
  inputs: ['age', 'male', 'black', 'tc', 'hdl', 'sbp', 'antihypertensive', 'smoker', 'diabetes', 'vascular', 'stroke_tia'],
  assess(facts) {
    const age = facts.num('age');
    const tc = facts.num('tc');
    const hdl = facts.num('hdl');
    const sbp = facts.num('sbp');
    if (age === undefined || tc === undefined || hdl === undefined || sbp === undefined) {
      return withoutNumber('insufficient_data', CVD_OUTCOME, missingReason(facts), { intervalNote: NO_INTERVAL });
    }
    if (facts.flag('vascular') || facts.flag('stroke_tia')) {
      return withoutNumber('not_applicable', CVD_OUTCOME, 'The PCE are for primary prevention: clinical ASCVD is recorded');
    }
    const values: Record<string, number> = { age, tc, hdl, sbp };
    const outside = Object.entries(PCE_RANGES).filter(([k, [lo, hi]]) => values[k] < lo || values[k] > hi);
    if (outside.length > 0) {
      return withoutNumber('not_applicable', CVD_OUTCOME, `Outside the range the PCE accept: ${outside.map(([k, [lo, hi]]) => `${k} ${round(values[k], 1)} (valid ${lo}–${hi})`).join(', ')}`);
    }
    const x: PceInputs = { female: !facts.flag('male'), black: facts.flag('black'), age, tc, hdl, sbp,
      treated: facts.flag('antihypertensive') ? 1 : 0, smoker: facts.flag('smoker') ? 1 : 0, dm: facts.flag('diabetes') ? 1 : 0 };
    const p = pce(x);
    const explained = baselineShapley((v) => pceLogHazard({ ...x, ...v }), { tc, hdl, sbp, treated: x.treated, smoker: x.smoker, dm: x.dm },
      { tc: 170, hdl: 50, sbp: 110, treated: 0, smoker: 0, dm: 0 });
    const warnings = facts.flag('black') ? [] : ['Race-specific coefficients exist for White and African-American patients only; the White equations are used'];
    return {
      status: 'ok',
      outcome: CVD_OUTCOME,
      horizonYears: 10,
      probability: p,
      category: ascvdTier(p),
      thresholds: ASCVD_TIERS,
      intervalNote: NO_INTERVAL,
      explanation: {
        method: 'baseline Shapley against the same age, sex and race with TC 170, HDL 50, SBP 110 untreated, non-smoker, no diabetes',
        scale: 'log-hazard',
        baseline: explained.baseline,
        contributions: Object.entries(explained.contributions).map(([input, contribution]) => ({ input, value: (x as unknown as Record<string, number>)[input], contribution })),
      },
      warnings: [...warnings, 'The PCE overestimate risk in many contemporary cohorts; PREVENT is the primary cardiovascular answer'],
      mitigation: 'As PREVENT: risk-based statin and blood-pressure decisions; smoking cessation.',
    };
  },
};
