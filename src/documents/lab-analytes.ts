/**
 * The maintained analyte table (lab-analytes.json): LOINC codes, canonical UCUM units, molar masses,
 * plausibility limits and the many ways reports spell each analyte's name.
 *
 * Names are often shared (an unqualified "Neutrophils" is a count or a percentage, "Glucose" is a
 * mass or a molar concentration); lookup returns every candidate and `codeForUnit` settles it by unit.
 */
import table from './lab-analytes.json' with { type: 'json' };
import { canConvert, convertUnit, unitDimension, type ConversionContext } from './units.js';
import { editDistance } from '../text/edit-distance.js';

/** A LOINC code that applies when the value is printed in a unit of a particular dimension. */
export interface AnalyteCode {
  /** Example units; any unit of the same dimension selects this code. */
  units: string[];
  loinc: string;
  loincAlt?: string[];
}

export interface Analyte {
  id: string;
  /** LOINC long common name of `loinc`. */
  display: string;
  /** The code for values in the canonical unit's dimension. */
  loinc: string;
  loincAlt?: string[];
  /** Canonical UCUM unit; plausibility limits are in it and normalised values are converted to it. */
  unit: string;
  molarMass?: number;
  denominatorMolarMass?: number;
  hba1c?: boolean;
  /** Values outside [low, high] in the canonical unit are physiologically impossible, i.e. misread. */
  plausible: [number, number];
  /** Codes for other unit dimensions (mg/dL vs mmol/L) where LOINC distinguishes them. */
  byUnit?: AnalyteCode[];
  synonyms: string[];
}

function load(raw: unknown): Analyte[] {
  if (!Array.isArray(raw)) throw new Error('lab-analytes.json must hold an array');
  return raw.map((entry: Partial<Analyte>, index) => {
    const valid =
      typeof entry.id === 'string' &&
      typeof entry.loinc === 'string' &&
      typeof entry.unit === 'string' &&
      Array.isArray(entry.synonyms) &&
      Array.isArray(entry.plausible) &&
      entry.plausible.length === 2 &&
      unitDimension(entry.unit) !== undefined &&
      (entry.byUnit ?? []).every((code) => code.units.every((unit) => unitDimension(unit) !== undefined));
    if (!valid) throw new Error(`lab-analytes.json entry ${index} (${String(entry.id)}) is malformed or uses an unknown unit`);
    return entry as Analyte;
  });
}

const ANALYTES: readonly Analyte[] = load(table);

export function allAnalytes(): readonly Analyte[] {
  return ANALYTES;
}

/** Words that qualify a specimen or timing but do not change which analyte is meant. */
const QUALIFIERS = new Set(['serum', 'plasma', 'blood', 'whole', 'venous', 's', 'p', 'b', 'level', 'result', 'test']);

/**
 * Case, punctuation, spacing and micro-sign differences removed; "%" and "#" kept as words because
 * they distinguish a differential percentage from an absolute count.
 */
export function normaliseLabel(label: string): string {
  return label
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[µμ]/g, 'u')
    .replace(/γ/g, 'gamma')
    .replace(/%/g, ' percent ')
    .replace(/#/g, ' abs ')
    .replace(/\babsolute\b/g, 'abs')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

function withoutQualifiers(key: string): string {
  return key
    .split(' ')
    .filter((word) => !QUALIFIERS.has(word))
    .join(' ');
}

const BY_KEY = new Map<string, Analyte[]>();
for (const analyte of ANALYTES) {
  for (const synonym of [analyte.display, ...analyte.synonyms]) {
    for (const key of new Set([normaliseLabel(synonym), withoutQualifiers(normaliseLabel(synonym))])) {
      if (key === '') continue;
      const list = BY_KEY.get(key) ?? [];
      if (!list.includes(analyte)) list.push(analyte);
      BY_KEY.set(key, list);
    }
  }
}

export interface LabelMatch {
  analytes: Analyte[];
  /** False when the name matched only approximately (OCR misreads, unlisted spelling). */
  exact: boolean;
}

/** Exact lookup after normalisation, also without specimen qualifiers and parenthesised notes. */
export function lookupLabel(label: string): Analyte[] | undefined {
  const key = normaliseLabel(label);
  if (key === '') return undefined;
  return (
    BY_KEY.get(key) ??
    // OCR reads the "1" of A1c as l or I ("HbAlc", "Hemoglobin AIc").
    BY_KEY.get(key.replace(/\b(hb|hgb)?a[il]c\b/g, '$1a1c')) ??
    BY_KEY.get(withoutQualifiers(key)) ??
    BY_KEY.get(withoutQualifiers(normaliseLabel(label.replace(/\([^)]*\)/g, ' '))))
  );
}

/**
 * Exact lookup, then an approximate one: at most one edit for names of 5–9 characters and two for
 * longer names, and only when a single name is that close (short abbreviations are never guessed).
 */
export function matchLabel(label: string): LabelMatch | undefined {
  const exact = lookupLabel(label);
  if (exact) return { analytes: exact, exact: true };
  const key = withoutQualifiers(normaliseLabel(label));
  if (key.length < 5) return undefined;
  const budget = key.length >= 10 ? 2 : 1;
  let best: { distance: number; analytes: Analyte[] } | undefined;
  let tied = false;
  for (const [candidate, analytes] of BY_KEY) {
    if (Math.abs(candidate.length - key.length) > budget || candidate.length < 5) continue;
    const distance = editDistance(key, candidate, budget);
    if (distance > budget) continue;
    if (!best || distance < best.distance) {
      best = { distance, analytes };
      tied = false;
    } else if (distance === best.distance && best.analytes !== analytes && !sameAnalytes(best.analytes, analytes)) {
      tied = true;
    }
  }
  return best && !tied ? { analytes: best.analytes, exact: false } : undefined;
}

function sameAnalytes(a: Analyte[], b: Analyte[]): boolean {
  return a.length === b.length && a.every((analyte) => b.includes(analyte));
}


export function conversionContext(analyte: Analyte): ConversionContext {
  return { molarMass: analyte.molarMass, denominatorMolarMass: analyte.denominatorMolarMass, hba1c: analyte.hba1c };
}

/**
 * The LOINC code for this analyte printed in `ucum`, or undefined when the unit cannot belong to
 * it (a percentage for an absolute count, /HPF for a blood count).
 */
export function codeForUnit(analyte: Analyte, ucum: string): { loinc: string; loincAlt: string[] } | undefined {
  const dimension = unitDimension(ucum);
  if (dimension === undefined) return undefined;
  for (const code of analyte.byUnit ?? []) {
    if (code.units.some((unit) => unitDimension(unit) === dimension)) return { loinc: code.loinc, loincAlt: code.loincAlt ?? [] };
  }
  if (!canConvert(ucum, analyte.unit, conversionContext(analyte))) return undefined;
  return { loinc: analyte.loinc, loincAlt: analyte.loincAlt ?? [] };
}

/** The value in the analyte's canonical unit, or undefined when the unit does not convert. */
export function toCanonical(analyte: Analyte, value: number, ucum: string): number | undefined {
  return convertUnit(value, ucum, analyte.unit, conversionContext(analyte));
}

export function isPlausible(analyte: Analyte, value: number, ucum: string): boolean {
  const canonical = toCanonical(analyte, value, ucum);
  return canonical !== undefined && canonical >= analyte.plausible[0] && canonical <= analyte.plausible[1];
}

const BY_LOINC = new Map<string, Analyte>();
for (const analyte of ANALYTES) {
  for (const code of [analyte.loinc, ...(analyte.loincAlt ?? []), ...(analyte.byUnit ?? []).flatMap((c) => [c.loinc, ...(c.loincAlt ?? [])])]) {
    if (!BY_LOINC.has(code)) BY_LOINC.set(code, analyte);
  }
}

/** The analyte a LOINC code measures (for its molar mass when converting units), if the table has it. */
export function analyteForLoinc(code: string): Analyte | undefined {
  return BY_LOINC.get(code);
}
