import { join } from 'node:path';
import { evaluate, loadSynthea } from '../bench/rag-eval.js';
import { BACKENDS, hasSharedData, SHARED_DATA, useServer } from './harness.js';

/**
 * The chat evaluation over the Synthea patients of ../shared/data: questions generated from each
 * patient's own data, answered through Patient/[id]/$chat with the local answerer.
 */
const SYNTHEA = 'synthea-r4';
const run = hasSharedData(SYNTHEA) ? describe.each(BACKENDS) : describe.skip.each(BACKENDS);
if (!hasSharedData(SYNTHEA)) console.warn(`skipped: the chat evaluation needs ../shared/data/${SYNTHEA}, which is not on this machine`);

run('chat evaluation over the Synthea patients (%s)', (backend) => {
  const server = useServer(backend);

  test('retrieval recall@5 ≥ 0.9, exact-fact accuracy ≥ 0.85, every answer cited, nothing from another patient', async () => {
    const transport = {
      post: async (path: string, json: unknown) => {
        const started = performance.now();
        const res = await server.request(path, { method: 'POST', json });
        return { status: res.status, body: res.body as unknown, ms: performance.now() - started };
      },
      get: async (path: string) => {
        const res = await server.request(path);
        return { status: res.status, body: res.body as unknown };
      },
    };
    const patients = await loadSynthea(transport, join(SHARED_DATA, SYNTHEA));
    expect(patients.length).toBeGreaterThan(0);
    const result = await evaluate(transport, patients);
    expect(result.answered).toBeGreaterThan(50);
    expect({ recall: result.recallAt5 >= 0.9, accuracy: result.accuracy >= 0.85, misses: result.misses }).toEqual({ recall: true, accuracy: true, misses: result.misses });
    expect(result.citationPresence).toBe(1);
    expect(result.isolationViolations).toBe(0);
  }, 300_000);
});
