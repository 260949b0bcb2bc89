import type { Resource } from '@medplum/fhirtypes';
import { BACKENDS, create, startServer, useServer } from './harness.js';

const LOINC = 'http://loinc.org';
const VITALS = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] };
const LAB = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] };
const HR_PROFILE = 'http://hl7.org/fhir/StructureDefinition/heartrate';

function heartRate(patientId: string, when: string, value = 72): Resource {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [VITALS],
    code: { coding: [{ system: LOINC, code: '8867-4', display: 'Heart rate' }] },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: when,
    valueQuantity: { value, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
  } as Resource;
}

function lab(patientId: string, code: string, when: string): Resource {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [LAB],
    code: { coding: [{ system: LOINC, code }] },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: when,
    valueQuantity: { value: 5, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
  } as Resource;
}

describe.each(BACKENDS)('FHIR operations on %s', (backend) => {
  const server = useServer(backend);

  const keys = (bundle: any): string[] => (bundle.entry ?? []).map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);

  describe('Patient/$everything', () => {
    test('compartment contents, _type, _since, paging with _count', async () => {
      const p = await create(server, { resourceType: 'Patient', name: [{ family: 'Everyman' }] });
      const other = await create(server, { resourceType: 'Patient', name: [{ family: 'Otherman' }] });
      const o1 = await create(server, heartRate(p.id, '2024-01-01T10:00:00Z'));
      const o2 = await create(server, lab(p.id, '2345-7', '2024-01-02T10:00:00Z'));
      const enc = await create(server, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${p.id}` } });
      const cond = await create(server, { resourceType: 'Condition', subject: { reference: `Patient/${p.id}` }, code: { text: 'Hypertension' } });
      const notMine = await create(server, heartRate(other.id, '2024-01-01T10:00:00Z'));
      const org = await create(server, { resourceType: 'Organization', name: 'Not in the compartment' });

      const all = await server.request(`Patient/${p.id}/$everything`);
      expect(all.status).toBe(200);
      expect(all.body.type).toBe('searchset');
      const got = keys(all.body);
      expect(got[0]).toBe(`Patient/${p.id}`); // the patient first
      expect([...got].sort()).toEqual(
        [`Patient/${p.id}`, `Observation/${o1.id}`, `Observation/${o2.id}`, `Encounter/${enc.id}`, `Condition/${cond.id}`].sort(),
      );
      expect(got).not.toContain(`Observation/${notMine.id}`);
      expect(got).not.toContain(`Organization/${org.id}`);
      expect(got).not.toContain(`Patient/${other.id}`);

      const onlyObs = await server.request(`Patient/${p.id}/$everything?_type=Observation`);
      expect(keys(onlyObs.body).sort()).toEqual([`Observation/${o1.id}`, `Observation/${o2.id}`].sort());
      const obsAndCond = await server.request(`Patient/${p.id}/$everything?_type=Observation,Condition`);
      expect(keys(obsAndCond.body).sort()).toEqual([`Observation/${o1.id}`, `Observation/${o2.id}`, `Condition/${cond.id}`].sort());
      expect((await server.request(`Patient/${p.id}/$everything?_type=NotAType`)).status).toBe(400);

      // _since: only what changed after the instant
      const since = new Date().toISOString();
      await new Promise((r) => setTimeout(r, 5));
      const later = await create(server, {
        resourceType: 'AllergyIntolerance',
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
        patient: { reference: `Patient/${p.id}` },
        code: { text: 'Peanut' },
      });
      const sinceRes = await server.request(`Patient/${p.id}/$everything?_since=${encodeURIComponent(since)}`);
      expect(keys(sinceRes.body)).toEqual([`AllergyIntolerance/${later.id}`]);

      // paging: 6 resources, 4 pages of 2 would be wrong; 3 pages of 2, no duplicates
      const expected = [`Patient/${p.id}`, `Observation/${o1.id}`, `Observation/${o2.id}`, `Encounter/${enc.id}`, `Condition/${cond.id}`, `AllergyIntolerance/${later.id}`];
      let res = await server.request(`Patient/${p.id}/$everything?_count=2`);
      const pages: string[][] = [];
      for (;;) {
        expect(res.status).toBe(200);
        pages.push(keys(res.body));
        const next = res.body.link?.find((l: any) => l.relation === 'next');
        if (!next) {
          break;
        }
        expect(pages.length).toBeLessThan(10);
        res = await server.request(next.url);
      }
      expect(pages.map((x) => x.length)).toEqual([2, 2, 2]);
      expect(pages.flat().sort()).toEqual(expected.sort());
      expect(new Set(pages.flat()).size).toBe(6);
      expect(pages[0][0]).toBe(`Patient/${p.id}`);

      expect((await server.request('Patient/does-not-exist/$everything')).status).toBe(404);
    });

    test('start and end select by care date; what has no care date stays', async () => {
      const p = await create(server, { resourceType: 'Patient', name: [{ family: 'Carewhen' }] });
      const jan = await create(server, heartRate(p.id, '2024-01-15T10:00:00Z'));
      const mar = await create(server, lab(p.id, '2345-7', '2024-03-02T10:00:00Z'));
      const visit = await create(server, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${p.id}` }, period: { start: '2024-02-27T09:00:00Z', end: '2024-03-03T12:00:00Z' } });
      const cond = await create(server, { resourceType: 'Condition', subject: { reference: `Patient/${p.id}` }, code: { text: 'Asthma' } }); // no `date` parameter in R4
      const undated = await create(server, { resourceType: 'Observation', status: 'final', code: { text: 'Note' }, subject: { reference: `Patient/${p.id}` } });
      const everything = (query: string) => server.request(`Patient/${p.id}/$everything?${query}`);
      const always = [`Patient/${p.id}`, `Condition/${cond.id}`, `Observation/${undated.id}`];
      expect(keys((await everything('start=2024-03-01')).body).sort()).toEqual([...always, `Observation/${mar.id}`, `Encounter/${visit.id}`].sort());
      expect(keys((await everything('end=2024-02')).body).sort()).toEqual([...always, `Observation/${jan.id}`, `Encounter/${visit.id}`].sort());
      expect(keys((await everything('start=2024-01-16&end=2024-02-26')).body).sort()).toEqual(always.sort());
      // Paging links keep the range.
      const paged = await everything('start=2024-03-01&_count=2');
      expect(paged.body.link.find((l: any) => l.relation === 'next').url).toContain('start=2024-03-01');
      const bad = await everything('start=yesterday');
      expect(bad.status).toBe(400);
      expect(bad.body.issue[0].details.text).toBe('start must be a date, got "yesterday"');
    });

    test('an input the operation does not declare is refused, or dropped under Prefer: handling=lenient', async () => {
      const p = await create(server, { resourceType: 'Patient', name: [{ family: 'Strictparams' }] });
      const o = await create(server, heartRate(p.id, '2024-01-01T10:00:00Z'));
      const typo = await server.request(`Patient/${p.id}/$everything?_typ=Observation`);
      expect(typo.status).toBe(400);
      expect(typo.body.issue[0].expression).toEqual(['_typ']);
      expect(typo.body.issue[0].details.text).toMatch(/^Unknown parameter "_typ" for \$everything; it takes start, end, _since, _type, _count, _offset/);
      // In a POSTed Parameters resource too.
      const posted = await server.request(`Patient/${p.id}/$everything`, {
        method: 'POST',
        json: { resourceType: 'Parameters', parameter: [{ name: 'begin', valueDate: '2024-01-01' }] },
      });
      expect(posted.status).toBe(400);
      expect(posted.body.issue[0].expression).toEqual(['begin']);
      const lenient = await server.request(`Patient/${p.id}/$everything?_typ=Observation&_type=Patient`, { headers: { Prefer: 'handling=lenient' } });
      expect(lenient.status).toBe(200);
      expect(keys(lenient.body)).toEqual([`Patient/${p.id}`]);
      // A parameter declared at most once may not come twice; the response-format parameters are always taken.
      const twice = await server.request(`Patient/${p.id}/$everything?start=2024-01-01&start=2025-01-01`);
      expect(twice.status).toBe(400);
      expect(twice.body.issue[0].details.text).toBe('Parameter "start" of $everything may be given once, got 2');
      const pretty = await server.request(`Patient/${p.id}/$everything?_pretty=true&_format=json`);
      expect(pretty.status).toBe(200);
      expect(keys(pretty.body).sort()).toEqual([`Patient/${p.id}`, `Observation/${o.id}`].sort());
    });
  });

  describe('Observation/$lastn', () => {
    test('max per code, filtered by code and category, needs a patient', async () => {
      const p = await create(server, { resourceType: 'Patient', name: [{ family: 'Lastn' }] });
      const other = await create(server, { resourceType: 'Patient', name: [{ family: 'Lastn-other' }] });
      const hr1 = await create(server, heartRate(p.id, '2024-01-01T10:00:00Z', 60));
      const hr2 = await create(server, heartRate(p.id, '2024-01-03T10:00:00Z', 70));
      const hr3 = await create(server, heartRate(p.id, '2024-01-02T10:00:00Z', 80));
      const na1 = await create(server, lab(p.id, '2951-2', '2024-02-01T00:00:00Z'));
      const na2 = await create(server, lab(p.id, '2951-2', '2024-03-01T00:00:00Z'));
      const glu = await create(server, lab(p.id, '2345-7', '2024-01-15T00:00:00Z'));
      await create(server, heartRate(other.id, '2025-01-01T10:00:00Z', 99));

      const one = await server.request(`Observation/$lastn?patient=Patient/${p.id}`);
      expect(one.status).toBe(200);
      // default max=1: the latest per code
      expect(keys(one.body).sort()).toEqual([`Observation/${hr2.id}`, `Observation/${na2.id}`, `Observation/${glu.id}`].sort());

      const two = await server.request(`Observation/$lastn?patient=Patient/${p.id}&max=2`);
      const twoKeys = keys(two.body);
      expect([...twoKeys].sort()).toEqual(
        [`Observation/${hr2.id}`, `Observation/${hr3.id}`, `Observation/${na2.id}`, `Observation/${na1.id}`, `Observation/${glu.id}`].sort(),
      );
      expect(twoKeys).not.toContain(`Observation/${hr1.id}`);
      // newest first within a code
      expect(twoKeys.indexOf(`Observation/${hr2.id}`)).toBeLessThan(twoKeys.indexOf(`Observation/${hr3.id}`));

      const byCode = await server.request(`Observation/$lastn?patient=${p.id}&code=${encodeURIComponent(LOINC + '|8867-4')}&max=5`);
      expect(keys(byCode.body)).toEqual([`Observation/${hr2.id}`, `Observation/${hr3.id}`, `Observation/${hr1.id}`]);

      const byCategory = await server.request(`Observation/$lastn?subject=Patient/${p.id}&category=laboratory`);
      expect(keys(byCategory.body).sort()).toEqual([`Observation/${na2.id}`, `Observation/${glu.id}`].sort());

      const noPatient = await server.request('Observation/$lastn?category=laboratory');
      expect(noPatient.status).toBe(400);
      expect(noPatient.body.resourceType).toBe('OperationOutcome');
      expect((await server.request(`Observation/$lastn?patient=${p.id}&max=0`)).status).toBe(400);
    });

    test('a code whose readings are older than a page of other readings is still there', async () => {
      const small = await startServer(backend, { DEFAULT_PAGE_SIZE: '3', MAX_PAGE_SIZE: '3' });
      try {
        const p = await create(small, { resourceType: 'Patient', name: [{ family: 'Lastn-long' }] });
        for (let day = 10; day < 16; day++) {
          await create(small, heartRate(p.id, `2024-01-${day}T10:00:00Z`, 60 + day));
        }
        const old = await create(small, lab(p.id, '2951-2', '2023-06-01T00:00:00Z'));
        const res = await small.request(`Observation/$lastn?patient=${p.id}&max=2`);
        expect(keys(res.body)).toHaveLength(3); // two heart rates and the one sodium, though 6 newer readings exist
        expect(keys(res.body)).toContain(`Observation/${old.id}`);
      } finally {
        await small.close();
      }
    });
  });

  describe('$validate', () => {
    /** The errors $validate reports for a resource, as "path: text". */
    const errorsOf = async (resource: Record<string, unknown>): Promise<string[]> =>
      (await server.request(`${resource.resourceType}/$validate`, { method: 'POST', json: resource })).body.issue
        .filter((i: any) => i.severity === 'error')
        .map((i: any) => `${i.expression?.[0]}: ${i.details?.text}`);

    test('valid resource → information only', async () => {
      const res = await server.request('Patient/$validate', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Valid' }], gender: 'female' } });
      expect(res.status).toBe(200);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue.every((i: any) => i.severity === 'information')).toBe(true);
    });

    test('invalid resource → error issues with expression paths', async () => {
      const res = await server.request('Patient/$validate', {
        method: 'POST',
        json: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { resourceType: 'Patient', name: [{ family: 'Neverstored' }], gender: 'robot', birthDate: 'yesterday' } }] },
      });
      expect(res.status).toBe(200);
      const errors = res.body.issue.filter((i: any) => i.severity === 'error');
      expect(errors.length).toBeGreaterThanOrEqual(2);
      const paths = errors.flatMap((i: any) => i.expression ?? []);
      expect(paths.some((p: string) => /gender/.test(p))).toBe(true);
      expect(paths.some((p: string) => /birthDate/.test(p))).toBe(true);
      // $validate never writes
      const search = await server.request('Patient?family:exact=Neverstored');
      expect(search.status).toBe(200);
      expect(search.body.total).toBe(0);
    });

    test('R4 as written, where the validator library is stricter: wrapped base64, a narrative over 1 MB', async () => {
      const encoded = Buffer.from('%PDF-1.7 '.repeat(40)).toString('base64');
      // R4's base64Binary pattern allows whitespace between the 4-character groups (MIME wraps at 76).
      const wrapped = encoded.match(/.{1,76}/g)!.join('\n');
      expect(await errorsOf({ resourceType: 'Binary', contentType: 'application/pdf', data: wrapped })).toEqual([]);
      for (const broken of [`${wrapped}\n%%`, 'QUJD\nRA']) {
        expect(await errorsOf({ resourceType: 'Binary', contentType: 'application/pdf', data: broken })).toEqual(['Binary.data: Invalid base64Binary format']);
      }
      // Strings are capped at 1 MB; xhtml is not a string.
      const div = `<div xmlns="http://www.w3.org/1999/xhtml"><p>${'code table row '.repeat(80_000)}</p></div>`;
      const longNarrative = { resourceType: 'Basic', code: { text: 'long' }, text: { status: 'generated', div } };
      expect(await errorsOf(longNarrative)).toEqual([]);
      expect(await errorsOf({ ...longNarrative, code: { text: 'x'.repeat(1024 * 1024 + 1) } })).toEqual([
        'Basic.code.text: String cannot be larger than 1 MB',
      ]);
    });

    test('an element present with nothing in it (empty object, array or string) is an error wherever it is, and a write of it is refused', async () => {
      const resource = {
        resourceType: 'Patient',
        maritalStatus: {},
        name: [{ family: 'Hollow', _family: {}, given: ['A', ''], period: {} }],
        contact: [{ name: { text: 'Bo' }, telecom: [] }],
        birthDate: '',
      };
      const res = await server.request('Patient/$validate', { method: 'POST', json: resource });
      const structure = res.body.issue.filter((i: any) => i.severity === 'error' && i.code === 'structure').map((i: any) => `${i.expression[0]}: ${i.details.text.split(':')[0]}`);
      // (An empty string in a list is also reported by the validator library, in its own words.)
      expect(structure).toEqual(
        expect.arrayContaining([
          'Patient.maritalStatus: An element must have a value or children (ele-1)',
          'Patient.name[0].family: An element must have a value or children (ele-1)',
          'Patient.name[0].given[1]: A primitive value cannot be an empty string',
          'Patient.name[0].period: An element must have a value or children (ele-1)',
          'Patient.contact[0].telecom: An array cannot be empty',
          'Patient.birthDate: A primitive value cannot be an empty string',
        ]),
      );
      const written = await server.request('Patient', { method: 'POST', json: resource });
      expect(written.status).toBe(422);
      expect((await server.request('Patient?family:exact=Hollow')).body.total).toBe(0);
    });

    test('a resource id, of the resource or of one inside it, has the form of an id; an element id is any string', async () => {
      const errorPaths = async (resource: Record<string, unknown>): Promise<string[]> => (await errorsOf(resource)).map((line) => line.slice(0, line.indexOf(':')));
      const organization = (id: string) => ({ resourceType: 'Organization', id, name: 'Contained' });
      expect(await errorPaths({ resourceType: 'Location', id: '/foobar==' })).toEqual(['Location.id']);
      expect(await errorPaths({ resourceType: 'Location', id: 'x'.repeat(65) })).toEqual(['Location.id']);
      expect(await errorPaths({ resourceType: 'Location', id: 'a-1.B', contained: [organization('org_1')], managingOrganization: { reference: '#org_1' } })).toEqual([
        'Location.contained[0].id',
      ]);
      expect(await errorPaths({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: organization('org 2') }] })).toEqual(['Bundle.entry[0].resource.id']);
      expect(await errorPaths({ resourceType: 'Location', id: 'x'.repeat(64), name: 'Ward', _name: { id: '/any thing==' } })).toEqual([]);
      const written = await server.request('Location', { method: 'POST', json: { resourceType: 'Location', name: 'Refused', contained: [organization('org_1')], managingOrganization: { reference: '#org_1' } } });
      expect(written.status).toBe(422);
    });

    test("an Attachment's size is the byte count of its data", async () => {
      const media = (attachment: Record<string, unknown>) => ({ resourceType: 'Media', status: 'completed', content: attachment });
      const data = Buffer.from('fourteen bytes').toString('base64');
      expect(await errorsOf(media({ contentType: 'text/plain', data, size: 14 }))).toEqual([]);
      expect(await errorsOf(media({ contentType: 'text/plain', data: Buffer.from('fifteen bytes!!').toString('base64'), size: 15 }))).toEqual([]);
      expect(await errorsOf(media({ contentType: 'text/plain', url: 'http://example.org/doc', size: 100 }))).toEqual([]);
      expect(await errorsOf(media({ contentType: 'text/plain', data, size: 100 }))).toEqual(['Media.content.size: The size (100) is not the byte count of the data (14)']);
    });

    test('typed values: integers are 32-bit, a dateTime with a time has a zone, a Coding names a code system, a reference points to a type its element allows', async () => {
      const observation = (extra: Record<string, unknown>) => ({ resourceType: 'Observation', status: 'final', code: { text: 'Heart rate' }, ...extra });
      expect(
        await errorsOf(
          observation({
            subject: { reference: 'Patient/p-1' },
            performer: [{ reference: 'Practitioner/pr-1/_history/2' }, { reference: 'https://other.example/fhir/Medication/m' }],
            effectivePeriod: { start: '2026-01-01T10:00:00+01:00', end: '2026-01-01T11:00:00Z' },
            valueInteger: 2_147_483_647,
          }),
        ),
      ).toEqual([]);
      expect(await errorsOf(observation({ valueInteger: 2_147_483_648 }))).toEqual([
        'Observation.valueInteger: 2147483648 is out of the 32-bit range of integer (up to 2147483647)',
      ]);
      expect(await errorsOf(observation({ effectiveDateTime: '2026-01-01T10:00:00' }))).toEqual([
        'Observation.effectiveDateTime: "2026-01-01T10:00:00" has a time but no time zone, which a dateTime with a time must have',
      ]);
      expect(await errorsOf(observation({ effectiveDateTime: '2026-01-01' }))).toEqual([]);
      expect(await errorsOf(observation({ code: { coding: [{ system: 'http://hl7.org/fhir/ValueSet/observation-vitalsignresult', code: '8867-4' }] } }))).toEqual([
        "Observation.code.coding[0].system: http://hl7.org/fhir/ValueSet/observation-vitalsignresult is a value set, not a code system: a Coding's system names the code system that defines its code",
      ]);
      expect(await errorsOf(observation({ subject: { reference: 'Medication/m-1' } }))).toEqual([
        'Observation.subject.reference: A reference to type Medication, where Observation.subject allows Patient, Group, Device, Location',
      ]);
      // Inside a contained resource and a backbone element, with their own definitions.
      const patient = { resourceType: 'Patient', contact: [{ name: { text: 'Bo' }, organization: { reference: 'Patient/p-2' } }], contained: [{ ...observation({ subject: { reference: 'Medication/m-1' } }), id: 'o1' }], generalPractitioner: [{ reference: '#o1' }] };
      expect(await errorsOf(patient)).toEqual([
        'Patient.contact[0].organization.reference: A reference to type Patient, where Patient.contact.organization allows Organization',
        'Patient.contained[0].subject.reference: A reference to type Medication, where Observation.subject allows Patient, Group, Device, Location',
      ]);
    });

    test('invariants the validator library skips (dom-3, org-1, sdf-19), que-12 as its text says, Bundle fullUrls, and lined-up `_` arrays', async () => {
      const org = { resourceType: 'Organization', id: 'org1', name: 'Ward 3' };
      // dom-3: a contained resource is referred to from the resource (a reference or a canonical), or refers to its container.
      expect(await errorsOf({ resourceType: 'Patient', contained: [org], managingOrganization: { reference: '#org1' } })).toEqual([]);
      const valueSet = { resourceType: 'ValueSet', id: 'yn', status: 'active', compose: { include: [{ system: 'http://example.org/yn' }] } };
      const questionnaire = (extra: Record<string, unknown>) => ({ resourceType: 'Questionnaire', status: 'active', ...extra });
      expect(await errorsOf(questionnaire({ contained: [valueSet], item: [{ linkId: '1', type: 'choice', answerValueSet: '#yn' }] }))).toEqual([]);
      const provenance = { resourceType: 'Provenance', id: 'prov', target: [{ reference: '#' }], recorded: '2026-01-01T10:00:00Z', agent: [{ who: { display: 'Nurse' } }] };
      expect(await errorsOf({ resourceType: 'Patient', contained: [provenance] })).toEqual([]);
      expect(await errorsOf({ resourceType: 'Patient', contained: [org] })).toEqual([
        'Patient.contained[0]: Constraint dom-3 not met: contained Organization "org1" is not referred to from elsewhere in the resource, nor does it refer to the containing resource',
      ]);
      const orphan = await server.request('Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Orphanorg' }], contained: [org] } });
      expect(orphan.status).toBe(422);
      expect((await server.request('Patient?family:exact=Orphanorg')).body.total).toBe(0);
      // org-1, contained or not.
      expect(await errorsOf({ resourceType: 'Organization', active: true })).toEqual([
        'Organization: Constraint org-1 not met: The organization SHALL at least have a name or an identifier',
      ]);
      expect(await errorsOf({ resourceType: 'Patient', contained: [{ resourceType: 'Organization', id: 'o' }], managingOrganization: { reference: '#o' } })).toEqual([
        'Patient.contained[0]: Constraint org-1 not met: The organization SHALL at least have a name or an identifier',
      ]);
      // sdf-19: a structure in FHIR's own namespace uses FHIR's types only.
      const structure = (url: string) => ({
        resourceType: 'StructureDefinition', url, name: 'Sample', status: 'draft', kind: 'logical', abstract: true, type: url,
        differential: { element: [{ id: 'Sample', path: 'Sample' }, { id: 'Sample.code', path: 'Sample.code', type: [{ code: 'http://example.org/types/Special' }] }] },
      });
      expect(await errorsOf(structure('http://example.org/StructureDefinition/Sample'))).toEqual([]);
      expect(await errorsOf(structure('http://hl7.org/fhir/StructureDefinition/Sample'))).toEqual([
        'StructureDefinition: Constraint sdf-19 not met: FHIR Specification models only use FHIR defined types',
      ]);
      // Bundle.entry.fullUrl: absolute, and a RESTful one ends with its resource's type and id.
      const collection = (fullUrl: string) => ({ resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl, resource: { resourceType: 'Patient', id: 'p1' } }] });
      for (const fine of ['https://ehr.example/fhir/Patient/p1', 'urn:uuid:2b6a0f4e-0e1c-4a36-9f0e-6f1d2b9c3a11', 'https://docs.example/patient-p1.json']) {
        expect(await errorsOf(collection(fine))).toEqual([]);
      }
      expect(await errorsOf(collection('Patient/p1'))).toEqual(['Bundle.entry[0].fullUrl: fullUrl "Patient/p1" is not absolute: an entry\'s fullUrl is an absolute URL, or a urn:uuid or urn:oid']);
      expect(await errorsOf(collection('https://ehr.example/fhir/Patient/p2'))).toEqual([
        "Bundle.entry[0].fullUrl: fullUrl https://ehr.example/fhir/Patient/p2 disagrees with its resource, Patient/p1: a RESTful fullUrl ends with the resource's type and id",
      ]);
      // que-12: two enableWhen need an enableBehavior (R4 publishes the expression as "> 2").
      const enableWhen = [{ question: '1', operator: 'exists', answerBoolean: true }, { question: '1', operator: '=', answerBoolean: true }];
      const items = (second: Record<string, unknown>) => questionnaire({ item: [{ linkId: '1', type: 'boolean' }, { linkId: '2', type: 'string', enableWhen, ...second }] });
      expect(await errorsOf(items({ enableBehavior: 'all' }))).toEqual([]);
      expect(await errorsOf(items({}))).toEqual(['Questionnaire.item[1]: Constraint que-12 not met: If there are more than one enableWhen, enableBehavior must be specified']);
      // json.html: `_given` has one item per given, null filling a gap.
      const named = (name: Record<string, unknown>) => ({ resourceType: 'Patient', name: [{ family: 'Lined', ...name }] });
      const ext = { extension: [{ url: 'http://example.org/ext', valueString: 'called' }] };
      expect(await errorsOf(named({ given: ['Ann', 'Bo'], _given: [null, ext] }))).toEqual([]);
      for (const misaligned of [{ given: ['Ann', 'Bo'], _given: [ext] }, { given: ['Ann'], _given: ext }]) {
        expect(await errorsOf(named(misaligned))).toEqual(["Patient.name[0]._given: _given must have one item for each of given's values (null where a value has no id or extensions)"]);
      }
    });

    test('mode=update with an id mismatch is a 400', async () => {
      const p = await create(server, { resourceType: 'Patient', name: [{ family: 'Mode' }] });
      const bad = await server.request(`Patient/${p.id}/$validate`, {
        method: 'POST',
        json: { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'update' }, { name: 'resource', resource: { resourceType: 'Patient', id: 'someone-else' } }] },
      });
      expect(bad.status).toBe(400);
      const ok = await server.request(`Patient/${p.id}/$validate`, {
        method: 'POST',
        json: { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'update' }, { name: 'resource', resource: { resourceType: 'Patient', id: p.id } }] },
      });
      expect(ok.status).toBe(200);
      expect(ok.body.issue.every((i: any) => i.severity === 'information')).toBe(true);
    });

    test('profile parameter: the R4 heartrate profile, and an unknown profile', async () => {
      const withProfile = (resource: Resource, profile: string): Promise<any> =>
        server.request('Observation/$validate', {
          method: 'POST',
          json: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource }, { name: 'profile', valueUri: profile }] },
        });
      const good = await withProfile(heartRate('pat-1', '2024-01-01T10:00:00Z'), HR_PROFILE);
      expect(good.status).toBe(200);
      expect(good.body.issue.filter((i: any) => i.severity === 'error')).toEqual([]);

      const wrongCode = heartRate('pat-1', '2024-01-01T10:00:00Z') as any;
      wrongCode.code = { coding: [{ system: LOINC, code: '2345-7', display: 'Glucose' }] };
      // without the profile it is a fine Observation
      const plain = await server.request('Observation/$validate', { method: 'POST', json: wrongCode });
      expect(plain.body.issue.filter((i: any) => i.severity === 'error')).toEqual([]);
      const bad = await withProfile(wrongCode, HR_PROFILE);
      expect(bad.status).toBe(200);
      expect(bad.body.issue.filter((i: any) => i.severity === 'error').length).toBeGreaterThan(0);

      const unknown = await withProfile(heartRate('pat-1', '2024-01-01T10:00:00Z'), 'http://example.org/StructureDefinition/nope');
      expect(unknown.status).toBe(200);
      const err = unknown.body.issue.filter((i: any) => i.severity === 'error');
      expect(err).toHaveLength(1);
      expect(err[0].details.text).toContain('http://example.org/StructureDefinition/nope');
    });
  });

  describe('Patient/$match', () => {
    test('identifier → certain 1.0, name + birthDate → probable, ordered by score', async () => {
      const sys = `urn:carelens-test:match:${Date.now()}`;
      const family = `Matchwell${Date.now()}`;
      const byId = await create(server, { resourceType: 'Patient', identifier: [{ system: sys, value: 'M-1' }], name: [{ family: 'Unrelated', given: ['Zed'] }], birthDate: '1950-01-01' });
      const byName = await create(server, { resourceType: 'Patient', name: [{ family, given: ['Ada'] }], birthDate: '1980-02-29' });
      const familyOnly = await create(server, { resourceType: 'Patient', name: [{ family, given: ['Bea'] }], birthDate: '1980-02-29' });
      const otherBirth = await create(server, { resourceType: 'Patient', name: [{ family, given: ['Ada'] }], birthDate: '1981-02-28' });

      const res = await server.request('Patient/$match', {
        method: 'POST',
        json: {
          resourceType: 'Parameters',
          parameter: [{ name: 'resource', resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'M-1' }], name: [{ family, given: ['Ada'] }], birthDate: '1980-02-29' } }],
        },
      });
      expect(res.status).toBe(200);
      const entries = res.body.entry as any[];
      expect(entries.map((e) => e.resource.id)).toEqual([byId.id, byName.id, familyOnly.id]);
      expect(entries.map((e) => e.search.score)).toEqual([1, 0.9, 0.6]);
      const grade = (e: any): string => e.search.extension.find((x: any) => x.url === 'http://hl7.org/fhir/StructureDefinition/match-grade').valueCode;
      expect(entries.map(grade)).toEqual(['certain', 'probable', 'possible']);
      expect(entries.map((e) => e.resource.id)).not.toContain(otherBirth.id);
      const scores = entries.map((e) => e.search.score);
      expect([...scores].sort((a, b) => b - a)).toEqual(scores);

      const certainOnly = await server.request('Patient/$match', {
        method: 'POST',
        json: {
          resourceType: 'Parameters',
          parameter: [
            { name: 'resource', resource: { resourceType: 'Patient', identifier: [{ system: sys, value: 'M-1' }], name: [{ family, given: ['Ada'] }], birthDate: '1980-02-29' } },
            { name: 'onlyCertainMatches', valueBoolean: true },
          ],
        },
      });
      expect(certainOnly.body.entry.map((e: any) => e.resource.id)).toEqual([byId.id]);
    });
  });

  test('every operation /metadata names is a stored OperationDefinition its canonical resolves to', async () => {
    const cs = await server.request('metadata');
    const named: { name: string; definition: string }[] = [
      ...cs.body.rest[0].operation,
      ...cs.body.rest[0].resource.flatMap((r: any) => r.operation ?? []),
    ];
    expect(named.map((o) => o.name)).toEqual(expect.arrayContaining(['everything', 'lastn', 'validate', 'match', 'chat', 'risk-assess', 'resource-counts']));
    for (const canonical of new Set(named.map((o) => o.definition))) {
      const found = await server.request(`OperationDefinition?url=${encodeURIComponent(canonical)}`);
      expect(found.body.entry?.map((e: any) => e.resource.url)).toEqual([canonical]);
      const read = await server.request(`OperationDefinition/${found.body.entry[0].resource.id}`);
      expect(read.status).toBe(200);
      expect(named.filter((o) => o.definition === canonical).map((o) => o.name)).toContain(read.body.code);
    }
  });

  describe('custom operation $resource-counts', () => {
    test('counts per type match what was created', async () => {
      const before = await server.request('$resource-counts?_type=Practitioner,Location');
      expect(before.status).toBe(200);
      const countsOf = (body: any): Record<string, number> =>
        Object.fromEntries(
          (body.parameter ?? []).map((p: any) => [
            p.part.find((x: any) => x.name === 'type').valueCode,
            p.part.find((x: any) => x.name === 'total').valueInteger,
          ]),
        );
      const b = countsOf(before.body);
      for (let i = 0; i < 3; i++) {
        await create(server, { resourceType: 'Practitioner', name: [{ family: `Counter${i}` }] });
      }
      const loc = await create(server, { resourceType: 'Location', name: 'Counted place' });
      const gone = await create(server, { resourceType: 'Location', name: 'Deleted place' });
      expect((await server.request(`Location/${gone.id}`, { method: 'DELETE' })).status).toBe(204);
      expect(loc.id).toBeDefined();
      const after = countsOf((await server.request('$resource-counts?_type=Practitioner,Location')).body);
      expect(after).toEqual({ Practitioner: (b.Practitioner ?? 0) + 3, Location: (b.Location ?? 0) + 1 });

      // without _type: every type, consistent with a search total
      const all = countsOf((await server.request('$resource-counts')).body);
      const practitioners = await server.request('Practitioner?_summary=count');
      expect(all.Practitioner).toBe(practitioners.body.total);
      expect(Object.keys(all)).toEqual(expect.arrayContaining(['Practitioner', 'Location']));
      expect((await server.request('$resource-counts?_type=Nope')).status).toBe(400);
    });
  });
});
