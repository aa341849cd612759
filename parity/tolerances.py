"""The tolerance policy: one table, dtype by quantity, each number with its reason.

A fixed float32 tolerance cannot work. On long sequences with large weights a correct float32
LSTM (torch's own included) lands 5e-4..1e-2 (normwise relative) from the float64 result, while
a float32 LSTM that rounds its gate pre-activations to float16 lands only ~4e-4 away on short,
well-conditioned cases. So the tolerance for each tensor of each case scales with how far a
correct implementation lands on *that* case, measured in the same run:

    spread = max over elements and samples of |sample - float64 reference|

where, for a float32 case, the samples are torch's float32 result by two code paths, torch's
float32 on inputs moved by about an ulp, and float64 on inputs perturbed by float32's unit
roundoff (a direct estimate of the case's conditioning). A float64 case is probed the same way
with a perturbation of 2^-40 and the spread scaled linearly to float32's level (probing at
2^-24 saturates on chaotic cases; see `parity.reference`). Then

    tolerance = max(RTOL_FLOOR * max|want|, SAFETY * spread * u(dtype) / u(float32), direct)
                + ATOL * unit

where `direct` is how far float64 lands on inputs perturbed by SAFETY * u(dtype), and with that
much absolute noise in every gate value (`parity.gate_noise`), measured rather than scaled: near
a threshold (a gate about to flip late in a chaotic sequence) a larger perturbation does not
move the result proportionally further, it moves it to another trajectory;
and `unit` is 1 for forward quantities (gates live in [0, 1] and tanh in [-1, 1], so 1 is the
natural scale of h and c) and for gradients the largest reference gradient or cotangent (a
gradient that is negligible next to the others is judged on that scale). An error is reported
as error/tolerance: below 1 passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ATOL",
    "FD_SAFETY",
    "FD_EPS",
    "FD_FLOOR",
    "RTOL_FLOOR",
    "SAFETY",
    "UNIT_ROUNDOFF",
    "Spread",
    "floor",
    "resolvable",
    "tolerance",
]

UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}

# How many times torch's own float32 spread a correct implementation may land from the reference.
# Calibrated by running the correct LSTMs of tests/harness/lstms/correct.py over 300 drawn cases
# x 2 seeds and 50 search seeds (`pytest -m thorough tests/harness`): correct float32 LSTMs
# that sum in another order (one fused matrix, eight matrices, a step loop, float64 inside)
# land at most ~2x the spread over thousands of cases; 8 leaves a margin of 4 while
# keeping a float16 rounding of the gate pre-activations (10-100x the spread) caught.
SAFETY = 8.0

# The smallest relative tolerance. float32: torch's own float32 lands ~1e-7..2e-6 from float64 on
# well-conditioned cases; 1e-5 stays clear of that while a 3e-5 relative drift of the cell state
# still fails. float64: 1e-11 is ~5e4 ulps, room for any summation order over a few hundred steps.
RTOL_FLOOR = {"float32": 1e-5, "float64": 1e-11}

# Absolute floor, in units of the quantity's natural scale (see `unit` above): where the reference
# is ~0 (a saturated output gate gives h ~ 1e-20) only absolute error means anything.
ATOL = {"float32": 1e-6, "float64": 1e-13}

# Finite differences. Steps are relative to each tensor's scale; the error of the Richardson
# estimate is bounded by FD_SAFETY x (|D(h) - D(2h)| + the rounding noise of the loss / h), plus
# a floor relative to the size of the terms in the directional derivative.
FD_EPS = {"float64": 6e-6, "float32": 4e-3}  # ~cbrt(unit roundoff): balances truncation and noise
FD_SAFETY = 10.0  # the two-step estimate is of D(h)'s error; the extrapolated value is far closer
FD_FLOOR = {"float64": 1e-7, "float32": 3e-2}  # float32 differences resolve ~2 digits at best


@dataclass(frozen=True)
class Spread:
    """How far correct runs land from the reference on one tensor of one case (its largest
    element; see `parity.reference.ReferenceRun.spread_of`)."""

    linear: float  # at float32's rounding level (a float64 case's probe, scaled up)
    probe: float  # the probe's own, before scaling (a float32 case's is `linear`)
    direct: float = 0.0  # float64 on inputs perturbed by SAFETY x u(dtype), as measured


def _noise(dtype: str, spread: Spread) -> float:
    return SAFETY * spread.linear * UNIT_ROUNDOFF[dtype] / UNIT_ROUNDOFF["float32"]


def tolerance(dtype: str, want: np.ndarray, spread: Spread, unit: float) -> float:
    """The absolute tolerance for one tensor of one case (see the module docstring)."""
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return max(RTOL_FLOOR[dtype] * scale, _noise(dtype, spread), spread.direct) + ATOL[dtype] * unit


def floor(dtype: str, want: np.ndarray, unit: float) -> float:
    """The least `tolerance` can be for this tensor, whatever the spreads: its relative and
    absolute floors.

    An error within it passes under the full tolerance too, so such a comparison is decided
    without the sample runs the spreads come from (`parity.reference.ReferenceRun.runs`); an
    error beyond it is decided by the full tolerance. Correct implementations mostly land far
    inside it (float32: ~1e-7 relative against 1e-5; float64: ~1e-15 against 1e-11).
    """
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return RTOL_FLOOR[dtype] * scale + ATOL[dtype] * unit


def resolvable(dtype: str, want: np.ndarray, spread: Spread) -> bool:
    """Can `dtype` resolve this tensor on this case at all?

    No when correct runs scatter by as much as the value itself: chaotic cases (large weights,
    long sequences) where float32 gradients are noise. Comparing noise with noise says nothing
    about the implementation, so such a tensor is not compared (and is counted as unresolved).
    """
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    # A probe that lands within 1/SAFETY of the value's own size is out of its linear regime
    # (saturated): scaling it says nothing about a smaller perturbation.
    noise = max(_noise(dtype, spread), spread.direct, SAFETY * spread.probe)
    return noise < scale or scale == 0.0


def gradient_unit(wants, cotangents) -> float:
    """The natural scale of a case's gradient errors: the largest gradient (`wants`, the
    reference's), or the cotangents where every gradient is small (all gates saturated): a
    gate value off by one ulp absolute (sigmoid through tanh) moves gradients by about an ulp
    of the cotangents, not of the gradients."""
    return max(
        [float(np.max(np.abs(w))) for w in wants if np.size(w)]
        + [float(np.max(np.abs(g))) for g in cotangents if np.size(g)],
        default=1.0,
    )
