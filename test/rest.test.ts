import type { Patient } from '@medplum/fhirtypes';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BACKENDS, create, startServer, useServer } from './harness.js';

describe.each(BACKENDS)('FHIR REST interactions on %s', (backend) => {
  const server = useServer(backend);

  const patient: Patient = { resourceType: 'Patient', name: [{ family: 'Okafor', given: ['Ada'] }], gender: 'female', birthDate: '1980-02-29' };

  test('create assigns id and version, returns 201 with Location, ETag and Last-Modified', async () => {
    const res = await server.request('Patient', { method: 'POST', json: { ...patient, id: 'client-chosen' } });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/); // the server ignores an id on create
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('location')).toBe(`${server.base}/Patient/${res.body.id}/_history/1`);
    expect(new Date(res.headers.get('last-modified')!).getTime()).toBeLessThanOrEqual(Date.now());
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  test('server-assigned ids are time-ordered UUIDs (version 7), in creation order, in a transaction too', async () => {
    const before = Date.now();
    const first = await create(server, patient);
    const second = await create(server, patient);
    const bundle = await server.request('', {
      method: 'POST',
      json: { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: 'urn:uuid:4b3c8e52-0d7e-4a8c-9f3e-2f1f0c6a1d11', resource: patient, request: { method: 'POST', url: 'Patient' } }] },
    });
    const third = /Patient\/([^/]+)\/_history/.exec(bundle.body.entry[0].response.location)![1];
    const millis = [first.id!, second.id!, third].map((id) => {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      // The first 48 bits are the creation time in milliseconds.
      return parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    });
    expect(millis[0]).toBeGreaterThanOrEqual(before);
    expect(millis[1]).toBeGreaterThanOrEqual(millis[0]);
    expect(millis[2]).toBeGreaterThanOrEqual(millis[1]);
    expect(millis[2]).toBeLessThanOrEqual(Date.now());
  });

  test('read, vread, update with If-Match, 412 on a stale version, history', async () => {
    const created = await create(server, patient);
    const read = await server.request(`Patient/${created.id}`);
    expect(read.status).toBe(200);
    expect(read.body.name[0].family).toBe('Okafor');
    expect(read.text.startsWith('{"resourceType":"Patient"')).toBe(true); // resourceType first, as FHIR JSON writes it
    const pretty = await server.request(`Patient/${created.id}?_pretty=true`);
    expect(pretty.text.startsWith('{\n  "resourceType": "Patient",\n')).toBe(true);
    expect(pretty.body).toEqual(read.body);

    const updated = await server.request(`Patient/${created.id}`, {
      method: 'PUT',
      headers: { 'If-Match': 'W/"1"' },
      json: { ...read.body, gender: 'other' },
    });
    expect(updated.status).toBe(200);
    expect(updated.body.meta.versionId).toBe('2');

    const stale = await server.request(`Patient/${created.id}`, { method: 'PUT', headers: { 'If-Match': 'W/"1"' }, json: read.body });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');

    const v1 = await server.request(`Patient/${created.id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.body.gender).toBe('female');
    const v9 = await server.request(`Patient/${created.id}/_history/9`);
    expect(v9.status).toBe(404);

    const history = await server.request(`Patient/${created.id}/_history`);
    expect(history.body.type).toBe('history');
    expect(history.body.total).toBe(2);
    expect(history.body.entry.map((e: any) => e.response.etag)).toEqual(['W/"2"', 'W/"1"']);
  });

  test('read and vread in part: _summary and _elements, tagged SUBSETTED', async () => {
    const created = await create(server, { ...patient, text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ada Okafor</div>' } });
    const tags = (body: any): string[] => (body.meta?.tag ?? []).map((t: any) => t.code);
    const elements = await server.request(`Patient/${created.id}?_elements=birthDate`);
    expect(elements.status).toBe(200);
    expect(Object.keys(elements.body).sort()).toEqual(['birthDate', 'id', 'meta', 'resourceType']);
    expect(tags(elements.body)).toEqual(['SUBSETTED']);
    expect(elements.headers.get('etag')).toBe('W/"1"');
    const text = await server.request(`Patient/${created.id}/_history/1?_summary=text`);
    expect(Object.keys(text.body).sort()).toEqual(['id', 'meta', 'resourceType', 'text']);
    const data = await server.request(`Patient/${created.id}?_summary=data`);
    expect(data.body.text).toBeUndefined();
    expect(data.body.name[0].family).toBe('Okafor');
    const whole = await server.request(`Patient/${created.id}?_summary=false`);
    expect(whole.body.text.status).toBe('generated');
    expect(tags(whole.body)).toEqual([]);
    const count = await server.request(`Patient/${created.id}?_summary=count`);
    expect(count.status).toBe(400);
    expect(count.body.issue[0].details.text).toBe('_summary must be true, text, data or false, got "count"');
  });

  test('update-as-create with a client id, then 304 on If-None-Match and If-Modified-Since (conditional read)', async () => {
    const res = await server.request('Patient/p-client-1', { method: 'PUT', json: { ...patient, id: 'p-client-1' } });
    expect(res.status).toBe(201);
    const again = await server.request('Patient/p-client-1', { headers: { 'If-None-Match': 'W/"1"' } });
    expect(again.status).toBe(304);
    expect((await server.request('Patient/p-client-1', { headers: { 'If-None-Match': 'W/"2"' } })).status).toBe(200);
    const lastModified = res.headers.get('Last-Modified')!;
    expect((await server.request('Patient/p-client-1', { headers: { 'If-Modified-Since': lastModified } })).status).toBe(304);
    const before = new Date(Date.parse(lastModified) - 60_000).toUTCString();
    expect((await server.request('Patient/p-client-1', { headers: { 'If-Modified-Since': before } })).status).toBe(200);
  });

  test('delete: 204, then 410 Gone on read, visible in history, re-creatable', async () => {
    const created = await create(server, patient);
    const del = await server.request(`Patient/${created.id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    const read = await server.request(`Patient/${created.id}`);
    expect(read.status).toBe(410);
    const history = await server.request(`Patient/${created.id}/_history`);
    expect(history.body.entry[0].request.method).toBe('DELETE');
    expect(history.body.entry[0].resource).toBeUndefined();
    const search = await server.request(`Patient?_id=${created.id}`);
    expect(search.body.total).toBe(0);
    const recreate = await server.request(`Patient/${created.id}`, { method: 'PUT', json: { ...patient, id: created.id } });
    expect(recreate.status).toBe(201);
    expect(recreate.body.meta.versionId).toBe('3');
  });

  test('JSON Patch', async () => {
    const created = await create(server, patient);
    const res = await server.request(`Patient/${created.id}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }]),
    });
    expect(res.status).toBe(200);
    expect(res.body.gender).toBe('male');
    expect(res.body.meta.versionId).toBe('2');
    const bad = await server.request(`Patient/${created.id}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'replace', path: '/gender', value: 'robot' }]),
    });
    expect(bad.status).toBe(422);
    const invalidPath = await server.request(`Patient/${created.id}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'remove', path: '/nothing/here' }]),
    });
    expect(invalidPath.status).toBe(422);
    expect((await server.request(`Patient/${created.id}`)).body.meta.versionId).toBe('2');
  });

  test('FHIRPath Patch: add, insert, delete, replace, move; precise errors; nothing written on failure', async () => {
    const created = await create(server, { resourceType: 'Patient', name: [{ family: 'Ng', given: ['Ada', 'Bo', 'Cy'] }], birthDate: '1980-01-01' });
    const op = (parts: Record<string, unknown>[]) => ({ name: 'operation', part: parts });
    const patch = (operations: object[]) =>
      server.request(`Patient/${created.id}`, { method: 'PATCH', json: { resourceType: 'Parameters', parameter: operations } });
    const res = await patch([
      op([{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.birthDate' }, { name: 'value', valueDate: '1981-02-03' }]),
      op([{ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'Patient' }, { name: 'name', valueString: 'telecom' }, { name: 'value', valueContactPoint: { system: 'phone', value: '555-0100' } }]),
      op([{ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'Patient' }, { name: 'name', valueString: 'gender' }, { name: 'value', valueCode: 'female' }]),
      op([{ name: 'type', valueCode: 'insert' }, { name: 'path', valueString: 'Patient.name[0].given' }, { name: 'index', valueInteger: 0 }, { name: 'value', valueString: 'Zed' }]),
      op([{ name: 'type', valueCode: 'delete' }, { name: 'path', valueString: "Patient.name[0].given.where($this = 'Bo')" }]),
      op([{ name: 'type', valueCode: 'move' }, { name: 'path', valueString: 'Patient.name[0].given' }, { name: 'source', valueInteger: 0 }, { name: 'destination', valueInteger: 2 }]),
      op([{ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'Patient.name[0]' }, { name: 'name', valueString: 'period' }, { name: 'value', part: [{ name: 'start', valueDateTime: '2020-01-01' }] }]),
      op([{ name: 'type', valueCode: 'delete' }, { name: 'path', valueString: 'Patient.deceased' }]),
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      birthDate: '1981-02-03',
      gender: 'female',
      telecom: [{ system: 'phone', value: '555-0100' }],
      name: [{ family: 'Ng', given: ['Ada', 'Cy', 'Zed'], period: { start: '2020-01-01' } }],
    });
    const version = res.body.meta.versionId;
    const ambiguous = await patch([op([{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.name.given' }, { name: 'value', valueString: 'X' }])]);
    expect(ambiguous.status).toBe(422);
    expect(ambiguous.body.issue[0].details.text).toMatch(/exactly one element, it selected 3/);
    const badType = await patch([op([{ name: 'type', valueCode: 'upsert' }, { name: 'path', valueString: 'Patient' }])]);
    expect(badType.status).toBe(400);
    const invalid = await patch([op([{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.gender' }, { name: 'value', valueCode: 'robot' }])]);
    expect(invalid.status).toBe(422);
    expect((await server.request(`Patient/${created.id}`)).body.meta.versionId).toBe(version);
  });

  test('FHIRPath Patch: the narrative by its element name div, and a delete that empties an element removes it', async () => {
    const div = (text: string) => `<div xmlns="http://www.w3.org/1999/xhtml">${text}</div>`;
    const created = await create(server, {
      resourceType: 'Patient',
      text: { status: 'generated', div: div('Ada') },
      identifier: [{ system: 'urn:example:mrn', value: 'a.div' }],
      contact: [{ name: { text: 'Bo' }, telecom: [{ system: 'phone', value: '555-0101' }] }],
    });
    const op = (type: string, path: string, value?: object) => ({
      name: 'operation',
      part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...(value ? [{ name: 'value', ...value }] : [])],
    });
    const res = await server.request(`Patient/${created.id}`, {
      method: 'PATCH',
      json: {
        resourceType: 'Parameters',
        parameter: [
          op('replace', 'Patient.text.div', { valueString: div('Ada Ng') }),
          // ".div" inside a string literal is text, not a member.
          op('delete', "Patient.identifier.where(value = 'a.div')"),
          op('delete', 'Patient.contact[0].name.text'),
        ],
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.text).toEqual({ status: 'generated', div: div('Ada Ng') });
    expect(res.body.identifier).toBeUndefined();
    expect(res.body.contact).toEqual([{ telecom: [{ system: 'phone', value: '555-0101' }] }]);
  });

  test('PATCH entries in a transaction: JSON Patch in a Binary and FHIRPath Patch as Parameters', async () => {
    const created = await create(server, patient);
    const other = await create(server, patient);
    const jsonPatch = Buffer.from(JSON.stringify([{ op: 'replace', path: '/gender', value: 'other' }])).toString('base64');
    const res = await server.request('', {
      method: 'POST',
      json: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: jsonPatch }, request: { method: 'PATCH', url: `Patient/${created.id}` } },
          {
            resource: { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.birthDate' }, { name: 'value', valueDate: '1999-09-09' }] }] },
            request: { method: 'PATCH', url: `Patient/${other.id}` },
          },
        ],
      },
    });
    expect(res.status).toBe(200);
    expect((await server.request(`Patient/${created.id}`)).body.gender).toBe('other');
    expect((await server.request(`Patient/${other.id}`)).body.birthDate).toBe('1999-09-09');
  });

  test('conditional create, update and delete', async () => {
    const identifier = [{ system: 'urn:test:mrn', value: 'COND-1' }];
    const first = await server.request('Patient', { method: 'POST', headers: { 'If-None-Exist': 'identifier=urn:test:mrn|COND-1' }, json: { ...patient, identifier } });
    expect(first.status).toBe(201);
    const second = await server.request('Patient', { method: 'POST', headers: { 'If-None-Exist': 'identifier=urn:test:mrn|COND-1' }, json: { ...patient, identifier } });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);

    const upd = await server.request('Patient?identifier=urn:test:mrn|COND-1', { method: 'PUT', json: { ...patient, identifier, gender: 'unknown' } });
    expect(upd.status).toBe(200);
    expect(upd.body.id).toBe(first.body.id);
    expect(upd.body.gender).toBe('unknown');

    const newOne = await server.request('Patient?identifier=urn:test:mrn|COND-2', { method: 'PUT', json: { ...patient, identifier: [{ system: 'urn:test:mrn', value: 'COND-2' }] } });
    expect(newOne.status).toBe(201);

    const del = await server.request('Patient?identifier=urn:test:mrn|COND-1', { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await server.request(`Patient/${first.body.id}`)).status).toBe(410);
  });

  test('Prefer: return=minimal and return=OperationOutcome', async () => {
    const minimal = await server.request('Patient', { method: 'POST', headers: { Prefer: 'return=minimal' }, json: patient });
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.get('location')).toContain('/Patient/');
    const oo = await server.request('Patient', { method: 'POST', headers: { Prefer: 'return=OperationOutcome' }, json: patient });
    expect(oo.body.resourceType).toBe('OperationOutcome');
  });

  test('type and system history with _since and paging', async () => {
    const before = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 3; i++) {
      await create(server, { resourceType: 'Organization', name: `Org ${i}` });
    }
    const typeHistory = await server.request(`Organization/_history?_since=${encodeURIComponent(before)}&_count=2`);
    expect(typeHistory.body.total).toBe(3);
    expect(typeHistory.body.entry).toHaveLength(2);
    const next = typeHistory.body.link.find((l: any) => l.relation === 'next');
    // A write between pages lands after the first page's snapshot: page 2 is still the third organization.
    await create(server, { resourceType: 'Organization', name: 'Org late' });
    const page2 = await server.request(next.url);
    expect(page2.body.entry).toHaveLength(1);
    expect(page2.body.entry[0].resource.name).toBe('Org 0');
    expect(page2.body.total).toBe(3);
    // System history holds every type, the audit trail's AuditEvents (one per request) among them.
    const system = await server.request(`_history?_since=${encodeURIComponent(before)}&_count=100`);
    const clinical = system.body.entry.filter((e: any) => e.resource?.resourceType !== 'AuditEvent');
    expect(clinical.map((e: any) => e.resource.name).sort()).toEqual(['Org 0', 'Org 1', 'Org 2', 'Org late']);
    expect(system.body.total).toBe(system.body.entry.length);
  });

  test('bad input gets a precise OperationOutcome and status', async () => {
    const cases: [string, RequestInit & { json?: unknown }, number][] = [
      ['Patient', { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: '{not json' }, 400],
      ['Patient', { method: 'POST', json: { name: [] } }, 400],
      ['Patient', { method: 'POST', json: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } }, 400],
      ['Patient/abc', { method: 'PUT', json: { resourceType: 'Patient', id: 'xyz' } }, 400],
      ['Patient', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'hello' }, 415],
      ['Patient?_format=xml', {}, 406],
      ['Unicorn/1', {}, 404],
      ['Patient/does-not-exist', {}, 404],
      ['Patient', { method: 'POST', json: { resourceType: 'Patient', gender: 'woman' } }, 422],
      ['Patient', { method: 'POST', json: { resourceType: 'Patient', birthDate: 'yesterday' } }, 422],
      ['Patient?unknown-param=1', {}, 400],
      ['Patient?birthdate=notadate', {}, 400],
      // A repeated property would silently lose all but its last value.
      ['Patient', { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: '{"resourceType":"Patient","gender":"male","gender":"female"}' }, 400],
      ['Patient/abc', { method: 'PUT', headers: { 'If-Match': 'version 2' }, json: { resourceType: 'Patient', id: 'abc' } }, 400],
    ];
    for (const [path, init, status] of cases) {
      const res = await server.request(path, init);
      expect({ path, status: res.status }).toEqual({ path, status });
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.id).toBe(res.headers.get('x-request-id'));
      expect(res.text).not.toMatch(/at .*\.(ts|js):\d+/); // no stack traces
    }
  });

  test('a JSON body with a byte order mark is read; a repeated property is named', async () => {
    const withBom = await server.request('Patient', { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: '\uFEFF{"resourceType":"Patient","gender":"female"}' });
    expect(withBom.status).toBe(201);
    const repeated = await server.request('Patient', {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json' },
      body: '{"resourceType":"Patient","name":[{"family":"Twice","given":["A"],"family":"Again"}]}',
    });
    expect(repeated.status).toBe(400);
    expect(repeated.body.issue[0].details.text).toContain('"family" twice');
    expect((await server.request('Patient?family:exact=Again')).body.total).toBe(0);
    const malformed = await server.request(`Patient/${withBom.body.id}`, { method: 'PUT', headers: { 'If-Match': '1' }, json: { ...withBom.body } });
    expect(malformed.status).toBe(400);
    expect(malformed.body.issue[0].details.text).toBe('If-Match must be an ETag such as W/"3", got "1"');
  });

  test('unknown parameters are ignored with a warning under Prefer: handling=lenient', async () => {
    const res = await server.request('Patient?unknown-param=1', { headers: { Prefer: 'handling=lenient' } });
    expect(res.status).toBe(200);
    const outcome = res.body.entry.find((e: any) => e.search?.mode === 'outcome');
    expect(outcome.resource.issue[0].severity).toBe('warning');
  });

  test('body over the limit is refused with 413', async () => {
    const small = await startServer(backend, { MAX_BODY_BYTES: '2048' });
    try {
      const res = await small.request('Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ text: 'x'.repeat(5000) }] } });
      expect(res.status).toBe(413);
      expect(res.body.resourceType).toBe('OperationOutcome');
    } finally {
      await small.close();
    }
  });

  test('a failed write leaves nothing behind', async () => {
    const before = (await server.request('Patient?_summary=count')).body.total;
    const res = await server.request('', {
      method: 'POST',
      json: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:1', resource: patient, request: { method: 'POST', url: 'Patient' } },
          { resource: { resourceType: 'Patient', gender: 'invalid-gender' }, request: { method: 'POST', url: 'Patient' } },
        ],
      },
    });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].details.text).toContain('Bundle.entry[1]');
    expect((await server.request('Patient?_summary=count')).body.total).toBe(before);
  });

  test('CORS for browser apps on other origins: preflight, and the headers on answers and refusals', async () => {
    const origin = { Origin: 'https://app.example' };
    const preflight = await server.request('Patient/p-1', {
      method: 'OPTIONS',
      anonymous: true,
      headers: { ...origin, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'authorization, if-match, content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('PUT');
    expect(preflight.headers.get('access-control-allow-headers')).toEqual(expect.stringContaining('If-Match'));
    const created = await server.request('Patient', { method: 'POST', headers: origin, json: patient });
    expect(created.headers.get('access-control-allow-origin')).toBe('*');
    expect(created.headers.get('access-control-expose-headers')!.split(',')).toEqual(expect.arrayContaining(['ETag', 'Location', 'X-Request-Id']));
    const refused = await server.request('Patient', { anonymous: true, headers: origin });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    const discovery = await server.request('.well-known/smart-configuration', { anonymous: true, headers: origin });
    expect(discovery.headers.get('access-control-allow-origin')).toBe('*');
    // Bearer tokens only: no cookies, so no credentialed CORS.
    expect(created.headers.get('access-control-allow-credentials')).toBeNull();
  });

  test('operability: healthz, readyz, metrics, metadata', async () => {
    expect((await server.request(`${server.origin}/healthz`)).status).toBe(200);
    const ready = await server.request(`${server.origin}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ready');
    const metrics = await server.request(`${server.origin}/metrics`);
    expect(metrics.text).toContain('carelens_http_requests_total');
    expect(metrics.text).toContain('carelens_db_pool_total_connections');
    const cs = await server.request('metadata');
    expect(cs.body.resourceType).toBe('CapabilityStatement');
    expect(cs.body.fhirVersion).toBe('4.0.1');
    const obs = cs.body.rest[0].resource.find((r: any) => r.type === 'Observation');
    expect(obs.searchParam.map((p: any) => p.name)).toEqual(expect.arrayContaining(['code', 'patient', 'date', 'value-quantity']));
    expect(obs.searchInclude).toEqual(expect.arrayContaining(['Observation:subject', 'Observation:encounter']));
    expect(obs.conditionalRead).toBe('full-support');
    expect(cs.body.rest[0].interaction.map((i: any) => i.code)).toContain('search-system');
    const patientType = cs.body.rest[0].resource.find((r: any) => r.type === 'Patient');
    expect(patientType.searchRevInclude).toEqual(expect.arrayContaining(['Observation:subject', 'Encounter:patient', 'Provenance:target']));
    expect(patientType.searchRevInclude).not.toContain('Observation:specimen'); // it reaches Specimens only
    expect(cs.body.rest[0].operation.map((o: any) => o.name)).toContain('resource-counts');
  });
});

describe('the embedded database on disk', () => {
  test('a new DATA_DIR is created on first start and its data is there after a restart', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'carelens-data-')), 'data');
    try {
      const first = await startServer('pglite', { DATA_DIR: dataDir });
      const created = await first.request('Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Persisted' }] } });
      expect(created.status).toBe(201);
      await first.close();
      expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);

      const second = await startServer('pglite', { DATA_DIR: dataDir });
      try {
        const read = await second.request(`Patient/${created.body.id}`);
        expect(read.status).toBe(200);
        expect(read.body.name[0].family).toBe('Persisted');
        expect(read.body.meta.versionId).toBe('1');
        // The server's OperationDefinitions, stored at the first boot, are left as they are by the second.
        const definitions = await second.request('OperationDefinition?_count=100');
        expect(definitions.body.entry.length).toBeGreaterThanOrEqual(4);
        expect(definitions.body.entry.map((e: any) => e.resource.meta.versionId)).toEqual(definitions.body.entry.map(() => '1'));
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dirname(dataDir), { recursive: true, force: true });
    }
  }, 60_000);
});
