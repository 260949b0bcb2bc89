"""Hand-built ONNX graphs (no skl2onnx) for the carelens ML ensembles.

All graphs: input "X" float32 [N, d] (raw feature values, NaN = missing).
Opsets: default domain 17, ai.onnx.ml 3, IR version 8 (what onnxruntime-node 1.30 loads).
"""
import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]


def _model(graph):
    m = helper.make_model(graph, opset_imports=OPSETS, producer_name="carelens-models-training")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _save(model, path):
    # serialise deterministically
    with open(path, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))


def linear_model(impute, W, b, out_name, out_width, graph_name):
    """Imputer -> Cast(double) -> MatMul(W: d x k) -> Add(b: k) -> Cast(float).

    W, b are in ORIGINAL feature units (scaling folded in). The arithmetic runs in float64
    so the ONNX margin matches sklearn's float64 decision_function to ~1e-7.
    """
    d = len(impute)
    W = np.asarray(W, dtype=np.float64).reshape(d, out_width)
    b = np.asarray(b, dtype=np.float64).reshape(out_width)
    nodes = [
        helper.make_node("Imputer", ["X"], ["X_imp"], domain="ai.onnx.ml",
                         imputed_value_floats=[float(v) for v in impute],
                         replaced_value_float=float("nan"), name="impute"),
        helper.make_node("Cast", ["X_imp"], ["X_d"], to=TensorProto.DOUBLE, name="to_double"),
        helper.make_node("MatMul", ["X_d", "W"], ["XW"], name="matmul"),
        helper.make_node("Add", ["XW", "B"], ["margin_d"], name="add_intercept"),
        helper.make_node("Cast", ["margin_d"], [out_name], to=TensorProto.FLOAT, name="to_float"),
    ]
    graph = helper.make_graph(
        nodes, graph_name,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, d])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [None, out_width])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "B")],
    )
    return _model(graph)


def xgb_trees(booster):
    """Parse booster.get_dump(json, with_stats) into flat node lists (trees.json format)."""
    trees = []
    for s in booster.get_dump(dump_format="json", with_stats=True):
        root = json.loads(s)
        nodes = []
        stack = [root]
        while stack:
            n = stack.pop()
            if "leaf" in n:
                nodes.append({"id": int(n["nodeid"]), "leaf": float(n["leaf"]), "cover": float(n["cover"])})
            else:
                nodes.append({
                    "id": int(n["nodeid"]), "feature": int(str(n["split"]).lstrip("f")),
                    "threshold": float(n["split_condition"]), "yes": int(n["yes"]), "no": int(n["no"]),
                    "missing": int(n["missing"]), "cover": float(n["cover"]),
                })
                stack.extend(n["children"])
        nodes.sort(key=lambda x: x["id"])
        trees.append({"nodes": nodes})
    return trees


def tree_ensemble(tree_sets, base_margins, d, out_name, graph_name):
    """One ai.onnx.ml.TreeEnsembleRegressor; tree_sets[k] (list of trees) feeds target k."""
    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                         "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                         "target_treeids", "target_nodeids", "target_ids", "target_weights"]}
    tid = 0
    for target, trees in enumerate(tree_sets):
        for t in trees:
            for n in t["nodes"]:
                a["nodes_treeids"].append(tid)
                a["nodes_nodeids"].append(n["id"])
                if "leaf" in n:
                    a["nodes_featureids"].append(0)
                    a["nodes_values"].append(0.0)
                    a["nodes_modes"].append("LEAF")
                    a["nodes_truenodeids"].append(0)
                    a["nodes_falsenodeids"].append(0)
                    a["nodes_missing_value_tracks_true"].append(0)
                    a["target_treeids"].append(tid)
                    a["target_nodeids"].append(n["id"])
                    a["target_ids"].append(target)
                    a["target_weights"].append(float(np.float32(n["leaf"])))
                else:
                    a["nodes_featureids"].append(n["feature"])
                    a["nodes_values"].append(float(np.float32(n["threshold"])))
                    a["nodes_modes"].append("BRANCH_LT")  # x < threshold -> yes (true branch)
                    a["nodes_truenodeids"].append(n["yes"])
                    a["nodes_falsenodeids"].append(n["no"])
                    a["nodes_missing_value_tracks_true"].append(1 if n["missing"] == n["yes"] else 0)
            tid += 1
    k = len(tree_sets)
    node = helper.make_node(
        "TreeEnsembleRegressor", ["X"], [out_name], domain="ai.onnx.ml", name="trees",
        n_targets=k, aggregate_function="SUM", post_transform="NONE",
        base_values=[float(v) for v in base_margins], **a)
    graph = helper.make_graph(
        [node], graph_name,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, d])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [None, k])])
    return _model(graph)


def save(model, path):
    _save(model, path)
