"""What the properties compare with: the implementation's own runs, and the tolerance two
runs of a correct implementation are held to (see `parity.properties` for the reasoning).

`parity.properties`, `parity.packed` and `parity.strides` build their checks on these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .adapter import LSTMConfig
from .cases import CaseSpec
from .compare import Comparison, compare, format_where
from .evaluation import CheckOutcome, Evaluation, ImplementationError
from .misbehaviour import WrongShape
from .reference import FORWARD_NAMES
from .tolerances import floor, resolvable, tolerance

__all__ = [
    "SELF_FACTOR",
    "Collector",
    "PropertyOutcome",
    "batch_axis",
    "forward_names",
    "forward_shapes",
    "rng_for",
    "run_forward",
    "run_gradients",
    "time_axis",
]

# Two runs, each within one tolerance of the truth, are within two of each other.
SELF_FACTOR = 2.0


@dataclass
class PropertyOutcome(CheckOutcome):
    """A property's result on one case: comparisons labelled with the runs they compare."""

    labels: list[str] = field(default_factory=list)  # per comparison: what was compared
    likely_cause: str | None = None
    exact: bool = False  # bits compared (determinism), not values within a tolerance
    summary: str | None = None  # the message of a pass where nothing was measured (degenerate)

    def message(self, implementation: str) -> str:
        if self.error is not None:
            return f"{implementation}: {self.check}: {self.error}"
        w = self.worst
        if w is None:
            return f"{implementation}: {self.check}: nothing compared"
        label = self.labels[self.comparisons.index(w)] if self.labels else ""
        if w.problem:
            return f"{implementation}: {self.check}: {w.problem}"
        if self.passed and self.summary:
            return f"{self.check}: {self.summary}"
        what = format_where(w.tensor, w.where)
        if self.exact:
            verb = "is bit-identical" if self.passed else "differs"
            return (
                f"{self.check}: {what} {verb} {label}: max |first - second| = {w.max_abs_error:.3g}"
            )
        verb = "agrees" if self.passed else "differs"
        return (
            f"{self.check}: {what} {verb} {label}: max |difference| = {w.max_abs_error:.3g} "
            f"(relative {w.max_rel_error:.2g}; tolerance {w.tolerance:.3g}, {w.ratio:.3g}x "
            f"of it)"
        )


# -- helpers ---------------------------------------------------------------------------------
def time_axis(spec: CaseSpec) -> int:
    return 1 if spec.batch is not None and spec.config.batch_first else 0


def batch_axis(spec: CaseSpec) -> int | None:
    if spec.batch is None:
        return None
    return 0 if spec.config.batch_first else 1


def run_forward(
    ev: Evaluation,
    built,
    x: np.ndarray,
    state,
    config: LSTMConfig | None = None,
    *,
    shapes: bool = True,
) -> dict[str, np.ndarray]:
    """`built`'s forward on `x`, in the shapes nn.LSTM gives for `config` (the case's unless
    given), or WrongShape; `shapes` False leaves that out (degenerate compares them itself)."""
    # Fresh C-ordered copies: views (flipped, transposed) are the harness's business, and the
    # implementation must not be able to write into the case's arrays.
    x = np.array(x, order="C")
    if state is not None:
        state = tuple(np.array(s, order="C") for s in state)
    got = ev.forward_of(built, x, state)
    if shapes:
        want = forward_shapes(config or ev.spec.config, x.shape)
        wrong = [
            f"{n} has shape {np.shape(got[n])}; nn.LSTM gives {want[n]}"
            for n in FORWARD_NAMES
            if np.shape(got[n]) != want[n]
        ]
        if wrong:
            c = config or ev.spec.config
            flags = [
                f
                for f, on in (
                    ("batch_first", c.batch_first and x.ndim == 3),
                    ("bidirectional", c.bidirectional),
                )
                if on
            ]
            raise ImplementationError(
                "forward",
                WrongShape(
                    f"{'; '.join(wrong)} (input of shape {x.shape}"
                    f"{''.join(', ' + f for f in flags)}, num_layers={c.num_layers})"
                ),
            )
    return got


def forward_shapes(config: LSTMConfig, input_shape: tuple[int, ...]) -> dict[str, tuple]:
    """output, h_n, c_n shapes nn.LSTM gives for `config` on input of `input_shape`."""
    L = config.num_layers * config.num_directions
    rows: tuple[int, ...] = ()
    if len(input_shape) == 3:
        rows = (input_shape[0 if config.batch_first else 1],)
    return {
        "output": input_shape[:-1] + (config.output_hidden_size * config.num_directions,),
        "h_n": (L, *rows, config.output_hidden_size),
        "c_n": (L, *rows, config.hidden_size),
    }


def run_gradients(ev: Evaluation, built, x, state, cotangents) -> dict[str, np.ndarray]:
    # Fresh C-ordered copies: views (flipped, transposed) are the harness's business, and the
    # implementation must not be able to write into the case's arrays.
    x = np.array(x, order="C")
    if state is not None:
        state = tuple(np.array(s, order="C") for s in state)
    cotangents = tuple(np.array(c, order="C") for c in cotangents)
    return ev.gradients_of(built, x, state, cotangents)


def rng_for(ev: Evaluation, salt: int) -> np.random.Generator:
    return np.random.default_rng([ev.spec.seed, salt])


class Collector:
    """Builds a PropertyOutcome's comparisons against the case's reference tolerances."""

    def __init__(self, ev: Evaluation, check: str) -> None:
        self.ev, self.check = ev, check
        self.comparisons: list[Comparison] = []
        self.labels: list[str] = []

    def tolerance(self, group: str, name: str, unit: float = 1.0):
        ref = self.ev.reference() if group == "gradients" else self.ev.reference_forward()
        want = ref.want.pick(group, name)
        spread = ref.spread_of(group, name)
        tol = SELF_FACTOR * tolerance(self.ev.spec.dtype, want, spread, unit)
        return (
            tol,
            resolvable(self.ev.spec.dtype, want, spread),
            ref.overflow(group, name, self.ev.spec.dtype),
        )

    def add(
        self,
        label: str,
        tensor: str,
        got,
        want,
        group: str = "forward",
        unit: float = 1.0,
        spec: CaseSpec | None = None,
        index=None,
    ) -> None:
        """Compare `got` (the metamorphic run) with `want` (the plain run) under the tolerance
        the reference check allows for `tensor` (`index` selects the part compared)."""
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            self.comparisons.append(
                Comparison(
                    tensor,
                    False,
                    float("inf"),
                    float("inf"),
                    0.0,
                    float("inf"),
                    problem=f"{tensor} {label} has shape {got.shape}, the plain run's is "
                    f"{want.shape}",
                )
            )
            self.labels.append(label)
            return
        # First under the floor (parity.tolerances.floor, which needs none of the reference's
        # sample runs): the full tolerance is never below it, so a pass there is a pass; any
        # other result is decided again under the full tolerance.
        ref = self.ev.reference() if group == "gradients" else self.ev.reference_forward()
        at_floor = SELF_FACTOR * floor(self.ev.spec.dtype, ref.want.pick(group, tensor), unit)
        cmp = compare(
            tensor, got, want.astype(np.float64), at_floor, spec or self.ev.spec, True, None
        )
        if not cmp.passed:
            tol, resolved, overflow = self.tolerance(group, tensor, unit)
            if index is not None:
                overflow = overflow[index]
            cmp = compare(
                tensor,
                got,
                want.astype(np.float64),
                tol,
                spec or self.ev.spec,
                resolved,
                overflow if overflow.shape == want.shape else None,
            )
        cmp.where["compared"] = label
        self.comparisons.append(cmp)
        self.labels.append(label)

    def add_problem(
        self, label: str, tensor: str, problem: str, passed: bool = False, status: str | None = None
    ) -> None:
        self.comparisons.append(
            Comparison(
                tensor,
                passed,
                0.0 if passed else float("inf"),
                0.0 if passed else float("inf"),
                0.0,
                0.0 if passed else float("inf"),
                problem=None if passed else problem,
                status=None if passed else status,
            )
        )
        self.labels.append(label)

    def outcome(self, cause: str | None, **extra) -> PropertyOutcome:
        passed = all(c.passed for c in self.comparisons)
        return PropertyOutcome(
            self.check,
            passed,
            self.comparisons,
            labels=self.labels,
            likely_cause=None if passed else cause,
            **extra,
        )


def forward_names(got: Mapping, whole: Mapping):
    for name in FORWARD_NAMES:
        yield name, got[name], whole[name]
