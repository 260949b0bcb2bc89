import type { Resource } from '@medplum/fhirtypes';
import { DOMParser, type Element as XmlElement, XMLSerializer } from '@xmldom/xmldom';
import { defs } from './harness.js';

/**
 * FHIR XML → FHIR JSON, for test material published only as XML (the FHIR test cases). The server
 * speaks JSON alone; this follows the R4 rules of xml.html and json.html from the type definitions
 * the server loads: repeating elements become arrays, a primitive's value attribute becomes a JSON
 * string, number or boolean and its id or extensions go to `_name`, choice elements take their type
 * from their name, and a narrative div stays XHTML text.
 */

const FHIR_NS = 'http://hl7.org/fhir';
type Json = Record<string, unknown>;

const NUMBERS = new Set(['integer', 'decimal', 'unsignedInt', 'positiveInt']);

export function parseXml(text: string): XmlElement {
  const doc = new DOMParser({
    onError: (level, message) => {
      if (level !== 'warning') throw new Error(`XML: ${message}`);
    },
  }).parseFromString(text, 'text/xml');
  if (!doc.documentElement) throw new Error('XML: no root element');
  return doc.documentElement;
}

export function childElements(element: XmlElement): XmlElement[] {
  const found: XmlElement[] = [];
  for (let node = element.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === node.ELEMENT_NODE) found.push(node as XmlElement);
  }
  return found;
}

/** A resource element (<Patient xmlns="http://hl7.org/fhir">…) as the resource in JSON. */
export function resourceFromXml(element: XmlElement): Resource {
  if (element.namespaceURI !== FHIR_NS) throw new Error(`<${element.tagName}> is not in the FHIR namespace`);
  const resourceType = element.localName ?? element.tagName;
  return { resourceType, ...complexFromXml(element, resourceType) } as Resource;
}

function complexFromXml(element: XmlElement, typeName: string): Json {
  const json: Json = {};
  // The two elements XML carries as attributes (xml.html): every element's id, and an extension's url.
  for (const attribute of typeName === 'Extension' ? ['id', 'url'] : ['id']) {
    const value = element.getAttribute(attribute);
    if (value) json[attribute] = value;
  }
  for (const child of childElements(element)) {
    const name = child.localName ?? child.tagName;
    const property = defs().propertyType(typeName, name);
    if (!property) throw new Error(`XML: no element ${typeName}.${name} in R4`);
    const { code } = property.type;
    if (code === 'xhtml') {
      json[name] = new XMLSerializer().serializeToString(child);
    } else if (code === 'Resource') {
      const [contained] = childElements(child);
      add(json, name, property.isArray, resourceFromXml(contained));
    } else if (/^[a-z]/.test(code)) {
      addPrimitive(json, name, property.isArray, child, code);
    } else {
      add(json, name, property.isArray, complexFromXml(child, code));
    }
  }
  return json;
}

function add(json: Json, key: string, isArray: boolean, value: unknown): void {
  if (isArray) ((json[key] ??= []) as unknown[]).push(value);
  else json[key] = value;
}

/** value → `key`, id and extensions → `_key`; in a repeating element both are arrays kept in step, with nulls for gaps. */
function addPrimitive(json: Json, key: string, isArray: boolean, element: XmlElement, type: string): void {
  const raw = element.getAttribute('value');
  const value = raw === null ? null : type === 'boolean' ? raw === 'true' : NUMBERS.has(type) ? Number(raw) : raw;
  const extra = complexFromXml(element, 'Element');
  const hasExtra = Object.keys(extra).length > 0;
  if (!isArray) {
    if (value !== null) json[key] = value;
    if (hasExtra) json[`_${key}`] = extra;
    return;
  }
  const values = (json[key] as unknown[] | undefined) ?? [];
  const extras = (json[`_${key}`] as unknown[] | undefined) ?? [];
  const at = Math.max(values.length, extras.length);
  values[at] = value;
  extras[at] = hasExtra ? extra : null;
  const inStep = (list: unknown[]): unknown[] => Array.from({ length: at + 1 }, (_, i) => list[i] ?? null);
  if (values.some((v) => v !== null)) json[key] = inStep(values);
  if (extras.some((e) => e !== null)) json[`_${key}`] = inStep(extras);
}
