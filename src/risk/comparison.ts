/** A numeric condition in declarative rules (triage rules, lifestyle advice): all given bounds must hold. */
export interface Comparison {
  gte?: number;
  gt?: number;
  lte?: number;
  lt?: number;
  eq?: number;
}

export function satisfies(value: number, c: Comparison): boolean {
  return (
    (c.gte === undefined || value >= c.gte) &&
    (c.gt === undefined || value > c.gt) &&
    (c.lte === undefined || value <= c.lte) &&
    (c.lt === undefined || value < c.lt) &&
    (c.eq === undefined || value === c.eq)
  );
}
