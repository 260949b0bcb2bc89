import type { Bundle, Observation, ParametersParameter, QuestionnaireResponse } from '@medplum/fhirtypes';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKENDS, create, hasSharedData, SHARED_DATA, useServer } from './harness.js';

/** $recommend and $health-score through the HTTP API, and recommendations over the Synthea patients. */

const LOINC = 'http://loinc.org';
type Part = ParametersParameter;
const part = (parts: Part[] | undefined, name: string): Part | undefined => parts?.find((p) => p.name === name);
const parts = (parts: Part[] | undefined, name: string): Part[] => parts?.filter((p) => p.name === name) ?? [];
const daysAgo = (days: number): string => new Date(Date.now() - days * 86_400_000).toISOString();

function lab(patient: string, code: string, value: number, unit: string, days: number): Observation {
  return { resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, subject: { reference: patient }, effectiveDateTime: daysAgo(days), valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit } };
}

function answers(patient: string, items: Record<string, boolean | number | string>): QuestionnaireResponse {
  return {
    resourceType: 'QuestionnaireResponse',
    status: 'completed',
    subject: { reference: patient },
    authored: new Date().toISOString(),
    item: Object.entries(items).map(([linkId, v]) => ({
      linkId,
      answer: [typeof v === 'boolean' ? { valueBoolean: v } : typeof v === 'number' ? { valueDecimal: v } : { valueCoding: { code: v } }],
    })),
  };
}

const statuses = (body: { parameter: Part[] }): Record<string, string> =>
  Object.fromEntries(parts(body.parameter, 'test').map((t) => [part(t.part, 'id')!.valueString!, part(t.part, 'status')!.valueCode!]));

describe.each(BACKENDS)('$recommend and $health-score (%s)', (backend) => {
  const server = useServer(backend);

  test('tests are done / due / overdue by their dates; stage 2 at medium breast markers; a proposed CarePlan, versioned only on change', async () => {
    const patient = await create(server, { resourceType: 'Patient', gender: 'female', birthDate: '1975-06-01' });
    const ref = `Patient/${patient.id}`;
    await create(server, lab(ref, '2093-3', 190, 'mg/dL', 30));      // lipid panel: within a year → done
    await create(server, lab(ref, '4548-4', 5.6, '%', 400));         // HbA1c: past the year, within the 90-day grace → due
    await create(server, lab(ref, '2160-0', 0.8, 'mg/dL', 600));     // renal: long past → overdue
    await create(server, answers(ref, { 'dietary-preference': 'vegetarian', 'physical-activity-daily': false, 'dense-breasts': true }));
    const res = await server.request(`${ref}/$recommend`, { method: 'POST' });
    expect(res.status).toBe(200);
    const status = statuses(res.body);
    expect(status).toMatchObject({ 'lipid-panel': 'done', 'glucose-hba1c': 'due', renal: 'overdue', liver: 'due', brca: 'due', 'tumour-markers': 'due' });
    expect(status.mammography).toBeUndefined();
    const lifestyle = parts(res.body.parameter, 'lifestyle').map((l) => part(l.part, 'advice')!.valueString!);
    expect(lifestyle.some((a) => /^Vegetarian:/.test(a))).toBe(true);
    expect(lifestyle.some((a) => /150 minutes/.test(a))).toBe(true);
    const plan = part(res.body.parameter, 'carePlan')!.resource as { id: string; status: string; intent: string; contained: { resourceType: string; status: string; intent: string; id: string }[]; meta: { versionId: string } };
    expect(plan).toMatchObject({ status: 'draft', intent: 'proposal' });
    expect(plan.contained.every((r) => r.resourceType === 'ServiceRequest' && r.status === 'draft' && r.intent === 'proposal')).toBe(true);
    expect(plan.contained.map((r) => r.id).sort()).toEqual(Object.entries(status).filter(([, s]) => s !== 'done').map(([id]) => `sr-${id}`).sort());
    expect((await server.request(`ServiceRequest?patient=${ref}`)).body.entry ?? []).toEqual([]); // proposed, never ordered
    const again = await server.request(`${ref}/$recommend`, { method: 'POST' });
    expect((part(again.body.parameter, 'carePlan')!.resource as { meta: { versionId: string } }).meta.versionId).toBe(plan.meta.versionId);
  });

  test('breast cancer adds stage 3 monitoring', async () => {
    const patient = await create(server, { resourceType: 'Patient', gender: 'female', birthDate: '1960-01-01' });
    await create(server, {
      resourceType: 'Condition', subject: { reference: `Patient/${patient.id}` },
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code: { coding: [{ system: 'http://snomed.info/sct', code: '254837009' }] },
    });
    const res = await server.request(`Patient/${patient.id}/$recommend`, { method: 'POST' });
    expect(statuses(res.body)).toMatchObject({ mammography: 'due', 'ca15-3-monitoring': 'due' });
  });

  test('$health-score: components with reasons or insufficient_data, stored, and a trend against the last score', async () => {
    const patient = await create(server, { resourceType: 'Patient', gender: 'male', birthDate: '1970-01-01' });
    const ref = `Patient/${patient.id}`;
    await create(server, lab(ref, '2093-3', 190, 'mg/dL', 30));
    const first = await server.request(`${ref}/$health-score`, { method: 'POST' });
    expect(first.status).toBe(200);
    const components = Object.fromEntries(parts(first.body.parameter, 'component').map((c) => [part(c.part, 'name')!.valueCode, c.part!]));
    expect(part(components['screening-compliance'], 'score')?.valueInteger).toBe(Math.round(100 / 7));
    expect(part(components['stress-relaxation'], 'status')?.valueCode).toBe('insufficient_data');
    expect(part(first.body.parameter, 'trend')).toBeUndefined();
    await create(server, answers(ref, { 'stress-level': 2, 'physical-activity-daily': true, 'daily-fruit-vegetables': true }));
    const second = await server.request(`${ref}/$health-score`, { method: 'POST' });
    const trend = part(second.body.parameter, 'trend')!.part!;
    expect(part(trend, 'previousScore')?.valueInteger).toBe(part(first.body.parameter, 'score')?.valueInteger);
    expect(part(trend, 'change')?.valueInteger).toBe(part(second.body.parameter, 'score')!.valueInteger! - part(first.body.parameter, 'score')!.valueInteger!);
    const stored = await server.request(part(second.body.parameter, 'observation')!.valueReference!.reference!);
    expect(stored.body.valueInteger).toBe(part(second.body.parameter, 'score')?.valueInteger);
    expect(stored.body.component).toHaveLength(6);
  });
});

const SYNTHEA = join(SHARED_DATA, 'synthea-r4');
if (!hasSharedData('synthea-r4')) process.stderr.write(`recommend.test.ts Synthea suite SKIPPED: ${SYNTHEA} is missing\n`);
(hasSharedData('synthea-r4') ? describe : describe.skip)('$recommend over the Synthea patients (pglite)', () => {
  const server = useServer('pglite');

  test("each test's status agrees with the patient's own Observations and the intervals in tests.json", async () => {
    const book = JSON.parse(readFileSync(join(process.cwd(), 'operations', 'recommend', 'tests.json'), 'utf8')) as { graceDays: number; tests: { id: string; resultCodes: string[]; intervalDays: number }[] };
    const files = readdirSync(SYNTHEA).filter((f) => f.endsWith('.json')).sort((a, b) => Number(/^[a-z]/.test(b)) - Number(/^[a-z]/.test(a)));
    let checked = 0;
    for (const file of files) {
      const bundle = JSON.parse(readFileSync(join(SYNTHEA, file), 'utf8')) as Bundle;
      const res = await server.request('', { method: 'POST', json: bundle });
      const patientId = (res.body.entry as { response: { location: string } }[]).map((e) => /(?:^|\/)Patient\/([^/]+)\/_history/.exec(e.response.location)?.[1]).find(Boolean);
      if (!patientId) continue;
      const observations = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is Observation => r?.resourceType === 'Observation');
      const rec = await server.request(`Patient/${patientId}/$recommend`, { method: 'POST' });
      expect(rec.status).toBe(200);
      for (const [id, status] of Object.entries(statuses(rec.body))) {
        const test = book.tests.find((t) => t.id === id)!;
        const dates = observations.filter((o) => o.code.coding?.some((c) => c.system === LOINC && test.resultCodes.includes(c.code!))).map((o) => Date.parse(o.effectiveDateTime ?? o.issued ?? ''));
        const age = dates.length === 0 ? undefined : (Date.now() - Math.max(...dates)) / 86_400_000;
        const expected = age === undefined ? 'due' : age <= test.intervalDays ? 'done' : age <= test.intervalDays + book.graceDays ? 'due' : 'overdue';
        expect(`${id}: ${status}`).toBe(`${id}: ${expected}`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
});
