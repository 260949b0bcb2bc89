import type { DocumentReference, Resource } from '@medplum/fhirtypes';
import { BACKENDS, clientCredentialsToken, create, OPERATOR, useServer, type TestResponse } from './harness.js';

/**
 * Search semantics per parameter type (FHIR R4 search page). Every test creates its own data
 * under a unique marker (identifier system or code system), so tests never see each other's data,
 * and every expected id set below was worked out by hand from the spec's rules.
 */
describe.each(BACKENDS)('FHIR search on %s', (backend) => {
  const server = useServer(backend);

  let seq = 0;
  const marker = (name: string): string => `urn:carelens-test:${name}:${++seq}`;

  async function search(path: string): Promise<TestResponse> {
    const res = await server.request(path);
    if (res.status !== 200) {
      throw new Error(`GET ${path} → ${res.status} ${res.text}`);
    }
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('searchset');
    return res;
  }
  const matchIds = (res: TestResponse): string[] =>
    (res.body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.id).sort();
  const includeKeys = (res: TestResponse): string[] =>
    (res.body.entry ?? []).filter((e: any) => e.search?.mode === 'include').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort();
  async function ids(path: string): Promise<string[]> {
    return matchIds(await search(path));
  }
  const sorted = (...xs: { id: string }[]): string[] => xs.map((x) => x.id).sort();
  const q = encodeURIComponent;

  /** A Patient carrying the test's identifier system. */
  function patient(sys: string, extra: Record<string, unknown> = {}): Promise<Resource & { id: string }> {
    return create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: String(++seq) }], ...extra } as Resource);
  }
  /** An Observation whose code is in the test's code system. */
  function observation(sys: string, extra: Record<string, unknown> = {}, code = 'x'): Promise<Resource & { id: string }> {
    return create(server, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: sys, code }] }, ...extra } as Resource);
  }

  /** A heart-rate Observation valid against the R4 vital-signs heartrate profile. */
  function heartRate(sys: string, patientId: string, extra: Record<string, unknown> = {}): Promise<Resource & { id: string }> {
    return create(server, {
      resourceType: 'Observation',
      status: 'final',
      identifier: [{ system: sys, value: String(++seq) }],
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
      subject: { reference: `Patient/${patientId}` },
      effectiveDateTime: '2024-03-15T10:00:00Z',
      valueQuantity: { value: 72, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
      ...extra,
    } as Resource);
  }

  describe('string', () => {
    test('default is case- and accent-insensitive starts-with on any HumanName part', async () => {
      const sys = marker('string');
      const muller = await patient(sys, { name: [{ family: 'Müller', given: ['Jürgen'] }] });
      const mull = await patient(sys, { name: [{ family: 'Mull', given: ['Anna'] }] });
      const smuller = await patient(sys, { name: [{ family: 'Schmüller', given: ['Eva'], prefix: ['Dr'] }] });
      const base = `Patient?identifier=${q(sys + '|')}`;
      // accent-insensitive both ways: "müll" and "mull" are the same search
      expect(await ids(`${base}&name=${q('müll')}`)).toEqual(sorted(muller, mull));
      expect(await ids(`${base}&name=${q('müller')}`)).toEqual(sorted(muller));
      expect(await ids(`${base}&name=MULL`)).toEqual(sorted(muller, mull));
      expect(await ids(`${base}&name=mull`)).toEqual(sorted(muller, mull));
      expect(await ids(`${base}&family=muller`)).toEqual(sorted(muller));
      expect(await ids(`${base}&given=jurg`)).toEqual(sorted(muller));
      expect(await ids(`${base}&name=dr`)).toEqual(sorted(smuller)); // prefix is a name part
      expect(await ids(`${base}&family=${q('üller')}`)).toEqual([]); // starts-with, not contains
      // :exact is case- and accent-sensitive and whole-string
      expect(await ids(`${base}&family:exact=${q('Müller')}`)).toEqual(sorted(muller));
      expect(await ids(`${base}&family:exact=Muller`)).toEqual([]);
      expect(await ids(`${base}&family:exact=${q('Müll')}`)).toEqual([]);
      expect(await ids(`${base}&family:exact=Mull`)).toEqual(sorted(mull));
      // :contains anywhere, insensitive
      expect(await ids(`${base}&family:contains=ULLE`)).toEqual(sorted(muller, smuller));
      expect(await ids(`${base}&family:contains=${q('hmü')}`)).toEqual(sorted(smuller));
    });

    test('Address parts and address-city', async () => {
      const sys = marker('address');
      const a = await patient(sys, { address: [{ line: ['12 Rue de la Paix'], city: 'Paris', postalCode: '75002', country: 'FR' }] });
      const b = await patient(sys, { address: [{ line: ['1 Main St'], city: 'Springfield', state: 'IL', postalCode: '62701' }] });
      const base = `Patient?identifier=${q(sys + '|')}`;
      expect(await ids(`${base}&address=paris`)).toEqual(sorted(a));
      expect(await ids(`${base}&address=12%20rue`)).toEqual(sorted(a));
      expect(await ids(`${base}&address=627`)).toEqual(sorted(b));
      expect(await ids(`${base}&address-city=spring`)).toEqual(sorted(b));
      expect(await ids(`${base}&address-city=paris,springfield`)).toEqual(sorted(a, b));
      expect(await ids(`${base}&address-postalcode=75002`)).toEqual(sorted(a));
      expect(await ids(`${base}&address-state=IL`)).toEqual(sorted(b));
      expect(await ids(`${base}&address:contains=main`)).toEqual(sorted(b));
    });
  });

  describe('token', () => {
    test('code, system|code, |code, system|, :not, :text, :missing', async () => {
      const sys = marker('token');
      const loinc = 'http://loinc.org';
      const hr = await observation(sys, { category: [{ coding: [{ system: loinc, code: '8867-4', display: 'Heart rate' }], text: 'Pulse' }] });
      const noSys = await observation(sys, { category: [{ coding: [{ code: '8867-4' }] }] });
      const other = await observation(sys, { category: [{ coding: [{ system: 'urn:other', code: '8867-4', display: 'Other thing' }] }] });
      const textOnly = await observation(sys, { category: [{ text: 'Heart rhythm' }] });
      const none = await observation(sys);
      const base = `Observation?code=${q(sys + '|')}`;
      expect(await ids(base)).toEqual(sorted(hr, noSys, other, textOnly, none));
      expect(await ids(`${base}&category=8867-4`)).toEqual(sorted(hr, noSys, other));
      expect(await ids(`${base}&category=${q(loinc + '|8867-4')}`)).toEqual(sorted(hr));
      expect(await ids(`${base}&category=${q('|8867-4')}`)).toEqual(sorted(noSys));
      expect(await ids(`${base}&category=${q(loinc + '|')}`)).toEqual(sorted(hr));
      expect(await ids(`${base}&category=${q(loinc + '|8867-4,urn:other|8867-4')}`)).toEqual(sorted(hr, other));
      // :not includes resources without any value for the parameter
      expect(await ids(`${base}&category:not=${q(loinc + '|8867-4')}`)).toEqual(sorted(noSys, other, textOnly, none));
      // :text searches Coding.display and CodeableConcept.text
      expect(await ids(`${base}&category:text=heart`)).toEqual(sorted(hr, textOnly));
      expect(await ids(`${base}&category:text=pulse`)).toEqual(sorted(hr));
      expect(await ids(`${base}&category:missing=true`)).toEqual(sorted(none));
      expect(await ids(`${base}&category:missing=false`)).toEqual(sorted(hr, noSys, other, textOnly));
      // code is case-sensitive for a token
      expect(await ids(`${base}&category=${q(loinc + '|8867-4'.toUpperCase() + 'X')}`)).toEqual([]);
    });

    test('identifier and boolean (Patient.active), gender', async () => {
      const sys = marker('ident');
      const a = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'A-1' }], active: true, gender: 'female' });
      const b = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'B-2' }], active: false, gender: 'male' });
      const c = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'C-3' }], gender: 'female' });
      const base = `Patient?identifier=${q(sys + '|')}`;
      expect(await ids(`Patient?identifier=${q(sys + '|A-1')}`)).toEqual(sorted(a));
      expect(await ids(`Patient?identifier=${q(sys + '|A-1,' + sys + '|C-3')}`)).toEqual(sorted(a, c));
      expect(await ids(`Patient?identifier=${q(sys + '|a-1')}`)).toEqual([]);
      expect(await ids(`${base}&active=true`)).toEqual(sorted(a));
      expect(await ids(`${base}&active=false`)).toEqual(sorted(b));
      expect(await ids(`${base}&active:not=true`)).toEqual(sorted(b, c));
      expect(await ids(`${base}&active:missing=true`)).toEqual(sorted(c));
      expect(await ids(`${base}&gender=female`)).toEqual(sorted(a, c));
      // AND of repeated parameters
      expect(await ids(`${base}&gender=female&active=true`)).toEqual(sorted(a));
      expect(await ids(`${base}&identifier=${q(sys + '|B-2')}&gender=female`)).toEqual([]);
    });

    test('identifier :of-type matches the type coding and the value together', async () => {
      const v2 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
      const sys = marker('oftype');
      const typed = (code: string, value: string) => ({ system: sys, value, type: { coding: [{ system: v2, code }] } });
      const mrn = await create(server, { resourceType: 'Patient', identifier: [typed('MR', '446053'), typed('SS', '999')] });
      const ssn = await create(server, { resourceType: 'Patient', identifier: [typed('SS', '446053')] });
      const untyped = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: '446053' }] });
      expect(await ids(`Patient?identifier=${q(sys + '|446053')}`)).toEqual(sorted(mrn, ssn, untyped));
      expect(await ids(`Patient?identifier:of-type=${q(`${v2}|MR|446053`)}`)).toEqual(sorted(mrn));
      expect(await ids(`Patient?identifier:of-type=${q(`${v2}|SS|446053`)}`)).toEqual(sorted(ssn));
      // the type and value of one identifier, not of two
      expect(await ids(`Patient?identifier:of-type=${q(`${v2}|MR|999`)}`)).toEqual([]);
      const incomplete = await server.request(`Patient?identifier:of-type=${q(`${v2}|MR`)}`);
      expect(incomplete.status).toBe(400);
      expect(incomplete.body.issue[0].details.text).toBe(`:of-type takes [system]|[code]|[value] (the identifier's type coding and its value), got "${v2}|MR"`);
    });
  });

  describe('reference', () => {
    test('id, Type/id, absolute URL on this server, :Type modifier', async () => {
      const sys = marker('ref');
      const p = await patient(sys);
      const g = await create(server, { resourceType: 'Group', type: 'person', actual: true });
      const o1 = await observation(sys, { subject: { reference: `Patient/${p.id}` } });
      const o2 = await observation(sys, { subject: { reference: `${server.base}/Patient/${p.id}` } });
      const o3 = await observation(sys, { subject: { reference: `Group/${g.id}` } });
      const o4 = await observation(sys, { subject: { reference: `http://elsewhere.example/fhir/Patient/${p.id}` } });
      const base = `Observation?code=${q(sys + '|')}`;
      expect(await ids(`${base}&subject=Patient/${p.id}`)).toEqual(sorted(o1, o2));
      expect(await ids(`${base}&subject=${p.id}`)).toEqual(sorted(o1, o2));
      expect(await ids(`${base}&subject:Patient=${p.id}`)).toEqual(sorted(o1, o2));
      expect(await ids(`${base}&subject:Group=${g.id}`)).toEqual(sorted(o3));
      expect(await ids(`${base}&patient=${p.id}`)).toEqual(sorted(o1, o2));
      expect(await ids(`${base}&subject=${q(`${server.base}/Patient/${p.id}`)}`)).toEqual(sorted(o1, o2));
      expect(await ids(`${base}&subject=${q(`http://elsewhere.example/fhir/Patient/${p.id}`)}`)).toEqual(sorted(o4));
      expect(await ids(`${base}&subject=Patient/${p.id},Group/${g.id}`)).toEqual(sorted(o1, o2, o3));
      expect(await ids(`${base}&subject:missing=true`)).toEqual([]);
      // Neither an id, Type/id nor an absolute URL: a precise 400, not a scan for a string nobody stored.
      for (const bad of ['Patient/', 'Patient/a/b', 'not a reference']) {
        const res = await server.request(`${base}&subject=${q(bad)}`);
        expect(res.status).toBe(400);
        expect(res.body.issue[0].details.text).toContain('subject');
      }
    });
  });

  describe('date', () => {
    test('every prefix against values of different precision and a Period', async () => {
      const sys = marker('date');
      const make = (extra: Record<string, unknown>): Promise<Resource & { id: string }> => observation(sys, extra);
      const y = await make({ effectiveDateTime: '2024' }); // [2024-01-01, 2025-01-01)
      const m = await make({ effectiveDateTime: '2024-03' }); // [03-01, 04-01)
      const d = await make({ effectiveDateTime: '2024-03-15' }); // [03-15, 03-16)
      const t = await make({ effectiveDateTime: '2024-03-15T10:00:00+02:00' }); // 08:00:00Z, one second
      const e = await make({ effectiveDateTime: '2023-12-31' }); // [2023-12-31, 2024-01-01)
      const p = await make({ effectivePeriod: { start: '2024-03-10', end: '2024-03-20' } }); // [03-10, 03-21)
      const g = await make({ effectiveDateTime: '2024-06-01' }); // [06-01, 06-02)
      const far = await make({ effectiveDateTime: '2015-01-01' });
      const base = `Observation?code=${q(sys + '|')}&date=`;
      const all = [y, m, d, t, e, p, g, far];
      expect(await ids(`${base}2024-03-15`)).toEqual(sorted(d, t));
      expect(await ids(`${base}eq2024-03-15`)).toEqual(sorted(d, t));
      expect(await ids(`${base}2024-03`)).toEqual(sorted(m, d, t, p));
      expect(await ids(`${base}2024`)).toEqual(sorted(y, m, d, t, p, g));
      expect(await ids(`${base}ne2024-03`)).toEqual(sorted(y, e, g, far));
      expect(await ids(`${base}gt2024-03-15`)).toEqual(sorted(y, m, p, g));
      expect(await ids(`${base}lt2024-03-15`)).toEqual(sorted(y, m, e, p, far));
      expect(await ids(`${base}ge2024-03-15`)).toEqual(sorted(y, m, d, t, p, g));
      expect(await ids(`${base}le2024-03-15`)).toEqual(sorted(y, m, d, t, e, p, far));
      expect(await ids(`${base}sa2024-03-15`)).toEqual(sorted(g));
      expect(await ids(`${base}eb2024-03-15`)).toEqual(sorted(e, far));
      // the dateTime with a +02:00 offset is 08:00Z
      expect(await ids(`${base}${q('2024-03-15T08:00:00Z')}`)).toEqual(sorted(t));
      expect(await ids(`${base}${q('gt2024-03-15T09:00:00Z')}`)).toEqual(sorted(y, m, d, p, g));
      expect(await ids(`${base}${q('lt2024-03-15T08:00:00+01:00')}`)).toEqual(sorted(y, m, d, e, p, far)); // 07:00Z
      // ap: overlaps the value widened by 10% of its distance from now; never reaches 2015
      const ap = await ids(`${base}ap2024-03-15`);
      expect(ap).toEqual(expect.arrayContaining(sorted(y, m, d, t, p)));
      expect(ap).not.toContain(far.id);
      // AND of two dates: a range
      expect(await ids(`${base}ge2024-03-01&date=lt2024-04-01`)).toEqual(sorted(y, m, d, t, p));
      expect(all).toHaveLength(8);
    });

    test('Encounter.period as the target of date', async () => {
      const sys = marker('enc');
      const enc = (period: Record<string, string>): Promise<Resource & { id: string }> =>
        create(server, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, identifier: [{ system: sys, value: String(++seq) }], period } as Resource);
      const closed = await enc({ start: '2024-03-10T09:00:00Z', end: '2024-03-20T17:00:00Z' });
      const open = await enc({ start: '2024-03-18T00:00:00Z' }); // ongoing
      const before = await enc({ start: '2024-02-01', end: '2024-02-03' });
      const base = `Encounter?identifier=${q(sys + '|')}&date=`;
      expect(await ids(`${base}2024-03`)).toEqual(sorted(closed));
      expect(await ids(`${base}ge2024-03-19`)).toEqual(sorted(closed, open));
      expect(await ids(`${base}gt2024-03-21`)).toEqual(sorted(open));
      expect(await ids(`${base}lt2024-03-12`)).toEqual(sorted(closed, before));
      expect(await ids(`${base}eb2024-03-01`)).toEqual(sorted(before));
      expect(await ids(`${base}sa2024-03-05`)).toEqual(sorted(closed, open));
      expect(await ids(`${base}ne2024-03`)).toEqual(sorted(open, before));
      expect(await ids(`${base}ge2024-03-12&date=le2024-03-15`)).toEqual(sorted(closed));
    });
  });

  test('reference :identifier matches Reference.identifier (logical references, with or without a literal reference)', async () => {
    const sys = marker('ref-identifier');
    const mrn = marker('mrn');
    const logical = await observation(sys, { subject: { identifier: { system: mrn, value: 'A-17' }, display: 'held elsewhere' } });
    const both = await observation(sys, { subject: { reference: `Patient/${(await patient(sys)).id}`, identifier: { system: mrn, value: 'A-17' } } });
    const other = await observation(sys, { subject: { identifier: { system: mrn, value: 'B-2' } } });
    const base = `Observation?code=${q(sys + '|x')}`;
    expect(await ids(`${base}&subject:identifier=${q(mrn + '|A-17')}`)).toEqual(sorted(logical, both));
    expect(await ids(`${base}&subject:identifier=A-17,B-2`)).toEqual(sorted(logical, both, other));
    expect(await ids(`${base}&subject:identifier=${q('urn:other|A-17')}`)).toEqual([]);
    // As the first criterion it drives the query from the token index.
    expect(await ids(`Observation?subject:identifier=${q(mrn + '|B-2')}&code=${q(sys + '|x')}`)).toEqual(sorted(other));
    // Index rows lost (as for data stored before a rule existed) come back with a reindex.
    await server.sql.query(`DELETE FROM sp_token WHERE resource_type = 'Observation' AND code = 'subject:identifier'`);
    expect(await ids(`${base}&subject:identifier=${q(mrn + '|A-17')}`)).toEqual([]);
    expect(await server.repository.reindex('Observation')).toBeGreaterThanOrEqual(3);
    expect(await ids(`${base}&subject:identifier=${q(mrn + '|A-17')}`)).toEqual(sorted(logical, both));
  });

  test('a choice element searched by one of its types (.as(T)) matches only values of that type', async () => {
    const sys = marker('choice-as');
    const subject = { reference: `Patient/${(await patient(sys)).id}` };
    const condition = (extra: Record<string, unknown>) =>
      create(server, { resourceType: 'Condition', identifier: [{ system: sys, value: String(++seq) }], subject, ...extra } as Resource);
    const resolved = { clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'resolved' }] } };
    const byAge = await condition({ ...resolved, abatementAge: { value: 54, unit: 'years', system: 'http://unitsofmeasure.org', code: 'a' } });
    const byText = await condition({ ...resolved, abatementString: 'around April 9, 2013' });
    const byDate = await condition({ onsetDateTime: '2012-05-24' });
    const base = `Condition?identifier=${q(sys + '|')}`;
    // Condition.abatement.as(string): the text only, not the parts of an Age.
    expect(await ids(`${base}&abatement-string=around`)).toEqual(sorted(byText));
    expect(await ids(`${base}&abatement-string=years`)).toEqual([]);
    // Condition.abatement.as(Age) | .as(Range), and onset-age against a dateTime onset.
    expect(await ids(`${base}&abatement-age=54`)).toEqual(sorted(byAge));
    expect(await ids(`${base}&onset-age:missing=false`)).toEqual([]);
    expect(await ids(`${base}&onset-date=2012-05`)).toEqual(sorted(byDate));
  });

  test('token :in and :not-in against a value set from the R4 definitions', async () => {
    const sys = marker('token-in');
    const vital = await observation(sys, { category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }] });
    const lab = await observation(sys, { category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }] });
    const local = await observation(sys, { category: [{ coding: [{ system: 'urn:local:category', code: 'vital-signs' }] }] });
    const base = `Observation?code=${q(sys + '|x')}`;
    const vs = q('http://hl7.org/fhir/ValueSet/observation-category');
    expect(await ids(`${base}&category:in=${vs}`)).toEqual(sorted(vital, lab));
    expect(await ids(`${base}&category:not-in=${vs}`)).toEqual(sorted(local));
    // code elements (no system in the index) match on the bare code
    expect(await ids(`${base}&status:in=${q('http://hl7.org/fhir/ValueSet/observation-status')}`)).toEqual(sorted(vital, lab, local));
    const unknown = await server.request(`${base}&category:in=${q('http://example.org/ValueSet/nope')}`);
    expect(unknown.status).toBe(400);
  });

  test('number: implicit precision and prefixes (RiskAssessment probability)', async () => {
    const sys = marker('num');
    const ra = (p: number): Promise<Resource & { id: string }> =>
      create(server, {
        resourceType: 'RiskAssessment',
        status: 'final',
        identifier: [{ system: sys, value: String(++seq) }],
        subject: { reference: 'Patient/nobody' },
        prediction: [{ probabilityDecimal: p }],
      } as Resource);
    const a = await ra(0.45);
    const b = await ra(0.5);
    const c = await ra(0.549);
    const d = await ra(0.55);
    const e = await ra(0.9);
    const base = `RiskAssessment?identifier=${q(sys + '|')}&probability=`;
    expect(await ids(`${base}0.5`)).toEqual(sorted(a, b, c)); // [0.45, 0.55)
    expect(await ids(`${base}0.50`)).toEqual(sorted(b)); // [0.495, 0.505)
    expect(await ids(`${base}ne0.5`)).toEqual(sorted(d, e));
    expect(await ids(`${base}gt0.5`)).toEqual(sorted(c, d, e));
    expect(await ids(`${base}ge0.5`)).toEqual(sorted(b, c, d, e));
    expect(await ids(`${base}lt0.5`)).toEqual(sorted(a));
    expect(await ids(`${base}le0.5`)).toEqual(sorted(a, b));
    expect(await ids(`${base}0.45,0.9`)).toEqual(sorted(a, e));
  });

  test('quantity: prefixes, value|system|code and UCUM conversion', async () => {
    const sys = marker('qty');
    const ucum = 'http://unitsofmeasure.org';
    const mgdl = await observation(sys, { valueQuantity: { value: 100, unit: 'mg/dL', system: ucum, code: 'mg/dL' } });
    const gl = await observation(sys, { valueQuantity: { value: 2, unit: 'g/L', system: ucum, code: 'g/L' } });
    const mmol = await observation(sys, { valueQuantity: { value: 100, unit: 'mmol/L', system: ucum, code: 'mmol/L' } });
    const bare = await observation(sys, { valueQuantity: { value: 50, unit: 'widgets' } });
    const base = `Observation?code=${q(sys + '|')}&value-quantity=`;
    expect(await ids(`${base}100`)).toEqual(sorted(mgdl, mmol));
    expect(await ids(`${base}gt60`)).toEqual(sorted(mgdl, mmol));
    expect(await ids(`${base}lt60`)).toEqual(sorted(gl, bare));
    expect(await ids(`${base}le50`)).toEqual(sorted(gl, bare));
    expect(await ids(`${base}${q(`100|${ucum}|mg/dL`)}`)).toEqual(sorted(mgdl));
    expect(await ids(`${base}${q('100||mg/dL')}`)).toEqual(sorted(mgdl));
    expect(await ids(`${base}${q('50||widgets')}`)).toEqual(sorted(bare));
    // 100 mg/dL = 1 g/L = 0.1 g/dL
    expect(await ids(`${base}${q(`0.1|${ucum}|g/dL`)}`)).toEqual(sorted(mgdl));
    expect(await ids(`${base}${q(`1|${ucum}|g/L`)}`)).toEqual(sorted(mgdl));
    expect(await ids(`${base}${q(`gt1.5|${ucum}|g/L`)}`)).toEqual(sorted(gl)); // 2 g/L; 1 g/L is not > 1.5
    expect(await ids(`${base}${q(`lt1500|${ucum}|mg/L`)}`)).toEqual(sorted(mgdl)); // 1000 mg/L; not mmol/L (other dimension)
  });

  describe('composite', () => {
    const mmHg = (value: number): Record<string, unknown> => ({ value, unit: 'mm[Hg]', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' });
    const bp = (sys: string, systolic: number, diastolic: number): Promise<Resource & { id: string }> =>
      observation(
        sys,
        {
          component: [
            { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: mmHg(systolic) },
            { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: mmHg(diastolic) },
          ],
        },
        'bp',
      );

    test('component-code-value-quantity matches code and value within the same component', async () => {
      const sys = marker('composite');
      const high = await bp(sys, 150, 80);
      const low = await bp(sys, 118, 76);
      const base = `Observation?code=${q(sys + '|bp')}`;
      const systolic = (v: string): string => `${base}&component-code-value-quantity=${q(`http://loinc.org|8480-6$${v}`)}`;
      expect(await ids(systolic('gt140'))).toEqual(sorted(high));
      expect(await ids(systolic('lt140'))).toEqual(sorted(low));
      // 150 is a systolic value: no component pairs the diastolic code with a value above 140
      expect(await ids(`${base}&component-code-value-quantity=${q('http://loinc.org|8462-4$gt140')}`)).toEqual([]);
      expect(await ids(`${base}&component-code-value-quantity=${q('8462-4$ge76')}`)).toEqual(sorted(high, low));
      // OR of composite values
      expect(await ids(`${base}&component-code-value-quantity=${q('8480-6$gt140')},${q('8462-4$lt77')}`)).toEqual(sorted(high, low));
    });

    test('code-value-quantity on the Observation itself, and malformed values', async () => {
      const sys = marker('composite-top');
      const mgdl = (value: number): Record<string, unknown> => ({ value, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' });
      const glucose = await observation(sys, { valueQuantity: mgdl(182) }, 'glu');
      await observation(sys, { valueQuantity: mgdl(90) }, 'other');
      expect(await ids(`Observation?code-value-quantity=${q(`${sys}|glu$gt126`)}`)).toEqual(sorted(glucose));
      expect(await ids(`Observation?code-value-quantity=${q(`${sys}|other$gt126`)}`)).toEqual([]);
      const bad = await server.request(`Observation?code-value-quantity=${q(`${sys}|glu`)}`);
      expect(bad.status).toBe(400);
      expect(bad.body.issue[0].details.text).toContain('$');
    });

    test('a component that reaches back to the resource: MolecularSequence chromosome-variant-coordinate', async () => {
      const sys = marker('chromosome');
      const sequence = (chromosome: string, start: number, end: number): Promise<Resource & { id: string }> =>
        create(server, {
          resourceType: 'MolecularSequence',
          coordinateSystem: 0,
          referenceSeq: { chromosome: { coding: [{ system: sys, code: chromosome }] }, genomeBuild: 'GRCh38', windowStart: start - 10, windowEnd: end + 10 },
          variant: [{ start, end, observedAllele: 'A', referenceAllele: 'G' }],
        } as Resource);
      const two = await sequence('2', 128273736, 128273740);
      await sequence('2', 500, 600);
      await sequence('7', 128273736, 128273740);
      // chromosome (the resource's referenceSeq, reached with %resource) $ variant start $ variant end
      const coordinate = (value: string): string => `MolecularSequence?chromosome-variant-coordinate=${q(`${sys}|${value}`)}`;
      expect(await ids(coordinate('2$ge128273700$le128273800'))).toEqual(sorted(two));
      expect(await ids(coordinate('7$lt1000$lt1000'))).toEqual([]);
    });
  });

  test('uri :below and :above (ValueSet url)', async () => {
    const root = `http://example.org/${marker('uri').replace(/[^a-z0-9]/gi, '')}`;
    const vs = (url: string): Promise<Resource & { id: string }> => create(server, { resourceType: 'ValueSet', status: 'active', url } as Resource);
    const a = await vs(`${root}/fhir/ValueSet/a`);
    const b = await vs(`${root}/fhir/ValueSet/a/b`);
    const c = await vs(`${root}/other/c`);
    expect(await ids(`ValueSet?url=${q(`${root}/fhir/ValueSet/a`)}`)).toEqual(sorted(a));
    expect(await ids(`ValueSet?url:below=${q(`${root}/fhir`)}`)).toEqual(sorted(a, b));
    expect(await ids(`ValueSet?url:below=${q(root)}`)).toEqual(sorted(a, b, c));
    expect(await ids(`ValueSet?url:above=${q(`${root}/fhir/ValueSet/a/b/c/d`)}`)).toEqual(sorted(a, b));
    expect(await ids(`ValueSet?url:above=${q(`${root}/other/c`)}`)).toEqual(sorted(c));
  });

  test('_id, _lastUpdated, _tag, _profile, _content', async () => {
    const sys = marker('meta');
    const tagSys = marker('tag');
    const a = await patient(sys, { meta: { tag: [{ system: tagSys, code: 'red' }] }, name: [{ family: 'Quixotic' }] });
    const b = await patient(sys, { meta: { tag: [{ system: tagSys, code: 'blue' }], security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] } });
    const base = `Patient?identifier=${q(sys + '|')}`;
    expect(await ids(`Patient?_id=${a.id}`)).toEqual(sorted(a));
    expect(await ids(`Patient?_id=${a.id},${b.id}`)).toEqual(sorted(a, b));
    expect(await ids(`${base}&_tag=${q(tagSys + '|red')}`)).toEqual(sorted(a));
    expect(await ids(`${base}&_tag=blue`)).toEqual(sorted(b));
    expect(await ids(`${base}&_tag:not=${q(tagSys + '|red')}`)).toEqual(sorted(b));
    expect(await ids(`${base}&_security=R`)).toEqual(sorted(b));
    const hrProfile = 'http://hl7.org/fhir/StructureDefinition/heartrate';
    const withProfile = await heartRate(sys, a.id, { meta: { profile: [hrProfile] } });
    const without = await heartRate(sys, a.id);
    expect(without.id).toBeDefined();
    expect(await ids(`Observation?subject=Patient/${a.id}&_profile=${q(hrProfile)}`)).toEqual(sorted(withProfile));
    expect(await ids(`Observation?subject=Patient/${a.id}&_profile:missing=true`)).toEqual(sorted(without));
    expect(await ids(`${base}&_content=quixotic`)).toEqual(sorted(a));
    expect(await ids(`${base}&_content=QUIXO`)).toEqual(sorted(a));
    expect(await ids(`${base}&_content=family`)).toEqual([]); // element names are not content
    expect(await ids(`${base}&_id:missing=false`)).toEqual(sorted(a, b));
    expect(await ids(`${base}&_id:missing=true`)).toEqual([]);
    expect(await ids(`${base}&_id:not=${a.id}`)).toEqual(sorted(b));
    const aLast = (await server.request(`Patient/${a.id}`)).body.meta.lastUpdated as string;
    const bLast = (await server.request(`Patient/${b.id}`)).body.meta.lastUpdated as string;
    expect(Date.parse(bLast)).toBeGreaterThan(Date.parse(aLast));
    expect(await ids(`${base}&_lastUpdated=gt${q(aLast)}`)).toEqual(sorted(b));
    expect(await ids(`${base}&_lastUpdated=le${q(aLast)}`)).toEqual(sorted(a));
    expect(await ids(`${base}&_lastUpdated=${q(bLast)}`)).toEqual(sorted(b));
    expect(await ids(`${base}&_lastUpdated=lt2000-01-01`)).toEqual([]);
    expect(await ids(`${base}&_lastUpdated=ge2000-01-01`)).toEqual(sorted(a, b));
  });

  test('chaining (one and two levels) and reverse chaining _has', async () => {
    const sys = marker('chain');
    const orgName = `Orgzz${seq}`;
    const org = await create(server, { resourceType: 'Organization', name: orgName });
    const p1 = await patient(sys, { name: [{ family: 'Chainley' }], managingOrganization: { reference: `Organization/${org.id}` } });
    const p2 = await patient(sys, { name: [{ family: 'Otherley' }] });
    const o1 = await observation(sys, { subject: { reference: `Patient/${p1.id}` } }, 'hr');
    const o2 = await observation(sys, { subject: { reference: `Patient/${p2.id}` } }, 'bp');
    const o3 = await observation(sys, { subject: { reference: `Patient/${p1.id}` } }, 'bp');
    const base = `Observation?code=${q(sys + '|')}`;
    expect(await ids(`${base}&subject:Patient.name=chainley`)).toEqual(sorted(o1, o3));
    expect(await ids(`${base}&subject.name=otherley`)).toEqual(sorted(o2));
    expect(await ids(`${base}&patient.identifier=${q((p2 as any).identifier[0].system + '|' + (p2 as any).identifier[0].value)}`)).toEqual(sorted(o2));
    expect(await ids(`${base}&subject:Patient.organization.name=${orgName}`)).toEqual(sorted(o1, o3));
    expect(await ids(`${base}&subject:Patient.organization.name=nomatch`)).toEqual([]);
    const pbase = `Patient?identifier=${q(sys + '|')}`;
    expect(await ids(`${pbase}&_has:Observation:patient:code=${q(sys + '|hr')}`)).toEqual(sorted(p1));
    expect(await ids(`${pbase}&_has:Observation:patient:code=${q(sys + '|bp')}`)).toEqual(sorted(p1, p2));
    expect(await ids(`${pbase}&_has:Observation:subject:code=${q(sys + '|nope')}`)).toEqual([]);
  });

  test('_include, _revinclude and :iterate', async () => {
    const sys = marker('incl');
    const org = await create(server, { resourceType: 'Organization', name: 'Incl Org' });
    const p = await patient(sys, { managingOrganization: { reference: `Organization/${org.id}` } });
    const o1 = await observation(sys, { subject: { reference: `Patient/${p.id}` } });
    const o2 = await observation(sys, { subject: { reference: `Patient/${p.id}` } });
    const base = `Observation?code=${q(sys + '|')}`;
    const inc = await search(`${base}&_include=Observation:subject`);
    expect(matchIds(inc)).toEqual(sorted(o1, o2));
    expect(includeKeys(inc)).toEqual([`Patient/${p.id}`]); // once, though both reference it
    const iter = await search(`${base}&_include=Observation:subject&_include:iterate=Patient:organization`);
    expect(includeKeys(iter)).toEqual([`Organization/${org.id}`, `Patient/${p.id}`].sort());
    const noIter = await search(`${base}&_include=Observation:subject`);
    expect(includeKeys(noIter)).not.toContain(`Organization/${org.id}`);
    const wrong = await server.request(`Patient?_id=${p.id}&_revinclude=*`);
    expect(wrong.status).toBe(400);
    expect(wrong.body.issue[0]).toMatchObject({ expression: ['_revinclude'], details: { text: '_revinclude must be SourceType:parameter[:TargetType], got "*"' } });
    const rev = await search(`Patient?_id=${p.id}&_revinclude=Observation:subject`);
    expect(matchIds(rev)).toEqual([p.id]);
    expect(includeKeys(rev)).toEqual([`Observation/${o1.id}`, `Observation/${o2.id}`].sort());
    expect(rev.body.total).toBe(1); // includes are not counted
    const revIter = await search(`Organization?_id=${org.id}&_revinclude=Patient:organization&_revinclude:iterate=Observation:subject`);
    expect(includeKeys(revIter)).toEqual([`Observation/${o1.id}`, `Observation/${o2.id}`, `Patient/${p.id}`].sort());
  });

  test('entries, matched or included, hold each resource as a read returns it, document content decrypted', async () => {
    const sys = marker('entries');
    const p = await patient(sys, { name: [{ family: 'Entrée', given: ['Zoë'] }] });
    const o = await observation(sys, { subject: { reference: `Patient/${p.id}` }, valueString: 'quote " backslash \\ line\nend' });
    const doc = await create(server, {
      resourceType: 'DocumentReference',
      status: 'current',
      subject: { reference: `Patient/${p.id}` },
      type: { coding: [{ system: sys, code: 'note' }] },
      content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('sealed at rest').toString('base64') } }],
    } as Resource);
    const asRead = async (type: string, id: string): Promise<unknown> => (await server.request(`${type}/${id}`)).body;
    const bundle = await search(`Observation?code=${q(sys + '|')}&_include=Observation:subject&_revinclude=DocumentReference:subject`);
    expect(matchIds(bundle)).toEqual([o.id]);
    const entries = await search(`Patient?_id=${p.id}&_revinclude=Observation:subject&_revinclude=DocumentReference:subject`);
    const documents = await search(`DocumentReference?subject=Patient/${p.id}`);
    expect(matchIds(documents)).toEqual([doc.id]);
    for (const entry of [...bundle.body.entry, ...entries.body.entry, ...documents.body.entry] as { fullUrl: string; resource: Resource & { id: string } }[]) {
      expect(entry.fullUrl).toBe(`${server.base}/${entry.resource.resourceType}/${entry.resource.id}`);
      expect(entry.resource).toEqual(await asRead(entry.resource.resourceType, entry.resource.id));
    }
    const found = (entries.body.entry as { resource: Resource }[]).map((e) => e.resource);
    expect(found.map((r) => r.resourceType).sort()).toEqual(['DocumentReference', 'Observation', 'Patient']);
    const attachment = (found.find((r) => r.resourceType === 'DocumentReference') as DocumentReference).content[0].attachment;
    expect(Buffer.from(attachment.data ?? '', 'base64').toString()).toBe('sealed at rest');
  });

  test('_sort on multiple keys, descending with "-"', async () => {
    const sys = marker('sort');
    const a = await patient(sys, { name: [{ family: 'Baker', given: ['Zed'] }], birthDate: '1990-01-01' });
    const b = await patient(sys, { name: [{ family: 'Adams', given: ['Yul'] }], birthDate: '1980-01-01' });
    const c = await patient(sys, { name: [{ family: 'Baker', given: ['Amy'] }], birthDate: '1970-01-01' });
    const d = await patient(sys, { name: [{ family: 'Carter', given: ['Bob'] }], birthDate: '1990-01-01' });
    const order = async (sort: string): Promise<string[]> =>
      ((await search(`Patient?identifier=${q(sys + '|')}&_sort=${sort}`)).body.entry ?? []).map((e: any) => e.resource.id);
    expect(await order('family,given')).toEqual([b.id, c.id, a.id, d.id]);
    expect(await order('family,-given')).toEqual([b.id, a.id, c.id, d.id]);
    expect(await order('-family,given')).toEqual([d.id, c.id, a.id, b.id]);
    expect(await order('-birthdate,family')).toEqual([a.id, d.id, b.id, c.id]);
    expect((await order('birthdate')).slice(0, 2)).toEqual([c.id, b.id]);
  });

  test('_count paging: next links walked to the end, previous back, no duplicates or gaps', async () => {
    const sys = marker('page');
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      created.push((await patient(sys, { name: [{ family: `Pager${String(i).padStart(2, '0')}` }] })).id);
    }
    const unasked = await search(`Patient?identifier=${q(sys + '|')}&_count=3&_sort=family`);
    expect(unasked.body.total).toBeUndefined(); // counting several pages is opt-in
    let res = await search(`Patient?identifier=${q(sys + '|')}&_count=3&_sort=family&_total=accurate`);
    expect(res.body.total).toBe(7);
    const seen: string[] = [];
    const pages: string[][] = [];
    const urls: string[] = [];
    for (;;) {
      const page = matchIds(res);
      pages.push((res.body.entry ?? []).map((e: any) => e.resource.id));
      seen.push(...page);
      urls.push(res.body.link.find((l: any) => l.relation === 'self').url);
      const next = res.body.link.find((l: any) => l.relation === 'next');
      if (!next) {
        break;
      }
      res = await search(next.url);
      expect(pages.length).toBeLessThan(10);
    }
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(created); // sorted by family = creation order
    expect(new Set(seen).size).toBe(7);
    // walk back with previous
    const prev = res.body.link.find((l: any) => l.relation === 'previous');
    expect(prev).toBeDefined();
    const back = await search(prev.url);
    expect((back.body.entry ?? []).map((e: any) => e.resource.id)).toEqual(pages[1]);
    const first = await search(back.body.link.find((l: any) => l.relation === 'previous').url);
    expect((first.body.entry ?? []).map((e: any) => e.resource.id)).toEqual(pages[0]);
    expect(first.body.link.find((l: any) => l.relation === 'previous')).toBeUndefined();
  });

  test('paging links stay stable while resources are created and deleted between pages', async () => {
    const sys = marker('stable');
    const made: (Resource & { id: string })[] = [];
    for (const family of ['Bo', 'Cy', 'Di', 'Ed', 'Fa', 'Gu']) {
      made.push(await patient(sys, { name: [{ family }] }));
    }
    const page1 = await search(`Patient?identifier=${q(sys + '|')}&_count=2&_sort=family`);
    expect(matchIds(page1)).toEqual(sorted(made[0], made[1]));
    // Meanwhile: two new patients sort before the next page, and one of the first page is deleted.
    await patient(sys, { name: [{ family: 'Aa' }] });
    await patient(sys, { name: [{ family: 'Ab' }] });
    expect((await server.request(`Patient/${made[0].id}`, { method: 'DELETE' })).status).toBe(204);
    const page2 = await search(page1.body.link.find((l: any) => l.relation === 'next').url);
    // Offset 2 would now return "Cy" again (everything shifted by one); the cursor continues right after "Cy".
    expect(page2.body.entry.map((e: any) => e.resource.name[0].family)).toEqual(['Di', 'Ed']);
    const page3 = await search(page2.body.link.find((l: any) => l.relation === 'next').url);
    expect(page3.body.entry.map((e: any) => e.resource.name[0].family)).toEqual(['Fa', 'Gu']);
    expect(page3.body.link.find((l: any) => l.relation === 'next')).toBeUndefined();
    const back = await search(page3.body.link.find((l: any) => l.relation === 'previous').url);
    expect(back.body.entry.map((e: any) => e.resource.name[0].family)).toEqual(['Di', 'Ed']);
    const bad = await server.request(`Patient?identifier=${q(sys + '|')}&_cursor=not-a-cursor`);
    expect(bad.status).toBe(400);
  });

  test('without _sort, results come in creation order, and a resource updated between pages keeps its place', async () => {
    const sys = marker('creation-order');
    const subject = await patient(sys);
    const made: (Resource & { id: string })[] = [];
    for (let i = 0; i < 7; i++) {
      made.push(await observation(sys, { subject: { reference: `Patient/${subject.id}` }, valueInteger: i }));
    }
    const order = (res: TestResponse): number[] => (res.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.valueInteger);
    const link = (res: TestResponse, relation: string): string | undefined => res.body.link.find((l: any) => l.relation === relation)?.url;
    const update = async (i: number): Promise<void> => {
      const res = await server.request(`Observation/${made[i].id}`, { method: 'PUT', json: { ...made[i], valueInteger: i, note: [{ text: 'edited' }] } });
      expect(res.status).toBe(200);
    };
    // Driven by the reference to one patient (in id order from its index), with and without another criterion.
    for (const query of [`subject=Patient/${subject.id}`, `patient=${subject.id}&code=${q(sys + '|x')}`]) {
      const page1 = await search(`Observation?${query}&_count=3`);
      expect(order(page1)).toEqual([0, 1, 2]);
      // Updating a resource already seen and one not yet seen moves neither: each is listed once, in its place.
      await update(1);
      await update(4);
      const page2 = await search(link(page1, 'next')!);
      expect(order(page2)).toEqual([3, 4, 5]);
      const page3 = await search(link(page2, 'next')!);
      expect(order(page3)).toEqual([6]);
      expect(link(page3, 'next')).toBeUndefined();
      expect(order(await search(link(page3, 'previous')!))).toEqual([3, 4, 5]);
      expect(order(await search(link(page2, 'previous')!))).toEqual([0, 1, 2]);
    }
    // Driven by a token, the same order.
    const byCode = await search(`Observation?code=${q(sys + '|x')}&_count=4`);
    expect(order(byCode)).toEqual([0, 1, 2, 3]);
    await update(2);
    expect(order(await search(link(byCode, 'next')!))).toEqual([4, 5, 6]);
  });

  test('_total, _summary=count, _summary=true, _elements', async () => {
    const sys = marker('summary');
    const a = await patient(sys, {
      name: [{ family: 'Summers' }],
      gender: 'female',
      maritalStatus: { text: 'single' },
      photo: [{ url: 'http://x/p.png' }],
      deceasedBoolean: false,
      multipleBirthInteger: 2,
    });
    await patient(sys, { name: [{ family: 'Summers' }] });
    const base = `Patient?identifier=${q(sys + '|')}`;
    const none = await search(`${base}&_total=none`);
    expect(none.body.total).toBeUndefined();
    expect(matchIds(none)).toHaveLength(2);
    const accurate = await search(`${base}&_total=accurate&_count=1`);
    expect(accurate.body.total).toBe(2);
    expect(matchIds(accurate)).toHaveLength(1);
    const count = await search(`${base}&_summary=count`);
    expect(count.body.total).toBe(2);
    expect(count.body.entry).toBeUndefined();
    const summary = await search(`${base}&_id=${a.id}&_summary=true`);
    const r = summary.body.entry[0].resource;
    expect(r.name[0].family).toBe('Summers');
    expect(r.gender).toBe('female');
    expect(r.maritalStatus).toBeUndefined(); // not a summary element
    expect(r.photo).toBeUndefined();
    expect(r.deceasedBoolean).toBe(false); // deceased[x] is a summary element, written with its type suffix
    expect(r.multipleBirthInteger).toBeUndefined(); // multipleBirth[x] is not
    expect(r.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
    const elements = await search(`${base}&_id=${a.id}&_elements=gender`);
    const er = elements.body.entry[0].resource;
    expect(er.gender).toBe('female');
    expect(er.id).toBe(a.id);
    expect(er.name).toBeUndefined();
    expect(er.identifier).toBeUndefined();
    const obs = await observation(sys, { valueQuantity: { value: 1 } });
    const mandatory = (await search(`Observation?_id=${obs.id}&_elements=value`)).body.entry[0].resource;
    expect(mandatory.valueQuantity.value).toBe(1);
    expect([mandatory.status, mandatory.code.coding[0].code]).toEqual(['final', 'x']); // mandatory elements stay
    const choice = await search(`${base}&_id=${a.id}&_elements=multipleBirth`);
    expect(choice.body.entry[0].resource.multipleBirthInteger).toBe(2);
    expect(choice.body.entry[0].resource.deceasedBoolean).toBeUndefined();
    expect(er.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
  });

  test('search across types (search-system): _type, parameters common to every type searched, paging, access', async () => {
    const tag = { system: marker('system-search'), code: 'batch-7' };
    const tagged = { meta: { tag: [tag] } };
    const p = await create(server, { resourceType: 'Patient', name: [{ family: 'Across' }], ...tagged });
    const o = await create(server, { resourceType: 'Observation', status: 'final', code: { text: 'Across' }, ...tagged });
    const e = await create(server, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, ...tagged });
    const keys = (res: TestResponse): string[] => (res.body.entry ?? []).map((x: any) => `${x.resource.resourceType}/${x.resource.id}`).sort();
    const byTag = `_tag=${q(`${tag.system}|${tag.code}`)}`;
    expect(keys(await search(`?${byTag}`))).toEqual([`Encounter/${e.id}`, `Observation/${o.id}`, `Patient/${p.id}`].sort());
    expect(keys(await search(`?_type=Patient,Observation&${byTag}`))).toEqual([`Observation/${o.id}`, `Patient/${p.id}`].sort());
    const form = await server.request('_search', { method: 'POST', body: `_type=Encounter&${byTag}`, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(keys(form)).toEqual([`Encounter/${e.id}`]);
    // One at a time: the next links walk all three, each once, on the base URL.
    const seen: string[] = [];
    let page = await search(`?${byTag}&_count=1`);
    for (;;) {
      seen.push(...keys(page));
      const next = page.body.link.find((l: any) => l.relation === 'next')?.url as string | undefined;
      if (!next) break;
      expect(next.startsWith(`${server.base}?`)).toBe(true);
      page = await search(next);
    }
    expect(seen.sort()).toEqual([`Encounter/${e.id}`, `Observation/${o.id}`, `Patient/${p.id}`].sort());
    // In order across types: creation order without _sort, and any _sort, forward and back.
    const inOrder = (res: TestResponse): string[] => (res.body.entry ?? []).map((x: any) => `${x.resource.resourceType}/${x.resource.id}`);
    const link = (res: TestResponse, relation: string): string => res.body.link.find((l: any) => l.relation === relation).url;
    const first = await search(`?${byTag}&_count=2`);
    expect(inOrder(first)).toEqual([`Patient/${p.id}`, `Observation/${o.id}`]);
    const second = await search(link(first, 'next'));
    expect(inOrder(second)).toEqual([`Encounter/${e.id}`]);
    expect(inOrder(await search(link(second, 'previous')))).toEqual([`Patient/${p.id}`, `Observation/${o.id}`]);
    const newest = await search(`?_type=Patient,Observation,Encounter&${byTag}&_sort=-_lastUpdated&_count=2`);
    expect(inOrder(newest)).toEqual([`Encounter/${e.id}`, `Observation/${o.id}`]);
    expect(inOrder(await search(link(newest, 'next')))).toEqual([`Patient/${p.id}`]);
    const noneStored = await search(`?_type=EffectEvidenceSynthesis&${byTag}`); // a type nothing in this suite writes
    expect([noneStored.status, noneStored.body.total, noneStored.body.entry]).toEqual([200, 0, undefined]);
    // A parameter some type searched lacks, an unknown type, and what needs one type.
    const notCommon = await server.request(`?_type=Patient,Observation&code=${q('http://loinc.org|8867-4')}`);
    expect(notCommon.status).toBe(400);
    expect((await server.request('?_type=Patient,Nope')).body.issue[0].details.text).toBe('_type names "Nope", which is not a resource type');
    expect((await server.request(`?_type=Patient&${byTag}&_revinclude=Observation:subject`)).status).toBe(400);
    // Access: a token for two types searches those two; across every type, or with a limited scope, it is refused.
    const two = await clientCredentialsToken(server.origin, OPERATOR.id, OPERATOR.secret, 'system/Patient.rs system/Observation.rs');
    const asTwo = (path: string) => server.request(path, { headers: { Authorization: `Bearer ${two}` } });
    expect(keys(await asTwo(`?_type=Patient,Observation&${byTag}`))).toEqual([`Observation/${o.id}`, `Patient/${p.id}`].sort());
    expect((await asTwo(`?${byTag}`)).status).toBe(403);
    const limited = await clientCredentialsToken(server.origin, OPERATOR.id, OPERATOR.secret, 'system/Patient.rs system/Observation.rs?status=final');
    const refused = await server.request(`?_type=Patient,Observation&${byTag}`, { headers: { Authorization: `Bearer ${limited}` } });
    expect(refused.status).toBe(403);
    expect(refused.body.issue[0].details.text).toContain('not to Observation');
  });

  test('unknown parameters are rejected, or ignored with a warning under lenient handling', async () => {
    const strict = await server.request('Patient?nonsense=1');
    expect(strict.status).toBe(400);
    // A named query (_query) is a parameter like any other: carelens defines none, so none is known.
    const named = await server.request('Patient?_query=current-high-risk');
    expect(named.status).toBe(400);
    expect(named.body.issue[0].details.text).toContain('Unknown search parameter "_query"');
    const lenient = await server.request('Patient?nonsense=1&_count=1', { headers: { Prefer: 'handling=lenient' } });
    expect(lenient.status).toBe(200);
    expect(lenient.body.entry.some((e: any) => e.search?.mode === 'outcome')).toBe(true);
  });
});
