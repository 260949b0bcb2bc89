import { percentile, type LoopResult } from './stats.js';

export type FigureValue = number | string | null;

const LABEL_WIDTH = 44;
const VALUE_WIDTH = 12;

/** Prints the human-readable table and keeps every figure for the optional JSON summary. */
export class Report {
  private readonly figures: Record<string, FigureValue> = {};

  header(title: string, settings: ReadonlyArray<readonly [string, string]>): void {
    console.log(title);
    for (const [name, value] of settings) console.log(`  ${name.padEnd(22)} ${value}`);
  }

  section(title: string): void {
    console.log(`\n== ${title} ==`);
  }

  note(text: string): void {
    console.log(`  ${text}`);
  }

  /** One figure per line; `undefined` prints as n/a and becomes null in JSON. */
  figure(key: string, label: string, value: number | string | undefined, unit: string, decimals = 1): void {
    const shown = value === undefined ? 'n/a' : typeof value === 'number' ? value.toFixed(decimals) : value;
    console.log(`  ${label.padEnd(LABEL_WIDTH)} ${shown.padStart(VALUE_WIDTH)} ${value === undefined ? '' : unit}`.trimEnd());
    this.figures[key] = typeof value === 'number' ? roundForJson(value) : value ?? null;
  }

  latencies(key: string, label: string, result: LoopResult, percentiles: readonly number[]): void {
    for (const p of percentiles) {
      this.figure(`${key}.p${p}Ms`, `${label}latency p${p}`, percentile(result.latenciesMs, p), 'ms');
    }
  }

  failures(key: string, label: string, result: LoopResult, unit: string): void {
    this.figure(`${key}.failures`, `${label}failures`, result.failures, `of ${result.attempted} ${unit}`, 0);
    if (result.firstFailure !== undefined) this.note(`first failure: ${result.firstFailure}`);
  }

  toJson(settings: Record<string, FigureValue>): string {
    return JSON.stringify({ bench: 'carelens', settings, figures: this.figures });
  }
}

function roundForJson(value: number): number {
  return Math.round(value * 1000) / 1000;
}
