/**
 * FHIR values as ranges. A date "2024-03" means the whole of March 2024 and a number "100"
 * means [99.5, 100.5): search compares ranges, so precision semantics fall out of simple
 * comparisons (FHIR R4 §3.1.1.5.x "Search on date / number").
 */

/** Half-open [low, high) range of instants as ISO strings. */
export interface DateRange {
  low: string;
  high: string;
}

export const MIN_INSTANT = '0001-01-01T00:00:00.000Z';
export const MAX_INSTANT = '9999-12-31T23:59:59.999Z';

const DATE_RE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** Parses a FHIR date, dateTime or instant (or a search parameter date value) into its range; undefined if malformed. */
export function dateRange(value: string): DateRange | undefined {
  const m = DATE_RE.exec(value);
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = mo ? Number(mo) - 1 : 0;
  const day = d ? Number(d) : 1;
  if (month > 11 || day < 1 || day > 31 || (h && (Number(h) > 23 || Number(mi) > 59 || (s && Number(s) > 59)))) {
    return undefined;
  }
  // No time zone: the spec leaves it to the server; carelens reads such values as UTC.
  const offsetMinutes = tz && tz !== 'Z' ? (tz[0] === '-' ? -1 : 1) * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) : 0;
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  const start = Date.UTC(year, month, day, h ? Number(h) : 0, mi ? Number(mi) : 0, s ? Number(s) : 0, ms) - offsetMinutes * 60_000;
  const startDate = new Date(start);
  if (startDate.getUTCDate() !== day && !h) {
    return undefined; // e.g. 2023-02-30
  }
  let end: number;
  if (!mo) {
    end = Date.UTC(year + 1, 0, 1);
  } else if (!d) {
    end = Date.UTC(year, month + 1, 1);
  } else if (!h) {
    end = Date.UTC(year, month, day + 1);
  } else if (!s) {
    end = start + 60_000;
  } else if (!frac) {
    end = start + 1000;
  } else {
    end = start + 1;
  }
  if (year < 1) {
    return undefined;
  }
  return { low: new Date(start).toISOString(), high: new Date(end).toISOString() };
}

/** Half-open [low, high) range implied by a decimal's written precision. */
export interface NumberRange {
  value: number;
  low: number;
  high: number;
}

export function numberRange(text: string): NumberRange | undefined {
  const m = /^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) {
    return undefined;
  }
  const value = Number(text);
  const decimals = m[3]?.length ?? 0;
  const exponent = m[4] ? Number(m[4]) : 0;
  const half = 0.5 * 10 ** (exponent - decimals);
  return { value, low: value - half, high: value + half };
}

/** UCUM base units for the prefixes and atoms clinical data uses, for unit-independent quantity search. */
const PREFIXES: Record<string, number> = { '': 1, k: 1e3, h: 1e2, da: 1e1, d: 1e-1, c: 1e-2, m: 1e-3, u: 1e-6, n: 1e-9, p: 1e-12, f: 1e-15 };
const ATOMS: Record<string, { factor: number; base: string }> = {
  g: { factor: 1, base: 'g' },
  L: { factor: 1, base: 'L' },
  l: { factor: 1, base: 'L' },
  m: { factor: 1, base: 'm' },
  mol: { factor: 1, base: 'mol' },
  eq: { factor: 1, base: 'eq' },
  s: { factor: 1, base: 's' },
  min: { factor: 60, base: 's' },
  h: { factor: 3600, base: 's' },
  '[lb_av]': { factor: 453.59237, base: 'g' },
  '[oz_av]': { factor: 28.349523125, base: 'g' },
  '[in_i]': { factor: 0.0254, base: 'm' },
  '[ft_i]': { factor: 0.3048, base: 'm' },
};

const METRIC_ATOMS = new Set(['g', 'L', 'l', 'm', 'mol', 'eq', 's']);

function atomFactor(unit: string): { factor: number; base: string } | undefined {
  if (unit === '1' || unit === '') {
    return { factor: 1, base: '1' };
  }
  if (ATOMS[unit]) {
    return ATOMS[unit];
  }
  for (const [prefix, scale] of Object.entries(PREFIXES)) {
    const atom = unit.slice(prefix.length);
    if (prefix && unit.startsWith(prefix) && METRIC_ATOMS.has(atom)) {
      return { factor: scale * ATOMS[atom].factor, base: ATOMS[atom].base };
    }
  }
  return undefined;
}

/** Converts a UCUM quantity to base units ("mg/dL" → "g/L"); undefined for units outside the table. */
export function canonicalQuantity(value: number, unit: string): { value: number; unit: string } | undefined {
  const parts = unit.split('/');
  if (parts.length > 2) {
    return undefined;
  }
  const num = atomFactor(parts[0]);
  const den = parts.length === 2 ? atomFactor(parts[1]) : { factor: 1, base: '' };
  if (!num || !den) {
    return undefined;
  }
  const canonicalUnit = den.base ? `${num.base}/${den.base}` : num.base;
  return { value: (value * num.factor) / den.factor, unit: canonicalUnit };
}
