import type { Resource } from '@medplum/fhirtypes';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import rejectedExamples from './fixtures/fhir-r4-examples-rejected.json' with { type: 'json' };
import { BACKENDS, hasSharedData, SHARED_DATA, type TestResponse, useServer } from './harness.js';

/**
 * Every official FHIR R4 example is written to the server and read back unchanged, or is refused
 * for a reason listed in fixtures/fhir-r4-examples-rejected.json (each a fault of the example).
 *
 * The examples are ../shared/data/fhir-r4-examples when that folder exists, otherwise the
 * hl7.fhir.r4.examples package (the R4 4.0.1 examples as HL7 publishes them, CC0; a dev dependency).
 * They run on one backend, PostgreSQL when the run has it: validation and indexing are the same
 * code on both, both are the same PostgreSQL engine, and 5,300 resources take a minute each time.
 */

interface Rejection {
  status: number;
  error: string;
  why: string;
}

const SHARED_EXAMPLES = join(SHARED_DATA, 'fhir-r4-examples');
const SOURCE = hasSharedData('fhir-r4-examples')
  ? SHARED_EXAMPLES
  : dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));
const REJECTED = Object.fromEntries(Object.entries(rejectedExamples).filter(([key]) => key.includes('/'))) as Record<string, Rejection>;
const BACKEND = BACKENDS[BACKENDS.length - 1];

interface Example {
  file: string;
  resource: Resource & { id: string };
}

function readExamples(dir: string): Example[] {
  const found: Example[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      found.push(...readExamples(path));
      continue;
    }
    if (!name.endsWith('.json') || name.startsWith('.') || name === 'package.json') {
      continue;
    }
    const resource = JSON.parse(readFileSync(path, 'utf8')) as Resource;
    if (typeof resource.resourceType === 'string' && resource.id) {
      found.push({ file: relative(SOURCE, path), resource: resource as Resource & { id: string } });
    }
  }
  return found;
}

const EXAMPLES = existsSync(SOURCE) ? readExamples(SOURCE) : [];
const BY_TYPE = new Map<string, Example[]>();
for (const example of EXAMPLES) {
  BY_TYPE.set(example.resource.resourceType, [...(BY_TYPE.get(example.resource.resourceType) ?? []), example]);
}

/** What the server sets (meta.versionId, meta.lastUpdated) is not part of the example. */
function withoutServerMeta(resource: Resource): Resource {
  const { versionId: _v, lastUpdated: _l, ...meta } = resource.meta ?? {};
  const { meta: _m, ...rest } = resource;
  return Object.keys(meta).length > 0 ? ({ ...rest, meta } as Resource) : (rest as Resource);
}

/** Binary content is stored as bytes and sent back in one line: compared as bytes, not as the example's line-wrapped text. */
function comparable(resource: Resource): Resource {
  const plain = withoutServerMeta(resource);
  return plain.resourceType === 'Binary' && plain.data ? { ...plain, data: Buffer.from(plain.data, 'base64').toString('base64') } : plain;
}

function errors(response: TestResponse): string[] {
  return (response.body?.issue ?? [])
    .filter((i: { severity: string }) => i.severity === 'error' || i.severity === 'fatal')
    .map((i: { expression?: string[]; details?: { text?: string } }) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);
}

describe(`official FHIR R4 examples (${SOURCE === SHARED_EXAMPLES ? SHARED_EXAMPLES : 'hl7.fhir.r4.examples'}) on ${BACKEND}`, () => {
  // The largest example (Bundle/resources, the R4 resource definitions) is 35 MB, over the default body limit.
  const server = useServer(BACKEND, { MAX_BODY_BYTES: String(64 * 1024 * 1024) });

  test('the examples are there', () => {
    expect(EXAMPLES.length).toBeGreaterThan(1000);
  });

  test('every rejection listed is an example that exists', () => {
    const keys = new Set(EXAMPLES.map((e) => `${e.resource.resourceType}/${e.resource.id}`));
    expect(Object.keys(REJECTED).filter((key) => !keys.has(key))).toEqual([]);
  });

  /**
   * One example: AuditEvents are written only by the server itself, so they are checked with
   * $validate; anything else is written with PUT (update-as-create) and read back.
   * Returns what went differently from what was expected, or nothing.
   */
  async function check({ file, resource }: Example): Promise<string | undefined> {
    const key = `${resource.resourceType}/${resource.id}`;
    const expected = REJECTED[key];
    const validated = resource.resourceType === 'AuditEvent';
    const written = validated
      ? await server.request('AuditEvent/$validate', { method: 'POST', json: resource })
      : await server.request(key, { method: 'PUT', json: resource });
    // A stored OperationOutcome comes back with its own error issues: only a refusal or a $validate report speaks of the example.
    const found = validated || written.status >= 400 ? errors(written) : [];
    const refused = written.status >= 400 || found.length > 0;
    if (expected) {
      const matches = written.status === expected.status && found.some((e) => e.includes(expected.error));
      return matches ? undefined : `${file}: listed as refused (${expected.status} "${expected.error}") but got ${written.status} ${found.join(' | ')}`;
    }
    if (refused) {
      return `${file}: refused with ${written.status}: ${found.slice(0, 3).join(' | ') || written.text.slice(0, 300)}`;
    }
    if (validated) {
      return undefined;
    }
    const read = await server.request(key, { headers: { Accept: 'application/fhir+json' } });
    if (read.status !== 200) {
      return `${file}: written, but reading it back gave ${read.status}`;
    }
    try {
      expect(comparable(read.body)).toEqual(comparable(resource));
      return undefined;
    } catch {
      return `${file}: read back differently from how it was written`;
    }
  }

  describe.each([...BY_TYPE.keys()].sort())('%s', (resourceType) => {
    test('each example is stored and read back unchanged, or refused for its listed fault', async () => {
      // Examples sharing an id (ImplementationGuide/fhir) are checked one after the other; four at a time otherwise.
      const byKey = new Map<string, Example[]>();
      for (const example of BY_TYPE.get(resourceType)!) {
        byKey.set(example.resource.id, [...(byKey.get(example.resource.id) ?? []), example]);
      }
      const queue = [...byKey.values()];
      const problems: string[] = [];
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let group = queue.shift(); group; group = queue.shift()) {
            for (const example of group) {
              const problem = await check(example);
              if (problem) {
                problems.push(problem);
              }
            }
          }
        }),
      );
      expect(problems.sort()).toEqual([]);
    }, 300_000);
  });
});
