import type { Parameters } from '@medplum/fhirtypes';
import { join } from 'node:path';
import { OnnxEmbeddings } from '../src/ai/onnx-embeddings.js';
import { loadConfig } from '../src/config.js';
import { BACKENDS, create, type TestServer, useServer } from './harness.js';

/**
 * The local ONNX embedding provider, with a tiny BERT-shaped model made for these tests
 * (test/fixtures/embedding-model/make_model.py: "tummy", "abdominal" and "belly" share a vector),
 * and dense retrieval fused with full-text search through the chat.
 */
const MODEL = join(process.cwd(), 'test', 'fixtures', 'embedding-model');
const cosine = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i], 0);

describe('local ONNX embeddings', () => {
  test('BERT inputs, WordPiece pieces, mean pooling over the mask, unit vectors', async () => {
    const model = new OnnxEmbeddings(MODEL);
    expect(model.name).toBe('onnx:embedding-model');
    const [tummy, abdominal, chest, scans, unknown] = await model.embed(['Tummy ultrasound', 'abdominal ULTRASOUND', 'chest x-ray', 'scans', 'zzzz']);
    expect(tummy).toHaveLength(64);
    for (const v of [tummy, abdominal, chest]) expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    // Synonyms in the model, case and padding (the batch pads to its longest text) change nothing.
    expect(cosine(tummy, abdominal)).toBeCloseTo(1, 5);
    expect(cosine(tummy, chest)).toBeCloseTo(0, 5);
    // "scans" is scan + ##s (two axes of this model), not [UNK]; an unknown word is [UNK] (zero here).
    const [scan] = await model.embed(['scan']);
    expect(cosine(scans, scan)).toBeCloseTo(Math.SQRT1_2, 5);
    expect(unknown.every((x) => x === 0)).toBe(true);
  });

  test('a folder without the model or its vocabulary is refused at start; so is a second embedding model', () => {
    expect(() => new OnnxEmbeddings(join(process.cwd(), 'test', 'fixtures'))).toThrow(/has no model\.onnx/);
    expect(() => loadConfig({ LOCAL_EMBEDDING_MODEL: MODEL, BEDROCK_REGION: 'us-east-1', BEDROCK_EMBEDDING_MODEL: 'amazon.titan-embed-text-v2:0' }, [])).toThrow(
      /BEDROCK_EMBEDDING_MODEL or LOCAL_EMBEDDING_MODEL, not both/,
    );
  });
});

async function tummyQuestion(server: TestServer): Promise<{ answer: string; safety: string; cited: string[] }> {
  const patient = await create(server, { resourceType: 'Patient', name: [{ family: 'Dense' }], birthDate: '1980-01-01' });
  await create(server, {
    resourceType: 'DocumentReference',
    status: 'current',
    description: 'Ultrasound report',
    subject: { reference: `Patient/${patient.id}` },
    date: '2026-04-02T10:00:00Z',
    content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('Abdominal ultrasound showed a normal liver and gallbladder.').toString('base64') } }],
  });
  await create(server, {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body weight' }] },
    subject: { reference: `Patient/${patient.id}` },
    effectiveDateTime: '2026-04-01T10:00:00Z',
    valueQuantity: { value: 80, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
  });
  const res = await server.request(`Patient/${patient.id}/$chat`, { method: 'POST', json: { resourceType: 'Parameters', parameter: [{ name: 'message', valueString: 'anything about my tummy?' }] } });
  expect(res.status).toBe(200);
  const body = res.body as Parameters;
  return {
    answer: body.parameter!.find((p) => p.name === 'answer')!.valueString!,
    safety: body.parameter!.find((p) => p.name === 'safety')!.valueCode!,
    cited: body.parameter!.filter((p) => p.name === 'citation').map((c) => c.part!.find((x) => x.name === 'title')!.valueString!),
  };
}

describe.each(BACKENDS)('dense retrieval with a local ONNX model (%s)', (backend) => {
  const dense = useServer(backend, { LOCAL_EMBEDDING_MODEL: MODEL });
  const lexical = useServer(backend);

  test('a question in words the record does not use finds its answer by meaning; full-text search alone does not', async () => {
    const withVectors = await tummyQuestion(dense);
    expect(withVectors.safety).toBe('ok');
    expect(withVectors.answer).toMatch(/Your Ultrasound report, 2 Apr 2026 says: "Abdominal ultrasound showed a normal liver and gallbladder\." \[1\]/);
    expect(withVectors.cited).toEqual(['Ultrasound report']);
    const status = await dense.request(`Patient?family=Dense`);
    const id = status.body.entry[0].resource.id;
    const rag = await dense.request(`Patient/${id}/$rag-status`);
    expect(rag.body.parameter.find((p: { name: string }) => p.name === 'embeddingModel').valueString).toBe('onnx:embedding-model');
    const withoutVectors = await tummyQuestion(lexical);
    expect(withoutVectors.safety).toBe('no_information');
  });
});
