"""The checks: one case, one implementation, one named comparison.

- ``output``, ``h_n``, ``c_n``: the forward pass against `nn.LSTM` computed in float64;
- ``gradients``: gradients of a random-cotangent loss with respect to the input, h0, c0 and every
  parameter, against `nn.LSTM`'s autograd;
- ``finite-differences``: the implementation's own gradients against central differences of its
  own forward (directional on every case, per element on small ones); for an implementation with
  no gradients, differences of its forward against the reference's gradients;
- the properties (`parity.properties`, `parity.training`): the implementation against itself.

This module is the table of checks: the reference checks are here, the properties in
`parity.properties` and `parity.training`; what they all evaluate (`Evaluation`, one
implementation on one case) is in `parity.evaluation`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .cases import CaseSpec
from .compare import Comparison, compare, describe_index, format_where
from .evaluation import CheckOutcome, Evaluation, ImplementationError, Unsupported, wrong_dtype
from .finite_diff import directional, loss_of, per_element, perturbation_scales, shifted
from .gradient_blocks import block_ratios
from .properties import PROPERTIES, PROPERTY_TABLE, run_property
from .reference import FORWARD_NAMES
from .tolerances import FD_EPS, UNIT_ROUNDOFF, floor, gradient_unit, resolvable, tolerance

__all__ = [
    "CHECKS",
    "FORWARD_CHECKS",
    "REFERENCE_CHECKS",
    "CheckOutcome",
    "Evaluation",
    "ImplementationError",
    "Unsupported",
    "run_check",
]

FORWARD_CHECKS = FORWARD_NAMES  # output, h_n, c_n
REFERENCE_CHECKS = (*FORWARD_CHECKS, "gradients", "finite-differences")

# Per-element finite differences cost 4 forward calls per element: only on small cases.
PER_ELEMENT_MAX_ELEMENTS = 160
# Random directions per case. A wrong gradient is off along almost every direction (along a
# Gaussian one, within the tolerance with a chance of about tolerance / error), and every
# case draws its own: two per case over ~25 cases, where three cost 6 more forward calls each.
FD_DIRECTIONS = 2
# Seed offset of the directions' generator (from the case's seed); `measured_noise` draws its
# direction from it too, so that its coarse difference is the first direction's finest one,
# evaluated once (`_remembered`).
DIRECTIONS_SEED = 2
# The loss's rounding noise is ~u x sum|g| max(1, |y|) x conditioning (see `rounding_scale`); 4
# covers the sum's own rounding.
FD_NOISE_FACTOR = 4.0


def _nondeterministic(
    name: str, first: np.ndarray, second: np.ndarray, tol: float, spec: CaseSpec, call: str
) -> Comparison | None:
    """The same call on the same case twice: apart by more than the tolerance is a finding."""
    a, b = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if a.shape != b.shape:
        return Comparison(
            name,
            False,
            float("inf"),
            float("inf"),
            tol,
            float("inf"),
            problem=f"{call} called twice on the same case: {name} has shape "
            f"{a.shape}, then {b.shape}",
            status="nondeterministic",
        )
    if not a.size:
        return None
    diff = np.abs(a - b)
    diff[np.isnan(a) & np.isnan(b)] = 0.0
    diff[np.isnan(diff)] = np.inf
    worst = float(np.max(diff))
    if worst <= tol:
        return None
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    where = format_where(name, describe_index(name, index, spec))
    return Comparison(
        name,
        False,
        worst,
        worst / max(abs(float(a[index])), 1e-300),
        tol,
        worst / tol if tol > 0 else float("inf"),
        index,
        describe_index(name, index, spec),
        float(b[index]),
        float(a[index]),
        problem=f"{call} called twice on the same case: {where} differs by "
        f"{worst:.3g} between the calls (tolerance {tol:.3g})",
        status="nondeterministic",
    )


# -- the checks ------------------------------------------------------------------------------
# Each reference check compares first under the tolerance's floor (`parity.tolerances.floor`),
# which needs no sample runs of the reference: the full tolerance is never below it, so what
# passes there passes under the full tolerance too. Anything else (an error beyond the floor, a
# wrong dtype, a repeated call that differs by more than the floor) is decided again, as a
# whole, under the full tolerance, which runs the samples (`ReferenceRun.runs`).
def check_forward(ev: Evaluation, name: str) -> CheckOutcome:
    got = ev.forward()[name]  # first: a case it declines costs no reference run
    ref = ev.reference()
    want = ref.want.forward[name]
    cmp = _forward_comparison(ev, name, got, want, floor(ev.spec.dtype, want, 1.0), True, None)
    if cmp.passed:
        return CheckOutcome(name, True, [cmp])
    spread = ref.spread_of("forward", name)
    tol = tolerance(ev.spec.dtype, want, spread, 1.0)
    cmp = _forward_comparison(
        ev,
        name,
        got,
        want,
        tol,
        resolvable(ev.spec.dtype, want, spread),
        ref.overflow("forward", name, ev.spec.dtype),
    )
    return CheckOutcome(name, cmp.passed, [cmp])


def _forward_comparison(
    ev: Evaluation,
    name: str,
    got,
    want: np.ndarray,
    tol: float,
    resolved: bool,
    overflow: np.ndarray | None,
) -> Comparison:
    cmp = compare(name, got, want, tol, ev.spec, resolved, overflow)
    if cmp.status is None:  # a wrong shape or a NaN says more than a dtype or a repeat
        again = None if cmp.unresolved else ev.again("forward")
        cmp = (
            wrong_dtype(name, got, ev.spec)
            or (
                again is not None
                and _nondeterministic(name, got, again[name], tol, ev.spec, "forward")
            )
            or cmp
        )
    return cmp


def check_gradients(ev: Evaluation) -> CheckOutcome:
    got_all = ev.gradients()  # first: a case it declines costs no reference run
    ref = ev.reference()
    want_all = ref.want.gradients
    assert want_all is not None  # the reference runs with gradients
    names = ["input"] + (["h0", "c0"] if ev.case.state is not None else []) + ev.compared_params
    unit = gradient_unit([want_all[n] for n in names], ev.case.cotangents)
    dtype = ev.spec.dtype

    def at_floor(n: str, want: np.ndarray):
        return floor(dtype, want, unit), True, None

    def full(n: str, want: np.ndarray):
        spread = ref.spread_of("gradients", n)
        return (
            tolerance(dtype, want, spread, unit),
            resolvable(dtype, want, spread),
            ref.overflow("gradients", n, dtype),
        )

    outcome = _gradient_comparisons(ev, got_all, want_all, names, at_floor)
    if outcome.passed:
        return outcome
    return _gradient_comparisons(ev, got_all, want_all, names, full)


def _gradient_comparisons(
    ev: Evaluation,
    got_all: Mapping[str, np.ndarray],
    want_all: Mapping[str, np.ndarray],
    names: list[str],
    judge: Callable,
) -> CheckOutcome:
    """The gradients check with `judge(name, want) -> (tolerance, resolved, overflow)`."""
    blocks: dict[tuple[str, str], float]
    comparisons, blocks = [], {}
    again = ev.again("gradients")
    for n in names:
        want = want_all[n]
        if n not in got_all:
            comparisons.append(
                Comparison(
                    n,
                    False,
                    float("inf"),
                    float("inf"),
                    0.0,
                    float("inf"),
                    problem=f"no gradient for {n} (the gradients returned: "
                    f"{', '.join(sorted(got_all)) or 'none'})",
                    status="wrong-structure",
                )
            )
            continue
        tol, resolved, overflow = judge(n, want)
        cmp = compare(n, got_all[n], want, tol, ev.spec, resolved, overflow)
        if cmp.status is None:
            cmp = (
                wrong_dtype(n, got_all[n], ev.spec)
                or (
                    again is not None
                    and n in again
                    and not cmp.unresolved
                    and _nondeterministic(n, got_all[n], again[n], tol, ev.spec, "gradients")
                )
                or cmp
            )
        comparisons.append(cmp)
        if cmp.status is None:
            for key, ratio in block_ratios(
                n, got_all[n], want, tol, ev.spec, resolved, overflow, cmp.ratio
            ).items():
                blocks[key] = max(blocks.get(key, 0.0), ratio)
    return CheckOutcome("gradients", all(c.passed for c in comparisons), comparisons, blocks=blocks)


def rounding_scale(forward: Mapping[str, np.ndarray], cotangents) -> float:
    """``sum |g| max(1, |y|)`` over the loss's terms: what one ulp in every output moves it by.

    A correct forward is accurate to an ulp of each value's natural scale, not of the value:
    h and the gates live in [-1, 1], and computed another way (tanh as 2 sigmoid(2x) - 1,
    sigmoid through tanh) a value near 0 is off by ~u absolute, which the forward checks accept
    (`parity.tolerances.ATOL`). So the loss's rounding noise scales with this, not with
    ``sum |g y|``: on a saturated case with h ~ 1e-11 the latter is ~1e-11 of it, and
    differences of a correct forward then "disagree" with its exact gradients.
    """
    scale = 0.0
    for name, g in zip(FORWARD_NAMES, cotangents):
        y = np.abs(np.asarray(forward[name], np.float64))
        scale += float(np.sum(np.abs(g.astype(np.float64)) * np.maximum(y, 1.0)))
    return scale


@dataclass
class DifferenceProblem:
    """What finite differences work on: a loss over named tensors, at a point."""

    loss: Callable[[Mapping[str, np.ndarray]], float]
    point: dict[str, np.ndarray]
    gradients: Mapping[str, np.ndarray]  # the implementation's (or the reference's)
    reference: Mapping[str, np.ndarray]  # the reference's, to keep steps linear
    noise: float  # the rounding noise of one loss evaluation (see `rounding_scale`)
    magnitude: float  # the sum of the loss's terms' magnitudes
    dtype: str = "float64"  # what the forward runs in
    reused: bool = False  # one instance called through `with_parameters` (difference_problem)

    def directional(
        self, rng: np.random.Generator, directions: int, names: list[str] | None = None
    ) -> list[Comparison]:
        """Directional comparisons, over all tensors or only `names` (the rest held fixed)."""
        point = self.point if names is None else {n: self.point[n] for n in names}

        def loss(p):
            return self.loss({**self.point, **p})

        return directional(
            loss,
            point,
            self.gradients,
            self.dtype,
            self.noise,
            rng,
            directions,
            self.reference,
            self.magnitude,
        )


def difference_problem(ev: Evaluation, reuse: bool = False) -> DifferenceProblem | CheckOutcome:
    """The finite-difference problem of `ev`, or a failed outcome when gradients are missing.

    Each loss evaluation builds an instance with the perturbed parameters; with `reuse`, one
    built instance that has ``with_parameters`` (see `parity.Built`) is called with them
    instead, which skips the construction (a module, its parameter checks) on every step.
    """
    case, spec = ev.case, ev.spec
    point = {"input": case.input}
    if case.state is not None:
        point["h0"], point["c0"] = case.state
    if ev.adapter.supports.gradients != "none":
        point.update(ev.implementation_params)
        grads = ev.gradients()
        missing = [n for n in point if n not in grads]
        if missing:
            c = Comparison(
                missing[0],
                False,
                float("inf"),
                float("inf"),
                0.0,
                float("inf"),
                problem=f"no gradient for {', '.join(missing)}",
            )
            return CheckOutcome("finite-differences", False, [c])
    else:
        point.update({n: ev.implementation_params[n] for n in ev.compared_params})
        grads = ev.reference().want.gradients  # type: ignore[assignment]  # run with gradients
    param_names = [n for n in point if n not in ("input", "h0", "c0")]
    fixed = {n: a for n, a in ev.implementation_params.items() if n not in point}

    template = None
    if reuse:
        template = ev.build({**fixed, **{n: point[n] for n in param_names}})
        if not callable(getattr(template, "with_parameters", None)):
            template = None

    def run(p) -> dict[str, np.ndarray]:
        params = {**fixed, **{n: p[n] for n in param_names}}
        built = (
            ev.build(params)
            if template is None
            else ev.call("build", template.with_parameters, params, watched=params)
        )
        state = (p["h0"], p["c0"]) if "h0" in p else None
        return ev.forward_of(built, p["input"], state)

    @_remembered
    def loss(p) -> float:
        return loss_of(run(p), case.cotangents)[0]

    at_point = run(point)
    _, magnitude = loss_of(at_point, case.cotangents)
    kappa = max(1.0, ev.forward_kappa())
    noise = (
        FD_NOISE_FACTOR
        * UNIT_ROUNDOFF[spec.dtype]
        * kappa
        * rounding_scale(at_point, case.cotangents)
    )
    # The formula assumes the forward rounds at the case's dtype. One that rounds coarser
    # inside (a float32 buffer in a float64 run) is noisier: measure the noise too, so that
    # steps where it dominates are unresolved rather than compared (see `measured_noise`).
    noise = max(noise, measured_noise(loss, point, spec))
    # The reference's slopes keep the steps in the linear regime: the implementation's own
    # gradients cannot be trusted to say how far that is.
    ref_grads = ev.reference().want.gradients or {}
    return DifferenceProblem(
        loss, point, grads, ref_grads, noise, magnitude, spec.dtype, template is not None
    )


def _remembered(loss: Callable[[Mapping[str, np.ndarray]], float]):
    """`loss`, evaluated once per point: the same perturbation asked for twice (the noise's
    coarse difference, then the first direction's) is looked up, by a digest of its tensors.
    Deterministic implementations only are compared, so that a second call would give the
    same value (nondeterminism is the forward checks' to find)."""
    seen: dict[bytes, float] = {}

    def remembered(p: Mapping[str, np.ndarray]) -> float:
        digest = hashlib.blake2b(digest_size=16)
        for name in sorted(p):
            a = np.ascontiguousarray(p[name])
            digest.update(f"{name}{a.dtype}{a.shape}".encode())
            digest.update(a.data)
        key = digest.digest()
        if key not in seen:
            seen[key] = loss(p)
        return seen[key]

    return remembered


# Steps (relative to each tensor's scale) at which the loss's own noise is measured: far below
# FD_EPS, where the change of a smooth loss is known from a coarse difference to ~1e-10 of it.
NOISE_PROBES = (1e-7, 1e-9)


def measured_noise(loss: Callable, point: Mapping[str, np.ndarray], spec: CaseSpec) -> float:
    """The rounding noise of one loss evaluation, measured along one random direction (the
    first of `directional`'s, so that the coarse difference here is its first).

    A coarse central difference D at FD_EPS gives the slope; at a tiny step s the true change
    of the loss is 2 s D to within O(FD_EPS^2) of it, so what the difference L(x+sv) - L(x-sv)
    has beyond that is the forward's rounding (or quantization): half of it is one
    evaluation's noise."""
    rng = np.random.default_rng(spec.seed + DIRECTIONS_SEED)
    scales = perturbation_scales(point)
    v = {n: rng.standard_normal(a.shape) * scales[n] for n, a in point.items()}
    h = FD_EPS[spec.dtype]
    slope = (loss(shifted(point, v, h)) - loss(shifted(point, v, -h))) / (2 * h)
    worst = 0.0
    for s in NOISE_PROBES:
        diff = loss(shifted(point, v, s)) - loss(shifted(point, v, -s))
        worst = max(worst, abs(diff - 2 * s * slope) / 2)
    return worst if np.isfinite(worst) else 0.0


def check_finite_differences(ev: Evaluation) -> CheckOutcome:
    """Differences of the implementation's forward against its gradients (or the reference's).

    For an implementation with gradients, `ev` is built with ``reduced=False``: a variant is
    checked with its extra parameters as drawn.
    """
    # First with one instance called with each step's weights (`with_parameters`), where the
    # implementation has it: no construction per step. Anything but a pass (a discrepancy, an
    # error, a declined call) is decided again as before, building an instance per step: a
    # pass through `with_parameters` is the differences of the implementation's forward
    # agreeing with its gradients, which a stale or wrong `with_parameters` would not give.
    try:
        outcome, reused = _finite_differences(ev, reuse=True)
        if outcome.passed or not reused:
            return outcome
    except (ImplementationError, Unsupported):
        pass
    return _finite_differences(ev, reuse=False)[0]


def _finite_differences(ev: Evaluation, reuse: bool) -> tuple[CheckOutcome, bool]:
    """The outcome, and whether it was computed through `with_parameters`."""
    problem = difference_problem(ev, reuse)
    if isinstance(problem, CheckOutcome):
        return problem, False
    p = problem
    comparisons = p.directional(
        np.random.default_rng(ev.spec.seed + DIRECTIONS_SEED), FD_DIRECTIONS
    )
    if sum(a.size for a in p.point.values()) <= PER_ELEMENT_MAX_ELEMENTS:
        comparisons += per_element(
            p.loss, p.point, p.gradients, p.dtype, p.noise, ev.spec, p.reference, p.magnitude
        )
    return (
        CheckOutcome("finite-differences", all(c.passed for c in comparisons), comparisons),
        p.reused,
    )


def run_check(ev: Evaluation, check: str) -> CheckOutcome:
    """Run one named check on one evaluation; implementation errors become an error outcome."""
    try:
        if check in FORWARD_CHECKS:
            return check_forward(ev, check)
        if check == "gradients":
            return check_gradients(ev)
        if check == "finite-differences":
            return check_finite_differences(ev)
        if check in PROPERTY_TABLE:
            return run_property(ev, check)
    except ImplementationError as exc:
        return CheckOutcome(check, False, error=exc)
    raise ValueError(f"check={check!r}: must be one of {', '.join(CHECKS)}")


CHECKS = (*REFERENCE_CHECKS, *PROPERTIES)
