"""The reference: `torch.nn.LSTM`, run on a case's weights and inputs.

`run_reference` gives the float64 result every implementation is compared with, and the
estimates of how far a correct implementation in the case's dtype may land from it (torch's
own float32 result, and the float64 result on inputs perturbed at float32's rounding level).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch

from .adapter import LSTMConfig
from .cases import Case
from .gate_noise import run_gate_noise_lstm
from .process_state import harness_settings
from .tolerances import SAFETY, UNIT_ROUNDOFF, Spread

__all__ = ["Outcome", "ReferenceRun", "run_reference", "run_torch_lstm", "shared_reference"]

FORWARD_NAMES = ("output", "h_n", "c_n")


@dataclass
class Outcome:
    """Forward results and (optionally) gradients, as float64 NumPy arrays."""

    forward: dict[str, np.ndarray]  # output, h_n, c_n
    gradients: dict[str, np.ndarray] | None = None  # input, h0, c0, parameter names

    def pick(self, group: str, name: str) -> np.ndarray:
        """One tensor: `group` is "forward" or "gradients"."""
        # without gradients, asking for one raises (TypeError) as it always has
        return (self.forward if group == "forward" else self.gradients)[name]  # type: ignore[index]


def make_torch_lstm(config: LSTMConfig, dtype: torch.dtype) -> torch.nn.LSTM:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dropout with num_layers=1
        module = torch.nn.LSTM(
            config.input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            bias=config.bias,
            batch_first=config.batch_first,
            dropout=config.dropout,
            bidirectional=config.bidirectional,
            proj_size=config.proj_size,
            dtype=dtype,
        )
    return module.eval()


@harness_settings()  # grad mode, default dtype: whatever the implementation left set
def run_torch_lstm(
    config: LSTMConfig,
    params: Mapping[str, np.ndarray],
    input: np.ndarray,
    state,
    cotangents=None,
    dtype: torch.dtype = torch.float64,
) -> Outcome:
    """Run `nn.LSTM` in `dtype` on the given arrays; gradients when cotangents are given."""
    module = make_torch_lstm(config, dtype)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.as_tensor(np.asarray(params[name])))
    want_grad = cotangents is not None
    leaves = {"input": torch.tensor(input, dtype=dtype, requires_grad=want_grad)}
    hx = None
    if state is not None:
        leaves["h0"], leaves["c0"] = (
            torch.tensor(s, dtype=dtype, requires_grad=want_grad) for s in state
        )
        hx = (leaves["h0"], leaves["c0"])
    with torch.set_grad_enabled(want_grad), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "projections not supported with oneDNN"
        output, (h_n, c_n) = module(leaves["input"], hx)
    forward = {
        name: t.detach().numpy().astype(np.float64)
        for name, t in zip(FORWARD_NAMES, (output, h_n, c_n))
    }
    if not want_grad:
        return Outcome(forward)
    named = dict(module.named_parameters())
    leaves.update(named)
    loss = sum(
        (torch.as_tensor(np.asarray(g), dtype=dtype) * t).sum()
        for g, t in zip(cotangents, (output, h_n, c_n))
    )
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    gradients = {
        name: (np.zeros(leaf.shape) if g is None else g.detach().numpy().astype(np.float64))
        for (name, leaf), g in zip(leaves.items(), grads)
    }
    return Outcome(forward, gradients)


Runs = Callable[[str], "tuple[list[Outcome], list[Outcome]]"]


class ReferenceRun:
    """The reference for one case, and what a correct implementation may differ from it by.

    `want` is computed at once; the sample runs behind the spreads (`samples`, `direct`) may be
    given, or computed on first need by `runs` (see `run_reference`): most comparisons are
    settled by the tolerance's floor alone (`parity.tolerances.floor`), and never need them.
    """

    def __init__(
        self,
        want: Outcome,
        samples: list[Outcome] | None = None,
        to_float32: float = 1.0,
        direct: list[Outcome] | None = None,
        *,
        runs: Runs | None = None,
    ) -> None:
        """`samples`: correct runs that round differently (see run_reference). `to_float32`:
        what the samples' spread is multiplied by to express it at float32's rounding level
        (the samples of a float64 case are perturbed by far less than that). `direct`: float64
        runs on values perturbed by SAFETY x the case dtype's unit roundoff, measured, not
        extrapolated. `runs`, instead of `samples` and `direct`: ``runs(group)`` gives both
        for "forward" (forward-only runs) or "gradients" (runs with gradients), when first
        needed."""
        if (samples is None) == (runs is None):
            raise ValueError("give either samples (and direct) or runs")
        self.want, self.to_float32 = want, to_float32
        self._runs = runs
        self._computed: dict[str, tuple[list[Outcome], list[Outcome]]] = {}
        if samples is not None:
            given = (list(samples), list(direct or []))
            self._computed = {"forward": given, "gradients": given}

    def runs(self, group: str) -> tuple[list[Outcome], list[Outcome]]:
        """(samples, direct) for `group` ("forward" or "gradients"), computed once."""
        if group not in self._computed:
            assert self._runs is not None  # given samples cover both groups (__init__)
            self._computed[group] = self._runs(group)
        return self._computed[group]

    @property
    def probed(self) -> tuple[str, ...]:
        """The groups whose sample runs have been made (or were given)."""
        return tuple(self._computed)

    @property
    def samples(self) -> list[Outcome]:
        """The samples, with gradients where the reference has them."""
        return self.runs("forward" if self.want.gradients is None else "gradients")[0]

    @property
    def direct(self) -> list[Outcome]:
        return self.runs("forward" if self.want.gradients is None else "gradients")[1]

    def spread(self, group: str, name: str) -> np.ndarray:
        """Elementwise max |sample - want| over the samples, at float32's rounding level.

        The tolerance for another dtype scales it by that dtype's unit roundoff
        (see `parity.tolerances`)."""
        want = self.want.pick(group, name)
        return self.to_float32 * np.max(
            [np.abs(s.pick(group, name) - want) for s in self.runs(group)[0]], axis=0
        )

    def overflow(self, group: str, name: str, dtype: str) -> np.ndarray:
        """The elements a correct run in `dtype` cannot give: beyond the dtype's range, or not
        finite in one of the samples (torch's own run in that dtype among them)."""
        mask = np.abs(self.want.pick(group, name)) > np.finfo(dtype).max
        samples, direct = self.runs(group)
        for s in samples + direct:
            mask |= ~np.isfinite(s.pick(group, name))
        return mask

    def spread_of(self, group: str, name: str) -> Spread:
        """The spreads of one tensor, each its largest element: what
        `parity.tolerances.tolerance` takes."""
        want = self.want.pick(group, name)
        if not want.size:
            return Spread(0.0, 0.0)
        direct = max(
            (float(np.max(np.abs(s.pick(group, name) - want))) for s in self.runs(group)[1]),
            default=0.0,
        )
        linear = float(np.max(self.spread(group, name)))
        return Spread(linear, linear / self.to_float32, direct)


# Relative perturbations. Float32 values are moved by 2^-22 before rounding, so that most move by
# one or two ulps rather than rounding back to themselves; float64 ones by float32's unit
# roundoff (the conditioning of a float32 case).
PERTURBATION = {np.float64: 2.0**-24, np.float32: 2.0**-22}
# A float64 case is probed with a perturbation far below float32's, then scaled linearly. Probing
# it at float32's level would not do: on a chaotic case (large weights, long sequences) a 2^-24
# perturbation grows until the result is O(1) away, where it stops growing, and scaling that
# saturated spread down to float64 underestimates float64's by orders of magnitude.
FLOAT64_PROBE = 2.0**-40
# Linear scaling is also blind to thresholds: near a bifurcation (a gate about to flip at step
# 77 of 95) a perturbation 8x larger than another does not move the result 8x further, it moves
# it to another trajectory. So two more float64 runs are perturbed by SAFETY x the case dtype's
# own unit roundoff, and the distance they land at is allowed as it is.
DIRECT_RUNS = 2


def perturb(
    rng: np.random.Generator, array: np.ndarray, dtype=np.float64, size: float | None = None
) -> np.ndarray:
    a = np.asarray(array, dtype=np.float64)
    size = PERTURBATION[dtype] if size is None else size
    return (a * (1.0 + size * rng.uniform(-1.0, 1.0, size=a.shape))).astype(dtype)


@harness_settings()
def run_reference(
    case: Case, params: Mapping[str, np.ndarray] | None = None, gradients: bool = True
) -> ReferenceRun:
    """The float64 reference for `case`, and samples of where a correct implementation lands.

    For a float32 case the samples are: torch's float32 on the exact values, by two code paths
    that sum in different orders; torch's float32 on values moved by about one float32 ulp
    (another rounding path: where a gate saturates, 1 - sigmoid is only a few ulps and its
    relative error in float32 is large, so one float32 run alone can be lucky); and float64 on
    values perturbed at float32's unit roundoff (the case's conditioning).
    For a float64 case: three float64 runs on values perturbed by FLOAT64_PROBE.
    For both, DIRECT_RUNS float64 runs on values perturbed by SAFETY x the dtype's roundoff, and
    one with that much absolute noise in every gate value (`parity.gate_noise`).
    `params` overrides the case's parameters (a variant's reducing setting); only the canonical
    names are read.

    The reference itself runs at once; the samples run when first asked for (see
    `ReferenceRun.runs`), forward-only for the forward spreads and with gradients for the
    gradients' spreads. Either draws the same perturbations (from the case's seed), so when
    they run changes nothing of what they give.
    """
    params = case.params if params is None else params
    cot = case.cotangents if gradients else None
    f64 = {n: np.asarray(a, np.float64) for n, a in params.items()}
    x64 = np.asarray(case.input, np.float64)
    s64 = None if case.state is None else tuple(np.asarray(s, np.float64) for s in case.state)
    cot64 = None if cot is None else tuple(np.asarray(c, np.float64) for c in cot)
    config = case.config
    want = run_torch_lstm(config, f64, x64, s64, cot64, torch.float64)
    seed = case.spec.seed ^ 0x5EED
    # (dtype, perturbation, oneDNN). torch's default float32 path (oneDNN) sums the weight
    # gradients over time in one GEMM; its native path is a step loop whose autograd sums them
    # step by step, as most hand-written LSTMs do.
    plan: list[tuple[type[np.floating], float | None, bool]]
    if case.spec.dtype == "float64":
        plan = [(np.float64, FLOAT64_PROBE, onednn) for onednn in (True, False, True)]
        to_float32 = PERTURBATION[np.float64] / FLOAT64_PROBE
    else:
        plan = [
            (np.float32, None, True),
            (np.float32, None, False),
            (np.float32, PERTURBATION[np.float32], False),
            (np.float64, PERTURBATION[np.float64], True),
        ]
        to_float32 = 1.0
    size = SAFETY * UNIT_ROUNDOFF[case.spec.dtype]

    @harness_settings()
    def runs(group: str) -> tuple[list[Outcome], list[Outcome]]:
        if group == "gradients" and cot64 is None:
            raise ValueError("this reference was run without gradients")
        cotangents = cot64 if group == "gradients" else None
        rng = np.random.default_rng(seed)  # the same draws for either group
        samples = []
        for dtype, move, onednn in plan:

            def prep(a, dtype=dtype, move=move):
                return np.asarray(a, dtype) if move is None else perturb(rng, a, dtype, move)

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with torch.backends.mkldnn.flags(enabled=onednn):
                    samples.append(
                        run_torch_lstm(
                            config,
                            {n: prep(a) for n, a in f64.items()},
                            prep(x64),
                            None if s64 is None else tuple(prep(s) for s in s64),
                            None
                            if cotangents is None
                            else tuple(np.asarray(c, dtype) for c in cotangents),
                            torch.float32 if dtype == np.float32 else torch.float64,
                        )
                    )

        def moved(a):
            return perturb(rng, a, np.float64, size)

        direct = []
        for _ in range(DIRECT_RUNS):
            direct.append(
                run_torch_lstm(
                    config,
                    {n: moved(a) for n, a in f64.items()},
                    moved(x64),
                    None if s64 is None else tuple(moved(s) for s in s64),
                    cotangents,
                    torch.float64,
                )
            )
        forward, grads = run_gate_noise_lstm(config, f64, x64, s64, cotangents, size, rng)
        direct.append(Outcome(forward, grads))
        return samples, direct

    return ReferenceRun(want, to_float32=to_float32, runs=runs)


# Reference runs kept for reuse, most recently used last: the evaluations of one case by
# several checks (finite differences build their own, see parity.runner) and by several
# implementations checked in one process draw the same cases from the same seed.
SHARED_REFERENCES = 64
_shared: OrderedDict[tuple, ReferenceRun] = OrderedDict()


def shared_reference(
    case: Case, params: Mapping[str, np.ndarray] | None = None, gradients: bool = True
) -> ReferenceRun:
    """`run_reference`, run once per distinct case and parameters in this process.

    Keyed by the case's spec and the bytes of every array `run_reference` reads (the
    parameters, input, state and cotangents: a variant's extra parameters move the input's
    draw), so a hit is the very computation a new run would make. A reference with gradients
    also serves one asked for without. The runs are the harness's own, made under its own
    settings (`harness_settings`), and are not changed by their users.
    """
    params = case.params if params is None else params
    key = (case.spec, _digest(case, params))
    for with_gradients in (True,) if gradients else (True, False):
        ref = _shared.get((*key, with_gradients))
        if ref is not None:
            _shared.move_to_end((*key, with_gradients))
            return ref
    ref = run_reference(case, params, gradients)
    _shared[(*key, gradients)] = ref
    while len(_shared) > SHARED_REFERENCES:
        _shared.popitem(last=False)
    return ref


def _digest(case: Case, params: Mapping[str, np.ndarray]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    arrays = [(f"parameter {n}", a) for n, a in sorted(params.items())]
    arrays += [("input", case.input)]
    arrays += [(f"state {i}", s) for i, s in enumerate(case.state or ())]
    arrays += [(f"cotangent {i}", c) for i, c in enumerate(case.cotangents)]
    for name, a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{name} {a.dtype.str} {a.shape}".encode())
        h.update(a.tobytes())
    return h.digest()
