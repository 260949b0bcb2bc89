/**
 * Tier 2 of document extraction: lab results found in the positioned text of a report, whether in
 * tables (bordered or not, side by side, cumulative with several date columns) or in free text
 * ("TSH: 2.1 mIU/L (0.4–4.0)"), mapped to LOINC and normalised to canonical UCUM units.
 *
 * A line yields a result only when it starts (or, after a wide gap, continues) with a known analyte
 * name followed directly by a number: headers, addresses and comment sentences that mention an
 * analyte ("…when triglycerides exceed 400 mg/dL") do not.
 */
import type { DocumentText, TextBox, TextLine, TextPage } from './document-text.js';
import { codeForUnit, isPlausible, matchLabel, toCanonical, lookupLabel, type Analyte } from './lab-analytes.js';
import { parseUnit, unitCandidates } from './units.js';

export type Comparator = '<' | '<=' | '>' | '>=';
export type AbnormalFlag = 'H' | 'L' | 'HH' | 'LL' | 'A' | 'N';

export interface ReferenceRange {
  low?: number;
  high?: number;
  /** As printed, e.g. "3.5-5.1", "<200", "M: 135-175 F: 120-155". */
  text: string;
}

export interface LabResult {
  /** The analyte name as printed. */
  label: string;
  loinc: string;
  /** Other LOINC codes that identify the same measurement (method-specific or older codes). */
  loincAlt: string[];
  display: string;
  value: number;
  comparator?: Comparator;
  /** The unit as printed ('' for dimensionless results such as pH that print none). */
  unit: string;
  /** UCUM code of the printed unit. */
  ucum: string;
  /** The value in the analyte's canonical unit, when that differs from the printed one. */
  normalized?: { value: number; ucum: string };
  referenceRange?: ReferenceRange;
  flag?: AbnormalFlag;
  page: number;
  box: TextBox;
  /** 0–1: OCR confidence of the words used × certainty of the parse × plausibility. */
  confidence: number;
  /** Within physiological limits for the analyte. */
  plausible: boolean;
}

export interface LabReport {
  /** Specimen collection date, YYYY-MM-DD. */
  specimenDate?: string;
  reportDate?: string;
  results: LabResult[];
}

interface Token {
  text: string;
  x: number;
  right: number;
  y: number;
  bottom: number;
  confidence: number;
  /** Whitespace before this token in ems of the line's text height (Infinity at the line start). */
  gap: number;
}

interface NumberToken {
  value: number;
  comparator?: Comparator;
  decimals: number;
  flag?: AbnormalFlag;
  start: number;
  end: number;
  x: number;
}

interface DateColumn {
  x: number;
  date: string;
}

/** A new result may start mid-line only after a gap this wide (ems), as between side-by-side tables. */
const NEW_CELL_GAP = 1.2;
const MAX_LABEL_WORDS = 8;

export function parseLabResults(text: DocumentText): LabReport {
  const results: LabResult[] = [];
  const dates: FoundDates = {};
  let latestColumn: string | undefined;
  for (const page of text.pages) {
    let columns: DateColumn[] = [];
    let headings: DateHeading[] = [];
    for (const line of mergeRows(page.lines)) {
      const tokens = tokenise(line);
      const found = parseLine(tokens, page, line, columns);
      results.push(...found);
      if (found.length === 0) {
        const header = dateColumns(tokens);
        if (header) {
          columns = header;
          latestColumn ??= header.reduce((a, b) => (b.date > a.date ? b : a)).date;
        }
        findDatesBelow(tokens, headings, dates);
        headings = findDates(line.text, tokens, dates);
      } else {
        headings = [];
      }
    }
  }
  // A cumulative report names no collection date: its current column's heading is one.
  dates.specimen ??= latestColumn ? { year: +latestColumn.slice(0, 4), first: +latestColumn.slice(4, 6), second: +latestColumn.slice(6), kind: 'ymd' } : undefined;
  const dayFirst = !results.some((r) => r.ucum === 'mg/dL' || r.ucum === 'g/dL' || r.ucum === '10*3/uL');
  return {
    specimenDate: dates.specimen && isoDate(dates.specimen, dayFirst),
    reportDate: dates.report && isoDate(dates.report, dayFirst),
    results,
  };
}

/**
 * OCR engines split one table row into several lines (label, value, unit as separate blocks), and
 * side-by-side tables print their rows a point or two apart; lines that share a row and do not
 * overlap horizontally are read as one, left to right.
 */
function mergeRows(lines: TextLine[]): TextLine[] {
  const rows: TextLine[][] = [];
  for (const line of [...lines].sort((a, b) => a.y - b.y)) {
    const centre = line.y + line.height / 2;
    const row = rows.find((members) =>
      members.every(
        (other) =>
          Math.abs(other.y + other.height / 2 - centre) <= 0.5 * Math.min(other.height, line.height) &&
          (other.x + other.width <= line.x || line.x + line.width <= other.x),
      ),
    );
    if (row) row.push(line);
    else rows.push([line]);
  }
  return rows.map((members) => {
    if (members.length === 1) return members[0];
    members.sort((a, b) => a.x - b.x);
    const words = members.flatMap((m) => m.words);
    const x = Math.min(...members.map((m) => m.x));
    const y = Math.min(...members.map((m) => m.y));
    const right = Math.max(...members.map((m) => m.x + m.width));
    const bottom = Math.max(...members.map((m) => m.y + m.height));
    const confidence = members.reduce((sum, m) => sum + m.confidence * m.words.length, 0) / Math.max(1, words.length);
    return { text: members.map((m) => m.text).join(' '), x, y, width: right - x, height: bottom - y, confidence, words };
  });
}

function tokenise(line: TextLine): Token[] {
  const words = line.words.length > 0 ? line.words : [{ ...line, text: line.text }];
  const height = Math.max(1, median(words.map((w) => w.height)));
  const tokens: Token[] = [];
  let previousRight: number | undefined;
  for (const word of words) {
    // "mL/min/1.73m2(>60)": a range glued to the unit is two tokens.
    const parts = word.text.split(/(?<=[^\s(])(?=\()/);
    const perChar = word.width / Math.max(1, word.text.length);
    let offset = 0;
    for (const part of parts) {
      const x = word.x + offset * perChar;
      const right = x + part.length * perChar;
      tokens.push({
        text: part,
        x,
        right,
        y: word.y,
        bottom: word.y + word.height,
        confidence: word.confidence,
        gap: previousRight === undefined ? Infinity : (x - previousRight) / height,
      });
      previousRight = right;
      offset += part.length;
    }
  }
  return tokens;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)];
}

function parseLine(tokens: Token[], page: TextPage, line: TextLine, columns: DateColumn[]): LabResult[] {
  const results: LabResult[] = [];
  let i = 0;
  let startAllowed = true;
  while (i < tokens.length) {
    const canStart = startAllowed || tokens[i].gap >= NEW_CELL_GAP || isJunk(tokens.slice(0, i));
    const parsed = canStart ? parseResultAt(tokens, i, page, line, columns) : undefined;
    if (parsed) {
      results.push(parsed.result);
      i = parsed.end;
      startAllowed = true;
    } else {
      i++;
      startAllowed = false;
    }
  }
  return results;
}

/** Table borders, bullets and row numbers in front of a label. */
function isJunk(tokens: Token[]): boolean {
  return tokens.every((t) => /^[^A-Za-z]{1,3}$/.test(t.text) && !/^\d+[.,]\d/.test(t.text));
}

interface LabelHit {
  analytes: Analyte[];
  end: number;
  exact: boolean;
}

function labelAt(tokens: Token[], start: number): LabelHit | undefined {
  if (!/[A-Za-z%]/.test(tokens[start].text)) return undefined;
  const limit = Math.min(tokens.length, start + MAX_LABEL_WORDS);
  for (let end = limit; end > start; end--) {
    // A label never spans a wide gap: that gap separates it from the value column.
    if (end - 1 > start && tokens[end - 1].gap >= NEW_CELL_GAP) continue;
    const text = joinTokens(tokens, start, end).replace(/[:=]+$/, '');
    const analytes = lookupLabel(text);
    if (analytes) return { analytes, end, exact: true };
  }
  // Approximate match of the whole label cell: the words up to the first number or wide gap.
  let end = start + 1;
  while (end < tokens.length && end < limit && tokens[end].gap < NEW_CELL_GAP && !readNumber(tokens, end) && !/^[:=]$/.test(tokens[end].text)) end++;
  const match = matchLabel(joinTokens(tokens, start, end).replace(/[:=]+$/, ''));
  return match ? { analytes: match.analytes, end, exact: false } : undefined;
}

function joinTokens(tokens: Token[], start: number, end: number): string {
  return tokens
    .slice(start, end)
    .map((t) => t.text)
    .join(' ');
}

const FLAGS: Record<string, AbnormalFlag> = {
  h: 'H',
  l: 'L',
  hh: 'HH',
  ll: 'LL',
  a: 'A',
  n: 'N',
  high: 'H',
  low: 'L',
  abn: 'A',
  abnormal: 'A',
  crit: 'A',
  critical: 'A',
  '*': 'A',
  '**': 'A',
  '!': 'A',
  '↑': 'H',
  '↓': 'L',
  '↑↑': 'HH',
  '↓↓': 'LL',
  'h*': 'H',
  'l*': 'L',
  'hh*': 'HH',
  'll*': 'LL',
};

function readFlag(text: string): AbnormalFlag | undefined {
  return FLAGS[text.replace(/^[([]|[)\]]$/g, '').toLowerCase()];
}

const NUMBER = String.raw`(?:\d{1,3}(?:,\d{3})+|\d+)(?:[.,]\d+)?|[.,]\d+`;
const VALUE = new RegExp(String.raw`^([<>≤≥]=?)?(${NUMBER})(\*{1,2}|[HL]{1,2}|[↑↓])?$`);

function readComparator(text: string | undefined): Comparator | undefined {
  switch (text) {
    case '<':
      return '<';
    case '>':
      return '>';
    case '<=':
    case '≤':
      return '<=';
    case '>=':
    case '≥':
      return '>=';
    default:
      return undefined;
  }
}

function toNumber(text: string): { value: number; decimals: number } {
  // "1,200" groups thousands; "4,5" is a decimal comma; "05" is 0.5 with the point lost (OCR).
  const normalised = /^\d{1,3}(,\d{3})+$/.test(text) ? text.replace(/,/g, '') : text.replace(',', '.').replace(/^0(?=\d)/, '0.');
  const decimals = normalised.includes('.') ? normalised.length - normalised.indexOf('.') - 1 : 0;
  return { value: Number(normalised), decimals };
}

/** A result value at `index`: "5.2", "<5", "> 90" (comparator as its own word), "13.8*", "116H". */
function readNumber(tokens: Token[], index: number): NumberToken | undefined {
  const token = tokens[index];
  const split = readComparator(token.text);
  if (split && index + 1 < tokens.length) {
    const next = VALUE.exec(tokens[index + 1].text);
    if (next && !next[1]) return numberFrom(next, split, index, index + 2, tokens[index + 1]);
    return undefined;
  }
  const match = VALUE.exec(token.text);
  return match ? numberFrom(match, readComparator(match[1]), index, index + 1, token) : undefined;
}

function numberFrom(match: RegExpExecArray, comparator: Comparator | undefined, start: number, end: number, token: Token): NumberToken {
  const { value, decimals } = toNumber(match[2]);
  const flag = match[3] ? readFlag(match[3]) : undefined;
  return { value, decimals, comparator, flag, start, end, x: (token.x + token.right) / 2 };
}

const RANGE_NUMBER = String.raw`-?(?:\d+(?:[.,]\d+)?|[.,]\d+)`;
const RANGE_PREFIX = String.raw`(?:(?:ref(?:erence)?\.?(?:\s*(?:range|interval|value)s?)?|normal(?:\s*range)?|range)\s*:?\s*)?`;
const BETWEEN = new RegExp(String.raw`^[([]?\s*${RANGE_PREFIX}(${RANGE_NUMBER})\s*(?:-|–|—|to)\s*(${RANGE_NUMBER})\s*[)\]]?$`, 'i');
const BOUND = new RegExp(String.raw`^[([]?\s*${RANGE_PREFIX}([<>≤≥]=?)\s*(${RANGE_NUMBER})\s*[)\]]?$`, 'i');
const SEX_SPECIFIC = /^[([]?\s*(?:M|F|Male|Female)\s*:/i;

/** A reference range starting at `index`, as long as it reads as one. */
function readRange(tokens: Token[], index: number): { range: ReferenceRange; end: number } | undefined {
  if (SEX_SPECIFIC.test(tokens[index].text)) {
    let end = index + 1;
    while (end < tokens.length && (/\d/.test(tokens[end].text) || SEX_SPECIFIC.test(tokens[end].text)) && !readFlag(tokens[end].text)) end++;
    return { range: { text: joinTokens(tokens, index, end) }, end };
  }
  for (let end = Math.min(tokens.length, index + 6); end > index; end--) {
    const text = joinTokens(tokens, index, end);
    const between = BETWEEN.exec(text);
    if (between) {
      return { range: { low: toNumber(between[1]).value, high: toNumber(between[2]).value, text }, end };
    }
    const bound = BOUND.exec(text);
    if (bound) {
      const limit = toNumber(bound[2]).value;
      const comparator = readComparator(bound[1]);
      const range = comparator === '<' || comparator === '<=' ? { high: limit, text } : { low: limit, text };
      return { range, end };
    }
  }
  return undefined;
}

interface UnitHit {
  printed: string;
  /** UCUM codes the printed unit may stand for, most likely first (one, unless OCR garbled it). */
  candidates: string[];
  end: number;
}

/**
 * A unit starting at `index`, possibly printed as several words ("mL/min/1.73 m2", "x10^9 /L").
 * OCR text is also read loosely, one word at a time.
 */
function readUnit(tokens: Token[], index: number): UnitHit | undefined {
  for (let end = Math.min(tokens.length, index + 3); end > index; end--) {
    if (end - 1 > index && tokens[end - 1].gap >= NEW_CELL_GAP) continue;
    const printed = joinTokens(tokens, index, end);
    const ucum = parseUnit(printed);
    if (ucum) return { printed, candidates: tokens[index].confidence < 1 ? unitCandidates(printed) : [ucum], end };
  }
  const token = tokens[index];
  // "LL" is a critical-low flag unless no unit follows, when it is L/L with the slash lost.
  const flagged = readFlag(token.text) !== undefined && index + 1 < tokens.length && readUnit(tokens, index + 1) !== undefined;
  if (token.confidence < 1 && !readNumber(tokens, index) && !flagged) {
    const candidates = unitCandidates(token.text);
    if (candidates.length > 0) return { printed: token.text, candidates, end: index + 1 };
  }
  return undefined;
}

interface Parsed {
  result: LabResult;
  end: number;
}

function parseResultAt(tokens: Token[], start: number, page: TextPage, line: TextLine, columns: DateColumn[]): Parsed | undefined {
  const label = labelAt(tokens, start);
  if (!label) return undefined;
  let index = label.end;
  while (index < tokens.length && /^[:=\-–]$/.test(tokens[index].text)) index++;

  const values: NumberToken[] = [];
  let unit: UnitHit | undefined;
  let range: ReferenceRange | undefined;
  let flag: AbnormalFlag | undefined;
  /** OCR left an unreadable word where the unit belongs. */
  let garbledUnit = false;
  // Unit printed with the name, e.g. "Glucose (mg/dL) 95".
  const early = index < tokens.length ? readUnit(tokens, index) : undefined;
  if (early) {
    unit = early;
    index = early.end;
  }
  // The name must be followed at once by the value: "Triglycerides exceed 400 mg/dL" is prose.
  if (index >= tokens.length || !readNumber(tokens, index)) return undefined;

  while (index < tokens.length) {
    if (values.length > 0 && tokens[index].gap >= NEW_CELL_GAP && labelAt(tokens, index) && !readUnit(tokens, index)) break;
    const number = readNumber(tokens, index);
    const isRange = !number || values.length > 0 ? readRange(tokens, index) : undefined;
    if (isRange && !range && values.length > 0) {
      range = isRange.range;
      index = isRange.end;
      continue;
    }
    if (number && !unit && !range) {
      values.push(number);
      index = number.end;
      continue;
    }
    const unitHere = !unit ? readUnit(tokens, index) : undefined;
    if (unitHere) {
      unit = unitHere;
      index = unitHere.end;
      continue;
    }
    const flagHere = readFlag(tokens[index].text);
    if (!flagHere && !unit && !range && tokens[index].confidence < 1 && /^[^\d\s]{1,6}$/.test(tokens[index].text)) {
      garbledUnit = true;
      index++;
      continue;
    }
    if (flagHere) {
      // A flag belongs to the value just before it; in cumulative rows only the first one counts.
      if (values.length === 1 && !flag) flag = flagHere;
      else if (values.length > 1) values[values.length - 1].flag ??= flagHere;
      index++;
      continue;
    }
    break;
  }
  if (values.length === 0 || continuesAsProse(tokens, index)) return undefined;
  const chosen = chooseColumn(values, columns);
  const value = { ...chosen, flag: chosen.flag ?? (chosen === values[0] ? flag : undefined) };

  const ocr = tokens.slice(start, index).some((t) => t.confidence < 1);
  const resolved = resolveAnalyte(label.analytes, unit?.candidates, value.value, garbledUnit);
  if (!resolved) return undefined;
  const used = tokens.slice(start, index);
  const ocrConfidence = used.reduce((sum, t) => sum + t.confidence, 0) / used.length;
  const repaired = ocr ? repairDecimal(resolved.analyte, value, resolved.ucum, range) : undefined;
  const finalValue = repaired?.value ?? value.value;
  const finalRange = repaired?.range ?? range;
  const plausible = isPlausible(resolved.analyte, finalValue, resolved.ucum);
  const canonical = toCanonical(resolved.analyte, finalValue, resolved.ucum);

  let certainty = 1;
  if (!label.exact) certainty *= 0.85;
  if (!unit && !isDimensionless(resolved.ucum)) certainty *= 0.6;
  if (unit && unit.candidates[0] !== resolved.ucum) certainty *= 0.85;
  if (!finalRange) certainty *= 0.95;
  if (repaired) certainty *= 0.7;
  if (values.length > 1 && columns.length === 0) certainty *= 0.9;

  const result: LabResult = {
    label: joinTokens(tokens, start, label.end).replace(/[:=]+$/, ''),
    loinc: resolved.loinc,
    loincAlt: resolved.loincAlt,
    display: resolved.analyte.display,
    value: finalValue,
    ...(value.comparator ? { comparator: value.comparator } : {}),
    unit: unit?.printed ?? '',
    ucum: resolved.ucum,
    ...(canonical !== undefined && resolved.analyte.unit !== resolved.ucum
      ? { normalized: { value: round(canonical), ucum: resolved.analyte.unit } }
      : {}),
    ...(finalRange ? { referenceRange: finalRange } : {}),
    ...(value.flag ? { flag: value.flag } : {}),
    page: page.number,
    box: boxOf(used, line),
    confidence: round(ocrConfidence * certainty * (plausible ? 1 : 0.4), 3),
    plausible,
  };
  return { result, end: index };
}

/** "HbA1c 48 mmol/mol or above is consistent with diabetes": a sentence, not a result row. */
function continuesAsProse(tokens: Token[], index: number): boolean {
  let words = 0;
  for (let i = index; i < tokens.length && (i === index || tokens[i].gap < NEW_CELL_GAP); i++) {
    if (/^[a-z]{2,}[,.;:]?$/.test(tokens[i].text)) words++;
  }
  return words >= 2;
}

/**
 * The analyte and unit that fit together: an unqualified "Neutrophils" in % is the differential
 * percentage, in 10^9/L the absolute count. Among a garbled unit's readings the first giving a
 * plausible value wins. Without a printed unit only dimensionless analytes (pH, specific gravity,
 * INR) are accepted, and, when OCR garbled the unit, analytes reported in one unit only (MCH in pg).
 */
function resolveAnalyte(
  candidates: Analyte[],
  units: string[] | undefined,
  value: number,
  garbledUnit: boolean,
): { analyte: Analyte; ucum: string; loinc: string; loincAlt: string[] } | undefined {
  const options: Array<{ analyte: Analyte; ucum: string; loinc: string; loincAlt: string[] }> = [];
  for (const analyte of candidates) {
    const singleUnit = isDimensionless(analyte.unit) || (garbledUnit && !analyte.byUnit);
    const readings = units ?? (singleUnit ? [analyte.unit] : []);
    for (const ucum of readings) {
      const code = codeForUnit(analyte, ucum);
      if (code) options.push({ analyte, ucum, ...code });
    }
  }
  return options.find((o) => isPlausible(o.analyte, value, o.ucum)) ?? options[0];
}

function isDimensionless(ucum: string): boolean {
  return ucum === '1' || ucum === '{ratio}' || ucum === '{INR}';
}

/** In a cumulative report the value under the most recent date is the result; the others are history. */
function chooseColumn(values: NumberToken[], columns: DateColumn[]): NumberToken {
  if (values.length === 1 || columns.length < 2) return values[0];
  const latest = columns.reduce((a, b) => (b.date > a.date ? b : a));
  return values.reduce((a, b) => (Math.abs(b.x - latest.x) < Math.abs(a.x - latest.x) ? b : a));
}

/**
 * OCR drops decimal points ("48" for "4.8", "40-56" for "4.0-5.6"). A whole-number value is read
 * as a tenth or hundredth of itself when it is impossible for the analyte, or when the printed
 * range and flag contradict it (flagged low yet above the lower limit; far above a range printed
 * with decimals) and the smaller value agrees with them.
 */
function repairDecimal(
  analyte: Analyte,
  value: NumberToken,
  ucum: string,
  range: ReferenceRange | undefined,
): { value: number; range?: ReferenceRange } | undefined {
  const ordered = range ? reorderRange(range) : undefined;
  const rangeScale = ordered ? plausibleRangeScale(analyte, ordered, ucum) : 1;
  const scaledRange = ordered && (rangeScale !== 1 || ordered !== range) ? scaleRange(ordered, rangeScale) : undefined;
  const reference = scaledRange ?? range;
  const unchanged = scaledRange ? { value: value.value, range: scaledRange } : undefined;
  if (value.decimals > 0 || value.comparator) return unchanged;
  const plausible = isPlausible(analyte, value.value, ucum);
  const contradicted =
    reference !== undefined &&
    ((value.flag === 'L' && reference.low !== undefined && value.value >= reference.low) ||
      (value.flag === 'H' && reference.high !== undefined && value.value <= reference.high) ||
      (/\d\.\d/.test(reference.text) &&
        ((reference.high !== undefined && value.value > reference.high * 3) ||
          (value.flag === undefined && !inRange(value.value, reference) && inRange(value.value / 10, reference)))));
  if (plausible && !contradicted) return unchanged;
  for (const divisor of [10, 100]) {
    const candidate = value.value / divisor;
    if (!isPlausible(analyte, candidate, ucum)) continue;
    if (reference && !agreesWithFlag(candidate, reference, value.flag)) continue;
    return { value: candidate, range: scaledRange };
  }
  return unchanged;
}

function inRange(value: number, range: ReferenceRange): boolean {
  return (range.low === undefined || value >= range.low) && (range.high === undefined || value <= range.high);
}

/** Near the interval (abnormal results still land within a factor of three), on the flagged side. */
function agreesWithFlag(value: number, range: ReferenceRange, flag: AbnormalFlag | undefined): boolean {
  if (range.low !== undefined && value < range.low / 3) return false;
  if (range.high !== undefined && value > range.high * 3) return false;
  if (flag === 'L' && range.low !== undefined && value >= range.low) return false;
  if (flag === 'H' && range.high !== undefined && value <= range.high) return false;
  return true;
}

/** 1 when the range is plausible as printed, else the divisor (10, 100) that makes it so. */
function plausibleRangeScale(analyte: Analyte, range: ReferenceRange, ucum: string): number {
  const bounds = [range.low, range.high].filter((b): b is number => b !== undefined && b > 0);
  if (bounds.length === 0) return 1;
  for (const divisor of [1, 10, 100]) {
    if (bounds.every((b) => isPlausible(analyte, b / divisor, ucum))) return divisor;
  }
  return 1;
}

/** "35-5.0" for "3.5-5.0": a lower limit above the upper one lost its decimal point. */
function reorderRange(range: ReferenceRange): ReferenceRange {
  if (range.low === undefined || range.high === undefined || range.low <= range.high) return range;
  for (const divisor of [10, 100]) {
    if (range.low / divisor <= range.high) return { ...range, low: range.low / divisor };
  }
  return range;
}

function scaleRange(range: ReferenceRange, divisor: number): ReferenceRange {
  return {
    ...(range.low !== undefined ? { low: range.low / divisor } : {}),
    ...(range.high !== undefined ? { high: range.high / divisor } : {}),
    text: range.text,
  };
}

function boxOf(tokens: Token[], line: TextLine): TextBox {
  if (tokens.length === 0) return { x: line.x, y: line.y, width: line.width, height: line.height };
  const x = Math.min(...tokens.map((t) => t.x));
  const y = Math.min(...tokens.map((t) => t.y));
  const right = Math.max(...tokens.map((t) => t.right));
  const bottom = Math.max(...tokens.map((t) => t.bottom));
  return { x: round(x), y: round(y), width: round(right - x), height: round(bottom - y) };
}

function round(value: number, digits = 4): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

// ---- dates ---------------------------------------------------------------------------------------

interface RawDate {
  year: number;
  /** Month and day when unambiguous; for d/m vs m/d slash dates both numbers as printed. */
  first: number;
  second: number;
  kind: 'ymd' | 'slash' | 'named';
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH = String.raw`(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?`;
const DATE_PATTERNS: Array<{ re: RegExp; read: (m: RegExpExecArray) => RawDate }> = [
  { re: /\b(\d{4})-(\d{1,2})-(\d{1,2})\b/, read: (m) => ({ year: +m[1], first: +m[2], second: +m[3], kind: 'ymd' }) },
  { re: /\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b/, read: (m) => ({ year: +m[3], first: +m[1], second: +m[2], kind: 'slash' }) },
  {
    re: new RegExp(String.raw`\b(\d{1,2})[\s-]${MONTH}[\s-](\d{4})\b`, 'i'),
    read: (m) => ({ year: +m[3], first: MONTHS.indexOf(m[2].toLowerCase()) + 1, second: +m[1], kind: 'named' }),
  },
  {
    re: new RegExp(String.raw`\b${MONTH}\s+(\d{1,2}),?\s+(\d{4})\b`, 'i'),
    read: (m) => ({ year: +m[3], first: MONTHS.indexOf(m[1].toLowerCase()) + 1, second: +m[2], kind: 'named' }),
  },
];

function firstDate(text: string): { date: RawDate; index: number } | undefined {
  let best: { date: RawDate; index: number } | undefined;
  for (const { re, read } of DATE_PATTERNS) {
    const match = re.exec(text);
    if (match && (!best || match.index < best.index)) best = { date: read(match), index: match.index };
  }
  return best;
}

const SPECIMEN_KEYS = /\b(collected|collection(?:\s+date)?|specimen\s+(?:collected|date|taken)|sample\s+(?:collected|taken|date)|date\s+(?:collected|of\s+collection|drawn)|drawn)\b\s*(?:date|on|at|time)?\s*[:.]?\s*/i;
const REPORT_KEYS = /\b(reported|report\s+date|date\s+reported|report\s+printed|printed|authori[sz]ed|validated|verified)\b\s*(?:date|on|at)?\s*[:.]?\s*/i;

interface FoundDates {
  specimen?: RawDate;
  report?: RawDate;
}

/** A field name with its date printed underneath it rather than beside it. */
interface DateHeading {
  key: keyof FoundDates;
  x: number;
}

const DATE_KEYS = [
  ['specimen', SPECIMEN_KEYS],
  ['report', REPORT_KEYS],
] as const;

/**
 * Dates follow their keyword closely ("Collected: 03/05/2024 08:19"), never another field's
 * keyword. Returns the keywords with no date beside them: form-style headers print it below.
 */
function findDates(text: string, tokens: Token[], found: FoundDates): DateHeading[] {
  const headings: DateHeading[] = [];
  for (const [key, re] of DATE_KEYS) {
    if (found[key]) continue;
    const match = re.exec(text);
    if (!match) continue;
    const date = firstDate(text.slice(match.index + match[0].length));
    if (date && date.index <= 2) {
      found[key] = date.date;
      continue;
    }
    const word = match[1].split(/\s+/)[0].toLowerCase();
    const token = tokens.find((t) => t.text.toLowerCase().replace(/[^a-z]/g, '') === word);
    if (token) headings.push({ key, x: token.x });
  }
  return headings;
}

function findDatesBelow(tokens: Token[], headings: DateHeading[], found: FoundDates): void {
  for (const heading of headings) {
    if (found[heading.key]) continue;
    const below = tokens.findIndex((t) => Math.abs(t.x - heading.x) < (t.bottom - t.y) * 2);
    if (below < 0) continue;
    const date = firstDate(joinTokens(tokens, below, Math.min(tokens.length, below + 3)));
    if (date && date.index === 0) found[heading.key] = date.date;
  }
}

function isoDate(date: RawDate, dayFirst: boolean): string | undefined {
  let month = date.first;
  let day = date.second;
  if (date.kind === 'slash') {
    const swap = date.first > 12 || (dayFirst && date.second <= 12);
    if (swap) [month, day] = [date.second, date.first];
  }
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  return `${date.year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** Column headers of a cumulative table: two or more dates side by side on one line. */
function dateColumns(tokens: Token[]): DateColumn[] | undefined {
  const columns: DateColumn[] = [];
  for (const token of tokens) {
    const match = /^(\d{4})-(\d{2})-(\d{2})$|^(\d{1,2})[/.](\d{1,2})[/.](\d{2,4})$/.exec(token.text);
    if (!match) continue;
    const key = match[1] ? `${match[1]}${match[2]}${match[3]}` : `${match[6].padStart(4, '20')}${match[5].padStart(2, '0')}${match[4].padStart(2, '0')}`;
    columns.push({ x: (token.x + token.right) / 2, date: key });
  }
  // "Collected: 03/05/2024 Received: 03/05/2024" is a header line, not column headings.
  return columns.length >= 2 && columns.length * 2 >= tokens.length ? columns : undefined;
}
