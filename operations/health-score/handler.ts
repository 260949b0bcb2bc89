import type { Observation, ObservationComponent, Parameters, Patient } from '@medplum/fhirtypes';
import type { OperationContext } from '../../src/fhir/operations.js';
import { loadPatientRecords } from '../../src/risk/patient-record.js';
import { repositorySource, requireRecordAccess } from '../../src/risk/record-source.js';
import { lifestyleInputs, planCodes, testRecommendations } from '../recommend/plan.js';

const SCORE_SYSTEM = 'https://carelens.dev/fhir/CodeSystem/health-score';
const DAY = 86_400_000;

interface Component {
  name: string;
  display: string;
  score?: number;
  reason: string;
}

/**
 * Patient/[id]/$health-score: a 0–100 health and wellness score from six components (each with a
 * status and a one-line reason, insufficient_data where the record says nothing), saved as an
 * Observation so the trend against the previous score is real.
 */
export async function handler(ctx: OperationContext): Promise<Parameters> {
  requireRecordAccess(ctx.router, ctx.request.access, { alsoRead: ['Encounter'], creates: ['Observation'] });
  const asOf = new Date();
  const patient = (await ctx.router.repo.read('Patient', ctx.id!, ctx.router.db(ctx.scope))).resource as Patient;
  const source = repositorySource(ctx.router, ctx.scope);
  const record = (await loadPatientRecords(source, [patient], { observationCodes: planCodes() })).get(patient.id!)!;
  const inputs = lifestyleInputs(record, asOf);
  const number = (name: string): number | undefined => {
    const v = inputs.get(name)?.value;
    return typeof v === 'number' ? v : undefined;
  };
  const routine = testRecommendations(record, [1], asOf);
  const done = routine.filter((t) => t.status === 'done').length;
  const recentTests = routine.filter((t) => t.last && asOf.getTime() - Date.parse(t.last.date) <= 365 * DAY).length;
  const encounters = await source.search('Encounter', [['patient', `Patient/${patient.id}`], ['_sort', '-date'], ['_count', '1']]);
  const lastVisit = (encounters[0] as { period?: { start?: string } } | undefined)?.period?.start;
  const visitDays = lastVisit ? (asOf.getTime() - Date.parse(lastVisit)) / DAY : undefined;
  const active = number('physically_active');
  const stress = number('stress_level');
  const vegetables = number('daily_vegetables');
  const alcohol = number('alcohol_units_week');
  const components: Component[] = [
    { name: 'screening-compliance', display: 'Screening compliance', score: Math.round((100 * done) / routine.length), reason: `${done} of ${routine.length} routine tests are up to date` },
    active === undefined
      ? { name: 'physical-activity', display: 'Physical activity', reason: 'No activity answer recorded' }
      : { name: 'physical-activity', display: 'Physical activity', score: active === 1 ? 100 : 30, reason: active === 1 ? 'Active for at least 30 minutes a day' : 'Less than 30 minutes of activity a day' },
    stress === undefined
      ? { name: 'stress-relaxation', display: 'Stress and relaxation', reason: 'No stress level recorded' }
      : { name: 'stress-relaxation', display: 'Stress and relaxation', score: Math.round(100 - 10 * stress), reason: `Stress level ${stress} out of 10` },
    vegetables === undefined
      ? { name: 'nutrition', display: 'Nutrition', reason: 'No diet answers recorded' }
      : {
          name: 'nutrition',
          display: 'Nutrition',
          score: Math.max(0, (vegetables === 1 ? 100 : 40) - (alcohol !== undefined && alcohol > 14 ? 20 : 0)),
          reason: `${vegetables === 1 ? 'Vegetables or fruit every day' : 'Not eating vegetables or fruit every day'}${alcohol !== undefined && alcohol > 14 ? '; alcohol above 14 units a week' : ''}`,
        },
    { name: 'regular-health-tests', display: 'Regular health tests', score: Math.round((100 * recentTests) / routine.length), reason: `${recentTests} of ${routine.length} routine test groups resulted in the last year` },
    visitDays === undefined
      ? { name: 'follow-up-adherence', display: 'Follow-up adherence', reason: 'No visits recorded' }
      : { name: 'follow-up-adherence', display: 'Follow-up adherence', score: visitDays <= 365 ? 100 : visitDays <= 730 ? 50 : 10, reason: `Last visit ${lastVisit!.slice(0, 10)}` },
  ];
  const scored = components.filter((c) => c.score !== undefined);
  const overall = Math.round(scored.reduce((s, c) => s + c.score!, 0) / scored.length);
  const code = { coding: [{ system: SCORE_SYSTEM, code: 'health-wellness-score', display: 'Health and wellness score' }], text: 'Health and wellness score' };
  const previous = (await source.search('Observation', [['patient', `Patient/${patient.id}`], ['code', `${SCORE_SYSTEM}|health-wellness-score`], ['_sort', '-date'], ['_count', '1']]))[0] as Observation | undefined;
  const observation: Observation = {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey', display: 'Survey' }] }],
    code,
    subject: { reference: `Patient/${patient.id}` },
    effectiveDateTime: asOf.toISOString(),
    valueInteger: overall,
    component: components.map(
      (c): ObservationComponent => ({
        code: { coding: [{ system: SCORE_SYSTEM, code: c.name, display: c.display }] },
        ...(c.score === undefined ? { dataAbsentReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'unknown' }], text: c.reason } } : { valueInteger: c.score }),
        interpretation: [{ text: c.reason }],
      }),
    ),
  };
  const stored = await ctx.router.write(ctx.scope, async (w) => {
    const written = await w.create(observation);
    await ctx.router.checkWritten(ctx.request, written, 'c', w);
    return written;
  });
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'score', valueInteger: overall },
      ...components.map((c) => ({
        name: 'component',
        part: [
          { name: 'name', valueCode: c.name },
          { name: 'status', valueCode: c.score === undefined ? 'insufficient_data' : 'ok' },
          ...(c.score === undefined ? [] : [{ name: 'score', valueInteger: c.score }]),
          { name: 'reason', valueString: c.reason },
        ],
      })),
      ...(previous?.valueInteger !== undefined
        ? [{ name: 'trend', part: [{ name: 'previousScore', valueInteger: previous.valueInteger }, { name: 'previousDate', valueDateTime: previous.effectiveDateTime! }, { name: 'change', valueInteger: overall - previous.valueInteger }] }]
        : []),
      { name: 'observation', valueReference: { reference: `Observation/${stored.id}` } },
    ],
  };
}
