import type { OperationOutcome, Parameters, Resource } from '@medplum/fhirtypes';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLSerializer } from '@xmldom/xmldom';
import differences from './fixtures/fhir-test-cases-differences.json' with { type: 'json' };
import { childElements, parseXml, resourceFromXml } from './fhir-xml.js';
import { BACKENDS, SHARED_DATA, type TestResponse, useServer } from './harness.js';

/**
 * The cases of HL7's FHIR test suite (github.com/FHIR/fhir-test-cases) that apply to a FHIR R4
 * server, from ../shared/data/fhir-test-cases or any checkout of it named by CARELENS_FHIR_TEST_CASES:
 * - r4/patch: every FHIRPath Patch case, applied with PATCH, must give the case's output;
 * - validator: every R4 case in JSON that needs no more than the R4 specification (no packages,
 *   profiles, supporting files or validator modes), sent to $validate, must be found valid or
 *   invalid as the reference (Java) validator finds it.
 * Where carelens does otherwise, fixtures/fhir-test-cases-differences.json says what it does and
 * why, and the test holds it to that. One backend, PostgreSQL when the run has it: the cases test
 * request handling, not storage.
 */

const SOURCE = process.env.CARELENS_FHIR_TEST_CASES ?? join(SHARED_DATA, 'fhir-test-cases');
const HAVE_CASES = existsSync(SOURCE);
if (!HAVE_CASES) {
  // Straight to stderr: jest drops buffered console output of a suite whose tests are all skipped.
  process.stderr.write(`SKIPPED: the FHIR test cases (${SOURCE}) are not there: their tests do not run\n`);
}
const BACKEND = BACKENDS[BACKENDS.length - 1];

/** What carelens does instead: a patch refused with this status, or a validator case found (in)valid. */
interface Difference {
  status?: number;
  valid?: boolean;
  why: string;
}
const DIFFERENCES = differences as Record<string, Difference>;

interface PatchCase {
  /** file#name, the key in the differences list. */
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

/** The response's OperationOutcome issues as "path: text", or only its errors. */
function issueLines(response: TestResponse, errorsOnly = false): string[] {
  const issues = (response.body?.issue ?? []) as { severity: string; diagnostics?: string; details?: { text?: string }; expression?: string[] }[];
  return issues
    .filter((i) => !errorsOnly || i.severity === 'error' || i.severity === 'fatal')
    .map((i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? i.diagnostics ?? ''}`);
}

/** The status, and the server's reasons when it refused: a failing case then says why. */
function outcome(response: TestResponse): { status: number; issues?: string[] } {
  return response.status < 400 ? { status: response.status } : { status: response.status, issues: issueLines(response) };
}

interface ValidatorCase {
  /** validator/<name>, the key in the differences list. */
  key: string;
  file: string;
  /** What the reference validator finds: no errors. */
  valid: boolean;
}

/** Keys of a manifest case that set nothing up: any other key (packages, profiles, modes…) needs what a server's $validate does not take. */
const PLAIN_KEYS = new Set(['name', 'file', 'version', 'description', 'explanation', 'use-test']);

function readValidatorCases(): ValidatorCase[] {
  const manifest = join(SOURCE, 'validator', 'manifest.json');
  if (!existsSync(manifest)) return [];
  const all = (JSON.parse(readFileSync(manifest, 'utf8')) as { 'test-cases': Record<string, unknown>[] })['test-cases'];
  return all
    .filter((c) => String(c.version).startsWith('4.0') && String(c.file).endsWith('.json') && c['use-test'] !== false)
    .filter((c) => isExpectation(c.java) && Object.entries(c).every(([key, value]) => PLAIN_KEYS.has(key) || isExpectation(value)))
    .map((c) => ({ key: `validator/${String(c.name)}`, file: String(c.file), valid: expectsValid(c.java as Expectation) }));
}

/** A validator's expected outcome (java, firely-sdk-current, …): its error count, or (newer manifests) the OperationOutcome it gives. */
interface Expectation {
  errorCount?: number;
  outcome?: OperationOutcome;
}

function isExpectation(value: unknown): value is Expectation {
  return typeof value === 'object' && value !== null && ('errorCount' in value || 'outcome' in value);
}

function expectsValid(expectation: Expectation): boolean {
  return expectation.errorCount !== undefined
    ? expectation.errorCount === 0
    : !(expectation.outcome?.issue ?? []).some((i) => i.severity === 'error' || i.severity === 'fatal');
}

/** What $validate made of a resource: valid, or the errors (a refusal of the request counts as invalid). */
function verdict(response: TestResponse): { valid: boolean; errors: string[] } {
  const errors = issueLines(response, true);
  return { valid: response.status === 200 && errors.length === 0, errors };
}

const PATCH_CASES = HAVE_CASES ? readPatchCases() : [];
const VALIDATOR_CASES = HAVE_CASES ? readValidatorCases() : [];

if (!HAVE_CASES) {
  describe.skip(`FHIR test cases (${SOURCE})`, () => {
    test('are not there', () => undefined);
  });
} else {
  describe(`FHIR test cases (${SOURCE}) on ${BACKEND}`, () => {
    const server = useServer(BACKEND);

    test('the suite has FHIRPath Patch and validator cases, and every difference listed is a case in it', () => {
      expect(PATCH_CASES.length).toBeGreaterThan(20);
      expect(VALIDATOR_CASES.length).toBeGreaterThan(20);
      const keys = new Set([...PATCH_CASES, ...VALIDATOR_CASES].map((c) => c.key));
      expect(Object.keys(DIFFERENCES).filter((key) => !keys.has(key))).toEqual([]);
    });

    test.each(PATCH_CASES.map((c, n) => [c.key, n, c] as const))('%s', async (_key, n, { key, input, patch, output }) => {
      const id = `ftc-patch-${n}`;
      const created = await server.request(`${input.resourceType}/${id}`, { method: 'PUT', json: { ...input, id } });
      expect(outcome(created)).toEqual({ status: 201 });

      const patched = await server.request(`${input.resourceType}/${id}`, { method: 'PATCH', json: patch });
      const difference = DIFFERENCES[key];
      if (difference || !output) {
        expect(patched.status).toBe(difference?.status ?? 422);
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

    test.each(VALIDATOR_CASES.map((c) => [c.key, c.valid ? 'valid' : 'invalid', c] as const))('%s is %s', async (_key, _expected, { key, file, valid }) => {
      const text = readFileSync(join(SOURCE, 'validator', file), 'utf8');
      let resource: Resource | undefined;
      try {
        resource = JSON.parse(text) as Resource;
      } catch {
        // Malformed on purpose: sent as written.
      }
      // In a Parameters, so that a Parameters case is not read as the operation's own parameters.
      const response = resource
        ? await server.request(`${resource.resourceType}/$validate`, { method: 'POST', json: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource }] } })
        : await server.request('Basic/$validate', { method: 'POST', body: text, headers: { 'Content-Type': 'application/fhir+json' } });
      const found = verdict(response);
      const expected = DIFFERENCES[key]?.valid ?? valid;
      expect({ valid: found.valid, errors: found.valid === expected ? [] : found.errors }).toEqual({ valid: expected, errors: [] });
    });
  });
}
