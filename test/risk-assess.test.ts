import type { Bundle, Observation, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKENDS, clientCredentialsToken, create, hasSharedData, OPERATOR, SHARED_DATA, useServer } from './harness.js';

/**
 * Patient/$risk-assess through the HTTP API: the published instruments over a stored record (the
 * PREVENT worked example of the preventr README reproduced end to end), implausible values excluded
 * and reported, insufficient data, versioned RiskAssessments, posted data, Group batches (inline and
 * as a job), model cards, monitoring and the Synthea patients.
 */

const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';

function birthDateForAge(age: number): string {
  const d = new Date();
  d.setUTCFullYear(d.getUTCFullYear() - age);
  d.setUTCDate(d.getUTCDate() - 10);
  return d.toISOString().slice(0, 10);
}

function daysAgo(days: number): string {
  return new Date(Date.now() - days * 86_400_000).toISOString();
}

function lab(patient: string, code: string, value: number, unit: string, days = 30): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: LOINC, code }] },
    subject: { reference: patient },
    effectiveDateTime: daysAgo(days),
    valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
  };
}

function bloodPressure(patient: string, systolic: number, days: number): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: LOINC, code: '85354-9' }] },
    subject: { reference: patient },
    effectiveDateTime: daysAgo(days),
    component: [
      { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: { value: systolic, unit: 'mm[Hg]', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
      { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: { value: 85, unit: 'mm[Hg]', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
    ],
  };
}

/** The preventr README example: female, 50, SBP 160 treated, TC 200, HDL 45, diabetes, non-smoker, eGFR 90, BMI 35. */
function preventExample(patient: string): Resource[] {
  return [
    lab(patient, '2093-3', 200, 'mg/dL'),
    lab(patient, '2085-9', 45, 'mg/dL'),
    lab(patient, '98979-8', 90, 'mL/min/{1.73_m2}'),
    lab(patient, '39156-5', 35, 'kg/m2'),
    bloodPressure(patient, 160, 20),
    {
      resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: '72166-2' }] }, subject: { reference: patient },
      effectiveDateTime: daysAgo(20), valueCodeableConcept: { coding: [{ system: SNOMED, code: '266919005', display: 'Never smoker' }] },
    },
    { resourceType: 'Condition', subject: { reference: patient }, clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code: { coding: [{ system: SNOMED, code: '44054006', display: 'Diabetes mellitus type 2' }] } },
    { resourceType: 'MedicationStatement', status: 'active', subject: { reference: patient },
      medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '314076', display: 'lisinopril 10 MG Oral Tablet' }] } },
  ] as Resource[];
}

type Part = ParametersParameter;
const part = (parts: Part[] | undefined, name: string): Part | undefined => parts?.find((p) => p.name === name);
const parts = (parts: Part[] | undefined, name: string): Part[] => parts?.filter((p) => p.name === name) ?? [];

function assessment(body: Parameters, model: string, condition?: string): Part[] {
  const found = (body.parameter ?? []).find(
    (p) => p.name === 'assessment' && part(p.part, 'model')?.valueString === model && (!condition || part(p.part, 'condition')?.valueCode === condition),
  );
  if (!found) throw new Error(`no ${model} assessment in ${JSON.stringify(body).slice(0, 300)}`);
  return found.part!;
}

describe.each(BACKENDS)('$risk-assess (%s)', (backend) => {
  const server = useServer(backend);
  let patientId = '';

  beforeAll(async () => {
    const patient = await create(server, { resourceType: 'Patient', gender: 'female', birthDate: birthDateForAge(50) });
    patientId = patient.id;
    for (const r of preventExample(`Patient/${patientId}`)) await create(server, r);
  });

  test('PREVENT reproduces the published example end to end and is explained, saved and cited', async () => {
    const res = await server.request(`Patient/${patientId}/$risk-assess`, { method: 'POST', json: { resourceType: 'Parameters', parameter: [{ name: 'condition', valueCode: 'cardiovascular' }, { name: 'condition', valueCode: 'stroke' }] } });
    expect(res.status).toBe(200);
    const ascvd = assessment(res.body, 'prevent-10yr', 'cardiovascular');
    expect(part(ascvd, 'status')?.valueCode).toBe('ok');
    // preventr 0.12.0 README: ASCVD 0.092, stroke 0.054, total CVD 0.147, HF 0.081, CHD 0.044.
    expect(part(ascvd, 'probability')?.valueDecimal).toBeCloseTo(0.092, 3);
    const details = Object.fromEntries(parts(ascvd, 'detail').map((d) => [part(d.part, 'name')?.valueString, part(d.part, 'value')?.valueDecimal]));
    expect(details['prevent-cvd-10yr']).toBeCloseTo(0.147, 3);
    expect(details['prevent-hf-10yr']).toBeCloseTo(0.081, 3);
    expect(details['prevent-chd-10yr']).toBeCloseTo(0.044, 3);
    expect(part(assessment(res.body, 'prevent-10yr', 'stroke'), 'probability')?.valueDecimal).toBeCloseTo(0.054, 3);
    // Contributions sum to the log-odds difference from the reference profile.
    const explanation = part(ascvd, 'explanation')!.part!;
    const total = parts(explanation, 'contribution').reduce((s, c) => s + part(c.part, 'contribution')!.valueDecimal!, 0);
    const p = part(ascvd, 'probability')!.valueDecimal!;
    expect(part(explanation, 'baseline')!.valueDecimal! + total).toBeCloseTo(Math.log(p / (1 - p)), 4);
    expect(part(ascvd, 'intervalNote')?.valueString).toMatch(/no coefficient covariance/);
    // Saved as a RiskAssessment with method, basis and model card.
    const ref = part(ascvd, 'riskAssessment')!.valueReference!.reference!;
    const saved = await server.request(ref);
    expect(saved.status).toBe(200);
    expect(saved.body.method.coding[0].code).toBe('prevent-10yr');
    expect(saved.body.prediction[0].probabilityDecimal).toBeCloseTo(0.092, 3);
    // One RiskAssessment per condition: the primary instrument first, then the other models, each named and graded.
    const models = saved.body.prediction.map((p: { extension: { url: string; valueCoding?: { code: string }; valueBoolean?: boolean }[] }) => ({
      model: p.extension.find((e) => e.url.endsWith('/risk-model'))?.valueCoding?.code,
      research: p.extension.some((e) => e.url.endsWith('/research-grade') && e.valueBoolean),
    }));
    expect(models).toEqual([{ model: 'prevent-10yr', research: false }, { model: 'pce-ascvd', research: false }, { model: 'cardiovascular-ml', research: true }]);
    expect(part(assessment(res.body, 'cardiovascular-ml'), 'riskAssessment')?.valueReference?.reference).toBe(ref);
    expect(saved.body.prediction[0].qualitativeRisk.coding[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/risk-probability', code: 'moderate' });
    expect(saved.body.basis.map((b: { reference: string }) => b.reference.split('/')[0]).sort()).toEqual(
      expect.arrayContaining(['Condition', 'MedicationStatement', 'Observation']),
    );
    // Stored without write-time validation (server-composed), so the structure is checked here.
    const validation = await server.request('RiskAssessment/$validate', { method: 'POST', json: saved.body });
    expect(validation.body.issue.filter((i: { severity: string }) => i.severity === 'error')).toEqual([]);
    const card = await fetch(saved.body.extension[0].valueUri);
    expect(card.status).toBe(200);
    expect(((await card.json()) as { name: string }).name).toBe('prevent-10yr');
  });

  test('an implausible value is excluded and reported; the previous plausible one is used', async () => {
    const outlier = await create(server, bloodPressure(`Patient/${patientId}`, 900, 1));
    const res = await server.request(`Patient/${patientId}/$risk-assess?condition=cardiovascular`, { method: 'POST' });
    expect(res.status).toBe(200);
    const ascvd = assessment(res.body, 'prevent-10yr');
    expect(part(ascvd, 'probability')?.valueDecimal).toBeCloseTo(0.092, 3);
    const excluded = parts(ascvd, 'excluded').map((e) => Object.fromEntries(e.part!.map((p) => [p.name, p.valueString ?? p.valueDecimal ?? p.valueReference?.reference])));
    expect(excluded).toContainEqual(expect.objectContaining({ input: 'sbp', value: 900, source: `Observation/${outlier.id}` }));
    expect(excluded.find((e) => e.input === 'sbp')?.reason).toMatch(/implausible/);
    await server.request(`Observation/${outlier.id}`, { method: 'DELETE' });
  });

  test('a RiskAssessment gets a new version only when the result changes', async () => {
    const run = async (): Promise<string> => {
      const res = await server.request(`Patient/${patientId}/$risk-assess?condition=cardiovascular`, { method: 'POST' });
      return part(assessment(res.body, 'prevent-10yr'), 'riskAssessment')!.valueReference!.reference!;
    };
    const ref = await run();
    const before = (await server.request(ref)).body.meta.versionId;
    expect(await run()).toBe(ref);
    expect((await server.request(ref)).body.meta.versionId).toBe(before);
    await create(server, lab(`Patient/${patientId}`, '2093-3', 260, 'mg/dL', 1));
    expect(await run()).toBe(ref);
    const history = await server.request(`${ref}/_history`);
    expect(history.body.entry.length).toBe(Number(before) + 1);
    expect(history.body.entry[0].resource.prediction[0].probabilityDecimal).toBeGreaterThan(history.body.entry[1].resource.prediction[0].probabilityDecimal);
  });

  test('every condition answers; missing inputs give insufficient_data listing them, never a number', async () => {
    const empty = await create(server, { resourceType: 'Patient', gender: 'male', birthDate: birthDateForAge(60) });
    const res = await server.request(`Patient/${empty.id}/$risk-assess`, { method: 'POST' });
    expect(res.status).toBe(200);
    const conditions = new Set(parts(res.body.parameter, 'assessment').map((a) => part(a.part, 'condition')?.valueCode));
    expect([...conditions].sort()).toEqual(['anaemia', 'breast-cancer', 'cardiovascular', 'ckd', 'diabetes', 'liver', 'stroke', 'thyroid']);
    const prevent = assessment(res.body, 'prevent-10yr', 'cardiovascular');
    expect(part(prevent, 'status')?.valueCode).toBe('insufficient_data');
    expect(part(prevent, 'probability')).toBeUndefined();
    expect(parts(prevent, 'missing').map((m) => m.valueString)).toEqual(expect.arrayContaining(['tc', 'hdl', 'sbp']));
    // Published instruments need their inputs; research-grade models may answer from age and sex (imputing the rest).
    const ra = await server.request(`RiskAssessment?patient=Patient/${empty.id}&_tag=https://carelens.dev/fhir/CodeSystem/model-grade|published-instrument&_summary=count`);
    expect(ra.body.total).toBe(0);
  });

  test('bad input: unknown patient 404, unknown condition 400 listing the valid ones, bad lookback 400', async () => {
    expect((await server.request('Patient/no-such-patient/$risk-assess', { method: 'POST' })).status).toBe(404);
    const unknown = await server.request(`Patient/${patientId}/$risk-assess?condition=gout`, { method: 'POST' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.issue[0].details.text).toMatch(/"gout".*diabetes, cardiovascular, stroke, ckd, liver, anaemia, thyroid, breast-cancer/);
    expect((await server.request(`Patient/${patientId}/$risk-assess?lookbackDays=-3`, { method: 'POST' })).status).toBe(400);
    expect((await server.request(`Patient/${patientId}/$risk-assess`)).status).toBe(405);
  });

  test('POST Patient/$risk-assess assesses posted data and stores nothing', async () => {
    const before = (await server.request('RiskAssessment?_summary=count')).body.total;
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: { resourceType: 'Patient', id: 'posted', gender: 'male', birthDate: birthDateForAge(70) } }, ...[
        lab('Patient/posted', '2160-0', 2.0, 'mg/dL'), lab('Patient/posted', '9318-7', 300, 'mg/g'),
        lab('Patient/posted', '1920-8', 30, 'U/L'), lab('Patient/posted', '1742-6', 30, 'U/L'), lab('Patient/posted', '777-3', 200, '10*3/uL'),
        lab('Patient/posted', '718-7', 12.1, 'g/dL'), lab('Patient/posted', '3016-3', 12, 'm[IU]/L'),
      ].map((resource) => ({ resource }))],
    };
    const res = await server.request('Patient/$risk-assess', { method: 'POST', json: bundle });
    expect(res.status).toBe(200);
    const ckd = assessment(res.body, 'ckd-epi-2021');
    // Worked examples from models/VERIFICATION.md. CKD-EPI 2021: male, 70, creatinine 2.0 mg/dL → 35.2: G3b with A2 → red.
    expect(part(ckd, 'score')!.part![0].valueDecimal).toBeCloseTo(35.2, 1);
    expect(part(ckd, 'category')?.valueCoding?.code).toBe('very-high');
    // FIB-4: 70 y, AST 30, ALT 30, platelets 200 → 1.92: low with the age ≥65 cut-off of 2.0.
    const fib4 = assessment(res.body, 'fib4');
    expect(part(fib4, 'score')!.part![0].valueDecimal).toBeCloseTo(1.92, 2);
    expect(part(fib4, 'category')?.valueCoding?.code).toBe('low');
    expect(part(assessment(res.body, 'who-anaemia'), 'category')?.valueCoding?.code).toBe('mild');
    expect(part(assessment(res.body, 'thyroid-tsh-ft4'), 'category')?.valueCoding?.code).toBe('subclinical-hypothyroidism');
    expect(part(assessment(res.body, 'kfre-4v'), 'status')?.valueCode).toBe('ok');
    expect((await server.request('RiskAssessment?_summary=count')).body.total).toBe(before);
    expect((await server.request('Patient/$risk-assess', { method: 'POST', json: { resourceType: 'Observation', status: 'final', code: {} } })).status).toBe(400);
  });

  test('a Group is assessed inline when small and by a job (202 + Task $status) when asked to be async', async () => {
    const other = await create(server, { resourceType: 'Patient', gender: 'female', birthDate: birthDateForAge(50) });
    for (const r of preventExample(`Patient/${other.id}`)) await create(server, r);
    const group = await create(server, { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${patientId}` } }, { entity: { reference: `Patient/${other.id}` } }] });
    const inline = await server.request(`Group/${group.id}/$risk-assess?condition=cardiovascular`, { method: 'POST' });
    expect(inline.status).toBe(200);
    expect(parts(inline.body.parameter, 'patient').map((p) => part(p.part, 'subject')?.valueReference?.reference).sort()).toEqual([`Patient/${other.id}`, `Patient/${patientId}`].sort());
    const queued = await server.request(`Group/${group.id}/$risk-assess?condition=ckd`, { method: 'POST', headers: { Prefer: 'respond-async' } });
    expect(queued.status).toBe(202);
    const statusUrl = queued.headers.get('Content-Location')!;
    // The in-process worker may already be running it; poll as a client would.
    let done = await server.request(statusUrl);
    for (let i = 0; i < 100 && done.status === 202; i++) {
      await server.runJobs();
      await new Promise((resolve) => setTimeout(resolve, 100));
      done = await server.request(statusUrl);
    }
    expect(done.status).toBe(200);
    expect(done.body.status).toBe('completed');
    expect(done.body.output.find((o: { type: { text: string } }) => o.type.text === 'patients-assessed').valueInteger).toBe(2);
  });

  test('model cards are listed and served; monitoring counts predictions and input drift; reload is idempotent', async () => {
    const list = await fetch(`${server.origin}/models`).then((r) => r.json() as Promise<{ models: { name: string; kind: string; researchGrade: boolean; loaded: boolean }[] }>);
    const names = list.models.map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['prevent-10yr', 'pce-ascvd', 'ckd-epi-2021', 'kfre-4v', 'fib4', 'apri', 'who-anaemia', 'thyroid-tsh-ft4', 'cha2ds2-vasc', 'findrisc', 'ada-risk-test', 'ada-glycaemia', 'breast-markers']));
    const ml = list.models.filter((m) => m.kind === 'ml-ensemble');
    expect(ml.length).toBeGreaterThan(0);
    expect(ml.every((m) => m.researchGrade && m.loaded)).toBe(true);
    expect((await fetch(`${server.origin}/models/no-such-model`)).status).toBe(404);
    expect((await fetch(`${server.origin}/admin/models`)).status).toBe(401);
    const admin = await clientCredentialsToken(server.origin, OPERATOR.id, OPERATOR.secret, 'system/*.cruds');
    const monitoring = await fetch(`${server.origin}/admin/models`, { headers: { Authorization: `Bearer ${admin}` } }).then((r) => r.json() as Promise<{ monitoring: { model: string; predictions: Record<string, number>; psi?: Record<string, { observed: number }> }[] }>);
    const prevent = monitoring.monitoring.find((m) => m.model === 'prevent-10yr');
    expect(prevent?.predictions.ok).toBeGreaterThan(0);
    expect(monitoring.monitoring.some((m) => m.psi !== undefined)).toBe(true);
    const reload = await fetch(`${server.origin}/admin/models/reload`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` } }).then((r) => r.json() as Promise<{ unchanged: string[]; failed: unknown[] }>);
    expect(reload.failed).toEqual([]);
    expect(reload.unchanged.length).toBe(ml.length);
    const metrics = await fetch(`${server.origin}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/carelens_model_predictions_total\{model="prevent-10yr",status="ok"\} [1-9]/);
  });
});

const SYNTHEA = join(SHARED_DATA, 'synthea-r4');
const HAVE_SYNTHEA = hasSharedData('synthea-r4');
if (!HAVE_SYNTHEA) {
  process.stderr.write(`risk-assess.test.ts Synthea suite SKIPPED: ${SYNTHEA} is missing\n`);
}
(HAVE_SYNTHEA ? describe : describe.skip)('$risk-assess over the Synthea patients (pglite)', () => {
  const server = useServer('pglite');

  test('every patient gets an answer for every condition: a number where the record and the model allow, else the reason', async () => {
    const files = readdirSync(SYNTHEA).filter((f) => f.endsWith('.json')).sort((a, b) => Number(/^[a-z]/.test(b)) - Number(/^[a-z]/.test(a)));
    const patients: string[] = [];
    for (const file of files) {
      const bundle = JSON.parse(readFileSync(join(SYNTHEA, file), 'utf8')) as Bundle;
      const res = await server.request('', { method: 'POST', json: bundle });
      expect(res.status).toBe(200);
      for (const entry of res.body.entry as { response: { location: string } }[]) {
        const patient = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})\/_history\//.exec(entry.response.location);
        if (patient) patients.push(patient[1]);
      }
    }
    expect(patients.length).toBeGreaterThan(0);
    const statuses: Record<string, number> = {};
    let answeredConditions = 0;
    for (const id of patients) {
      const patient = (await server.request(`Patient/${id}`)).body as { birthDate: string };
      const adult = Date.now() - Date.parse(patient.birthDate) >= 18 * 365.25 * 86_400_000;
      const res = await server.request(`Patient/${id}/$risk-assess?lookbackDays=36500`, { method: 'POST' });
      expect(res.status).toBe(200);
      const found = parts(res.body.parameter, 'assessment');
      expect(new Set(found.map((a) => part(a.part, 'condition')?.valueCode)).size).toBe(8);
      answeredConditions += new Set(found.filter((a) => part(a.part, 'status')?.valueCode === 'ok').map((a) => part(a.part, 'condition')?.valueCode)).size;
      for (const a of found) {
        const status = part(a.part, 'status')!.valueCode!;
        statuses[status] = (statuses[status] ?? 0) + 1;
        const probability = part(a.part, 'probability')?.valueDecimal;
        if (status === 'ok') {
          if (probability !== undefined) {
            expect(probability).toBeGreaterThanOrEqual(0);
            expect(probability).toBeLessThanOrEqual(1);
          }
        } else {
          expect(probability).toBeUndefined();
          expect(part(a.part, 'reason')?.valueString).toBeTruthy();
        }
        if (status === 'insufficient_data') expect(parts(a.part, 'missing').length).toBeGreaterThan(0);
        // Adult equations and models never answer for children.
        if (!adult && ['prevent-10yr', 'pce-ascvd', 'cardiovascular-ml', 'stroke-ml', 'ckd-epi-2021', 'fib4'].includes(part(a.part, 'model')!.valueString!)) {
          expect(status).not.toBe('ok');
        }
      }
    }
    expect(Object.keys(statuses).every((s) => ['ok', 'insufficient_data', 'not_applicable'].includes(s))).toBe(true);
    const saved = await server.request('RiskAssessment?_summary=count');
    expect(saved.body.total).toBe(answeredConditions);
  });
});
