/**
 * What each model has seen since start-up: predictions by status, how often each input was missing,
 * and for ML models the distribution of each input against its training distribution (population
 * stability index). Exposed at /metrics and through the admin API.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Assessment } from '../risk/assessment.js';
import type { FeatureSpec } from './ml-model.js';

interface Drift {
  features: FeatureSpec[];
  /** Observed count per bin per feature. */
  counts: number[][];
}

export interface ModelStatistics {
  model: string;
  predictions: Record<string, number>;
  missing: Record<string, number>;
  psi?: Record<string, { psi: number; observed: number; interpretation: string }>;
}

export class ModelMonitor {
  private readonly predictions: Counter;
  private readonly missing: Counter;
  private readonly stats = new Map<string, { predictions: Record<string, number>; missing: Record<string, number> }>();
  private readonly drift = new Map<string, Drift>();

  constructor(registry: Registry) {
    this.predictions = new Counter({
      name: 'carelens_model_predictions_total',
      help: 'Risk model predictions by model and status (ok, insufficient_data, not_applicable)',
      labelNames: ['model', 'status'],
      registers: [registry],
    });
    this.missing = new Counter({
      name: 'carelens_model_input_missing_total',
      help: 'Predictions in which a model input was missing or imputed, by model and input',
      labelNames: ['model', 'input'],
      registers: [registry],
    });
    const monitor = this;
    new Gauge({
      name: 'carelens_model_input_psi',
      help: 'Population stability index of an ML model input since start-up against its training distribution',
      labelNames: ['model', 'input'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [model, drift] of monitor.drift) {
          drift.features.forEach((feature, i) => {
            const psi = populationStability(feature.bins.expected, drift.counts[i]);
            if (psi !== undefined) this.set({ model, input: feature.name }, psi);
          });
        }
      },
    });
  }

  /** Starts (or restarts, after a reload) drift tracking for an ML model's features. */
  track(model: string, features: FeatureSpec[]): void {
    this.drift.set(model, { features, counts: features.map((f) => new Array<number>(f.bins.expected.length).fill(0)) });
  }

  untrack(model: string): void {
    this.drift.delete(model);
  }

  record(assessment: Assessment, row?: readonly number[]): void {
    const model = assessment.model;
    this.predictions.inc({ model, status: assessment.status });
    const stats = this.stats.get(model) ?? { predictions: {}, missing: {} };
    this.stats.set(model, stats);
    stats.predictions[assessment.status] = (stats.predictions[assessment.status] ?? 0) + 1;
    for (const input of [...assessment.missing, ...assessment.imputed]) {
      this.missing.inc({ model, input });
      stats.missing[input] = (stats.missing[input] ?? 0) + 1;
    }
    const drift = this.drift.get(model);
    if (drift && row) {
      drift.features.forEach((feature, i) => {
        if (!Number.isNaN(row[i])) drift.counts[i][binOf(feature.bins.edges, row[i])]++;
      });
    }
  }

  snapshot(): ModelStatistics[] {
    const models = new Set([...this.stats.keys(), ...this.drift.keys()]);
    return [...models].sort().map((model) => {
      const stats = this.stats.get(model) ?? { predictions: {}, missing: {} };
      const drift = this.drift.get(model);
      return {
        model,
        predictions: stats.predictions,
        missing: stats.missing,
        ...(drift && {
          psi: Object.fromEntries(
            drift.features.map((feature, i) => {
              const observed = drift.counts[i].reduce((s, c) => s + c, 0);
              const psi = populationStability(feature.bins.expected, drift.counts[i]) ?? 0;
              return [feature.name, { psi, observed, interpretation: observed === 0 ? 'no data' : psi < 0.1 ? 'stable' : psi < 0.25 ? 'moderate shift' : 'major shift' }];
            }),
          ),
        }),
      };
    });
  }
}

/** Bin index: below edges[0] → 0, edges[i-1] ≤ v < edges[i] → i, at or above the last edge → last bin. */
export function binOf(edges: readonly number[], value: number): number {
  let i = 0;
  while (i < edges.length && value >= edges[i]) i++;
  return i;
}

/** PSI = Σ (a − e) ln(a / e), with empty bins floored at 0.1% so the sum stays finite. */
export function populationStability(expected: readonly number[], counts: readonly number[]): number | undefined {
  const total = counts.reduce((s, c) => s + c, 0);
  if (total === 0) return undefined;
  const floor = 0.001;
  return expected.reduce((sum, e, i) => {
    const a = Math.max(counts[i] / total, floor);
    const ex = Math.max(e, floor);
    return sum + (a - ex) * Math.log(a / ex);
  }, 0);
}
