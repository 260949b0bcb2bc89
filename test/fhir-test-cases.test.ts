import type { Parameters, Resource } from '@medplum/fhirtypes';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLSerializer } from '@xmldom/xmldom';
import faults from './fixtures/fhir-test-cases-faults.json' with { type: 'json' };
import { childElements, parseXml, resourceFromXml } from './fhir-xml.js';
import { BACKENDS, defs, SHARED_DATA, type TestResponse, useServer } from './harness.js';

/**
 * The cases of HL7's FHIR test suite (github.com/FHIR/fhir-test-cases) that apply to a FHIR R4
 * server: r4/patch, FHIRPath Patch applied through PATCH. The suite is ../shared/data/fhir-test-cases,
 * or any checkout of it named by CARELENS_FHIR_TEST_CASES. A case the suite itself gets wrong is
 * listed in fixtures/fhir-test-cases-faults.json with why, and must be refused as listed.
 * One backend, PostgreSQL when the run has it: the cases test request handling, not storage.
 */

const SOURCE = process.env.CARELENS_FHIR_TEST_CASES ?? join(SHARED_DATA, 'fhir-test-cases');
const HAVE_CASES = existsSync(SOURCE);
if (!HAVE_CASES) {
  // Straight to stderr: jest drops buffered console output of a suite whose tests are all skipped.
  process.stderr.write(`SKIPPED: the FHIR test cases (${SOURCE}) are not there: their tests do not run\n`);
}
const BACKEND = BACKENDS[BACKENDS.length - 1];
const FAULTS = faults as Record<string, { status: number; why: string }>;

interface PatchCase {
  /** file#name, the key in the faults list. */
  key: string;
  input: Resource;
  patch: Parameters;
  /** The patched resource; absent when the patch must be refused. */
  output?: Resource;
}

/**
 * Each <case> is parsed on its own: one stray closing tag in a file (the suite has had some) then
 * costs nothing but itself.
 */
function readPatchCases(): PatchCase[] {
  defs();
  const dir = join(SOURCE, 'r4', 'patch');
  if (!existsSync(dir)) return [];
  const cases: PatchCase[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.xml')).sort()) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const [chunk] of text.matchAll(/<case\b[\s\S]*?<\/case>/g)) {
      const element = parseXml(chunk);
      const part = (name: string): Resource | undefined => {
        const holder = childElements(element).find((e) => e.localName === name);
        const [resource] = holder ? childElements(holder) : [];
        return resource ? resourceFromXml(resource) : undefined;
      };
      cases.push({
        key: `r4/patch/${file}#${element.getAttribute('name')}`,
        input: part('input')!,
        patch: part('diff') as Parameters,
        output: part('output'),
      });
    }
  }
  return cases;
}

/** The resource without what the server sets, and its narrative in one serialization: the suite's div and a patch's text differ only in how they escape. */
function comparable(resource: Resource): unknown {
  const { meta: _meta, id: _id, ...rest } = resource as Resource & { text?: { div?: string } };
  if (rest.text?.div) {
    rest.text = { ...rest.text, div: new XMLSerializer().serializeToString(parseXml(rest.text.div)) };
  }
  return rest;
}

/** The status, and the server's reasons when it refused: a failing case then says why. */
function outcome(response: TestResponse): { status: number; issues?: string[] } {
  if (response.status < 400) return { status: response.status };
  const issues = (response.body?.issue ?? []) as { diagnostics?: string; details?: { text?: string }; expression?: string[] }[];
  return { status: response.status, issues: issues.map((i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? i.diagnostics ?? ''}`) };
}

const PATCH_CASES = HAVE_CASES ? readPatchCases() : [];

(HAVE_CASES ? describe : describe.skip)(`FHIR test cases (${SOURCE}) on ${BACKEND}`, () => {
  const server = useServer(BACKEND);

  test('the suite has FHIRPath Patch cases, and every fault listed is a case in it', () => {
    expect(PATCH_CASES.length).toBeGreaterThan(20);
    const keys = new Set(PATCH_CASES.map((c) => c.key));
    expect(Object.keys(FAULTS).filter((key) => !keys.has(key))).toEqual([]);
  });

  // test.each refuses an empty table: the test above already fails when the cases are missing.
  (PATCH_CASES.length > 0 ? test.each : () => () => undefined)(PATCH_CASES.map((c, n) => [c.key, n, c] as const))('%s', async (_key, n, { key, input, patch, output }) => {
    const id = `ftc-patch-${n}`;
    const created = await server.request(`${input.resourceType}/${id}`, { method: 'PUT', json: { ...input, id } });
    expect(outcome(created)).toEqual({ status: 201 });

    const patched = await server.request(`${input.resourceType}/${id}`, { method: 'PATCH', json: patch });
    const fault = FAULTS[key];
    if (fault || !output) {
      expect(patched.status).toBe(fault?.status ?? 422);
      expect(patched.body.resourceType).toBe('OperationOutcome');
      const read = await server.request(`${input.resourceType}/${id}`);
      expect(read.body.meta.versionId).toBe('1');
      return;
    }
    expect(outcome(patched)).toEqual({ status: 200 });
    expect(comparable(patched.body)).toEqual(comparable(output));
    const read = await server.request(`${input.resourceType}/${id}`);
    expect(comparable(read.body)).toEqual(comparable(output));
  });
});
