"""Hand-made results JSON, shaped as README "The JSON" documents it, with what other parts of
the project add (property checks, misbehaviour statuses, optional frameworks, studies), so the
report is tested on what it will be given, not only on what today's runner writes."""

from __future__ import annotations

import copy

FEATURES = {"multi_layer": {"supported": True, "cases": 30, "failed": 0},
            "bidirectional": {"supported": True, "cases": 25, "failed": 0},
            "projection": {"supported": False, "cases": 0, "failed": 0},
            "float64": {"supported": True, "cases": 40, "failed": 0}}


def samples(ratios, dtype="float32"):
    return [[1 + 7 * k % 200, dtype, r] for k, r in enumerate(ratios)]


def passing(check, ratio, **extra):
    return {"check": check, "status": "pass", "examples": 12, "unsupported_cases": 0,
            "duration_s": 0.5, "message": f"{check} passes", "unresolved_cases": 0,
            "worst": {"tensor": check, "ratio": ratio, "max_abs_error": 1e-7,
                      "max_rel_error": 1e-6, "tolerance": 1e-5, "where": {},
                      "case_id": "input_size=2,hidden_size=3,seq_len=4,batch=1,seed=1"},
            "failure": None, "samples": samples([ratio / 10, ratio, ratio / 3]), "note": "",
            "data": None, **extra}


REPRODUCE = ('python -m parity check --impl mypkg.lstm:Broken --only output '
             '--case "input_size=1,hidden_size=1,seq_len=3,batch=1,seed=7"')


def failing_output():
    finding = {"tensor": "output", "passed": False, "max_abs_error": 0.127,
               "max_rel_error": 0.68, "tolerance": 2e-6, "ratio": 63500.0, "index": [2, 0, 0],
               "where": {"batch": 0, "step": 2, "layer": 0, "direction": "forward", "unit": 0},
               "got": 0.06, "want": -0.067, "problem": None, "unresolved": False}
    return {"check": "output", "status": "fail", "examples": 3, "unsupported_cases": 0,
            "duration_s": 1.2, "message": "output[batch=0, step=2, ...] differs",
            "unresolved_cases": 0, "worst": None, "note": "", "data": None,
            "samples": samples([0.01, "inf", 63500.0]),
            "failure": {"case": {"input_size": 1, "hidden_size": 1, "seq_len": 3, "batch": 1,
                                 "seed": 7},
                        "case_id": "input_size=1,hidden_size=1,seq_len=3,batch=1,seed=7",
                        "shapes": {"input": [3, 1, 1], "h_0": [1, 1, 1]},
                        "message": "output[...] differs", "finding": finding,
                        "comparisons": [finding, dict(finding, tensor="h_n", ratio=12.0,
                                                      where={"layer": 0})],
                        "likely_cause": "gate order: the implementation reads the gate blocks "
                                        "as i, g, f, o",
                        "reproduce": REPRODUCE}}


GRADIENT_BLOCKS = [
    {"group": "input", "gate": "all", "ratio": 0.02, "cases": 12},
    *({"group": g, "gate": gate, "ratio": 3.5 if gate == "f" and g == "weight_hh" else 0.01,
       "cases": 12} for g in ("weight_ih", "weight_hh") for gate in "ifgo"),
    {"group": "weight_hr", "gate": "all", "ratio": "inf", "cases": 2},
]


def results():
    good = {
        "name": "good", "target": "good", "description": "a correct LSTM", "status": "pass",
        "supports": {}, "gradients": "autograd", "variant": None, "features": FEATURES,
        "duration_s": 3.0, "error": None,
        "checks": [
            passing("output", 0.1),
            passing("step-by-step", 0.2),  # a property, no "kind": after the reference checks
            passing("h_n", 0.05),
            passing("gradients", 0.3, data={"gradient_blocks": GRADIENT_BLOCKS}),
            passing("training", 0.4, kind="property", data={"runs": [
                {"optimizer": "sgd", "reference_loss": [1.0, 0.8, 0.6, 0.5],
                 "implementation_loss": [1.0, 0.8, 0.61, 0.52], "first_divergence": 2},
                {"optimizer": "adam", "reference_loss": [1.0, 0.5, 0.3],
                 "implementation_loss": [1.0, 0.5, 0.3], "first_divergence": None}]}),
        ]}
    bad = {
        "name": "mypkg.lstm:Broken", "target": "mypkg.lstm:Broken", "description": "planted bug",
        "status": "fail", "supports": {}, "gradients": "autograd", "variant": None,
        "features": dict(FEATURES, multi_layer={"supported": True, "cases": 3, "failed": 2}),
        "duration_s": 4.0, "error": None,
        "checks": [
            failing_output(),
            {"check": "causality", "kind": "property", "status": "timeout", "examples": 1,
             "message": "forward took longer than 60 s (killed)", "failure": None,
             "samples": []},
        ]}
    absent = {
        "name": "flax", "target": "parity_implementations.flax_lstm:FlaxAdapter",
        "description": "Flax's LSTM", "status": "not-installed", "supports": {},
        "gradients": "autograd", "variant": None, "features": {}, "duration_s": 0.0,
        "error": None,
        "checks": [{"check": "output", "status": "not-installed",
                    "message": "jax is not installed: pip install parity[jax]"}]}
    return {
        "format": "parity-results/1", "verdict": "fail", "seed": 1234, "max_examples": 40,
        "started": "2026-11-23T10:00:00+00:00", "duration_s": 41.2,
        "command": "python -m parity check --seed 1234",
        "environment": {"parity": "0.1.0", "python": "3.11.7", "torch": "2.13.0+cpu",
                        "numpy": "2.0", "hypothesis": "6.1", "platform": "Linux",
                        "processor": "AMD EPYC", "git_commit": "abc1234"},
        "implementations": [good, bad, absent],
        "studies": {
            "bench": [{"implementation": "good", "shape": [100, 8, 32, 64], "dtype": "float32",
                       "pass": "forward", "seconds": 0.02, "reference_seconds": 0.01,
                       "ratio": 2.0, "peak_bytes": 3 * 2**20},
                      {"implementation": "good", "shape": [100, 8, 32, 64], "dtype": "float32",
                       "pass": "forward+backward", "seconds": 0.03,
                       "reference_seconds": 0.04, "ratio": 0.75, "peak_bytes": None}],
            "audit": {"subject": "the nested-network article", "groups": ["inner", "outer"],
                      "cases": [{"seq_len": n, "group": g, "cosine": c, "relative_error": e,
                                 "seed": s}
                                for n, c, e in ((4, 0.99, 0.01), (16, 0.8, 0.3),
                                                (64, 0.3, 0.9))
                                for g in ("inner", "outer") for s in (0, 1)],
                      "training": {"steps": [0, 10, 20], "article_rule": [1.0, 0.9, 0.85],
                                   "true_gradient": [1.0, 0.6, 0.4]},
                      "conclusion": "the article's rule drops the outer gradient"},
            "mystery": {"answer": 42},
        },
    }


def variant(**changes):
    """`results()` with top-level keys replaced."""
    data = copy.deepcopy(results())
    data.update(changes)
    return data
