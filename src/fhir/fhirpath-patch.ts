/**
 * FHIRPath Patch (FHIR R4 §3.1.0.7.2, fhirpatch.html): a Parameters resource of `operation`s — add,
 * insert, delete, replace, move — each locating its target with a FHIRPath expression. fhirpath.js
 * evaluates the path and reports, for every node found, its parent, property name and array index,
 * which is all a change needs.
 */
import { tryGetDataType } from '@medplum/core';
import type { Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';
import { badRequest, FhirError, issue } from './outcome.js';

interface PathNode {
  data: unknown;
  propName?: string;
  index: number | null;
  fhirNodeDataType?: string;
  parentResNode?: PathNode;
}

type Json = Record<string, unknown>;
const TYPES = new Set(['add', 'insert', 'delete', 'replace', 'move']);

export function isFhirPathPatch(body: unknown): body is Parameters {
  return typeof body === 'object' && body !== null && (body as Resource).resourceType === 'Parameters';
}

/** Applies the operations in order to a copy of the resource. */
export function applyFhirPathPatch(resource: Resource, patch: Parameters): Resource {
  const target = structuredClone(resource) as Resource & Json;
  (patch.parameter ?? []).forEach((op, n) => {
    if (op.name !== 'operation') throw badRequest(`FHIRPath Patch parameter ${n + 1} is "${op.name}": every parameter must be an "operation"`);
    apply(target, op, n + 1);
  });
  return target;
}

function apply(resource: Json, op: ParametersParameter, n: number): void {
  const part = (name: string): ParametersParameter | undefined => op.part?.find((p) => p.name === name);
  const type = part('type')?.valueCode ?? part('type')?.valueString;
  const path = part('path')?.valueString;
  if (!type || !TYPES.has(type)) throw badRequest(`Operation ${n}: type must be add, insert, delete, replace or move`);
  if (!path) throw badRequest(`Operation ${n}: path is required`);
  const fail = (text: string): FhirError => new FhirError(422, [issue('processing', `FHIRPath Patch operation ${n} (${type} at ${path}): ${text}`)]);
  let nodes: PathNode[];
  try {
    nodes = fhirpath.evaluate(resource, quoteDivMembers(path), {}, r4model, { resolveInternalTypes: false }) as PathNode[];
  } catch (err) {
    throw badRequest(`Operation ${n}: invalid FHIRPath "${path}": ${(err as Error).message}`);
  }
  const integer = (name: string): number => {
    const value = part(name)?.valueInteger;
    if (value === undefined || value < 0) throw badRequest(`Operation ${n}: ${name} must be a non-negative integer`);
    return value;
  };
  switch (type) {
    case 'add': {
      const name = part('name')?.valueString;
      if (!name) throw badRequest(`Operation ${n}: add needs a name`);
      const container = single(nodes, fail);
      if (typeof container.data !== 'object' || container.data === null) throw fail('the path must select an element that can hold children');
      const holder = container.data as Json;
      const value = valueOf(part('value'), n);
      const repeats = tryGetDataType(container.fhirNodeDataType ?? '')?.elements?.[name]?.max === Number.POSITIVE_INFINITY;
      if (Array.isArray(holder[name])) (holder[name] as unknown[]).push(value);
      else if (holder[name] !== undefined) throw fail(`${name} already has a value: use replace`);
      else holder[name] = repeats ? [value] : value;
      return;
    }
    case 'insert': {
      const list = listOf(nodes, fail);
      const index = integer('index');
      if (index > list.length) throw fail(`index ${index} is past the end of the list (${list.length} items)`);
      list.splice(index, 0, valueOf(part('value'), n));
      return;
    }
    case 'delete': {
      if (nodes.length === 0) return; // nothing there: deleting succeeds (fhirpatch.html)
      remove(single(nodes, fail));
      return;
    }
    case 'replace': {
      const node = single(nodes, fail);
      const { holder, key } = location(node, fail);
      holder[key as keyof typeof holder] = valueOf(part('value'), n) as never;
      return;
    }
    case 'move': {
      const list = listOf(nodes, fail);
      const source = integer('source');
      const destination = integer('destination');
      if (source >= list.length || destination >= list.length) throw fail(`source and destination must be below the list length (${list.length})`);
      const [item] = list.splice(source, 1);
      list.splice(destination, 0, item);
      return;
    }
  }
}

/**
 * FHIRPath reserves `div` for integer division, yet Narrative.div is an element: clients (and HL7's
 * own FHIRPath Patch test cases) write `Patient.text.div`, which fhirpath.js refuses to parse.
 * After a dot it can only name a member, so it is read as the delimited identifier `div`.
 */
function quoteDivMembers(path: string): string {
  return path.replace(/('(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`)|\.div\b/g, (_match: string, literal?: string) => literal ?? '.`div`');
}

function single(nodes: PathNode[], fail: (text: string) => FhirError): PathNode {
  if (nodes.length !== 1) throw fail(`the path must select exactly one element, it selected ${nodes.length}`);
  return nodes[0];
}

/** The array or object slot that holds a node. */
function location(node: PathNode, fail: (text: string) => FhirError): { holder: Json | unknown[]; key: string | number } {
  const parent = node.parentResNode?.data as Json | undefined;
  if (!parent || !node.propName) throw fail('the path selects the resource itself');
  return node.index !== null && Array.isArray(parent[node.propName]) ? { holder: parent[node.propName] as unknown[], key: node.index } : { holder: parent, key: node.propName };
}

function remove(node: PathNode): void {
  const parent = node.parentResNode!.data as Json;
  const name = node.propName!;
  if (node.index !== null && Array.isArray(parent[name])) {
    const list = parent[name] as unknown[];
    list.splice(node.index, 1);
    if (list.length === 0) delete parent[name];
  } else {
    delete parent[name];
  }
  // An element with neither value nor children is not FHIR (ele-1): one the delete emptied goes too.
  const holder = node.parentResNode;
  if (holder?.parentResNode && holder.propName && Object.keys(parent).length === 0) remove(holder);
}

/** The list a path selects: all nodes are items of one array (an empty list when the element is absent is not allowed). */
function listOf(nodes: PathNode[], fail: (text: string) => FhirError): unknown[] {
  const first = nodes[0];
  const parent = first?.parentResNode?.data as Json | undefined;
  const list = parent && first.propName ? parent[first.propName] : undefined;
  if (!Array.isArray(list) || nodes.some((node) => node.parentResNode?.data !== parent || node.propName !== first.propName)) {
    throw fail('the path must select a list (a repeating element with at least one item)');
  }
  return list;
}

/** A value[x], or an anonymous complex value given as parts. */
function valueOf(value: ParametersParameter | undefined, n: number): unknown {
  if (!value) throw badRequest(`Operation ${n}: a value is required`);
  if (value.part) {
    return Object.fromEntries(value.part.map((p) => [p.name, valueOf(p, n)]));
  }
  const key = Object.keys(value).find((k) => k.startsWith('value'));
  if (!key) throw badRequest(`Operation ${n}: the value part has no value[x]`);
  return value[key as keyof ParametersParameter];
}
