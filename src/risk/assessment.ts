/**
 * One model's answer for one patient and condition, whatever produced it (a published instrument or
 * an ML model). The operation turns it into a RiskAssessment and a Parameters part.
 */
import type { Inputs } from './inputs.js';

/** http://terminology.hl7.org/CodeSystem/risk-probability */
export type QualitativeRisk = 'negligible' | 'low' | 'moderate' | 'high' | 'certain';

export interface Contribution {
  input: string;
  value?: number | string;
  /** On the explanation's scale; the contributions sum to (prediction − baseline) on that scale. */
  contribution: number;
}

export interface Explanation {
  method: string;
  /** 'log-odds', 'log-hazard' or 'points'. */
  scale: string;
  /** The value on `scale` the contributions start from (reference profile or training average). */
  baseline: number;
  contributions: Contribution[];
}

export interface ModelIdentity {
  model: string;
  version: string;
  title: string;
  kind: 'published-instrument' | 'ml-ensemble';
  researchGrade: boolean;
  condition: string;
}

export interface Assessment extends ModelIdentity {
  status: 'ok' | 'insufficient_data' | 'not_applicable';
  /** Why there is no number (insufficient_data, not_applicable). */
  reason?: string;
  outcome: { system: string; code: string; display: string };
  /** Prediction horizon in years; absent for cross-sectional classifications. */
  horizonYears?: number;
  probability?: number;
  score?: { value: number; display: string };
  category?: { code: string; display: string; risk: QualitativeRisk };
  thresholds?: string;
  interval?: { low: number; high: number; method: string };
  /** Why no interval is given (published equations have no published covariance). */
  intervalNote?: string;
  explanation?: Explanation;
  /** Further named results (e.g. eGFR and KDIGO stage, PREVENT's other outcomes). */
  details: { name: string; value: number | string; unit?: string }[];
  missing: string[];
  imputed: string[];
  mitigation?: string;
  warnings: string[];
  /** Inputs the model read, for basis and exclusion reporting. */
  inputs: string[];
}

/** Resolved inputs plus bookkeeping of which were needed and absent. */
export class Facts {
  readonly missing = new Set<string>();

  constructor(readonly inputs: Inputs) {}

  /** A numeric input; recorded as missing when absent. */
  num(name: string): number | undefined {
    const value = this.inputs.get(name)?.value;
    if (typeof value === 'number') return value;
    this.missing.add(name);
    return undefined;
  }

  /** A yes/no input (1/0); absent counts as no, for diagnoses and medications the record would show. */
  flag(name: string): boolean {
    return this.inputs.get(name)?.value === 1;
  }

  /** A yes/no answer that must be given (questionnaire items): undefined and missing when unanswered. */
  answer(name: string): boolean | undefined {
    const value = this.inputs.get(name)?.value;
    if (value === undefined) {
      this.missing.add(name);
      return undefined;
    }
    return value === 1 || value === 'yes' || value === 'Y' || value === 'true';
  }

  /** A coded answer. */
  code(name: string): string | undefined {
    const value = this.inputs.get(name)?.value;
    if (value === undefined) this.missing.add(name);
    return value === undefined ? undefined : String(value);
  }

  has(name: string): boolean {
    return this.inputs.get(name)?.value !== undefined;
  }
}

/**
 * Exact Shapley values of f at x against a reference profile (baseline Shapley): every coalition of
 * the inputs that differ is evaluated, so the values sum to f(x) − f(reference) exactly. Published
 * equations have at most ~10 inputs, so the 2^n evaluations are cheap.
 */
export function baselineShapley(
  f: (values: Record<string, number>) => number,
  x: Record<string, number>,
  reference: Record<string, number>,
): { baseline: number; contributions: Record<string, number> } {
  const names = Object.keys(x).filter((k) => x[k] !== reference[k]);
  const n = names.length;
  const contributions: Record<string, number> = Object.fromEntries(Object.keys(x).map((k) => [k, 0]));
  const factorial = [1];
  for (let i = 1; i <= n; i++) factorial[i] = factorial[i - 1] * i;
  const value = new Map<number, number>();
  const evaluate = (mask: number): number => {
    let v = value.get(mask);
    if (v === undefined) {
      const point = { ...reference };
      names.forEach((name, i) => {
        if (mask & (1 << i)) point[name] = x[name];
      });
      v = f(point);
      value.set(mask, v);
    }
    return v;
  };
  for (let mask = 0; mask < 1 << n; mask++) {
    const size = popcount(mask);
    for (let i = 0; i < n; i++) {
      if (mask & (1 << i)) continue;
      const weight = (factorial[size] * factorial[n - size - 1]) / factorial[n];
      contributions[names[i]] += weight * (evaluate(mask | (1 << i)) - evaluate(mask));
    }
  }
  return { baseline: evaluate(0), contributions };
}

function popcount(mask: number): number {
  let count = 0;
  for (let m = mask; m; m &= m - 1) count++;
  return count;
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
export const logit = (p: number): number => Math.log(p / (1 - p));
