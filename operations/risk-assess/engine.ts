/**
 * Runs the published instruments and the registered ML models for the requested conditions over
 * patients' records. Everything it reads is declared in inputs.json and in each ML model's features.
 */
import { type Assessment, Facts } from '../../src/risk/assessment.js';
import { type InputSpec, type Inputs, observationCodes, resolveInputs } from '../../src/risk/inputs.js';
import type { PatientRecord } from '../../src/risk/patient-record.js';
import type { ModelRegistry } from '../../src/ml/model-registry.js';
import catalogue from './inputs.json' with { type: 'json' };
import { type ConditionCode, instrumentsFor } from './conditions.js';

const INPUTS = new Map((catalogue.inputs as InputSpec[]).map((spec) => [spec.name, spec]));

/** A named input of the shared catalogue (inputs.json), for other operations that read the same facts. */
export function catalogueSpec(name: string): InputSpec {
  const spec = INPUTS.get(name);
  if (!spec) throw new Error(`operations/risk-assess/inputs.json defines no input "${name}"`);
  return spec;
}

export interface AssessOptions {
  conditions: readonly ConditionCode[];
  asOf: Date;
  lookbackDays: number;
  /** ML contributions (default true); batch jobs, which only store RiskAssessments, skip them. */
  explain?: boolean;
}

export interface PatientAssessments {
  record: PatientRecord;
  inputs: Inputs;
  assessments: Assessment[];
}

/** Every input spec the requested conditions read: the instruments' from inputs.json, the ML models' own. */
export function inputSpecs(models: ModelRegistry, conditions: readonly ConditionCode[]): InputSpec[] {
  const specs = new Map<string, InputSpec>();
  for (const condition of conditions) {
    for (const instrument of instrumentsFor(condition)) {
      for (const name of instrument.inputs) {
        const spec = INPUTS.get(name);
        if (!spec) throw new Error(`${instrument.model} reads input "${name}", which inputs.json does not define`);
        specs.set(name, spec);
      }
    }
    for (const model of models.ml(condition)) {
      for (const feature of model.spec.features) specs.set(`${model.name}:${feature.name}`, feature);
    }
  }
  return [...specs.values()];
}

export function recordCodes(models: ModelRegistry, conditions: readonly ConditionCode[]): string[] {
  return observationCodes(inputSpecs(models, conditions));
}

export async function assessRecords(models: ModelRegistry, records: readonly PatientRecord[], options: AssessOptions): Promise<PatientAssessments[]> {
  const instrumentSpecs = inputSpecs(models, options.conditions).filter((s) => INPUTS.get(s.name) === s);
  const results: PatientAssessments[] = records.map((record) => ({
    record,
    inputs: resolveInputs(instrumentSpecs, record, options),
    assessments: [],
  }));
  for (const condition of options.conditions) {
    for (const instrument of instrumentsFor(condition)) {
      for (const result of results) {
        const facts = new Facts(result.inputs);
        const outcome = instrument.assess(facts);
        const assessment: Assessment = {
          model: instrument.model,
          version: instrument.version,
          title: instrument.title,
          condition: instrument.condition,
          kind: 'published-instrument',
          researchGrade: false,
          inputs: instrument.inputs,
          details: [],
          warnings: [],
          imputed: [],
          ...outcome,
          missing: [...facts.missing],
        };
        models.monitor.record(assessment);
        result.assessments.push(assessment);
      }
    }
    for (const model of models.ml(condition)) {
      // ML features resolve under the model's own names, separately from the instruments' inputs.
      const inputsList = results.map((r) => resolveInputs(model.spec.features, r.record, options));
      const assessments = await model.assess(inputsList, { explain: options.explain ?? true });
      assessments.forEach((assessment, i) => {
        models.monitor.record(assessment, model.row(inputsList[i]));
        for (const [name, input] of inputsList[i]) results[i].inputs.set(`${model.name}:${name}`, { ...input, name: `${model.name}:${name}` });
        results[i].assessments.push(assessment);
      });
    }
  }
  return results;
}
