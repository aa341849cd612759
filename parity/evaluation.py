"""The evaluation core: one implementation on one case, every call into it in one place.

An `Evaluation` builds the implementation, calls its forward and gradients, and computes the
reference run, each lazily and once, so that the checks of one case share the work. Every call
into the implementation goes through `Evaluation.call`: timed (the isolation child's heartbeat,
see `reporting_calls`), watched (arrays it was given must come back unchanged; process-wide
settings it changes are restored and reported), ``NotImplementedError`` taken as "declines this
case" (`Unsupported`) and anything else it raises wrapped in an `ImplementationError` that
carries the status the fault has. What comes back is structure-checked here too
(`Evaluation.forward_of`, `Evaluation.gradients_of`), so a fault gets the same status whichever
check meets it.

Everything above (the checks, the properties, training, the diagnosis, the runner) imports this
module; it imports nothing of theirs.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Protocol

import numpy as np

from .adapter import Adapter, LSTMConfig, parameter_shapes
from .cases import Case, CaseSpec, materialize
from .compare import Comparison, format_where
from .misbehaviour import (
    ChangesGlobalState,
    Misbehaviour,
    MutatesInput,
    WrongShape,
    WrongStructure,
    changed,
    snapshot,
)
from .process_state import watch
from .results import Failure
from .reference import FORWARD_NAMES, ReferenceRun, shared_reference
from .tolerances import UNIT_ROUNDOFF

__all__ = [
    "CheckOutcome",
    "Evaluation",
    "Evaluator",
    "ImplementationError",
    "Unsupported",
    "check_gradient_names",
    "expect_forward_shapes",
    "reporting_calls",
    "unpack",
    "wrong_dtype",
]

CallHook = Callable[[str | None, CaseSpec], None]
# Called as hook(call, spec) before each call into the implementation and as hook(None, spec)
# after it returns: the child process of parity.isolation tells its parent, which then knows
# what a crash or a hang was running, and times each call. Set only inside `reporting_calls`.
_call_hook: contextvars.ContextVar[CallHook | None] = contextvars.ContextVar(
    "parity_call_hook", default=None
)


@contextlib.contextmanager
def reporting_calls(hook: CallHook) -> Iterator[None]:
    """Within the block, `hook` hears of every call into an implementation (see above)."""
    token = _call_hook.set(hook)
    try:
        yield
    finally:
        _call_hook.reset(token)


class Evaluator(Protocol):
    """What the diagnosis, training and the declared divergences ask of the runner's
    `Checker`: the implementation, and the evaluation and outcome of other cases, cached
    across the run."""

    adapter: Adapter
    seed: int

    def evaluation(self, spec: CaseSpec, check: str) -> Evaluation: ...

    def outcome(self, spec: CaseSpec, check: str) -> CheckOutcome: ...

    def known_outcome(self, spec: CaseSpec, check: str) -> CheckOutcome | None: ...

    def dtypes_for(self, check: str) -> tuple[str, ...]: ...

    def evidence(self, check: str, spec: CaseSpec, outcome: CheckOutcome) -> Failure | None: ...


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
        text = (
            f"{call} raised {self.exc_type}: {self.exc_message}"
            if self.status == "error"
            else f"{call}: {self.exc_message}"
        )
        super().__init__(text)

    def as_dict(self) -> dict:
        """Where it raised, for a failure record: {call, type, message, location}."""
        return {
            "call": self.call,
            "type": self.exc_type,
            "message": self.exc_message,
            "location": self.location,
        }


# Where a call into the implementation is, for a message: "... in its constructor (build)".
_DURING = {
    "build": "in its constructor (build)",
    "forward": "in forward",
    "gradients": "in gradients",
}


def _implementation_frame(exc: BaseException) -> str | None:
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "/parity/" not in f.filename.replace("\\", "/")
        and "/torch/" not in f.filename.replace("\\", "/")
    ]
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
        """ "pass", "fail", or the misbehaviour's name (parity.misbehaviour)."""
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
        return (
            f"{what} {verb}: max |got - want| = {w.max_abs_error:.3g} "
            f"(relative {w.max_rel_error:.2g}; tolerance {w.tolerance:.3g}, "
            f"{w.ratio:.3g}x of it)"
        )


class Evaluation:
    """Everything the checks need for one (implementation, case), computed lazily, once."""

    def __init__(
        self, adapter: Adapter, spec: CaseSpec, reduced: bool = True, repeat: bool = False
    ) -> None:
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
    def build(
        self,
        params: Mapping[str, np.ndarray],
        config: LSTMConfig | None = None,
        dtype: str | None = None,
    ):
        """An instance of what this evaluation builds (a variant's reducing adapter, where it
        has one) with `params`, for the case's configuration and dtype unless given."""
        return self.call(
            "build",
            self.builder.build,
            config or self.spec.config,
            params,
            dtype or self.spec.dtype,
            watched=params,
        )

    def forward_of(
        self, built, x: np.ndarray, state, lengths: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """`built`'s forward on `x` from `state`, as ``{output, h_n, c_n}``; with `lengths`
        (padded input, `Supports(lengths=True)`), called with ``lengths=``."""
        fn = built.forward if lengths is None else functools.partial(built.forward, lengths=lengths)
        return unpack("forward", self.call("forward", fn, x, state))

    def gradients_of(
        self,
        built,
        x: np.ndarray,
        state,
        cotangents,
        given: Mapping[str, np.ndarray] | None = None,
        lengths: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """`built`'s gradients, a dict of arrays or WrongStructure; with `given` (what they
        are gradients of: input, h0, c0, parameters), their names and shapes checked too;
        with `lengths`, called with ``lengths=``."""
        fn = (
            built.gradients
            if lengths is None
            else functools.partial(built.gradients, lengths=lengths)
        )
        grads = self.call("gradients", fn, x, state, cotangents)
        if not isinstance(grads, Mapping):
            raise ImplementationError(
                "gradients",
                WrongStructure(f"returned {type(grads).__name__}, not a dict of arrays"),
            )
        grads = {n: np.asarray(g) for n, g in grads.items()}
        if given is not None:
            check_gradient_names(grads, given)
        return grads

    def call(self, what: str, fn, *args, watched: Mapping[str, np.ndarray] | None = None):
        """Call `fn(*args)`, a call into the implementation named `what`. Arrays it is given
        (the `args` and the `watched` parameters, which an instance holds on to) must come
        back unchanged."""
        if (
            what in ("forward", "gradients")
            and len(args) > 1
            and args[1] is not None
            and not self.adapter.supports.initial_state
        ):
            raise Unsupported(
                "the implementation takes no initial state "
                "(Supports(initial_state=False)); this call would give it one"
            )
        named = _named_arrays(args)
        named.update(
            {
                f"parameter {n}": a
                for n, a in (watched if watched is not None else self.implementation_params).items()
            }
        )
        before = snapshot(named)
        hook = _call_hook.get()
        if hook is not None:
            hook(what, self.spec)
        settings: list[str] = []  # process-wide changes it left (restored by `watch`)
        try:
            with watch(settings):
                result = fn(*args)
        except NotImplementedError as exc:
            raise Unsupported(str(exc)) from None
        except Exception as exc:  # anything it raises is reported, not crashed on
            raise ImplementationError(what, exc) from exc
        finally:
            if hook is not None:
                hook(None, self.spec)
        moved = changed(named, before)
        if moved:
            raise ImplementationError(what, MutatesInput(f"changed what it was given: {moved}"))
        if settings:
            raise ImplementationError(
                what,
                ChangesGlobalState(
                    f"the implementation {' and '.join(settings)} "
                    f"{_DURING.get(what, 'in ' + what)} and left it so: a caller's own "
                    f"computations after it change (the harness restored it)"
                ),
            )
        load_changes = getattr(self.adapter, "load_changes", None)
        if what == "build" and load_changes:
            raise ImplementationError(
                "load",
                ChangesGlobalState(
                    f"the implementation {' and '.join(load_changes)} while it was imported and "
                    f"set up, and left it so: a caller's own computations after it change (the "
                    f"harness restored it)"
                ),
            )
        return result

    def instance(self):
        """One instance, already called once on other data: it must not remember that call.

        Where the instance can be called with other weights (``with_parameters``, see
        `parity.Built`), that first call uses other weights too: what it prepared from them
        must not outlive them.
        """
        if "instance" not in self._cache:
            built = self.build(self.implementation_params)
            c = self.case
            rng = np.random.default_rng(self.spec.seed + 1)
            other = (
                rng.standard_normal(c.input.shape) * np.std(c.input) if c.input.size else c.input
            ).astype(c.input.dtype)
            shapes = self.spec.state_shapes()
            state = tuple(rng.standard_normal(s).astype(c.input.dtype) for s in shapes)
            if not self.adapter.supports.initial_state:
                state = None  # an implementation with no state input is never given one
            first = built
            if callable(getattr(built, "with_parameters", None)):
                first = built.with_parameters(
                    {
                        n: (rng.standard_normal(a.shape) * (np.std(a) or 1.0)).astype(a.dtype)
                        for n, a in self.implementation_params.items()
                    }
                )
            try:
                self.call("forward", first.forward, other, state)
            except Unsupported:
                if c.state is not None:
                    raise
                # It declines a state with these features (one combination), and this case
                # has none: the first call goes without one too, rather than decline the case.
                self.call("forward", first.forward, other, None)
            self._cache["instance"] = built
        return self._cache["instance"]

    def reference(self) -> ReferenceRun:
        """nn.LSTM on this case, with gradients and the spread of correct answers."""
        if "reference" not in self._cache:
            self._cache["reference"] = shared_reference(self.case, self.reduced)
        return self._cache["reference"]

    def reference_forward(self) -> ReferenceRun:
        """The reference without gradients (a third of the cost), unless the full run is
        already computed."""
        if "reference" in self._cache:
            return self._cache["reference"]
        if "reference-forward" not in self._cache:
            self._cache["reference-forward"] = shared_reference(
                self.case, self.reduced, gradients=False
            )
        return self._cache["reference-forward"]

    def share_reference(self, other: Evaluation) -> None:
        """Take `other`'s reference run: the same case (another instance of it), computed once."""
        if other.case.spec != self.case.spec:
            raise ValueError("share_reference: the evaluations are of different cases")
        self._cache["reference"] = other.reference()

    def forward(self) -> dict[str, np.ndarray]:
        if "forward" not in self._cache:
            self._cache["forward"] = self._forward_once()
            if self.repeat:
                self._cache["forward_again"] = self._forward_once()
        return self._cache["forward"]

    def _forward_once(self) -> dict[str, np.ndarray]:
        return self.forward_of(self.instance(), self.case.input, self.case.state)

    def gradients(self) -> dict[str, np.ndarray]:
        if "gradients" not in self._cache:
            self._cache["gradients"] = self._gradients_once()
            if self.repeat:
                self._cache["gradients_again"] = self._gradients_once()
        return self._cache["gradients"]

    def _gradients_once(self) -> dict[str, np.ndarray]:
        given = {"input": self.case.input}
        if self.case.state is not None:
            given["h0"], given["c0"] = self.case.state
        given.update(self.implementation_params)
        return self.gradients_of(
            self.instance(), self.case.input, self.case.state, self.case.cotangents, given
        )

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


def expect_forward_shapes(ev: Evaluation) -> None:
    """The case's own forward in nn.LSTM's shapes, or WrongShape: what compares the
    implementation with itself (the properties) would otherwise pass a shape that is wrong the
    same way in both runs, or trip over it."""
    got, want = ev.forward(), ev.spec.shapes()
    wrong = [
        f"{n} has shape {np.shape(got[n])}; nn.LSTM gives {tuple(want[n])}"
        for n in FORWARD_NAMES
        if np.shape(got[n]) != tuple(want[n])
    ]
    if wrong:
        raise ImplementationError("forward", WrongShape("; ".join(wrong)))


def check_gradient_names(grads: Mapping[str, np.ndarray], given: Mapping[str, np.ndarray]) -> None:
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
        raise ImplementationError(
            "gradients",
            WrongStructure(f"{'; '.join(parts)} (it was given: {_names(list(given), 12)})"),
        )
    wrong = [
        f"{n} {tuple(np.shape(grads[n]))} (the {'parameter' if n not in _INPUTS else n}"
        f"'s shape: {given[n].shape})"
        for n in given
        if np.shape(grads[n]) != given[n].shape
    ]
    if wrong:
        raise ImplementationError(
            "gradients",
            WrongShape(
                f"gradients of another shape than what they are gradients of: {_names(wrong, 4)}"
            ),
        )


_INPUTS = ("input", "h0", "c0")


def _names(names: list[str], at_most: int = 6) -> str:
    shown = ", ".join(names[:at_most])
    return shown + (f" and {len(names) - at_most} more" if len(names) > at_most else "")


def unpack(call: str, result) -> dict[str, np.ndarray]:
    """`(output, (h_n, c_n))` -> dict, or a clear error saying what came back instead."""
    try:
        output, (h_n, c_n) = result
    except (TypeError, ValueError):
        raise ImplementationError(
            call,
            WrongStructure(
                f"returned {type(result).__name__}; expected (output, (h_n, c_n)) like nn.LSTM"
            ),
        ) from None
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


def wrong_dtype(name: str, got: np.ndarray, spec: CaseSpec) -> Comparison | None:
    """A tensor in another dtype than the case's: float64 for float32 hides rounding, float32
    for float64 throws precision away; either is a silent cast."""
    if got.dtype == np.dtype(spec.dtype):
        return None
    return Comparison(
        name,
        False,
        float("inf"),
        float("inf"),
        0.0,
        float("inf"),
        problem=f"{name} is {got.dtype}; asked for {spec.dtype} (nn.LSTM returns "
        f"its input's dtype)",
        status="wrong-dtype",
    )
