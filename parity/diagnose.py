"""Naming the likely cause of a failure.

Two kinds of evidence, tried in order on the minimal failing example:

1. Known mistakes, reproduced: `nn.LSTM` is run again with the mistake built in (gate blocks in
   another order, one bias dropped, a forget bias added, the initial state ignored, h0 and c0
   swapped). When the implementation matches one of those, that is the cause, stated plainly.
2. The shape of the error: only the reverse direction, only from some layer on, only from some
   time step on, only the final state, only the gradients, a gradient that is zero or a constant
   multiple, errors confined to one gate block, input gradients right only for the last steps.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from .adapter import GATES, split_parameter_name
from .checks import (FORWARD_CHECKS, CheckOutcome, Evaluation, _unpack, check_forward,
                     difference_problem)
from .precision import reduced_precision_mistakes
from .reference import FORWARD_NAMES, run_torch_lstm
from .tolerances import tolerance

if TYPE_CHECKING:
    from .cases import CaseSpec
    from .runner import Checker

__all__ = ["diagnose", "known_mistakes"]


def diagnose(checker: "Checker", spec: "CaseSpec", check: str, outcome: CheckOutcome) -> str | None:
    """A one-sentence likely cause for `outcome`, or None when the evidence points nowhere."""
    if check == "finite-differences":
        ev = checker.evaluation(spec, check)
        return _diagnose_fd(ev, outcome)
    ev = checker.evaluation(spec, check)
    if check in FORWARD_CHECKS:
        return _diagnose_forward(ev)
    if check == "gradients":
        return _diagnose_gradients(ev, outcome)
    return None


# -- forward ---------------------------------------------------------------------------------
def _forward_matches(ev: Evaluation, forward: dict[str, np.ndarray],
                     got: dict[str, np.ndarray] | None = None) -> bool:
    """Does the implementation's forward (or `got`) match `forward` within tolerance?"""
    ref = ev.reference()
    got = ev.forward() if got is None else got
    for name in FORWARD_NAMES:
        want = forward[name]
        if np.asarray(got[name]).shape != want.shape:
            return False
        spread = ref.spread_of("forward", name)
        tol = tolerance(ev.spec.dtype, want, spread, 1.0)
        if want.size and not np.max(np.abs(np.asarray(got[name], np.float64) - want)) <= tol:
            return False  # written so that NaN never matches
    return True


def _reorder_gates(params: dict, order: tuple[str, ...], hidden: int) -> dict:
    """nn.LSTM weights equivalent to an implementation that reads block k as gate order[k]."""
    out = {}
    for name, a in params.items():
        parts = split_parameter_name(name)
        if parts is None or parts[0] == "weight_hr":
            out[name] = a
            continue
        blocks = [a[k * hidden:(k + 1) * hidden] for k in range(4)]
        new = [None] * 4
        for k, gate in enumerate(order):
            new[GATES.index(gate)] = blocks[k]
        out[name] = np.concatenate(new, axis=0)
    return out


def _bias_variant(params: dict, keep: str, hidden: int, forget_bias: float = 0.0,
                  doubled: bool = False) -> dict:
    out = dict(params)
    for name in params:
        if name.startswith("bias_ih") or name.startswith("bias_hh"):
            kind = name[:7]
            if keep == "both":
                value = params[name].copy()
            elif kind == keep:
                value = params[name] * (2.0 if doubled else 1.0)
            else:
                value = np.zeros_like(params[name])
            if forget_bias and kind == "bias_ih":
                value = value.copy()
                value[hidden:2 * hidden] += forget_bias
            out[name] = value
    return out


def known_mistakes(ev: Evaluation):
    """(cause, forward-of-nn.LSTM-with-that-mistake) pairs, cheapest and likeliest first."""
    c, case = ev.spec.config, ev.case
    params = {n: np.asarray(a, np.float64) for n, a in ev.reduced.items()}
    x = np.asarray(case.input, np.float64)
    state = None if case.state is None else tuple(np.asarray(s, np.float64) for s in case.state)
    h = c.hidden_size

    def run(p=params, s=state):
        return run_torch_lstm(c, p, x, s).forward

    for order in itertools.permutations(GATES):
        if order == GATES:
            continue
        yield (f"gate order: the implementation reads the gate blocks as "
               f"{', '.join(order)}; nn.LSTM's order is i, f, g, o",
               lambda order=order: run(_reorder_gates(params, order, h)))
    if c.bias:
        yield ("bias: bias_hh is ignored (one bias instead of nn.LSTM's two)",
               lambda: run(_bias_variant(params, "bias_ih", h)))
        yield ("bias: bias_ih is ignored (one bias instead of nn.LSTM's two)",
               lambda: run(_bias_variant(params, "bias_hh", h)))
        yield ("bias: bias_ih is used twice and bias_hh not at all",
               lambda: run(_bias_variant(params, "bias_ih", h, doubled=True)))
        yield ("bias: bias_hh is used twice and bias_ih not at all",
               lambda: run(_bias_variant(params, "bias_hh", h, doubled=True)))
    swappable = [n for n in params if n.startswith("weight_ih")
                 and params[n].shape == params["weight_hh" + n[len("weight_ih"):]].shape]
    if swappable:  # weight_ih and weight_hh have one shape when input_size == the output's size
        yield ("weights: weight_ih and weight_hh are used in each other's place (they have the "
               "same shape when input_size equals the hidden (or projected) size)",
               lambda: run({**params, **{n: params["weight_hh" + n[len("weight_ih"):]]
                                         for n in swappable},
                            **{"weight_hh" + n[len("weight_ih"):]: params[n]
                               for n in swappable}}))
    if c.bias:
        yield ("bias: a forget-gate bias of +1 is added (nn.LSTM adds none)",
               lambda: run(_bias_variant(params, "both", h, forget_bias=1.0)))
    if state is not None:
        yield ("initial state: h0 and c0 are ignored (zeros are used instead)",
               lambda: run(s=None))
        if c.proj_size == 0:
            yield ("initial state: h0 and c0 are swapped on the way in",
                   lambda: run(s=(state[1], state[0])))
            yield ("initial state: c0 is ignored (h0 is used as both h0 and c0)",
                   lambda: run(s=(state[0], state[0])))
    # Products in TF32, bfloat16, float16 (parity.precision): after the structural mistakes.
    yield from reduced_precision_mistakes(ev)


def _bad_mask(ev: Evaluation, name: str) -> np.ndarray | None:
    ref = ev.reference()
    want = ref.want.forward[name]
    got = np.asarray(ev.forward()[name])
    if got.shape != want.shape or not want.size:
        return None
    spread = ref.spread_of("forward", name)
    tol = tolerance(ev.spec.dtype, want, spread, 1.0)
    err = np.abs(got.astype(np.float64) - want)
    err[~np.isfinite(err)] = np.inf
    return err > tol


def _diagnose_forward(ev: Evaluation) -> str | None:
    spec, c = ev.spec, ev.spec.config
    got = ev.forward()
    want = ev.reference().want.forward
    shapes_ok = all(np.asarray(got[n]).shape == want[n].shape for n in FORWARD_NAMES)
    if not shapes_ok:
        for n in FORWARD_NAMES:
            if np.asarray(got[n]).shape != want[n].shape:
                return _shape_cause(n, np.asarray(got[n]).shape, want[n].shape, spec)
    for n in FORWARD_NAMES:
        values = np.asarray(got[n], np.float64)
        if not np.all(np.isfinite(values) | ~np.isfinite(want[n])):
            return (f"non-finite: {n} holds NaN or Inf where nn.LSTM's is finite (an overflow, "
                    f"0/0, log or sqrt of a negative, or uninitialized memory)")
    # Swapped final states are cheap to see and common.
    if _close(got["h_n"], want["c_n"]) and _close(got["c_n"], want["h_n"]) and \
            not _close(got["h_n"], want["h_n"]):
        return "final state: h_n and c_n are returned in each other's place"
    layout = _layout_mistake(ev, got, want)
    if layout:
        return layout
    if _first_call_remembered(ev):
        return ("state between calls: a fresh instance gives nn.LSTM's answer on this case, the "
                "instance first called on other data (and other weights, where it takes them) "
                "does not; it keeps something from that call: weights packed or transposed "
                "once and not refreshed when they change, or a state carried over")
    for cause, forward in known_mistakes(ev):
        if _forward_matches(ev, forward()):
            return cause
    passed = {n: check_forward(ev, n).passed for n in FORWARD_NAMES}
    masks = {n: _bad_mask(ev, n) for n in FORWARD_NAMES}
    out_h, dirs = c.output_hidden_size, c.num_directions
    # Direction and layer, from the final states (index = layer * D + direction).
    rows = set()
    for n in ("h_n", "c_n"):
        m = masks[n]
        if m is not None and m.any():
            rows |= {int(i) for i in np.nonzero(m.reshape(m.shape[0], -1).any(axis=1))[0]}
    out_mask = masks["output"]
    if out_mask is not None and spec.batch is not None and c.batch_first:
        out_mask = np.swapaxes(out_mask, 0, 1)
    if out_mask is not None and out_mask.ndim == 2:
        out_mask = out_mask[:, None, :]
    out_dirs = set()
    if out_mask is not None and out_mask.any():
        for d in range(dirs):
            if out_mask[..., d * out_h:(d + 1) * out_h].any():
                out_dirs.add(d)
    row_dirs = {r % dirs for r in rows}
    if dirs == 2 and (out_dirs | row_dirs) == {1}:
        return ("reverse direction: only the reverse direction differs; it must read the "
                "sequence from the last step to the first and write each output back at its "
                "own time step, and its final state is the one after step 0")
    layers = sorted({r // dirs for r in rows})
    if layers and layers[0] > 0:
        return (f"layers: layer 0 matches and layer {layers[0]} on does not; check what feeds "
                f"layer {layers[0]} (the previous layer's output, both directions, after "
                f"projection) and that every layer uses its own weights")
    if passed["output"] and not (passed["h_n"] and passed["c_n"]):
        wrong = [n for n in ("h_n", "c_n") if not passed[n]]
        return (f"final state: the output matches but {' and '.join(wrong)} do"
                f"{'es' if len(wrong) == 1 else ''} not; the final state is taken from the "
                f"wrong step, layer or direction, or laid out differently from nn.LSTM's "
                f"(num_layers * num_directions, batch, hidden), never batch-first")
    if out_mask is not None and out_mask.any() and 0 in out_dirs:
        steps = np.nonzero(out_mask[..., :out_h].reshape(out_mask.shape[0], -1).any(axis=1))[0]
        first = int(steps[0])
        if first > 0:
            return (f"time: the output matches for steps 0..{first - 1} and differs from step "
                    f"{first} on (seq_len {spec.seq_len}); something changes at that step "
                    f"(a buffer or chunk boundary, a long-sequence special case, drift)")
    worst_rel = max((check_forward(ev, n).worst.max_rel_error for n in FORWARD_NAMES
                     if not passed[n]), default=0.0)
    if worst_rel < 1e-2:
        return (f"precision: the error is small (relative {worst_rel:.1g}) and no structural "
                f"mistake reproduces it: reduced precision somewhere inside (float16/bfloat16 "
                f"rounding, a lossy approximation of sigmoid/tanh) or a small extra term")
    return None


def _first_call_remembered(ev: Evaluation) -> bool:
    """Does a fresh instance, called on this case first, match the reference?"""
    try:
        fresh = ev._build(ev.implementation_params)
        got = _unpack("forward", ev._call("forward", fresh.forward, ev.case.input,
                                          ev.case.state))
    except Exception:  # noqa: BLE001 - no evidence either way
        return False
    return _forward_matches(ev, ev.reference().want.forward, got)


def _layout_mistake(ev: Evaluation, got: dict, want: dict) -> str | None:
    """The output right in value but misplaced: the layout mistakes a port makes (reading a
    (T, D, B, H) output as (T, B, D, H); a reverse direction written back in reverse order)."""
    spec, c = ev.spec, ev.spec.config
    if c.num_directions != 2 or not all(_close(got[n], want[n]) for n in ("h_n", "c_n")):
        return None
    out = np.asarray(want["output"], np.float64)
    if spec.batch is None:
        out = out[:, None]
    elif c.batch_first:
        out = out.swapaxes(0, 1)
    t, b, h = out.shape[0], out.shape[1], c.output_hidden_size

    def as_given(y):  # back to the case's layout
        if spec.batch is None:
            return y[:, 0]
        return y.swapaxes(0, 1) if c.batch_first else y

    if b > 1:
        # Reading (T, D, B, H) memory as (T, B, D, H): what ONNX's Y gives without a transpose.
        misread = out.reshape(t, b, 2, h).transpose(0, 2, 1, 3).reshape(t, b, 2 * h)
        if _close(got["output"], as_given(misread)):
            return ("layout: the output's batch and direction axes are swapped: the directions "
                    "come as (seq, direction, batch, hidden), ONNX's Y, and were reshaped to "
                    "(seq, batch, direction * hidden) without moving the direction axis next "
                    "to hidden first")
    if t > 1:
        unflipped = out.copy()
        unflipped[..., h:] = out[::-1, :, h:]
        if _close(got["output"], as_given(unflipped)):
            return ("reverse direction: its outputs are in reverse time order: it ran over the "
                    "flipped sequence and its outputs were stored as they came, not flipped "
                    "back (output[t] of the reverse direction belongs to input step t)")
    return None


def _shape_cause(name: str, got: tuple, want: tuple, spec) -> str:
    c = spec.config
    if sorted(got) == sorted(want):
        return (f"layout: {name} has shape {got} where nn.LSTM gives {want}: the same sizes in "
                f"another order (batch_first applies to input and output only)")
    if c.proj_size and name in ("h_n", "output") and c.hidden_size in got:
        return f"projection: {name} has shape {got}, not projected to proj_size={c.proj_size}"
    return f"shape: {name} has shape {got} where nn.LSTM gives {want}"


def _close(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or not a.size:
        return False
    scale = max(float(np.max(np.abs(b))), 1e-12)
    return float(np.max(np.abs(a - b))) <= 1e-4 * scale


# -- gradients ------------------------------------------------------------------------------
def _diagnose_gradients(ev: Evaluation, outcome: CheckOutcome) -> str | None:
    if not all(check_forward(ev, n).passed for n in FORWARD_NAMES):
        return ("forward: the forward pass differs too (see output, h_n, c_n); fix it first, "
                "the gradients follow from it")
    bad = [c for c in outcome.comparisons if not c.passed]
    if not bad:
        return None
    got, want = ev.gradients(), ev.reference().want.gradients
    zero = [c.tensor for c in bad if c.tensor in got and not np.any(got[c.tensor])
            and np.any(want[c.tensor])]
    if zero:
        return (f"detached: the gradient of {', '.join(zero)} is zero where nn.LSTM's is not; "
                f"{'it is' if len(zero) == 1 else 'they are'} detached from the graph "
                f"(.detach(), .data, a NumPy round trip) or not used")
    for c in bad:
        if c.tensor not in got or c.problem:
            continue
        g, w = np.asarray(got[c.tensor], np.float64).ravel(), want[c.tensor].ravel()
        if np.any(w) and np.any(g):
            k = float(g @ w / (w @ w))
            if abs(k - 1) > 1e-3 and np.max(np.abs(g - k * w)) <= 1e-6 * np.max(np.abs(g)):
                return f"scaled: the gradient of {c.tensor} is {k:.4g} times nn.LSTM's"
    truncated = _truncation(ev, got, want)
    if truncated:
        return truncated
    blocks = _gate_blocks(ev, bad)
    if blocks and len(blocks) < 4:
        names = ", ".join(sorted(blocks, key=GATES.index))
        return (f"backward: the forward pass matches and only the gradients of gate block(s) "
                f"{names} differ: check the derivative of that gate's activation (sigmoid for "
                f"i, f, o; tanh for g) and of tanh(c)")
    tensors = ", ".join(c.tensor for c in bad[:4])
    return (f"backward: the forward pass matches but the gradients of {tensors} differ: the "
            f"backward pass is wrong")


def _truncation(ev: Evaluation, got: dict, want: dict) -> str | None:
    """Input gradients right for the last steps and wrong before them: truncated BPTT."""
    spec, c = ev.spec, ev.spec.config
    if "input" not in got or c.bidirectional or spec.seq_len < 3:
        return None
    g, w = np.asarray(got["input"], np.float64), want["input"]
    if g.shape != w.shape:
        return None
    if spec.batch is not None and c.batch_first:
        g, w = np.swapaxes(g, 0, 1), np.swapaxes(w, 0, 1)
    err = np.abs(g - w).reshape(g.shape[0], -1).max(axis=1)
    scale = max(float(np.max(np.abs(w))), 1e-300)
    bad_steps = np.nonzero(err > 1e-6 * scale)[0]
    if not len(bad_steps):
        return None
    last_bad = int(bad_steps[-1])
    if last_bad < spec.seq_len - 1:
        good = spec.seq_len - 1 - last_bad
        return (f"truncated: the input gradient matches for the last {good} step(s) and differs "
                f"from step {last_bad} back: back-propagation through time is cut (a detach "
                f"every few steps, or a window)")
    return None


def _gate_blocks(ev: Evaluation, bad) -> set[str]:
    blocks: set[str] = set()
    got, want = ev.gradients(), ev.reference().want.gradients
    h = ev.spec.config.hidden_size
    for c in bad:
        parts = split_parameter_name(c.tensor)
        if parts is None or parts[0] == "weight_hr" or c.tensor not in got:
            continue
        err = np.abs(np.asarray(got[c.tensor], np.float64) - want[c.tensor])
        for k, gate in enumerate(GATES):
            block = err[k * h:(k + 1) * h]
            if block.size and np.max(block) > c.tolerance:
                blocks.add(gate)
    return blocks


# -- finite differences ------------------------------------------------------------------------
def _fd_culprits(ev: Evaluation) -> list[str]:
    """The tensors whose own directional differences disagree with their gradients."""
    problem = difference_problem(ev)
    if isinstance(problem, CheckOutcome):
        return []
    rng = np.random.default_rng(ev.spec.seed + 3)
    return [name for name in problem.point
            if not all(c.passed for c in problem.directional(rng, 1, [name]))]


def _diagnose_fd(ev: Evaluation, outcome: CheckOutcome) -> str | None:
    worst = outcome.worst
    if worst is None:
        return None
    if ev.adapter.supports.gradients == "none":
        return ("forward: the forward pass's own derivatives differ from nn.LSTM's gradients, "
                "so the forward computes a different function")
    where = worst.tensor
    if where.startswith("direction"):
        where = ", ".join(_fd_culprits(ev)) or "along random directions through every tensor"
    return (f"backward: the implementation's gradients disagree with differences of its own "
            f"forward ({where}): the backward pass is wrong, or the forward is not the function "
            f"the backward differentiates (a detach, a custom autograd function)")
