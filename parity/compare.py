"""Comparing one tensor with the reference, and saying where in an LSTM an element lives."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .adapter import GATES, split_parameter_name
from .cases import CaseSpec

__all__ = ["Comparison", "compare", "describe_index", "format_where"]

DIRECTIONS = ("forward", "reverse")


@dataclass
class Comparison:
    """How one tensor compares with the reference on one case."""

    tensor: str
    passed: bool
    max_abs_error: float
    max_rel_error: float  # at the element with the largest absolute error
    tolerance: float
    ratio: float  # max_abs_error / tolerance: below 1 passes
    index: tuple[int, ...] | None = None
    where: dict = field(default_factory=dict)
    got: float | None = None
    want: float | None = None
    problem: str | None = None  # shape or non-finite values, when that is what is wrong
    unresolved: bool = False  # the dtype cannot resolve this value on this case: not compared
    # A misbehaviour status (parity.misbehaviour) when `problem` is one: "wrong-shape", "nan"...
    status: str | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["index"] = None if self.index is None else list(self.index)
        return d


def compare(
    tensor: str,
    got,
    want: np.ndarray,
    tol: float,
    spec: CaseSpec,
    resolved: bool = True,
    overflow: np.ndarray | None = None,
) -> Comparison:
    """Compare `got` with `want` (float64) under the absolute tolerance `tol`.

    Shape and non-finite values are checked even when `resolved` is False; the values are not.
    `overflow` marks the elements a correct run in the case's dtype cannot represent (the
    reference beyond the dtype's range, or torch's own run in that dtype not finite): anything
    goes there.
    """
    got = np.asarray(got)
    if got.shape != want.shape:
        return Comparison(
            tensor,
            False,
            float("inf"),
            float("inf"),
            tol,
            float("inf"),
            problem=f"{tensor} has shape {got.shape}; nn.LSTM gives {want.shape}",
            status="wrong-shape",
        )
    if want.size == 0:
        return Comparison(tensor, True, 0.0, 0.0, tol, 0.0)
    got64 = got.astype(np.float64)
    bad = ~np.isfinite(got64) & np.isfinite(want)
    if overflow is not None:
        bad &= ~overflow
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        return Comparison(
            tensor,
            False,
            float("inf"),
            float("inf"),
            tol,
            float("inf"),
            index,
            describe_index(tensor, index, spec),
            float(got64[index]),
            float(want[index]),
            problem=f"{tensor} is {got64[index]} where nn.LSTM gives {want[index]:.6g}",
            status="nan",
        )
    if not resolved:
        return Comparison(tensor, True, 0.0, 0.0, tol, 0.0, unresolved=True)
    err = np.abs(got64 - want)
    err[~np.isfinite(want)] = 0.0  # the reference itself overflowed: nothing to compare
    if overflow is not None:
        err[overflow] = 0.0
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape))
    max_abs = float(err[index])
    denom = abs(float(want[index]))
    rel = max_abs / denom if denom > 0 else (0.0 if max_abs == 0 else float("inf"))
    ratio = max_abs / tol if tol > 0 else (0.0 if max_abs == 0 else float("inf"))
    return Comparison(
        tensor,
        ratio <= 1.0,
        max_abs,
        rel,
        tol,
        ratio,
        index,
        describe_index(tensor, index, spec),
        float(got64[index]),
        float(want[index]),
    )


def describe_index(tensor: str, index: tuple[int, ...], spec: CaseSpec) -> dict:
    """Name the LSTM coordinates of one element: layer, direction, step, batch row, unit, gate."""
    c = spec.config
    out_h = c.output_hidden_size
    where: dict = {}
    if tensor in ("output", "input"):
        if spec.batch is None:
            step, rest = index[0], index[1:]
        elif c.batch_first:
            where["batch"], step, rest = index[0], index[1], index[2:]
        else:
            step, where["batch"], rest = index[0], index[1], index[2:]
        where["step"] = step
        if tensor == "output":
            where["layer"] = c.num_layers - 1
            where["direction"] = DIRECTIONS[rest[0] // out_h]
            where["unit"] = rest[0] % out_h
        else:
            where["feature"] = rest[0]
    elif tensor in ("h_n", "c_n", "h0", "c0"):
        where["layer"], d = divmod(index[0], c.num_directions)
        where["direction"] = DIRECTIONS[d]
        if spec.batch is not None:
            where["batch"] = index[1]
        where["unit"] = index[-1]
    else:
        parts = split_parameter_name(tensor)
        if parts is not None:
            kind, layer, d = parts
            where["layer"], where["direction"] = layer, DIRECTIONS[d]
            row = index[0]
            if kind == "weight_hr":
                where["unit"] = row
                where["hidden"] = index[1]
            else:
                gate, unit = divmod(row, c.hidden_size)
                if gate < len(GATES):
                    where["gate"] = GATES[gate]
                where["unit"] = unit
                if len(index) > 1:
                    where["column"] = index[1]
    return where


def format_where(tensor: str, where: dict) -> str:
    """``h_n[layer=1, direction=reverse, batch=2, unit=17]``."""
    if not where:
        return tensor
    return f"{tensor}[" + ", ".join(f"{k}={v}" for k, v in where.items()) + "]"
