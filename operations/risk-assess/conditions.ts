/** The conditions $risk-assess answers and the published instruments behind each (ML models join by their model.json condition). */
import { INSTRUMENTS } from './instruments/index.js';
import type { Instrument } from './instruments/instrument.js';

export const CONDITIONS = ['diabetes', 'cardiovascular', 'stroke', 'ckd', 'liver', 'anaemia', 'thyroid', 'breast-cancer'] as const;
export type ConditionCode = (typeof CONDITIONS)[number];

export const CONDITION_DISPLAY: Record<ConditionCode, string> = {
  diabetes: 'Type 2 diabetes',
  cardiovascular: 'Cardiovascular disease (10-year ASCVD)',
  stroke: 'Stroke',
  ckd: 'Chronic kidney disease',
  liver: 'Liver fibrosis / liver disease',
  anaemia: 'Anaemia',
  thyroid: 'Thyroid dysfunction',
  'breast-cancer': 'Breast cancer',
};

export function instrumentsFor(condition: ConditionCode): Instrument[] {
  return INSTRUMENTS.filter((i) => i.condition === condition);
}
