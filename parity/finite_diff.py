"""Finite differences: directional (cheap, every case) and per element (small cases).

Central differences at several step sizes give both an estimate and its error. With
D(s) = (L(x + s v) - L(x - s v)) / 2s, the Richardson value R = (4 D(h) - D(2h)) / 3 is accurate
to O(h^4), and the differences between D(h), D(2h) and D(4h) (at least three times D(h)'s own
truncation error) bound what is left. The rounding noise of the loss, divided by the step, is
added to that bound: the comparison is against an error estimate of this very case, not a fixed
number. Where the differences do not converge as the step shrinks, the derivative is not
resolvable by differences on that case, and it is reported as unresolved rather than compared.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .cases import CaseSpec
from .compare import Comparison, describe_index
from .reference import FORWARD_NAMES
from .tolerances import FD_EPS, FD_FLOOR, FD_SAFETY

__all__ = ["directional", "loss_of", "per_element", "perturbation_scales"]

Point = Mapping[str, np.ndarray]
LossFn = Callable[[Point], float]


def loss_of(forward: Mapping[str, np.ndarray], cotangents) -> tuple[float, float]:
    """The scalar loss ``sum(g * y)`` over output, h_n and c_n, and the sum of its terms'
    magnitudes, in float64."""
    total = magnitude = 0.0
    for name, g in zip(FORWARD_NAMES, cotangents):
        terms = np.asarray(forward[name], np.float64) * g.astype(np.float64)
        total += float(np.sum(terms))
        magnitude += float(np.sum(np.abs(terms)))
    return total, magnitude


def perturbation_scales(point: Point) -> dict[str, float]:
    """Each tensor's RMS: steps are relative, so an input at scale 100 moves by 100x more."""
    scales = {}
    for name, a in point.items():
        rms = float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))) if a.size else 0.0
        scales[name] = rms if rms > 0 else 1.0
    return scales


def shifted(point: Point, direction: Mapping[str, np.ndarray], step: float) -> dict:
    return {
        name: (a.astype(np.float64) + step * direction[name]).astype(a.dtype)
        if name in direction
        else a
        for name, a in point.items()
    }


# A step is fine enough when D(h) and D(2h) agree to this fraction of the derivative.
CONVERGED = 1e-3
# A step over which the loss would change by more than this many times its magnitude, going by
# the reference's slope, is not small enough (see _estimate).
LINEAR_LIMIT = 100.0
# Refine the step by 10x at most this many times before calling a derivative unresolvable.
REFINEMENTS = 3


def _differences(loss: LossFn, point: Point, direction, h: float) -> list[float]:
    return [
        (loss(shifted(point, direction, s)) - loss(shifted(point, direction, -s))) / (2 * s)
        for s in (h, 2 * h, 4 * h)
    ]


def _estimate(
    loss: LossFn,
    point: Point,
    direction,
    h: float,
    noise: float,
    slope: float = 0.0,
    bound: float = float("inf"),
) -> tuple[float, float, bool]:
    """(Richardson estimate, its error bound, resolved) of the derivative along `direction`.

    Central differences at h, 2h and 4h. The step is fine enough when the differences shrink
    with it (|D(h) - D(2h)| no larger than |D(2h) - D(4h)|) and D(h), D(2h) agree to CONVERGED
    of their size, rounding noise allowed for; otherwise the step is refined tenfold, up to
    REFINEMENTS times, while the noise stays below what it must resolve. The bound is the larger
    of the two differences. A derivative that never settles (chaotic dynamics, a saturation
    edge within the step) is unresolved: differences cannot say what it is.

    Two more ways to be unresolved. Where the loss's rounding noise divided by the step is as
    large as the differences themselves (the noise estimate grows with the case's
    conditioning), the differences measure noise. And `slope`, the reference's derivative along
    `direction`, with `bound`, the loss's magnitude: a step over which the reference predicts a
    change of more than LINEAR_LIMIT x that magnitude is not in the linear regime of a loss
    whose terms are bounded (gates, tanh), however well D(h), D(2h) and D(4h) happen to agree,
    so it is refined like any other.
    """
    for _ in range(REFINEMENTS + 1):
        d = _differences(loss, point, direction, h)
        fine, coarse = abs(d[0] - d[1]), abs(d[1] - d[2])
        allowance = 4 * noise / h
        size = max(abs(d[0]), abs(d[1]))
        if allowance >= size:
            break  # the loss's rounding noise over this step is as large as what it measures
        linear = slope * 4 * h <= LINEAR_LIMIT * bound
        if linear and fine <= coarse + allowance and fine <= CONVERGED * size + allowance:
            return (4 * d[0] - d[1]) / 3, max(fine, coarse), True
        h /= 10
        if 4 * noise / h > CONVERGED * max(size, 1e-300):
            break  # a finer step would only see the rounding noise
    return (4 * d[0] - d[1]) / 3, max(fine, coarse), False


def directional(
    loss: LossFn,
    point: Point,
    gradients: Mapping[str, np.ndarray],
    dtype: str,
    noise: float,
    rng: np.random.Generator,
    directions: int = 3,
    reference: Mapping[str, np.ndarray] | None = None,
    bound: float = float("inf"),
) -> list[Comparison]:
    """Compare <gradients, v> with finite differences along `directions` random directions.

    `noise` is the absolute rounding noise of one loss evaluation; `point` holds the tensors to
    perturb (input, h0, c0, parameters) in the dtype the forward runs in. `reference` (the
    reference's gradients, where it has them) and `bound` (the loss's magnitude) keep the steps
    in the linear regime (see `_estimate`).
    """
    reference = reference or {}
    h = FD_EPS[dtype]
    scales = perturbation_scales(point)
    out = []
    for k in range(directions):
        v = {n: rng.standard_normal(a.shape) * scales[n] for n, a in point.items()}
        analytic = sum(float(np.sum(gradients[n] * v[n])) for n in point)
        size = sum(float(np.sum(np.abs(gradients[n] * v[n]))) for n in point)
        slope = abs(sum(float(np.sum(reference[n] * v[n])) for n in point if n in reference))
        estimate, truncation, resolved = _estimate(loss, point, v, h, noise, slope, bound)
        tol = FD_SAFETY * (truncation + 2 * noise / h) + FD_FLOOR[dtype] * size
        err = abs(analytic - estimate)
        ratio = err / tol if tol > 0 else (0.0 if err == 0 else float("inf"))
        if not np.isfinite(analytic):
            ratio, resolved = float("inf"), True
        name = f"direction {k + 1} of {directions}"
        if not resolved or not np.isfinite(estimate):
            out.append(Comparison(name, True, 0.0, 0.0, tol, 0.0, unresolved=True))
            continue
        out.append(
            Comparison(
                name,
                bool(ratio <= 1.0),
                err,
                err / abs(estimate) if estimate else float("inf"),
                tol,
                ratio,
                got=analytic,
                want=estimate,
            )
        )
    return out


def per_element(
    loss: LossFn,
    point: Point,
    gradients: Mapping[str, np.ndarray],
    dtype: str,
    noise: float,
    spec: CaseSpec,
    reference: Mapping[str, np.ndarray] | None = None,
    bound: float = float("inf"),
) -> list[Comparison]:
    """Compare every element of every gradient with its own central difference.

    One `Comparison` per tensor, at its worst element. `reference` and `bound` as in
    `directional`.
    """
    reference = reference or {}
    h = FD_EPS[dtype]
    scales = perturbation_scales(point)
    out = []
    for name, a in point.items():
        g = np.asarray(gradients[name], np.float64)
        estimates = np.empty(a.shape)
        bounds = np.empty(a.shape)
        resolved = np.ones(a.shape, bool)
        for idx in np.ndindex(*a.shape):
            e = np.zeros(a.shape)
            e[idx] = scales[name]
            slope = abs(float(reference[name][idx])) * scales[name] if name in reference else 0.0
            est, trunc, resolved[idx] = _estimate(loss, point, {name: e}, h, noise, slope, bound)
            estimates[idx], bounds[idx] = est / scales[name], trunc / scales[name]
        resolved &= np.isfinite(estimates)
        noise_term = 2 * noise / (h * scales[name])
        size = float(np.max(np.abs(estimates[resolved]))) if resolved.any() else 0.0
        tol = FD_SAFETY * (bounds + noise_term) + FD_FLOOR[dtype] * size
        err = np.abs(g - estimates)
        err[~np.isfinite(err)] = np.inf
        err[~resolved] = 0.0
        ratios = np.divide(err, tol, out=np.where(err > 0, np.inf, 0.0), where=tol > 0)
        if not a.size:
            continue
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratios)), a.shape))
        out.append(
            Comparison(
                name,
                bool(ratios[idx] <= 1.0),
                float(err[idx]),
                float(err[idx] / abs(estimates[idx])) if estimates[idx] else float("inf"),
                float(tol[idx]),
                float(ratios[idx]),
                idx,
                describe_index(name, idx, spec),
                float(g[idx]),
                float(estimates[idx]),
            )
        )
    return out
