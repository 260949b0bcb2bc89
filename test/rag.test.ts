import type { Bundle, Observation, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { buildDemoBundle, DEMO_PATIENT_IDS } from '../src/demo/demo-bundle.js';
import { BACKENDS, create, type TestServer, useServer } from './harness.js';

/**
 * The patient knowledge index through the HTTP API: $rag-refresh (incremental, versioned, with the
 * insights recomputed), $rag-status, automatic refreshes after writes, and the 202 path.
 */

type Part = ParametersParameter;
const part = (parts: Part[] | undefined, name: string): Part | undefined => parts?.find((p) => p.name === name);
const parts = (parts: Part[] | undefined, name: string): Part[] => parts?.filter((p) => p.name === name) ?? [];

const ROSA = DEMO_PATIENT_IDS[0];

async function refresh(server: TestServer, patientId: string, reason?: string): Promise<Parameters> {
  const res = await server.request(`Patient/${patientId}/$rag-refresh`, {
    method: 'POST',
    json: { resourceType: 'Parameters', parameter: reason ? [{ name: 'reason', valueCode: reason }] : [] },
  });
  expect(res.status).toBe(200);
  return res.body as Parameters;
}

function changes(result: Parameters): { source: string; change: string }[] {
  return parts(result.parameter, 'change').map((c) => ({ source: part(c.part, 'source')!.valueReference!.reference!, change: part(c.part, 'change')!.valueCode! }));
}

/** A transaction of `count` daily results of one LOINC test for a patient. */
function resultsBundle(patientId: string, count: number, loinc: string, display: string, unit: string): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: Array.from({ length: count }, (_, n) => ({
      request: { method: 'POST', url: 'Observation' },
      resource: {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: loinc, display }] },
        subject: { reference: `Patient/${patientId}` },
        effectiveDateTime: new Date(Date.UTC(2025, 0, 1 + n, 8)).toISOString(),
        valueQuantity: { value: 60 + n / 10, unit, system: 'http://unitsofmeasure.org', code: unit },
      },
    })),
  };
}

describe.each(BACKENDS)('$rag-refresh and $rag-status (%s)', (backend) => {
  const server = useServer(backend);

  beforeAll(async () => {
    const loaded = await server.request('', { method: 'POST', json: buildDemoBundle() });
    expect(loaded.status).toBe(200);
  });

  test('the first refresh indexes every source of the record; the next one finds nothing to do', async () => {
    const everything = await server.request(`Patient/${ROSA}/$everything?_count=1000`);
    const first = await refresh(server, ROSA);
    const sources = (everything.body.entry as { resource: { resourceType: string; id: string } }[])
      .map((e) => e.resource)
      .filter((r) => ['Observation', 'Condition', 'MedicationRequest', 'Encounter'].includes(r.resourceType))
      .map((r) => `${r.resourceType}/${r.id}`);
    expect(sources.length).toBeGreaterThan(20);
    expect(changes(first).map((c) => c.source).filter((s) => !sources.includes(s))).toEqual([]);
    expect(part(first.parameter, 'added')?.valueInteger).toBe(sources.length);
    expect(changes(first).map((c) => c.source).sort()).toEqual(sources.sort());
    expect(part(first.parameter, 'chunks')?.valueInteger).toBe(sources.length); // one sentence per structured resource
    expect(part(first.parameter, 'version')?.valueInteger).toBe(1);
    expect(part(first.parameter, 'reason')?.valueCode).toBe('manual');
    // The insights the refresh makes stale were recomputed: a health score and risk assessments for Rosa.
    expect(part(first.parameter, 'insightsAt')?.valueInstant).toBeDefined();
    const score = await server.request(`Observation?patient=${ROSA}&code=https://carelens.dev/fhir/CodeSystem/health-score|health-wellness-score`);
    expect(score.body.total ?? score.body.entry.length).toBeGreaterThan(0);
    const assessments = await server.request(`RiskAssessment?patient=${ROSA}`);
    expect(assessments.body.entry.length).toBeGreaterThan(0);

    const second = await refresh(server, ROSA);
    expect([part(second.parameter, 'added'), part(second.parameter, 'updated'), part(second.parameter, 'removed')].map((p) => p?.valueInteger)).toEqual([0, 0, 0]);
    expect(part(second.parameter, 'version')?.valueInteger).toBe(2);
    // The health score written by the first refresh is carelens' own output, not a source.
    expect(changes(second)).toEqual([]);
  });

  test('only new, changed and removed sources are redone, and the history says what changed and why', async () => {
    await refresh(server, ROSA);
    const added = await create<Observation>(server, {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' }] },
      subject: { reference: `Patient/${ROSA}` },
      effectiveDateTime: '2026-02-10T09:00:00Z',
      valueQuantity: { value: 7.1, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
    });
    const conditions = await server.request(`Condition?patient=${ROSA}`);
    const condition = conditions.body.entry[0].resource;
    const updated = await server.request(`Condition/${condition.id}`, { method: 'PUT', json: { ...condition, note: [{ text: 'Reviewed at the annual check' }] } });
    expect(updated.status).toBe(200);
    const medications = await server.request(`MedicationRequest?patient=${ROSA}`);
    const medication = medications.body.entry[0].resource;
    expect((await server.request(`MedicationRequest/${medication.id}`, { method: 'DELETE' })).status).toBe(204);

    const result = await refresh(server, ROSA, 'consultation_update');
    expect(changes(result).sort((a, b) => a.source.localeCompare(b.source))).toEqual(
      [
        { source: `Condition/${condition.id}`, change: 'updated' },
        { source: `MedicationRequest/${medication.id}`, change: 'removed' },
        { source: `Observation/${added.id}`, change: 'added' },
      ].sort((a, b) => a.source.localeCompare(b.source)),
    );
    expect(part(result.parameter, 'reason')?.valueCode).toBe('consultation_update');

    const status = await server.request(`Patient/${ROSA}/$rag-status?_count=2`);
    expect(status.status).toBe(200);
    const history = parts(status.body.parameter, 'refresh');
    expect(history).toHaveLength(2);
    expect(part(history[0].part, 'version')?.valueInteger).toBe(part(result.parameter, 'version')?.valueInteger);
    expect(part(history[0].part, 'reason')?.valueCode).toBe('consultation_update');
    expect(part(history[0].part, 'trigger')?.valueCode).toBe('request');
    expect(parts(history[0].part, 'change')).toHaveLength(3);
    expect(part(status.body.parameter, 'chunks')?.valueInteger).toBe(part(result.parameter, 'chunks')?.valueInteger);
  });

  test('concurrent refreshes of one patient apply each change exactly once, as successive versions', async () => {
    const patient = await create(server, { resourceType: 'Patient', name: [{ family: 'Concurrent' }], birthDate: '1970-05-05', gender: 'male' });
    expect((await server.request('', { method: 'POST', json: resultsBundle(patient.id, 30, '29463-7', 'Body weight', 'kg') })).status).toBe(200);
    const results = await Promise.all([1, 2, 3].map(() => refresh(server, patient.id)));
    const versions = results.map((r) => part(r.parameter, 'version')!.valueInteger!).sort();
    expect(versions).toEqual([1, 2, 3]);
    expect(results.reduce((n, r) => n + part(r.parameter, 'added')!.valueInteger!, 0)).toBe(30);
    const status = await server.request(`Patient/${patient.id}/$rag-status`);
    expect(part(status.body.parameter, 'chunks')?.valueInteger).toBe(30);
    expect(part(status.body.parameter, 'sources')?.valueInteger).toBeGreaterThanOrEqual(30);
  });

  test('bad input: unknown reason 400, unknown patient 404, GET 405', async () => {
    const bad = await server.request(`Patient/${ROSA}/$rag-refresh`, { method: 'POST', json: { resourceType: 'Parameters', parameter: [{ name: 'reason', valueCode: 'because' }] } });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/reason must be one of manual, new_report, consultation_update/);
    expect((await server.request('Patient/no-such-patient/$rag-refresh', { method: 'POST', json: { resourceType: 'Parameters' } })).status).toBe(404);
    expect((await server.request(`Patient/${ROSA}/$rag-refresh`)).status).toBe(405);
    expect((await server.request(`Patient/${ROSA}/$rag-status?_count=many`)).status).toBe(400);
  });

  test('Prefer: respond-async: 202 and a Task whose $status reports the refresh', async () => {
    const patient = DEMO_PATIENT_IDS[1];
    const res = await server.request(`Patient/${patient}/$rag-refresh`, { method: 'POST', json: { resourceType: 'Parameters' }, headers: { Prefer: 'respond-async' } });
    expect(res.status).toBe(202);
    const location = res.headers.get('Content-Location')!;
    expect(location).toMatch(/\/Task\/[^/]+\/\$status$/);
    let status = await server.request(location);
    for (let i = 0; i < 100 && status.status === 202; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = await server.request(location);
    }
    expect(status.status).toBe(200);
    const outputs = Object.fromEntries((status.body.output as { type: { text: string }; valueInteger?: number; valueCode?: string }[]).map((o) => [o.type.text, o.valueInteger ?? o.valueCode]));
    expect(outputs.reason).toBe('manual');
    expect(outputs.added).toBeGreaterThan(10);
  });
});

describe.each(BACKENDS)('automatic refresh after writes (%s)', (backend) => {
  const server = useServer(backend, { RAG_AUTO_REFRESH: 'true', RAG_REFRESH_DELAY_MS: '300' });

  test('a burst of writes is indexed once, by a refresh that follows them within seconds', async () => {
    const patient = await create(server, { resourceType: 'Patient', name: [{ family: 'Auto' }], birthDate: '1960-01-01', gender: 'female' });
    const written = Date.now();
    expect((await server.request('', { method: 'POST', json: resultsBundle(patient.id, 3, '8867-4', 'Heart rate', '/min') })).status).toBe(200);
    let history: Part[] = [];
    for (let i = 0; i < 100 && !history.some((h) => part(h.part, 'insightsAt')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      history = parts((await server.request(`Patient/${patient.id}/$rag-status`)).body.parameter, 'refresh');
    }
    expect(history).toHaveLength(1);
    expect(part(history[0].part, 'trigger')?.valueCode).toBe('write');
    expect(part(history[0].part, 'reason')?.valueCode).toBe('new_result');
    expect(part(history[0].part, 'added')?.valueInteger).toBe(3);
    const lag = Date.parse(part(history[0].part, 'insightsAt')!.valueInstant!) - written;
    expect(lag).toBeLessThan(10_000);
  });
});
