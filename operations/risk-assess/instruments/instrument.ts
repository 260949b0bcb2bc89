import type { Assessment, Facts, ModelIdentity } from '../../../src/risk/assessment.js';

/** What an instrument computes; identity, inputs read and missing inputs are added by the engine. */
export type InstrumentResult = Omit<Assessment, keyof ModelIdentity | 'missing' | 'imputed' | 'inputs' | 'details' | 'warnings'> &
  Partial<Pick<Assessment, 'details' | 'warnings' | 'imputed'>>;

/** A published instrument implemented exactly as published; its card is models/<model>/card.json. */
export interface Instrument extends Omit<ModelIdentity, 'kind' | 'researchGrade'> {
  /** Names in inputs.json this instrument reads. */
  inputs: string[];
  assess(facts: Facts): InstrumentResult;
}

export const SNOMED = 'http://snomed.info/sct';

/** A result without a number, saying why. */
export function withoutNumber(
  status: 'insufficient_data' | 'not_applicable',
  outcome: Assessment['outcome'],
  reason: string,
  extra: Partial<InstrumentResult> = {},
): InstrumentResult {
  return { status, outcome, reason, ...extra };
}

/** "Required inputs missing: …" for insufficient_data results. */
export function missingReason(facts: Facts): string {
  return `Required inputs missing: ${[...facts.missing].join(', ')}`;
}

export const NO_INTERVAL =
  'No sampling interval: the source publication gives no coefficient covariance, so none can be derived. The point estimate is the published equation.';

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
