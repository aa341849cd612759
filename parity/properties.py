"""Properties: what any LSTM must do, checked by comparing the implementation with itself.

Comparing with `nn.LSTM` on one call says whether two numbers agree; a property says whether the
implementation behaves like an LSTM at all, and names the kind of bug it has when it does not:

- ``step-by-step``: the sequence fed one step at a time, carrying (h, c), equals the whole run;
- ``chunking``: any split into chunks, carrying the state, equals the whole run; gradients too,
  chained backwards through the chunks (the h0/c0 gradients of chunk k+1 are the h_n/c_n
  cotangents of chunk k);
- ``batch-independence``: each batch row alone equals its row in the batch, and permuting the
  batch permutes the results;
- ``causality``: outputs up to step t do not change when inputs after t change (unidirectional);
- ``unbatched``: unbatched input equals a batch of one;
- ``batch-first``: batch_first on the transposed input equals time-major, h_n/c_n in the same
  (L*D, B, H) layout either way;
- ``bidirectional``: the forward half equals a unidirectional run, the reverse half a
  unidirectional run with the reverse weights over the flipped sequence, flipped back;
- ``stacking``: a multi-layer run equals single-layer runs chained, each fed the previous output;
- ``determinism``: the same call twice is bit-identical;
- ``degenerate``: a zero-length sequence and a batch of zero are answered as `nn.LSTM` answers
  them (torch 2.13 raises for seq_len 0, batched or not, and returns empty results for batch 0);
- ``training`` (`parity.training`): trained on the sin -> cos task, the loss curve and weights
  follow `nn.LSTM`'s.

Tolerance. A property compares two runs of the same implementation that round differently (one
matrix product over the sequence against one per step; another GEMM blocking for another batch
size). Each run of a correct implementation lies within the reference check's tolerance of the
float64 truth for that tensor of that case (`parity.tolerances`, measured on the case from the
reference's own spread), so the two lie within twice that of each other: a property allows
SELF_FACTOR x the tolerance `output`, `h_n`, `c_n` or `gradients` would allow on the same case,
and a tensor the case's dtype cannot resolve is not compared (unresolved), as there. Determinism
allows nothing: the same call on the same instance must give the same bits. A variant is checked
in its reducing setting, where the reference (and so the tolerance) exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .adapter import LSTMConfig, Supports, split_parameter_name
from .cases import CaseSpec
from .compare import Comparison
from .evaluation import Evaluation, ImplementationError, Unsupported, expect_forward_shapes
from .lengths import (
    padded_cases,
    padding_lengths,
    run_lengths_consistency,
    run_padded,
    run_padding_invariance,
)
from .metamorphic import (
    Collector,
    PropertyOutcome,
    batch_axis,
    forward_names,
    forward_shapes,
    rng_for,
    run_forward,
    run_gradients,
    time_axis,
)
from .packed import packed_lengths, prepare_packed, run_lengths_property, run_packed
from .reference import FORWARD_NAMES, run_torch_lstm
from .strides import run_strides, torch_module_only
from .tolerances import gradient_unit

__all__ = ["PROPERTIES", "Property", "PropertyOutcome", "property_edge_cases", "run_property"]

# Batch-independence runs the rows alone: at most this many of them (first, last, one between).
MAX_ROWS_ALONE = 3
MAX_CHUNKS = 4


# -- step by step, chunking ------------------------------------------------------------------
def _run_chunks(ev: Evaluation, built, bounds: list[int]):
    """Forward over consecutive chunks [bounds[k], bounds[k+1]), carrying (h, c)."""
    x, ax = ev.case.input, time_axis(ev.spec)
    state, states, outs = ev.case.state, [], []
    for start, stop in zip(bounds, bounds[1:]):
        states.append(state)
        r = run_forward(ev, built, np.take(x, range(start, stop), axis=ax), state)
        outs.append(r["output"])
        state = (r["h_n"], r["c_n"])
    try:
        output = np.concatenate(outs, axis=ax)
    except ValueError:
        output = outs[-1]  # shapes disagree between chunks: the comparison reports the shape
    # after a chunk, state is its (h_n, c_n); with no chunk at all this raises as it always has
    return {"output": output, "h_n": state[0], "c_n": state[1]}, states  # type: ignore[index]


def step_by_step(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "step-by-step")
    got, _ = _run_chunks(ev, ev.instance(), list(range(ev.spec.seq_len + 1)))
    for name, g, w in forward_names(got, ev.forward()):
        col.add("one step at a time vs the whole sequence", name, g, w)
    return col.outcome(
        "the state passed in is not (all) used, or the state returned is not the "
        "last step's: a sequence fed in pieces does not continue where it stopped"
    )


def _chunk_bounds(ev: Evaluation) -> list[int]:
    T = ev.spec.seq_len
    rng = rng_for(ev, 3)
    chunks = int(rng.integers(2, min(MAX_CHUNKS, T) + 1))
    cuts = sorted(rng.choice(np.arange(1, T), size=chunks - 1, replace=False).tolist())
    return [0, *cuts, T]


def chunking(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "chunking")
    built, bounds = ev.instance(), _chunk_bounds(ev)
    label = f"in chunks {bounds} vs the whole sequence"
    got, states = _run_chunks(ev, built, bounds)
    for name, g, w in forward_names(got, ev.forward()):
        col.add(label, name, g, w)
    if ev.adapter.supports.gradients != "none" and all(c.passed for c in col.comparisons):
        _chunked_gradients(ev, col, built, bounds, states, label)
    return col.outcome(
        "the state is not carried across calls (or its gradient is not): a "
        "sequence split in chunks does not continue where it stopped"
    )


def _chunked_gradients(ev, col, built, bounds, states, label) -> None:
    """Chain cotangents backwards through the chunks and compare with the whole gradients."""
    x, ax = ev.case.input, time_axis(ev.spec)
    g_out, g_h, g_c = ev.case.cotangents
    names = ev.compared_params
    total: dict = dict.fromkeys(names, 0.0)
    inputs: list = [None] * (len(bounds) - 1)
    for k in reversed(range(len(bounds) - 1)):
        rows = range(bounds[k], bounds[k + 1])
        grads = run_gradients(
            ev,
            built,
            np.take(x, rows, axis=ax),
            states[k],
            (np.take(g_out, rows, axis=ax), g_h, g_c),
        )
        wanted = ["input", *names] + (["h0", "c0"] if states[k] is not None else [])
        missing = [n for n in wanted if n not in grads]
        if missing:
            col.add_problem(label, missing[0], f"no gradient for {', '.join(missing)}")
            return
        inputs[k] = grads["input"]
        for n in names:
            total[n] = total[n] + grads[n]
        if states[k] is not None:
            g_h, g_c = grads["h0"], grads["c0"]
    got = dict(total)
    try:
        got["input"] = np.concatenate(inputs, axis=ax)
    except ValueError:
        got["input"] = inputs[-1]
    if ev.case.state is not None:
        got["h0"], got["c0"] = g_h, g_c
    whole = ev.gradients()
    ref = ev.reference().want.gradients
    unit = gradient_unit([ref[n] for n in got], ev.case.cotangents)
    for n, g in got.items():
        if n not in whole:
            col.add_problem(label, n, f"no gradient for {n} from the whole sequence")
            continue
        col.add(
            label + ", gradients chained back through the chunks",
            n,
            g,
            whole[n],
            group="gradients",
            unit=unit,
        )


# -- batch rows ------------------------------------------------------------------------------
def _rows_alone(B: int, rng) -> list[int]:
    return sorted({0, B - 1, int(rng.integers(B))})[:MAX_ROWS_ALONE]


def batch_independence(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "batch-independence")
    spec, x, state, built = ev.spec, ev.case.input, ev.case.state, ev.instance()
    bax, whole = batch_axis(spec), ev.forward()
    rng = rng_for(ev, 4)
    assert spec.batch is not None and bax is not None  # `applies`: a batch of 2 or more
    for b in _rows_alone(spec.batch, rng):
        sub = None if state is None else tuple(s[:, b : b + 1] for s in state)
        got = run_forward(ev, built, np.take(x, [b], axis=bax), sub)
        for name in FORWARD_NAMES:
            axis = bax if name == "output" else 1
            idx = (slice(None),) * axis + (slice(b, b + 1),)
            col.add(
                f"batch row {b} run alone vs in the batch",
                name,
                got[name],
                np.take(whole[name], [b], axis=axis),
                spec=spec.replace(batch=1),
                index=idx,
            )
    perm = rng.permutation(spec.batch)
    if np.array_equal(perm, np.arange(spec.batch)):
        perm = np.roll(perm, 1)
    sub = None if state is None else tuple(s[:, perm] for s in state)
    got = run_forward(ev, built, np.take(x, perm, axis=bax), sub)
    for name in FORWARD_NAMES:
        axis = bax if name == "output" else 1
        col.add(
            f"the batch permuted by {perm.tolist()} vs the results permuted",
            name,
            got[name],
            np.take(whole[name], perm, axis=axis),
            index=(slice(None),) * axis + (perm,),
        )
    return col.outcome(
        "batch rows influence each other (a batch statistic, a reshape that "
        "mixes rows, state shared between rows)"
    )


def unbatched(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "unbatched")
    spec, x, state = ev.spec, ev.case.input, ev.case.state
    bax = 0 if spec.config.batch_first else 1
    one = spec.replace(batch=1)
    got = run_forward(
        ev,
        ev.instance(),
        np.expand_dims(x, bax),
        None if state is None else tuple(np.expand_dims(s, 1) for s in state),
    )
    whole = ev.forward()
    for name in FORWARD_NAMES:
        axis = bax if name == "output" else 1
        col.add(
            "a batch of one vs unbatched input",
            name,
            got[name],
            np.expand_dims(whole[name], axis),
            spec=one,
        )
    return col.outcome(
        "unbatched (T, input_size) input is not treated as a batch of one "
        "(the batch dimension added in the wrong place, or h0/c0 not unsqueezed "
        "at dim 1)"
    )


def batch_first(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "batch-first")
    spec = ev.spec
    other = ev.build(
        ev.implementation_params, _replace(spec.config, batch_first=not spec.config.batch_first)
    )
    got = run_forward(
        ev,
        other,
        ev.case.input.swapaxes(0, 1),
        ev.case.state,
        _replace(spec.config, batch_first=not spec.config.batch_first),
    )
    layouts = ("time-major", "batch_first")
    mine, theirs = layouts[not spec.config.batch_first], layouts[spec.config.batch_first]
    label = f"{mine} on the transposed input vs {theirs}"
    whole = ev.forward()
    col.add(label, "output", np.asarray(got["output"]).swapaxes(0, 1), whole["output"])
    for name in ("h_n", "c_n"):
        col.add(label + f" ({name} is (L*D, B, H) either way)", name, got[name], whole[name])
    return col.outcome(
        "batch_first changes more than the input and output layout (h_n/c_n "
        "transposed, or the output not transposed back)"
    )


def causality(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "causality")
    spec, x, ax = ev.spec, ev.case.input, time_axis(ev.spec)
    rng = rng_for(ev, 5)
    t = int(rng.integers(0, spec.seq_len - 1))
    later = [slice(None)] * x.ndim
    later[ax] = slice(t + 1, None)
    changed = x.copy()
    scale = float(np.std(x)) or 1.0
    changed[tuple(later)] = (
        rng.standard_normal(changed[tuple(later)].shape) * scale + float(np.mean(x))
    ).astype(x.dtype)
    got = run_forward(ev, ev.instance(), changed, ev.case.state)
    upto = list(range(t + 1))
    idx = [slice(None)] * x.ndim
    idx[ax] = slice(0, t + 1)
    if np.asarray(got["output"]).shape != ev.forward()["output"].shape:
        col.add(
            "with the inputs after the step changed",
            "output",
            got["output"],
            ev.forward()["output"],
        )
    else:
        col.add(
            f"up to step {t} with the inputs after step {t} changed",
            "output",
            np.take(got["output"], upto, axis=ax),
            np.take(ev.forward()["output"], upto, axis=ax),
            spec=spec.replace(seq_len=t + 1),
            index=tuple(idx),
        )
    return col.outcome(
        "an output depends on inputs later in the sequence (a lookahead, a "
        "statistic over the whole sequence, or a reverse pass mixed in)"
    )


# -- directions and layers -------------------------------------------------------------------
def _replace(config: LSTMConfig, **changes) -> LSTMConfig:
    return LSTMConfig(**{**config.as_dict(), **changes})


def _layer_params(params: Mapping[str, np.ndarray], layer: int, directions: tuple[int, ...]):
    """The parameters of one layer (and the given directions), renamed as layer 0; direction
    d of `directions` becomes the k-th direction of the one-layer config."""
    out = {}
    for name, value in params.items():
        split = split_parameter_name(name)
        if split is None or split[1] != layer:
            continue
        stem, _, d = split
        if d in directions:
            sfx = "_reverse" if directions.index(d) else ""
            out[f"{stem}_l0{sfx}"] = value
    return out


def bidirectional(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "bidirectional")
    spec, x, state = ev.spec, ev.case.input, ev.case.state
    ax = time_axis(spec)
    config = _replace(spec.config, bidirectional=False)
    whole = ev.forward()
    halves = []
    for d in (0, 1):
        built = ev.build(_layer_params(ev.implementation_params, 0, (d,)), config)
        xs = np.flip(x, ax) if d else x
        sub = None if state is None else tuple(s[d : d + 1] for s in state)
        r = run_forward(ev, built, xs, sub, config)
        halves.append(
            {
                "output": np.flip(r["output"], ax) if d else r["output"],
                "h_n": r["h_n"],
                "c_n": r["c_n"],
            }
        )
    label = (
        "forward half / reverse half vs one-direction runs (the reverse one on the flipped "
        "sequence, flipped back)"
    )
    for name in FORWARD_NAMES:
        parts = [np.asarray(h[name]) for h in halves]
        try:
            got = np.concatenate(parts, axis=-1 if name == "output" else 0)
        except ValueError:
            got = parts[1]
        col.add(label, name, got, whole[name])
    return col.outcome(
        "the reverse direction is not the forward recurrence on the flipped "
        "sequence (input not flipped, output not flipped back, h_n from the "
        "wrong end, or the wrong weights or initial state row)"
    )


def stacking(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "stacking")
    spec, state = ev.spec, ev.case.state
    c = spec.config
    D = c.num_directions
    x = ev.case.input
    hs, cs = [], []
    for layer in range(c.num_layers):
        config = _replace(c, num_layers=1, input_size=c.layer_input_size(layer), dropout=0.0)
        built = ev.build(_layer_params(ev.implementation_params, layer, tuple(range(D))), config)
        rows = slice(layer * D, (layer + 1) * D)
        r = run_forward(
            ev, built, x, None if state is None else tuple(s[rows] for s in state), config
        )
        x = r["output"]
        hs.append(np.asarray(r["h_n"]))
        cs.append(np.asarray(r["c_n"]))
    got = {"output": x}
    for name, parts in (("h_n", hs), ("c_n", cs)):
        try:
            got[name] = np.concatenate(parts, axis=0)
        except ValueError:
            got[name] = parts[-1]
    for name, g, w in forward_names(got, ev.forward()):
        col.add(f"{c.num_layers} one-layer runs chained vs {c.num_layers} layers", name, g, w)
    return col.outcome(
        "layers are not chained as nn.LSTM chains them (the wrong layer's "
        "weights, the next layer fed something else than the previous output, "
        "dropout in eval mode, or h_n/c_n rows out of layer order)"
    )


# -- determinism, degenerate inputs ------------------------------------------------------------
def _identical(a, b) -> tuple[bool, float]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False, float("inf")
    if np.array_equal(a, b, equal_nan=True):
        return True, 0.0
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    d[~np.isfinite(d)] = float("inf")
    return False, float(np.max(d))


def determinism(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "determinism")
    built = ev.instance()
    pairs: list[tuple[str, np.ndarray, np.ndarray | None, str]] = []
    first = ev.forward()
    second = run_forward(ev, built, ev.case.input, ev.case.state)
    pairs += [(n, first[n], second[n], "forward") for n in FORWARD_NAMES]
    if ev.adapter.supports.gradients != "none":
        g1 = ev.gradients()
        g2 = run_gradients(ev, built, ev.case.input, ev.case.state, ev.case.cotangents)
        pairs += [(n, g1[n], g2.get(n), "gradients") for n in g1]
    for name, a, b, call in pairs:
        same, diff = _identical(a, b)
        scale = float(np.max(np.abs(a))) if np.asarray(a).size else 0.0
        cmp = Comparison(
            name, same, diff, diff / scale if scale else diff, 0.0, 0.0 if same else float("inf")
        )
        cmp.where = {"call": call}
        col.comparisons.append(cmp)
        col.labels.append(f"between two identical {call} calls on one instance")
    return col.outcome(
        "nondeterministic: the same call gives different results (random noise, "
        "state kept between calls, or a nondeterministic reduction)",
        exact=True,
    )


def _degenerate_inputs(ev: Evaluation):
    """(description, input, state) for the degenerate inputs of this case's layout."""
    spec, c, dtype = ev.spec, ev.spec.config, np.dtype(ev.spec.dtype)
    L = c.num_layers * c.num_directions
    T = max(spec.seq_len, 1)
    if spec.batch is None:
        yield "seq_len=0 (unbatched)", np.zeros((0, c.input_size), dtype), None
        return
    B = spec.batch
    layout = (
        (lambda t, b: (b, t, c.input_size))
        if c.batch_first
        else (lambda t, b: (t, b, c.input_size))
    )
    state = ev.case.state
    yield "seq_len=0", np.zeros(layout(0, B), dtype), state
    if state is None and ev.adapter.supports.initial_state:
        # An implementation that answers an empty sequence must answer it with the given state.
        given = (
            np.full((L, B, c.output_hidden_size), 0.5, dtype),
            np.full((L, B, c.hidden_size), -0.25, dtype),
        )
        yield "seq_len=0 with (h0, c0)", np.zeros(layout(0, B), dtype), given
    empty = (np.zeros((L, 0, c.output_hidden_size), dtype), np.zeros((L, 0, c.hidden_size), dtype))
    yield "batch=0", np.zeros(layout(T, 0), dtype), None
    if ev.adapter.supports.initial_state:
        yield "batch=0 with an empty (h0, c0)", np.zeros(layout(T, 0), dtype), empty
    yield "seq_len=0 and batch=0", np.zeros(layout(0, 0), dtype), None


def _raises_anyway(ev: Evaluation, built, state, exc: ImplementationError) -> None:
    """An exception on an empty input is about emptiness only if the case's own input, called
    the same way (the same state argument), does not raise it too; where it does, the error is
    the finding (its cause is the exception, not empty-input handling)."""
    try:
        run_forward(ev, built, ev.case.input, None if state is None else ev.case.state)
    except ImplementationError as again:
        if again.exc_type == exc.exc_type:
            raise again from None
    except Unsupported:
        pass


def _empty_sequence_answer(ev: Evaluation, x: np.ndarray, state, got) -> bool:
    """Whether `got` is what a zero-length sequence computes: an output with no steps, and
    h_n, c_n equal to h0, c0 (zeros when none is given)."""
    c = ev.spec.config
    steps_axis = 1 if (c.batch_first and x.ndim == 3) else 0
    if x.shape[steps_axis] != 0:
        return False  # not an empty sequence
    want = forward_shapes(c, x.shape)
    h_want = np.zeros(want["h_n"]) if state is None else state[0]
    c_want = np.zeros(want["c_n"]) if state is None else state[1]
    try:
        output, h_n, c_n = (np.asarray(got[name]) for name in FORWARD_NAMES)
    except (KeyError, TypeError):
        return False
    return (
        output.shape == want["output"]
        and h_n.shape == np.shape(h_want)
        and c_n.shape == np.shape(c_want)
        and bool(np.array_equal(h_n, h_want))
        and bool(np.array_equal(c_n, c_want))
    )


def degenerate(ev: Evaluation) -> PropertyOutcome:
    col = Collector(ev, "degenerate")
    built = ev.instance()
    declined = 0
    for what, x, state in _degenerate_inputs(ev):
        try:
            want = run_torch_lstm(
                ev.spec.config,
                {n: np.asarray(a, np.float64) for n, a in ev.reduced.items()},
                x.astype(np.float64),
                None if state is None else tuple(s.astype(np.float64) for s in state),
            )
            expected = None
        except Exception as exc:  # noqa: BLE001 - what nn.LSTM raises is the expectation
            want, expected = None, f"{type(exc).__name__}: {exc}"
        try:
            got = run_forward(ev, built, x, state, shapes=False)
            raised = None
        except Unsupported:
            declined += 1
            continue
        except ImplementationError as exc:
            got, raised = None, f"{exc.exc_type}: {exc.exc_message}"
            if expected is None:
                _raises_anyway(ev, built, state, exc)
        label = f"with {what}"
        if expected is not None and raised is None and _empty_sequence_answer(ev, x, state, got):
            # nn.LSTM raises for seq_len=0; an implementation that returns the answer an empty
            # sequence has (no output steps, the initial state as the final state) computes
            # the same function, and is not failed for a limitation of nn.LSTM's API.
            col.add_problem(
                label,
                "output",
                f"with {what} the implementation returns the "
                f"empty sequence's answer where nn.LSTM raises {expected}",
                passed=True,
            )
            continue
        if expected is not None:
            ok = raised is not None
            col.add_problem(
                label,
                "output",
                f"with {what} the implementation returns a result "
                f"(output {np.asarray(got['output']).shape if got else '?'}) where "
                f"nn.LSTM raises {expected}",
                passed=ok,
            )
            continue
        if raised is not None:
            col.add_problem(
                label,
                "output",
                f"with {what} the implementation raises {raised} "
                f"where nn.LSTM returns empty results",
                passed=False,
            )
            continue
        assert want is not None and got is not None  # neither raised
        for name in FORWARD_NAMES:
            g, w = np.asarray(got[name]), want.forward[name]
            same = g.shape == w.shape and (g.size == 0 or np.allclose(g, w))
            col.add_problem(
                label,
                name,
                f"with {what} the implementation returns {name} of "
                f"shape {g.shape} where nn.LSTM returns {w.shape}",
                passed=same,
                status="wrong-shape" if g.shape != w.shape else None,
            )
    if declined and not col.comparisons:
        raise Unsupported("declined every degenerate input (NotImplementedError)")
    asked = ", ".join(dict.fromkeys(label.removeprefix("with ") for label in col.labels))
    return col.outcome(
        "an empty sequence or an empty batch is not handled as nn.LSTM handles "
        "it (torch raises for seq_len=0 and returns empty tensors for batch=0)",
        summary=f"{asked}: answered as nn.LSTM answers them",
    )


# -- the table -------------------------------------------------------------------------------
def _needs(ok: bool, why: str) -> str | None:
    return None if ok else why


@dataclass(frozen=True)
class Property:
    """One property: what it needs, how a drawn case is made one it applies to, and the check."""

    name: str
    run: Callable[[Evaluation], PropertyOutcome]
    # Supports features the implementation must have, or the whole check is unsupported.
    needs: tuple[str, ...] = ()
    # ...and of these, one at least (none: no such condition).
    needs_one_of: tuple[str, ...] = ()
    # A drawn case -> a case the property applies to (drawn cases pass through this).
    prepare: Callable[[CaseSpec], CaseSpec] = lambda spec: spec
    # None when the property applies to `spec`, else why not (a `--case` given by hand).
    applies: Callable[[CaseSpec], str | None] = lambda spec: None
    # A prepared case -> a strategy drawing more of it (the lengths of a packed batch).
    draw: Callable[[CaseSpec], object] | None = None
    # The adapter -> None when the property can run on it at all, else why not.
    adapter: Callable[[object], str | None] = lambda adapter: None


def _at_least_two_steps(spec: CaseSpec) -> CaseSpec:
    return spec if spec.seq_len >= 2 else spec.replace(seq_len=2)


def _batched(spec: CaseSpec, rows: int = 1) -> CaseSpec:
    if spec.batch is None or spec.batch < rows:
        return spec.replace(batch=max(rows, 2 if spec.batch is None else rows))
    return spec


PROPERTY_TABLE: dict[str, Property] = {
    p.name: p
    for p in (
        Property(
            "step-by-step",
            step_by_step,
            needs=("initial_state",),
            prepare=lambda s: s.replace(bidirectional=False),
            applies=lambda s: _needs(
                not s.config.bidirectional,
                "needs a unidirectional run (the reverse direction starts from the end)",
            ),
        ),
        Property(
            "chunking",
            chunking,
            needs=("initial_state",),
            prepare=lambda s: _at_least_two_steps(s.replace(bidirectional=False)),
            applies=lambda s: _needs(
                not s.config.bidirectional and s.seq_len >= 2,
                "needs a unidirectional run of at least 2 steps "
                "(a bidirectional run cannot be cut in time)",
            ),
        ),
        Property(
            "batch-independence",
            batch_independence,
            prepare=lambda s: _batched(s, 2),
            applies=lambda s: _needs(
                s.batch is not None and s.batch >= 2, "needs a batch of at least 2"
            ),
        ),
        Property(
            "causality",
            causality,
            prepare=lambda s: _at_least_two_steps(s.replace(bidirectional=False)),
            applies=lambda s: _needs(
                not s.config.bidirectional and s.seq_len >= 2,
                "needs a unidirectional run of at least 2 steps",
            ),
        ),
        Property(
            "unbatched",
            unbatched,
            needs=("unbatched",),
            prepare=lambda s: s.replace(batch=None),
            applies=lambda s: _needs(s.batch is None, "needs unbatched input"),
        ),
        Property(
            "batch-first",
            batch_first,
            needs=("batch_first",),
            prepare=_batched,
            applies=lambda s: _needs(s.batch is not None, "needs batched input"),
        ),
        Property(
            "bidirectional",
            bidirectional,
            needs=("bidirectional",),
            prepare=lambda s: s.replace(bidirectional=True, num_layers=1),
            applies=lambda s: _needs(
                s.config.bidirectional and s.config.num_layers == 1,
                "needs a one-layer bidirectional run",
            ),
        ),
        Property(
            "stacking",
            stacking,
            needs=("multi_layer",),
            prepare=lambda s: s if s.config.num_layers >= 2 else s.replace(num_layers=2),
            applies=lambda s: _needs(s.config.num_layers >= 2, "needs 2 or more layers"),
        ),
        Property("determinism", determinism),
        Property("degenerate", degenerate),
    )
}


# A PackedSequence against nn.LSTM (parity.packed), and padded input plus lengths
# (parity.lengths: adapters that declare Supports(lengths=True)): drawn and shrunk like a property.
def _lengths_property(ev: Evaluation) -> PropertyOutcome:
    """On a PackedSequence where the implementation takes one, else on padded input plus
    lengths."""
    if ev.adapter.supports.packed:
        return run_lengths_property(ev)
    return run_lengths_consistency(ev)


for _name, _run, _features in (
    ("packed", run_packed, ("packed",)),
    ("lengths", _lengths_property, ("packed", "lengths")),
    ("padded", run_padded, ("lengths",)),
):
    PROPERTY_TABLE[_name] = Property(
        _name,
        _run,
        needs_one_of=_features,
        prepare=prepare_packed,
        draw=packed_lengths,
        applies=lambda s: _needs(s.lengths is not None, "needs a case with lengths"),
    )
PROPERTY_TABLE["padding-invariance"] = Property(
    "padding-invariance",
    run_padding_invariance,
    needs=("lengths",),
    prepare=padded_cases,
    draw=padding_lengths,
    applies=lambda s: _needs(
        s.lengths is not None and min(s.lengths) < s.seq_len,
        "needs a case with lengths and a padded row",
    ),
)

# Views with strides, and tensors kept across calls (parity.strides): torch modules only.

PROPERTY_TABLE["strides"] = Property("strides", run_strides, adapter=torch_module_only)

# `training` is run by `parity.training` (one training run, not a search over cases).
PROPERTIES = (*PROPERTY_TABLE, "training")


def unsupported_reason(check: str, supports: Supports, adapter=None) -> str | None:
    """Why `check` cannot run on an implementation with `supports` (and, where given, that
    adapter) at all, or None."""
    if check == "training":
        if supports.gradients == "none":
            return "forward only: training needs gradients"
        if not supports.float64:
            return "training parity runs in float64, which the implementation declines"
        return None
    missing = [f for f in PROPERTY_TABLE[check].needs if not getattr(supports, f)]
    if missing == ["initial_state"]:
        return (
            "needs an initial state to carry (h, c) from one call into the next, which the "
            "implementation does not take (Supports(initial_state=False))"
        )
    if missing:
        return f"needs {', '.join(missing)}, which the implementation does not support"
    one_of = PROPERTY_TABLE[check].needs_one_of
    if one_of and not any(getattr(supports, f) for f in one_of):
        return f"needs {' or '.join(one_of)}, which the implementation does not support"
    return None if adapter is None else PROPERTY_TABLE[check].adapter(adapter)


def property_edge_cases(
    check: str, bases: list[CaseSpec], dtypes: tuple[str, ...]
) -> list[CaseSpec]:
    """The runner's edge cases (`bases`, one dtype) made ones `check` applies to, in the
    supported dtypes in turn rather than each in all: a property is cheap only on few cases."""
    prop = PROPERTY_TABLE[check]
    out: list[CaseSpec] = []
    for i, spec in enumerate(bases):
        spec = prop.prepare(spec.replace(dtype=dtypes[i % len(dtypes)]))
        if spec not in out:
            out.append(spec)
    return out


def run_property(ev: Evaluation, check: str) -> PropertyOutcome:
    """Run property `check` on `ev` (raises Unsupported where it does not apply)."""
    prop = PROPERTY_TABLE[check]
    why = prop.applies(ev.spec)
    if why:
        raise Unsupported(f"{check}: {why}")
    try:
        expect_forward_shapes(ev)
        return prop.run(ev)
    except ImplementationError as exc:
        return PropertyOutcome(check, False, error=exc)
