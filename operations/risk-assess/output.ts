/** Assessments as FHIR: a RiskAssessment per patient and condition (a prediction per model), and the operation's Parameters. */
import type { ParametersParameter, RiskAssessment } from '@medplum/fhirtypes';
import type { Assessment } from '../../src/risk/assessment.js';
import type { Inputs } from '../../src/risk/inputs.js';
import { CONDITION_DISPLAY, type ConditionCode } from './conditions.js';
import { round } from './instruments/instrument.js';

export const ASSESSMENT_IDENTIFIER = 'https://carelens.dev/fhir/risk-assessment';
export const CONDITION_SYSTEM = 'https://carelens.dev/fhir/CodeSystem/risk-condition';
export const MODEL_SYSTEM = 'https://carelens.dev/fhir/CodeSystem/risk-model';
export const MODEL_GRADE_SYSTEM = 'https://carelens.dev/fhir/CodeSystem/model-grade';
export const INTERVAL_EXTENSION = 'https://carelens.dev/fhir/StructureDefinition/probability-interval';
export const MODEL_CARD_EXTENSION = 'https://carelens.dev/fhir/StructureDefinition/model-card';
const RISK_PROBABILITY = 'http://terminology.hl7.org/CodeSystem/risk-probability';

/** The inputs an assessment read, keyed as the engine stored them (ML features under "model:feature"). */
function inputsOf(assessment: Assessment, inputs: Inputs): ReturnType<Inputs['get']>[] {
  return assessment.inputs.map((name) => inputs.get(assessment.kind === 'ml-ensemble' ? `${assessment.model}:${name}` : name)).filter(Boolean);
}

export function identifierValue(patientId: string, condition: string): string {
  return `Patient/${patientId}|${condition}`;
}

export const MODEL_EXTENSION = 'https://carelens.dev/fhir/StructureDefinition/risk-model';
export const RESEARCH_GRADE_EXTENSION = 'https://carelens.dev/fhir/StructureDefinition/research-grade';

/**
 * The RiskAssessment of one patient and condition: one prediction per model that gave a result,
 * primary first (published instruments before research-grade models). `method` and the model card
 * are the primary's; each prediction names its own model, interval and grade.
 */
export function riskAssessment(patientId: string, assessments: readonly Assessment[], inputs: Inputs, asOf: Date, cardBase: string): RiskAssessment {
  const [primary] = assessments;
  const basis = [...new Set(assessments.flatMap((a) => inputsOf(a, inputs).flatMap((i) => i!.basis)).filter((b) => !b.startsWith('Patient/')))];
  return {
    resourceType: 'RiskAssessment',
    meta: {
      tag: [{ system: MODEL_GRADE_SYSTEM, code: primary.researchGrade ? 'research-grade' : 'published-instrument', display: primary.researchGrade ? 'Research-grade ML model' : 'Published clinical instrument' }],
    },
    extension: [{ url: MODEL_CARD_EXTENSION, valueUri: `${cardBase}/${primary.model}` }],
    identifier: [{ system: ASSESSMENT_IDENTIFIER, value: identifierValue(patientId, primary.condition) }],
    status: 'final',
    subject: { reference: `Patient/${patientId}` },
    occurrenceDateTime: asOf.toISOString(),
    code: { coding: [{ system: CONDITION_SYSTEM, code: primary.condition, display: CONDITION_DISPLAY[primary.condition as ConditionCode] }] },
    method: { coding: [modelCoding(primary)], text: primary.title },
    ...(basis.length > 0 && { basis: basis.map((reference) => ({ reference })) }),
    prediction: assessments.map((assessment) => ({
      extension: [
        { url: MODEL_EXTENSION, valueCoding: modelCoding(assessment) },
        ...(assessment.researchGrade ? [{ url: RESEARCH_GRADE_EXTENSION, valueBoolean: true }] : []),
        ...(assessment.interval
          ? [{ url: INTERVAL_EXTENSION, valueRange: { low: { value: round(assessment.interval.low, 6) }, high: { value: round(assessment.interval.high, 6) } } }]
          : []),
      ],
      outcome: { coding: [assessment.outcome], text: assessment.outcome.display },
      ...(assessment.probability !== undefined && { probabilityDecimal: round(assessment.probability, 6) }),
      ...(assessment.category && { qualitativeRisk: { coding: [{ system: RISK_PROBABILITY, code: assessment.category.risk }], text: assessment.category.display } }),
      ...(assessment.horizonYears !== undefined && { whenRange: { high: { value: assessment.horizonYears, unit: 'years', system: 'http://unitsofmeasure.org', code: 'a' } } }),
      rationale: [assessment.title, assessment.score ? `${assessment.score.display}: ${assessment.score.value}` : undefined, assessment.thresholds].filter(Boolean).join('. '),
    })),
    ...(primary.mitigation && { mitigation: primary.mitigation }),
    ...(assessments.some((a) => a.warnings.length > 0) && { note: assessments.flatMap((a) => a.warnings.map((w) => ({ text: `${a.model}: ${w}` }))) }),
  };
}

function modelCoding(assessment: Assessment): { system: string; code: string; version: string; display: string } {
  return { system: MODEL_SYSTEM, code: assessment.model, version: assessment.version, display: assessment.title };
}

/** Whether two versions say the same thing (ignoring when they were computed). */
export function sameAssessment(a: RiskAssessment, b: RiskAssessment): boolean {
  const essence = (r: RiskAssessment): string => JSON.stringify([r.method, r.basis, r.prediction, r.mitigation, r.note]);
  return essence(a) === essence(b);
}

export function assessmentPart(assessment: Assessment, inputs: Inputs, cardBase: string, riskAssessmentId?: string): ParametersParameter {
  const part: ParametersParameter[] = [
    { name: 'condition', valueCode: assessment.condition },
    { name: 'model', valueString: assessment.model },
    { name: 'version', valueString: assessment.version },
    { name: 'title', valueString: assessment.title },
    { name: 'kind', valueCode: assessment.kind },
    { name: 'researchGrade', valueBoolean: assessment.researchGrade },
    { name: 'status', valueCode: assessment.status },
  ];
  const add = (p: ParametersParameter | false | undefined): void => {
    if (p) part.push(p);
  };
  add(assessment.reason !== undefined && { name: 'reason', valueString: assessment.reason });
  add(assessment.probability !== undefined && { name: 'probability', valueDecimal: round(assessment.probability, 6) });
  add(assessment.horizonYears !== undefined && { name: 'horizonYears', valueInteger: assessment.horizonYears });
  add(assessment.score && { name: 'score', part: [{ name: 'value', valueDecimal: assessment.score.value }, { name: 'display', valueString: assessment.score.display }] });
  add(assessment.category && { name: 'category', valueCoding: { system: `${MODEL_SYSTEM}/${assessment.model}/category`, code: assessment.category.code, display: assessment.category.display } });
  add(assessment.category && { name: 'qualitativeRisk', valueCode: assessment.category.risk });
  add(assessment.thresholds !== undefined && { name: 'thresholds', valueString: assessment.thresholds });
  add(
    assessment.interval && {
      name: 'interval',
      part: [
        { name: 'low', valueDecimal: round(assessment.interval.low, 6) },
        { name: 'high', valueDecimal: round(assessment.interval.high, 6) },
        { name: 'method', valueString: assessment.interval.method },
      ],
    },
  );
  add(!assessment.interval && assessment.intervalNote !== undefined && { name: 'intervalNote', valueString: assessment.intervalNote });
  const explanation = assessment.explanation;
  add(
    explanation && {
      name: 'explanation',
      part: [
        { name: 'method', valueString: explanation.method },
        { name: 'scale', valueString: explanation.scale },
        { name: 'baseline', valueDecimal: round(explanation.baseline, 6) },
        ...explanation.contributions.map((c) => ({
          name: 'contribution',
          part: [
            { name: 'input', valueString: c.input },
            ...(c.value === undefined ? [] : [typeof c.value === 'number' ? { name: 'value', valueDecimal: round(c.value, 6) } : { name: 'value', valueString: c.value }]),
            { name: 'contribution', valueDecimal: round(c.contribution, 6) },
          ],
        })),
      ],
    },
  );
  for (const d of assessment.details) {
    part.push({
      name: 'detail',
      part: [
        { name: 'name', valueString: d.name },
        typeof d.value === 'number' ? { name: 'value', valueDecimal: round(d.value, 6) } : { name: 'value', valueString: d.value },
        ...(d.unit ? [{ name: 'unit', valueString: d.unit }] : []),
      ],
    });
  }
  assessment.missing.forEach((m) => part.push({ name: 'missing', valueString: m }));
  assessment.imputed.forEach((m) => part.push({ name: 'imputed', valueString: m }));
  for (const input of inputsOf(assessment, inputs)) {
    for (const e of input!.excluded) {
      part.push({
        name: 'excluded',
        part: [
          { name: 'input', valueString: input!.name.replace(/^.*:/, '') },
          typeof e.value === 'number' ? { name: 'value', valueDecimal: e.value } : { name: 'value', valueString: e.value },
          ...(e.unit ? [{ name: 'unit', valueString: e.unit }] : []),
          { name: 'reason', valueString: e.reason },
          ...(e.reference ? [{ name: 'source', valueReference: { reference: e.reference } }] : []),
        ],
      });
    }
  }
  assessment.warnings.forEach((w) => part.push({ name: 'warning', valueString: w }));
  add(assessment.mitigation !== undefined && { name: 'mitigation', valueString: assessment.mitigation });
  part.push({ name: 'modelCard', valueUri: `${cardBase}/${assessment.model}` });
  add(riskAssessmentId !== undefined && { name: 'riskAssessment', valueReference: { reference: `RiskAssessment/${riskAssessmentId}` } });
  return { name: 'assessment', part };
}
