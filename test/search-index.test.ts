import { toTypedValue, type TypedValue } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { FhirDefinitions } from '../src/fhir/definitions.js';
import { evaluatePathExpression } from '../src/fhir/search/path-expression.js';

/** Every resource of the R4 examples package (hl7.fhir.r4.examples, a dev dependency), those inside Bundles and contained ones too. */
function examples(): Resource[] {
  const dir = dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));
  const found: Resource[] = [];
  const add = (r: unknown): void => {
    const resource = r as (Resource & { entry?: { resource?: unknown }[]; contained?: unknown[] }) | undefined;
    if (!resource || typeof resource.resourceType !== 'string') {
      return;
    }
    found.push(resource);
    resource.entry?.forEach((e) => add(e.resource));
    resource.contained?.forEach(add);
  };
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.json') && name !== 'package.json') {
      add(JSON.parse(readFileSync(join(dir, name), 'utf8')));
    }
  }
  return found;
}

const plain = (values: TypedValue[]): { type: string; value: unknown }[] => values.map((v) => ({ type: v.type, value: v.value }));

/**
 * Search parameters that are plain paths are indexed by walking the JSON (src/fhir/search/path-expression.ts)
 * rather than by the FHIRPath engine: over every R4 example, both give the same values, except where
 * the engine departs from FHIRPath, which the walk follows.
 */
test('compiled search parameter paths give the FHIRPath engine’s values over the R4 examples', () => {
  const defs = new FhirDefinitions(join(process.cwd(), 'profiles'));
  const resources = examples();
  expect(resources.length).toBeGreaterThan(15_000);
  let compared = 0;
  const departures = new Set<string>();
  const mismatches: string[] = [];
  for (const resource of resources) {
    const typed = [toTypedValue(resource)];
    const context = { variables: { '%resource': typed[0], '%rootResource': typed[0] } };
    for (const param of defs.getSearchParams(resource.resourceType).values()) {
      if (!param.paths || !param.expression || param.code === '_id') {
        continue;
      }
      const walked = evaluatePathExpression(param.paths, resource);
      if (!walked) {
        continue; // a primitive extension on the way: the engine evaluates it
      }
      compared++;
      const engine = plain(param.expression.eval(context, typed));
      if (isDeepStrictEqual(plain(walked), engine)) {
        continue;
      }
      const asTypes = param.paths.paths.map((p) => p.as);
      const key = `${resource.resourceType}.${param.code}`;
      if (asTypes.every((t) => t !== undefined) && isDeepStrictEqual(plain(walked), engine.filter((v) => asTypes.includes(v.type)))) {
        // The engine's as() function keeps values of other types (Condition.onset.as(Age) on an onsetDateTime).
        departures.add(`${key}: as()`);
      } else if (param.paths.paths.length > 1 && engine.every((v) => plain(walked).some((w) => isDeepStrictEqual(w, v)))) {
        // The engine's union drops distinct decimals it finds close (1e-245 g against 1e-22 g).
        departures.add(`${key}: union`);
      } else {
        mismatches.push(`${key} walked ${JSON.stringify(plain(walked)).slice(0, 200)} engine ${JSON.stringify(engine).slice(0, 200)}`);
      }
    }
  }
  expect(mismatches).toEqual([]);
  expect(compared).toBeGreaterThan(500_000);
  expect([...departures].sort()).toEqual([
    'Condition.abatement-age: as()',
    'Condition.abatement-date: as()',
    'Condition.abatement-string: as()',
    'Condition.onset-age: as()',
    'Condition.onset-date: as()',
    'Condition.onset-info: as()',
    'Observation.combo-value-quantity: union',
    'Observation.component-value-quantity: union',
  ]);
});
