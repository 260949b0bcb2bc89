/**
 * Declarative model inputs: each names where its value comes from in a patient's record (an
 * Observation by code in a given UCUM unit, age, sex, an active Condition, an active medication, a
 * questionnaire answer, or a FHIRPath expression on the Patient). Published instruments and ML
 * models both describe their inputs this way, so adding a model needs no code that reads FHIR.
 */
import type { CodeableConcept, Coding, Observation, Patient, QuestionnaireResponseItem, Quantity } from '@medplum/fhirtypes';
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';
import { analyteForLoinc, conversionContext } from '../documents/lab-analytes.js';
import { convertUnit } from '../documents/units.js';
import { isResulted, observationDate, observationsWithCodes, type PatientRecord } from './patient-record.js';

export interface ObservationSource {
  /** "system|code" of the Observation (or of one of its components). */
  codes: string[];
  /** The UCUM unit the input is in; values in other units are converted or excluded. */
  unit?: string;
  /** For coded values: "system|code" → the number it stands for (e.g. current smoker → 1). */
  valueCodes?: Record<string, number>;
}

export type InputSource =
  | { observation: ObservationSource }
  | { age: 'years' }
  | { sex: 'male' | 'female' }
  /** 1 when an active Condition has one of these "system|code"s ("system|E11*" matches a code prefix), else 0. */
  | { condition: { codes: string[] } }
  /** 1 when an active medication names one of these ingredients (or has one of these codes), else 0. */
  | { medication: { ingredients: string[]; codes?: string[] } }
  /** The latest answer to any of these questionnaire items (booleans as 1/0, codings as their code). */
  | { answer: { linkIds: string[] } }
  /** Evaluated on the Patient resource; a number or boolean. */
  | { fhirpath: string };

export interface InputSpec {
  name: string;
  display?: string;
  unit?: string;
  /** Values outside [low, high] (in `unit`) are physiologically implausible: excluded and reported. */
  plausible?: [number, number];
  /** Tried in order; the first that yields a value is used. ML model features carry one `source`. */
  sources?: InputSource[];
  source?: InputSource;
}

export interface ExcludedValue {
  value: number | string;
  unit?: string;
  reason: string;
  reference?: string;
}

export interface ResolvedInput {
  name: string;
  /** Booleans are 1/0; coded answers are their code. Undefined when missing. */
  value?: number | string;
  unit?: string;
  date?: string;
  /** The resources the value came from ("Observation/123"). */
  basis: string[];
  /** Values found but not used (implausible, unconvertible unit, older than the look-back). */
  excluded: ExcludedValue[];
  /** The lab's own reference range for the value used, in `unit`. */
  referenceRange?: { low?: number; high?: number };
  /** Every usable value within the look-back, newest first (observation inputs). */
  series: { value: number; date?: string; reference?: string }[];
}

export interface ResolveOptions {
  asOf: Date;
  lookbackDays: number;
}

export type Inputs = Map<string, ResolvedInput>;

const ACTIVE_MEDICATION = new Set(['active', 'intended', 'on-hold']);
const compiled = new Map<string, (resource: unknown) => unknown[]>();

/** Resolves every spec against one record. */
export function resolveInputs(specs: Iterable<InputSpec>, record: PatientRecord, options: ResolveOptions): Inputs {
  const inputs: Inputs = new Map();
  for (const spec of specs) {
    if (!inputs.has(spec.name)) inputs.set(spec.name, resolveInput(spec, record, options));
  }
  return inputs;
}

export function resolveInput(spec: InputSpec, record: PatientRecord, options: ResolveOptions): ResolvedInput {
  const result: ResolvedInput = { name: spec.name, unit: spec.unit, basis: [], excluded: [], series: [] };
  for (const source of spec.sources ?? (spec.source ? [spec.source] : [])) {
    if ('observation' in source) {
      fromObservations(spec, source.observation, record, options, result);
    } else if ('age' in source) {
      const age = ageInYears(record.patient, options.asOf);
      if (age !== undefined) setValue(result, age, `Patient/${record.patient.id ?? ''}`);
    } else if ('sex' in source) {
      const gender = record.patient.gender;
      if (gender === 'male' || gender === 'female') setValue(result, gender === source.sex ? 1 : 0, `Patient/${record.patient.id ?? ''}`);
    } else if ('condition' in source) {
      const matches = record.conditions.filter((c) => isActiveCondition(c.clinicalStatus) && matchesAny(c.code, source.condition.codes));
      setValue(result, matches.length > 0 ? 1 : 0, ...matches.map((c) => `Condition/${c.id ?? ''}`));
    } else if ('medication' in source) {
      const { ingredients, codes = [] } = source.medication;
      const pattern = ingredientPattern(ingredients);
      const matches = record.medications.filter(
        (m) => ACTIVE_MEDICATION.has(m.status ?? '') && (matchesAny(m.medicationCodeableConcept, codes) || pattern.test(conceptText(m.medicationCodeableConcept))),
      );
      setValue(result, matches.length > 0 ? 1 : 0, ...matches.map((m) => `${m.resourceType}/${m.id ?? ''}`));
    } else if ('answer' in source) {
      fromAnswers(source.answer.linkIds, record, result);
    } else {
      let fn = compiled.get(source.fhirpath);
      if (!fn) {
        fn = fhirpath.compile(source.fhirpath, r4model) as (resource: unknown) => unknown[];
        compiled.set(source.fhirpath, fn);
      }
      const value = fn(record.patient)[0];
      if (typeof value === 'number' || typeof value === 'boolean') setValue(result, Number(value), `Patient/${record.patient.id ?? ''}`);
    }
    if (result.value !== undefined) break;
  }
  return result;
}

function setValue(result: ResolvedInput, value: number | string, ...basis: string[]): void {
  result.value = value;
  result.basis.push(...basis.filter((b) => !b.endsWith('/')));
}

function fromObservations(spec: InputSpec, source: ObservationSource, record: PatientRecord, options: ResolveOptions, result: ResolvedInput): void {
  const since = options.asOf.getTime() - options.lookbackDays * 86_400_000;
  for (const observation of observationsWithCodes(record, source.codes)) {
    if (!isResulted(observation)) continue;
    const found = observedValue(observation, source);
    if (!found) continue;
    const reference = `Observation/${observation.id ?? ''}`;
    const date = observationDate(observation);
    if (date && Date.parse(date) < since) {
      if (result.series.length === 0 && result.excluded.every((e) => !e.reason.startsWith('older'))) {
        result.excluded.push({ value: found.value, unit: found.unit, reason: `older than the ${options.lookbackDays}-day look-back (${date.slice(0, 10)})`, reference });
      }
      continue;
    }
    let value = found.value;
    if (typeof value === 'number' && source.unit && found.unit !== source.unit) {
      const converted = found.unit ? convertUnit(value, found.unit, source.unit, contextFor(found.code)) : undefined;
      if (converted === undefined) {
        result.excluded.push({ value, unit: found.unit, reason: `unit "${found.unit ?? 'none'}" cannot be converted to ${source.unit}`, reference });
        continue;
      }
      value = converted;
    }
    if (typeof value === 'number' && spec.plausible && (value < spec.plausible[0] || value > spec.plausible[1])) {
      result.excluded.push({
        value: found.value,
        unit: found.unit,
        reason: `implausible: outside ${spec.plausible[0]}–${spec.plausible[1]} ${spec.unit ?? ''}`.trim(),
        reference,
      });
      continue;
    }
    if (typeof value !== 'number') continue;
    result.series.push({ value, date, reference });
    if (result.value === undefined) {
      result.value = value;
      result.date = date;
      result.basis.push(reference);
      const range = observation.referenceRange?.[0];
      if (range && source.unit) {
        const convert = (q?: Quantity): number | undefined =>
          q?.value === undefined ? undefined : convertUnit(q.value, q.code ?? q.unit ?? found.unit ?? source.unit!, source.unit!, contextFor(found.code));
        result.referenceRange = { low: convert(range.low), high: convert(range.high) };
      }
    }
  }
  // Stale values matter only when nothing recent was found.
  if (result.value !== undefined) result.excluded = result.excluded.filter((e) => !e.reason.startsWith('older'));
}

interface ObservedValue {
  value: number | string;
  unit?: string;
  /** The LOINC (or other) code that matched, for unit conversion. */
  code: string;
}

function observedValue(observation: Observation, source: ObservationSource): ObservedValue | undefined {
  const match = (concept: CodeableConcept | undefined): Coding | undefined =>
    concept?.coding?.find((c) => source.codes.includes(`${c.system}|${c.code}`));
  const own = match(observation.code);
  if (own) return valueOf(observation, own.code!, source);
  for (const component of observation.component ?? []) {
    const coding = match(component.code);
    if (coding) return valueOf(component, coding.code!, source);
  }
  return undefined;
}

function valueOf(
  holder: { valueQuantity?: Quantity; valueCodeableConcept?: CodeableConcept; valueBoolean?: boolean; valueInteger?: number },
  code: string,
  source: ObservationSource,
): ObservedValue | undefined {
  if (holder.valueQuantity?.value !== undefined) {
    return { value: holder.valueQuantity.value, unit: holder.valueQuantity.code ?? holder.valueQuantity.unit, code };
  }
  if (holder.valueInteger !== undefined) return { value: holder.valueInteger, code };
  if (holder.valueBoolean !== undefined) return { value: holder.valueBoolean ? 1 : 0, code };
  if (holder.valueCodeableConcept && source.valueCodes) {
    for (const coding of holder.valueCodeableConcept.coding ?? []) {
      const mapped = source.valueCodes[`${coding.system}|${coding.code}`];
      if (mapped !== undefined) return { value: mapped, code };
    }
  }
  return undefined;
}

function fromAnswers(linkIds: readonly string[], record: PatientRecord, result: ResolvedInput): void {
  for (const response of record.answers) {
    if (response.status === 'entered-in-error' || response.status === 'stopped') continue;
    const item = findItem(response.item ?? [], linkIds);
    const answer = item?.answer?.[0];
    if (!answer) continue;
    const value =
      answer.valueBoolean !== undefined
        ? Number(answer.valueBoolean)
        : (answer.valueDecimal ?? answer.valueInteger ?? answer.valueQuantity?.value ?? answer.valueCoding?.code ?? answer.valueString);
    if (value === undefined) continue;
    result.value = value;
    result.date = response.authored;
    result.basis.push(`QuestionnaireResponse/${response.id ?? ''}`);
    return;
  }
}

function findItem(items: readonly QuestionnaireResponseItem[], linkIds: readonly string[]): QuestionnaireResponseItem | undefined {
  for (const item of items) {
    if (linkIds.includes(item.linkId)) return item;
    const nested = findItem([...(item.item ?? []), ...(item.answer ?? []).flatMap((a) => a.item ?? [])], linkIds);
    if (nested) return nested;
  }
  return undefined;
}

function contextFor(code: string): ReturnType<typeof conversionContext> {
  const analyte = analyteForLoinc(code);
  return analyte ? conversionContext(analyte) : {};
}

/** Completed years of age on a date; undefined without a full birth date. */
export function ageInYears(patient: Patient, asOf: Date): number | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(patient.birthDate ?? '');
  if (!match) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  let age = asOf.getUTCFullYear() - year;
  if (asOf.getUTCMonth() + 1 < month || (asOf.getUTCMonth() + 1 === month && asOf.getUTCDate() < day)) age--;
  return age;
}

function isActiveCondition(status: CodeableConcept | undefined): boolean {
  const code = status?.coding?.[0]?.code;
  return code === undefined || code === 'active' || code === 'recurrence' || code === 'relapse';
}

function matchesAny(concept: CodeableConcept | undefined, codes: readonly string[]): boolean {
  if (!concept || codes.length === 0) return false;
  return (concept.coding ?? []).some((c) => {
    const key = `${c.system}|${c.code}`;
    return codes.some((wanted) => (wanted.endsWith('*') ? key.startsWith(wanted.slice(0, -1)) : key === wanted));
  });
}

function conceptText(concept: CodeableConcept | undefined): string {
  return [concept?.text, ...(concept?.coding ?? []).map((c) => c.display)].filter(Boolean).join(' ');
}

const ingredientPatterns = new WeakMap<readonly string[], RegExp>();

/** One whole-word, case-insensitive pattern per ingredient list (specs are long-lived, so it is built once). */
function ingredientPattern(ingredients: readonly string[]): RegExp {
  let pattern = ingredientPatterns.get(ingredients);
  if (!pattern) {
    pattern = new RegExp(`\\b(${ingredients.map(escapeRegExp).join('|')})\\b`, 'i');
    ingredientPatterns.set(ingredients, pattern);
  }
  return pattern;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every observation code the specs read, for loading only those. */
export function observationCodes(specs: Iterable<InputSpec>): string[] {
  const codes = new Set<string>();
  for (const spec of specs) {
    for (const source of spec.sources ?? (spec.source ? [spec.source] : [])) {
      if ('observation' in source) source.observation.codes.forEach((c) => codes.add(c));
    }
  }
  return [...codes].sort();
}
