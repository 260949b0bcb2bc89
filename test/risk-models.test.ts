import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MlModel } from '../src/ml/ml-model.js';
import { binOf, populationStability } from '../src/ml/model-monitor.js';
import { TreeExplainer, type TreeEnsemble } from '../src/ml/tree-shap.js';
import type { Inputs } from '../src/risk/inputs.js';

/**
 * The committed ML models against what their trained Python models computed (reference.json, written
 * by models/training/train.py from sklearn and xgboost, not from ONNX): ONNX margins, TreeSHAP,
 * exact linear SHAP, the calibrated ensemble and its bootstrap interval.
 */

interface Reference {
  rows: {
    x: (number | null)[];
    lr: { margin: number; calibrated: number };
    gbt: { margin: number; calibrated: number; contribs: number[] };
    lrContribs: number[];
    ensemble: number;
    interval: [number, number];
  }[];
}

const ROOT = join(process.cwd(), 'models');
const MODELS = readdirSync(ROOT).filter((d) => existsSync(join(ROOT, d, 'model.json')));

test('the ML models are committed', () => {
  expect(MODELS.length).toBeGreaterThan(0);
});

describe.each(MODELS)('%s', (name) => {
  const reference = JSON.parse(readFileSync(join(ROOT, name, 'reference.json'), 'utf8')) as Reference;
  const rows = reference.rows.map((r) => r.x.map((v) => (v === null ? Number.NaN : v)));
  let model: MlModel;
  beforeAll(async () => {
    model = await MlModel.load(join(ROOT, name));
  });

  test('ONNX margins equal the trained models', async () => {
    const margins = await model.margins(rows);
    reference.rows.forEach((r, i) => {
      expect(Math.abs(margins.lr[i] - r.lr.margin)).toBeLessThan(1e-4);
      expect(Math.abs(margins.gbt[i] - r.gbt.margin)).toBeLessThan(1e-4);
    });
  });

  test("TreeSHAP equals XGBoost's pred_contribs and sums to the margin", () => {
    const trees = JSON.parse(readFileSync(join(ROOT, name, model.spec.members[1].trees), 'utf8')) as TreeEnsemble;
    const explainer = new TreeExplainer(trees);
    reference.rows.forEach((r, i) => {
      const phi = explainer.shap(rows[i], rows[i].length);
      phi.forEach((v, j) => expect(Math.abs(v - r.gbt.contribs[j])).toBeLessThan(1e-4));
      expect(Math.abs(explainer.expectedMargin - r.gbt.contribs[rows[i].length])).toBeLessThan(1e-4);
      expect(explainer.expectedMargin + phi.reduce((s, v) => s + v, 0)).toBeCloseTo(explainer.margin(rows[i]), 6);
    });
  });

  test('calibrated ensemble, interval and contributions match, and contributions sum to the calibrated log-odds', async () => {
    const inputsList: Inputs[] = rows.map((row) =>
      new Map(model.spec.features.map((f, j) => [f.name, { name: f.name, value: Number.isNaN(row[j]) ? undefined : row[j], basis: [], excluded: [], series: [] }])),
    );
    const assessments = await model.assess(inputsList);
    let checked = 0;
    assessments.forEach((a, i) => {
      const r = reference.rows[i];
      if (a.status !== 'ok') {
        // Refused rows lack a required input or fall outside the training range.
        expect(a.reason).toBeTruthy();
        return;
      }
      checked++;
      expect(Math.abs(a.probability! - r.ensemble)).toBeLessThan(1e-4);
      expect(Math.abs(a.interval!.low - r.interval[0])).toBeLessThan(1e-3);
      expect(Math.abs(a.interval!.high - r.interval[1])).toBeLessThan(1e-3);
      const sum = a.explanation!.baseline + a.explanation!.contributions.reduce((s, c) => s + c.contribution, 0);
      expect(sum).toBeCloseTo(Math.log(a.probability! / (1 - a.probability!)), 4);
      const lrPlatt = model.spec.members[0].platt.a;
      const gbtPlatt = model.spec.members[1].platt.a;
      a.explanation!.contributions.forEach((c, j) => {
        expect(c.contribution).toBeCloseTo((lrPlatt * r.lrContribs[j] + gbtPlatt * r.gbt.contribs[j]) / 2, 4);
      });
      expect(a.researchGrade).toBe(true);
    });
    expect(checked).toBeGreaterThan(reference.rows.length / 2);
  });
});

test('population stability: zero for the training distribution, large for a shifted one', () => {
  const expected = new Array(10).fill(0.1);
  expect(populationStability(expected, new Array(10).fill(7))).toBeCloseTo(0, 10);
  expect(populationStability(expected, [70, 0, 0, 0, 0, 0, 0, 0, 0, 0])).toBeGreaterThan(0.25);
  expect(binOf([1, 2, 3], 0.5)).toBe(0);
  expect(binOf([1, 2, 3], 2)).toBe(2);
  expect(binOf([1, 2, 3], 9)).toBe(3);
});
