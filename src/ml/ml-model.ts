/**
 * A research-grade ML ensemble from models/<name>/: logistic regression + gradient-boosted trees run
 * with onnxruntime-node, each Platt-calibrated, averaged in log-odds; a bootstrap ensemble gives the
 * 95% interval; exact linear SHAP and TreeSHAP explain it. model.json is the contract written by
 * models/training (see its README).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { type Assessment, type Contribution, sigmoid } from '../risk/assessment.js';
import type { InputSpec, Inputs } from '../risk/inputs.js';
import { TreeExplainer, type TreeEnsemble } from './tree-shap.js';

export interface Platt {
  a: number;
  b: number;
}

export interface FeatureSpec extends InputSpec {
  required?: boolean;
  /** Training median, used by the logistic regression when the value is missing. */
  impute: number;
  /** Training distribution: 9 inner decile edges and the share of training values per bin. */
  bins: { edges: number[]; expected: number[] };
  /** The values the model was trained on (e.g. adult ages): outside it the model is not applicable. */
  range?: [number, number];
}

export interface MlModelSpec {
  name: string;
  version: string;
  condition: string;
  kind: 'ml-ensemble';
  researchGrade: boolean;
  title: string;
  outcome: string;
  features: FeatureSpec[];
  members: [
    { id: 'lr'; method: string; onnx: string; platt: Platt; linear: { intercept: number; weights: number[]; background: number[] } },
    { id: 'gbt'; method: string; onnx: string; platt: Platt; trees: string },
  ];
  bootstrap: { replicates: number; lr: string; gbt: string; platt: { lr: Platt; gbt: Platt }[] };
  thresholds: { moderate: number; high: number; basis: string };
}

/** SNOMED outcome codes per condition, for RiskAssessment.prediction.outcome. */
const OUTCOMES: Record<string, Assessment['outcome']> = {
  diabetes: { system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes mellitus type 2' },
  cardiovascular: { system: 'http://snomed.info/sct', code: '49601007', display: 'Disorder of cardiovascular system' },
  stroke: { system: 'http://snomed.info/sct', code: '230690007', display: 'Cerebrovascular accident' },
  ckd: { system: 'http://snomed.info/sct', code: '709044004', display: 'Chronic kidney disease' },
  liver: { system: 'http://snomed.info/sct', code: '235856003', display: 'Disorder of liver' },
  anaemia: { system: 'http://snomed.info/sct', code: '271737000', display: 'Anemia' },
  thyroid: { system: 'http://snomed.info/sct', code: '14304000', display: 'Disorder of thyroid gland' },
  'breast-cancer': { system: 'http://snomed.info/sct', code: '254837009', display: 'Malignant neoplasm of breast' },
};

export class MlModel {
  private constructor(
    readonly spec: MlModelSpec,
    private readonly sessions: { lr: ort.InferenceSession; gbt: ort.InferenceSession; lrBoot: ort.InferenceSession; gbtBoot: ort.InferenceSession },
    private readonly explainer: TreeExplainer,
  ) {}

  static async load(dir: string): Promise<MlModel> {
    const spec = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as MlModelSpec;
    const [lr, gbt] = spec.members;
    const open = (file: string): Promise<ort.InferenceSession> => ort.InferenceSession.create(join(dir, file), { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const sessions = {
      lr: await open(lr.onnx),
      gbt: await open(gbt.onnx),
      lrBoot: await open(spec.bootstrap.lr),
      gbtBoot: await open(spec.bootstrap.gbt),
    };
    const trees = JSON.parse(readFileSync(join(dir, gbt.trees), 'utf8')) as TreeEnsemble;
    return new MlModel(spec, sessions, new TreeExplainer(trees));
  }

  get name(): string {
    return this.spec.name;
  }

  /** The feature row: resolved values in feature order, NaN where missing. */
  row(inputs: Inputs): number[] {
    return this.spec.features.map((f) => {
      const value = inputs.get(f.name)?.value;
      return typeof value === 'number' ? value : Number.NaN;
    });
  }

  /** Raw (uncalibrated) margins of the four graphs for many rows at once. */
  async margins(rows: readonly number[][]): Promise<{ lr: Float32Array; gbt: Float32Array; lrBoot: Float32Array; gbtBoot: Float32Array }> {
    const d = this.spec.features.length;
    const data = new Float32Array(rows.length * d);
    rows.forEach((r, i) => data.set(r, i * d));
    const feeds = { X: new ort.Tensor('float32', data, [rows.length, d]) };
    const [lr, gbt, lrBoot, gbtBoot] = await Promise.all([
      this.sessions.lr.run(feeds),
      this.sessions.gbt.run(feeds),
      this.sessions.lrBoot.run(feeds),
      this.sessions.gbtBoot.run(feeds),
    ]);
    return {
      lr: lr.margin.data as Float32Array,
      gbt: gbt.margin.data as Float32Array,
      lrBoot: lrBoot.margins.data as Float32Array,
      gbtBoot: gbtBoot.margins.data as Float32Array,
    };
  }

  /**
   * Assessments for many patients' inputs (one ONNX run per graph for the whole batch). Without
   * `explain` the contributions are left out (batch jobs store RiskAssessments, which carry none).
   */
  async assess(inputsList: readonly Inputs[], { explain = true }: { explain?: boolean } = {}): Promise<Assessment[]> {
    const rows = inputsList.map((inputs) => this.row(inputs));
    const refusals = rows.map((row) => this.refusal(row));
    const runnable = rows.filter((_, i) => !refusals[i]);
    const margins = runnable.length > 0 ? await this.margins(runnable) : undefined;
    let k = 0;
    return rows.map((row, i) => refusals[i] ?? this.predict(row, margins!, k++, explain));
  }

  /** insufficient_data without a required input; not_applicable outside the training range. */
  private refusal(row: number[]): Assessment | undefined {
    const missing = this.spec.features.filter((f, i) => f.required && Number.isNaN(row[i])).map((f) => f.name);
    const outside = this.spec.features
      .map((f, i) => ({ f, v: row[i] }))
      .filter(({ f, v }) => f.range && !Number.isNaN(v) && (v < f.range[0] || v > f.range[1]))
      .map(({ f, v }) => `${f.name} ${v} (trained on ${f.range![0]}–${f.range![1]})`);
    if (missing.length === 0 && outside.length === 0) return undefined;
    return {
      ...this.identity(),
      status: missing.length > 0 ? 'insufficient_data' : 'not_applicable',
      reason: missing.length > 0 ? `Required inputs missing: ${missing.join(', ')}` : `Outside the data the model was trained on: ${outside.join(', ')}`,
      details: [],
      missing,
      imputed: [],
      warnings: [RESEARCH_GRADE],
    };
  }

  private identity(): Pick<Assessment, 'model' | 'version' | 'title' | 'kind' | 'researchGrade' | 'condition' | 'outcome' | 'inputs'> {
    const { name, version, title, condition } = this.spec;
    return {
      model: name,
      version,
      title,
      kind: 'ml-ensemble',
      researchGrade: true,
      condition,
      outcome: OUTCOMES[condition] ?? { system: 'http://snomed.info/sct', code: '64572001', display: 'Disease' },
      inputs: this.spec.features.map((f) => f.name),
    };
  }

  private predict(row: number[], m: Awaited<ReturnType<MlModel['margins']>>, k: number, explain: boolean): Assessment {
    const [lrSpec, gbtSpec] = this.spec.members;
    const B = this.spec.bootstrap.replicates;
    const lrLogit = calibrate(lrSpec.platt, m.lr[k]);
    const gbtLogit = calibrate(gbtSpec.platt, m.gbt[k]);
    const probability = sigmoid((lrLogit + gbtLogit) / 2);
    const replicates: number[] = [];
    for (let b = 0; b < B; b++) {
      const platt = this.spec.bootstrap.platt[b];
      replicates.push(sigmoid((calibrate(platt.lr, m.lrBoot[k * B + b]) + calibrate(platt.gbt, m.gbtBoot[k * B + b])) / 2));
    }
    replicates.sort((a, b) => a - b);
    const { moderate, high, basis } = this.spec.thresholds;
    const imputed = this.spec.features.filter((_, i) => Number.isNaN(row[i])).map((f) => f.name);
    return {
      ...this.identity(),
      status: 'ok',
      probability,
      category:
        probability >= high ? { code: 'high', display: `High (≥${high})`, risk: 'high' }
          : probability >= moderate ? { code: 'moderate', display: `Moderate (${moderate}–<${high})`, risk: 'moderate' }
            : { code: 'low', display: `Low (<${moderate})`, risk: 'low' },
      thresholds: `low <${moderate}, moderate ${moderate}–<${high}, high ≥${high} (${basis})`,
      interval: { low: percentile(replicates, 0.025), high: percentile(replicates, 0.975), method: `bootstrap ensemble (${B} refits): model uncertainty, not a range of the patient's true risk` },
      ...(explain && { explanation: this.explanation(row) }),
      details: [
        { name: 'logistic-regression-probability', value: sigmoid(lrLogit), unit: '1' },
        { name: 'gradient-boosted-trees-probability', value: sigmoid(gbtLogit), unit: '1' },
      ],
      missing: [],
      imputed,
      warnings: [RESEARCH_GRADE, ...(imputed.length > 0 ? [`Imputed (training median for the regression; native missing branch for the trees): ${imputed.join(', ')}`] : [])],
    };
  }

  /** Exact linear SHAP and TreeSHAP, moved to calibrated log-odds by each member's Platt slope and averaged. */
  private explanation(row: number[]): NonNullable<Assessment['explanation']> {
    const [lrSpec, gbtSpec] = this.spec.members;
    const imputedRow = row.map((v, i) => (Number.isNaN(v) ? this.spec.features[i].impute : v));
    const { weights, background, intercept } = lrSpec.linear;
    const lrPhi = imputedRow.map((v, i) => lrSpec.platt.a * weights[i] * (v - background[i]));
    const treePhi = this.explainer.shap(row, row.length).map((v) => gbtSpec.platt.a * v);
    const lrBase = lrSpec.platt.a * (intercept + weights.reduce((s, w, i) => s + w * background[i], 0)) + lrSpec.platt.b;
    const gbtBase = gbtSpec.platt.a * this.explainer.expectedMargin + gbtSpec.platt.b;
    const contributions: Contribution[] = this.spec.features.map((f, i) => ({
      input: f.name,
      value: Number.isNaN(row[i]) ? undefined : row[i],
      contribution: (lrPhi[i] + treePhi[i]) / 2,
    }));
    return {
      method: 'mean of exact linear SHAP (logistic regression) and path-dependent TreeSHAP (gradient-boosted trees), each scaled by its Platt slope',
      scale: 'log-odds',
      baseline: (lrBase + gbtBase) / 2,
      contributions,
    };
  }
}

export const RESEARCH_GRADE = 'Research-grade model trained on a small public dataset: not for clinical decisions; the published instrument is the clinical answer';

function calibrate(platt: Platt, margin: number): number {
  return platt.a * margin + platt.b;
}

function percentile(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
}

