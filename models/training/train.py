#!/usr/bin/python3
"""Shared training pipeline for carelens research-grade ML ensembles.

Usage:  /usr/bin/python3 models/training/train.py <condition> [<condition> ...]   (or: all)
Writes models/<condition>-ml/{model.json, lr.onnx, gbt.onnx, lr-bootstrap.onnx, gbt-bootstrap.onnx,
trees.json, reference.json, card.json, card.md}. Deterministic (fixed seeds, single-threaded xgboost).
"""
import sys
sys.dont_write_bytecode = True  # keep models/training free of __pycache__
import importlib
import json
import os
import sys

import numpy as np
import sklearn
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import onnx_export  # noqa: E402

MODELS = os.path.abspath(os.path.join(HERE, ".."))
CONDITIONS = ["diabetes", "cardiovascular", "stroke", "liver", "thyroid"]
VERSION = "1.0.0"
SEED = 20240611
B = 30
AUC_BOOT = 1000
LR_PARAMS = {"C": 1.0, "penalty": "l2", "solver": "lbfgs", "max_iter": 5000}
GBT_PARAMS = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.05, "subsample": 0.8, "min_child_weight": 1.0,
              "lambda": 1.0, "tree_method": "exact", "nthread": 1, "eval_metric": "logloss"}
GBT_ROUNDS = 100


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logit(p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


# ---------------------------------------------------------------- members
class LRMember:
    """Median imputation -> standardisation -> L2 logistic regression; exposed in original units."""

    def __init__(self, impute=None):
        self.fixed_impute = impute

    def fit(self, X, y):
        self.impute = self.fixed_impute if self.fixed_impute is not None else np.nanmedian(X, axis=0)
        Xi = self.imputed(X)
        self.mean = Xi.mean(axis=0)
        self.scale = Xi.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        self.clf = LogisticRegression(**LR_PARAMS).fit((Xi - self.mean) / self.scale, y)
        coef = self.clf.coef_.ravel()
        self.weights = coef / self.scale
        self.intercept = float(self.clf.intercept_[0] - np.sum(coef * self.mean / self.scale))
        self.background = self.mean.copy()  # training mean after imputation, original units
        return self

    def imputed(self, X):
        X = np.array(X, dtype=np.float64)
        m = np.isnan(X)
        X[m] = np.take(self.impute, np.where(m)[1])
        return X

    def margin(self, X):
        return self.clf.decision_function((self.imputed(X) - self.mean) / self.scale)

    def contribs(self, X):
        return self.weights * (self.imputed(X) - self.background)


class GBTMember:
    def fit(self, X, y, seed):
        self.base_score = float(np.mean(y))
        params = dict(GBT_PARAMS, seed=seed, base_score=self.base_score)
        self.booster = xgb.train(params, xgb.DMatrix(X.astype(np.float32), label=y, missing=np.nan), num_boost_round=GBT_ROUNDS)
        cfg = json.loads(self.booster.save_config())
        self.base_score = float(cfg["learner"]["learner_model_param"]["base_score"])
        self.base_margin = float(np.log(np.float32(self.base_score) / (1 - np.float32(self.base_score))))
        self.trees = onnx_export.xgb_trees(self.booster)
        return self

    def _dm(self, X):
        return xgb.DMatrix(np.asarray(X, dtype=np.float32), missing=np.nan)

    def margin(self, X):
        return self.booster.predict(self._dm(X), output_margin=True).astype(np.float64)

    def contribs(self, X):
        return self.booster.predict(self._dm(X), pred_contribs=True).astype(np.float64)


def platt(margin, y):
    m = LogisticRegression(penalty=None, solver="lbfgs", max_iter=1000).fit(margin.reshape(-1, 1), y)
    return {"a": float(m.coef_[0, 0]), "b": float(m.intercept_[0])}


def cal_logit(margin, p):
    return p["a"] * margin + p["b"]


# ---------------------------------------------------------------- metrics
def intercept_with_offset(y, offset):
    """Calibration-in-the-large: logistic regression y ~ 1 + offset(logit), slope fixed at 1 (Newton)."""
    b = 0.0
    for _ in range(100):
        p = sigmoid(offset + b)
        step = np.sum(y - p) / max(np.sum(p * (1 - p)), 1e-12)
        b += step
        if abs(step) < 1e-12:
            break
    return float(b)


def metrics(y, prob, rng):
    lg = logit(prob)
    auc = roc_auc_score(y, prob)
    boots = []
    n = len(y)
    for _ in range(AUC_BOOT):
        idx = rng.randint(0, n, n)
        if y[idx].min() == y[idx].max():
            continue
        boots.append(roc_auc_score(y[idx], prob[idx]))
    slope = LogisticRegression(penalty=None, solver="lbfgs", max_iter=1000).fit(lg.reshape(-1, 1), y).coef_[0, 0]
    return {"n": int(n), "events": int(y.sum()),
            "auroc": {"value": r6(auc), "ci95": [r6(np.percentile(boots, 2.5)), r6(np.percentile(boots, 97.5))]},
            "brier": r6(brier_score_loss(y, prob)), "calibrationSlope": r6(slope),
            "calibrationIntercept": r6(intercept_with_offset(y, lg))}


def r6(v):
    return float(round(float(v), 6))


def fnum(v):
    """Shortest decimal that round-trips to the float32 value (what onnxruntime sees)."""
    return None if np.isnan(v) else float(repr(np.float32(v)))


# ---------------------------------------------------------------- pipeline
def run(condition):
    cfgmod = importlib.import_module(f"configs.{condition}")
    C = cfgmod.CONFIG
    X, y, flow = cfgmod.load()
    X = X.astype(np.float32).astype(np.float64)  # the runtime feeds float32; train on exactly those values
    y = np.asarray(y, dtype=int)
    feats = C["features"]
    d = len(feats)
    names = [f["name"] for f in feats]
    out = os.path.join(MODELS, f"{condition}-ml")
    os.makedirs(out, exist_ok=True)

    idx = np.arange(len(y))
    i_rest, i_test = train_test_split(idx, test_size=0.2, stratify=y, random_state=SEED)
    i_train, i_cal = train_test_split(i_rest, test_size=0.25, stratify=y[i_rest], random_state=SEED + 1)
    Xtr, ytr, Xc, yc, Xte, yte = X[i_train], y[i_train], X[i_cal], y[i_cal], X[i_test], y[i_test]

    lr = LRMember().fit(Xtr, ytr)
    gbt = GBTMember().fit(Xtr, ytr, seed=SEED)
    p_lr, p_gbt = platt(lr.margin(Xc), yc), platt(gbt.margin(Xc), yc)

    # bootstrap replicates (imputation values fixed to the main model's training medians)
    rng = np.random.RandomState(SEED + 2)
    reps = []
    for b in range(B):
        while True:
            bi = rng.randint(0, len(ytr), len(ytr))
            if 0 < ytr[bi].sum() < len(bi):
                break
        lb = LRMember(impute=lr.impute).fit(Xtr[bi], ytr[bi])
        gb = GBTMember().fit(Xtr[bi], ytr[bi], seed=SEED + 100 + b)
        reps.append({"lr": lb, "gbt": gb, "platt": {"lr": platt(lb.margin(Xc), yc), "gbt": platt(gb.margin(Xc), yc)}})

    def predict(Xq):
        ml, mg = lr.margin(Xq), gbt.margin(Xq)
        cl, cg = cal_logit(ml, p_lr), cal_logit(mg, p_gbt)
        ens = sigmoid((cl + cg) / 2)
        rp = np.column_stack([sigmoid((cal_logit(r["lr"].margin(Xq), r["platt"]["lr"]) +
                                       cal_logit(r["gbt"].margin(Xq), r["platt"]["gbt"])) / 2) for r in reps])
        return ml, mg, sigmoid(cl), sigmoid(cg), ens, np.percentile(rp, 2.5, axis=1), np.percentile(rp, 97.5, axis=1)

    ml, mg, pl, pg, pe, lo, hi = predict(Xte)
    mrng = np.random.RandomState(SEED + 3)
    perf = {"lr": metrics(yte, pl, mrng), "gbt": metrics(yte, pg, mrng), "ensemble": metrics(yte, pe, mrng)}

    # subgroups (ensemble)
    subgroups, notes = [], []
    def add_group(label, mask):
        n, ev = int(mask.sum()), int(yte[mask].sum())
        ok = n >= 20 and ev >= 5 and (n - ev) >= 5
        subgroups.append({"group": label, "n": n, "events": ev, "auroc": r6(roc_auc_score(yte[mask], pe[mask])) if ok else None})
        if not ok:
            notes.append(f"{label}: AUROC not reported (n={n}, events={ev}; needs n>=20 and >=5 of each class)")
    if C.get("sexFeature"):
        j = names.index(C["sexFeature"])
        add_group("male", Xte[:, j] == 1)
        add_group("female", Xte[:, j] == 0)
    if C.get("ageFeature"):
        j = names.index(C["ageFeature"])
        for a0, a1 in C["ageBands"]:
            add_group(f"age {a0}-{a1 - 1}" if a1 < 200 else f"age {a0}+", (Xte[:, j] >= a0) & (Xte[:, j] < a1))
    if not C.get("sexFeature"):
        notes.append("no sex subgroups: " + ("single-sex training population" if C["condition"] == "diabetes" else "sex not recorded in the dataset"))
    if not C.get("ageFeature"):
        notes.append("no age subgroups: age not recorded in the dataset")

    # thresholds
    prev = float(ytr.mean())
    moderate = round(prev, 2)
    high = round(min(2 * prev, prev + (1 - prev) / 2), 2)
    basis = (f"moderate = training-split prevalence ({prev:.3f}) rounded to 0.01, i.e. above-average risk; "
             f"high = min(2 x prevalence, prevalence + half the distance to 1) rounded to 0.01. Chosen a priori (not tuned on test data).")
    op = {}
    for k, t in [("moderate", moderate), ("high", high)]:
        pos = pe >= t
        op[k] = {"threshold": t, "fractionFlagged": r6(pos.mean()),
                 "sensitivity": r6(pos[yte == 1].mean()), "specificity": r6((~pos)[yte == 0].mean()),
                 "ppv": r6(yte[pos].mean()) if pos.any() else None}

    # features: impute values and decile bins of the training values
    fjson = []
    for j, f in enumerate(feats):
        v = Xtr[:, j][~np.isnan(Xtr[:, j])]
        edges = np.quantile(v, np.linspace(0.1, 0.9, 9))
        binidx = np.searchsorted(edges, v, side="right")
        expected = np.bincount(binidx, minlength=10) / len(v)
        fj = {k: f[k] for k in ["name", "display", "unit", "required", "source", "plausible"]}
        fj["impute"] = float(lr.impute[j])
        fj["bins"] = {"edges": [float(e) for e in edges], "expected": [r6(e) for e in expected]}
        if "age" in f["source"]:
            # The model is not applicable outside the ages it was trained on (the runtime refuses to extrapolate).
            fj["range"] = [float(np.floor(v.min())), float(np.ceil(v.max()))]
        fjson.append(fj)

    model = {
        "name": f"{condition}-ml", "version": VERSION, "condition": condition, "kind": "ml-ensemble", "researchGrade": True,
        "title": C["title"], "outcome": C["outcome"], "features": fjson,
        "members": [
            {"id": "lr", "method": "logistic-regression", "onnx": "lr.onnx", "platt": p_lr,
             "linear": {"intercept": lr.intercept, "weights": [float(w) for w in lr.weights],
                        "background": [float(v) for v in lr.background]}},
            {"id": "gbt", "method": "gradient-boosted-trees", "onnx": "gbt.onnx", "platt": p_gbt, "trees": "trees.json"},
        ],
        "bootstrap": {"replicates": B, "lr": "lr-bootstrap.onnx", "gbt": "gbt-bootstrap.onnx",
                      "platt": [r["platt"] for r in reps]},
        "thresholds": {"moderate": moderate, "high": high, "basis": basis},
    }
    dump(os.path.join(out, "model.json"), model)

    # ONNX
    onnx_export.save(onnx_export.linear_model(lr.impute, lr.weights, [lr.intercept], "margin", 1, f"{condition}_lr"),
                     os.path.join(out, "lr.onnx"))
    onnx_export.save(onnx_export.tree_ensemble([gbt.trees], [gbt.base_margin], d, "margin", f"{condition}_gbt"),
                     os.path.join(out, "gbt.onnx"))
    Wb = np.column_stack([r["lr"].weights for r in reps])
    onnx_export.save(onnx_export.linear_model(lr.impute, Wb, [r["lr"].intercept for r in reps], "margins", B, f"{condition}_lr_bootstrap"),
                     os.path.join(out, "lr-bootstrap.onnx"))
    onnx_export.save(onnx_export.tree_ensemble([r["gbt"].trees for r in reps], [r["gbt"].base_margin for r in reps], d, "margins",
                                               f"{condition}_gbt_bootstrap"), os.path.join(out, "gbt-bootstrap.onnx"))
    dump(os.path.join(out, "trees.json"), {"baseMargin": gbt.base_margin, "trees": gbt.trees})

    # sanity: trees + base margin reproduce xgboost's margin (pure python walk)
    chk = tree_margin(gbt.trees, gbt.base_margin, Xte)
    assert np.max(np.abs(chk - mg)) < 1e-4, np.max(np.abs(chk - mg))
    assert np.max(np.abs(lr.intercept + lr.imputed(Xte) @ lr.weights - ml)) < 1e-8

    # reference rows: up to 48 test rows + copies of 10 test rows with one feature (cycling) set to NaN, + 1 all-NaN row
    R = [Xte[i] for i in range(min(48, len(yte)))]
    for k in range(10):
        r = Xte[k].copy()
        r[k % d] = np.nan
        if k >= d:
            r[(k + 1) % d] = np.nan
        R.append(r)
    R.append(np.full(d, np.nan))
    R = np.array(R)
    rml, rmg, rpl, rpg, rpe, rlo, rhi = predict(R)
    gcon, lcon = gbt.contribs(R), lr.contribs(R)
    rows = []
    for i in range(len(R)):
        rows.append({"x": [fnum(v) for v in R[i]],
                     "lr": {"margin": float(rml[i]), "calibrated": float(rpl[i])},
                     "gbt": {"margin": float(rmg[i]), "calibrated": float(rpg[i]), "contribs": [float(v) for v in gcon[i]]},
                     "lrContribs": [float(v) for v in lcon[i]],
                     "ensemble": float(rpe[i]), "interval": [float(rlo[i]), float(rhi[i])]})
    dump(os.path.join(out, "reference.json"), {
        "note": "Computed by the trained Python models (sklearn/xgboost), not by ONNX. x: float32 values (null = missing).",
        "features": names, "rows": rows})

    # card
    miss = {f["name"]: float(np.mean(np.isnan(X[:, j]))) for j, f in enumerate(feats)}
    card = {
        "name": f"{condition}-ml", "title": C["title"], "version": VERSION, "kind": "ml-ensemble", "researchGrade": True,
        "condition": condition,
        "outcome": {"description": C["outcome"], "horizon": C["horizon"]},
        "intendedUse": C["intendedUse"], "notForUse": C["notForUse"],
        "intendedUsers": "Researchers and clinicians evaluating decision support in carelens; outputs are research-grade and "
                         "must be interpreted by a qualified clinician.",
        "trainingData": {**{k: C["dataset"][k] for k in ["source", "citation", "licence", "obtainedFrom", "collected", "population"]},
                         "size": int(len(y)), "events": int(y.sum()), "prevalence": r6(y.mean()), "flow": flow,
                         "cohortNotes": C.get("cohortNotes", "")},
        "predictors": [{"name": f["name"], "display": f["display"],
                        **({"loinc": [c.split("|")[1] for c in f["source"]["observation"]["codes"]]} if "observation" in f["source"] else {}),
                        **({"codes": f["source"]["condition"]["codes"]} if "condition" in f["source"] else {}),
                        "unit": f["unit"], "missingInTraining": r6(miss[f["name"]])} for f in feats],
        "droppedPredictors": C.get("droppedPredictors", ""),
        "missingData": "Missing values are NaN. LR member: median imputation with training-split medians (feature 'impute' values). "
                       "GBT member: xgboost's learned default direction per split. Bootstrap LR replicates reuse the main model's "
                       "imputation values. Complete-case analysis was NOT used; rows are never dropped for missing predictors.",
        "classImbalance": f"Prevalence {y.mean():.3f}; no resampling or class weights (probabilities are calibrated instead).",
        "development": {
            "split": f"stratified random split: train 60% (n={len(i_train)}), calibration 20% (n={len(i_cal)}), test 20% (n={len(i_test)})",
            "members": "lr = median imputation + standardisation + L2 logistic regression (sklearn); gbt = xgboost binary:logistic "
                       "gradient-boosted trees with native missing-value handling. Ensemble = mean of the members' Platt-calibrated logits.",
            "hyperparameters": {"lr": LR_PARAMS, "gbt": dict(GBT_PARAMS, rounds=GBT_ROUNDS, base_score="training prevalence")},
            "seed": SEED, "software": {"sklearn": sklearn.__version__, "xgboost": xgb.__version__, "numpy": np.__version__},
            "hyperparameterTuning": "none (fixed a priori small model)"},
        "calibration": {"method": "platt", "fittedOn": f"calibration split (n={len(i_cal)}, events={int(yc.sum())})",
                        "lr": p_lr, "gbt": p_gbt},
        "interval": {"method": "bootstrap", "replicates": B,
                     "detail": "30 resamples of the training split; both members refitted per resample (LR imputation values "
                               "fixed) and Platt-recalibrated on the calibration split; interval = 2.5th/97.5th percentiles "
                               "(linear interpolation) of the 30 replicate ensemble probabilities",
                     "meaning": "model (epistemic) uncertainty, not a range of the patient's true risk"},
        "explanation": {"lr": "exact linear SHAP in calibrated log-odds (a·φ)",
                        "gbt": "TreeSHAP (path-dependent) in calibrated log-odds",
                        "ensemble": "mean of members' calibrated contributions"},
        "heldOutPerformance": perf,
        "metricNotes": "AUROC 95% CI: percentile bootstrap, 1000 resamples of the test split. Calibration slope: logistic regression of "
                       "y on the calibrated logit. Calibration intercept: calibration-in-the-large, logistic regression of y with the "
                       "calibrated logit as offset (slope fixed at 1).",
        "subgroups": subgroups, "subgroupNotes": "; ".join(notes) if notes else "ensemble AUROC on the test split",
        "thresholds": {"moderate": moderate, "high": high, "basis": basis, "testOperatingPoints": op},
        "limitations": limitations(C, len(i_test), int(yte.sum())),
        "ethics": "Public, de-identified research data redistributed in Debian packages; no new data collection. Historical, "
                  "single-site populations: performance and calibration may differ by ethnicity, sex and care setting. Research "
                  "grade: not a medical device, not validated for clinical decisions; output must not be used to deny or ration care.",
        "references": [C["dataset"]["citation"],
                       "Collins GS et al. TRIPOD+AI statement. BMJ 2024;385:e078378.",
                       "Platt J. Probabilistic outputs for support vector machines. 1999.",
                       "Lundberg SM et al. From local explanations to global understanding with explainable AI for trees. Nat Mach Intell 2020;2:56-67.",
                       "Chen T, Guestrin C. XGBoost: a scalable tree boosting system. KDD 2016."],
    }
    dump(os.path.join(out, "card.json"), card)
    with open(os.path.join(out, "card.md"), "w") as f:
        f.write(card_md(card))
    e = perf["ensemble"]
    print(f"{condition}: n={len(y)} events={int(y.sum())} test AUROC lr={perf['lr']['auroc']['value']:.3f} "
          f"gbt={perf['gbt']['auroc']['value']:.3f} ens={e['auroc']['value']:.3f} {e['auroc']['ci95']} brier={e['brier']:.3f}")


def tree_margin(trees, base, X):
    out = np.full(len(X), base)
    X32 = X.astype(np.float32)
    for t in trees:
        nodes = {n["id"]: n for n in t["nodes"]}
        for i in range(len(X)):
            n = nodes[0]
            while "leaf" not in n:
                v = X32[i, n["feature"]]
                n = nodes[n["missing"] if np.isnan(v) else (n["yes"] if v < np.float32(n["threshold"]) else n["no"])]
            out[i] += n["leaf"]
    return out


def limitations(C, ntest, evtest):
    L = [f"Small held-out test split (n={ntest}, events={evtest}): wide confidence intervals; no external validation.",
         "Trained on a single historical public dataset; transportability to carelens patients is unknown and calibration is likely to drift.",
         "Bootstrap interval reflects model-fitting uncertainty only (30 replicates), not measurement error or individual variability.",
         "Runtime inputs come from FHIR records whose units, measurement methods and timing may differ from the study protocol."]
    if C.get("droppedPredictors"):
        L.append("Predictors dropped because no FHIR record would carry them or they were unreliable: " + C["droppedPredictors"] + ".")
    if C.get("cohortNotes"):
        L.append(C["cohortNotes"])
    L.extend(C.get("extraLimitations", []))
    return L


def card_md(c):
    p = c["heldOutPerformance"]
    lines = [f"# Model card: {c['title']}", "",
             f"`{c['name']}` v{c['version']} - kind `ml-ensemble`, **research grade** (TRIPOD+AI-style summary; full detail in card.json).", "",
             "## Outcome", f"{c['outcome']['description']} Horizon: {c['outcome']['horizon']}.", "",
             "## Intended use", c["intendedUse"], "", f"**Not for:** {c['notForUse']}", "", f"**Users:** {c['intendedUsers']}", "",
             "## Training data", f"- Source: {c['trainingData']['source']}", f"- Citation: {c['trainingData']['citation']}",
             f"- Licence: {c['trainingData']['licence']}", f"- Obtained from: {c['trainingData']['obtainedFrom']}",
             f"- Collected: {c['trainingData']['collected']}; population: {c['trainingData']['population']}",
             f"- Analysed n = {c['trainingData']['size']}, events = {c['trainingData']['events']} (prevalence {c['trainingData']['prevalence']:.3f}); flow: {json.dumps(c['trainingData']['flow'])}"]
    if c["trainingData"]["cohortNotes"]:
        lines.append(f"- Cohort notes: {c['trainingData']['cohortNotes']}")
    lines += ["", "## Predictors", "| name | display | unit | codes | missing in training |", "|---|---|---|---|---|"]
    for q in c["predictors"]:
        codes = ", ".join(q.get("loinc", [])) or ", ".join(q.get("codes", [])) or "-"
        lines.append(f"| {q['name']} | {q['display']} | {q['unit']} | {codes} | {q['missingInTraining']:.1%} |")
    lines += ["", f"Dropped: {c['droppedPredictors']}", "", "## Development",
              f"- {c['development']['split']}; seed {c['development']['seed']}", f"- {c['development']['members']}",
              f"- Hyperparameters: `{json.dumps(c['development']['hyperparameters'])}` (no tuning)",
              f"- Missing data: {c['missingData']}", f"- Class imbalance: {c['classImbalance']}",
              f"- Calibration: Platt scaling of each member on the {c['calibration']['fittedOn']}",
              f"- Interval: {c['interval']['detail']}. Meaning: {c['interval']['meaning']}.",
              f"- Explanations: LR {c['explanation']['lr']}; GBT {c['explanation']['gbt']}; ensemble {c['explanation']['ensemble']}.",
              "", "## Held-out test performance", c["metricNotes"], "",
              "| member | n | events | AUROC (95% CI) | Brier | cal. slope | cal. intercept |", "|---|---|---|---|---|---|---|"]
    for k in ["lr", "gbt", "ensemble"]:
        m = p[k]
        lines.append(f"| {k} | {m['n']} | {m['events']} | {m['auroc']['value']:.3f} ({m['auroc']['ci95'][0]:.3f}-{m['auroc']['ci95'][1]:.3f}) "
                     f"| {m['brier']:.3f} | {m['calibrationSlope']:.2f} | {m['calibrationIntercept']:.2f} |")
    lines += ["", "### Subgroups (ensemble AUROC)", "| group | n | events | AUROC |", "|---|---|---|---|"]
    for s in c["subgroups"]:
        lines.append(f"| {s['group']} | {s['n']} | {s['events']} | {'-' if s['auroc'] is None else format(s['auroc'], '.3f')} |")
    lines += ["", c["subgroupNotes"], "", "## Risk categories",
              f"low < {c['thresholds']['moderate']} <= moderate < {c['thresholds']['high']} <= high. {c['thresholds']['basis']}", "",
              f"Test operating points: `{json.dumps(c['thresholds']['testOperatingPoints'])}`", "", "## Limitations"]
    lines += [f"- {x}" for x in c["limitations"]]
    lines += ["", "## Ethics", c["ethics"], "", "## References"] + [f"- {r}" for r in c["references"]]
    return "\n".join(lines) + "\n"


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    args = sys.argv[1:] or ["all"]
    for c in (CONDITIONS if args == ["all"] else args):
        if c not in CONDITIONS:
            raise SystemExit(f"unknown condition {c}; trainable: {', '.join(CONDITIONS)}")
        run(c)
