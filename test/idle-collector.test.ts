import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { collectAndCompact, collectWhenIdle, type GarbageCollector } from '../src/runtime/idle-collector.js';

// The real collector, as `node --expose-gc` gives it to the server.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as GarbageCollector;

const MiB = 1024 * 1024;

/** Leaves the old generation fragmented: many pages, each keeping one object in twenty alive. */
function fragmentHeap(): object[] {
  const kept: object[] = [];
  let all: object[] = [];
  for (let i = 0; i < 600_000; i++) {
    const o = { n: i, s: `item ${i}`, a: [i] };
    all.push(o);
    if (i % 20 === 0) kept.push(o);
  }
  all = [];
  return kept;
}

test('a compacting collection hands back the pages a plain full collection keeps', () => {
  const kept = fragmentHeap();
  gc();
  const plain = getHeapStatistics();
  collectAndCompact(gc);
  const compacted = getHeapStatistics();
  expect(kept).toHaveLength(30_000);
  expect(compacted.used_heap_size).toBeLessThanOrEqual(plain.used_heap_size + MiB);
  // The plain collection freed the objects but left their pages committed.
  expect(plain.total_heap_size - compacted.total_heap_size).toBeGreaterThan(20 * MiB);
});

test('collects once the event loop is idle after the heap grew, and not before', async () => {
  gc();
  let collections = 0;
  const stop = collectWhenIdle(() => {
    collections++;
    gc();
  });
  try {
    expect(fragmentHeap()).toHaveLength(30_000); // some 60 MB of garbage
    // Busy for over a check interval: the event loop runs 20 ms slices back to back.
    const busyUntil = Date.now() + 1500;
    while (Date.now() < busyUntil) {
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          const end = Date.now() + 20;
          while (Date.now() < end);
          resolve();
        }),
      );
    }
    expect(collections).toBe(0);
    // Idle for a little more than two check intervals: one collection, and no second one after it.
    await new Promise((resolve) => setTimeout(resolve, 2300));
    expect(collections).toBe(1);
  } finally {
    stop();
  }
});

test('does not collect when the heap has not grown', async () => {
  gc();
  let collections = 0;
  const stop = collectWhenIdle(() => collections++);
  try {
    await new Promise((resolve) => setTimeout(resolve, 2300));
    expect(collections).toBe(0);
  } finally {
    stop();
  }
});
