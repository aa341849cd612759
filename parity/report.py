"""The HTML parity report, rendered from a results dict (the JSON `check --json` writes).

One self-contained page: the matrix of implementations x features x checks, and for each
failure the minimal example, where, by how much, the likely cause and the command that
reproduces it. Rendered by Jinja2 from `templates/report.html.j2`; nothing is recomputed here.
"""

from __future__ import annotations

from importlib import resources

import jinja2

from .checks import CHECKS

__all__ = ["render_report"]

FEATURE_LABELS = {
    "multi_layer": "layers", "bidirectional": "bidirectional", "projection": "projection",
    "no_bias": "no bias", "batch_first": "batch_first", "unbatched": "unbatched",
    "dropout": "dropout", "float32": "float32", "float64": "float64",
}
SYMBOLS = {"pass": "\u2713", "fail": "\u2717", "error": "!", "unsupported": "\u2013"}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("parity").joinpath("templates", name).read_text("utf-8")
        ),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["sig"] = lambda x, n=3: x if isinstance(x, str) else f"{x:.{n}g}"
    return env


def _feature_status(feature: dict) -> str:
    if not feature["supported"]:
        return "unsupported"
    return "fail" if feature["failed"] else "pass"


def render_report(data: dict) -> str:
    """The page for `data` (a parsed results JSON)."""
    rows = []
    for impl in data["implementations"]:
        checks = {c["check"]: c for c in impl["checks"]}
        rows.append({
            "impl": impl,
            "features": [(label, "unsupported" if impl["status"] == "not-installed" else
                          _feature_status(impl["features"][name]), impl["features"][name])
                         for name, label in FEATURE_LABELS.items() if name in impl["features"]],
            "checks": [(name, checks.get(name)) for name in CHECKS],
        })
    return _environment().get_template("report.html.j2").render(
        data=data, rows=rows, checks=CHECKS, features=list(FEATURE_LABELS.values()),
        symbols=SYMBOLS,
    )
