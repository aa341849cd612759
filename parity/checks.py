"""The checks: one case, one implementation, one named comparison.

- ``output``, ``h_n``, ``c_n``: the forward pass against `nn.LSTM` computed in float64;
- ``gradients``: gradients of a random-cotangent loss with respect to the input, h0, c0 and every
  parameter, against `nn.LSTM`'s autograd;
- ``finite-differences``: the implementation's own gradients against central differences of its
  own forward (directional on every case, per element on small ones); for an implementation with
  no gradients, differences of its forward against the reference's gradients;
- the properties (`parity.properties`, `parity.training`): the implementation against itself.

An `Evaluation` computes what the checks of one case need, once: the reference, the
implementation's forward and gradients, so the searches of several checks over the same cases
share the work.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from .adapter import Adapter, parameter_shapes
from .cases import Case, CaseSpec, materialize
from .compare import Comparison, compare, describe_index, format_where
from .finite_diff import directional, per_element
from .gradient_blocks import block_ratios
from .misbehaviour import (ChangesGlobalState, Misbehaviour, MutatesInput, WrongShape,
                           WrongStructure, changed, snapshot)
from .process_state import watch
from .reference import FORWARD_NAMES, ReferenceRun, shared_reference
from .tolerances import UNIT_ROUNDOFF, floor, resolvable, tolerance

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
FD_DIRECTIONS = 3
# The loss's rounding noise is ~u x sum|g| max(1, |y|) x conditioning (see `rounding_scale`); 4
# covers the sum's own rounding.
FD_NOISE_FACTOR = 4.0

# Called as call_hook(call, spec) before each call into the implementation and as
# call_hook(None, spec) after it returns: the child process of parity.isolation tells its
# parent, which then knows what a crash or a hang was running, and times each call.
call_hook: Callable[[str | None, CaseSpec], None] | None = None


class Unsupported(Exception):
    """The implementation declined this case (NotImplementedError): not a pass, not a failure."""


class ImplementationError(Exception):
    """The implementation raised (or returned something unusable) during `call`."""

    def __init__(self, call: str, exc: BaseException) -> None:
        self.call = call
        self.exc_type = type(exc).__name__
        self.exc_message = str(exc)
        # "error" for an exception of its own; a misbehaviour the harness names otherwise.
        self.status = exc.status if isinstance(exc, Misbehaviour) else "error"
        # The implementation's frames only: the harness's own are noise to the user.
        self.location = _implementation_frame(exc)
        text = (f"{call} raised {self.exc_type}: {self.exc_message}" if self.status == "error"
                else f"{call}: {self.exc_message}")
        super().__init__(text)


# Where a call into the implementation is, for a message: "... in its constructor (build)".
_DURING = {"build": "in its constructor (build)", "forward": "in forward",
           "gradients": "in gradients"}


def _implementation_frame(exc: BaseException) -> str | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "/parity/" not in f.filename.replace("\\", "/")
              and "/torch/" not in f.filename.replace("\\", "/")]
    if not frames:
        return None
    f = frames[-1]
    return f"{f.filename}:{f.lineno} in {f.name}"


@dataclass
class CheckOutcome:
    """The result of one check on one case."""

    check: str
    passed: bool
    comparisons: list[Comparison] = field(default_factory=list)
    error: ImplementationError | None = None
    # gradients: (parameter group, gate block) -> error / tolerance (gradient_blocks.py)
    blocks: dict | None = None

    @property
    def worst(self) -> Comparison | None:
        named = [c for c in self.comparisons if c.status and not c.passed]
        if named:  # a misbehaviour explains the numbers: it comes first
            return named[0]
        return max(self.comparisons, key=lambda c: c.ratio, default=None)

    @property
    def status(self) -> str:
        """"pass", "fail", or the misbehaviour's name (parity.misbehaviour)."""
        if self.error is not None:
            return self.error.status
        if self.passed:
            return "pass"
        return next((c.status for c in self.comparisons if c.status and not c.passed), "fail")

    def message(self, implementation: str) -> str:
        """What, where, by how much: the first line a user reads."""
        if self.error is not None:
            return f"{implementation}: {self.error}"
        w = self.worst
        if w is None:
            return f"{implementation}: {self.check}: nothing compared"
        if w.problem:
            return f"{implementation}: {w.problem}"
        what = format_where(w.tensor, w.where)
        verb = "passes" if self.passed else "differs"
        return (f"{what} {verb}: max |got - want| = {w.max_abs_error:.3g} "
                f"(relative {w.max_rel_error:.2g}; tolerance {w.tolerance:.3g}, "
                f"{w.ratio:.3g}x of it)")


class Evaluation:
    """Everything the checks need for one (implementation, case), computed lazily, once."""

    def __init__(self, adapter: Adapter, spec: CaseSpec, reduced: bool = True,
                 repeat: bool = False) -> None:
        """`reduced`: a variant runs in its reducing setting (for comparisons with the
        reference); False keeps its extra parameters as drawn (finite differences check its
        gradients in every setting). `repeat`: call forward and gradients twice, to see that
        the same call gives the same result (kept to a few cases: it costs a call)."""
        self.adapter, self.spec, self.repeat = adapter, spec, repeat
        variant = adapter.variant
        extras = variant.extra_parameters(spec.config) if variant else {}
        self.case: Case = materialize(spec, extras)
        drawn = self.case.params
        self.reduced = variant.reduce(spec.config, dict(drawn)) if variant else drawn
        params = self.reduced if reduced else drawn
        # A reducing setting that is a configuration (see Variant.reducing_adapter) is built
        # for the comparisons with the reference; finite differences build the variant itself.
        self.builder: Adapter = adapter
        if reduced and variant is not None and variant.reducing_adapter is not None:
            self.builder = variant.reducing_adapter
        takes = self.builder.parameter_shapes(spec.config)
        self.implementation_params = {n: a for n, a in params.items() if n in takes}
        # What the reference has a gradient for: canonical names the implementation also has.
        canonical = parameter_shapes(spec.config)
        self.compared_params = [n for n in self.reduced if n in takes and n in canonical]
        self._cache: dict = {}

    # -- calls into the implementation ------------------------------------------------------
    def _build(self, params: Mapping[str, np.ndarray]):
        return self._call("build", self.builder.build, self.spec.config, params,
                          self.spec.dtype, watched=params)

    def _call(self, what: str, fn, *args, watched: Mapping[str, np.ndarray] | None = None):
        """Call into the implementation. Arrays it is given (the `args` and the `watched`
        parameters, which an instance holds on to) must come back unchanged."""
        if (what in ("forward", "gradients") and len(args) > 1 and args[1] is not None
                and not self.adapter.supports.initial_state):
            raise Unsupported("the implementation takes no initial state "
                              "(Supports(initial_state=False)); this call would give it one")
        named = _named_arrays(args)
        named.update({f"parameter {n}": a for n, a in
                      (watched if watched is not None else self.implementation_params).items()})
        before = snapshot(named)
        if call_hook is not None:
            call_hook(what, self.spec)
        settings: list[str] = []  # process-wide changes it left (restored by `watch`)
        try:
            with watch(settings):
                result = fn(*args)
        except NotImplementedError as exc:
            raise Unsupported(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - anything it raises is reported, not crashed on
            raise ImplementationError(what, exc) from exc
        finally:
            if call_hook is not None:
                call_hook(None, self.spec)
        moved = changed(named, before)
        if moved:
            raise ImplementationError(what, MutatesInput(f"changed what it was given: {moved}"))
        if settings:
            raise ImplementationError(what, ChangesGlobalState(
                f"the implementation {' and '.join(settings)} {_DURING.get(what, 'in ' + what)} "
                f"and left it so: a caller's own computations after it change (the harness "
                f"restored it)"))
        load_changes = getattr(self.adapter, "load_changes", None)
        if what == "build" and load_changes:
            raise ImplementationError("load", ChangesGlobalState(
                f"the implementation {' and '.join(load_changes)} while it was imported and "
                f"set up, and left it so: a caller's own computations after it change (the "
                f"harness restored it)"))
        return result

    def instance(self):
        """One instance, already called once on other data: it must not remember that call.

        Where the instance can be called with other weights (``with_parameters``, see
        `parity.Built`), that first call uses other weights too: what it prepared from them
        must not outlive them.
        """
        if "instance" not in self._cache:
            built = self._build(self.implementation_params)
            c = self.case
            rng = np.random.default_rng(self.spec.seed + 1)
            other = (rng.standard_normal(c.input.shape) * np.std(c.input) if c.input.size
                     else c.input).astype(c.input.dtype)
            shapes = self.spec.state_shapes()
            state = tuple(rng.standard_normal(s).astype(c.input.dtype) for s in shapes)
            if not self.adapter.supports.initial_state:
                state = None  # an implementation with no state input is never given one
            first = built
            if callable(getattr(built, "with_parameters", None)):
                first = built.with_parameters({
                    n: (rng.standard_normal(a.shape) * (np.std(a) or 1.0)).astype(a.dtype)
                    for n, a in self.implementation_params.items()})
            try:
                self._call("forward", first.forward, other, state)
            except Unsupported:
                if c.state is not None:
                    raise
                # It declines a state with these features (one combination), and this case
                # has none: the first call goes without one too, rather than decline the case.
                self._call("forward", first.forward, other, None)
            self._cache["instance"] = built
        return self._cache["instance"]

    def reference(self) -> ReferenceRun:
        if "reference" not in self._cache:
            self._cache["reference"] = shared_reference(self.case, self.reduced)
        return self._cache["reference"]

    def forward(self) -> dict[str, np.ndarray]:
        if "forward" not in self._cache:
            self._cache["forward"] = self._forward_once()
            if self.repeat:
                self._cache["forward_again"] = self._forward_once()
        return self._cache["forward"]

    def _forward_once(self) -> dict[str, np.ndarray]:
        result = self._call("forward", self.instance().forward, self.case.input, self.case.state)
        return _unpack("forward", result)

    def gradients(self) -> dict[str, np.ndarray]:
        if "gradients" not in self._cache:
            self._cache["gradients"] = self._gradients_once()
            if self.repeat:
                self._cache["gradients_again"] = self._gradients_once()
        return self._cache["gradients"]

    def _gradients_once(self) -> dict[str, np.ndarray]:
        grads = self._call("gradients", self.instance().gradients, self.case.input,
                           self.case.state, self.case.cotangents)
        if not isinstance(grads, Mapping):
            raise ImplementationError("gradients", WrongStructure(
                f"returned {type(grads).__name__}, not a dict of arrays"))
        grads = {n: np.asarray(g) for n, g in grads.items()}
        given = {"input": self.case.input}
        if self.case.state is not None:
            given["h0"], given["c0"] = self.case.state
        given.update(self.implementation_params)
        check_gradient_names(grads, given)
        return grads

    def again(self, what: str) -> dict[str, np.ndarray] | None:
        """The second result of a repeated call ("forward" or "gradients"), if it was made."""
        return self._cache.get(f"{what}_again")

    # -- shared measures ---------------------------------------------------------------------
    def forward_kappa(self) -> float:
        """How many float32 roundoffs the forward result moves by: the case's conditioning."""
        ref = self.reference()
        worst = 0.0
        for name in FORWARD_NAMES:
            want = ref.want.forward[name]
            if want.size:
                spread = float(np.max(ref.spread("forward", name)))
                worst = max(worst, spread / max(float(np.max(np.abs(want))), 1e-300))
        return worst / UNIT_ROUNDOFF["float32"]


def expect_forward_shapes(ev: "Evaluation") -> None:
    """The case's own forward in nn.LSTM's shapes, or WrongShape: what compares the
    implementation with itself (the properties) would otherwise pass a shape that is wrong the
    same way in both runs, or trip over it."""
    got, want = ev.forward(), ev.spec.shapes()
    wrong = [f"{n} has shape {np.shape(got[n])}; nn.LSTM gives {tuple(want[n])}"
             for n in FORWARD_NAMES if np.shape(got[n]) != tuple(want[n])]
    if wrong:
        raise ImplementationError("forward", WrongShape("; ".join(wrong)))


def check_gradient_names(grads: Mapping[str, np.ndarray],
                         given: Mapping[str, np.ndarray]) -> None:
    """The gradients an implementation returned must be those of what it was given, by name
    and shape (an adapter's mapping mistake shows here, before any number is compared).

    h0 and c0 are let through when no state was given: a zero gradient for a zero state."""
    unknown = [n for n in grads if n not in given and n not in ("h0", "c0")]
    missing = [n for n in given if n not in grads]
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"no gradient for {_names(missing)}")
        if unknown:
            parts.append(f"gradients under names it was not given: {_names(unknown)}")
        raise ImplementationError("gradients", WrongStructure(
            f"{'; '.join(parts)} (it was given: {_names(list(given), 12)})"))
    wrong = [f"{n} {tuple(np.shape(grads[n]))} (the {'parameter' if n not in _INPUTS else n}"
             f"'s shape: {given[n].shape})"
             for n in given if np.shape(grads[n]) != given[n].shape]
    if wrong:
        raise ImplementationError("gradients", WrongShape(
            f"gradients of another shape than what they are gradients of: {_names(wrong, 4)}"))


_INPUTS = ("input", "h0", "c0")


def _names(names: list[str], at_most: int = 6) -> str:
    shown = ", ".join(names[:at_most])
    return shown + (f" and {len(names) - at_most} more" if len(names) > at_most else "")


def _unpack(call: str, result) -> dict[str, np.ndarray]:
    """`(output, (h_n, c_n))` -> dict, or a clear error saying what came back instead."""
    try:
        output, (h_n, c_n) = result
    except (TypeError, ValueError):
        raise ImplementationError(call, WrongStructure(
            f"returned {type(result).__name__}; expected (output, (h_n, c_n)) like nn.LSTM"
        )) from None
    return {n: np.asarray(a) for n, a in zip(FORWARD_NAMES, (output, h_n, c_n))}


def _named_arrays(args) -> dict:
    """The arrays among a call's arguments, by the names the Built protocol gives them."""
    names = {0: ("input",), 1: ("h0", "c0"), 2: ("g_output", "g_h_n", "g_c_n")}
    named = {}
    for i, arg in enumerate(args):
        if isinstance(arg, np.ndarray):
            named[names.get(i, (f"argument {i}",))[0]] = arg
        elif isinstance(arg, tuple) and all(isinstance(a, np.ndarray) for a in arg):
            labels = names.get(i, ())
            for j, a in enumerate(arg):
                named[labels[j] if j < len(labels) else f"argument {i}[{j}]"] = a
    return named


def _wrong_dtype(name: str, got: np.ndarray, spec: CaseSpec) -> Comparison | None:
    """A tensor in another dtype than the case's: float64 for float32 hides rounding, float32
    for float64 throws precision away; either is a silent cast."""
    if got.dtype == np.dtype(spec.dtype):
        return None
    return Comparison(name, False, float("inf"), float("inf"), 0.0, float("inf"),
                      problem=f"{name} is {got.dtype}; asked for {spec.dtype} (nn.LSTM returns "
                              f"its input's dtype)", status="wrong-dtype")


def _nondeterministic(name: str, first: np.ndarray, second: np.ndarray, tol: float,
                      spec: CaseSpec, call: str) -> Comparison | None:
    """The same call on the same case twice: apart by more than the tolerance is a finding."""
    a, b = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if a.shape != b.shape:
        return Comparison(name, False, float("inf"), float("inf"), tol, float("inf"),
                          problem=f"{call} called twice on the same case: {name} has shape "
                                  f"{a.shape}, then {b.shape}", status="nondeterministic")
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
    return Comparison(name, False, worst, worst / max(abs(float(a[index])), 1e-300), tol,
                      worst / tol if tol > 0 else float("inf"), index,
                      describe_index(name, index, spec), float(b[index]), float(a[index]),
                      problem=f"{call} called twice on the same case: {where} differs by "
                              f"{worst:.3g} between the calls (tolerance {tol:.3g})",
                      status="nondeterministic")


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
    cmp = _forward_comparison(ev, name, got, want, tol,
                              resolvable(ev.spec.dtype, want, spread),
                              ref.overflow("forward", name, ev.spec.dtype))
    return CheckOutcome(name, cmp.passed, [cmp])


def _forward_comparison(ev: Evaluation, name: str, got, want: np.ndarray, tol: float,
                        resolved: bool, overflow: np.ndarray | None) -> Comparison:
    cmp = compare(name, got, want, tol, ev.spec, resolved, overflow)
    if cmp.status is None:  # a wrong shape or a NaN says more than a dtype or a repeat
        again = None if cmp.unresolved else ev.again("forward")
        cmp = (_wrong_dtype(name, got, ev.spec)
               or (again is not None and _nondeterministic(name, got, again[name], tol, ev.spec,
                                                           "forward"))
               or cmp)
    return cmp


def check_gradients(ev: Evaluation) -> CheckOutcome:
    got_all = ev.gradients()  # first: a case it declines costs no reference run
    ref = ev.reference()
    want_all = ref.want.gradients
    names = ["input"] + (["h0", "c0"] if ev.case.state is not None else []) + ev.compared_params
    # The natural scale of gradient errors: the largest gradient, or the cotangents where every
    # gradient is small (all gates saturated): a gate value off by one ulp absolute (sigmoid
    # through tanh) moves gradients by about an ulp of the cotangents, not of the gradients.
    unit = max([float(np.max(np.abs(want_all[n]))) for n in names if want_all[n].size]
               + [float(np.max(np.abs(g))) for g in ev.case.cotangents if g.size], default=1.0)
    dtype = ev.spec.dtype

    def at_floor(n: str, want: np.ndarray):
        return floor(dtype, want, unit), True, None

    def full(n: str, want: np.ndarray):
        spread = ref.spread_of("gradients", n)
        return (tolerance(dtype, want, spread, unit), resolvable(dtype, want, spread),
                ref.overflow("gradients", n, dtype))

    outcome = _gradient_comparisons(ev, got_all, want_all, names, at_floor)
    if outcome.passed:
        return outcome
    return _gradient_comparisons(ev, got_all, want_all, names, full)


def _gradient_comparisons(ev: Evaluation, got_all: Mapping[str, np.ndarray],
                          want_all: Mapping[str, np.ndarray], names: list[str],
                          judge: Callable) -> CheckOutcome:
    """The gradients check with `judge(name, want) -> (tolerance, resolved, overflow)`."""
    comparisons, blocks = [], {}
    again = ev.again("gradients")
    for n in names:
        want = want_all[n]
        if n not in got_all:
            comparisons.append(Comparison(
                n, False, float("inf"), float("inf"), 0.0, float("inf"),
                problem=f"no gradient for {n} (the gradients returned: "
                        f"{', '.join(sorted(got_all)) or 'none'})", status="wrong-structure"))
            continue
        tol, resolved, overflow = judge(n, want)
        cmp = compare(n, got_all[n], want, tol, ev.spec, resolved, overflow)
        if cmp.status is None:
            cmp = (_wrong_dtype(n, got_all[n], ev.spec)
                   or (again is not None and n in again and not cmp.unresolved
                       and _nondeterministic(n, got_all[n], again[n], tol, ev.spec, "gradients"))
                   or cmp)
        comparisons.append(cmp)
        if cmp.status is None:
            for key, ratio in block_ratios(n, got_all[n], want, tol, ev.spec, resolved, overflow,
                                           cmp.ratio).items():
                blocks[key] = max(blocks.get(key, 0.0), ratio)
    return CheckOutcome("gradients", all(c.passed for c in comparisons), comparisons,
                        blocks=blocks)


def loss_of(forward: Mapping[str, np.ndarray], cotangents) -> tuple[float, float]:
    """The scalar loss and the sum of its terms' magnitudes, in float64."""
    total = magnitude = 0.0
    for name, g in zip(FORWARD_NAMES, cotangents):
        terms = np.asarray(forward[name], np.float64) * g.astype(np.float64)
        total += float(np.sum(terms))
        magnitude += float(np.sum(np.abs(terms)))
    return total, magnitude


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

    def directional(self, rng: np.random.Generator, directions: int,
                    names: list[str] | None = None) -> list[Comparison]:
        """Directional comparisons, over all tensors or only `names` (the rest held fixed)."""
        point = self.point if names is None else {n: self.point[n] for n in names}

        def loss(p):
            return self.loss({**self.point, **p})
        return directional(loss, point, self.gradients, self.dtype, self.noise, rng,
                           directions, self.reference, self.magnitude)


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
            c = Comparison(missing[0], False, float("inf"), float("inf"), 0.0, float("inf"),
                           problem=f"no gradient for {', '.join(missing)}")
            return CheckOutcome("finite-differences", False, [c])
    else:
        point.update({n: ev.implementation_params[n] for n in ev.compared_params})
        grads = ev.reference().want.gradients
    param_names = [n for n in point if n not in ("input", "h0", "c0")]
    fixed = {n: a for n, a in ev.implementation_params.items() if n not in point}

    template = None
    if reuse:
        template = ev._build({**fixed, **{n: point[n] for n in param_names}})
        if not callable(getattr(template, "with_parameters", None)):
            template = None

    def run(p) -> dict[str, np.ndarray]:
        params = {**fixed, **{n: p[n] for n in param_names}}
        built = (ev._build(params) if template is None else
                 ev._call("build", template.with_parameters, params, watched=params))
        state = (p["h0"], p["c0"]) if "h0" in p else None
        return _unpack("forward", ev._call("forward", built.forward, p["input"], state))

    def loss(p) -> float:
        return loss_of(run(p), case.cotangents)[0]

    at_point = run(point)
    _, magnitude = loss_of(at_point, case.cotangents)
    kappa = max(1.0, ev.forward_kappa())
    noise = (FD_NOISE_FACTOR * UNIT_ROUNDOFF[spec.dtype] * kappa
             * rounding_scale(at_point, case.cotangents))
    # The formula assumes the forward rounds at the case's dtype. One that rounds coarser
    # inside (a float32 buffer in a float64 run) is noisier: measure the noise too, so that
    # steps where it dominates are unresolved rather than compared (see `measured_noise`).
    noise = max(noise, measured_noise(loss, point, spec))
    # The reference's slopes keep the steps in the linear regime: the implementation's own
    # gradients cannot be trusted to say how far that is.
    ref_grads = ev.reference().want.gradients or {}
    return DifferenceProblem(loss, point, grads, ref_grads, noise, magnitude, spec.dtype,
                             template is not None)


# Steps (relative to each tensor's scale) at which the loss's own noise is measured: far below
# FD_EPS, where the change of a smooth loss is known from a coarse difference to ~1e-10 of it.
NOISE_PROBES = (1e-7, 1e-9)


def measured_noise(loss: Callable, point: Mapping[str, np.ndarray], spec: CaseSpec) -> float:
    """The rounding noise of one loss evaluation, measured along one random direction.

    A coarse central difference D at FD_EPS gives the slope; at a tiny step s the true change
    of the loss is 2 s D to within O(FD_EPS^2) of it, so what the difference L(x+sv) - L(x-sv)
    has beyond that is the forward's rounding (or quantization): half of it is one
    evaluation's noise."""
    from .finite_diff import _shifted, perturbation_scales  # noqa: PLC0415
    from .tolerances import FD_EPS  # noqa: PLC0415
    rng = np.random.default_rng(spec.seed + 5)
    scales = perturbation_scales(point)
    v = {n: rng.standard_normal(a.shape) * scales[n] for n, a in point.items()}
    h = FD_EPS[spec.dtype]
    slope = (loss(_shifted(point, v, h)) - loss(_shifted(point, v, -h))) / (2 * h)
    worst = 0.0
    for s in NOISE_PROBES:
        diff = loss(_shifted(point, v, s)) - loss(_shifted(point, v, -s))
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
    comparisons = p.directional(np.random.default_rng(ev.spec.seed + 2), FD_DIRECTIONS)
    if sum(a.size for a in p.point.values()) <= PER_ELEMENT_MAX_ELEMENTS:
        comparisons += per_element(p.loss, p.point, p.gradients, p.dtype, p.noise, ev.spec,
                                   p.reference, p.magnitude)
    return (CheckOutcome("finite-differences", all(c.passed for c in comparisons), comparisons),
            p.reused)


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


# The properties build on the classes above, and are checks like the others.
from .properties import PROPERTIES, PROPERTY_TABLE, run_property  # noqa: E402

CHECKS = (*REFERENCE_CHECKS, *PROPERTIES)
