import type { Observation, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { BACKENDS, create, useServer } from './harness.js';

/** Patient/$triage through the HTTP API: NEWS2 from stored vital signs, red flags, what is saved for RED. */

const LOINC = 'http://loinc.org';
type Part = ParametersParameter;
const part = (parts: Part[] | undefined, name: string): Part | undefined => parts?.find((p) => p.name === name);
const parts = (parts: Part[] | undefined, name: string): Part[] => parts?.filter((p) => p.name === name) ?? [];

function vital(patient: string, code: string, value: number, unit: string, minutesAgo: number): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: LOINC, code }] },
    subject: { reference: patient },
    effectiveDateTime: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
    valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
  };
}

describe.each(BACKENDS)('$triage (%s)', (backend) => {
  const server = useServer(backend);

  test('stored vital signs give NEWS2 ≥7: RED, with a RiskAssessment, a Flag and a Communication to the GP', async () => {
    const gp = await create(server, { resourceType: 'Practitioner', name: [{ family: 'Okafor' }] });
    const patient = await create(server, { resourceType: 'Patient', birthDate: '1950-02-02', generalPractitioner: [{ reference: `Practitioner/${gp.id}` }] });
    const ref = `Patient/${patient.id}`;
    // The last 24 hours: RR 24, SpO2 91 on air, SBP 125, HR 112, T 38.4 → 2 + 3 + 0 + 2 + 1 = 8 (with alert, air).
    for (const [code, value, unit] of [['9279-1', 24, '/min'], ['59408-5', 91, '%'], ['8480-6', 125, 'mm[Hg]'], ['8867-4', 112, '/min'], ['8310-5', 38.4, 'Cel']] as const) {
      await create(server, vital(ref, code, value, unit, 30));
    }
    await create(server, vital(ref, '8867-4', 70, '/min', 60 * 48)); // older than the look-back: ignored
    const res = await server.request(`${ref}/$triage`, {
      method: 'POST',
      json: { resourceType: 'Parameters', parameter: [{ name: 'complaint', valueString: 'short of breath and shivery, no chest pain' }, { name: 'consciousness', valueCode: 'A' }, { name: 'onOxygen', valueBoolean: false }] },
    });
    expect(res.status).toBe(200);
    const body = res.body as Parameters;
    expect(part(body.parameter, 'urgency')?.valueCoding?.code).toBe('RED');
    expect(part(body.parameter, 'timeToAction')?.valueString).toBe('Call emergency services now');
    const news2 = part(body.parameter, 'news2')!.part!;
    expect(part(news2, 'total')?.valueInteger).toBe(8);
    expect(part(news2, 'band')?.valueCode).toBe('high');
    // SpO2 91 scores 3 on its own; no sepsis high-risk criterion is met (RR <25, HR ≤130, SBP >90).
    expect(parts(body.parameter, 'reason').map((r) => part(r.part, 'rule')?.valueString).sort()).toEqual(['news2-high', 'news2-single-3']);
    expect(parts(body.parameter, 'negated').map((n) => n.valueString)).toContain('chest pain');
    expect(parts(body.parameter, 'reason').map((r) => part(r.part, 'rule')?.valueString)).not.toContain('chest-pain');

    const assessment = await server.request(part(body.parameter, 'riskAssessment')!.valueReference!.reference!);
    expect(assessment.body.prediction[0].outcome.coding[0].code).toBe('RED');
    expect(assessment.body.basis.length).toBe(5);
    const flag = await server.request(part(body.parameter, 'flag')!.valueReference!.reference!);
    expect(flag.body).toMatchObject({ status: 'active', subject: { reference: ref } });
    const message = await server.request(part(body.parameter, 'communication')!.valueReference!.reference!);
    expect(message.body).toMatchObject({ priority: 'stat', recipient: [{ reference: `Practitioner/${gp.id}` }] });
    expect(message.body.payload[0].contentString).toMatch(/RED triage/);
  });

  test('a GREEN presentation saves a RiskAssessment and no Flag', async () => {
    const patient = await create(server, { resourceType: 'Patient', birthDate: '1990-05-05' });
    const res = await server.request(`Patient/${patient.id}/$triage?complaint=${encodeURIComponent('sore throat, no fever')}`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(part(res.body.parameter, 'urgency')?.valueCoding?.code).toBe('GREEN');
    expect(part(res.body.parameter, 'flag')).toBeUndefined();
    expect((await server.request(`Flag?patient=Patient/${patient.id}`)).body.entry ?? []).toEqual([]);
  });

  test('type level: the presentation alone, nothing saved; bad input is a 400', async () => {
    const before = (await server.request('RiskAssessment?_summary=count')).body.total;
    const res = await server.request('Patient/$triage', {
      method: 'POST',
      json: { resourceType: 'Parameters', parameter: [{ name: 'complaint', valueString: 'Found a lump in my breast' }, { name: 'painScore', valueDecimal: 2 }] },
    });
    expect(res.status).toBe(200);
    expect(part(res.body.parameter, 'urgency')?.valueCoding?.code).toBe('AMBER');
    expect(parts(res.body.parameter, 'specialty').map((s) => s.valueString)).toContain('breast surgery (suspected-cancer pathway)');
    expect((await server.request('RiskAssessment?_summary=count')).body.total).toBe(before);
    const bad = await server.request('Patient/$triage', { method: 'POST', json: { resourceType: 'Parameters', parameter: [{ name: 'consciousness', valueCode: 'X' }] } });
    expect(bad.status).toBe(400);
    expect(bad.body.issue[0].details.text).toMatch(/ACVPU/);
    expect((await server.request('Patient/$triage', { method: 'POST', json: { resourceType: 'Parameters' } })).status).toBe(400);
    expect((await server.request('Patient/nobody/$triage?complaint=x', { method: 'POST' })).status).toBe(404);
  });
});
