"""Naming the likely cause of a failure.

Two kinds of evidence, tried in order on the minimal failing example:

1. Known mistakes, reproduced: `nn.LSTM` is run again with the mistake built in (gate blocks in
   another order, one bias dropped, a forget bias added, the initial state ignored, h0 and c0
   swapped). When the implementation matches one of those, that is the cause, stated plainly.
2. The shape of the error, where it is unambiguous: only the reverse direction, only from some
   layer on, a final state that is another step's state, a gradient that is zero or the same
   constant multiple on every element (confirmed on a second case), errors confined to one gate
   block, input gradients right only for the last steps, errors with the statistics of rounding.

Where neither fits, the cause says so: "no known cause; the evidence: ..." (a wrong cause sends
the user to the wrong line of code). The full list, and the evidence each needs, is in
docs/likely-causes.md.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from .adapter import GATES, split_parameter_name
from .cases import CaseSpec
from .checks import FORWARD_CHECKS, check_forward, check_gradients, difference_problem
from .evaluation import CheckOutcome, Evaluation, Evaluator
from .mistakes import CellMistake, detached_recurrence_gradients, run_mistaken_lstm, trace
from .precision import reduced_precision_mistakes
from .reference import FORWARD_NAMES, run_torch_lstm
from .tolerances import tolerance

__all__ = ["NO_KNOWN_CAUSE", "diagnose", "known_mistakes"]

NO_KNOWN_CAUSE = "no known cause; the evidence: "

# Thresholds of the pattern tests below, each with its reason. They decide whether a pattern
# is there (a constant factor, a step where the error starts, a match with a rerun); they never
# decide a pass or a fail, which the checks' tolerances do.
# Several tensors off by "the same" constant factor: the factors agree to float64 noise of a
# least-squares fit, far below any real difference between two factors.
SAME_FACTOR_RTOL = 1e-6
# A ratio within this of 1 is no scaling at all (the tensor matches).
NO_SCALING = 1e-9
# got = k * want holds when what is left after the factor is under this fraction of the
# factor's own effect |k - 1| |want|: the rest of the difference is rounding.
SCALED_RESIDUAL = 1e-3
# A step whose output is off by 1% of the output's scale is where the error has started;
# rounding is 1e-7 (float32) or less.
STEP_ERROR_STARTS = 1e-2
# Rounding-like errors: relative size at most 1% (beyond is a formula, not precision), signs
# no more than half correlated with the values and no common offset beyond half the error.
ROUNDING_MAX_RELATIVE = 1e-2
ROUNDING_MAX_CORRELATION = 0.5
ROUNDING_MAX_OFFSET = 0.5
# Below this relative error, rounding is float32's (unit roundoff 6e-8, a few hundred ulps at
# most through a sequence); above it, a half-precision format's (bfloat16 4e-3, float16 5e-4).
FLOAT32_ROUNDING_LEVEL = 1e-5
# A rerun with a mistake built in "matches" the implementation within this fraction of the
# result's scale: both run in float64, so a real match is ~1e-12 apart, a near miss 1e-2.
RERUN_MATCHES = 1e-4
# A gradient step counts as wrong above this fraction of the gradient's scale (float64 runs).
STEP_GRADIENT_WRONG = 1e-6


def diagnose(checker: Evaluator, spec: CaseSpec, check: str, outcome: CheckOutcome) -> str | None:
    """A one-sentence likely cause for `outcome`, "no known cause; the evidence: ..." where no
    known cause fits, or None where the check has no diagnosis."""
    ev = checker.evaluation(spec, check)
    if outcome.status == "nondeterministic":
        return _dropout_in_eval(checker, spec, check)
    if check == "finite-differences":
        return _diagnose_fd(ev, outcome)
    if check in FORWARD_CHECKS:
        return _dropout_in_eval(checker, spec, check) or _diagnose_forward(ev, checker, check)
    if check == "gradients":
        return _diagnose_gradients(ev, outcome, checker)
    if check != "training":
        return _diagnose_property(checker, spec, check, ev, outcome)
    return None


# A property compares two runs of the implementation under nn.LSTM's rounding spread on the
# case (parity.metamorphic). Where every failing comparison is within this relative difference,
# the two runs differ by rounding only. If the forward (or, for gradients compared, the
# backward) also differs from nn.LSTM's on the case, the function it computes (no tanh of the
# cell, say, or a backward without tanh's derivative) grew that rounding past nn.LSTM's spread,
# and the property's own cause ("the state passed in is not used") would point at the wrong
# part.
PROPERTY_ROUNDING_RELATIVE = 1e-3
# ... and within this many times the property's tolerance (grown rounding was seen at 1.1x to
# 47x; a batch statistic leaking 1e-3 of the mean into each row, a real property bug, at 1e7x).
PROPERTY_ROUNDING_RATIO = 1e3


def _forward_passes(ev: Evaluation) -> bool:
    """Does the implementation's forward match nn.LSTM's on `ev`'s case (output, h_n, c_n)?"""
    return all(check_forward(ev, n).passed for n in FORWARD_NAMES)


def _diagnose_property(
    checker: Evaluator, spec: CaseSpec, check: str, ev: Evaluation, outcome: CheckOutcome
) -> str | None:
    """Where the property's own cause would point at the wrong part: its runs differ by grown
    rounding only on a case whose forward (or backward) differs from nn.LSTM's, or it fails on
    a batch_first case whose forward differs and passes with batch_first=False."""
    bad = [c for c in outcome.comparisons if not c.passed]
    rounding = bool(bad) and not any(
        c.problem
        or c.status
        or not c.max_rel_error <= PROPERTY_ROUNDING_RELATIVE
        or not c.ratio <= PROPERTY_ROUNDING_RATIO
        for c in bad
    )
    batch_first = spec.config.batch_first and check != "batch-first"
    if not (rounding or batch_first):
        return None
    try:
        forward_passes = _forward_passes(ev)
        if rounding:
            grown = (
                f"the runs compared here differ by rounding only (relative "
                f"{max(c.max_rel_error for c in bad):.2g}), grown past nn.LSTM's rounding "
                f"spread by"
            )
            if not forward_passes:
                return (
                    f"forward: the forward differs from nn.LSTM's on this case (see output, "
                    f"h_n, c_n), and {grown} the function the forward computes; fix the "
                    f"forward first"
                )
            if any(c.tensor not in FORWARD_NAMES for c in bad) and not check_gradients(ev).passed:
                return (
                    f"backward: the gradients differ from nn.LSTM's on this case (see "
                    f"gradients), and {grown} the gradients the backward computes; fix the "
                    f"backward first"
                )
            return None
        if forward_passes:
            return None
        without = checker.outcome(spec.replace(batch_first=False), check)
    except Exception:  # noqa: BLE001 - nothing to compare: the property's own cause stands
        return None
    if without.status != "pass":
        return None
    return (
        "batch_first: the same case with batch_first=False passes, and with batch_first=True "
        "the forward differs from nn.LSTM's (see output, h_n, c_n and batch-first): the "
        "conversion between the batch-first and time-major layouts is wrong"
    )


def _dropout_in_eval(checker: Evaluator, spec: CaseSpec, check: str) -> str | None:
    """Dropout between layers in eval mode: the same case with dropout=0 matches."""
    c = spec.config
    if not (c.dropout > 0 and c.num_layers > 1):
        return None
    try:
        without = checker.outcome(spec.replace(dropout=0.0), check)
    except Exception:  # noqa: BLE001 - declined or raised: no evidence either way
        return None
    if without.status != "pass":
        return None
    return (
        f"dropout: the same case with dropout=0 matches; dropout={c.dropout} is applied "
        f"in eval mode (nn.LSTM drops between layers only in training mode: "
        f"F.dropout(x, p, training=self.training), not training=True)"
    )


# -- forward ---------------------------------------------------------------------------------
def _forward_matches(
    ev: Evaluation, forward: dict[str, np.ndarray], got: dict[str, np.ndarray] | None = None
) -> bool:
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
        blocks = [a[k * hidden : (k + 1) * hidden] for k in range(4)]
        new: list = [None] * 4
        for k, gate in enumerate(order):
            new[GATES.index(gate)] = blocks[k]
        out[name] = np.concatenate(new, axis=0)
    return out


def _transposed_blocks(params: dict, kind: str, hidden: int) -> dict | None:
    """`kind`'s matrices with each gate's (H, H) row block transposed; None where a block is
    not square (then the mistake could not run)."""
    out = {}
    for name, a in params.items():
        parts = split_parameter_name(name)
        if parts is None or parts[0] != kind:
            continue
        if a.shape[1] != hidden:
            return None
        out[name] = np.concatenate([a[k * hidden : (k + 1) * hidden].T for k in range(4)], axis=0)
    return out or None


def _bias_variant(
    params: dict, keep: str, hidden: int, forget_bias: float = 0.0, doubled: bool = False
) -> dict:
    out = dict(params)
    for name in params:
        if name.startswith(("bias_ih", "bias_hh")):
            kind = name[:7]
            if keep == "both":
                value = params[name].copy()
            elif kind == keep:
                value = params[name] * (2.0 if doubled else 1.0)
            else:
                value = np.zeros_like(params[name])
            if forget_bias and kind == "bias_ih":
                value = value.copy()
                value[hidden : 2 * hidden] += forget_bias
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
        yield (
            f"gate order: the implementation reads the gate blocks as "
            f"{', '.join(order)}; nn.LSTM's order is i, f, g, o",
            lambda order=order: run(_reorder_gates(params, order, h)),
        )
    if c.bias:
        yield (
            "bias: bias_hh is ignored (one bias instead of nn.LSTM's two)",
            lambda: run(_bias_variant(params, "bias_ih", h)),
        )
        yield (
            "bias: bias_ih is ignored (one bias instead of nn.LSTM's two)",
            lambda: run(_bias_variant(params, "bias_hh", h)),
        )
        yield (
            "bias: bias_ih is used twice and bias_hh not at all",
            lambda: run(_bias_variant(params, "bias_ih", h, doubled=True)),
        )
        yield (
            "bias: bias_hh is used twice and bias_ih not at all",
            lambda: run(_bias_variant(params, "bias_hh", h, doubled=True)),
        )
    swappable = [
        n
        for n in params
        if n.startswith("weight_ih")
        and params[n].shape == params["weight_hh" + n[len("weight_ih") :]].shape
    ]
    if swappable:  # weight_ih and weight_hh have one shape when input_size == the output's size
        yield (
            "weights: weight_ih and weight_hh are used in each other's place (they have the "
            "same shape when input_size equals the hidden (or projected) size)",
            lambda: run(
                {
                    **params,
                    **{n: params["weight_hh" + n[len("weight_ih") :]] for n in swappable},
                    **{"weight_hh" + n[len("weight_ih") :]: params[n] for n in swappable},
                }
            ),
        )
    if h > 1:  # a (1, 1) block is its own transpose
        transposed = {
            kind: _transposed_blocks(params, kind, h) for kind in ("weight_ih", "weight_hh")
        }
        for kinds, what in (
            (("weight_hh",), "weight_hh's"),
            (("weight_ih",), "weight_ih's"),
            (("weight_ih", "weight_hh"), "weight_ih's and weight_hh's"),
        ):
            if all(transposed[k] is not None for k in kinds):
                merged = dict(params)
                for kind in kinds:
                    merged.update(transposed[kind] or {})  # none is None: checked above
                yield (
                    f"weights: {what} gate blocks are used transposed (x @ W_k for W_k x: "
                    f"each gate's block is square here, so the shapes fit either way)",
                    lambda merged=merged: run(merged),
                )
    if c.bias:
        yield (
            "bias: a forget-gate bias of +1 is added (nn.LSTM adds none)",
            lambda: run(_bias_variant(params, "both", h, forget_bias=1.0)),
        )
    if state is not None:
        yield ("initial state: h0 and c0 are ignored (zeros are used instead)", lambda: run(s=None))
        if c.proj_size == 0:
            yield (
                "initial state: h0 and c0 are swapped on the way in",
                lambda: run(s=(state[1], state[0])),
            )
            yield (
                "initial state: c0 is ignored (h0 is used as both h0 and c0)",
                lambda: run(s=(state[0], state[0])),
            )
    if state is not None:
        h0, c0 = state
        yield (
            "initial state: h0 is ignored (zeros are used instead; c0 is read)",
            lambda: run(s=(np.zeros_like(h0), c0)),
        )
        yield (
            "initial state: c0 is ignored (zeros are used instead; h0 is read)",
            lambda: run(s=(h0, np.zeros_like(c0))),
        )
        layers, dirs = c.num_layers, c.num_directions

        def rows(index_of):
            order = [index_of(l, d) for l in range(layers) for d in range(dirs)]
            return lambda: run(s=(h0[order], c0[order]))

        if dirs == 2 and layers > 1:
            yield (
                "initial state: the rows of h0 and c0 are read direction-major (every layer "
                "of the forward direction, then the reverse); nn.LSTM's row is "
                "layer * num_directions + direction",
                rows(lambda l, d: d * layers + l),
            )
        if dirs == 2:
            yield (
                "initial state: the rows of h0 and c0 are indexed by layer only, so both "
                "directions read the same row; nn.LSTM's row is "
                "layer * num_directions + direction",
                rows(lambda l, d: l),
            )
        if layers * dirs > 1:
            yield (
                "initial state: the rows of h0 and c0 are read in reverse order; nn.LSTM's "
                "row is layer * num_directions + direction",
                rows(lambda l, d: layers * dirs - 1 - (l * dirs + d)),
            )
        if dirs == 2 and c.proj_size == 0:

            def pairs():
                h, cc = h0.copy(), c0.copy()
                for l in range(layers):
                    fwd, rev = 2 * l, 2 * l + 1
                    h[fwd], cc[fwd] = h0[fwd], h0[rev]  # forward direction: h0's two rows
                    h[rev], cc[rev] = c0[fwd], c0[rev]  # reverse direction: c0's two rows
                return run(s=(h, cc))

            yield (
                "initial state: (h0, c0) is read per direction as (h, c) pairs: the forward "
                "direction starts from h0's rows, the reverse from c0's; nn.LSTM gives every "
                "direction its own row of h0 and of c0",
                pairs,
            )
    spec = ev.spec
    if spec.batch is None and not c.batch_first and spec.seq_len > 1:

        def as_batch():
            s = (
                None
                if state is None
                else tuple(
                    np.broadcast_to(a[:, None], (a.shape[0], spec.seq_len, a.shape[1])).copy()
                    for a in state
                )
            )
            out = run_torch_lstm(c, params, x[None], s).forward
            return {"output": out["output"][0], "h_n": out["h_n"][:, -1], "c_n": out["c_n"][:, -1]}

        yield (
            "unbatched input: the (seq_len, input_size) input is read as a batch, one step "
            "over a batch of seq_len (the batch axis added at dim 0 of a time-major "
            "input); nn.LSTM adds it at dim 1 (dim 0 with batch_first)",
            as_batch,
        )
    if spec.batch is not None and c.batch_first and spec.batch > 1 and spec.seq_len > 1:
        time_major = dataclasses.replace(c, batch_first=False)
        b, t = spec.batch, spec.seq_len

        def by_reshape():
            out = run_torch_lstm(time_major, params, x.reshape(t, b, -1), state).forward
            return {**out, "output": out["output"].reshape(b, t, -1)}

        yield (
            "batch_first: the input is turned time-major with reshape(seq_len, batch, ...) "
            "and the output back with reshape(batch, seq_len, ...), which scrambles batch "
            "rows and time steps; it needs transpose(0, 1)",
            by_reshape,
        )
        if state is None or b == t:
            yield (
                "batch_first: ignored; the (batch, seq_len, input) input is read as "
                "(seq_len, batch, input)",
                lambda: run_torch_lstm(time_major, params, x, state).forward,
            )

    def mistaken(mistake):
        return lambda: run_mistaken_lstm(c, params, x, state, mistake)

    yield (
        "cell output: h = o * c, without the tanh of the cell state (nn.LSTM's h = o * tanh(c))",
        mistaken(CellMistake(no_cell_tanh=True)),
    )
    yield (
        "cell output: h = tanh(c), without the output gate (nn.LSTM's h = o * tanh(c))",
        mistaken(CellMistake(no_output_gate=True)),
    )
    if c.proj_size:
        yield (
            "projection: a tanh after the projection (h = tanh(W_hr h)); nn.LSTM's "
            "projection is linear",
            mistaken(CellMistake(tanh_after_projection=True)),
        )
    for k in CLAMPS:
        yield (
            f"gate pre-activations clamped to [-{k:g}, {k:g}] (clamping all four blocks "
            f"reproduces it on this case); nn.LSTM clamps nothing",
            mistaken(CellMistake(clamp_preactivations=k)),
        )
        yield (
            f"sigmoid's argument clamped to [-{k:g}, {k:g}] (gates i, f, o); nn.LSTM "
            f"clamps nothing",
            mistaken(CellMistake(clamp_sigmoid=k)),
        )
    for k in CELL_CLAMPS:
        yield (
            f"cell state clamped to [-{k:g}, {k:g}] after every update; nn.LSTM clamps nothing",
            mistaken(CellMistake(clamp_cell=k)),
        )

    # Products in TF32, bfloat16, float16 (parity.precision): after the structural mistakes.
    yield from reduced_precision_mistakes(ev)


# The bounds people clamp at, to keep exp or tanh "safe".
CLAMPS = (5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)
CELL_CLAMPS = (1.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)


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


def _diagnose_forward(
    ev: Evaluation, checker: Evaluator | None = None, check: str = "output"
) -> str | None:
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
            return (
                f"non-finite: {n} holds NaN or Inf where nn.LSTM's is finite (an overflow, "
                f"0/0, log or sqrt of a negative, or uninitialized memory)"
            )
    # Swapped final states are cheap to see and common.
    if (
        _close(got["h_n"], want["c_n"])
        and _close(got["c_n"], want["h_n"])
        and not _close(got["h_n"], want["h_n"])
    ):
        return "final state: h_n and c_n are returned in each other's place"
    layout = _layout_mistake(ev, got, want)
    if layout:
        return layout
    if _first_call_remembered(ev):
        return (
            "state between calls: a fresh instance gives nn.LSTM's answer on this case, the "
            "instance first called on other data (and other weights, where it takes them) "
            "does not; it keeps something from that call: weights packed or transposed "
            "once and not refreshed when they change, or a state carried over"
        )
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
            if out_mask[..., d * out_h : (d + 1) * out_h].any():
                out_dirs.add(d)
    # Only with the output right: a final state that is another step's state then says where
    # it was taken from; with the output wrong too, the fault is upstream of that choice.
    final = _final_state_elsewhere(ev, got, masks) if passed["output"] else None
    if final:
        return final
    row_dirs = {r % dirs for r in rows}
    if dirs == 2 and (out_dirs | row_dirs) == {1}:
        return (
            "reverse direction: only the reverse direction differs (the forward direction "
            "matches everywhere); check what only the reverse direction does: reading the "
            "sequence from the last step to the first, writing each output back at its own "
            "time step, its own weights (the _reverse names), its final state (the one after "
            "step 0)"
        )
    layers = sorted({r // dirs for r in rows})
    if layers and layers[0] > 0:
        return (
            f"layers: layer 0 matches and layer {layers[0]} on does not; check what feeds "
            f"layer {layers[0]} (the previous layer's output, both directions, after "
            f"projection) and that every layer uses its own weights"
        )
    scaled = _forward_scaled(ev, got, want, passed, checker)
    if scaled:
        return scaled
    if out_mask is not None and out_mask.any() and 0 in out_dirs:
        steps = np.nonzero(out_mask[..., :out_h].reshape(out_mask.shape[0], -1).any(axis=1))[0]
        first = int(steps[0])
        if first >= 2 and _jumps_at(ev, first):
            return (
                f"time: the output matches for steps 0..{first - 1} and differs from step "
                f"{first} on by a jump, not a drift (seq_len {spec.seq_len}); something "
                f"changes at that step (a buffer or chunk boundary, a long-sequence special "
                f"case)"
            )
    rounding = _rounding(ev, checker, "forward", [n for n in FORWARD_NAMES if not passed[n]])
    if rounding:
        return rounding
    return NO_KNOWN_CAUSE + _forward_evidence(ev, checker, passed, out_mask, rows, check)


def _rel_errors(got, want) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(got, np.float64).ravel()
    w = np.asarray(want, np.float64).ravel()
    return g - w, w


def _forward_scaled(
    ev: Evaluation, got: dict, want: dict, passed: dict, checker=None
) -> str | None:
    """Every failing tensor exactly k times nn.LSTM's, one k, on at least MIN_ELEMENTS
    nonzero elements (on a larger probe case where the minimal one has fewer)."""
    bad = [n for n in FORWARD_NAMES if not passed[n]]
    if not bad:
        return None
    if any(np.count_nonzero(want[n]) < MIN_ELEMENTS for n in bad):
        probe = _probe(ev, checker)
        if probe is None or not _fails(probe, "forward", bad):
            return None
        got, want = probe.forward(), probe.reference().want.forward
    ks = []
    for n in bad:
        k = _constant_ratio(got[n], want[n])
        if k is None:
            return None
        ks.append(k)
    if max(ks) - min(ks) > SAME_FACTOR_RTOL * max(abs(k) for k in ks):
        return None
    return (
        f"scaled: {' and '.join(bad)} {'is' if len(bad) == 1 else 'are'} {ks[0]:.6g} times "
        f"nn.LSTM's on every element, the rest matching: a constant factor applied to "
        f"{'it' if len(bad) == 1 else 'them'} alone"
    )


def _constant_ratio(got, want) -> float | None:
    g, w = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    if g.shape != w.shape or np.count_nonzero(w) < MIN_ELEMENTS or not np.any(g):
        return None
    k = float(g @ w / (w @ w))
    if abs(k - 1) <= NO_SCALING or np.max(np.abs(g - k * w)) > SCALED_RESIDUAL * abs(
        k - 1
    ) * np.max(np.abs(w)):
        return None
    return k


# Structural claims (a constant ratio, rounding statistics) need this many elements: on fewer
# any two numbers have "a constant ratio".
MIN_ELEMENTS = 4
ROUNDING_ELEMENTS = 16


def _jumps_at(ev: Evaluation, first: int) -> bool:
    """Does the output's error jump at step `first` (not a drift growing into the tolerance)?"""
    got = np.asarray(ev.forward()["output"], np.float64)
    want = ev.reference().want.forward["output"]
    if ev.spec.batch is not None and ev.spec.config.batch_first:
        got, want = np.swapaxes(got, 0, 1), np.swapaxes(want, 0, 1)
    scale = max(float(np.max(np.abs(want))), 1e-300)
    err = np.abs(got - want).reshape(got.shape[0], -1).max(axis=1) / scale
    return bool(err[first] >= STEP_ERROR_STARTS)


def _final_state_elsewhere(ev: Evaluation, got: dict, masks: dict) -> str | None:
    """Each wrong row of h_n/c_n is nn.LSTM's state at another step, layer or direction."""
    spec, c = ev.spec, ev.spec.config
    if not any(masks[n] is not None and masks[n].any() for n in ("h_n", "c_n")):
        return None
    case = ev.case
    params = {n: np.asarray(a, np.float64) for n, a in ev.reduced.items()}
    state = None if case.state is None else tuple(np.asarray(s, np.float64) for s in case.state)
    states = trace(c, params, np.asarray(case.input, np.float64), state)
    dirs, steps = c.num_directions, spec.seq_len
    found = []
    for k, name in enumerate(("h_n", "c_n")):
        m = masks[name]
        if m is None or not m.any():
            continue
        worst = check_forward(ev, name).worst
        assert worst is not None  # a failing state has a worst comparison
        tol = worst.tolerance
        g = np.asarray(got[name], np.float64)
        for row in np.nonzero(m.reshape(m.shape[0], -1).any(axis=1))[0]:
            value = g[row] if spec.batch is not None else g[row][None]
            match = None
            own = (int(row) // dirs, int(row) % dirs, steps - 1)
            for (layer, d), hc in states.items():
                for n in range(hc[k].shape[0]):
                    if (
                        (layer, d, n) != own
                        and value.shape == hc[k][n].shape
                        and np.max(np.abs(value - hc[k][n])) <= tol
                    ):
                        match = (layer, d, n if d == 0 else steps - 1 - n)
                        break
                if match:
                    break
            if match is None:
                return None
            found.append((name, int(row), match))
    if not found:
        return None
    direction = ("forward", "reverse")

    def where(row):
        return f"layer {row // dirs}" + (f" {direction[row % dirs]}" if dirs == 2 else "")

    parts = [
        f"{name}[{where(row)}] is the {'h' if name == 'h_n' else 'c'} of layer {l}"
        f"{' ' + direction[d] if dirs == 2 else ''} at time step {t}"
        for name, row, (l, d, t) in found[:3]
    ]
    return (
        f"final state: {'; '.join(parts)}{'; ...' if len(found) > 3 else ''}; nn.LSTM's "
        f"final state of each layer and direction is its state after its last step (time "
        f"step {steps - 1} forward, 0 reverse), at row layer * num_directions + direction"
    )


def _rounding(ev: Evaluation, checker, group: str, names: list[str]) -> str | None:
    """Errors small and with the statistics of rounding (signs uncorrelated with the values,
    no common offset), at the level of a lower precision: a precision cause."""
    if not names:
        return None
    stats = _error_stats(ev, group, names)
    if stats is None or stats[0] < ROUNDING_ELEMENTS:
        probe = _probe(ev, checker)
        if probe is not None:
            pgot = probe.forward() if group == "forward" else probe.gradients()
            pw = probe.reference().want
            pwant = pw.forward if group == "forward" else pw.gradients
            assert pwant is not None  # the reference runs with gradients
            # a missing name: np.shape(None) is () at run time; numpy's stubs refuse None
            if all(
                np.asarray(pgot.get(n)).shape == np.shape(pwant.get(n))  # type: ignore[arg-type]
                for n in names
            ) and _fails(probe, group, names):
                stats = _error_stats(probe, group, names)
    if stats is None or stats[0] < ROUNDING_ELEMENTS:
        return None
    n, rel, corr, bias = stats
    if (
        not (0 < rel <= ROUNDING_MAX_RELATIVE)
        or abs(corr) > ROUNDING_MAX_CORRELATION
        or abs(bias) > ROUNDING_MAX_OFFSET
    ):
        return None
    level = "float32" if rel < FLOAT32_ROUNDING_LEVEL else "float16 or bfloat16"
    if group == "forward":
        return (
            f"precision: the error is small (relative {rel:.1g}) and looks like rounding "
            f"(signs uncorrelated with the values, no common offset), at {level}'s level: "
            f"something inside is computed or stored in {level} (a cast, a buffer, a "
            f"lossy sigmoid/tanh)"
        )
    return (
        f"precision: the forward matches and the gradients of {', '.join(names[:4])} differ "
        f"by relative {rel:.1g}, with the statistics of rounding at {level}'s level: a "
        f"gradient computed, accumulated or stored in {level}"
    )


def _fails(ev: Evaluation, group: str, names: list[str]) -> bool:
    """Do all of `names` fail on `ev` too (a probe shows the same fault, not another)?"""
    try:
        if group == "forward":
            return not any(check_forward(ev, n).passed for n in names)
        from .checks import check_gradients

        by = {c.tensor: c for c in check_gradients(ev).comparisons}
        return all(n in by and not by[n].passed for n in names)
    except Exception:  # noqa: BLE001
        return False


def _error_stats(ev: Evaluation, group: str, names: list[str]):
    """(elements, relative error, correlation of error with value, mean error / rms error)."""
    got = ev.forward() if group == "forward" else ev.gradients()
    ref = ev.reference().want
    want = ref.forward if group == "forward" else ref.gradients
    assert want is not None  # the reference runs with gradients
    errs, values, rel = [], [], 0.0
    for name in names:
        if name not in got or np.shape(got[name]) != np.shape(want[name]) or not want[name].size:
            return None
        e, w = _rel_errors(got[name], want[name])
        scale = max(float(np.max(np.abs(w))), 1e-300)
        if not np.all(np.isfinite(e)):
            return None
        rel = max(rel, float(np.max(np.abs(e))) / scale)
        errs.append(e / scale)
        values.append(w / scale)
    e, w = np.concatenate(errs), np.concatenate(values)
    rms = float(np.sqrt(np.mean(e * e)))
    if rms == 0:
        return None
    bias = float(np.mean(e)) / rms
    corr = 0.0
    if np.std(w) > 0 and np.std(e) > 0:
        corr = float(np.corrcoef(e, w)[0, 1])
    return int(np.count_nonzero(e)), rel, corr, bias


def _probe(ev: Evaluation, checker) -> Evaluation | None:
    """A larger case with the minimal case's features: more elements to read statistics from."""
    if checker is None:
        return None
    spec = ev.spec
    try:
        bigger = spec.replace(
            hidden_size=max(spec.config.hidden_size, 8),
            seq_len=max(spec.seq_len, 4),
            batch=None if spec.batch is None else max(spec.batch, 3),
            seed=spec.seed + 1,
        )
        probe = checker.evaluation(bigger, "gradients")
        probe.forward()
        return probe
    except Exception:  # noqa: BLE001 - no probe, no statistics
        return None


def _forward_evidence(ev: Evaluation, checker, passed: dict, out_mask, rows, check: str) -> str:
    spec, c = ev.spec, ev.spec.config
    parts = []
    for n in FORWARD_NAMES:
        if passed[n]:
            parts.append(f"{n} matches")
            continue
        o = check_forward(ev, n)
        w = o.worst
        parts.append(f"{n} differs (max relative {w.max_rel_error:.2g})" if w else f"{n} differs")
    if out_mask is not None and out_mask.any():
        steps = np.nonzero(out_mask.reshape(out_mask.shape[0], -1).any(axis=1))[0]
        parts.append(
            f"the output differs from time step {int(steps[0])} of {spec.seq_len}"
            + (
                " (step 0 starts from a zero state: weight_hh, the forget gate and "
                "c_{t-1} play no part in it)"
                if steps[0] == 1 and spec.initial_state != "random"
                else ""
            )
        )
    if rows:
        dirs = c.num_directions
        parts.append(
            "final-state rows that differ: "
            + ", ".join(
                f"layer {r // dirs}"
                + (f" {'reverse' if r % dirs else 'forward'}" if dirs == 2 else "")
                for r in sorted(rows)
            )
        )
    parts += _needs(checker, spec, check)
    return "; ".join(parts)


def _needs(checker, spec, check: str) -> list[str]:
    """What the minimal case needs to fail: its simplifications already seen to pass (the
    runner's shrinking evaluated them; nothing is run for this)."""
    if checker is None:
        return []
    out = []
    for candidate in spec.simplifications(checker.dtypes_for(check)):
        o = checker.known_outcome(candidate, check)
        if o is not None and o.status == "pass":
            changed = {k: v for k, v in candidate.as_dict().items() if spec.as_dict().get(k) != v}
            out.append(", ".join(f"{k}={v}" for k, v in changed.items()))
    return [f"it passes with {' / '.join(out[:6])}"] if out else []


def _first_call_remembered(ev: Evaluation) -> bool:
    """Does a fresh instance, called on this case first, match the reference?"""
    try:
        fresh = ev.build(ev.implementation_params)
        got = ev.forward_of(fresh, ev.case.input, ev.case.state)
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
            return (
                "layout: the output's batch and direction axes are swapped: the directions "
                "come as (seq, direction, batch, hidden), ONNX's Y, and were reshaped to "
                "(seq, batch, direction * hidden) without moving the direction axis next "
                "to hidden first"
            )
    if t > 1:
        unflipped = out.copy()
        unflipped[..., h:] = out[::-1, :, h:]
        if _close(got["output"], as_given(unflipped)):
            return (
                "reverse direction: its outputs are in reverse time order: it ran over the "
                "flipped sequence and its outputs were stored as they came, not flipped "
                "back (output[t] of the reverse direction belongs to input step t)"
            )
    return None


def _shape_cause(name: str, got: tuple, want: tuple, spec) -> str:
    c = spec.config
    if sorted(got) == sorted(want):
        return (
            f"layout: {name} has shape {got} where nn.LSTM gives {want}: the same sizes in "
            f"another order (batch_first applies to input and output only)"
        )
    if c.proj_size and name in ("h_n", "output") and c.hidden_size in got:
        return f"projection: {name} has shape {got}, not projected to proj_size={c.proj_size}"
    return f"shape: {name} has shape {got} where nn.LSTM gives {want}"


def _close(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or not a.size:
        return False
    scale = max(float(np.max(np.abs(b))), 1e-12)
    return float(np.max(np.abs(a - b))) <= RERUN_MATCHES * scale


# -- gradients ------------------------------------------------------------------------------
def _diagnose_gradients(
    ev: Evaluation, outcome: CheckOutcome, checker: Evaluator | None = None
) -> str | None:
    if not _forward_passes(ev):
        return (
            "forward: the forward pass differs too (see output, h_n, c_n); fix it first, "
            "the gradients follow from it"
        )
    bad = [c for c in outcome.comparisons if not c.passed]
    if not bad:
        return None
    got, want = ev.gradients(), ev.reference().want.gradients
    assert want is not None  # the reference runs with gradients
    # Does the backward agree with the implementation's own forward on this very case? Then
    # the backward is right for the function the forward computes, and that function differs
    # from nn.LSTM's though not at this case's values (a zero initial state routed elsewhere).
    rounding = _rounding(ev, checker, "gradients", [c.tensor for c in bad if c.tensor in got])
    if rounding:
        return rounding
    own = _own_differences(ev, checker)
    if own == "pass" and _relative_gradient_error(got, want, bad) >= FD_RESOLVES:
        names = ", ".join(c.tensor for c in bad[:4])
        return (
            f"forward: the gradients of {names} differ from nn.LSTM's, but they agree with "
            f"finite differences of the implementation's own forward on this case: the "
            f"backward is right for the function the forward computes, and that function "
            f"differs from nn.LSTM's although the values agree here; check how the forward "
            f"uses {names}"
        )
    zero = [
        c.tensor
        for c in bad
        if c.tensor in got and not np.any(got[c.tensor]) and np.any(want[c.tensor])
    ]
    if zero:
        return (
            f"detached: the gradient of {', '.join(zero)} is zero where nn.LSTM's is not; "
            f"{'it is' if len(zero) == 1 else 'they are'} detached from the graph "
            f"(.detach(), .data, a NumPy round trip) or not used"
        )
    dropped = _dropped_cotangent(ev, got, bad)
    if dropped:
        return dropped
    cut = _recurrence_detached(ev, got, bad)
    if cut:
        return cut
    scaled = _gradients_scaled(ev, checker, got, want, bad)
    if scaled:
        return scaled
    truncated = _truncation(ev, got, want)
    if truncated:
        return truncated
    if own != "fail":
        return NO_KNOWN_CAUSE + _gradient_evidence(ev, bad, own)
    blocks = _gate_blocks(ev, bad)
    if blocks and len(blocks) < 4 and _same_gate_blocks(ev, checker, bad, blocks):
        names = ", ".join(sorted(blocks, key=GATES.index))
        return (
            f"backward: the forward pass matches and only the gradients of gate block(s) "
            f"{names} differ: check the derivative of that gate's activation (sigmoid for "
            f"i, f, o; tanh for g) and of tanh(c)"
        )
    tensors = ", ".join(c.tensor for c in bad[:4])
    return (
        f"backward: the forward pass matches but the gradients of {tensors} differ, and "
        f"they disagree with finite differences of the implementation's own forward: the "
        f"backward pass is wrong"
    )


# Finite differences tell gradients apart only where they differ by more than this (relative to
# the tensor's largest gradient; tolerances.FD_FLOOR and FD_SAFETY): below it, their agreeing
# with the implementation's gradients says nothing about nn.LSTM's.
FD_RESOLVES = 1e-4


def _relative_gradient_error(got: dict, want: dict, bad) -> float:
    worst = 0.0
    for c in bad:
        if (
            c.tensor in got
            and np.shape(got[c.tensor]) == want[c.tensor].shape
            and want[c.tensor].size
        ):
            scale = max(float(np.max(np.abs(want[c.tensor]))), 1e-300)
            worst = max(
                worst,
                float(np.max(np.abs(np.asarray(got[c.tensor], np.float64) - want[c.tensor])))
                / scale,
            )
    return worst


def _own_differences(ev: Evaluation, checker) -> str:
    """Finite differences of the implementation's own forward on this case (in float64):
    "pass", "fail", or "unresolved"/"not run" where they cannot say."""
    if checker is None or ev.adapter.supports.gradients == "none":
        return "not run"
    spec = ev.spec
    if spec.dtype != "float64":
        if "float64" not in ev.adapter.supports.dtypes:
            return "not run"
        spec = spec.replace(dtype="float64")
        # The same values, in float64: the implementation may still disagree with nn.LSTM there.
    try:
        o = checker.outcome(spec, "finite-differences")
    except Exception:  # noqa: BLE001 - declined or raised: no evidence
        return "not run"
    if o.error is not None:
        return "not run"
    if any(c.unresolved for c in o.comparisons) and o.passed:
        return "unresolved"
    return "pass" if o.passed else "fail"


def _gradients_match(got: dict, candidate: dict, bad) -> bool:
    for c in bad:
        if c.tensor not in got or c.tensor not in candidate:
            return False
        g, w = np.asarray(got[c.tensor], np.float64), candidate[c.tensor]
        if g.shape != w.shape or (w.size and not np.max(np.abs(g - w)) <= c.tolerance):
            return False
    return True


def _dropped_cotangent(ev: Evaluation, got: dict, bad) -> str | None:
    """nn.LSTM's gradients with the gradient arriving through h_n, c_n or both dropped."""
    case = ev.case
    params = {n: np.asarray(a, np.float64) for n, a in ev.reduced.items()}
    x = np.asarray(case.input, np.float64)
    state = None if case.state is None else tuple(np.asarray(s, np.float64) for s in case.state)
    g_out, g_h, g_c = (np.asarray(g, np.float64) for g in case.cotangents)
    for cause, cot in (
        (
            "detached: c_n is returned detached (or the gradient arriving through c_n is "
            "dropped); nn.LSTM back-propagates it into the cell states",
            (g_out, g_h, 0 * g_c),
        ),
        (
            "detached: h_n is returned detached (or the gradient arriving through h_n is "
            "dropped); nn.LSTM back-propagates it",
            (g_out, 0 * g_h, g_c),
        ),
        (
            "detached: h_n and c_n are returned detached (the gradients arriving through the "
            "final state are dropped)",
            (g_out, 0 * g_h, 0 * g_c),
        ),
    ):
        if not (np.any(cot[1] != g_h) or np.any(cot[2] != g_c)):
            continue
        grads = run_torch_lstm(ev.spec.config, params, x, state, cot).gradients
        assert grads is not None  # run with cotangents
        if _gradients_match(got, grads, bad):
            return cause
    return None


def _gradients_scaled(ev: Evaluation, checker, got: dict, want: dict, bad) -> str | None:
    """Every failing gradient k times nn.LSTM's on every element, one k, on this case (where it
    has MIN_ELEMENTS nonzero elements) and on a second, larger one."""
    if any(c.tensor not in got or c.problem for c in bad):
        return None
    names = [c.tensor for c in bad]
    probe = _probe(ev, checker)
    if probe is None or not _fails(probe, "gradients", names):
        return None
    try:
        pg, pw = probe.gradients(), probe.reference().want.gradients
        assert pw is not None  # the reference runs with gradients
    except Exception:  # noqa: BLE001
        return None
    ks = []
    for name in names:
        for g, w in ((got[name], want[name]), (pg[name], pw[name])):
            if np.count_nonzero(w) < MIN_ELEMENTS and w is want[name]:
                continue  # too few elements on the minimal case: the probe decides
            k = _constant_ratio(g, w)
            if k is None:
                return None
            ks.append(k)
    if not ks or max(ks) - min(ks) > SAME_FACTOR_RTOL * max(map(abs, ks)):
        return None
    return (
        f"scaled: the gradient of {', '.join(names)} is {ks[0]:.4g} times nn.LSTM's on "
        f"every element (on a second, larger case too): a constant factor in "
        f"{'its' if len(names) == 1 else 'their'} backward (a mean for a sum, a factor of "
        f"2, a scale applied twice)"
    )


def _gradient_evidence(ev: Evaluation, bad, own: str) -> str:
    parts = [
        "the forward matches",
        "the gradients of "
        + ", ".join(f"{c.tensor} (max relative {c.max_rel_error:.2g})" for c in bad[:4])
        + " differ",
    ]
    parts.append(
        {
            "unresolved": "finite differences of the implementation's own forward could "
            "not resolve its derivatives on this case",
            "not run": "finite differences of its own forward were not run",
        }[own]
    )
    return "; ".join(parts)


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
    bad_steps = np.nonzero(err > STEP_GRADIENT_WRONG * scale)[0]
    if not len(bad_steps):
        return None
    last_bad = int(bad_steps[-1])
    if last_bad < spec.seq_len - 1:
        good = spec.seq_len - 1 - last_bad
        return (
            f"truncated: the input gradient matches for the last {good} step(s) and differs "
            f"from step {last_bad} back: back-propagation through time is cut (a detach "
            f"every few steps, or a window)"
        )
    return None


def _recurrence_detached(ev: Evaluation, got: dict, bad) -> str | None:
    """nn.LSTM's gradients with back-propagation through time cut after every step (h, c or
    both handed on detached): a hand-written backward that never carries dh_next / dc_next
    back, or ``h = h.detach()`` in the time loop."""
    spec, case = ev.spec, ev.case
    if spec.seq_len < 2:
        return None
    params = {n: np.asarray(a, np.float64) for n, a in ev.reduced.items()}
    x = np.asarray(case.input, np.float64)
    state = None if case.state is None else tuple(np.asarray(s, np.float64) for s in case.state)
    cot = tuple(np.asarray(g, np.float64) for g in case.cotangents)
    for what, detach_h, detach_c in (
        ("h and c", True, True),
        ("h", True, False),
        ("c", False, True),
    ):
        grads = detached_recurrence_gradients(
            spec.config, params, x, state, cot, detach_h=detach_h, detach_c=detach_c
        )
        if _gradients_match(got, grads, bad):
            return (
                f"truncated: back-propagation through time stops after every step: the "
                f"gradient does not flow from one step into the previous one through "
                f"{what} (the state handed to the next step is detached, or a hand-written "
                f"backward does not carry dh_next{'/dc_next' if detach_c and detach_h else ''}"
                f" back); the forward matches"
            )
    return None


def _same_gate_blocks(ev: Evaluation, checker, bad, blocks: set[str]) -> bool:
    """The gate-block pattern holds on a second one-step case too, where an error cannot travel
    back through time into the other blocks: the same blocks, and only they, differ. (On a
    minimal case a block can agree by accident: a backward that never carries dh_next back
    leaves f's gradient right where c_{t-1} is zero, and reads as 'only i, g, o differ'.)"""
    if checker is None:
        return False
    spec = ev.spec
    try:
        probe = checker.evaluation(
            spec.replace(
                seq_len=1,
                hidden_size=max(spec.config.hidden_size, 8),
                batch=None if spec.batch is None else max(spec.batch, 3),
                seed=spec.seed + 1,
            ),
            "gradients",
        )
        from .checks import check_gradients

        failing = [c for c in check_gradients(probe).comparisons if not c.passed]
        return bool(failing) and _gate_blocks(probe, failing) == blocks
    except Exception:  # noqa: BLE001 - no confirmation, no pattern
        return False


def _gate_blocks(ev: Evaluation, bad) -> set[str]:
    blocks: set[str] = set()
    got, want = ev.gradients(), ev.reference().want.gradients
    assert want is not None  # the reference runs with gradients
    h = ev.spec.config.hidden_size
    for c in bad:
        parts = split_parameter_name(c.tensor)
        if parts is None or parts[0] == "weight_hr" or c.tensor not in got:
            continue
        err = np.abs(np.asarray(got[c.tensor], np.float64) - want[c.tensor])
        for k, gate in enumerate(GATES):
            block = err[k * h : (k + 1) * h]
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
    return [
        name
        for name in problem.point
        if not all(c.passed for c in problem.directional(rng, 1, [name]))
    ]


def _diagnose_fd(ev: Evaluation, outcome: CheckOutcome) -> str | None:
    worst = outcome.worst
    if worst is None:
        return None
    if ev.adapter.supports.gradients == "none":
        return (
            "forward: the forward pass's own derivatives differ from nn.LSTM's gradients, "
            "so the forward computes a different function"
        )
    where = worst.tensor
    if where.startswith("direction"):
        where = ", ".join(_fd_culprits(ev)) or "along random directions through every tensor"
    return (
        f"backward: the implementation's gradients disagree with differences of its own "
        f"forward ({where}): the backward pass is wrong, or the forward is not the function "
        f"the backward differentiates (a detach, a custom autograd function)"
    )
