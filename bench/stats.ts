import { performance } from 'node:perf_hooks';

import { describeError } from './http-client.js';

export interface LoopResult {
  attempted: number;
  succeeded: number;
  failures: number;
  firstFailure: string | undefined;
  /** Latencies of the successful iterations, ascending. */
  latenciesMs: number[];
  elapsedMs: number;
}

/**
 * Runs task(0..count-1) with at most `concurrency` in flight. A task resolves
 * with its latency in ms when it succeeded and throws when it failed.
 */
export async function runPool(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<number>,
): Promise<LoopResult> {
  const latenciesMs: number[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  let next = 0;

  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      try {
        latenciesMs.push(await task(index));
      } catch (err) {
        failures++;
        firstFailure ??= describeError(err);
      }
    }
  };

  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const elapsedMs = performance.now() - started;

  return {
    attempted: count,
    succeeded: latenciesMs.length,
    failures,
    firstFailure,
    latenciesMs: latenciesMs.sort((a, b) => a - b),
    elapsedMs,
  };
}

/** Nearest-rank percentile of an ascending array; undefined when empty. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export function perSecond(count: number, elapsedMs: number): number | undefined {
  return elapsedMs > 0 ? (count * 1000) / elapsedMs : undefined;
}
