import type { CarePlan, CarePlanActivity, Parameters, Patient, ServiceRequest } from '@medplum/fhirtypes';
import type { OperationContext } from '../../src/fhir/operations.js';
import { loadPatientRecords } from '../../src/risk/patient-record.js';
import { repositorySource, requireRecordAccess } from '../../src/risk/record-source.js';
import { CONDITIONS } from '../risk-assess/conditions.js';
import { assessRecords, recordCodes } from '../risk-assess/engine.js';
import { followUp, lifestyleAdvice, lifestyleInputs, planCodes, stagesFor, testRecommendations } from './plan.js';

const PLAN_IDENTIFIER = 'https://carelens.dev/fhir/care-plan';
const LOINC = 'http://loinc.org';

/**
 * Patient/[id]/$recommend: stage-based tests (done / due / overdue), lifestyle guidance adapted to
 * stated preferences and a follow-up interval, as a CarePlan whose tests to order are contained
 * ServiceRequests (draft, proposal): proposed, never ordered. Saved per patient (new version when changed).
 */
export async function handler(ctx: OperationContext): Promise<Parameters> {
  requireRecordAccess(ctx.router, ctx.request.access, { creates: ['CarePlan'], updates: ['CarePlan'] });
  const asOf = new Date();
  const patient = (await ctx.router.repo.read('Patient', ctx.id!, ctx.router.db(ctx.scope))).resource as Patient;
  const models = ctx.platform.models;
  const codes = [...new Set([...planCodes(), ...recordCodes(models, CONDITIONS)])];
  const record = (await loadPatientRecords(repositorySource(ctx.router, ctx.scope), [patient], { observationCodes: codes })).get(patient.id!)!;
  const [risk] = await assessRecords(models, [record], { conditions: CONDITIONS, asOf, lookbackDays: 730, explain: false });
  const inputs = lifestyleInputs(record, asOf);
  const tests = testRecommendations(record, stagesFor(risk.assessments, inputs), asOf);
  const advice = lifestyleAdvice(inputs);
  const follow = followUp(risk.assessments);
  const subject = { reference: `Patient/${patient.id}` };
  const toOrder = tests.filter((t) => t.status !== 'done');
  const contained: ServiceRequest[] = toOrder.map(({ test, status, last }) => ({
    resourceType: 'ServiceRequest',
    id: `sr-${test.id}`,
    status: 'draft',
    intent: 'proposal',
    subject,
    code: { coding: [{ system: LOINC, code: test.orderCode }], text: test.display },
    reasonCode: [{ text: last ? `${status}: last result ${last.date.slice(0, 10)}` : `${status}: no result on record` }],
  }));
  const followUpEnd = new Date(asOf.getTime());
  followUpEnd.setUTCMonth(followUpEnd.getUTCMonth() + follow.months);
  const activity: CarePlanActivity[] = [
    ...tests.map(({ test, status, last }): CarePlanActivity =>
      status === 'done'
        ? { detail: { kind: 'ServiceRequest', code: { coding: [{ system: LOINC, code: test.orderCode }], text: test.display }, status: 'completed', description: `Done: last result ${last!.date.slice(0, 10)}` } }
        : { reference: { reference: `#sr-${test.id}` } },
    ),
    ...advice.map(({ topic, advice: text }): CarePlanActivity => ({ detail: { code: { text: topic }, status: 'not-started', description: text } })),
    { detail: { kind: 'Appointment', code: { text: 'Follow-up review' }, status: 'not-started', description: follow.reason, scheduledPeriod: { start: asOf.toISOString(), end: followUpEnd.toISOString() } } },
  ];
  const plan: CarePlan = {
    resourceType: 'CarePlan',
    identifier: [{ system: PLAN_IDENTIFIER, value: `Patient/${patient.id}|recommendations` }],
    status: 'draft',
    intent: 'proposal',
    title: 'Personalised recommendations',
    description: 'Tests, lifestyle guidance and follow-up proposed by carelens from the record and risk profile; nothing here is ordered.',
    subject,
    created: asOf.toISOString(),
    ...(contained.length > 0 && { contained }),
    activity,
  };
  const stored = await ctx.router.write(ctx.scope, async (w) => {
    const existing = await ctx.router.repo.search(
      { ...ctx.router.parseSearch('CarePlan', [['patient', `Patient/${patient.id}`], ['identifier', `${PLAN_IDENTIFIER}|Patient/${patient.id}|recommendations`]], false), count: 2, offset: 0 },
      w.tx,
    );
    const current = existing[0]?.resource as (CarePlan & { id: string }) | undefined;
    const essence = (p: CarePlan): string => JSON.stringify([p.contained, p.activity?.map((a) => ({ ...a, detail: a.detail && { ...a.detail, scheduledPeriod: undefined } }))]);
    if (current && essence(current) === essence(plan)) return current;
    const written = current ? (await w.update({ ...plan, id: current.id })).stored : await w.create(plan);
    await ctx.router.checkWritten(ctx.request, written, current ? 'u' : 'c', w);
    return written.resource as CarePlan & { id: string };
  });
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'carePlan', resource: stored },
      ...tests.map(({ test, status, last }) => ({
        name: 'test',
        part: [
          { name: 'id', valueString: test.id },
          { name: 'display', valueString: test.display },
          { name: 'stage', valueInteger: test.stage },
          { name: 'status', valueCode: status },
          ...(last ? [{ name: 'lastResult', valueReference: { reference: last.reference } }, { name: 'lastDate', valueDateTime: last.date }] : []),
        ],
      })),
      ...advice.map((a) => ({ name: 'lifestyle', part: [{ name: 'topic', valueCode: a.topic }, { name: 'advice', valueString: a.advice }] })),
      { name: 'followUp', part: [{ name: 'months', valueInteger: follow.months }, { name: 'reason', valueString: follow.reason }] },
    ],
  };
}
