"""Real-world tensors: views with strides, and tensors that must stay as they were given.

Every tensor the other checks hand a torch module is a fresh contiguous copy. Real callers pass
views: a batch_first batch transposed to time-major, a slice of a larger batch or of wider
features, an h0/c0 expanded from one row (stride 0). A kernel that reads storage as if it were
contiguous gives garbage on those, and passes every other check. The `strides` property runs a
torch-module implementation on such views and compares with its own run on contiguous copies of
the same values; then it calls the module again on other data and checks that neither the
tensors it was given nor the outputs it returned the first time changed (an output that aliases
a buffer the module reuses, a state written into later).
"""

from __future__ import annotations

import numpy as np
import torch

from .evaluation import Evaluation, ImplementationError, Unsupported
from .metamorphic import Collector, PropertyOutcome, run_forward
from .reference import FORWARD_NAMES
from .torch_adapter import TorchAdapter

__all__ = ["run_strides", "strided_views", "torch_module_only"]


def torch_module_only(adapter) -> str | None:
    """Why `strides` cannot run on `adapter`, or None: it passes torch views to a torch module
    (other implementations are called with NumPy arrays, which their adapters copy)."""
    if isinstance(adapter, TorchAdapter):
        return None
    return "needs a torch module (it passes torch tensor views); the implementation is not one"


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(a))


def strided_views(spec, x: np.ndarray) -> list[tuple[str, torch.Tensor]]:
    """Non-contiguous tensors holding `x`'s values: (what it is, the view)."""
    views = []
    base = _tensor(np.swapaxes(x, 0, 1))
    views.append(
        ("a transposed view (the other of batch_first's layouts, transposed)", base.transpose(0, 1))
    )
    wide = torch.zeros(*x.shape[:-1], x.shape[-1] + 2, dtype=base.dtype)
    wide[..., 1:-1] = _tensor(x)
    views.append(("a slice of wider features (x[..., 1:-1] of a larger tensor)", wide[..., 1:-1]))
    if spec.batch is not None:
        axis = 0 if spec.config.batch_first else 1
        shape = list(x.shape)
        shape[axis] *= 2
        big = torch.zeros(*shape, dtype=base.dtype)
        rows = (slice(None),) * axis + (slice(1, None, 2),)
        big[rows] = _tensor(x)
        views.append(("every other row of a larger batch (a batch slice with stride 2)", big[rows]))
    return views


def _state_views(state) -> list[tuple[str, tuple, tuple]]:
    """(what, the state as views, the same values contiguous, as NumPy)."""
    h0, c0 = state
    out: list[tuple[str, tuple, tuple]] = []

    def sliced(a):
        wide = torch.zeros(*a.shape[:-1], a.shape[-1] + 1, dtype=torch.as_tensor(a).dtype)
        wide[..., :-1] = _tensor(a)
        return wide[..., :-1]

    out.append(("h0 and c0 slices of wider tensors", (sliced(h0), sliced(c0)), (h0, c0)))
    if h0.ndim == 3 and h0.shape[1] >= 2:
        one = (h0[:, :1], c0[:, :1])
        expanded = tuple(_tensor(s).expand(-1, h0.shape[1], -1) for s in one)
        same = tuple(np.repeat(s, h0.shape[1], axis=1) for s in one)
        out.append(("h0 and c0 expanded from one row (stride 0)", expanded, same))
    return out


def run_strides(ev: Evaluation):
    """The `strides` property on one case (raises Unsupported for an implementation that is
    not a torch module: it is called on NumPy arrays, which it copies)."""

    if not isinstance(ev.builder, TorchAdapter):
        raise Unsupported("strides: the implementation is not a torch module")
    built = ev.instance()
    spec, x, state = ev.spec, ev.case.input, ev.case.state
    col = Collector(ev, "strides")
    params = {n: _tensor(a) for n, a in ev.implementation_params.items()}

    def run(input, hx, keep=False):
        def call():
            with torch.no_grad():
                return built.run_module(params, input, hx)

        result = ev.call("forward", call)
        return (
            result
            if keep
            else {n: t.detach().numpy().copy() for n, t in zip(FORWARD_NAMES, result)}
        )

    try:
        plain = ev.forward()
        hx = None if state is None else tuple(_tensor(s) for s in state)
        for what, view in strided_views(spec, x):
            got = run(view, hx)
            for name in FORWARD_NAMES:
                col.add(f"input as {what} vs contiguous", name, got[name], plain[name])
        if state is not None:
            for what, views, contiguous in _state_views(state):
                want = plain if contiguous[0] is state[0] else run_forward(ev, built, x, contiguous)
                got = run(_tensor(x), views)
                for name in FORWARD_NAMES:
                    col.add(f"{what} vs contiguous", name, got[name], want[name])
        # Called again on other data: what it was given and what it returned stay as they were.
        given = {"input": _tensor(x)}
        if hx is not None:
            given["h0"], given["c0"] = (t.clone() for t in hx)
        first = run(given["input"], None if hx is None else (given["h0"], given["c0"]), keep=True)
        kept = {n: t.detach().clone() for n, t in zip(FORWARD_NAMES, first)}
        kept_given = {n: t.clone() for n, t in given.items()}
        run(_tensor(-2.0 * x + 1.0), None if hx is None else tuple(-t for t in hx))
        for name, t in zip(FORWARD_NAMES, first):
            same = torch.equal(t.detach(), kept[name]) or bool(
                torch.isnan(kept[name]).any() and torch.equal(t.isnan(), kept[name].isnan())
            )
            col.add_problem(
                "the first call's results after a second call",
                name,
                f"{name} returned by one call changed when the module was called "
                f"again on other data: it aliases a buffer the module reuses",
                passed=same,
            )
        for name, t in given.items():
            col.add_problem(
                "what the first call was given, after a second call",
                name,
                f"the {name} tensor given to one call changed when the module was "
                f"called again: the module writes into it later",
                passed=torch.equal(t, kept_given[name]),
            )
    except ImplementationError as exc:
        return PropertyOutcome("strides", False, error=exc)
    if any(not c.passed and c.problem for c in col.comparisons):
        return col.outcome(
            "tensors kept across calls: the module returns a buffer it writes "
            "into again on the next call, or writes into what it was given "
            "after the call returned"
        )
    return col.outcome(
        "strides ignored: a view (transposed, sliced, expanded) gives another "
        "answer than a contiguous copy of the same values; the implementation "
        "reads storage as if it were contiguous (call .contiguous(), or honour "
        "the strides)"
    )
