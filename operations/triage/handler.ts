import type { Communication, Flag, Parameters, ParametersParameter, Patient, RiskAssessment } from '@medplum/fhirtypes';
import { badRequest } from '../../src/fhir/outcome.js';
import { booleanParam, numberParam, type OperationContext, paramValue } from '../../src/fhir/operations.js';
import { type InputSpec, observationCodes, resolveInputs } from '../../src/risk/inputs.js';
import { postedResources, repositorySource, requireRecordAccess } from '../../src/risk/record-source.js';
import { loadPatientRecords, type PatientRecord, recordFromResources } from '../../src/risk/patient-record.js';
import type { Consciousness } from './news2.js';
import { catalogueSpec } from '../risk-assess/engine.js';
import catalogue from './inputs.json' with { type: 'json' };
import { type Presentation, triage, type TriageResult, type Urgency } from './triage.js';

/** Where triage reads vital signs and context in a record (also used by the encounter-start CDS service). */
export const TRIAGE_INPUTS: InputSpec[] = [...(catalogue.inputs as InputSpec[]), catalogueSpec('age'), catalogueSpec('pregnant')];
const URGENCY_SYSTEM = 'https://carelens.dev/fhir/CodeSystem/triage-urgency';
const DECISION_SUPPORT = 'https://carelens.dev/fhir/CodeSystem/decision-support';
const MODEL_SYSTEM = 'https://carelens.dev/fhir/CodeSystem/risk-model';
const RISK: Record<Urgency, 'high' | 'moderate' | 'low'> = { RED: 'high', AMBER: 'moderate', GREEN: 'low' };
const NUMERIC = ['respiratoryRate', 'spo2', 'systolic', 'pulse', 'temperature', 'painScore', 'age'] as const;
const DEFAULT_LOOKBACK_HOURS = 24;

/**
 * Patient/[id]/$triage: the stored record's latest vital signs and conditions plus the posted
 * presentation; the result is saved (RiskAssessment, and for RED a Flag and a Communication to the
 * care team). Patient/$triage: the presentation alone (optionally with resources), nothing saved.
 */
export async function handler(ctx: OperationContext): Promise<Parameters> {
  requireRecordAccess(ctx.router, ctx.request.access);
  const lookbackHours = numberParam(ctx.params, 'lookbackHours') ?? DEFAULT_LOOKBACK_HOURS;
  if (!(lookbackHours > 0 && lookbackHours <= 24 * 365)) throw badRequest('lookbackHours must be between 1 and 8760', 'lookbackHours');
  let record: PatientRecord | undefined;
  if (ctx.level === 'instance') {
    requireRecordAccess(ctx.router, ctx.request.access, { creates: ['RiskAssessment', 'Flag', 'Communication'] });
    const patient = (await ctx.router.repo.read('Patient', ctx.id!, ctx.router.db(ctx.scope))).resource as Patient;
    const records = await loadPatientRecords(repositorySource(ctx.router, ctx.scope), [patient], { observationCodes: observationCodes(TRIAGE_INPUTS) });
    record = records.get(patient.id!);
  } else {
    const posted = postedResources('POST Patient/$triage', ctx.bodyResource, ctx.params);
    if (posted.length > 0) {
      const built = recordFromResources(posted.some((r) => r.resourceType === 'Patient') ? posted : [{ resourceType: 'Patient' }, ...posted]);
      if (typeof built === 'string') throw badRequest(built);
      record = built;
    }
  }
  const asOf = new Date();
  const inputs = record ? resolveInputs(TRIAGE_INPUTS, record, { asOf, lookbackDays: lookbackHours / 24 }) : new Map();
  const presentation = presentationOf(ctx.params, inputs);
  if (presentation.text.length === 0 && presentation.values.size === 0) {
    throw badRequest('Nothing to triage: give a complaint, symptoms or vital signs (or call it on a patient with recent vital signs)');
  }
  const result = triage(presentation);
  const basis = [...new Set([...inputs.values()].flatMap((i) => i.basis).filter((b) => b.startsWith('Observation/')))];
  const saved = ctx.level === 'instance' ? await save(ctx, record!.patient, result, basis, asOf) : [];
  return { resourceType: 'Parameters', parameter: [...resultParts(result), ...saved] };
}

/** The presentation: posted values over the record's. */
export function presentationOf(params: Parameters, inputs: Map<string, { value?: number | string }>): Presentation {
  const values = new Map<string, number>();
  for (const [name, input] of inputs) if (typeof input.value === 'number') values.set(name, input.value);
  for (const name of NUMERIC) {
    const given = numberParam(params, name);
    if (given !== undefined) values.set(name, given);
  }
  const pregnant = booleanParam(params, 'pregnant');
  if (pregnant !== undefined) values.set('pregnant', pregnant ? 1 : 0);
  const text = (params.parameter ?? [])
    .filter((p) => p.name === 'complaint' || p.name === 'symptom')
    .map((p) => p.valueString ?? p.valueCodeableConcept?.text ?? p.valueCodeableConcept?.coding?.map((c) => c.display).join(', ') ?? p.valueCoding?.display)
    .filter((t): t is string => Boolean(t));
  const consciousness = stringParam(params, 'consciousness')?.toUpperCase();
  if (consciousness !== undefined && !['A', 'C', 'V', 'P', 'U'].includes(consciousness)) {
    throw badRequest('consciousness must be one of A, C, V, P, U (ACVPU)', 'consciousness');
  }
  const scale = numberParam(params, 'spo2Scale');
  if (scale !== undefined && scale !== 1 && scale !== 2) throw badRequest('spo2Scale must be 1 or 2', 'spo2Scale');
  const flow = values.get('oxygenFlow');
  return {
    text,
    values,
    consciousness: consciousness as Consciousness | undefined,
    onOxygen: booleanParam(params, 'onOxygen') ?? (flow === undefined ? undefined : flow > 0),
    spo2Scale: (scale ?? (values.get('hypercapnicFailure') === 1 ? 2 : 1)) as 1 | 2,
  };
}

function resultParts(r: TriageResult): ParametersParameter[] {
  return [
    { name: 'urgency', valueCoding: { system: URGENCY_SYSTEM, code: r.urgency } },
    { name: 'timeToAction', valueString: r.timeToAction },
    ...r.fired.map((f) => ({
      name: 'reason',
      part: [
        { name: 'rule', valueString: f.rule.id },
        { name: 'urgency', valueCode: f.rule.urgency },
        { name: 'message', valueString: f.rule.message },
        { name: 'source', valueString: f.rule.source },
        ...f.evidence.map((e) => ({ name: 'evidence', valueString: e })),
      ],
    })),
    ...r.specialties.map((s) => ({ name: 'specialty', valueString: s })),
    ...r.safetyNetting.map((s) => ({ name: 'safetyNetting', valueString: s })),
    ...r.negated.map((s) => ({ name: 'negated', valueString: s })),
    ...r.warnings.map((s) => ({ name: 'warning', valueString: s })),
    ...(r.news2.components.length === 0
      ? []
      : [
          {
            name: 'news2',
            part: [
              { name: 'total', valueInteger: r.news2.total },
              { name: 'band', valueCode: r.news2.band },
              { name: 'response', valueString: r.news2.response },
              ...r.news2.components.map((c) => ({
                name: 'component',
                part: [
                  { name: 'parameter', valueString: c.parameter },
                  typeof c.value === 'number' ? { name: 'value', valueDecimal: c.value } : { name: 'value', valueString: c.value },
                  { name: 'score', valueInteger: c.score },
                ],
              })),
              ...r.news2.missing.map((m) => ({ name: 'missing', valueString: m })),
            ],
          },
        ]),
  ];
}

/** The RiskAssessment, and for RED a Flag and a Communication to the care team, in one transaction. */
async function save(ctx: OperationContext, patient: Patient, r: TriageResult, basis: string[], asOf: Date): Promise<ParametersParameter[]> {
  const subject = { reference: `Patient/${patient.id}` };
  const reasons = r.fired.map((f) => f.rule.message);
  return ctx.router.write(ctx.scope, async (w) => {
    const assessment: RiskAssessment = {
      resourceType: 'RiskAssessment',
      status: 'final',
      subject,
      occurrenceDateTime: asOf.toISOString(),
      code: { coding: [{ system: DECISION_SUPPORT, code: 'triage', display: 'Triage' }] },
      method: { coding: [{ system: MODEL_SYSTEM, code: 'carelens-triage-rules', display: 'carelens triage rules (NEWS2 and red-flag lexicons)' }] },
      ...(basis.length > 0 && { basis: basis.map((reference) => ({ reference })) }),
      prediction: [
        {
          outcome: { coding: [{ system: URGENCY_SYSTEM, code: r.urgency }], text: `Triage ${r.urgency}: ${r.timeToAction}` },
          qualitativeRisk: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/risk-probability', code: RISK[r.urgency] }] },
          rationale: reasons.length > 0 ? reasons.join('; ') : 'No red or amber criteria met',
        },
      ],
      mitigation: [r.timeToAction, ...r.specialties.map((s) => `Refer: ${s}`)].join('. '),
      note: r.safetyNetting.map((text) => ({ text })),
    };
    const stored = await w.create(assessment);
    await ctx.router.checkWritten(ctx.request, stored, 'c', w);
    const parts: ParametersParameter[] = [{ name: 'riskAssessment', valueReference: { reference: `RiskAssessment/${stored.id}` } }];
    if (r.urgency === 'RED') {
      const flag = await w.create<Flag>({
        resourceType: 'Flag',
        status: 'active',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/flag-category', code: 'clinical', display: 'Clinical' }] }],
        code: { coding: [{ system: URGENCY_SYSTEM, code: 'RED' }], text: `RED triage: ${reasons.join('; ')}` },
        subject,
        period: { start: asOf.toISOString() },
      });
      await ctx.router.checkWritten(ctx.request, flag, 'c', w);
      const message = await w.create<Communication>({
        resourceType: 'Communication',
        status: 'completed',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/communication-category', code: 'alert', display: 'Alert' }] }],
        priority: 'stat',
        subject,
        about: [{ reference: `RiskAssessment/${stored.id}` }, { reference: `Flag/${flag.id}` }],
        ...(patient.generalPractitioner && { recipient: patient.generalPractitioner }),
        sent: asOf.toISOString(),
        payload: [{ contentString: `RED triage: ${reasons.join('; ')}. Action: ${r.timeToAction}.${r.specialties.length > 0 ? ` Refer: ${r.specialties.join(', ')}.` : ''}` }],
      });
      await ctx.router.checkWritten(ctx.request, message, 'c', w);
      parts.push({ name: 'flag', valueReference: { reference: `Flag/${flag.id}` } }, { name: 'communication', valueReference: { reference: `Communication/${message.id}` } });
    }
    return parts;
  });
}

function stringParam(params: Parameters, name: string): string | undefined {
  const value = paramValue(params, name);
  return typeof value === 'string' ? value : undefined;
}
