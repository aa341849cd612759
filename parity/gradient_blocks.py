"""The gradients check's error per parameter group and gate block, for the report.

The gradients check compares each gradient tensor whole; here the same comparison (`compare`,
the same tolerance) is made on each gate block of the gated parameters (rows i, f, g, o of
`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`), so a report can show that only the forget gate's
gradients are off. Groups merge layers and directions: `weight_ih_l1_reverse` is `weight_ih`.
The search keeps the worst error / tolerance of each (group, gate) over every case it evaluated,
and the gradients check record carries them as ``data["gradient_blocks"]``.
"""

from __future__ import annotations

import numpy as np

from .adapter import GATES, split_parameter_name
from .cases import CaseSpec
from .compare import compare

__all__ = ["GATED", "WHOLE", "block_ratios", "group_of", "merge", "rows"]

GATED = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # row blocks i, f, g, o
WHOLE = "all"  # the gate of a tensor that has no gate blocks (input, h0, weight_hr...)


def group_of(tensor: str) -> str:
    parts = split_parameter_name(tensor)
    return parts[0] if parts else tensor


def block_ratios(
    tensor: str,
    got,
    want: np.ndarray,
    tol: float,
    spec: CaseSpec,
    resolved: bool,
    overflow: np.ndarray | None,
    whole_ratio: float,
) -> dict[tuple[str, str], float]:
    """(group, gate) -> error / tolerance of `tensor`'s gradient, per gate block where it has
    them (else the whole tensor's `whole_ratio`). Unresolved tensors give nothing."""
    group = group_of(tensor)
    got = np.asarray(got)
    hidden = spec.config.hidden_size
    if group not in GATED or got.shape != want.shape or want.shape[0] != len(GATES) * hidden:
        return {} if not resolved and np.isfinite(whole_ratio) else {(group, WHOLE): whole_ratio}
    out = {}
    for k, gate in enumerate(GATES):
        rows_ = slice(k * hidden, (k + 1) * hidden)
        c = compare(
            tensor,
            got[rows_],
            want[rows_],
            tol,
            spec,
            resolved,
            None if overflow is None else overflow[rows_],
        )
        if not c.unresolved:
            out[(group, gate)] = c.ratio
    return out


def merge(into: dict, blocks: dict | None) -> None:
    """Keep the worst ratio of each (group, gate), and how many cases measured it."""
    for key, ratio in (blocks or {}).items():
        worst, cases = into.get(key, (0.0, 0))
        into[key] = (max(worst, ratio), cases + 1)


def rows(blocks: dict) -> list[dict]:
    """The JSON form: ``[{"group", "gate", "ratio", "cases"}]``, groups in first-seen order."""
    return [
        {"group": g, "gate": gate, "ratio": ratio, "cases": cases}
        for (g, gate), (ratio, cases) in blocks.items()
    ]
