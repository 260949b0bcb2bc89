/**
 * Units as printed on lab reports, mapped to UCUM, and conversion between the units one analyte is
 * reported in (mg/dL ↔ mmol/L by molar mass, g/L ↔ g/dL, 10^9/L ↔ 10^3/µL, % ↔ mmol/mol for HbA1c).
 */

/**
 * What a unit measures. Conversion is only defined within one dimension, or between mass and
 * amount concentrations when the analyte's molar mass is known.
 */
export type UnitDimension =
  | 'mass/volume'
  | 'amount/volume'
  | 'count/volume'
  | 'activity/volume'
  | 'fraction'
  | 'mass/mass'
  | 'mass/amount'
  | 'amount/amount'
  | 'mass'
  | 'volume'
  | 'count/field'
  | 'flow/area'
  | 'time'
  | 'length/time'
  | 'unitless';

interface UnitDefinition {
  dimension: UnitDimension;
  /** Multiplier to the dimension's base unit (g/L, mol/L, /L, U/L, 1, g/g, g/mol, mol/mol, g, L, …). */
  factor: number;
}

/**
 * International units are arbitrary in UCUM, but reports use IU/L and U/L interchangeably for
 * enzyme activities (and mIU/L, mU/L for TSH); treating them as one dimension lets both compare.
 */
const UNITS: Record<string, UnitDefinition> = {
  'g/L': { dimension: 'mass/volume', factor: 1 },
  'g/dL': { dimension: 'mass/volume', factor: 10 },
  'mg/dL': { dimension: 'mass/volume', factor: 1e-2 },
  'mg/L': { dimension: 'mass/volume', factor: 1e-3 },
  'ug/dL': { dimension: 'mass/volume', factor: 1e-5 },
  'ug/L': { dimension: 'mass/volume', factor: 1e-6 },
  'ug/mL': { dimension: 'mass/volume', factor: 1e-3 },
  'ng/mL': { dimension: 'mass/volume', factor: 1e-6 },
  'ng/dL': { dimension: 'mass/volume', factor: 1e-8 },
  'ng/L': { dimension: 'mass/volume', factor: 1e-9 },
  'pg/mL': { dimension: 'mass/volume', factor: 1e-9 },
  'mol/L': { dimension: 'amount/volume', factor: 1 },
  'mmol/L': { dimension: 'amount/volume', factor: 1e-3 },
  'umol/L': { dimension: 'amount/volume', factor: 1e-6 },
  'nmol/L': { dimension: 'amount/volume', factor: 1e-9 },
  'pmol/L': { dimension: 'amount/volume', factor: 1e-12 },
  'meq/L': { dimension: 'amount/volume', factor: 1e-3 },
  '10*12/L': { dimension: 'count/volume', factor: 1e12 },
  '10*9/L': { dimension: 'count/volume', factor: 1e9 },
  '10*6/uL': { dimension: 'count/volume', factor: 1e12 },
  '10*3/uL': { dimension: 'count/volume', factor: 1e9 },
  '/uL': { dimension: 'count/volume', factor: 1e6 },
  '/L': { dimension: 'count/volume', factor: 1 },
  'U/L': { dimension: 'activity/volume', factor: 1 },
  '[IU]/L': { dimension: 'activity/volume', factor: 1 },
  'mU/L': { dimension: 'activity/volume', factor: 1e-3 },
  'm[IU]/L': { dimension: 'activity/volume', factor: 1e-3 },
  'u[IU]/mL': { dimension: 'activity/volume', factor: 1e-3 },
  'U/mL': { dimension: 'activity/volume', factor: 1e3 },
  'k[IU]/L': { dimension: 'activity/volume', factor: 1e3 },
  'kU/L': { dimension: 'activity/volume', factor: 1e3 },
  '[IU]/mL': { dimension: 'activity/volume', factor: 1e3 },
  '%': { dimension: 'fraction', factor: 1e-2 },
  'L/L': { dimension: 'fraction', factor: 1 },
  '1': { dimension: 'unitless', factor: 1 },
  '{ratio}': { dimension: 'unitless', factor: 1 },
  '{INR}': { dimension: 'unitless', factor: 1 },
  'mg/g': { dimension: 'mass/mass', factor: 1e-3 },
  'mg/mmol': { dimension: 'mass/amount', factor: 1 },
  'mmol/mol': { dimension: 'amount/amount', factor: 1e-3 },
  'pg': { dimension: 'mass', factor: 1e-12 },
  'fL': { dimension: 'volume', factor: 1e-15 },
  '/[HPF]': { dimension: 'count/field', factor: 1 },
  '/[LPF]': { dimension: 'count/field', factor: 1 },
  'mL/min/{1.73_m2}': { dimension: 'flow/area', factor: 1 },
  's': { dimension: 'time', factor: 1 },
  'mm/h': { dimension: 'length/time', factor: 1 },
};

export function isKnownUcum(ucum: string): boolean {
  return ucum in UNITS;
}

export function unitDimension(ucum: string): UnitDimension | undefined {
  return UNITS[ucum]?.dimension;
}

/** Printed spelling (after `unitKey`) → UCUM. */
const SPELLINGS: Record<string, string> = {
  'g/l': 'g/L',
  'g/dl': 'g/dL',
  'gm/dl': 'g/dL',
  'mg/dl': 'mg/dL',
  'mg/l': 'mg/L',
  'ug/dl': 'ug/dL',
  'mcg/dl': 'ug/dL',
  'ug/l': 'ug/L',
  'mcg/l': 'ug/L',
  'ug/ml': 'ug/mL',
  'ng/ml': 'ng/mL',
  'ng/dl': 'ng/dL',
  'ng/l': 'ng/L',
  'pg/ml': 'pg/mL',
  'mol/l': 'mol/L',
  'mmol/l': 'mmol/L',
  'umol/l': 'umol/L',
  'nmol/l': 'nmol/L',
  'pmol/l': 'pmol/L',
  'meq/l': 'meq/L',
  'u/l': 'U/L',
  'iu/l': '[IU]/L',
  'mu/l': 'mU/L',
  'miu/l': 'm[IU]/L',
  'uiu/ml': 'u[IU]/mL',
  'u/ml': 'U/mL',
  'kiu/l': 'k[IU]/L',
  'ku/l': 'kU/L',
  'iu/ml': '[IU]/mL',
  '%': '%',
  'l/l': 'L/L',
  'ratio': '{ratio}',
  'mg/g': 'mg/g',
  'mg/gcr': 'mg/g',
  'mg/gcreat': 'mg/g',
  'mg/mmol': 'mg/mmol',
  'mg/mmolcr': 'mg/mmol',
  'mmol/mol': 'mmol/mol',
  'pg': 'pg',
  'fl': 'fL',
  '/hpf': '/[HPF]',
  '/lpf': '/[LPF]',
  'sec': 's',
  's': 's',
  'mm/h': 'mm/h',
  'mm/hr': 'mm/h',
  'ml/min/1.73m2': 'mL/min/{1.73_m2}',
  'ml/min/1.73': 'mL/min/{1.73_m2}',
  'ml/min/1.73msq': 'mL/min/{1.73_m2}',
  'k/ul': '10*3/uL',
  'k/mm3': '10*3/uL',
  'thou/ul': '10*3/uL',
  'm/ul': '10*6/uL',
  'mil/ul': '10*6/uL',
  'm/mm3': '10*6/uL',
  '/ul': '/uL',
  '/mm3': '/uL',
  'cells/ul': '/uL',
};

const SUPERSCRIPTS: Record<string, string> = { '⁰': '0', '¹': '1', '²': '2', '³': '3', '⁴': '4', '⁵': '5', '⁶': '6', '⁷': '7', '⁸': '8', '⁹': '9' };

/** Lower-cased, micro signs and exponent spellings unified, spaces removed. */
function unitKey(printed: string): string {
  return printed
    .replace(/[⁰¹²³⁴⁵⁶⁷⁸⁹]/g, (c) => SUPERSCRIPTS[c])
    .replace(/[µμ]/g, 'u')
    .replace(/[×✕]/g, 'x')
    .toLowerCase()
    .replace(/\s+/g, '')
    .replace(/^\((.*)\)$/, '$1')
    .replace(/\.$/, '');
}

/**
 * "×10^9/L", "x10E9/L", "10*9/L", "10^9 /L", and OCR's "1079/L" (the caret read as a 7) or
 * "109/L" (the caret lost) all mean 10^9 per litre.
 */
const POWER_OF_TEN = /^(?:x|\*)?10(?:\^|\*|e|7|-)?(3|6|9|12)\/(l|ul|mm3)$/;

/** The UCUM code for a unit as printed, or undefined when the text is not a unit this parser knows. */
export function parseUnit(printed: string): string | undefined {
  const key = unitKey(printed);
  if (key === '') return undefined;
  const direct = SPELLINGS[key];
  if (direct) return direct;
  const power = POWER_OF_TEN.exec(key);
  if (power) {
    const exponent = power[1];
    const per = power[2] === 'l' ? 'L' : 'uL';
    const ucum = `10*${exponent}/${per}`;
    return ucum in UNITS ? ucum : undefined;
  }
  // 'mL/min/1.73 m²' and its spellings: only the body-surface normalisation matters.
  if (/^ml\/min(\/|per)1\.73(m2|m\^2|sqm)?$/.test(key)) return 'mL/min/{1.73_m2}';
  return undefined;
}

/**
 * OCR-tolerant reading of a printed unit: every UCUM code it may stand for, most likely first; the
 * caller picks the one that fits the analyte and gives a plausible value. Covers the misreads
 * tesseract makes on lab reports: µ read as p, n or "pu"; exponents garbled ("x10°%L", "10"3/uL");
 * l/1 and o/0 swaps; a letter lost or changed ("ma/L", "JHPF", "miu" for mIU/L).
 */
export function unitCandidates(printed: string): string[] {
  const out = new Set<string>();
  const add = (ucum: string | undefined): void => {
    if (!ucum) return;
    out.add(ucum);
    // µ is the glyph OCR gets wrong most: "pmol/L" or "nmol/L" may be µmol/L.
    if (/^[pn](mol|g)\//.test(ucum) && !/[µμ]/.test(printed)) add('u' + ucum.slice(1));
  };
  add(parseUnit(printed));
  const key = unitKey(printed);
  const garbledPower = /^[x*]?1[0o][^/]{0,4}\/?(l|ul)$/.exec(key);
  if (garbledPower && key.length <= 10) {
    for (const ucum of garbledPower[1] === 'l' ? ['10*9/L', '10*12/L'] : ['10*3/uL', '10*6/uL']) out.add(ucum);
  }
  const fixed = key
    .replace(/(?<=[a-z/])1(?![.\d])|1(?=[a-z/])/g, 'l')
    .replace(/(?<=[a-z])0|0(?=[a-z])/g, 'o')
    .replace(/^pu/, 'u')
    .replace(/\?$/, '2');
  const variants = [fixed, fixed.replace(/^[pn](?=g\/)/, 'u')];
  // A lost slash: "UL" for U/L, "LL" for L/L, "mgdL" for mg/dL.
  if (!fixed.includes('/')) for (let i = 1; i < fixed.length; i++) variants.push(fixed.slice(0, i) + '/' + fixed.slice(i));
  for (const variant of variants) add(SPELLINGS[variant] ?? parseUnit(variant));
  if (out.size === 0 && key.length >= 3) {
    for (const spelling of Object.keys(SPELLINGS)) {
      const close = spelling.length >= 4 && [key, fixed].some((k) => Math.abs(spelling.length - k.length) <= 1 && withinOneEdit(k, spelling));
      if (close || (spelling.startsWith(key) && spelling.length - key.length <= 2)) add(SPELLINGS[spelling]);
    }
  }
  return [...out];
}

function withinOneEdit(a: string, b: string): boolean {
  if (a === b) return true;
  if (a.length === b.length) {
    let differences = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differences++;
    return differences === 1;
  }
  const [shorter, longer] = a.length < b.length ? [a, b] : [b, a];
  for (let i = 0; i < longer.length; i++) {
    if (longer.slice(0, i) + longer.slice(i + 1) === shorter) return true;
  }
  return false;
}

/** What converting needs to know about the analyte. */
export interface ConversionContext {
  /** g/mol, for mass ↔ amount concentration. */
  molarMass?: number;
  /** g/mol of a ratio's denominator (creatinine in an albumin/creatinine ratio), for mg/g ↔ mg/mmol. */
  denominatorMolarMass?: number;
  /** HbA1c is the one analyte whose % (NGSP/DCCT) and mmol/mol (IFCC) are related by an offset. */
  hba1c?: boolean;
}

/**
 * `value` in `from` expressed in `to`, or undefined when the units cannot be converted for this
 * analyte (different dimensions and no molar mass).
 */
export function convertUnit(value: number, from: string, to: string, context: ConversionContext = {}): number | undefined {
  if (from === to) return value;
  const source = UNITS[from];
  const target = UNITS[to];
  if (!source || !target) return undefined;
  if (source.dimension === target.dimension) return (value * source.factor) / target.factor;
  const base = value * source.factor;
  const pair = `${source.dimension}→${target.dimension}`;
  if (context.molarMass) {
    if (pair === 'mass/volume→amount/volume') return base / context.molarMass / target.factor;
    if (pair === 'amount/volume→mass/volume') return (base * context.molarMass) / target.factor;
  }
  if (context.denominatorMolarMass) {
    // g per g of creatinine → g per mol of creatinine: multiply by creatinine's g/mol.
    if (pair === 'mass/mass→mass/amount') return (base * context.denominatorMolarMass) / target.factor;
    if (pair === 'mass/amount→mass/mass') return base / context.denominatorMolarMass / target.factor;
  }
  if (context.hba1c) {
    // IFCC–NGSP master equation: NGSP % = 0.09148 × IFCC mmol/mol + 2.152.
    if (pair === 'fraction→amount/amount') return ((base * 100 - 2.152) / 0.09148) * 1e-3 / target.factor;
    if (pair === 'amount/amount→fraction') return ((0.09148 * (base * 1e3) + 2.152) / 100) / target.factor;
  }
  return undefined;
}

/** Whether a value printed in `from` can be expressed in `to` for this analyte. */
export function canConvert(from: string, to: string, context: ConversionContext = {}): boolean {
  return convertUnit(1, from, to, context) !== undefined;
}
