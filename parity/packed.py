"""Variable-length batches: a `PackedSequence`, as `nn.LSTM` takes it.

A drop-in look-alike that accepts a `PackedSequence` (`Supports.packed`, found by probing) is
called on the packed form of a padded batch with per-row `lengths` (`CaseSpec.lengths`), sorted
or not (`enforce_sorted`), with or without `hx` (in the batch's original order), and compared
with `nn.LSTM` on the same packed input: the output through `pad_packed_sequence` (zero at
padded positions in both, so only valid positions count), `h_n`, `c_n` (each row's state at its
own last step, the reverse direction's at its first), and the gradients of the padded input, h0,
c0 and every parameter.

Failures are explained by rerunning the LSTM with the classic mistakes built in (`MISTAKES`):
the final state taken after running on through the padding, the reverse direction starting at
the padded end, lengths off by one, `h_n` left in length-sorted order, `hx` rows not permuted
with the batch. A mistake is named only when the implementation matches it on everything.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch
from hypothesis import strategies as st
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .cases import Case, CaseSpec
from .evaluation import Evaluation, ImplementationError, Unsupported, wrong_dtype
from .compare import Comparison, compare
from .finite_diff import directional, loss_of
from .metamorphic import Collector, PropertyOutcome, run_forward
from .misbehaviour import WrongShape, WrongStructure
from .reference import (
    DIRECT_RUNS,
    FLOAT64_PROBE,
    FORWARD_NAMES,
    PERTURBATION,
    Outcome,
    ReferenceRun,
    perturb,
    make_torch_lstm,
)
from .torch_adapter import TorchAdapter
from .tolerances import SAFETY, UNIT_ROUNDOFF, gradient_unit, resolvable, tolerance

__all__ = [
    "BACKWARD_CAUSE",
    "FD_DIRECTIONS",
    "FD_MAX_STEPS",
    "MISTAKES",
    "accepts_packed",
    "packed_lengths",
    "prepare_packed",
    "run_lengths_property",
    "run_packed",
    "run_packed_reference",
    "own_differences",
    "simulate",
    "wants_differences",
]

# A mistake is named when the implementation lands within this many tolerances of the LSTM
# rerun with it, on every tensor (the rerun is float64; the implementation may be float32).
MATCH_FACTOR = 2.0


# -- probing -----------------------------------------------------------------------------------
def accepts_packed(module: torch.nn.Module, input_size: int) -> bool:
    """Does a look-alike take a PackedSequence? NotImplementedError, TypeError, or an
    AttributeError (a PackedSequence has no ``dim``/``shape``/``size``) mean it does not; any
    other exception is reported by the checks, not hidden here."""
    module.eval()
    x = torch.zeros(3, 2, input_size, dtype=next(module.parameters()).dtype)
    packed = pack_padded_sequence(x, torch.tensor([3, 1]))
    try:
        with torch.no_grad():
            module(packed)
    except (NotImplementedError, TypeError, AttributeError):
        return False
    except Exception:  # noqa: BLE001 - supported in name; the check will report the error
        return True
    return True


# -- one run on a packed batch -----------------------------------------------------------------
def _dtype(name: str) -> torch.dtype:
    return torch.float32 if name == "float32" else torch.float64


def _packed_run(
    call: Callable,
    params: Mapping[str, np.ndarray],
    spec: CaseSpec,
    input: np.ndarray,
    state,
    cotangents,
    dtype: torch.dtype,
) -> Outcome:
    """Pack `input` (padded) with the spec's lengths, run ``call(params, packed, hx)``, and
    return the padded output, h_n, c_n and (with cotangents) the gradients, as NumPy arrays
    in the dtypes the call returned."""
    want_grad = cotangents is not None
    leaves = {"input": torch.tensor(np.asarray(input), dtype=dtype, requires_grad=want_grad)}
    hx = None
    if state is not None:
        leaves["h0"], leaves["c0"] = (
            torch.tensor(np.asarray(s), dtype=dtype, requires_grad=want_grad) for s in state
        )
        hx = (leaves["h0"], leaves["c0"])
    tensors = {
        n: torch.tensor(np.asarray(a), dtype=dtype, requires_grad=want_grad)
        for n, a in params.items()
    }
    leaves.update(tensors)
    bf = spec.config.batch_first
    with torch.set_grad_enabled(want_grad):
        packed = pack_padded_sequence(
            leaves["input"],
            torch.tensor(spec.lengths),
            batch_first=bf,
            enforce_sorted=spec.enforce_sorted,
        )
        output, h_n, c_n = call(tensors, packed, hx)
        if not isinstance(output, PackedSequence):
            raise WrongStructure(
                f"returned output of type {type(output).__name__} for a "
                f"PackedSequence input; nn.LSTM returns a PackedSequence"
            )
        if not torch.equal(output.batch_sizes, packed.batch_sizes):
            raise WrongStructure(
                f"returned a PackedSequence with batch_sizes "
                f"{output.batch_sizes.tolist()}; the input's are "
                f"{packed.batch_sizes.tolist()}"
            )
        padded, _ = pad_packed_sequence(output, batch_first=bf, total_length=spec.seq_len)
        forward = {n: t.detach().numpy().copy() for n, t in zip(FORWARD_NAMES, (padded, h_n, c_n))}
        if not want_grad:
            return Outcome(forward)
        for name, g, t in zip(FORWARD_NAMES, cotangents, (padded, h_n, c_n)):
            if tuple(t.shape) != np.shape(g):
                raise WrongShape(f"{name} has shape {tuple(t.shape)}; nn.LSTM gives {np.shape(g)}")
        loss = sum(
            (torch.as_tensor(np.asarray(g), dtype=t.dtype) * t).sum()
            for g, t in zip(cotangents, (padded, h_n, c_n))
        )
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    gradients = {
        n: np.zeros(leaf.shape) if g is None else g.detach().numpy().copy()
        for (n, leaf), g in zip(leaves.items(), grads)
    }
    return Outcome(forward, gradients)


def _reference_call(spec: CaseSpec, dtype: torch.dtype) -> Callable:
    module = make_torch_lstm(spec.config, dtype)

    def call(params, packed, hx):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            output, (h_n, c_n) = functional_call(module, params, (packed, hx))
        return output, h_n, c_n

    return call


def _as64(outcome: Outcome) -> Outcome:
    grads = outcome.gradients
    return Outcome(
        {n: np.asarray(a, np.float64) for n, a in outcome.forward.items()},
        None if grads is None else {n: np.asarray(a, np.float64) for n, a in grads.items()},
    )


def run_packed_reference(case: Case, params: Mapping[str, np.ndarray]) -> ReferenceRun:
    """`nn.LSTM` on the packed batch in float64, and runs that round differently (as
    `parity.reference.run_reference` draws them, less the gate-noise run: the tolerance also
    takes the padded case's reference, which has it)."""
    spec = case.spec
    f64 = {n: np.asarray(a, np.float64) for n, a in params.items()}
    x64 = np.asarray(case.input, np.float64)
    s64 = None if case.state is None else tuple(np.asarray(s, np.float64) for s in case.state)
    cot64 = tuple(np.asarray(c, np.float64) for c in case.cotangents)

    def run(dtype, prep, onednn=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.backends.mkldnn.flags(enabled=onednn):
                return _as64(
                    _packed_run(
                        _reference_call(spec, dtype),
                        {n: prep(a) for n, a in f64.items()},
                        spec,
                        prep(x64),
                        None if s64 is None else tuple(prep(s) for s in s64),
                        cot64,
                        dtype,
                    )
                )

    want = run(torch.float64, lambda a: a)
    rng = np.random.default_rng(spec.seed ^ 0x9AC4)
    if spec.dtype == "float64":
        samples = [
            run(torch.float64, lambda a: perturb(rng, a, np.float64, FLOAT64_PROBE), onednn)
            for onednn in (True, False)
        ]
        to_float32 = PERTURBATION[np.float64] / FLOAT64_PROBE
    else:
        samples = [
            run(torch.float32, lambda a: np.asarray(a, np.float32), onednn)
            for onednn in (True, False)
        ]
        samples.append(run(torch.float32, lambda a: perturb(rng, a, np.float32)))
        samples.append(run(torch.float64, lambda a: perturb(rng, a, np.float64)))
        to_float32 = 1.0
    size = SAFETY * UNIT_ROUNDOFF[spec.dtype]
    direct = [
        run(torch.float64, lambda a: perturb(rng, a, np.float64, size)) for _ in range(DIRECT_RUNS)
    ]
    return ReferenceRun(want, samples, to_float32, direct)


# -- the LSTM with a mistake built in ------------------------------------------------------------
def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def simulate(
    config,
    params: Mapping[str, np.ndarray],
    x: np.ndarray,
    state,
    *,
    forward_steps: np.ndarray,
    final_step: np.ndarray,
    reverse_start: np.ndarray,
):
    """A float64 LSTM over a time-major padded batch `x` (T, B, I) where row b's forward
    direction runs `forward_steps[b]` steps and takes its final state after `final_step[b]`
    (0: the initial state), and its reverse direction starts at step `reverse_start[b]` (-1:
    not at all). Outputs are zero where a direction did not run. nn.LSTM on a packed batch is
    ``forward_steps = final_step = lengths, reverse_start = lengths - 1``."""
    T, B, _ = x.shape
    L, D = config.num_layers, config.num_directions
    H, Ho = config.hidden_size, config.output_hidden_size
    h0 = np.zeros((L * D, B, Ho)) if state is None else np.asarray(state[0], np.float64)
    c0 = np.zeros((L * D, B, H)) if state is None else np.asarray(state[1], np.float64)
    h_n, c_n = np.zeros_like(h0), np.zeros_like(c0)
    layer_input = np.asarray(x, np.float64)
    for layer in range(L):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = params["weight_ih" + sfx], params["weight_hh" + sfx]
            b = (params["bias_ih" + sfx] + params["bias_hh" + sfx]) if config.bias else 0.0
            w_hr = params.get("weight_hr" + sfx) if config.proj_size else None
            h, c = h0[layer * D + d].copy(), c0[layer * D + d].copy()
            fh, fc = h.copy(), c.copy()
            out = np.zeros((T, B, Ho))
            for t in range(T) if d == 0 else range(T - 1, -1, -1):
                active = ((t < forward_steps) if d == 0 else (t <= reverse_start))[:, None]
                z = layer_input[t] @ w_ih.T + h @ w_hh.T + b
                i, f, g, o = np.split(z, 4, axis=1)
                c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                h_new = _sigmoid(o) * np.tanh(c_new)
                if w_hr is not None:
                    h_new = h_new @ w_hr.T
                h, c = np.where(active, h_new, h), np.where(active, c_new, c)
                out[t] = np.where(active, h_new, 0.0)
                if d == 0:
                    take = (final_step == t + 1)[:, None]
                    fh, fc = np.where(take, h, fh), np.where(take, c, fc)
            if d == 1:
                fh, fc = h, c
            h_n[layer * D + d], c_n[layer * D + d] = fh, fc
            outs.append(out)
        layer_input = np.concatenate(outs, axis=2)
    return layer_input, h_n, c_n


@dataclass(frozen=True)
class Mistake:
    """One classic variable-length mistake: the rerun's arguments, and the sentence."""

    name: str
    cause: str
    # (lengths, seq_len) -> (forward_steps, final_step, reverse_start); None: nn.LSTM's
    ranges: Callable | None = None
    permute_h0: bool = False  # hx used in the packed (length-sorted) order
    sorted_final: bool = False  # h_n, c_n returned in the packed (length-sorted) order
    needs_bidirectional: bool = False


def _clip(a, low, high):
    return np.clip(a, low, high)


MISTAKES = (
    Mistake(
        "sorted h_n",
        "h_n and c_n come back in length-sorted order (the PackedSequence's "
        "sorted_indices), not in the batch's original order: unsorted_indices was not "
        "applied to the final state",
        sorted_final=True,
    ),
    Mistake(
        "unpermuted h0",
        "the initial state's rows are not permuted with the batch: hx comes in the "
        "batch's original order and must be reordered by the PackedSequence's "
        "sorted_indices before it meets the length-sorted data, as nn.LSTM does",
        permute_h0=True,
    ),
    Mistake(
        "final state after padding",
        "the final state is taken after running on through the padding: h_n and c_n are "
        "the state at the padded end (the padded batch's last step), not at each "
        "sequence's own last step",
        lambda n, T: (np.full_like(n, T), np.full_like(n, T), n - 1),
    ),
    Mistake(
        "reverse from padded end",
        "the reverse direction starts at the padded end (the padded batch's last "
        "step) instead of at each sequence's own last step (length - 1)",
        lambda n, T: (n, n, np.full_like(n, T - 1)),
        needs_bidirectional=True,
    ),
    Mistake(
        "padding run as data",
        "the padding is run as if it were data: the forward direction's final state is "
        "taken at the padded end and the reverse direction starts there, instead of at "
        "each sequence's own length",
        lambda n, T: (np.full_like(n, T), np.full_like(n, T), np.full_like(n, T - 1)),
        needs_bidirectional=True,
    ),
    Mistake(
        "final state one step early",
        "the lengths are used off by one: the final state is taken after length - 1 steps "
        "(the step before each sequence's last)",
        lambda n, T: (n, n - 1, n - 1),
    ),
    Mistake(
        "one step short",
        "the lengths are used off by one: each sequence runs length - 1 steps (a mask "
        "`t < length - 1`, or lengths counted from 0)",
        lambda n, T: (n - 1, n - 1, n - 2),
    ),
    Mistake(
        "one step long",
        "the lengths are used off by one: each sequence runs one step into the padding "
        "(length + 1 steps; a mask `t <= length`)",
        lambda n, T: (_clip(n + 1, 0, T), _clip(n + 1, 0, T), _clip(n, -1, T - 1)),
    ),
    Mistake(
        "forward one step long",
        "the lengths are used off by one: the final state is taken one step into the "
        "padding (after length + 1 steps)",
        lambda n, T: (_clip(n + 1, 0, T), _clip(n + 1, 0, T), n - 1),
        needs_bidirectional=True,
    ),  # unidirectional, it is "one step long"
)


def _time_major(a: np.ndarray, spec: CaseSpec) -> np.ndarray:
    return np.swapaxes(a, 0, 1) if spec.config.batch_first else a


def valid_mask(spec: CaseSpec) -> np.ndarray:
    """(T, B) True where a row has data."""
    return np.arange(spec.seq_len)[:, None] < np.asarray(spec.lengths)[None, :]


def _rerun(
    ev: Evaluation, mistake: Mistake | None, sorted_indices: np.ndarray, padded: bool = False
):
    """The forward with `mistake` built in (None: none), in the case's layouts. `padded`:
    the implementation was given the padded input itself (parity.lengths), not packed."""
    spec, case = ev.spec, ev.case
    n = np.asarray(spec.lengths)
    x = _time_major(np.asarray(case.input, np.float64), spec)
    if padded:
        T = spec.seq_len  # it runs on through the padding as given, values and all
    else:
        T = int(n.max())  # a PackedSequence unpacks to the longest sequence: the padded end
        # An implementation that runs on through the padding sees what unpacking gives: zeros.
        x = x * valid_mask(spec)[:, :, None]
    state: tuple[np.ndarray, ...] | None = case.state
    unsorted = np.argsort(sorted_indices)
    if mistake is not None and mistake.permute_h0:
        assert state is not None  # `_matching` tries permute_h0 only on a case with a state
        # Sorted position j reads hx row j, not row sorted_indices[j]: row b gets unsorted[b].
        state = tuple(np.asarray(s)[:, unsorted] for s in state)
    ranges = (n, n, n - 1) if mistake is None or mistake.ranges is None else mistake.ranges(n, T)
    f, g, r = (np.asarray(a) for a in ranges)
    out, h_n, c_n = simulate(
        spec.config,
        {k: np.asarray(v, np.float64) for k, v in ev.reduced.items()},
        x,
        state,
        forward_steps=f,
        final_step=g,
        reverse_start=r,
    )
    out = out * valid_mask(spec)[:, :, None]
    if mistake is not None and mistake.sorted_final:
        h_n, c_n = h_n[:, sorted_indices], c_n[:, sorted_indices]
    return {"output": _time_major(out, spec), "h_n": h_n, "c_n": c_n}


def _within(got: Mapping, other: Mapping, tols: Mapping) -> bool:
    for name in FORWARD_NAMES:
        a, b = np.asarray(got[name], np.float64), other[name]
        if a.shape != b.shape:
            return False
        if b.size and not np.max(np.abs(a - b)) <= MATCH_FACTOR * tols[name]:
            return False  # written so that NaN never matches
    return True


def _state_gradients_permuted(
    got: Outcome, want: Outcome, tols: Mapping, sorted_indices: np.ndarray
) -> bool:
    """hx used unpermuted where the forward cannot show it (a zero hx): the gradients of h0
    and c0 come back in length-sorted order, and every other gradient is right."""
    assert got.gradients is not None and want.gradients is not None  # gradient outcomes
    for name, w in want.gradients.items():
        if name in ("h0", "c0"):
            w = w[:, sorted_indices]
        g = np.asarray(got.gradients.get(name), np.float64)
        if g.shape != w.shape or (
            w.size and not np.max(np.abs(g - w)) <= MATCH_FACTOR * tols[name]
        ):
            return False
    return True


def _matching(
    ev: Evaluation, got: Outcome, want: Outcome, tols: Mapping, candidates, padded: bool = False
) -> list[Mistake] | None:
    """The candidate mistakes the implementation's forward matches; None where the rerun
    without a mistake does not reproduce nn.LSTM (no evidence either way)."""
    spec, sorted_indices = ev.spec, _sorted_indices(ev.spec)
    got_fw, want_fw = got.forward, want.forward
    if not _within(_rerun(ev, None, sorted_indices, padded), want_fw, tols):
        return None
    identity = bool(np.all(sorted_indices == np.arange(len(sorted_indices))))
    found = []
    for mistake in candidates:
        if mistake.needs_bidirectional and not spec.config.bidirectional:
            continue
        if (mistake.permute_h0 or mistake.sorted_final) and identity:
            continue
        if mistake.permute_h0 and ev.case.state is None:
            continue
        wrong = _rerun(ev, mistake, sorted_indices, padded)
        if _within(wrong, want_fw, tols):
            continue  # the mistake changes nothing on this case
        if _within(got_fw, wrong, tols):
            found.append(mistake)
    return found


def likely_cause(
    ev: Evaluation,
    got: Outcome,
    want: Outcome,
    tols: Mapping,
    *,
    padded: bool = False,
    measure: Callable | None = None,
) -> str | None:
    """The mistake the implementation matches, or None.

    Where two mistakes give the same result on the case (running to the padded end and one
    step past each length, when the padding is one step), the implementation is run again on
    the case with one more row, two steps longer than the others, which tells them apart;
    still more than one, none is named.

    `padded`: the implementation took the padded input and the lengths (parity.lengths), not
    a PackedSequence: it sees the padded values, the padded end is seq_len, and the batch is
    never sorted (the mistakes of sorted order do not apply). `measure(ev)` runs it on another
    case: (got, reference, comparisons, tolerances), or None."""
    candidates = [m for m in MISTAKES if not (padded and (m.permute_h0 or m.sorted_final))]
    measure = measure or _measure
    if _within(got.forward, want.forward, tols):
        if padded:
            return None
        # Only the gradients differ: a permuted zero hx is the one mistake that shows there.
        mistake = next(m for m in MISTAKES if m.permute_h0)
        if ev.case.state is not None and _state_gradients_permuted(
            got, want, tols, _sorted_indices(ev.spec)
        ):
            return mistake.cause
        return None
    found = _matching(ev, got, want, tols, candidates, padded)
    if found and len(found) > 1:
        spec = ev.spec
        assert spec.lengths is not None and spec.batch is not None  # a packed case
        # One more row, two steps longer than any: every other row gets two padded steps.
        extra = spec.seq_len + 2
        lengths = (extra, *spec.lengths) if spec.enforce_sorted else (*spec.lengths, extra)
        longer = Evaluation(
            ev.adapter, spec.replace(seq_len=extra, batch=spec.batch + 1, lengths=lengths)
        )
        measured = measure(longer)
        if measured is None:
            return None
        found = _matching(longer, measured[0], measured[1].want, measured[3], found, padded)
    if found and len(found) == 1:
        return found[0].cause
    return None


def _sorted_indices(spec: CaseSpec) -> np.ndarray:
    assert spec.lengths is not None  # a packed case
    packed = pack_padded_sequence(
        torch.zeros(spec.seq_len, len(spec.lengths), 1),
        torch.tensor(spec.lengths),
        enforce_sorted=spec.enforce_sorted,
    )
    if packed.sorted_indices is None:
        return np.arange(len(spec.lengths))
    return packed.sorted_indices.numpy()


# -- finite differences on a variable-length batch (packed here, padded in parity.lengths) ------
# On float64 cases only (differences of a float32 forward resolve two digits at best) of at most
# this many steps x layers x directions: each case costs ~20-50 forward calls.
FD_MAX_STEPS = 48
FD_DIRECTIONS = 2
BACKWARD_CAUSE = (
    "backward on the packed batch: its gradients disagree with differences of the "
    "implementation's own forward on the same packed batch, which matches nn.LSTM: the "
    "backward does not follow the lengths the forward follows (a state detached or a gradient "
    "dropped where a sequence ends, a hand-written backward that runs over the padded steps)"
)


def wants_differences(ev: Evaluation) -> bool:
    """Whether a variable-length case of `ev` gets finite differences (see FD_MAX_STEPS)."""
    c = ev.spec.config
    steps = ev.spec.seq_len * c.num_layers * c.num_directions
    return (
        ev.adapter.supports.gradients != "none"
        and ev.spec.dtype == "float64"
        and steps <= FD_MAX_STEPS
    )


def own_differences(
    ev: Evaluation,
    run: Callable[..., Mapping[str, np.ndarray]],
    grads: Mapping[str, np.ndarray],
    ref: ReferenceRun,
    tols: Mapping[str, float],
    cotangents,
    label: str,
) -> list[Comparison]:
    """Directional differences of the implementation's forward on a variable-length batch
    (``run(input, state, params)`` -> output, h_n, c_n) against its gradients on it
    (`grads`). `ref`: nn.LSTM's run on the batch (its slopes keep the steps linear); `tols`:
    the forward's tolerances against it; `cotangents`: the loss's, zero where nothing is
    compared.

    The loss's rounding noise is bounded by the forward's own evidence: it matched nn.LSTM
    within `tols`, so the loss is within ``sum |g| x tol`` of the exact one (no extra calls to
    measure it, and an implementation rounding coarser inside than its dtype is covered)."""
    spec, case = ev.spec, ev.case
    point = {"input": case.input}
    if case.state is not None:
        point["h0"], point["c0"] = case.state
    point.update(ev.implementation_params)
    names = list(ev.implementation_params)

    def loss(p) -> float:
        state = (p["h0"], p["c0"]) if "h0" in p else None
        return loss_of(run(p["input"], state, {n: p[n] for n in names}), cotangents)[0]

    noise = sum(
        float(np.sum(np.abs(np.asarray(g, np.float64)) * tols[name]))
        for name, g in zip(FORWARD_NAMES, cotangents)
    )
    comparisons = directional(
        loss,
        point,
        grads,
        spec.dtype,
        noise,
        np.random.default_rng([spec.seed, 0xFD]),
        FD_DIRECTIONS,
        ref.want.gradients,
        loss_of(ref.want.forward, cotangents)[1],
    )
    for c in comparisons:
        c.where["compared"] = label
    return comparisons


# -- the check ---------------------------------------------------------------------------------
def _implementation_call(ev: Evaluation) -> Callable:
    if not isinstance(ev.builder, TorchAdapter):
        raise Unsupported("packed: the implementation is not a torch module")
    built = ev.instance()

    def call(params, packed, hx):
        return built.run_module(params, packed, hx)

    return call


def _packed_forward(ev: Evaluation) -> Callable:
    """``run(spec, input, state, params=None)``: the implementation's output, h_n and c_n on
    `input` packed with `spec`'s lengths (with `params`, or the case's parameters)."""
    call, dtype = _implementation_call(ev), _dtype(ev.spec.dtype)

    def run(spec: CaseSpec, x, state, params=None) -> dict[str, np.ndarray]:
        given = ev.implementation_params if params is None else params
        outcome = ev.call("packed forward", _packed_run, call, given, spec, x, state, None, dtype)
        return outcome.forward

    return run


def _label(spec: CaseSpec) -> str:
    assert spec.lengths is not None  # a packed case
    order = "" if spec.enforce_sorted else ", enforce_sorted=false"
    return f"on the packed batch (lengths={';'.join(map(str, spec.lengths))}{order})"


def _measure(ev: Evaluation):
    """(got, reference, comparisons, tolerances) for `ev`'s packed case; None when the
    implementation raised (the exception is re-raised by the caller's own run)."""
    try:
        got = ev.call(
            "packed forward and gradients",
            _packed_run,
            _implementation_call(ev),
            ev.implementation_params,
            ev.spec,
            ev.case.input,
            ev.case.state,
            ev.case.cotangents,
            _dtype(ev.spec.dtype),
        )
    except (ImplementationError, Unsupported):
        return None
    return (got, *compare_packed(ev, got))


def compare_packed(
    ev: Evaluation, got: Outcome, case: Case | None = None, label: str | None = None
):
    """Compare `got` with nn.LSTM on `case` (`ev`'s unless given: the same with other
    cotangents) packed; gradients only where `got` has them."""
    spec, case = ev.spec, case or ev.case
    ref = run_packed_reference(case, ev.reduced)
    label = label or _label(spec)
    comparisons, tols = [], {}

    def add(group, name, unit):
        want = ref.want.pick(group, name)
        spread = ref.spread_of(group, name)
        tol = tolerance(spec.dtype, want, spread, unit)
        have = (got.forward if group == "forward" else got.gradients)[name]

        def compared():
            return compare(
                name,
                have,
                want,
                tol,
                spec,
                resolvable(spec.dtype, want, spread),
                ref.overflow(group, name, spec.dtype),
            )

        cmp = compared()
        if not cmp.passed and cmp.status is None:
            # The padded case's reference (computed only now: it costs as much as the rest)
            # has the gate-noise run: a correct implementation computed another way can land
            # that far.
            other = ev.reference().want.pick(group, name)
            if other.shape == want.shape:
                tol = max(
                    tol, tolerance(spec.dtype, other, ev.reference().spread_of(group, name), unit)
                )
                cmp = compared()
        if cmp.status is None:
            cmp = wrong_dtype(name, have, spec) or cmp
        cmp.where["compared"] = label
        comparisons.append(cmp)
        tols[name] = tol

    for name in FORWARD_NAMES:
        add("forward", name, 1.0)
    if got.gradients is None:
        return ref, comparisons, tols
    names = ["input"] + (["h0", "c0"] if case.state is not None else []) + ev.compared_params
    assert ref.want.gradients is not None  # the packed reference runs with gradients
    unit = gradient_unit([ref.want.gradients[n] for n in names], case.cotangents)
    for name in names:
        add("gradients", name, unit)
    return ref, comparisons, tols


def run_packed(ev: Evaluation):
    """The `packed` check on one case (raises Unsupported where it does not apply)."""

    spec = ev.spec
    if spec.lengths is None:
        raise Unsupported("packed: needs a case with lengths")
    try:
        got = ev.call(
            "packed forward and gradients",
            _packed_run,
            _implementation_call(ev),
            ev.implementation_params,
            spec,
            ev.case.input,
            ev.case.state,
            ev.case.cotangents,
            _dtype(spec.dtype),
        )
    except ImplementationError as exc:
        return PropertyOutcome("packed", False, error=exc)
    ref, comparisons, tols = compare_packed(ev, got)
    labels = [_label(spec)] * len(comparisons)
    forward_ok = all(c.passed for c in comparisons if c.tensor in FORWARD_NAMES)
    differences: list[Comparison] = []
    if forward_ok and got.gradients is not None and wants_differences(ev):
        packed_forward = _packed_forward(ev)

        def run(x, state, params):
            return packed_forward(spec, x, state, params)

        label = f"its gradients vs differences of its own forward, both {_label(spec)}"
        try:
            differences = own_differences(
                ev, run, got.gradients, ref, tols, ev.case.cotangents, label
            )
        except ImplementationError as exc:
            return PropertyOutcome("packed", False, error=exc)
        comparisons = comparisons + differences
        labels += [label] * len(differences)
    passed = all(c.passed for c in comparisons)
    cause = None
    if not passed and all(c.status is None for c in comparisons):
        if not all(c.passed for c in differences):
            cause = BACKWARD_CAUSE
        else:
            cause = likely_cause(ev, got, ref.want, tols)
    return PropertyOutcome("packed", passed, comparisons, labels=labels, likely_cause=cause)


# -- the property: a packed batch against the implementation itself -----------------------------
MAX_ROWS_ALONE = 3


# Why the `lengths` property fails, by the part that failed, for a PackedSequence and for padded
# input with lengths (`parity.lengths.run_lengths_consistency`).
LENGTHS_CAUSES = {
    "packed": {
        "rows": "a sequence's result depends on the rest of the batch: it runs on into the "
        "padding, or its final state or reverse direction is read at another length",
        "order": "the result depends on the batch's order: h_n or hx kept in the packed "
        "(length-sorted) order, or sorted_indices / unsorted_indices mishandled",
        "full": "a packed batch of full-length sequences differs from the plain tensor run",
    },
    "lengths": {
        "rows": "a sequence's result depends on the rest of the batch: it runs on into the "
        "padding, or its final state or reverse direction is read at another length",
        "order": "the result depends on the batch's order: lengths, h0 or c0 applied to "
        "rows in another order (sorted by length, say)",
        "full": "padded input whose lengths are all seq_len differs from the plain tensor run "
        "(lengths=None)",
    },
}


def run_lengths_property(ev: Evaluation, run: Callable | None = None, kind: str = "packed"):
    """The `lengths` property: each sequence run alone (a plain batch of one, its own length)
    equals its row of the batch with lengths; the batch permuted (unsorted) gives the results
    permuted; lengths all seq_len give the plain tensor run. No reference involved.

    `run(spec, input, state)` runs the implementation on the batch with `spec.lengths`: by
    default packed into a PackedSequence; `parity.lengths` passes padded input plus lengths
    (`kind` "lengths")."""

    spec = ev.spec
    if spec.lengths is None:
        raise Unsupported("lengths: needs a case with lengths")
    assert spec.batch is not None  # a case with lengths is batched (`prepare_packed`)
    col = Collector(ev, "lengths")
    try:
        if run is None:
            run = _packed_forward(ev)

        packed = run
        whole = packed(spec, ev.case.input, ev.case.state)
        bax = 0 if spec.config.batch_first else 1
        x, state, n = ev.case.input, ev.case.state, spec.lengths
        built, rng = ev.instance(), np.random.default_rng([spec.seed, 15])
        for b in sorted({0, spec.batch - 1, int(rng.integers(spec.batch))})[:MAX_ROWS_ALONE]:
            row = np.take(x, [b], axis=bax)
            row = row[:, : n[b]] if bax == 0 else row[: n[b]]
            alone = run_forward(
                ev, built, row, None if state is None else tuple(s[:, b : b + 1] for s in state)
            )
            mine = np.take(whole["output"], [b], axis=bax)
            mine = mine[:, : n[b]] if bax == 0 else mine[: n[b]]
            label = f"sequence {b} (length {n[b]}) run alone vs its row of the {kind} batch"
            col.add(label, "output", alone["output"], mine)
            for name in ("h_n", "c_n"):
                col.add(label, name, alone[name], whole[name][:, b : b + 1])
        rows_ok = all(c.passed for c in col.comparisons)
        start = len(col.comparisons)
        perm = rng.permutation(spec.batch)
        if np.array_equal(perm, np.arange(spec.batch)):
            perm = np.roll(perm, 1)
        moved = packed(
            spec.replace(lengths=tuple(n[i] for i in perm), enforce_sorted=False),
            np.take(x, perm, axis=bax),
            None if state is None else tuple(s[:, perm] for s in state),
        )
        for name in FORWARD_NAMES:
            col.add(
                f"the {kind} batch permuted by {perm.tolist()} vs the results permuted",
                name,
                moved[name],
                np.take(whole[name], perm, axis=bax if name == "output" else 1),
            )
        perm_ok = all(c.passed for c in col.comparisons[start:])
        full = packed(
            spec.replace(lengths=(spec.seq_len,) * spec.batch, enforce_sorted=True), x, state
        )
        plain = ev.forward()
        for name in FORWARD_NAMES:
            col.add(
                f"lengths all seq_len ({kind}) vs the plain tensor run",
                name,
                full[name],
                plain[name],
            )
    except ImplementationError as exc:
        return PropertyOutcome("lengths", False, error=exc)
    causes = LENGTHS_CAUSES[kind]
    return col.outcome(causes["rows" if not rows_ok else "order" if not perm_ok else "full"])


# -- drawing -----------------------------------------------------------------------------------
def packed_lengths(spec: CaseSpec) -> st.SearchStrategy[CaseSpec]:
    """`spec` with lengths drawn: any, ties, one much longer than the rest, or all full; sorted
    (enforce_sorted) or in any order."""
    T, B = spec.seq_len, spec.batch or 1

    @st.composite
    def draw_lengths(draw):
        kind = draw(st.sampled_from(("any", "ties", "one long", "all full")))
        if kind == "all full":
            lengths = [T] * B
        elif kind == "ties":
            pool = draw(st.lists(st.integers(1, T), min_size=1, max_size=2))
            lengths = [draw(st.sampled_from(pool)) for _ in range(B)]
        elif kind == "one long":
            lengths = [draw(st.integers(1, max(1, T // 4))) for _ in range(B)]
            lengths[draw(st.integers(0, B - 1))] = T
        else:
            lengths = [draw(st.integers(1, T)) for _ in range(B)]
        enforce_sorted = draw(st.booleans())
        if enforce_sorted:
            lengths.sort(reverse=True)
        return spec.replace(lengths=tuple(lengths), enforce_sorted=enforce_sorted)

    return draw_lengths()


def prepare_packed(spec: CaseSpec) -> CaseSpec:
    """A drawn (or edge) case made a packed one: batched, 2 steps or more, lengths from the
    seed (the search draws its own over these, `packed_lengths`)."""
    if spec.batch is None or spec.batch < 2:
        spec = spec.replace(batch=3 if spec.batch is None else max(2, spec.batch))
    if spec.seq_len < 2:
        spec = spec.replace(seq_len=2)
    if spec.lengths is not None and len(spec.lengths) == spec.batch:
        return spec
    rng = np.random.default_rng(spec.seed)
    T, B = spec.seq_len, spec.batch
    assert B is not None  # made batched above
    pattern = spec.seed % 3
    if pattern == 0:  # one much longer than the rest
        lengths = [int(v) for v in rng.integers(1, max(1, T // 4) + 1, size=B)]
        lengths[int(rng.integers(B))] = T
    elif pattern == 1:  # ties
        lengths = [int(v) for v in rng.choice([T, max(1, T // 2)], size=B)]
    else:
        lengths = [int(v) for v in rng.integers(1, T + 1, size=B)]
    enforce_sorted = bool((spec.seed // 3) % 2)
    if enforce_sorted:
        lengths.sort(reverse=True)
    return spec.replace(lengths=tuple(lengths), enforce_sorted=enforce_sorted)
