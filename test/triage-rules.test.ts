import { news2, pulseScore, respirationScore, spo2Score, systolicScore, temperatureScore } from '../operations/triage/news2.js';
import { allRules, triage, type Presentation } from '../operations/triage/triage.js';
import { PhraseMatcher } from '../src/text/phrase-matcher.js';

/**
 * NEWS2 against the RCP 2017 Chart 1 at every band boundary, and each red-flag rule with a
 * positive, a negated and a misspelled presentation.
 */

describe('NEWS2 Chart 1 band boundaries (RCP 2017)', () => {
  test.each([
    [8, 3], [9, 1], [11, 1], [12, 0], [20, 0], [21, 2], [24, 2], [25, 3],
  ])('respiration rate %s → %s', (rr, score) => expect(respirationScore(rr)).toBe(score));
  test.each([
    [91, 3], [92, 2], [93, 2], [94, 1], [95, 1], [96, 0], [100, 0],
  ])('SpO2 scale 1: %s%% → %s', (spo2, score) => expect(spo2Score(spo2, 1, false)).toBe(score));
  test.each([
    [83, false, 3], [84, false, 2], [85, false, 2], [86, false, 1], [87, false, 1], [88, false, 0], [92, false, 0],
    [93, false, 0], [97, false, 0], [93, true, 1], [94, true, 1], [95, true, 2], [96, true, 2], [97, true, 3],
  ])('SpO2 scale 2: %s%%, on oxygen %s → %s', (spo2, oxygen, score) => expect(spo2Score(spo2, 2, oxygen)).toBe(score));
  test.each([
    [90, 3], [91, 2], [100, 2], [101, 1], [110, 1], [111, 0], [219, 0], [220, 3],
  ])('systolic %s → %s', (sbp, score) => expect(systolicScore(sbp)).toBe(score));
  test.each([
    [40, 3], [41, 1], [50, 1], [51, 0], [90, 0], [91, 1], [110, 1], [111, 2], [130, 2], [131, 3],
  ])('pulse %s → %s', (pulse, score) => expect(pulseScore(pulse)).toBe(score));
  test.each([
    [35.0, 3], [35.1, 1], [36.0, 1], [36.1, 0], [38.0, 0], [38.1, 1], [39.0, 1], [39.1, 2],
  ])('temperature %s → %s', (t, score) => expect(temperatureScore(t)).toBe(score));

  const normal = { respiratoryRate: 16, spo2: 97, spo2Scale: 1 as const, onOxygen: false, systolic: 120, pulse: 70, consciousness: 'A' as const, temperature: 37 };
  test('aggregate bands: 0 low, 1–4 low, a single 3 low-medium, 5–6 medium, ≥7 high; oxygen scores 2; new confusion scores 3', () => {
    expect(news2(normal)).toMatchObject({ total: 0, band: 'low', singleParameter3: false, missing: [] });
    expect(news2({ ...normal, pulse: 95 })).toMatchObject({ total: 1, band: 'low' });
    expect(news2({ ...normal, consciousness: 'C' })).toMatchObject({ total: 3, band: 'low-medium', singleParameter3: true });
    expect(news2({ ...normal, onOxygen: true, respiratoryRate: 22, pulse: 95 })).toMatchObject({ total: 5, band: 'medium' });
    expect(news2({ ...normal, respiratoryRate: 24, spo2: 91, pulse: 112, temperature: 38.4 })).toMatchObject({ total: 2 + 3 + 2 + 1, band: 'high' });
    expect(news2({ spo2Scale: 1, pulse: 120 })).toMatchObject({ total: 2, missing: ['respiratoryRate', 'spo2', 'airOrOxygen', 'systolic', 'consciousness', 'temperature'] });
  });
});

const complaint = (text: string): Presentation => ({ text: [text], values: new Map(), spo2Scale: 1 });
const firedIds = (text: string): string[] => triage(complaint(text)).fired.map((f) => f.rule.id);

describe('red-flag rules: positive, negated, misspelled', () => {
  test.each([
    ['chest-pain', 'Crushing chest pain for the last hour, sweaty', 'Cough for a week, no chest pain', 'chets pain going down my left arm'],
    ['stroke-fast', 'Her face is drooping and she has slurred speech', 'Denies arm weakness or slurred speech', 'sudden slurred speach this morning'],
    ['sepsis-red-flag-symptoms', 'Mottled skin and feels awful', 'No mottled skin, warm peripheries', 'motled skin on the legs'],
    ['anaphylaxis', 'Tongue swelling after eating peanuts', 'No throat swelling after the bee sting', 'I think this is anaphylaxsis'],
    ['breathing-difficulty', 'Struggling to breathe since last night', 'Not struggling to breathe at rest', 'strugling to breathe'],
    ['suicidal-ideation', 'I want to end my life', 'Denies suicidal thoughts', 'feeling suicdal lately'],
    ['open-fracture', 'Fell off bike, bone sticking out of the shin', 'Wrist injury, no bone sticking out', 'looks like a compund fracture'],
    ['severe-deformity', 'Obvious deformity of the wrist after the fall', 'No obvious deformity of the ankle', 'obvius deformity of the forearm'],
    ['compartment-syndrome', 'Pain out of proportion to the injury in the calf', 'There is no pain out of proportion', 'compartmant syndrome suspected'],
    ['cauda-equina', 'Saddle numbness and new bladder problems', 'Back pain, denies saddle numbness', 'sadle numbness since yesterday'],
    ['neurovascular-compromise', 'After the fall the cold pale foot will not warm up', 'No cold pale foot, pulses present', 'there is no pluse in the foot after the cast'],
    ['septic-arthritis', 'Hot swollen knee since yesterday', 'Fever, but no joint pain', 'hot swolen joint and feverish'],
    ['high-energy-trauma', 'He fell from a ladder at work', 'Minor bump, no car crash', 'motorbike acident on the way home'],
    ['breast-red-flags', 'Found a lump in my breast last week', 'No breast lump on self-examination', 'new nipple retracton on the left'],
  ])('%s', (rule, positive, negated, misspelled) => {
    expect(allRules().some((r) => r.id === rule)).toBe(true);
    expect(firedIds(positive)).toContain(rule);
    expect(firedIds(negated)).not.toContain(rule);
    expect(firedIds(misspelled)).toContain(rule);
  });

  test('the most urgent rule sets urgency and time to action; negated phrases are reported, not fired', () => {
    const red = triage(complaint('Crushing chest pain and a lump in my breast'));
    expect(red.urgency).toBe('RED');
    expect(red.timeToAction).toBe('Call emergency services now');
    expect(red.specialties).toEqual(expect.arrayContaining(['cardiology', 'breast surgery (suspected-cancer pathway)']));
    const amber = triage(complaint('lump in my breast'));
    expect(amber.urgency).toBe('AMBER');
    expect(amber.timeToAction).toMatch(/within 2 weeks/);
    const calm = triage(complaint('No chest pain, no shortness of breath, just a sore throat'));
    expect(calm.urgency).toBe('GREEN');
    expect(calm.negated).toContain('chest pain');
  });

  test('context from the record: fever while immunosuppressed is RED; a head injury on an anticoagulant is AMBER, without one GREEN', () => {
    const values = (v: Record<string, number>): Map<string, number> => new Map(Object.entries(v));
    const ids = (text: string, v: Record<string, number>): string[] => triage({ text: [text], values: values(v), spo2Scale: 1 }).fired.map((f) => f.rule.id);
    expect(ids('feeling shivery', { immunosuppressed: 1 })).toContain('fever-immunosuppressed');
    expect(ids('no fever', { immunosuppressed: 1 })).not.toContain('fever-immunosuppressed');
    expect(ids('feeling shivery', { immunosuppressed: 0 })).not.toContain('fever-immunosuppressed');
    expect(ids('', { immunosuppressed: 1, temperature: 38.3 })).toContain('fever-immunosuppressed');
    const anticoagulated = triage({ text: ['I banged my head on a cupboard'], values: values({ anticoagulated: 1 }), spo2Scale: 1 });
    expect(anticoagulated.urgency).toBe('AMBER');
    expect(anticoagulated.timeToAction).toMatch(/CT head within 8 hours/);
    expect(triage({ text: ['I banged my head on a cupboard'], values: values({ anticoagulated: 0 }), spo2Scale: 1 }).urgency).toBe('GREEN');
  });

  test('vital-sign rules: sepsis high-risk criteria need a sign of infection; NEWS2 ≥7 is RED', () => {
    const values = (v: Record<string, number>): Map<string, number> => new Map(Object.entries(v));
    expect(triage({ text: ['fever and rigors'], values: values({ pulse: 135 }), spo2Scale: 1 }).fired.map((f) => f.rule.id)).toContain('sepsis-high-risk-vitals');
    expect(triage({ text: ['ran for the bus'], values: values({ pulse: 135 }), spo2Scale: 1 }).fired.map((f) => f.rule.id)).not.toContain('sepsis-high-risk-vitals');
    const sick = triage({ text: [], values: values({ respiratoryRate: 24, spo2: 91, systolic: 125, pulse: 112, temperature: 38.4 }), consciousness: 'A', onOxygen: false, spo2Scale: 1 });
    expect(sick.news2.total).toBe(8);
    expect(sick.urgency).toBe('RED');
    expect(sick.fired.map((f) => f.rule.id)).toContain('news2-high');
  });
});

test('phrase matching: clause boundaries end negation, pseudo-negations do not negate', () => {
  const m = new PhraseMatcher(['chest pain']);
  expect(m.find('no fever, chest pain since morning')[0].negated).toBe(false);
  expect(m.find('no cough but chest pain on exertion')[0].negated).toBe(false);
  expect(m.find('chest pain ruled out')[0].negated).toBe(true);
  expect(m.find('not only chest pain but also nausea')[0].negated).toBe(false);
});
