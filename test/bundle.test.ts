import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { BACKENDS, create, useServer, type TestResponse } from './harness.js';

/** Batch and transaction semantics (R4 http.html#transaction). */
describe.each(BACKENDS)('batch and transaction Bundles on %s', (backend) => {
  const server = useServer(backend);

  let seq = 0;
  /** An identifier system unique to one test, so counts do not depend on other tests. */
  const system = (): string => `urn:test:bundle:${++seq}`;

  const post = (bundle: Bundle, headers: Record<string, string> = {}): Promise<TestResponse> =>
    server.request('', { method: 'POST', headers, json: bundle });
  const transaction = (entry: BundleEntry[]): Bundle => ({ resourceType: 'Bundle', type: 'transaction', entry });
  const batch = (entry: BundleEntry[]): Bundle => ({ resourceType: 'Bundle', type: 'batch', entry });
  const count = async (query: string): Promise<number> => {
    const res = await server.request(`${query}${query.includes('?') ? '&' : '?'}_summary=count`);
    expect(res.status).toBe(200);
    return res.body.total;
  };
  /** Type/id from a response entry's location (base/Type/id/_history/n). */
  const typeId = (entry: any): string => /([A-Z][A-Za-z]+\/[^/]+)\/_history\/\d+$/.exec(entry.response.location)![1];

  test('transaction: urn:uuid references between new resources are rewritten to the assigned ids', async () => {
    const sys = system();
    const res = await post(
      transaction([
        {
          fullUrl: 'urn:uuid:0d8b8c5e-4a0c-4b43-9d1c-000000000001',
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'a' }, subject: { reference: 'urn:uuid:0d8b8c5e-4a0c-4b43-9d1c-00000000000p' } },
          request: { method: 'POST', url: 'Observation' },
        },
        {
          fullUrl: 'urn:uuid:0d8b8c5e-4a0c-4b43-9d1c-00000000000p',
          resource: { resourceType: 'Patient', identifier: [{ system: sys, value: '1' }], name: [{ family: 'Urn' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          fullUrl: 'urn:uuid:0d8b8c5e-4a0c-4b43-9d1c-000000000002',
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'b' },
            subject: { reference: 'urn:uuid:0d8b8c5e-4a0c-4b43-9d1c-00000000000p' },
            hasMember: [{ reference: 'urn:uuid:0d8b8c5e-4a0c-4b43-9d1c-000000000001' }],
          },
          request: { method: 'POST', url: 'Observation' },
        },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry).toHaveLength(3);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '201 Created', '201 Created']);
    const [obs1, patient, obs2] = res.body.entry.map(typeId);
    expect(patient).toMatch(/^Patient\/[0-9a-f-]{36}$/);
    expect(res.body.entry[0].resource.subject.reference).toBe(patient);
    expect(res.body.entry[2].resource.hasMember[0].reference).toBe(obs1);

    // As stored, and as found by search.
    const stored = await server.request(obs2);
    expect(stored.body.subject.reference).toBe(patient);
    expect(stored.body.hasMember[0].reference).toBe(obs1);
    expect(await count(`Observation?subject=${patient}`)).toBe(2);
    expect(await count(`Observation?patient=${patient.split('/')[1]}`)).toBe(2);
  });

  test('transaction: a urn:uuid reference to no entry is refused and nothing is written', async () => {
    const sys = system();
    const res = await post(
      transaction([
        { resource: { resourceType: 'Patient', identifier: [{ system: sys, value: '1' }] }, request: { method: 'POST', url: 'Patient' } },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:00000000-0000-0000-0000-00000000dead' } },
          request: { method: 'POST', url: 'Observation' },
        },
      ]),
    );
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(res.body.issue)).toContain('Bundle.entry[1]');
    expect(await count(`Patient?identifier=${sys}|1`)).toBe(0);
  });

  test('transaction: conditional references are resolved to the one match', async () => {
    const sys = system();
    const org = await create(server, { resourceType: 'Organization', identifier: [{ system: sys, value: 'org-1' }], name: 'Conditional' });
    const res = await post(
      transaction([
        {
          resource: { resourceType: 'Patient', managingOrganization: { reference: `Organization?identifier=${sys}|org-1` } },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: {
            resourceType: 'Encounter',
            status: 'finished',
            class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
            serviceProvider: { reference: `Organization?identifier=${sys}|org-1` },
          },
          request: { method: 'POST', url: 'Encounter' },
        },
      ]),
    );
    expect(res.status).toBe(200);
    const patient = await server.request(typeId(res.body.entry[0]));
    expect(patient.body.managingOrganization.reference).toBe(`Organization/${org.id}`);
    const encounter = await server.request(typeId(res.body.entry[1]));
    expect(encounter.body.serviceProvider.reference).toBe(`Organization/${org.id}`);
    expect(await count(`Patient?organization=${org.id}`)).toBe(1);
  });

  test('transaction: ifNoneExist that matches creates nothing, answers 200 and stands in for references', async () => {
    const sys = system();
    const existing = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'mrn-1' }], name: [{ family: 'Existing' }] });
    const res = await post(
      transaction([
        {
          fullUrl: 'urn:uuid:1f3c5e7a-0000-4000-8000-000000000001',
          resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'mrn-1' }], name: [{ family: 'Duplicate' }] },
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${sys}|mrn-1` },
        },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:1f3c5e7a-0000-4000-8000-000000000001' } },
          request: { method: 'POST', url: 'Observation' },
        },
        {
          resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'mrn-2' }] },
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${sys}|mrn-2` },
        },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toBe('200 OK');
    expect(typeId(res.body.entry[0])).toBe(`Patient/${existing.id}`);
    expect(res.body.entry[2].response.status).toBe('201 Created');
    expect(await count(`Patient?identifier=${sys}|mrn-1`)).toBe(1);
    expect(await count(`Patient?identifier=${sys}|mrn-2`)).toBe(1);
    expect((await server.request(`Patient/${existing.id}`)).body.name[0].family).toBe('Existing'); // not overwritten
    const obs = await server.request(typeId(res.body.entry[1]));
    expect(obs.body.subject.reference).toBe(`Patient/${existing.id}`);
  });

  test('transaction: a conditional create repeated, or referenced by the same criteria, means the resource this transaction creates', async () => {
    const sys = system();
    const res = await post(
      transaction([
        {
          resource: { resourceType: 'Organization', identifier: [{ system: sys, value: 'org-1' }], name: 'Clinic' },
          request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${sys}|org-1` },
        },
        {
          resource: { resourceType: 'Patient', managingOrganization: { reference: `Organization?identifier=${sys}|org-1` } },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: { resourceType: 'Organization', identifier: [{ system: sys, value: 'org-1' }], name: 'Clinic again' },
          request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${sys}|org-1` },
        },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '201 Created', '200 OK']);
    expect(typeId(res.body.entry[2])).toBe(typeId(res.body.entry[0]));
    expect(await count(`Organization?identifier=${sys}|org-1`)).toBe(1);
    const patient = await server.request(typeId(res.body.entry[1]));
    expect(patient.body.managingOrganization.reference).toBe(typeId(res.body.entry[0]));
  });

  test('transaction: conditional update without an id in the body updates the match, or creates', async () => {
    const sys = system();
    const existing = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'u-1' }], gender: 'female' });
    const res = await post(
      transaction([
        {
          resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'u-1' }], gender: 'male' },
          request: { method: 'PUT', url: `Patient?identifier=${sys}|u-1` },
        },
        {
          resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'u-2' }], gender: 'other' },
          request: { method: 'PUT', url: `Patient?identifier=${sys}|u-2` },
        },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['200 OK', '201 Created']);
    expect(res.body.entry[0].fullUrl).toBe(`${server.base}/Patient/${existing.id}`);
    expect(res.body.entry[0].response.etag).toBe('W/"2"');
    const updated = await server.request(`Patient/${existing.id}`);
    expect(updated.body.gender).toBe('male');
    expect(updated.body.meta.versionId).toBe('2');
    expect(await count(`Patient?identifier=${sys}|u-2`)).toBe(1);
  });

  test('transaction: processing order DELETE, POST, PUT, GET; the GET sees the writes; responses in request order', async () => {
    const sys = system();
    const doomed = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'order' }], name: [{ family: 'Doomed' }] });
    const putId = `order-${seq}-${backend}`;
    const res = await post(
      transaction([
        { request: { method: 'GET', url: `Patient?identifier=${sys}|order` } },
        {
          resource: { resourceType: 'Patient', id: putId, identifier: [{ system: sys, value: 'order' }], name: [{ family: 'Put' }] },
          request: { method: 'PUT', url: `Patient/${putId}` },
        },
        { resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'order' }], name: [{ family: 'Posted' }] }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'DELETE', url: `Patient/${doomed.id}` } },
        { request: { method: 'GET', url: `Patient/${putId}` } },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(['200', '201', '201', '204', '200']);
    const searchset = res.body.entry[0].resource;
    expect(searchset.type).toBe('searchset');
    expect(searchset.total).toBe(2);
    expect(searchset.entry.map((e: any) => e.resource.name[0].family).sort()).toEqual(['Posted', 'Put']);
    expect(res.body.entry[4].resource.id).toBe(putId);
    expect((await server.request(`Patient/${doomed.id}`)).status).toBe(410);
  });

  test('transaction: DELETE is processed before POST, so an ifNoneExist matching only the deleted resource creates', async () => {
    const sys = system();
    const doomed = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'again' }], name: [{ family: 'Old' }] });
    const res = await post(
      transaction([
        {
          resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'again' }], name: [{ family: 'New' }] },
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${sys}|again` },
        },
        { request: { method: 'DELETE', url: `Patient/${doomed.id}` } },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(['201', '204']);
    expect(typeId(res.body.entry[0])).not.toBe(`Patient/${doomed.id}`);
    const found = await server.request(`Patient?identifier=${sys}|again`);
    expect(found.body.total).toBe(1);
    expect(found.body.entry[0].resource.name[0].family).toBe('New');
  });

  describe('transaction: one failing entry rolls back the whole transaction', () => {
    const cases: [string, (sys: string) => BundleEntry, number][] = [
      ['an invalid resource (422)', () => ({ resource: { resourceType: 'Patient', gender: 'robot' } as any, request: { method: 'POST', url: 'Patient' } }), 422],
      ['a read of a missing resource (404)', () => ({ request: { method: 'GET', url: 'Patient/no-such-patient' } }), 404],
      ['an update with a stale If-Match (412)', () => ({ resource: { resourceType: 'Patient', id: 'nope-ifmatch' }, request: { method: 'PUT', url: 'Patient/nope-ifmatch', ifMatch: 'W/"7"' } }), 412],
      [
        'a conditional reference that matches nothing',
        (sys) => ({
          resource: { resourceType: 'Patient', managingOrganization: { reference: `Organization?identifier=${sys}|missing` } },
          request: { method: 'POST', url: 'Patient' },
        }),
        412,
      ],
    ];
    test.each(cases)('%s', async (_name, failing, status) => {
      const sys = system();
      const keep = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'keep' }], gender: 'female' });
      const historyBefore = (await server.request(`Patient/${keep.id}/_history`)).body.total;
      const res = await post(
        transaction([
          { fullUrl: 'urn:uuid:5a7e0000-0000-4000-8000-000000000001', resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'new' }] }, request: { method: 'POST', url: 'Patient' } },
          { resource: { ...keep, gender: 'male' }, request: { method: 'PUT', url: `Patient/${keep.id}` } },
          { request: { method: 'DELETE', url: `Patient/${keep.id}-other` } },
          failing(sys),
        ]),
      );
      expect(res.status).toBe(status);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].severity).toBe('error');
      expect(JSON.stringify(res.body.issue)).toContain('Bundle.entry[3]');
      // Nothing written: no new Patient, the update undone, no new history version.
      expect(await count(`Patient?identifier=${sys}|new`)).toBe(0);
      const after = await server.request(`Patient/${keep.id}`);
      expect(after.body.gender).toBe('female');
      expect(after.body.meta.versionId).toBe('1');
      expect((await server.request(`Patient/${keep.id}/_history`)).body.total).toBe(historyBefore);
    });
  });

  test('batch: a failing entry gets its own status and outcome, the others still succeed', async () => {
    const sys = system();
    const existing = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'b-0' }] });
    const res = await post(
      batch([
        { resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'b-1' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'robot' } as any, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: 'Patient/no-such-patient-in-batch' } },
        { request: { method: 'GET', url: `Patient/${existing.id}` } },
        { resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'b-2' }] }, request: { method: 'POST', url: 'Patient' } },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('batch-response');
    expect(res.body.entry).toHaveLength(5);
    expect(res.body.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(['201', '422', '404', '200', '201']);
    for (const i of [1, 2]) {
      const outcome = res.body.entry[i].response.outcome;
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue[0].severity).toBe('error');
      expect(JSON.stringify(outcome)).toContain(`Bundle.entry[${i}]`);
      expect(res.body.entry[i].resource).toBeUndefined();
    }
    expect(res.body.entry[3].resource.id).toBe(existing.id);
    expect(await count(`Patient?identifier=${sys}|b-1`)).toBe(1);
    expect(await count(`Patient?identifier=${sys}|b-2`)).toBe(1);
  });

  test('a Bundle of type collection (or document) posted to the base is refused with 400', async () => {
    const sys = system();
    for (const type of ['collection', 'document', 'searchset'] as const) {
      const res = await post({
        resourceType: 'Bundle',
        type,
        entry: [{ resource: { resourceType: 'Patient', identifier: [{ system: sys, value: type }] }, request: { method: 'POST', url: 'Patient' } }],
      });
      expect({ type, status: res.status }).toEqual({ type, status: 400 });
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
    expect(await count(`Patient?identifier=${sys}|collection`)).toBe(0);
  });

  test('Prefer: return=minimal leaves the resources out of the transaction-response entries', async () => {
    const sys = system();
    const entries: BundleEntry[] = [
      { resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'm-1' }] }, request: { method: 'POST', url: 'Patient' } },
      { resource: { resourceType: 'Patient', id: `min-${seq}-${backend}`, identifier: [{ system: sys, value: 'm-2' }] }, request: { method: 'PUT', url: `Patient/min-${seq}-${backend}` } },
    ];
    const minimal = await post(transaction(entries), { Prefer: 'return=minimal' });
    expect(minimal.status).toBe(200);
    expect(minimal.body.type).toBe('transaction-response');
    expect(minimal.body.entry).toHaveLength(2);
    for (const e of minimal.body.entry) {
      expect(e.resource).toBeUndefined();
      expect(e.response.status).toMatch(/^201/);
      expect(e.response.location).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
      expect(e.response.etag).toBe('W/"1"');
    }
    expect(await count(`Patient?identifier=${sys}|m-1`)).toBe(1);
    // And the default (representation) includes them.
    const full = await post(transaction([{ ...entries[0], request: { method: 'POST', url: 'Patient' } }]));
    expect(full.body.entry[0].resource.resourceType).toBe('Patient');
  });

  test('a transaction writing the same resource twice is refused with 400 and writes nothing', async () => {
    const sys = system();
    const id = `twice-${seq}-${backend}`;
    const existing = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'twice-existing' }] });
    const variants: BundleEntry[][] = [
      [
        { resource: { resourceType: 'Patient', id, identifier: [{ system: sys, value: 'a' }] }, request: { method: 'PUT', url: `Patient/${id}` } },
        { resource: { resourceType: 'Patient', id, identifier: [{ system: sys, value: 'b' }] }, request: { method: 'PUT', url: `Patient/${id}` } },
      ],
      [
        { request: { method: 'DELETE', url: `Patient/${existing.id}` } },
        { resource: { ...existing, gender: 'male' }, request: { method: 'PUT', url: `Patient/${existing.id}` } },
      ],
      [
        { resource: { resourceType: 'Patient', id, identifier: [{ system: sys, value: 'c' }] }, request: { method: 'PUT', url: `Patient/${id}` } },
        { resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'd' }] }, request: { method: 'PUT', url: `Patient?identifier=${sys}|twice-existing` } },
        { resource: { ...existing, gender: 'other' }, request: { method: 'PUT', url: `Patient/${existing.id}` } },
      ],
    ];
    for (const [n, entry] of variants.entries()) {
      const res = await post(transaction(entry));
      expect({ n, status: res.status }).toEqual({ n, status: 400 });
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(JSON.stringify(res.body.issue)).toMatch(/Bundle\.entry\[\d\]/);
      expect(JSON.stringify(res.body.issue)).toMatch(n === 0 ? `Patient/${id}` : `Patient/${existing.id}`); // names the resource written twice
    }
    expect((await server.request(`Patient/${id}`)).status).toBe(404);
    const after = await server.request(`Patient/${existing.id}`);
    expect(after.status).toBe(200);
    expect(after.body.meta.versionId).toBe('1');
  });

  test('malformed entries are refused with 400 naming the entry', async () => {
    const cases: BundleEntry[] = [
      { resource: { resourceType: 'Patient' }, request: { url: 'Patient' } as any },
      { resource: { resourceType: 'Patient' }, request: { method: 'POST' } as any },
      { request: { method: 'POST', url: 'Patient' } },
    ];
    for (const entry of cases) {
      for (const type of ['batch', 'transaction'] as const) {
        const res = await post({ resourceType: 'Bundle', type, entry: [entry] });
        expect(res.status).toBe(400);
        expect(JSON.stringify(res.body.issue)).toContain('Bundle.entry[0]');
      }
    }
  });
});
