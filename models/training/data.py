"""Dataset readers (numpy + csv only; Debian's python3 has no pandas)."""
import csv
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATASETS = os.environ.get("CARELENS_DATASETS", os.path.join(HERE, "..", ".datasets"))


def read_csv(relpath):
    path = os.path.join(DATASETS, relpath)
    if not os.path.exists(path):
        raise SystemExit(f"{path} missing: run models/training/fetch_datasets.sh first")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows


def num(v):
    if v is None or v == "" or v == "NA":
        return np.nan
    return float(v)


def column(rows, name):
    return np.array([num(r[name]) for r in rows], dtype=np.float64)


HORIZON_DAYS = 1826  # 5 years


def nafld_cohort(outcome_events, exclude_prevalent, lookback_days=1095):
    """Baseline (index date = day 0) cohort from survival::nafld1/2/3 with a 5-year binary outcome.

    Returns dict of baseline arrays + y. Subjects censored alive before 5 years without the outcome
    are excluded; deaths before 5 years without the outcome count as non-events.
    """
    n1 = read_csv("nafld/nafld1.csv")
    ids = np.array([int(r["id"]) for r in n1])
    index = {int(i): k for k, i in enumerate(ids)}
    n = len(ids)
    base = {
        "age": column(n1, "age"), "male": column(n1, "male"), "bmi": column(n1, "bmi"),
        "futime": column(n1, "futime"), "dead": column(n1, "status"),
    }
    # labs: latest value in [-lookback, 0]. NOTE: in survival 3.5-3 the "chol" rows duplicate the "hdl"
    # values and the "dbp" rows duplicate the "sbp" values, so only hdl, sbp, smoke are used.
    latest = {t: (np.full(n, np.nan), np.full(n, -np.inf)) for t in ["hdl", "sbp", "smoke"]}
    for r in read_csv("nafld/nafld2.csv"):
        t = r["test"]
        if t not in latest:
            continue
        d = float(r["days"])
        if d > 0 or d < -lookback_days:
            continue
        k = index[int(r["id"])]
        vals, when = latest[t]
        if d >= when[k]:  # ties: last row wins (file order is deterministic)
            vals[k] = float(r["value"])
            when[k] = d
    for t, (vals, _) in latest.items():
        base[t] = vals
    # sbp: values of 0 or > 300 are recording errors -> missing
    sbp = base["sbp"]
    sbp[(sbp < 50) | (sbp > 300)] = np.nan
    hdl = base["hdl"]
    hdl[(hdl < 10) | (hdl > 150)] = np.nan
    bmi = base["bmi"]
    bmi[(bmi < 12) | (bmi > 80)] = np.nan
    prev = {}
    first = {}
    for r in read_csv("nafld/nafld3.csv"):
        k = index[int(r["id"])]
        d = float(r["days"])
        e = r["event"]
        if d <= 0:
            prev.setdefault(e, set()).add(k)
        elif e in outcome_events:
            first[k] = min(first.get(k, np.inf), d)
    for e in ["diabetes", "htn", "dyslipidemia", "nafld", "afib", "MI", "ang/isc", "stroke", "heart failure"]:
        base["prev_" + e] = np.array([1.0 if k in prev.get(e, set()) else 0.0 for k in range(n)])
    excluded_prev = np.zeros(n, bool)
    for e in exclude_prevalent:
        excluded_prev |= base["prev_" + e] == 1
    t_event = np.array([first.get(k, np.inf) for k in range(n)])
    event = t_event <= HORIZON_DAYS
    known = event | (base["futime"] >= HORIZON_DAYS) | (base["dead"] == 1)
    keep = (~excluded_prev) & known
    out = {k: v[keep] for k, v in base.items()}
    out["y"] = event[keep].astype(int)
    out["flow"] = {"nafld1": n, "excludedPrevalent": int(excluded_prev.sum()),
                   "excludedCensoredBefore5y": int(((~excluded_prev) & ~known).sum()), "analysed": int(keep.sum())}
    return out
