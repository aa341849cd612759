"""The HTML parity report, rendered from a results dict (the JSON `check --json` writes).

One self-contained page: the matrix of implementations x features x checks; for each failure
the minimal example, where, by how much, the likely cause and the command that reproduces it;
plots (inline SVG) of the error against sequence length, of error / tolerance per check, of the
gradient error per parameter group and gate block, of training curves, and of the studies
(`bench`, `audit`) when the JSON has them; the environment.

Everything comes from the JSON, generically: the check columns are the check names found in it
(in order of first appearance, reference checks before properties), any status is rendered (an
unknown one as a problem), any study the page does not know is shown as its JSON. Rendered by
Jinja2 from `templates/`; plot geometry from `plots.py`; nothing is recomputed here.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from importlib import resources
from typing import Any

import jinja2

from . import plots
from .adapter import feature_label
from .checks import REFERENCE_CHECKS as _REFERENCE_CHECKS

__all__ = ["render_report"]

# status -> (cell style, symbol). Unknown statuses are problems: ("error", "!") and their name.
STATUS_CELLS = {
    "pass": ("pass", "\u2713"),
    "fail": ("fail", "\u2717"),
    # Only declared divergences found (parity.expected); a declared one that no longer happens.
    "known": ("known", "\u2248"),
    "fixed": ("fail", "\u2717"),
    "error": ("error", "!"),
    "unsupported": ("neutral", "\u2013"),
    "not-installed": ("neutral", "\u2013"),
}
PROBLEM_CELL = ("error", "!")
NOT_RUN_CELL = ("notrun", "\u00b7")
# a check record without "kind": these are comparisons
REFERENCE_CHECKS = frozenset(_REFERENCE_CHECKS)
GATE_COLUMNS = ("i", "f", "g", "o", "all")
# A study the page does not know is shown as JSON, cut at this many characters.
MAX_STUDY_JSON = 20_000


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("parity").joinpath("templates", name).read_text("utf-8")
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sig"] = _sig
    env.filters["where"] = _where
    return env


def _sig(x, n: int = 3) -> str:
    """A number to `n` significant digits; the writer's "inf"/"nan" strings and None as they are."""
    if x is None:
        return "\u2013"
    v = plots.as_number(x)
    if v is None:
        return str(x)
    if math.isinf(v):
        return "\u221e" if v > 0 else "-\u221e"
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    return f"{v:.{n}g}"


def _where(finding: dict) -> str:
    """``weight_hh_l0[layer=0, direction=forward, gate=o, unit=0]``."""
    where = finding.get("where") or {}
    inner = ", ".join(f"{k}={v}" for k, v in where.items())
    return f"{finding.get('tensor', '?')}[{inner}]" if inner else str(finding.get("tensor", "?"))


IMPLEMENTATION_DEFAULTS: dict[str, Any]
IMPLEMENTATION_DEFAULTS = {
    "name": "?",
    "target": "",
    "description": "",
    "status": "error",
    "gradients": "",
    "variant": None,
    "features": {},
    "checks": [],
    "duration_s": None,
    "error": None,
}
CHECK_DEFAULTS = {
    "status": "error",
    "examples": 0,
    "unsupported_cases": 0,
    "unresolved_cases": 0,
    "duration_s": None,
    "message": "",
    "worst": None,
    "failure": None,
    "samples": [],
    "note": "",
    "data": None,
    "known": [],
}
FINDING_DEFAULTS: dict[str, Any]
FINDING_DEFAULTS = {
    "tensor": "?",
    "where": {},
    "index": None,
    "got": None,
    "want": None,
    "max_abs_error": None,
    "max_rel_error": None,
    "tolerance": None,
    "ratio": None,
    "problem": None,
}
RUN_DEFAULTS: dict[str, Any]
RUN_DEFAULTS = {
    "verdict": "error",
    "seed": None,
    "max_examples": None,
    "started": "",
    "duration_s": None,
    "command": "",
    "format": "",
    "environment": {},
    "implementations": [],
    "studies": {},
}


def _filled(record, defaults: dict) -> dict:
    """`record` with every key the template reads (a JSON from another version may lack some)."""
    return {**defaults, **(record if isinstance(record, dict) else {})}


def _cell(status: str) -> tuple[str, str]:
    return STATUS_CELLS.get(status, PROBLEM_CELL)


def _kind(check: dict) -> str:
    kind = check.get("kind")
    if kind in ("reference", "property"):
        return kind
    return "reference" if check["check"] in REFERENCE_CHECKS else "property"


def _columns(implementations: list[dict]) -> list[dict]:
    """Check columns: names in order of first appearance, reference checks first."""
    seen: dict[str, str] = {}
    for impl in implementations:
        for c in impl.get("checks") or []:
            seen.setdefault(c["check"], _kind(c))
    ordered = [n for n, k in seen.items() if k == "reference"] + [
        n for n, k in seen.items() if k == "property"
    ]
    return [{"name": n, "kind": seen[n], "series": i} for i, n in enumerate(ordered)]


def _feature_columns(implementations: list[dict]) -> list[dict]:
    names = list(dict.fromkeys(f for impl in implementations for f in impl.get("features") or {}))
    return [{"name": n, "label": feature_label(n)} for n in names]


def _ratio_text(value) -> str:
    v = plots.as_number(value)
    if v is None:
        return ""
    return "\u221e\u00d7" if math.isinf(v) else f"{v:.2g}\u00d7"


def _check_cell(check: dict | None) -> dict:
    if check is None:
        style, symbol = NOT_RUN_CELL
        return {
            "status": "not-run",
            "style": style,
            "symbol": symbol,
            "text": "",
            "title": "not run",
        }
    status = check.get("status", "error")
    style, symbol = _cell(status)
    failure = check.get("failure") or {}
    finding = failure.get("finding") or {}
    worst = check.get("worst") or {}
    examples, unresolved = check.get("examples", 0), check.get("unresolved_cases", 0)
    text = ""
    if status == "pass" and worst and unresolved < examples:
        text = _ratio_text(worst.get("ratio"))
    elif status == "fail":
        text = _ratio_text(finding.get("ratio")) if finding else ""
    elif status not in ("error", "unsupported"):
        text = status  # not-installed, and statuses this page does not know
    title = [check.get("message") or status]
    if examples:
        title.append(
            f"{examples} cases"
            + (f", {unresolved} too ill-conditioned to compare" if unresolved else "")
        )
    if check.get("note"):
        title.append(check["note"])
    return {
        "status": status,
        "style": style,
        "symbol": symbol,
        "text": text,
        "title": "; ".join(title),
    }


def _feature_cell(feature: dict) -> dict:
    cases, failed = feature.get("cases", 0), feature.get("failed", 0)
    if not feature.get("supported"):
        style, symbol = _cell("unsupported")
        return {
            "style": style,
            "symbol": symbol,
            "text": "",
            "status": "unsupported",
            "title": "not supported: not drawn",
        }
    if failed:
        style, symbol = _cell("fail")
        return {
            "style": style,
            "symbol": symbol,
            "text": f"{failed}/{cases}",
            "status": "fail",
            "title": f"{failed} of {cases} cases with this feature failed a check",
        }
    if not cases:
        style, symbol = NOT_RUN_CELL
        return {
            "style": style,
            "symbol": symbol,
            "text": "",
            "status": "not-drawn",
            "title": "supported; no case drew it",
        }
    style, symbol = _cell("pass")
    return {
        "style": style,
        "symbol": symbol,
        "text": "",
        "status": "pass",
        "title": f"{cases} cases with this feature, none failing",
    }


def _failure(check: dict, impl: dict, seed) -> dict | None:
    """What the page says about a check that did not pass (and is not merely unsupported)."""
    status = check.get("status", "error")
    style, _ = _cell(status)
    if style not in ("fail", "error"):
        return None
    f = dict(check.get("failure") or {})
    reproduce = f.get("reproduce")
    rerun = None
    if not reproduce and impl.get("target"):
        # No minimal case recorded: the same search again is the best reproduction there is.
        rerun = f"python -m parity check --impl {impl['target']} --only {check['check']}" + (
            f" --seed {seed}" if seed is not None else ""
        )
    finding = f.get("finding") or None
    others = [
        _filled(c, FINDING_DEFAULTS)
        for c in f.get("comparisons") or []
        if isinstance(c, dict) and c != finding
    ]
    finding = _filled(finding, FINDING_DEFAULTS) if finding else None
    return {
        "check": check["check"],
        "status": status,
        "style": style,
        "message": check.get("message") or f.get("message") or "",
        "case": f.get("case") or {},
        "case_id": f.get("case_id"),
        "shapes": f.get("shapes") or {},
        "finding": finding,
        "others": others,
        "likely_cause": f.get("likely_cause"),
        "diagnosis_error": f.get("diagnosis_error"),
        "exception": f.get("exception"),
        "reproduce": reproduce,
        "rerun": rerun,
        "note": check.get("note") or "",
    }


def _known(impl: dict) -> list[dict]:
    """The declared divergences of every check, each with its evidence (or none: fixed)."""
    out = []
    for c in impl.get("checks") or []:
        for k in (c.get("known") or []) if isinstance(c, dict) else []:
            if not isinstance(k, dict):
                continue
            evidence = k.get("evidence") or {}
            out.append(
                {
                    "check": c.get("check", "?"),
                    "status": k.get("status", "?"),
                    "style": "known" if k.get("status") == "known" else "fail",
                    "cause": k.get("cause", ""),
                    "where": k.get("where", ""),
                    "cases": k.get("cases", 0),
                    "message": evidence.get("message", ""),
                    "case_id": evidence.get("case_id"),
                    "reproduce": evidence.get("reproduce"),
                }
            )
    return out


# -- plots -------------------------------------------------------------------------------------
def _seq_len_plot(impl: dict, columns: list[dict]) -> dict | None:
    series_of = {c["name"]: c["series"] for c in columns}
    series = []
    for c in impl.get("checks") or []:
        pts = [(s[0], s[2]) for s in c.get("samples") or [] if _sample_ok(s)]
        if pts:
            series.append((c["check"], pts, series_of.get(c["check"], 0)))
    if not series:
        return None
    return plots.scatter_chart(
        f"{impl['name']}: error / tolerance against sequence length",
        series,
        x_label="sequence length",
        y_label="error / tolerance",
    )


def _sample_ok(sample) -> bool:
    return (
        isinstance(sample, (list, tuple))
        and len(sample) >= 3
        and plots.as_number(sample[0]) is not None
    )


def _distribution_plot(implementations: list[dict], columns: list[dict]) -> dict | None:
    lanes = []
    for col in columns:
        for k, impl in enumerate(implementations):
            for c in impl.get("checks") or []:
                if c["check"] == col["name"]:
                    values = [s[2] for s in c.get("samples") or [] if _sample_ok(s)]
                    if values:
                        lanes.append((col["name"], impl["name"], k, values))
    if not lanes:
        return None
    return plots.strip_chart(
        "error / tolerance of every case, per check and implementation",
        lanes,
        x_label="error / tolerance (each point a case; right of the line fails)",
    )


def _gradient_blocks_plot(impl: dict) -> dict | None:
    for c in impl.get("checks") or []:
        blocks = (c.get("data") or {}).get("gradient_blocks") if c["check"] == "gradients" else None
        if blocks:
            rows = list(dict.fromkeys(b["group"] for b in blocks))
            present = {b["gate"] for b in blocks}
            cols = [g for g in GATE_COLUMNS if g in present] + sorted(present - set(GATE_COLUMNS))
            cells = {(b["group"], b["gate"]): b["ratio"] for b in blocks}
            return plots.grid_chart(
                f"{impl['name']}: worst gradient error / tolerance per "
                f"parameter group and gate block (layers and directions "
                f"merged)",
                rows,
                cols,
                cells,
            )
    return None


def _training_plots(impl: dict) -> list[dict]:
    out = []
    for c in impl.get("checks") or []:
        for run in (c.get("data") or {}).get("runs") or []:
            ref, got = run.get("reference_loss") or [], run.get("implementation_loss") or []
            if not ref and not got:
                continue
            div = run.get("first_divergence")
            out.append(
                plots.line_chart(
                    f"{impl['name']}: {c['check']} ({run.get('optimizer', '?')}): loss per step",
                    [
                        ("nn.LSTM (reference)", list(enumerate(ref))),
                        (impl["name"], list(enumerate(got))),
                    ],
                    x_label="step",
                    y_label="loss",
                    vlines=[(div, f"diverges at step {div}")] if isinstance(div, int) else [],
                )
            )
    return out


# -- studies -------------------------------------------------------------------------------------
def _bench(rows: list[dict], implementations: list[str]) -> dict:
    order = list(dict.fromkeys(implementations + [r.get("implementation", "?") for r in rows]))

    def label(r):
        shape = "\u00d7".join(str(s) for s in r.get("shape") or [])
        return f"{r.get('implementation', '?')} {shape} {r.get('dtype', '')} {r.get('pass', '')}"

    chart = plots.bar_chart(
        "time relative to torch.nn.LSTM (same shape, dtype and pass; below 1 is faster)",
        [(label(r), r.get("ratio"), order.index(r.get("implementation", "?"))) for r in rows],
        x_label="time / torch.nn.LSTM's time",
        reference_label="torch.nn.LSTM",
    )
    return {"rows": rows, "plot": chart}


def _audit(audit: dict) -> dict:
    cases = audit.get("cases") or []
    groups = list(dict.fromkeys(list(audit.get("groups") or []) + [c.get("group") for c in cases]))

    def per_group(key):
        out = []
        for g in groups:
            by_len = defaultdict(list)
            for c in cases:
                v = plots.as_number(c.get(key))
                if c.get("group") == g and v is not None and c.get("seq_len") is not None:
                    by_len[c["seq_len"]].append(v)
            if by_len:
                out.append((str(g), [(n, sum(vs) / len(vs)) for n, vs in sorted(by_len.items())]))
        return out

    seeds = len({c.get("seed") for c in cases})
    mean = f" (mean over {seeds} seeds)" if seeds > 1 else ""
    result = {
        "subject": audit.get("subject", ""),
        "conclusion": audit.get("conclusion", ""),
        "plots": [],
    }
    cosine, rel = per_group("cosine"), per_group("relative_error")
    if cosine:
        result["plots"].append(
            plots.line_chart(
                f"cosine(article's gradient, true gradient) per group{mean}",
                cosine,
                x_label="sequence length",
                y_label="cosine",
                hlines=[(1.0, "identical direction")],
            )
        )
    if rel:
        result["plots"].append(
            plots.line_chart(
                f"relative error of the article's gradient per group{mean}",
                rel,
                x_label="sequence length",
                y_label="relative error",
                log_y=True,
            )
        )
    training = audit.get("training") or {}
    steps = training.get("steps") or []
    curves = [
        (name, list(zip(steps, training.get(key) or [])))
        for key, name in (("article_rule", "article's rule"), ("true_gradient", "true gradient"))
    ]
    if steps and any(p for _, p in curves):
        result["plots"].append(
            plots.line_chart(
                "training loss: article's rule against the true gradient",
                curves,
                x_label="step",
                y_label="loss",
            )
        )
    return result


def _studies(studies: dict, implementations: list[str]) -> dict:
    out: dict[str, Any] = {"bench": None, "audit": None, "other": []}
    for name, value in (studies or {}).items():
        if name == "bench" and isinstance(value, list) and value:
            out["bench"] = _bench(value, implementations)
        elif name == "audit" and isinstance(value, dict) and value:
            out["audit"] = _audit(value)
        elif value:
            text = json.dumps(value, indent=1)
            if len(text) > MAX_STUDY_JSON:
                text = text[:MAX_STUDY_JSON] + "\n... (cut; the whole study is in the JSON)"
            out["other"].append({"name": name, "json": text})
    return out


# -- the page ---------------------------------------------------------------------------------
def _normalized(data: dict) -> dict:
    data = _filled(data, RUN_DEFAULTS)
    data["implementations"] = [
        dict(
            _filled(impl, IMPLEMENTATION_DEFAULTS),
            checks=[
                _filled(c, CHECK_DEFAULTS)
                for c in (impl.get("checks") or [])
                if isinstance(c, dict) and "check" in c
            ],
        )
        for impl in data["implementations"] or []
        if isinstance(impl, dict)
    ]
    return data


def _worst_ratio(check: dict):
    """The number a check's row shows: the worst passing ratio, or the failure's."""
    finding = (check["failure"] or {}).get("finding") or {}
    if (
        check["status"] == "pass"
        and check["worst"]
        and check["unresolved_cases"] < check["examples"]
    ):
        return check["worst"].get("ratio")
    return finding.get("ratio")


def build_view(data: dict) -> dict:
    """Everything the template draws, from `data` (a parsed results JSON)."""
    data = _normalized(data)
    implementations = data["implementations"]
    columns = _columns(implementations)
    features = _feature_columns(implementations)
    seed = data.get("seed")
    counts: defaultdict[str, int]
    rows, counts = [], defaultdict(int)
    for i, impl in enumerate(implementations):
        checks = {c["check"]: c for c in impl.get("checks") or []}
        for c in checks.values():
            counts[c.get("status", "error")] += 1
        status = impl.get("status", "error")
        style, symbol = _cell(status)
        row = {
            "impl": impl,
            "anchor": f"impl-{i + 1}",
            "status": {
                "status": status,
                "style": style,
                "symbol": symbol,
                "text": status,
                "title": impl.get("error") or status,
            },
            "features": [
                _feature_cell((impl.get("features") or {})[f["name"]])
                if f["name"] in (impl.get("features") or {})
                else {
                    "style": NOT_RUN_CELL[0],
                    "symbol": NOT_RUN_CELL[1],
                    "text": "",
                    "status": "unknown",
                    "title": "not reported",
                }
                for f in features
            ],
            "cells": [
                dict(_check_cell(checks.get(col["name"])), check=col["name"]) for col in columns
            ],
            "checks": [dict(c, cell=_check_cell(c), ratio=_worst_ratio(c)) for c in impl["checks"]],
            "failures": [
                f for f in (_failure(c, impl, seed) for c in impl.get("checks") or []) if f
            ],
            "known": _known(impl),
            "plots": [p for p in (_seq_len_plot(impl, columns), _gradient_blocks_plot(impl)) if p]
            + _training_plots(impl),
        }
        rows.append(row)
    verdict = data.get("verdict", "error")
    return {
        "data": data,
        "verdict": verdict,
        "verdict_style": _cell(verdict)[0],
        "columns": columns,
        "reference_columns": [c for c in columns if c["kind"] == "reference"],
        "property_columns": [c for c in columns if c["kind"] == "property"],
        "features": features,
        "rows": rows,
        "counts": dict(counts),
        "distribution": _distribution_plot(implementations, columns),
        "studies": _studies(data.get("studies") or {}, [i["name"] for i in implementations]),
        "environment": data.get("environment") or {},
        "legend": [(s, STATUS_CELLS[s]) for s in ("pass", "known", "fail", "error", "unsupported")],
    }


def render_report(data: dict) -> str:
    """The page for `data` (a parsed results JSON)."""
    return _environment().get_template("report.html.j2").render(**build_view(data))
