import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKENDS, hasSharedData, SHARED_DATA, useServer } from './harness.js';

/**
 * Loads the Synthea R4 transaction bundles in ../shared/data/synthea-r4 over HTTP and checks what the
 * server made of them: counts per type, reference rewriting, conditional creates and references,
 * searches and Patient/$everything.
 *
 * The files are an older Synthea export: every Organization and Practitioner is a plain POST (no
 * ifNoneExist) and every reference is a urn:uuid. Current Synthea output instead puts ifNoneExist
 * (identifier=system|value) on the Organization/Practitioner entries and references them with
 * conditional references (Organization?identifier=system|value). `modernise` rewrites the bundles to
 * that shape (and only that: ids, content and the other references are untouched) so that both paths
 * are exercised; the expected counts are computed from the rewritten bundles.
 */

const DIR = join(SHARED_DATA, 'synthea-r4');
const HAVE_DATA = hasSharedData('synthea-r4');
if (!HAVE_DATA) {
  // Straight to stderr: jest drops buffered console output of a suite whose tests are all skipped.
  process.stderr.write(`synthea.test.ts SKIPPED: the Synthea R4 data folder ${DIR} is missing (see ../shared/data/synthea-r4/README.md)\n`);
}
const describeIfData = HAVE_DATA ? describe : describe.skip;

type Json = any;
const SHARED_TYPES = new Set(['Organization', 'Practitioner']);

function readBundle(file: string): Json {
  return JSON.parse(readFileSync(join(DIR, file), 'utf8'));
}

function files(prefix: string): string[] {
  return readdirSync(DIR).filter((f) => f.startsWith(prefix) && f.endsWith('.json')).sort();
}

function identifierQuery(resource: Json): string {
  const id = resource.identifier?.find((i: Json) => i.system && i.value);
  if (!id) {
    throw new Error(`${resource.resourceType}/${resource.id} has no identifier to make it conditional`);
  }
  return `identifier=${id.system}|${id.value}`;
}

/** Visits every {reference} object in a resource (including contained resources). */
function eachReference(value: Json, fn: (holder: { reference: string }, path: string) => void, path = ''): void {
  if (Array.isArray(value)) {
    value.forEach((v) => eachReference(v, fn, path));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') {
        fn(value as { reference: string }, path);
      } else {
        eachReference(v, fn, path ? `${path}.${k}` : k);
      }
    }
  }
}

/** Current-Synthea shape: ifNoneExist on shared resources, conditional references to them from patient bundles. */
function modernise(bundle: Json): Json {
  const copy = structuredClone(bundle);
  const conditional = new Map<string, string>(); // fullUrl of a shared entry → Type?identifier=…
  for (const entry of copy.entry) {
    const r = entry.resource;
    if (SHARED_TYPES.has(r.resourceType) && entry.request.method === 'POST') {
      entry.request.ifNoneExist ??= identifierQuery(r);
      conditional.set(entry.fullUrl, `${r.resourceType}?${entry.request.ifNoneExist}`);
    }
  }
  for (const entry of copy.entry) {
    if (!SHARED_TYPES.has(entry.resource.resourceType)) {
      eachReference(entry.resource, (holder) => {
        const c = conditional.get(holder.reference);
        if (c) {
          holder.reference = c;
        }
      });
    }
  }
  return copy;
}

interface Loaded {
  file: string;
  bundle: Json; // as posted
  response: Json;
  /** fullUrl → Type/id on the server */
  ids: Map<string, string>;
}

/** Type/id from a response entry's location (base/Type/id/_history/n). */
function typeIdOf(location: string): string {
  const m = /([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})\/_history\/\d+$/.exec(location);
  if (!m) {
    throw new Error(`unexpected location ${location}`);
  }
  return `${m[1]}/${m[2]}`;
}

describeIfData.each(BACKENDS)('Synthea R4 bundles on %s', (backend) => {
  const server = useServer(backend);
  const hospitals = HAVE_DATA ? files('hospitalInformation') : [];
  const practitioners = HAVE_DATA ? files('practitionerInformation') : [];
  const patients = HAVE_DATA ? readdirSync(DIR).filter((f) => f.endsWith('.json') && !/^(hospital|practitioner)Information/.test(f)).sort() : [];
  const loaded: Loaded[] = [];
  const expected = new Map<string, number>(); // resourceType → count expected on the server
  const seen = new Map<string, Set<string>>(); // resourceType → ifNoneExist criteria already satisfied
  const sharedByQuery = new Map<string, string>(); // Type?identifier=… → Type/id on the server

  async function postTransaction(file: string, bundle: Json): Promise<Loaded> {
    const res = await server.request('', { method: 'POST', json: bundle });
    if (res.status !== 200) {
      throw new Error(`${file}: ${res.status} ${res.text.slice(0, 2000)}`);
    }
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry).toHaveLength(bundle.entry.length);
    const ids = new Map<string, string>();
    bundle.entry.forEach((entry: Json, i: number) => {
      const out = res.body.entry[i];
      expect({ file, i, status: out.response.status }).toEqual({ file, i, status: expect.stringMatching(/^2\d\d/) });
      const typeId = typeIdOf(out.response.location);
      expect(typeId.split('/')[0]).toBe(entry.resource.resourceType);
      ids.set(entry.fullUrl, typeId);
      // Expected counts: a conditional create whose criteria were already satisfied creates nothing.
      const type = entry.resource.resourceType;
      const criteria = entry.request.ifNoneExist as string | undefined;
      const already = criteria !== undefined && (seen.get(type)?.has(criteria) ?? false);
      if (already) {
        expect(out.response.status).toMatch(/^200/);
        expect(typeId).toBe(sharedByQuery.get(`${type}?${criteria}`));
      } else {
        expect(out.response.status).toMatch(/^201/);
        expected.set(type, (expected.get(type) ?? 0) + 1);
        for (const id of entry.resource.identifier ?? []) {
          if (id.system && id.value) {
            const q = `identifier=${id.system}|${id.value}`;
            if (!seen.has(type)) {
              seen.set(type, new Set());
            }
            seen.get(type)!.add(q);
            sharedByQuery.set(`${type}?${q}`, typeId);
          }
        }
      }
    });
    const result = { file, bundle, response: res.body, ids };
    loaded.push(result);
    return result;
  }

  beforeAll(async () => {
    const raw = [...hospitals, ...practitioners, ...patients].map(readBundle);
    const plainPosts = raw.flatMap((b) => b.entry).filter((e: Json) => e.request.method === 'POST' && !e.request.ifNoneExist).length;
    console.info(`synthea: ${patients.length} patient bundles; ${plainPosts} of ${raw.flatMap((b) => b.entry).length} entries are plain POSTs in the files; ifNoneExist and conditional references are added by modernise()`);
    // Shared resources first, then the patients.
    for (const file of [...hospitals, ...practitioners, ...patients]) {
      await postTransaction(file, modernise(readBundle(file)));
    }
  }, 300_000);

  const patientLoads = (): Loaded[] => loaded.filter((l) => patients.includes(l.file));

  test('the data set is there and was loaded', () => {
    expect(hospitals.length).toBeGreaterThan(0);
    expect(practitioners.length).toBeGreaterThan(0);
    expect(patients.length).toBeGreaterThan(0);
    expect(loaded).toHaveLength(hospitals.length + practitioners.length + patients.length);
    // The patient bundles reference shared resources conditionally (after modernise), so that path runs.
    const conditionalRefs = patientLoads().flatMap((l) => {
      const refs: string[] = [];
      l.bundle.entry.forEach((e: Json) => eachReference(e.resource, (h) => /^[A-Z][A-Za-z]+\?/.test(h.reference) && refs.push(h.reference)));
      return refs;
    });
    expect(conditionalRefs.length).toBeGreaterThan(0);
  });

  test('resource counts per type equal the counts computed from the bundles (ifNoneExist creates no duplicates)', async () => {
    const types = new Set<string>(loaded.flatMap((l) => l.bundle.entry.map((e: Json) => e.resource.resourceType)));
    const actual: Record<string, number> = {};
    const wanted: Record<string, number> = {};
    for (const type of types) {
      const res = await server.request(`${type}?_summary=count`);
      expect(res.status).toBe(200);
      actual[type] = res.body.total;
      wanted[type] = expected.get(type) ?? 0;
    }
    expect(actual).toEqual(wanted);
    // Organizations/Practitioners come from the hospital and practitioner files only.
    const sharedInFiles = (prefix: string[]): number => prefix.reduce((n, f) => n + readBundle(f).entry.length, 0);
    expect(actual.Organization).toBe(sharedInFiles(hospitals));
    expect(actual.Practitioner).toBe(sharedInFiles(practitioners));
    const alt = await server.request('Encounter?_total=accurate&_count=0');
    expect(alt.status).toBe(200);
    expect(alt.body.total).toBe(expected.get('Encounter'));
  });

  test('the shared entries of patient bundles matched the existing resources (200, same id)', () => {
    for (const l of patientLoads()) {
      l.bundle.entry.forEach((e: Json, i: number) => {
        if (SHARED_TYPES.has(e.resource.resourceType)) {
          expect(l.response.entry[i].response.status).toMatch(/^200/);
          expect(l.ids.get(e.fullUrl)).toBe(sharedByQuery.get(`${e.resource.resourceType}?${e.request.ifNoneExist}`));
        }
      });
    }
  });

  test('conditional references were resolved to the matching Organization/Practitioner', async () => {
    const orgIds = new Set<string>(
      (await server.request('Organization?_count=1000')).body.entry.map((e: Json) => `Organization/${e.resource.id}`),
    );
    expect(orgIds.size).toBe(expected.get('Organization'));
    let checked = 0;
    for (const l of patientLoads()) {
      const encounters = (await server.request(`Encounter?patient=${l.ids.get(l.bundle.entry[0].fullUrl)!.split('/')[1]}&_count=1000`)).body.entry ?? [];
      const posted = new Map<string, Json>(
        l.bundle.entry.filter((e: Json) => e.resource.resourceType === 'Encounter').map((e: Json) => [l.ids.get(e.fullUrl)!, e.resource]),
      );
      for (const { resource } of encounters) {
        const sp = resource.serviceProvider.reference as string;
        expect(sp).toMatch(/^Organization\/[A-Za-z0-9\-.]+$/);
        expect(orgIds.has(sp)).toBe(true);
        const sent = posted.get(`Encounter/${resource.id}`);
        // The one the conditional reference named: the Organization with that identifier.
        expect(sp).toBe(sharedByQuery.get(sent.serviceProvider.reference));
        for (const p of resource.participant ?? []) {
          const sentP = sent.participant.find((x: Json) => x.period?.start === p.period?.start);
          expect(p.individual.reference).toBe(sharedByQuery.get(sentP.individual.reference));
        }
        checked++;
      }
    }
    expect(checked).toBe(expected.get('Encounter'));
  });

  test('urn:uuid references are rewritten to Type/id references that resolve', async () => {
    const targets = new Set<string>();
    for (const l of patientLoads()) {
      const patientId = l.ids.get(l.bundle.entry[0].fullUrl)!.split('/')[1];
      const everything = await server.request(`Patient/${patientId}/$everything`);
      for (const { resource } of everything.body.entry) {
        eachReference(resource, (h, path) => {
          expect({ path, reference: h.reference }).toEqual({ path, reference: expect.not.stringMatching(/^urn:|\?/) });
          if (!h.reference.startsWith('#')) {
            expect(h.reference).toMatch(/^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/);
            targets.add(h.reference);
          }
        });
      }
      // Every urn:uuid of the bundle became the id the server assigned to that entry.
      const patientEntry = everything.body.entry.find((e: Json) => e.resource.resourceType === 'Patient').resource;
      expect(`Patient/${patientEntry.id}`).toBe(l.ids.get(l.bundle.entry[0].fullUrl));
      for (const { resource } of everything.body.entry.filter((e: Json) => e.resource.resourceType === 'Observation')) {
        expect(resource.subject.reference).toBe(`Patient/${patientId}`);
        expect([...l.ids.values()]).toContain(resource.encounter.reference);
      }
    }
    expect(targets.size).toBeGreaterThan(0);
    const missing: string[] = [];
    for (const t of targets) {
      const res = await server.request(t);
      if (res.status !== 200) {
        missing.push(`${t}: ${res.status}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test('per-patient searches and $everything match the bundle', async () => {
    const allConditions = patientLoads().flatMap((l) =>
      l.bundle.entry.filter((e: Json) => e.resource.resourceType === 'Condition').map((e: Json) => ({ id: l.ids.get(e.fullUrl)!, resource: e.resource })),
    );
    for (const l of patientLoads()) {
      const entries: Json[] = l.bundle.entry;
      const patientEntry = entries.find((e) => e.resource.resourceType === 'Patient');
      const patientRef = l.ids.get(patientEntry.fullUrl)!;
      const patientId = patientRef.split('/')[1];
      const ofType = (t: string): string[] => entries.filter((e) => e.resource.resourceType === t).map((e) => l.ids.get(e.fullUrl)!);

      const obs = await server.request(`Observation?subject=${patientRef}&_summary=count`);
      expect({ file: l.file, total: obs.body.total }).toEqual({ file: l.file, total: ofType('Observation').length });

      const { family } = patientEntry.resource.name[0];
      const byName = await server.request(`Patient?family=${encodeURIComponent(family)}&birthdate=${patientEntry.resource.birthDate}`);
      expect(byName.status).toBe(200);
      expect(byName.body.entry.map((e: Json) => e.resource.id)).toContain(patientId);

      const enc = await server.request(`Encounter?patient=${patientId}&_count=1000`);
      expect(enc.status).toBe(200);
      expect(enc.body.total).toBe(ofType('Encounter').length);
      expect(enc.body.entry.map((e: Json) => `Encounter/${e.resource.id}`).sort()).toEqual(ofType('Encounter').sort());

      const condition = entries.find((e) => e.resource.resourceType === 'Condition');
      if (condition) {
        const coding = condition.resource.code.coding[0];
        const withCode = allConditions.filter((c) => c.resource.code.coding.some((x: Json) => x.system === coding.system && x.code === coding.code));
        const res = await server.request(`Condition?code=${encodeURIComponent(`${coding.system}|${coding.code}`)}&_count=1000`);
        expect(res.status).toBe(200);
        expect(res.body.entry.map((e: Json) => `Condition/${e.resource.id}`)).toContain(l.ids.get(condition.fullUrl));
        expect(res.body.total).toBe(withCode.length);
      }

      // $everything: the patient plus every compartment resource of the bundle (all but the shared ones).
      const everything = await server.request(`Patient/${patientId}/$everything`);
      expect(everything.status).toBe(200);
      const got = everything.body.entry.map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`).sort();
      const want = entries.filter((e) => !SHARED_TYPES.has(e.resource.resourceType)).map((e) => l.ids.get(e.fullUrl)!).sort();
      expect(got).toEqual(want);
      expect(everything.body.entry[0].resource.resourceType).toBe('Patient');
    }
  });

  test('loading the same hospital bundle again creates no Organization (ifNoneExist)', async () => {
    const before = (await server.request('Organization?_summary=count')).body.total;
    const first = loaded.find((l) => l.file === hospitals[0])!;
    const again = await server.request('', { method: 'POST', json: modernise(readBundle(hospitals[0])) });
    expect(again.status).toBe(200);
    expect(again.body.type).toBe('transaction-response');
    expect(again.body.entry).toHaveLength(first.bundle.entry.length);
    again.body.entry.forEach((out: Json, i: number) => {
      expect(out.response.status).toMatch(/^200/);
      expect(typeIdOf(out.response.location)).toBe(first.ids.get(first.bundle.entry[i].fullUrl));
    });
    expect((await server.request('Organization?_summary=count')).body.total).toBe(before);
  });
});
