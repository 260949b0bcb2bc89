/** Liver fibrosis: FIB-4 (Sterling 2006; age ≥65 cut-off McPherson 2017) and APRI (Wai 2003). */
import type { Facts } from '../../../src/risk/assessment.js';
import { type Instrument, type InstrumentResult, missingReason, round, SNOMED, withoutNumber } from './instrument.js';

const FIBROSIS = { system: SNOMED, code: '62484002', display: 'Hepatic fibrosis' };

export function fib4(age: number, ast: number, alt: number, platelets: number): number {
  return (age * ast) / (platelets * Math.sqrt(alt));
}

export function apri(ast: number, astUpperLimit: number, platelets: number): number {
  return ((ast / astUpperLimit) * 100) / platelets;
}

export const fib4Instrument: Instrument = {
  model: 'fib4',
  version: 'Sterling 2006; MASLD cut-offs (AASLD 2023), age ≥65 low cut-off 2.0',
  title: 'FIB-4 index for advanced liver fibrosis',
  condition: 'liver',
  inputs: ['age', 'ast', 'alt', 'platelets'],
  assess(facts: Facts) {
    const age = facts.num('age');
    const ast = facts.num('ast');
    const alt = facts.num('alt');
    const platelets = facts.num('platelets');
    if (age === undefined || ast === undefined || alt === undefined || platelets === undefined) {
      return withoutNumber('insufficient_data', FIBROSIS, missingReason(facts));
    }
    if (age < 18) return withoutNumber('not_applicable', FIBROSIS, 'FIB-4 is validated in adults');
    const value = fib4(age, ast, alt, platelets);
    const low = age >= 65 ? 2.0 : 1.3;
    const category: NonNullable<InstrumentResult['category']> =
      value < low ? { code: 'low', display: `Low risk of advanced fibrosis (<${low})`, risk: 'low' }
        : value <= 2.67 ? { code: 'indeterminate', display: `Indeterminate (${low}–2.67): second-line test (elastography or ELF)`, risk: 'moderate' }
          : { code: 'high', display: 'High risk of advanced fibrosis (>2.67): hepatology referral', risk: 'high' };
    return {
      status: 'ok',
      outcome: FIBROSIS,
      score: { value: round(value, 2), display: 'FIB-4' },
      category,
      thresholds: '<1.30 low (<2.0 at age ≥65), 1.30–2.67 indeterminate, >2.67 high',
      intervalNote: 'A score, not a probability: no interval.',
      explanation: {
        method: 'log-additive: ln FIB-4 = ln age + ln AST − ln platelets − ½ ln ALT, each against a reference of age 50, AST 25, ALT 25, platelets 250',
        scale: 'log-score',
        baseline: Math.log(fib4(50, 25, 25, 250)),
        contributions: [
          { input: 'age', value: age, contribution: Math.log(age / 50) },
          { input: 'ast', value: ast, contribution: Math.log(ast / 25) },
          { input: 'alt', value: alt, contribution: -0.5 * Math.log(alt / 25) },
          { input: 'platelets', value: platelets, contribution: -Math.log(platelets / 250) },
        ],
      },
      warnings: [
        ...(age < 35 ? ['FIB-4 is unreliable under 35 years'] : []),
        'Acute hepatitis, other causes of raised aminotransferases and low platelets from other causes inflate the score',
      ],
      mitigation: category.code === 'low' ? 'Reassess in 1–3 years if risk factors persist.' : category.code === 'indeterminate' ? 'Arrange vibration-controlled transient elastography or ELF test.' : 'Refer to hepatology.',
    };
  },
};

export const apriInstrument: Instrument = {
  model: 'apri',
  version: 'Wai 2003 cut-offs',
  title: 'AST to Platelet Ratio Index',
  condition: 'liver',
  inputs: ['ast', 'platelets'],
  assess(facts: Facts) {
    const ast = facts.num('ast');
    const platelets = facts.num('platelets');
    if (ast === undefined || platelets === undefined) return withoutNumber('insufficient_data', FIBROSIS, missingReason(facts));
    const labUpper = facts.inputs.get('ast')?.referenceRange?.high;
    const upper = labUpper ?? 40;
    const value = apri(ast, upper, platelets);
    const category: NonNullable<InstrumentResult['category']> =
      value <= 0.5 ? { code: 'low', display: 'Significant fibrosis unlikely (≤0.5)', risk: 'low' }
        : value <= 1.5 ? { code: 'indeterminate', display: 'Indeterminate (0.5–1.5)', risk: 'moderate' }
          : { code: 'high', display: 'Significant fibrosis likely (>1.5)', risk: 'high' };
    return {
      status: 'ok',
      outcome: FIBROSIS,
      score: { value: round(value, 2), display: 'APRI' },
      category,
      thresholds: 'Significant fibrosis: ≤0.5 unlikely, >1.5 likely; cirrhosis: ≤1.0 unlikely, >2.0 likely (Wai 2003, derived in chronic hepatitis C)',
      intervalNote: 'A score, not a probability: no interval.',
      details: [{ name: 'ast-upper-limit-used', value: upper, unit: 'U/L' }, { name: 'cirrhosis', value: value > 2 ? 'likely (>2.0)' : value <= 1 ? 'unlikely (≤1.0)' : 'indeterminate (1.0–2.0)' }],
      warnings: labUpper === undefined ? ['The AST result has no reference range: an upper limit of 40 U/L was assumed'] : [],
      mitigation: value > 0.5 ? 'Confirm with elastography; assess for the cause of liver disease.' : 'No fibrosis work-up indicated by APRI alone.',
    };
  },
};
