/**
 * Question/answer pairs generated from a patient's own structured data (a Synthea bundle as loaded):
 * for each test, vaccine, kind of visit, condition and procedure, the question a patient would ask
 * about its latest occurrence, the source that answers it, and the facts (value, date) the answer
 * must state. The truth comes from the bundle, never from the server under test.
 */
import type { Bundle, CodeableConcept, Condition, Encounter, Immunization, Observation, Procedure, Resource } from '@medplum/fhirtypes';
import { formatDate, withoutSemanticTag } from '../src/rag/render.js';

export interface EvalQuestion {
  patient: string;
  kind: 'result' | 'immunization' | 'visit' | 'condition' | 'procedure';
  question: string;
  /** The sources ("Observation/123") whose chunk answers it (several when they share the latest date). */
  sources: string[];
  /** Text the answer must contain. */
  facts: string[];
}

interface Occurrence {
  name: string;
  date: string;
  source: string;
  facts: string[];
}

/**
 * `references` maps each entry's fullUrl to where the server stored it ("Observation/123"), from
 * the transaction-response.
 */
export function questionsFor(bundle: Bundle, patient: string, references: ReadonlyMap<string, string>): EvalQuestion[] {
  const byKind = new Map<EvalQuestion['kind'], Occurrence[]>();
  const add = (kind: EvalQuestion['kind'], occurrence: Occurrence | undefined): void => {
    if (occurrence) byKind.set(kind, [...(byKind.get(kind) ?? []), occurrence]);
  };
  for (const entry of bundle.entry ?? []) {
    const resource = entry.resource as Resource | undefined;
    const source = entry.fullUrl ? references.get(entry.fullUrl) : undefined;
    if (!resource || !source) continue;
    switch (resource.resourceType) {
      case 'Observation':
        add('result', result(resource, source));
        break;
      case 'Immunization':
        add('immunization', dated(name((resource as Immunization).vaccineCode), (resource as Immunization).occurrenceDateTime, source));
        break;
      case 'Encounter':
        add('visit', dated(name((resource as Encounter).type?.[0]), (resource as Encounter).period?.start, source));
        break;
      case 'Condition':
        add('condition', dated(name((resource as Condition).code), (resource as Condition).onsetDateTime, source));
        break;
      case 'Procedure':
        add('procedure', dated(name((resource as Procedure).code), (resource as Procedure).performedDateTime ?? (resource as Procedure).performedPeriod?.start, source));
        break;
    }
  }
  const questions: EvalQuestion[] = [];
  for (const [kind, occurrences] of byKind) {
    const names = [...new Set(occurrences.map((o) => o.name))];
    for (const n of names) {
      const same = occurrences.filter((o) => o.name === n);
      // Conditions are asked about their first noting; everything else about the latest.
      const pick = kind === 'condition' ? same.reduce((a, b) => (a.date <= b.date ? a : b)) : same.reduce((a, b) => (a.date >= b.date ? a : b));
      const tied = same.filter((o) => o.date === pick.date && o.facts.join() === pick.facts.join());
      questions.push({ patient, kind, question: questionText(kind, n), sources: tied.map((o) => o.source), facts: pick.facts });
    }
  }
  return questions;
}

function questionText(kind: EvalQuestion['kind'], name: string): string {
  switch (kind) {
    case 'result':
      return `What was my last ${name}?`;
    case 'immunization':
      return `When did I last have the ${name} vaccine?`;
    case 'visit':
      return `When was my last ${name}?`;
    case 'condition':
      return `When was ${name} first noted?`;
    case 'procedure':
      return `When did I have ${name}?`;
  }
}

/**
 * What patients call common tests (abbreviations and lay words), so that the evaluation also asks
 * the way people ask and not only in the record's own words.
 */
const LAY_NAMES: Record<string, string> = {
  '4548-4': 'HbA1c',
  '8867-4': 'pulse',
  '85354-9': 'BP',
  '55284-4': 'blood pressure',
  '29463-7': 'weight',
  '8302-2': 'height',
  '39156-5': 'BMI',
  '8310-5': 'temperature',
  '9279-1': 'breathing rate',
  '2708-6': 'oxygen saturation',
  '59408-5': 'oxygen saturation',
  '2339-0': 'blood sugar',
  '2345-7': 'blood sugar',
  '2093-3': 'cholesterol',
  '718-7': 'haemoglobin',
  '2160-0': 'creatinine',
  '94500-6': 'covid test',
  '94531-1': 'covid test',
};

function result(o: Observation, source: string): Occurrence | undefined {
  const date = o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.issued;
  const value = valueOf(o) ?? (o.component?.[0] ? valueOf(o.component[0]) : undefined);
  const loinc = o.code?.coding?.find((c) => c.system === 'http://loinc.org' && LAY_NAMES[c.code ?? ''])?.code;
  const n = loinc ? LAY_NAMES[loinc] : name(o.code);
  if (!date || value === undefined || !n) return undefined;
  return { name: n, date, source, facts: [value, formatDate(date)] };
}

function dated(n: string | undefined, date: string | undefined, source: string): Occurrence | undefined {
  return n && date ? { name: n, date, source, facts: [formatDate(date)] } : undefined;
}

function valueOf(o: { valueQuantity?: { value?: number }; valueCodeableConcept?: CodeableConcept; valueString?: string }): string | undefined {
  if (o.valueQuantity?.value !== undefined) return String(o.valueQuantity.value);
  if (o.valueCodeableConcept) return o.valueCodeableConcept.text ?? o.valueCodeableConcept.coding?.[0]?.display;
  return o.valueString;
}

/** A display as a patient would say it: without SNOMED's semantic tags and LOINC's bracketed axes. */
function name(concept: CodeableConcept | undefined): string | undefined {
  const text = concept?.text ?? concept?.coding?.[0]?.display;
  return (text === undefined ? undefined : withoutSemanticTag(text))
    ?.replace(/\[[^\]]*\]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}
