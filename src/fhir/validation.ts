import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import type { FhirDefinitions, PropertyType } from './definitions.js';
import { FhirError } from './outcome.js';
import { checkRequiredBindings, isValueSetUrl } from './terminology.js';

export interface ValidationOptions {
  /** Validate against this profile in addition to those in meta.profile. */
  profile?: string;
  /** What an unknown meta.profile is: an error (reject) or a warning. */
  unknownProfile: 'error' | 'warning';
}

/**
 * Validates a resource against the R4 base definition (structure, cardinality, invariants,
 * required value-set bindings) and every profile it claims in meta.profile that the server knows.
 * Returns all issues; callers decide whether errors reject (writes) or are reported ($validate).
 */
export function validate(defs: FhirDefinitions, resource: Resource, options: ValidationOptions): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  if (!defs.isResourceType(resource.resourceType)) {
    return [{ severity: 'error', code: 'invalid', details: { text: `Unknown resource type "${resource.resourceType}"` }, expression: ['resourceType'] }];
  }
  issues.push(...structureIssues(resource, resource.resourceType));
  issues.push(...typedIssues(defs, resource as unknown as Record<string, unknown>, resource.resourceType, resource.resourceType));
  const checked = withBase64StandIns(resource) as Resource;
  issues.push(...withoutStricterThanR4(resource, medplumIssues(checked)));
  issues.push(...checkRequiredBindings(resource));

  const profiles = [...(resource.meta?.profile ?? []), ...(options.profile ? [options.profile] : [])];
  for (const url of new Set(profiles)) {
    const profile = defs.getProfile(url);
    if (!profile) {
      issues.push({
        severity: options.unknownProfile,
        code: 'not-supported',
        details: { text: `Profile ${url} is not known to this server; the resource was not checked against it` },
        expression: ['meta.profile'],
      });
      continue;
    }
    issues.push(...withoutStricterThanR4(resource, medplumIssues(checked, profile)));
    issues.push(...checkRequiredBindings(resource, profile));
  }
  // A profile's snapshot repeats the base definition, so a base violation is found once per profile too.
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.severity}|${i.expression?.join()}|${i.details?.text ?? i.diagnostics}`;
    return !seen.has(key) && seen.add(key) !== undefined;
  });
}

/** Resource.id is an `id` (datatypes.html); an element's id is any string. */
const RESOURCE_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * Structure rules Medplum's validator does not check: those of FHIR's JSON form (json.html) that
 * say an element is there with nothing in it (no empty object, ele-1; no empty array; no empty
 * string as a primitive value; it finds an empty object only as an array item), and the form of
 * the id of every resource in the tree (contained, in a Bundle or a Parameters), which it reads as
 * a plain string; the `_` array of a repeating primitive, which must line up with its values; and
 * an Attachment's size, which must be the byte count of its data.
 */
function structureIssues(value: unknown, path: string): OperationOutcomeIssue[] {
  const issue = (text: string, at = path, code: OperationOutcomeIssue['code'] = 'structure'): OperationOutcomeIssue => ({
    severity: 'error',
    code,
    details: { text },
    expression: [at],
  });
  if (value === '') {
    return [issue('A primitive value cannot be an empty string: leave the element out when it has no value')];
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      return [issue('An array cannot be empty: leave the element out when it has no values')];
    }
    return value.flatMap((item, i) => structureIssues(item, `${path}[${i}]`));
  }
  if (typeof value !== 'object' || value === null) {
    return [];
  }
  const entries = Object.entries(value);
  if (entries.length === 0) {
    return [issue('An element must have a value or children (ele-1): an empty object is not allowed')];
  }
  const found: OperationOutcomeIssue[] = [];
  const { resourceType, id, data, size } = value as { resourceType?: unknown; id?: unknown; data?: unknown; size?: unknown };
  if (typeof resourceType === 'string' && typeof id === 'string' && id !== '' && !RESOURCE_ID.test(id)) {
    found.push(issue(`Invalid resource id "${id}": 1 to 64 letters, digits, "-" and "."`, `${path}.id`));
  }
  // Of R4's types only Attachment has both data and size.
  if (typeof data === 'string' && typeof size === 'number' && resourceType === undefined) {
    const bytes = base64ByteLength(data);
    if (bytes !== undefined && bytes !== size) {
      found.push(issue(`The size (${size}) is not the byte count of the data (${bytes})`, `${path}.size`, 'value'));
    }
  }
  for (const [key, v] of entries) {
    const values = key.startsWith('_') ? (value as Record<string, unknown>)[key.slice(1)] : undefined;
    if (values !== undefined && (Array.isArray(v) || Array.isArray(values)) && !(Array.isArray(v) && Array.isArray(values) && v.length === values.length)) {
      // json.html: a repeating primitive's values and their ids and extensions line up one for one, null filling a gap.
      found.push(issue(`${key} must have one item for each of ${key.slice(1)}'s values (null where a value has no id or extensions)`, `${path}.${key}`));
    }
    // `_given` holds given's id and extensions: its findings are given's.
    found.push(...structureIssues(v, `${path}.${key.startsWith('_') ? key.slice(1) : key}`));
  }
  return found;
}

/** integer, unsignedInt and positiveInt are 32-bit (datatypes.html); the validator library checks only their signs. */
const INTEGER_TYPES = new Set(['integer', 'unsignedInt', 'positiveInt']);
const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;
/** A dateTime with a time and no zone after it (R4: "If hours and minutes are specified, a time zone SHALL be populated"). */
const TIME_WITHOUT_ZONE = /T[^Z+-]*$/;
const RELATIVE_REFERENCE = /^([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/**
 * Rules on typed values Medplum's validator does not check, found by walking the resource with its
 * type definitions (contained and bundled resources with theirs): the 32-bit range of the integer types,
 * a time zone on every dateTime that has a time, a Coding's system that is an R4 value set rather
 * than a code system (terminologies.html: the system identifies the code system that defines the
 * code), a Bundle entry's fullUrl, and the type a relative reference points to, which must be one
 * the element allows (Observation.subject: Patient, Group, Device or Location).
 */
function typedIssues(defs: FhirDefinitions, object: Record<string, unknown>, typeName: string, path: string): OperationOutcomeIssue[] {
  const found: OperationOutcomeIssue[] = invariantIssues(defs, object, typeName, path);
  if (typeName === 'BundleEntry' && typeof object.fullUrl === 'string') {
    found.push(...fullUrlIssues(defs, object.fullUrl, object.resource as Record<string, unknown> | undefined, `${path}.fullUrl`));
  }
  const issue = (text: string, at: string): void => {
    found.push({ severity: 'error', code: 'value', details: { text }, expression: [at] });
  };
  forEachTypedValue(defs, object, typeName, (key, property, item, index) => {
    const { code, targetProfile } = property.type;
    const at = index === undefined ? `${path}.${key}` : `${path}.${key}[${index}]`;
    if (typeof item === 'number' && INTEGER_TYPES.has(code) && (item < INT32_MIN || item > INT32_MAX)) {
      issue(`${item} is out of the 32-bit range of ${code} (up to ${INT32_MAX})`, at);
    } else if (typeof item === 'string' && code === 'dateTime' && TIME_WITHOUT_ZONE.test(item)) {
      issue(`"${item}" has a time but no time zone, which a dateTime with a time must have`, at);
    } else if (isElement(item)) {
      if (code === 'Coding' && typeof item.system === 'string' && isValueSetUrl(item.system)) {
        issue(`${item.system} is a value set, not a code system: a Coding's system names the code system that defines its code`, `${at}.system`);
      }
      if (code === 'Reference' && typeof item.reference === 'string') {
        const target = RELATIVE_REFERENCE.exec(item.reference)?.[1];
        const allowed = (targetProfile ?? []).map((url) => url.slice(url.lastIndexOf('/') + 1));
        if (target && defs.isResourceType(target) && allowed.length > 0 && !allowed.includes('Resource') && !allowed.includes(target)) {
          issue(`A reference to type ${target}, where ${property.path} allows ${allowed.join(', ')}`, `${at}.reference`);
        }
      }
      found.push(...typedIssues(defs, item, typeOf(code, item), at));
    }
  });
  return found;
}

/**
 * Calls `visit` for each value of the object's properties with the property's definition: each item
 * of an array with its index. A primitive's `_` companion and properties the type lacks (which the
 * validator library reports as unknown) are passed over.
 */
function forEachTypedValue(
  defs: FhirDefinitions,
  object: Record<string, unknown>,
  typeName: string,
  visit: (key: string, property: PropertyType, item: unknown, index: number | undefined) => void,
): void {
  for (const [key, value] of Object.entries(object)) {
    const property = key === 'resourceType' || key.startsWith('_') ? undefined : defs.propertyType(typeName, key);
    if (!property) {
      continue;
    }
    if (Array.isArray(value)) {
      value.forEach((item: unknown, i) => visit(key, property, item, i));
    } else {
      visit(key, property, value, undefined);
    }
  }
}

function isElement(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The type of a value of an element of type `code`: a resource's own type where the element holds any Resource. */
function typeOf(code: string, value: Record<string, unknown>): string {
  return code === 'Resource' && typeof value.resourceType === 'string' ? value.resourceType : code;
}

/**
 * R4 invariants the validator library leaves out by name (dom-3, org-1, sdf-19), and que-12, which
 * R4 publishes as `enableWhen.count() > 2` while its text says "more than one": the text is the
 * rule (R4B corrects the expression to `> 1`), and the library catches three or more. Checked on
 * every object of their type in the tree, contained and bundled resources included.
 */
function invariantIssues(defs: FhirDefinitions, object: Record<string, unknown>, typeName: string, path: string): OperationOutcomeIssue[] {
  const found: OperationOutcomeIssue[] = [];
  const unmet = (key: string, human: string, at = path): void => {
    found.push({ severity: 'error', code: 'invariant', details: { text: `Constraint ${key} not met: ${human}` }, expression: [at] });
  };
  if (Array.isArray(object.contained) && typeof object.resourceType === 'string') {
    // dom-3: '#id' among the references, canonicals, uris and urls anywhere in the resource (its
    // contained resources too), or the contained resource refers to its container ('#').
    const referenced = localReferences(defs, object, typeName, new Set());
    object.contained.forEach((item: unknown, i) => {
      const contained = item as Record<string, unknown>;
      if (typeof contained?.id !== 'string' || typeof contained.resourceType !== 'string' || referenced.has(`#${contained.id}`)) {
        return; // without an id, FHIRPath's '#' + id is empty and the invariant passes
      }
      if (!localReferences(defs, contained, contained.resourceType, new Set()).has('#')) {
        unmet('dom-3', `contained ${contained.resourceType} "${contained.id}" is not referred to from elsewhere in the resource, nor does it refer to the containing resource`, `${path}.contained[${i}]`);
      }
    });
  }
  if (typeName === 'Organization' && object.identifier === undefined && object.name === undefined) {
    unmet('org-1', 'The organization SHALL at least have a name or an identifier');
  }
  if (typeName === 'StructureDefinition' && typeof object.url === 'string' && object.url.startsWith('http://hl7.org/fhir/StructureDefinition')) {
    const codes = (part: unknown): unknown[] =>
      ((part as { element?: { type?: { code?: unknown }[] }[] } | undefined)?.element ?? []).flatMap((e) => (e.type ?? []).map((t) => t.code));
    const system = /^http:\/\/hl7\.org\/fhirpath\/System\.[A-Z][A-Za-z]+$/;
    const fhirTypes =
      codes(object.differential).every((c) => typeof c === 'string' && (/^[a-zA-Z0-9]+$/.test(c) || system.test(c))) &&
      codes(object.snapshot).every((c) => typeof c === 'string' && (/^[a-zA-Z0-9.]+$/.test(c) || system.test(c)));
    if (!fhirTypes) {
      unmet('sdf-19', 'FHIR Specification models only use FHIR defined types');
    }
  }
  if (typeName === 'QuestionnaireItem' && Array.isArray(object.enableWhen) && object.enableWhen.length === 2 && object.enableBehavior === undefined) {
    unmet('que-12', 'If there are more than one enableWhen, enableBehavior must be specified');
  }
  return found;
}

const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** An absolute RESTful server URL of a resource (references.html#regex), version-independent. */
const RESTFUL_URL = /^https?:\/\/(?:[A-Za-z0-9\-\\.:%$]*\/)+([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;

/**
 * Bundle.entry.fullUrl is "the absolute URL for the resource" (an http(s) URL, or a urn:uuid or
 * urn:oid), and one that looks like a RESTful server URL "SHALL end with the Resource.id".
 */
function fullUrlIssues(defs: FhirDefinitions, fullUrl: string, resource: Record<string, unknown> | undefined, at: string): OperationOutcomeIssue[] {
  const issue = (text: string): OperationOutcomeIssue[] => [{ severity: 'error', code: 'value', details: { text }, expression: [at] }];
  if (!ABSOLUTE_URI.test(fullUrl)) {
    return issue(`fullUrl "${fullUrl}" is not absolute: an entry's fullUrl is an absolute URL, or a urn:uuid or urn:oid`);
  }
  const [, type, id] = RESTFUL_URL.exec(fullUrl) ?? [];
  const { resourceType, id: resourceId } = resource ?? {};
  if (type && defs.isResourceType(type) && typeof resourceType === 'string' && typeof resourceId === 'string' && (type !== resourceType || id !== resourceId)) {
    return issue(`fullUrl ${fullUrl} disagrees with its resource, ${resourceType}/${resourceId}: a RESTful fullUrl ends with the resource's type and id`);
  }
  return [];
}

const URI_TYPES = new Set(['canonical', 'uri', 'url']);

/** Adds every local reference ('#…') in the value: Reference.reference, and canonical, uri and url values. */
function localReferences(defs: FhirDefinitions, object: Record<string, unknown>, typeName: string, into: Set<string>): Set<string> {
  forEachTypedValue(defs, object, typeName, (_key, { type: { code } }, item) => {
    if (typeof item === 'string' && URI_TYPES.has(code) && item.startsWith('#')) {
      into.add(item);
    } else if (isElement(item)) {
      if (code === 'Reference' && typeof item.reference === 'string' && item.reference.startsWith('#')) {
        into.add(item.reference);
      }
      localReferences(defs, item, typeOf(code, item), into);
    }
  });
  return into;
}

/**
 * Medplum's validator differs from R4 on base64Binary content (documents, images): it applies the
 * 1 MB string cap to it, which FHIR does not, and refuses whitespace between the 4-character
 * groups, which R4's pattern allows (the official examples wrap their data at 76 characters). The
 * structure check therefore sees a short stand-in for any `data` value (Binary.data,
 * Attachment.data, Signature.data) that is valid base64 once whitespace is removed and is over 1 MB
 * or wrapped; everything else is checked as sent. Returns the resource itself when no value is
 * replaced, so ordinary resources cost no copy.
 */
const STRING_LIMIT = 1024 * 1024;
const BASE64_CHARACTERS = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The value without whitespace when it is base64 (R4's pattern allows whitespace between groups):
 * whole 4-character groups, padding only at the end. A pattern with groups overflows the stack on
 * megabytes, hence the length test and a flat character class.
 */
function compactBase64(value: string): string | undefined {
  const compact = /\s/.test(value) ? value.replace(/\s+/g, '') : value;
  return compact.length % 4 === 0 && BASE64_CHARACTERS.test(compact) ? compact : undefined;
}

/** The bytes a base64 value encodes, read from its length; undefined when it is not base64 (reported as such elsewhere). */
function base64ByteLength(value: string): number | undefined {
  const compact = compactBase64(value);
  return compact === undefined ? undefined : (compact.length / 4) * 3 - (compact.endsWith('==') ? 2 : compact.endsWith('=') ? 1 : 0);
}

function needsBase64StandIn(value: string): boolean {
  return (/\s/.test(value) || value.length > STRING_LIMIT) && compactBase64(value) !== undefined;
}

function withBase64StandIns(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(withBase64StandIns);
    return items.some((item, i) => item !== value[i]) ? items : value;
  }
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, v] of Object.entries(value)) {
    const replaced = key === 'data' && typeof v === 'string' && needsBase64StandIn(v) ? 'AAAA' : withBase64StandIns(v);
    if (replaced !== v) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[key] = replaced;
    }
  }
  return copy ?? value;
}

function medplumIssues(resource: Resource, profile?: StructureDefinition): OperationOutcomeIssue[] {
  try {
    const result = validateResource(resource, profile ? { profile } : undefined);
    return (result ?? []).filter((i) => i.severity === 'error' || i.severity === 'warning');
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      return err.outcome.issue ?? [];
    }
    throw err;
  }
}

/**
 * Reports of Medplum's validator that R4 does not make, dropped (and its empty-object report, which
 * structureIssues makes for every empty object):
 * - ras-2 ("probability is decimal implies (probability as decimal) <= 100") is evaluated as failed
 *   when a prediction has no probability at all, where FHIRPath gives an empty (passing) result; a
 *   category-only prediction (qualitativeRisk without a number) is valid R4;
 * - the 1 MB cap is on string values; a narrative's div is xhtml, which has none (the official
 *   DICOM code system's narrative is larger).
 */
function withoutStricterThanR4(resource: Resource, issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  return issues.filter((issue) => {
    const text = issue.details?.text ?? '';
    const path = issue.expression?.[0] ?? '';
    if (text === 'Invalid empty non-primitive value') {
      return false;
    }
    if (text.startsWith('String cannot be larger than 1 MB') && path.endsWith('.text.div')) {
      return false;
    }
    if (resource.resourceType === 'RiskAssessment' && text.startsWith('Constraint ras-2 ')) {
      const index = /prediction\[(\d+)\]/.exec(path)?.[1];
      const prediction = index === undefined ? undefined : resource.prediction?.[Number(index)];
      return index === undefined || prediction?.probabilityDecimal !== undefined || prediction?.probabilityRange !== undefined;
    }
    return true;
  });
}

/** For writes: throws 422 with every error found. */
export function assertValid(defs: FhirDefinitions, resource: Resource, options: ValidationOptions): void {
  const issues = validate(defs, resource, options);
  if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
    throw new FhirError(422, issues);
  }
}
