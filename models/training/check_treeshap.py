#!/usr/bin/python3
"""Reference path-dependent TreeSHAP (Lundberg et al. 2020, Algorithm 2) over trees.json.

Checks that trees.json alone (thresholds, yes/no/missing, covers) reproduces xgboost's pred_contribs stored in
reference.json -- i.e. that a TypeScript port of this file can match "contribs".
Usage: /usr/bin/python3 models/training/check_treeshap.py <condition> [...]
"""
import json
import math
import os
import sys

MODELS = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def f32(v):
    import struct
    return struct.unpack("f", struct.pack("f", v))[0]


def tree_shap(tree, x, phi):
    nodes = {n["id"]: n for n in tree["nodes"]}

    def extend(m, pz, po, pi):
        m = [list(e) for e in m] + [[pi, pz, po, 1.0 if not m else 0.0]]
        l = len(m) - 1
        for i in range(l - 1, -1, -1):
            m[i + 1][3] += po * m[i][3] * (i + 1) / (l + 1)
            m[i][3] = pz * m[i][3] * (l - i) / (l + 1)
        return m

    def unwind(m, i):
        l = len(m) - 1
        po, pz = m[i][2], m[i][1]
        m = [list(e) for e in m]
        n = m[l][3]
        for j in range(l - 1, -1, -1):
            if po != 0:
                t = m[j][3]
                m[j][3] = n * (l + 1) / ((j + 1) * po)
                n = t - m[j][3] * pz * (l - j) / (l + 1)
            else:
                m[j][3] = m[j][3] * (l + 1) / (pz * (l - j))
        for j in range(i, l):
            m[j][0], m[j][1], m[j][2] = m[j + 1][0], m[j + 1][1], m[j + 1][2]
        return m[:l]

    def unwound_sum(m, i):
        l = len(m) - 1
        po, pz = m[i][2], m[i][1]
        n = m[l][3]
        total = 0.0
        for j in range(l - 1, -1, -1):
            if po != 0:
                t = n * (l + 1) / ((j + 1) * po)
                total += t
                n = m[j][3] - t * pz * (l - j) / (l + 1)
            else:
                total += (m[j][3] / pz) / ((l - j) / (l + 1))
        return total

    def recurse(j, m, pz, po, pi):
        m = extend(m, pz, po, pi)
        n = nodes[j]
        if "leaf" in n:
            for i in range(1, len(m)):
                w = unwound_sum(m, i)
                phi[m[i][0]] += w * (m[i][2] - m[i][1]) * n["leaf"]
            return
        v = x[n["feature"]]
        hot = n["missing"] if v is None else (n["yes"] if f32(v) < f32(n["threshold"]) else n["no"])
        cold = n["no"] if hot == n["yes"] else n["yes"]
        iz, io = 1.0, 1.0
        k = next((k for k in range(1, len(m)) if m[k][0] == n["feature"]), None)
        if k is not None:
            iz, io = m[k][1], m[k][2]
            m = unwind(m, k)
        rj = n["cover"]
        recurse(hot, m, iz * nodes[hot]["cover"] / rj, io, n["feature"])
        recurse(cold, m, iz * nodes[cold]["cover"] / rj, 0.0, n["feature"])

    recurse(0, [], 1.0, 1.0, -1)


def expected(tree):
    nodes = {n["id"]: n for n in tree["nodes"]}

    def e(j):
        n = nodes[j]
        if "leaf" in n:
            return n["leaf"]
        return (nodes[n["yes"]]["cover"] * e(n["yes"]) + nodes[n["no"]]["cover"] * e(n["no"])) / n["cover"]
    return e(0)


def main(conds):
    for c in conds:
        d = os.path.join(MODELS, f"{c}-ml")
        trees = json.load(open(os.path.join(d, "trees.json")))
        ref = json.load(open(os.path.join(d, "reference.json")))
        bias = trees["baseMargin"] + sum(expected(t) for t in trees["trees"])
        worst = 0.0
        for r in ref["rows"]:
            phi = [0.0] * len(r["x"])
            for t in trees["trees"]:
                tree_shap(t, r["x"], phi)
            got = phi + [bias]
            worst = max(worst, max(abs(a - b) for a, b in zip(got, r["gbt"]["contribs"])))
        print(f"{c}: max |TreeSHAP(trees.json) - xgboost pred_contribs| = {worst:.2e}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["diabetes", "cardiovascular", "stroke", "liver", "thyroid"])
