/**
 * Chronic kidney disease: CKD-EPI 2021 creatinine eGFR (Inker 2021) with KDIGO 2012/2024 G and A
 * categories and heat-map risk, and the 4-variable Kidney Failure Risk Equation (Tangri 2011/2016).
 */
import { baselineShapley, type Facts } from '../../../src/risk/assessment.js';
import { type Instrument, type InstrumentResult, missingReason, NO_INTERVAL, round, SNOMED, withoutNumber } from './instrument.js';

export const CKD_OUTCOME = { system: SNOMED, code: '709044004', display: 'Chronic kidney disease' };
const KIDNEY_FAILURE = { system: SNOMED, code: '42399005', display: 'Renal failure syndrome' };

/** eGFR (mL/min/1.73 m²) from IDMS-traceable serum creatinine in mg/dL. */
export function ckdEpi2021(creatinine: number, age: number, female: boolean): number {
  const kappa = female ? 0.7 : 0.9;
  const alpha = female ? -0.241 : -0.302;
  const ratio = creatinine / kappa;
  return 142 * Math.min(ratio, 1) ** alpha * Math.max(ratio, 1) ** -1.2 * 0.9938 ** age * (female ? 1.012 : 1);
}

/** eGFR as the equations need it: a CKD-EPI 2021 result, else computed from creatinine, age and sex. */
export function egfrOf(facts: Facts): number | undefined {
  if (facts.has('egfr')) return facts.num('egfr');
  const creatinine = facts.num('creatinine');
  const age = facts.num('age');
  if (creatinine === undefined || age === undefined) {
    facts.missing.delete('creatinine');
    facts.missing.add('egfr (or creatinine)');
    return undefined;
  }
  return ckdEpi2021(creatinine, age, !facts.flag('male'));
}

export function gCategory(egfr: number): string {
  if (egfr >= 90) return 'G1';
  if (egfr >= 60) return 'G2';
  if (egfr >= 45) return 'G3a';
  if (egfr >= 30) return 'G3b';
  if (egfr >= 15) return 'G4';
  return 'G5';
}

export function aCategory(uacrMgPerG: number): string {
  if (uacrMgPerG < 30) return 'A1';
  if (uacrMgPerG <= 300) return 'A2';
  return 'A3';
}

type HeatMap = 'green' | 'yellow' | 'orange' | 'red';
/** KDIGO prognosis heat map: rows G1–G2, G3a, G3b, G4–G5; columns A1, A2, A3. */
const HEAT_MAP: Record<string, [HeatMap, HeatMap, HeatMap]> = {
  G1: ['green', 'yellow', 'orange'],
  G2: ['green', 'yellow', 'orange'],
  G3a: ['yellow', 'orange', 'red'],
  G3b: ['orange', 'red', 'red'],
  G4: ['red', 'red', 'red'],
  G5: ['red', 'red', 'red'],
};
const HEAT_CATEGORY: Record<HeatMap, NonNullable<InstrumentResult['category']>> = {
  green: { code: 'low', display: 'Low risk (green; no CKD if no other marker of kidney damage)', risk: 'low' },
  yellow: { code: 'moderately-increased', display: 'Moderately increased risk (yellow)', risk: 'moderate' },
  orange: { code: 'high', display: 'High risk (orange)', risk: 'high' },
  red: { code: 'very-high', display: 'Very high risk (red)', risk: 'high' },
};

export const ckdEpi: Instrument = {
  model: 'ckd-epi-2021',
  version: 'CKD-EPI 2021 creatinine; KDIGO 2024 categories',
  title: 'eGFR (CKD-EPI 2021) with KDIGO G/A staging',
  condition: 'ckd',
  inputs: ['age', 'male', 'egfr', 'creatinine', 'uacr'],
  assess(facts: Facts) {
    const age = facts.num('age');
    const egfr = egfrOf(facts);
    if (age === undefined || egfr === undefined) {
      return withoutNumber('insufficient_data', CKD_OUTCOME, missingReason(facts));
    }
    if (age < 18) return withoutNumber('not_applicable', CKD_OUTCOME, 'CKD-EPI 2021 is for adults (18 years and over)');
    const uacr = facts.has('uacr') ? facts.num('uacr') : undefined;
    const g = gCategory(egfr);
    const a = uacr === undefined ? undefined : aCategory(uacr);
    const colour = HEAT_MAP[g][a === undefined ? 0 : Number(a[1]) - 1];
    const persistent = persistence(facts, !facts.has('egfr'));
    const warnings = [
      ...(a === undefined ? ['No urine albumin/creatinine ratio: the A category is unknown and the heat map assumes A1'] : []),
      ...(persistent ? [] : ['CKD needs abnormal results persisting more than 3 months; no earlier result at least 90 days before confirms it']),
    ];
    return {
      status: 'ok',
      outcome: CKD_OUTCOME,
      score: { value: round(egfr, 1), display: 'eGFR mL/min/1.73 m²' },
      category: HEAT_CATEGORY[colour],
      thresholds: 'KDIGO G1 ≥90, G2 60–89, G3a 45–59, G3b 30–44, G4 15–29, G5 <15; A1 <30, A2 30–300, A3 >300 mg/g; risk from the KDIGO heat map',
      intervalNote: 'eGFR carries the equation’s own error (P30 ≈ 90%); no interval is given for the category.',
      details: [
        { name: 'egfr', value: round(egfr, 1), unit: 'mL/min/{1.73_m2}' },
        { name: 'gfr-category', value: g },
        ...(a === undefined ? [] : [{ name: 'albuminuria-category', value: a }]),
        { name: 'heat-map', value: colour },
        { name: 'persistent-over-3-months', value: persistent ? 'yes' : 'unconfirmed' },
      ],
      warnings,
      mitigation: colour === 'green' ? 'Routine monitoring.' : 'Monitor eGFR and UACR per KDIGO; review BP, glycaemia and nephrotoxic drugs; consider ACE inhibitor/ARB and SGLT2 inhibitor per KDIGO 2024.',
    };
  },
};

/** Whether an abnormal result (eGFR <60 or UACR ≥30) is confirmed by another at least 90 days earlier. */
function persistence(facts: Facts, fromCreatinine: boolean): boolean {
  const series = facts.inputs.get(fromCreatinine ? 'creatinine' : 'egfr')?.series ?? [];
  const age = facts.inputs.get('age')?.value as number;
  const female = !facts.flag('male');
  const egfrs = series.map((s) => ({ date: s.date, egfr: fromCreatinine ? ckdEpi2021(s.value, age, female) : s.value }));
  const abnormal = egfrs.filter((e) => e.egfr < 60 && e.date);
  if (abnormal.length >= 2 && Date.parse(abnormal[0].date!) - Date.parse(abnormal[abnormal.length - 1].date!) >= 90 * 86_400_000) return true;
  const uacr = (facts.inputs.get('uacr')?.series ?? []).filter((s) => s.value >= 30 && s.date);
  return uacr.length >= 2 && Date.parse(uacr[0].date!) - Date.parse(uacr[uacr.length - 1].date!) >= 90 * 86_400_000;
}

/** KFRE 4-variable linear predictor (Tangri 2011), centred as published. */
export function kfreLinear(x: { age: number; male: number; egfr: number; uacr: number }): number {
  return -0.2201 * (x.age / 10 - 7.036) + 0.2467 * (x.male - 0.5642) - 0.5567 * (x.egfr / 5 - 7.222) + 0.451 * (Math.log(x.uacr) - 5.137);
}

/** Baseline survival, North American calibration (Tangri 2016). */
export const KFRE_S0 = { 2: 0.975, 5: 0.924 } as const;

export function kfre(x: { age: number; male: number; egfr: number; uacr: number }, years: 2 | 5): number {
  return 1 - KFRE_S0[years] ** Math.exp(kfreLinear(x));
}

export const kfre4: Instrument = {
  model: 'kfre-4v',
  version: '4-variable, North American calibration (Tangri 2011/2016)',
  title: 'Kidney Failure Risk Equation (4-variable), 5-year',
  condition: 'ckd',
  inputs: ['age', 'male', 'egfr', 'creatinine', 'uacr'],
  assess(facts: Facts) {
    const age = facts.num('age');
    const egfr = egfrOf(facts);
    const uacr = facts.num('uacr');
    if (age === undefined || uacr === undefined || egfr === undefined) {
      return withoutNumber('insufficient_data', KIDNEY_FAILURE, missingReason(facts), { intervalNote: NO_INTERVAL });
    }
    if (egfr >= 60) {
      return withoutNumber('not_applicable', KIDNEY_FAILURE, `KFRE is validated for CKD G3a–G5 (eGFR <60); eGFR is ${round(egfr, 1)}`);
    }
    const x = { age, male: facts.flag('male') ? 1 : 0, egfr, uacr: Math.max(uacr, 0.1) };
    const five = kfre(x, 5);
    const two = kfre(x, 2);
    const explained = baselineShapley((v) => kfreLinear({ ...x, ...v }), { egfr: x.egfr, uacr: x.uacr }, { egfr: 45, uacr: 10 });
    const category: NonNullable<InstrumentResult['category']> =
      five > 0.05 ? { code: 'high', display: 'High (5-year risk >5%: refer to nephrology, NICE NG203)', risk: 'high' }
        : five >= 0.03 ? { code: 'moderate', display: 'Moderate (5-year risk 3–5%: consider referral, KDIGO 2024)', risk: 'moderate' }
          : { code: 'low', display: 'Low (5-year risk <3%)', risk: 'low' };
    return {
      status: 'ok',
      outcome: KIDNEY_FAILURE,
      horizonYears: 5,
      probability: five,
      category,
      thresholds: '5-year risk <3% low, 3–5% moderate (KDIGO 2024: consider nephrology referral), >5% high (NICE NG203: refer); the 2-year risk is in the details',
      intervalNote: NO_INTERVAL,
      explanation: {
        method: 'baseline Shapley against the same age and sex with eGFR 45 and UACR 10 mg/g',
        scale: 'log-hazard',
        baseline: explained.baseline,
        contributions: Object.entries(explained.contributions).map(([input, contribution]) => ({ input, value: x[input as 'egfr' | 'uacr'], contribution })),
      },
      details: [
        { name: 'kfre-2yr', value: round(two, 4), unit: '1' },
        { name: 'kfre-5yr', value: round(five, 4), unit: '1' },
        { name: 'egfr-used', value: round(egfr, 1), unit: 'mL/min/{1.73_m2}' },
      ],
      warnings: ['The outcome is treated kidney failure without the competing risk of death: it overestimates risk in older, frail people'],
      mitigation: five > 0.05 ? 'Refer to nephrology (NICE NG203).' : five >= 0.03 ? 'Discuss nephrology referral (KDIGO 2024).' : 'Continue CKD care in primary care.',
    };
  },
};
