"""Padded input plus per-row lengths: the way JAX, Keras and ONNX ports take variable lengths.

An adapter that declares `Supports(lengths=True)` is called as
``forward(input, state, lengths=lengths)`` and ``gradients(input, state, cotangents,
lengths=lengths)``: `input` padded to seq_len (the padded positions hold drawn values, not
zeros), `lengths` an int64 array with one length per batch row, in the batch's order. An adapter
that does not declare it is never called with the keyword: both checks here are then
unsupported.

- ``padded``: compared with `nn.LSTM` on the same batch packed (`parity.packed`'s reference
  and tolerances): the output at valid positions only, h_n and c_n (each row's state at its own
  last step, the reverse direction's at its first), and the gradients of a loss whose output
  cotangent is zero at padded positions, with respect to the input at valid positions, h0, c0
  and every parameter. Failures are explained by `parity.packed.likely_cause` with the padding
  as the implementation saw it. On small float64 cases of an implementation with gradients, also
  its gradients with lengths against central differences of its own forward with the same
  lengths (valid input positions perturbed, `parity.finite_diff`): where only those disagree
  (its forward matching nn.LSTM's), the backward is named as the cause.
- ``lengths`` (shared with `parity.packed`, which runs it on a PackedSequence): the
  implementation against itself: each row run alone at its own length (no lengths) equals its
  row of the batch; the batch permuted gives the results permuted; lengths all seq_len give
  the plain run (lengths=None).
- ``padding-invariance``: the implementation against itself: other values at the padded
  positions change nothing valid (output at valid positions, h_n, c_n) and no gradient of the
  valid input, h0, c0 or a parameter.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
from hypothesis import strategies as st

from .cases import CaseSpec
from .compare import Comparison
from .evaluation import Evaluation, ImplementationError, Unsupported
from .metamorphic import Collector, PropertyOutcome
from .misbehaviour import MutatesInput, WrongShape
from .packed import (
    compare_packed,
    likely_cause,
    own_differences,
    packed_lengths,
    prepare_packed,
    run_lengths_property,
    valid_mask,
    wants_differences,
)
from .tolerances import gradient_unit
from .reference import FORWARD_NAMES, Outcome

__all__ = [
    "forward_with_lengths",
    "gradients_with_lengths",
    "padded_cases",
    "padding_lengths",
    "run_lengths_consistency",
    "run_padded",
    "run_padding_invariance",
]

# Values written into the padded positions by `padding-invariance`: far from the drawn ones
# (a different scale and offset), finite (a correct masked LSTM may multiply them by 0).
PADDING_SCALE = 4.0
PADDING_OFFSET = 1.5

# Finite differences with lengths: as on a packed batch (`parity.packed.FD_MAX_STEPS`,
# `FD_DIRECTIONS`, `own_differences`), with this cause when they disagree.
BACKWARD_CAUSE = (
    "backward with lengths: the gradients on the padded batch disagree with differences of the "
    "implementation's own forward with the same lengths, which matches nn.LSTM: the backward "
    "does not apply the lengths the forward applies (gradients flowing through the padded "
    "steps the forward skipped, a mask left out of a hand-written backward)"
)


# -- calls -------------------------------------------------------------------------------------
def _lengths_array(spec: CaseSpec) -> np.ndarray:
    if spec.lengths is None or spec.batch is None:
        raise Unsupported("needs a batch with lengths")
    return np.asarray(spec.lengths, np.int64)


def _output_mask(spec: CaseSpec) -> np.ndarray:
    """True at valid positions, broadcastable against input, output and their gradients."""
    valid = valid_mask(spec)  # (T, B)
    return (valid.T if spec.config.batch_first else valid)[:, :, None]


def _unchanged(what: str, given: np.ndarray, lengths: np.ndarray) -> None:
    if not np.array_equal(given, lengths):
        raise ImplementationError(
            what,
            MutatesInput(
                f"changed the lengths it was given: {lengths.tolist()} became {given.tolist()}"
            ),
        )


def forward_with_lengths(
    ev: Evaluation, built, x: np.ndarray, state, lengths: np.ndarray
) -> dict[str, np.ndarray]:
    """`built`'s forward on padded `x` with `lengths`, in nn.LSTM's shapes, or WrongShape."""
    given = np.array(lengths, np.int64)
    x = np.array(x, order="C")
    if state is not None:
        state = tuple(np.array(s, order="C") for s in state)
    got = ev.forward_of(built, x, state, lengths=given)
    _unchanged("forward", given, lengths)
    want = ev.spec.replace(seq_len=x.shape[1 if ev.spec.config.batch_first else 0]).shapes()
    wrong = [
        f"{n} has shape {np.shape(got[n])}; nn.LSTM gives {tuple(want[n])}"
        for n in FORWARD_NAMES
        if np.shape(got[n]) != tuple(want[n])
    ]
    if wrong:
        raise ImplementationError(
            "forward",
            WrongShape(f"{'; '.join(wrong)} (padded input of shape {x.shape} with lengths)"),
        )
    return got


def gradients_with_lengths(
    ev: Evaluation, built, x: np.ndarray, state, cotangents, lengths: np.ndarray
) -> dict[str, np.ndarray]:
    """`built`'s gradients on padded `x` with `lengths`, named and shaped as given."""
    given_lengths = np.array(lengths, np.int64)
    x = np.array(x, order="C")
    if state is not None:
        state = tuple(np.array(s, order="C") for s in state)
    given = {"input": x}
    if state is not None:
        given["h0"], given["c0"] = state
    given.update(ev.implementation_params)
    grads = ev.gradients_of(built, x, state, cotangents, given, lengths=given_lengths)
    _unchanged("gradients", given_lengths, lengths)
    return grads


def _masked_cotangents(ev: Evaluation):
    """The case's cotangents with the output's zero at padded positions: what is compared
    depends on valid outputs, h_n and c_n only (a padded output may hold anything)."""
    g_out, g_h, g_c = ev.case.cotangents
    return (np.where(_output_mask(ev.spec), g_out, 0).astype(g_out.dtype), g_h, g_c)


def _valid_only(got: Mapping[str, np.ndarray], mask: np.ndarray, names) -> dict:
    """`got` with zeros at padded positions of `names` (of nn.LSTM's shapes by now)."""
    out = dict(got)
    for name in names:
        a = np.asarray(out[name])
        out[name] = np.where(mask, a, 0).astype(a.dtype)
    return out


def _wants_gradients(ev: Evaluation) -> bool:
    return ev.adapter.supports.gradients != "none"


# -- padded: against nn.LSTM on the batch packed -------------------------------------------------
def _label(spec: CaseSpec) -> str:
    return (
        f"on the padded batch with lengths={';'.join(map(str, spec.lengths or ()))} "
        f"(nn.LSTM on it packed)"
    )


def _padded_outcome(ev: Evaluation, gradients: bool) -> Outcome:
    lengths = _lengths_array(ev.spec)
    built, mask = ev.instance(), _output_mask(ev.spec)
    forward = _valid_only(
        forward_with_lengths(ev, built, ev.case.input, ev.case.state, lengths), mask, ["output"]
    )
    grads = None
    if gradients:
        grads = _valid_only(
            gradients_with_lengths(
                ev, built, ev.case.input, ev.case.state, _masked_cotangents(ev), lengths
            ),
            mask,
            ["input"],
        )
    return Outcome(forward, grads)


def _measure(ev: Evaluation):
    """(got, reference, comparisons, tolerances) of the forward on `ev`'s case (for the
    likely cause's second case); None when the implementation raised or declined."""
    try:
        got = _padded_outcome(ev, gradients=False)
    except (ImplementationError, Unsupported):
        return None
    return (got, *compare_packed(ev, got, label=_label(ev.spec)))


def _differences_label(spec: CaseSpec) -> str:
    return (
        f"its gradients vs differences of its own forward, both with "
        f"lengths={';'.join(map(str, spec.lengths or ()))}"
    )


def _differences(
    ev: Evaluation, grads: Mapping[str, np.ndarray], ref, tols: Mapping
) -> list[Comparison]:
    """Directional differences of the implementation's forward with lengths against its
    gradients with them (`grads`, the input's zero at padded positions; see
    `parity.packed.own_differences`). Only valid input positions move: the padded ones keep the
    case's values."""
    spec, case = ev.spec, ev.case
    lengths, mask = _lengths_array(spec), _output_mask(spec)

    def run(x, state, params) -> Mapping[str, np.ndarray]:
        x = np.where(mask, x, case.input).astype(case.input.dtype)
        return forward_with_lengths(ev, ev.build(params), x, state, lengths)

    return own_differences(
        ev, run, grads, ref, tols, _masked_cotangents(ev), _differences_label(spec)
    )


def run_padded(ev: Evaluation):
    """The `padded` check on one case (raises Unsupported where it does not apply)."""
    spec = ev.spec
    _lengths_array(spec)
    try:
        got = _padded_outcome(ev, _wants_gradients(ev))
    except ImplementationError as exc:
        return PropertyOutcome("padded", False, error=exc)
    case = dataclasses.replace(ev.case, cotangents=_masked_cotangents(ev))
    ref, comparisons, tols = compare_packed(ev, got, case, _label(spec))
    labels = [_label(spec)] * len(comparisons)
    forward_ok = all(c.passed for c in comparisons if c.tensor in FORWARD_NAMES)
    differences = []
    if forward_ok and got.gradients is not None and wants_differences(ev):
        try:
            differences = _differences(ev, got.gradients, ref, tols)
        except ImplementationError as exc:
            return PropertyOutcome("padded", False, error=exc)
        comparisons = comparisons + differences
        labels += [_differences_label(spec)] * len(differences)
    passed = all(c.passed for c in comparisons)
    cause = None
    if not passed and all(c.status is None for c in comparisons):
        if not all(c.passed for c in differences):
            cause = BACKWARD_CAUSE
        else:
            cause = likely_cause(ev, got, ref.want, tols, padded=True, measure=_measure)
    return PropertyOutcome("padded", passed, comparisons, labels=labels, likely_cause=cause)


# -- padding-invariance: other padded values change nothing valid ------------------------------
def _other_padding(ev: Evaluation) -> np.ndarray:
    x = ev.case.input
    rng = np.random.default_rng([ev.spec.seed, 0x15AD])
    scale = PADDING_SCALE * max(1.0, float(np.std(x)) if x.size else 1.0)
    other = (rng.standard_normal(x.shape) * scale + PADDING_OFFSET).astype(x.dtype)
    return np.where(_output_mask(ev.spec), x, other).astype(x.dtype)


def run_padding_invariance(ev: Evaluation):
    """The `padding-invariance` property on one case (raises Unsupported where it does not
    apply): the same call with other values at the padded positions."""
    spec = ev.spec
    lengths = _lengths_array(spec)
    if int(lengths.min()) == spec.seq_len:
        raise Unsupported("padding-invariance: no row is padded")
    col = Collector(ev, "padding-invariance")
    mask = _output_mask(spec)
    other = _other_padding(ev)
    label = "other values at the padded positions vs the drawn ones"
    try:
        built = ev.instance()
        first, second = (
            _valid_only(
                forward_with_lengths(ev, built, x, ev.case.state, lengths), mask, ["output"]
            )
            for x in (ev.case.input, other)
        )
        for name in FORWARD_NAMES:
            col.add(label, name, second[name], first[name])
        forward_ok = all(c.passed for c in col.comparisons)
        if _wants_gradients(ev):
            cot = _masked_cotangents(ev)
            g1, g2 = (
                _valid_only(
                    gradients_with_lengths(ev, built, x, ev.case.state, cot, lengths),
                    mask,
                    ["input"],
                )
                for x in (ev.case.input, other)
            )
            ref = ev.reference().want.gradients
            assert ref is not None  # the reference runs with gradients
            names = (
                ["input"] + (["h0", "c0"] if ev.case.state is not None else []) + ev.compared_params
            )
            unit = gradient_unit([ref[n] for n in names], cot)
            for name in names:
                col.add(
                    label + ", gradients", name, g2[name], g1[name], group="gradients", unit=unit
                )
    except ImplementationError as exc:
        return PropertyOutcome("padding-invariance", False, error=exc)
    if not forward_ok:
        cause = (
            "values at padded positions reach valid results: the lengths are not applied "
            "everywhere (the state runs on through the padding, or the reverse direction "
            "starts at the padded end), or the padding enters another way (a "
            "normalization or a reduction over the padded sequence)"
        )
    else:
        cause = (
            "values at padded positions reach the gradients of valid positions: the "
            "backward runs through the padding that the forward skipped"
        )
    return col.outcome(cause)


# -- drawing -----------------------------------------------------------------------------------
def _some_padding(spec: CaseSpec) -> CaseSpec:
    """`spec` with at least one padded position (the last row one step short if none is)."""
    if spec.lengths is None or min(spec.lengths) < spec.seq_len:
        return spec
    return spec.replace(lengths=(*spec.lengths[:-1], spec.seq_len - 1))


def padded_cases(spec: CaseSpec) -> CaseSpec:
    """A drawn (or edge) case made one with padding: batched, 2 steps or more, lengths."""
    return _some_padding(prepare_packed(spec))


def padding_lengths(spec: CaseSpec) -> st.SearchStrategy[CaseSpec]:
    """Lengths drawn as for packed batches, with at least one row padded."""
    return packed_lengths(spec).map(_some_padding)


# -- the lengths property, on padded input plus lengths -----------------------------------------
def run_lengths_consistency(ev: Evaluation):
    """`parity.packed.run_lengths_property` for an adapter that takes padded input plus
    lengths (and no PackedSequence): the batch with lengths is run through
    `forward_with_lengths`."""
    built = ev.instance()

    def run(spec: CaseSpec, x: np.ndarray, state) -> dict[str, np.ndarray]:
        return forward_with_lengths(ev, built, x, state, np.asarray(spec.lengths, np.int64))

    return run_lengths_property(ev, run, kind="lengths")
