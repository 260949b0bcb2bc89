/** Anaemia: WHO 2024 haemoglobin cut-offs by age, sex and pregnancy, with WHO severity bands. */
import type { Facts } from '../../../src/risk/assessment.js';
import { type Instrument, type InstrumentResult, missingReason, SNOMED, withoutNumber } from './instrument.js';

const ANAEMIA = { system: SNOMED, code: '271737000', display: 'Anemia' };

/** [population, anaemia below (g/L), mild from, moderate from, severe below] */
interface Band {
  population: string;
  cutoff: number;
  moderateBelow: number;
  severeBelow: number;
}

export function whoBand(ageYears: number, male: boolean, pregnant: boolean): Band | undefined {
  if (ageYears < 0.5) return undefined;
  if (pregnant) return { population: 'pregnant (trimester not recorded: 110 g/L)', cutoff: 110, moderateBelow: 100, severeBelow: 70 };
  if (ageYears < 2) return { population: 'children 6–23 months', cutoff: 105, moderateBelow: 95, severeBelow: 70 };
  if (ageYears < 5) return { population: 'children 24–59 months', cutoff: 110, moderateBelow: 100, severeBelow: 70 };
  if (ageYears < 12) return { population: 'children 5–11 years', cutoff: 115, moderateBelow: 110, severeBelow: 80 };
  if (ageYears < 15) return { population: 'children 12–14 years', cutoff: 120, moderateBelow: 110, severeBelow: 80 };
  return male
    ? { population: 'men 15 years and over', cutoff: 130, moderateBelow: 110, severeBelow: 80 }
    : { population: 'non-pregnant women 15 years and over', cutoff: 120, moderateBelow: 110, severeBelow: 80 };
}

export function whoSeverity(hbGPerL: number, band: Band): 'none' | 'mild' | 'moderate' | 'severe' {
  if (hbGPerL >= band.cutoff) return 'none';
  if (hbGPerL >= band.moderateBelow) return 'mild';
  if (hbGPerL >= band.severeBelow) return 'moderate';
  return 'severe';
}

const CATEGORY: Record<ReturnType<typeof whoSeverity>, NonNullable<InstrumentResult['category']>> = {
  none: { code: 'none', display: 'No anaemia', risk: 'low' },
  mild: { code: 'mild', display: 'Mild anaemia', risk: 'moderate' },
  moderate: { code: 'moderate', display: 'Moderate anaemia', risk: 'high' },
  severe: { code: 'severe', display: 'Severe anaemia', risk: 'high' },
};

export const whoAnaemia: Instrument = {
  model: 'who-anaemia',
  version: 'WHO 2024 haemoglobin cut-offs; WHO 2011 severity bands',
  title: 'Anaemia by WHO haemoglobin thresholds',
  condition: 'anaemia',
  inputs: ['age', 'male', 'pregnant', 'hb', 'smoker'],
  assess(facts: Facts) {
    const age = facts.num('age');
    const hb = facts.num('hb');
    if (age === undefined || hb === undefined) return withoutNumber('insufficient_data', ANAEMIA, missingReason(facts));
    const band = whoBand(age, facts.flag('male'), facts.flag('pregnant'));
    if (!band) return withoutNumber('not_applicable', ANAEMIA, 'WHO cut-offs start at 6 months of age');
    const gPerL = hb * 10;
    const severity = whoSeverity(gPerL, band);
    return {
      status: 'ok',
      outcome: ANAEMIA,
      score: { value: hb, display: 'Haemoglobin g/dL' },
      category: CATEGORY[severity],
      thresholds: `${band.population}: anaemia below ${band.cutoff} g/L; mild ${band.moderateBelow}–${band.cutoff - 1}, moderate ${band.severeBelow}–${band.moderateBelow - 1}, severe below ${band.severeBelow} g/L`,
      intervalNote: 'A classification of a measured value: no interval.',
      details: [{ name: 'population', value: band.population }, { name: 'cutoff', value: band.cutoff, unit: 'g/L' }],
      warnings: [
        ...(facts.flag('smoker') ? ['Smokers: WHO recommends a smoking adjustment of the cut-off (not applied: pack-years are not recorded)'] : []),
        'No altitude adjustment is applied (residence altitude is not recorded)',
      ],
      mitigation: severity === 'none' ? undefined : 'Investigate the cause: MCV, ferritin, B12/folate, CRP; severe anaemia needs same-day clinical review.',
    };
  },
};
