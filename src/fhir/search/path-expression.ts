import type { TypedValue } from '@medplum/core';
import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

/**
 * Search parameter expressions that are only paths from the resource — `Observation.code`,
 * `(Observation.value as Quantity)`, `Patient.name | Patient.alias` — evaluated by walking the JSON,
 * with each element's type worked out once from the StructureDefinitions. Most R4 parameters are
 * such paths (34 of Observation's 36), and the FHIRPath engine spends most of its time finding each
 * property's definition again for every value: indexing a resource took 85 µs, mostly there. Any
 * other expression, and any resource that holds primitive extensions (`_given`) on a path, is left
 * to the FHIRPath engine; the tests hold both to the same results over the R4 examples.
 */
export interface PathExpression {
  readonly paths: readonly CompiledPath[];
}

interface CompiledPath {
  /** Property names from the resource; the last may be a choice element. */
  readonly steps: readonly string[];
  /** The last element's type, or for a choice element ([x]) its allowed types in definition order. */
  readonly types: readonly string[];
  readonly choice: boolean;
  /** `as T`: only values of this type. */
  readonly as?: string;
}

/** Finds a StructureDefinition (resource or data type) by type name. */
export type StructureLookup = (type: string) => StructureDefinition | undefined;

const PATH_PART = /^\(?([A-Z][A-Za-z]+)((?:\.[a-z][A-Za-z0-9]*)+)(?: as ([A-Za-z]+)\)|\.as\(([A-Za-z]+)\))?$/;

/** Compiles an expression already narrowed to `resourceType`; undefined when it is not only paths. */
export function compilePathExpression(resourceType: string, expression: string, structures: StructureLookup): PathExpression | undefined {
  const paths: CompiledPath[] = [];
  for (const part of expression.split(' | ').map((p) => p.trim())) {
    const m = PATH_PART.exec(part);
    if (!m || m[1] !== resourceType || (part.startsWith('(') && !m[3])) {
      return undefined;
    }
    const compiled = compilePath(resourceType, m[2].slice(1).split('.'), m[3] ?? m[4], structures);
    if (!compiled) {
      return undefined;
    }
    paths.push(compiled);
  }
  return { paths };
}

function compilePath(resourceType: string, steps: string[], as: string | undefined, structures: StructureLookup): CompiledPath | undefined {
  let sd = structures(resourceType);
  let path = resourceType;
  for (const [i, step] of steps.entries()) {
    const last = i === steps.length - 1;
    const element = sd && findElement(sd, `${path}.${step}`, structures);
    if (!sd || !element) {
      return undefined;
    }
    const codes = (element.element.type ?? []).map((t) => fhirTypeCode(t.code));
    if (element.choice) {
      return last ? { steps, types: codes, choice: true, as } : undefined;
    }
    if (codes.length !== 1) {
      return undefined;
    }
    const code = codes[0];
    if (last) {
      return code === 'BackboneElement' || code === 'Element' ? undefined : { steps, types: codes, choice: false, as };
    }
    if (code === 'BackboneElement' || code === 'Element') {
      path = element.path; // nested in the same definition
    } else {
      sd = structures(code);
      path = code;
    }
  }
  return undefined;
}

/** The element at `path` (or its choice form `path[x]`), following a contentReference to the element it repeats. */
function findElement(sd: StructureDefinition, path: string, structures: StructureLookup): { element: ElementDefinition; path: string; choice: boolean } | undefined {
  for (const el of sd.snapshot?.element ?? []) {
    if (el.path === path || el.path === `${path}[x]`) {
      if (el.contentReference) {
        const target = el.contentReference.replace(/^.*#/, '');
        const referenced = sd.snapshot?.element?.find((e) => e.path === target) ?? structures(target.split('.')[0])?.snapshot?.element?.find((e) => e.path === target);
        return referenced ? { element: referenced, path: target, choice: false } : undefined;
      }
      return { element: el, path: el.path, choice: el.path.endsWith('[x]') };
    }
  }
  return undefined;
}

/**
 * The expression's values, as the FHIRPath engine gives them: in order, arrays flattened, the
 * union's duplicates removed. Undefined when a primitive extension is on the way (the engine merges
 * it into the value): the caller evaluates with the engine instead.
 */
export function evaluatePathExpression(expression: PathExpression, resource: object): TypedValue[] | undefined {
  const out: TypedValue[] = [];
  for (const path of expression.paths) {
    const values = evaluatePath(path, resource);
    if (!values) {
      return undefined;
    }
    out.push(...values);
  }
  return expression.paths.length > 1 ? withoutDuplicates(out) : out;
}

function evaluatePath(path: CompiledPath, resource: object): TypedValue[] | undefined {
  let current: unknown[] = [resource];
  const last = path.steps.length - 1;
  for (let i = 0; i < last; i++) {
    const next: unknown[] = [];
    for (const node of current) {
      const value = (node as Record<string, unknown>)[path.steps[i]];
      if (`_${path.steps[i]}` in (node as object)) {
        return undefined;
      }
      pushFlat(next, value);
    }
    current = next;
  }
  const name = path.steps[last];
  const out: TypedValue[] = [];
  for (const node of current) {
    const record = node as Record<string, unknown>;
    let type = path.types[0];
    let key = name;
    if (path.choice) {
      const found = path.types.find((t) => `${name}${capitalize(t)}` in record || `_${name}${capitalize(t)}` in record);
      if (!found) {
        continue;
      }
      type = found;
      key = `${name}${capitalize(found)}`;
    }
    if (`_${key}` in record) {
      return undefined;
    }
    if (path.as !== undefined && type !== path.as) {
      continue;
    }
    const value = record[key];
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined && v !== null) {
        out.push({ type, value: v });
      }
    }
  }
  return out;
}

function pushFlat(into: unknown[], value: unknown): void {
  if (Array.isArray(value)) {
    for (const v of value) {
      if (typeof v === 'object' && v !== null) {
        into.push(v);
      }
    }
  } else if (typeof value === 'object' && value !== null) {
    into.push(value);
  }
}

/** Elements such as Resource.id are typed with FHIRPath system types (http://hl7.org/fhirpath/System.String): as FHIR types, string and so on. */
function fhirTypeCode(code: string): string {
  const system = /^http:\/\/hl7\.org\/fhirpath\/System\.(\w+)$/.exec(code);
  return system ? system[1].charAt(0).toLowerCase() + system[1].slice(1) : code;
}

function capitalize(code: string): string {
  return code.charAt(0).toUpperCase() + code.slice(1);
}

function withoutDuplicates(values: TypedValue[]): TypedValue[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const key = `${v.type}|${JSON.stringify(v.value)}`;
    return !seen.has(key) && seen.add(key) !== undefined;
  });
}
