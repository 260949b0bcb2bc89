/**
 * NEWS2 (Royal College of Physicians, 2017), Chart 1 scoring and Chart 2 thresholds, exactly as
 * published. "Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the
 * assessment of acute-illness severity in the NHS. Updated report of a working party. London: RCP, 2017."
 */

export type Consciousness = 'A' | 'C' | 'V' | 'P' | 'U';

export interface News2Vitals {
  respiratoryRate?: number;
  spo2?: number;
  /** Scale 2 only for confirmed hypercapnic respiratory failure with a prescribed 88–92% target. */
  spo2Scale: 1 | 2;
  onOxygen?: boolean;
  systolic?: number;
  pulse?: number;
  consciousness?: Consciousness;
  temperature?: number;
}

export interface News2Result {
  total: number;
  components: { parameter: string; value: number | string; score: number }[];
  /** Any single parameter scoring 3 ("red score"). */
  singleParameter3: boolean;
  band: 'low' | 'low-medium' | 'medium' | 'high';
  response: string;
  /** Parameters not available: the total is then incomplete (a lower bound). */
  missing: string[];
}

export function respirationScore(rr: number): number {
  if (rr <= 8) return 3;
  if (rr <= 11) return 1;
  if (rr <= 20) return 0;
  if (rr <= 24) return 2;
  return 3;
}

export function spo2Score(spo2: number, scale: 1 | 2, onOxygen: boolean): number {
  if (scale === 1) {
    if (spo2 <= 91) return 3;
    if (spo2 <= 93) return 2;
    if (spo2 <= 95) return 1;
    return 0;
  }
  if (spo2 <= 83) return 3;
  if (spo2 <= 85) return 2;
  if (spo2 <= 87) return 1;
  if (spo2 <= 92 || !onOxygen) return 0;
  if (spo2 <= 94) return 1;
  if (spo2 <= 96) return 2;
  return 3;
}

export function systolicScore(sbp: number): number {
  if (sbp <= 90) return 3;
  if (sbp <= 100) return 2;
  if (sbp <= 110) return 1;
  if (sbp <= 219) return 0;
  return 3;
}

export function pulseScore(pulse: number): number {
  if (pulse <= 40) return 3;
  if (pulse <= 50) return 1;
  if (pulse <= 90) return 0;
  if (pulse <= 110) return 1;
  if (pulse <= 130) return 2;
  return 3;
}

export function temperatureScore(celsius: number): number {
  const t = Math.round(celsius * 10) / 10; // charted to one decimal
  if (t <= 35.0) return 3;
  if (t <= 36.0) return 1;
  if (t <= 38.0) return 0;
  if (t <= 39.0) return 1;
  return 2;
}

const RESPONSE = {
  low: 'Low (0): continue routine NEWS monitoring, minimum 12-hourly.',
  lowAggregate: 'Low (1–4): registered nurse to assess; decide monitoring frequency (minimum 4–6-hourly) and escalation.',
  'low-medium': 'Low–medium (3 in one parameter): registered nurse to inform the medical team for urgent ward-based review; minimum 1-hourly monitoring.',
  medium: 'Medium (5–6): urgent response threshold; registered nurse to inform the medical team immediately and request urgent assessment by a clinician with acute-illness competencies; minimum 1-hourly monitoring.',
  high: 'High (7 or more): emergency response threshold; immediate assessment by a critical-care-competent team, continuous monitoring, consider transfer to level 2/3 care.',
};

export function news2(v: News2Vitals): News2Result {
  const components: News2Result['components'] = [];
  const missing: string[] = [];
  const add = (parameter: string, value: number | string | undefined, score: (x: never) => number): void => {
    if (value === undefined) missing.push(parameter);
    else components.push({ parameter, value, score: score(value as never) });
  };
  add('respiratoryRate', v.respiratoryRate, respirationScore);
  add('spo2', v.spo2, (s: number) => spo2Score(s, v.spo2Scale, v.onOxygen ?? false));
  add('airOrOxygen', v.onOxygen === undefined ? undefined : v.onOxygen ? 'oxygen' : 'air', (o: string) => (o === 'oxygen' ? 2 : 0));
  add('systolic', v.systolic, systolicScore);
  add('pulse', v.pulse, pulseScore);
  add('consciousness', v.consciousness, (c: Consciousness) => (c === 'A' ? 0 : 3));
  add('temperature', v.temperature, temperatureScore);
  const total = components.reduce((s, c) => s + c.score, 0);
  const singleParameter3 = components.some((c) => c.score === 3);
  const band = total >= 7 ? 'high' : total >= 5 ? 'medium' : singleParameter3 ? 'low-medium' : 'low';
  const response = band === 'low' ? (total === 0 ? RESPONSE.low : RESPONSE.lowAggregate) : RESPONSE[band];
  return { total, components, singleParameter3, band, response, missing };
}
