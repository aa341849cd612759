"""Running the checks: one hypothesis search per (implementation, check).

Each search draws `CaseSpec`s the implementation supports, runs the explicit edge cases first,
and on a failure lets hypothesis shrink it to a minimal example. Searches over the same seed
draw the same cases, and evaluations are cached per case, so the forward checks share one run
of the implementation and of the reference per case.
"""

from __future__ import annotations

import random
import time

import numpy as np
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from hypothesis import HealthCheck, Phase, Verbosity, assume, example, given, seed, settings
from hypothesis.database import ExampleDatabase
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy

from .adapter import Adapter
from .cases import CaseSpec
from .checks import CHECKS, FORWARD_CHECKS, run_check
from .evaluation import CheckOutcome, Evaluation, Unsupported
from .diagnose import diagnose
from .expected import Tracker
from . import gradient_blocks
from .misbehaviour import is_misbehaviour
from .properties import PROPERTY_TABLE, property_edge_cases, unsupported_reason
from .results import CheckRecord, Failure, ImplementationRecord
from .strategies import MAX_WORK, case_specs, edge_cases
from .training import run_training

__all__ = [
    "DEFAULT_MAX_EXAMPLES",
    "DEFAULT_TIME_BUDGET",
    "Progress",
    "check_implementation",
]

# Per check. With the explicit edge cases (6 per dtype) this decides a default check of one
# implementation within ~60 s on 2 cores (measured in the README's table).
DEFAULT_MAX_EXAMPLES = 40
# Finite differences cost ~12 forward calls a case (and per element on small ones): fewer cases.
FD_EXAMPLES_FRACTION = 0.5
# Seconds per check before the search stops drawing new cases (and shrinking stops early).
DEFAULT_TIME_BUDGET = 30.0
# Seconds spent shrinking a failure (hypothesis's shrinker, then the structural pass), whatever
# the time budget: a failure is already decided, only its example gets simpler.
SHRINK_BUDGET = 20.0
# A property runs the implementation several times a case and adds to every default run: a
# quarter of the cases (10 of the default 40), cheaper ones, 8% of the time budget each (2.4 s of
# the default 30 s: the ten searches and the training run add under 30 s to a default check).
PROPERTY_EXAMPLES_FRACTION = 0.25
PROPERTY_BUDGET_FRACTION = 0.08
MAX_SAMPLES = 400
CACHE_SIZE = 256
# Cases per implementation whose forward and gradients are called twice (nondeterminism): the
# first ones evaluated, so a nondeterministic implementation shows on the small edge cases.
REPEATED_CASES = 2
# Findings after which the search does not go on drawing cases (see Checker._map_rest): a
# discrepancy is shrunk and reported as before; a nondeterministic answer, a hang or a crash
# says nothing per feature, and each further case would cost as much again.
NOT_MAPPED = ("nondeterministic", "timeout", "crashed")

Progress = Callable[[str, str, int, int], None]  # implementation, check, done, total


class _Failed(Exception):
    def __init__(self, spec: CaseSpec, outcome: CheckOutcome) -> None:
        self.spec, self.outcome = spec, outcome
        super().__init__(outcome.message("implementation"))


class _Errored(_Failed):
    """A separate class so hypothesis shrinks errors and discrepancies as separate bugs."""


_MISBEHAVED: dict[str, type] = {}


def _misbehaved(status: str) -> type:
    """One exception class per misbehaviour status: hypothesis shrinks each as its own bug."""
    if status not in _MISBEHAVED:
        _MISBEHAVED[status] = type(f"_Errored_{status.replace('-', '_')}", (_Errored,), {})
    return _MISBEHAVED[status]


@dataclass
class _Plan:
    """What one check's search draws: how many cases, for how long, which first."""

    check: str
    is_property: bool
    examples: int
    budget: float
    edges: list[CaseSpec]
    strategy: SearchStrategy[CaseSpec]


@dataclass
class _Search:
    """Bookkeeping for one search."""

    check: str
    budget: float
    started: float = field(default_factory=time.monotonic)
    evaluated: int = 0
    unsupported: int = 0
    unresolved: int = 0
    over_budget: bool = False
    failing: bool = False
    failing_since: float = 0.0
    worst: tuple[float, CaseSpec, CheckOutcome] | None = None
    samples: list = field(default_factory=list)
    features: dict = field(default_factory=dict)
    seen: set = field(default_factory=set)
    # The first case that misbehaved (not merely differed): it is reported over a discrepancy
    # that hypothesis may have shrunk to instead (a repeated call is made on a few cases only).
    misbehaved: tuple[CaseSpec, CheckOutcome] | None = None
    blocks: dict = field(default_factory=dict)  # gradients: (group, gate) -> (worst, cases)

    def out_of_time(self) -> bool:
        now = time.monotonic()
        if self.failing:
            return now - self.failing_since > SHRINK_BUDGET
        if not self.over_budget and now - self.started > self.budget:
            self.over_budget = True
        return self.over_budget

    def fail(self) -> None:
        if not self.failing:
            self.failing, self.failing_since = True, time.monotonic()


class Checker:
    """Runs the checks of one implementation, sharing evaluations between them."""

    def __init__(
        self,
        adapter: Adapter,
        *,
        seed: int,
        max_examples: int,
        time_budget: float = DEFAULT_TIME_BUDGET,
        progress: Progress | None = None,
        shrink: bool = True,
        database=None,
    ) -> None:
        """`database`: a hypothesis example database (failures found are saved there and tried
        first next time); None for none."""
        self.adapter, self.seed, self.max_examples = adapter, seed, max_examples
        self.time_budget, self.progress, self.shrink = time_budget, progress, shrink
        self.database = database
        self._repeats = 0
        self._evaluations: OrderedDict = OrderedDict()
        self._outcomes: dict = {}
        self.features: dict[str, list[int]] = {}  # feature -> [cases, failing cases], all checks
        self.known = Tracker.of(adapter)  # declared divergences (parity.expected)

    # -- evaluations, cached ------------------------------------------------------------------
    def _reduced(self, check: str) -> bool:
        # Finite differences of an implementation's own gradients run a variant as drawn.
        return not (check == "finite-differences" and self.adapter.supports.gradients != "none")

    def evaluation(self, spec: CaseSpec, check: str) -> Evaluation:
        reduced = self._reduced(check)
        key = (spec, reduced)
        ev = self._evaluations.get(key)
        if ev is None:
            ev = Evaluation(
                self.adapter, spec, reduced=reduced, repeat=self._repeats < REPEATED_CASES
            )
            self._repeats += 1
            self._evaluations[key] = ev
            if len(self._evaluations) > CACHE_SIZE:
                self._evaluations.popitem(last=False)
        return ev

    def outcome(self, spec: CaseSpec, check: str) -> CheckOutcome:
        """The outcome of `check` on `spec` (raises Unsupported); cached."""
        key = (spec, check)
        if key not in self._outcomes:
            try:
                self._outcomes[key] = run_check(self.evaluation(spec, check), check)
            except Unsupported:
                self._outcomes[key] = None
        outcome = self._outcomes[key]
        if outcome is None:
            raise Unsupported(spec.to_string())
        return outcome

    def known_outcome(self, spec: CaseSpec, check: str) -> CheckOutcome | None:
        """The outcome of `check` on `spec` if it was already computed; nothing is run."""
        return self._outcomes.get((spec, check))

    # -- one check ------------------------------------------------------------------------------
    def dtypes_for(self, check: str) -> tuple[str, ...]:
        supported = self.adapter.supports.dtypes
        if check == "finite-differences" and "float64" in supported:
            return ("float64",)  # differences of a float32 forward resolve two digits at best
        return supported

    def run(self, check: str) -> CheckRecord:
        """Search for a case where `check` fails, and record what was found: plan the search
        (cases, budget, edge cases), run it, and record the evidence."""
        plan = self._plan(check)
        if isinstance(plan, CheckRecord):  # decided without a search
            return plan
        search = _Search(check, plan.budget)
        record = self._search(plan, search)
        self._record_search(record, plan, search)
        return self.known.settle(
            self, record, (plan.strategy, plan.edges, plan.examples, plan.budget)
        )

    def _plan(self, check: str) -> _Plan | CheckRecord:
        """What the search of `check` draws, how many cases and for how long; or the record of
        a check decided without one (unsupported, training)."""
        supports = self.adapter.supports
        if check == "gradients" and supports.gradients == "none":
            return CheckRecord(
                check, "unsupported", message="forward only: checked through finite differences"
            )
        is_property = check in PROPERTY_TABLE or check == "training"
        if is_property and (why := unsupported_reason(check, supports, self.adapter)):
            return CheckRecord(check, "unsupported", message=why, kind="property")
        if check == "training":
            return self.known.settle_record(self, run_training(self))
        dtypes = self.dtypes_for(check)
        examples = self.max_examples
        if check == "finite-differences":
            examples = max(1, int(examples * FD_EXAMPLES_FRACTION))
        budget = self.time_budget
        # Real batch and sequence sizes explicitly only where nn.LSTM is compared directly.
        edges = edge_cases(supports, dtypes, real=check in (*FORWARD_CHECKS, "gradients"))
        # Finite differences call the forward ~18 times a case, properties several times:
        # they draw cheaper cases.
        strategy = case_specs(
            supports,
            dtypes=dtypes,
            max_work=MAX_WORK // 4 if check == "finite-differences" else MAX_WORK,
        )
        if is_property:
            examples = max(1, round(examples * PROPERTY_EXAMPLES_FRACTION))
            budget *= PROPERTY_BUDGET_FRACTION
            edges = property_edge_cases(check, edge_cases(supports, dtypes[:1], real=False), dtypes)
            strategy = case_specs(supports, dtypes=dtypes, max_work=MAX_WORK // 4).map(
                PROPERTY_TABLE[check].prepare
            )
            if PROPERTY_TABLE[check].draw is not None:
                strategy = strategy.flatmap(PROPERTY_TABLE[check].draw)  # type: ignore[arg-type]  # not None: checked above
        return _Plan(check, is_property, examples, budget, edges, strategy)

    def _search(self, plan: _Plan, search: _Search) -> CheckRecord:
        """Run hypothesis over the plan's cases; the record of what it found (status, failure)."""
        check = plan.check
        total = plan.examples + len(plan.edges)

        def test(spec: CaseSpec) -> None:
            key = (spec, check)
            if key not in self._outcomes and search.out_of_time():
                # Out of time: new cases count as passing so hypothesis winds down quickly;
                # cases already evaluated (the failure being shrunk) keep their outcome.
                return
            try:
                outcome = self.outcome(spec, check)
            except Unsupported:
                search.unsupported += 1
                assume(False)
                return
            if outcome.status != "pass" and self.known.explains(
                check, spec, outcome, self.adapter.name
            ):
                # A declared divergence: evidence for it, no failure, and a case of another
                # kind drawn in its place.
                assume(False)
            if key not in search.seen:
                search.seen.add(key)
                self._record(search, spec, outcome)
                if self.progress and not search.failing:
                    self.progress(self.adapter.name, check, search.evaluated, total)
            status = outcome.status
            if is_misbehaviour(status):
                search.fail()
                raise _misbehaved(status)(spec, outcome)
            if status != "pass":
                search.fail()
                raise _Failed(spec, outcome)

        phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if self.shrink else [])
        if self.database is not None:
            phases.insert(0, Phase.reuse)  # failures saved by earlier runs, first
        wrapped = given(plan.strategy)(test)
        for spec in reversed(plan.edges):
            wrapped = example(spec)(wrapped)
        # The seed first: @seed turns the database off, and settings applied after it win.
        wrapped = seed(self.seed)(wrapped)
        wrapped = settings(
            max_examples=plan.examples,
            deadline=None,
            derandomize=False,
            phases=phases,
            database=None
            if self.database is None
            else KeyedDatabase(
                self.database, f"{self.adapter.target or self.adapter.name}\0{check}"
            ),
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )(wrapped)

        record = CheckRecord(check, "pass", kind="property" if plan.is_property else "reference")
        try:
            wrapped()
        except _Failed as found:
            self._fill_failure(record, found)
        except Unsatisfiable:
            if not self.known.seen_in(check):  # else: every case drawn was a declared one
                record.status = "unsupported"
                record.message = "the implementation declined every case drawn for this check"
        if search.misbehaved is not None and not is_misbehaviour(record.status):
            self._fill_failure(record, _Errored(*search.misbehaved))
        if record.status == "pass" and search.evaluated == 0 and not self.known.seen_for(check):
            # Nothing was compared: every case drawn was declined until the time budget ran out
            # (hypothesis then counts the undrawn rest as passing). A check that compared
            # nothing has not passed.
            record.status = "unsupported"
            record.message = (
                f"no case was compared: the implementation declined all {search.unsupported} "
                f"cases drawn for this check before its time budget ({plan.budget:.2g}s) ran out"
                if search.unsupported
                else f"no case was compared within the time budget ({plan.budget:.2g}s)"
            )
        if record.status not in ("pass", "fail", "unsupported") + NOT_MAPPED:
            # An exception on one case is one finding: the search goes on drawing the rest, so
            # the feature cells show which features raise and which pass.
            self._map_rest(search, plan.strategy, plan.examples, check)
        return record

    def _record_search(self, record: CheckRecord, plan: _Plan, search: _Search) -> None:
        """The search's evidence into `record` (counts, samples, the worst case) and its
        features into the implementation's."""
        record.examples, record.unsupported_cases = search.evaluated, search.unsupported
        record.unresolved_cases = search.unresolved
        record.duration_s = round(time.monotonic() - search.started, 3)
        record.samples = search.samples[:MAX_SAMPLES]
        if search.blocks:
            record.data = {"gradient_blocks": gradient_blocks.rows(search.blocks)}
        if search.worst is not None:
            _, spec, outcome = search.worst
            record.worst = _worst_dict(spec, outcome)
            if record.status == "pass":
                record.message = outcome.message(self.adapter.name)
        if search.over_budget:
            record.note = (
                f"time budget of {plan.budget:.2g}s reached after {search.evaluated} cases"
            )
        for feature, (cases, failed) in search.features.items():
            agg = self.features.setdefault(feature, [0, 0])
            agg[0] += cases
            agg[1] += failed

    def _map_rest(self, search: _Search, strategy, examples: int, check: str) -> None:
        """Draw the cases the search had left after its finding (within its time budget),
        recording each one's outcome and features; the finding already reported stands."""
        remaining = examples - search.evaluated
        if remaining <= 0:
            return
        first_misbehaved = search.misbehaved
        started = time.monotonic()

        def observe(spec: CaseSpec) -> None:
            if time.monotonic() - started > search.budget:
                return
            key = (spec, check)
            try:
                outcome = self.outcome(spec, check)
            except Unsupported:
                search.unsupported += 1
                return
            if key not in search.seen:
                search.seen.add(key)
                self._record(search, spec, outcome)

        observer = settings(
            max_examples=remaining,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate],
            verbosity=Verbosity.quiet,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )(seed(self.seed + 1)(given(strategy)(observe)))
        try:
            observer()
        except Unsatisfiable:
            pass
        search.misbehaved = first_misbehaved

    def _record(self, search: _Search, spec: CaseSpec, outcome: CheckOutcome) -> None:
        search.evaluated += 1
        search.unresolved += any(c.unresolved for c in outcome.comparisons)
        worst = outcome.worst
        ratio = float("inf") if outcome.error is not None or worst is None else worst.ratio
        bad = outcome.error is not None or not outcome.passed
        if search.misbehaved is None and is_misbehaviour(outcome.status):
            search.misbehaved = (spec, outcome)
        for feature in spec.features() | {"all"}:
            counts = search.features.setdefault(feature, [0, 0])
            counts[0] += 1
            counts[1] += int(bad)
        search.samples.append([spec.seq_len, spec.dtype, ratio])
        gradient_blocks.merge(search.blocks, outcome.blocks)
        if outcome.error is None and outcome.passed and worst is not None:
            if search.worst is None or worst.ratio > search.worst[0]:
                search.worst = (worst.ratio, spec, outcome)

    def minimize(self, spec: CaseSpec, check: str, status: str) -> CaseSpec:
        """Greedy structural shrinking on top of hypothesis's (and for the explicit edge cases,
        which hypothesis reports as they are): take any simpler case that still fails the same
        way, until none does or the time is up."""
        deadline = time.monotonic() + SHRINK_BUDGET / 2

        def still_fails(candidate: CaseSpec) -> bool:
            try:
                outcome = self.outcome(candidate, check)
            except Unsupported:
                return False
            return (
                outcome.status == status
                and self.known.which(check, candidate, status, outcome.message(self.adapter.name))
                is None
            )

        improved, tried = True, {spec}
        while improved and time.monotonic() < deadline:
            improved = False
            for candidate in spec.simplifications(self.dtypes_for(check)):
                if time.monotonic() >= deadline:
                    break
                if candidate in tried:
                    continue
                tried.add(candidate)
                if still_fails(candidate):
                    spec, improved = candidate, True
                    break
        return spec

    def _fill_failure(self, record: CheckRecord, found: _Failed, minimize: bool = True) -> None:
        spec = found.spec
        if minimize:
            spec = self.minimize(spec, record.check, found.outcome.status)
        outcome = self.outcome(spec, record.check)
        if outcome.status != found.outcome.status:  # only a repeated call showed it
            spec, outcome = found.spec, found.outcome
        if outcome.status == "fail":
            # Is it a discrepancy, or does the implementation not give one answer? The case's
            # own replay (--case) asks that too, so the two agree.
            outcome = self._repeated(spec, record.check, outcome)
        name = self.adapter.name
        record.status = outcome.status
        record.message = outcome.message(name)
        if is_misbehaviour(record.status):  # one line: implementation, call, config
            record.message += f" [case {spec.to_string()}]"
        failing = [
            c.as_dict()
            for c in sorted(outcome.comparisons, key=lambda c: (c.status is None, -c.ratio))
            if not c.passed
        ][:8]
        failure = Failure.of(
            spec,
            record.message,
            spec.reproduce(self.adapter.target or name, record.check),
            finding=failing[0] if failing else None,
            comparisons=failing,
        )
        if record.status in ("wrong-shape", "wrong-dtype"):
            try:
                failure.tensors = self._tensors(spec, record.check)
            except Exception:  # noqa: BLE001 - the evidence must never hide the finding
                pass
        if outcome.error is not None:
            failure.exception = outcome.error.as_dict()
        elif record.status in ("fail", "nondeterministic"):
            try:
                failure.likely_cause = diagnose(self, spec, record.check, outcome) or getattr(
                    outcome, "likely_cause", None
                )
            except Exception as exc:  # noqa: BLE001 - a diagnosis must never hide the failure
                failure.diagnosis_error = f"{type(exc).__name__}: {exc}"
        record.failure = failure

    def evidence(self, check: str, spec: CaseSpec, outcome: CheckOutcome) -> Failure | None:
        """A finding on `spec` as a failure record would show it (message, case, cause,
        reproduction), unshrunk: the evidence for a declared divergence."""
        record = CheckRecord(check, outcome.status)
        self._fill_failure(record, _Failed(spec, outcome), minimize=False)
        assert record.failure is not None  # `_fill_failure` fills it
        return record.failure

    def _repeated(self, spec: CaseSpec, check: str, outcome: CheckOutcome) -> CheckOutcome:
        """`outcome` of `check` on `spec`, or the nondeterministic one calling twice shows."""
        ev = self.evaluation(spec, check)
        if ev.repeat:
            return outcome
        again = Evaluation(self.adapter, spec, reduced=self._reduced(check), repeat=True)
        again.share_reference(ev)
        repeated = run_check(again, check)
        if repeated.status != "nondeterministic":
            return outcome
        self._outcomes[(spec, check)] = repeated
        return repeated

    def _tensors(self, spec: CaseSpec, check: str) -> dict:
        """Shape and dtype of every tensor the check compares: what came back, what nn.LSTM
        gives."""
        ev = self.evaluation(spec, check)
        want = ev.reference().want
        got = ev.gradients() if check in ("gradients", "finite-differences") else ev.forward()
        wanted = want.gradients if check in ("gradients", "finite-differences") else want.forward
        assert wanted is not None  # the reference runs with gradients
        return {
            name: {
                "got": {
                    "shape": list(np.shape(got[name])),
                    "dtype": str(np.asarray(got[name]).dtype),
                }
                if name in got
                else None,
                "want": {"shape": list(w.shape), "dtype": spec.dtype},
            }
            for name, w in wanted.items()
        }

    def run_case(self, spec: CaseSpec, check: str) -> CheckRecord:
        """Evaluate exactly one case (``--case``): no search, no shrinking."""
        started = time.monotonic()
        is_property = check in PROPERTY_TABLE or check == "training"
        record = CheckRecord(
            check, "pass", examples=1, kind="property" if is_property else "reference"
        )
        if check == "gradients" and self.adapter.supports.gradients == "none":
            return CheckRecord(check, "unsupported", message="forward only")
        if is_property and (why := unsupported_reason(check, self.adapter.supports, self.adapter)):
            return CheckRecord(check, "unsupported", message=why, kind="property")
        if check == "training":
            return self.known.settle_record(self, run_training(self, spec), strict=False)
        try:
            outcome = self.outcome(spec, check)
        except Unsupported as exc:
            record.status, record.examples = "unsupported", 0
            record.message = f"the implementation declined this case: {exc}"
            return record
        record.unresolved_cases = int(any(c.unresolved for c in outcome.comparisons))
        if outcome.blocks:
            blocks: dict = {}
            gradient_blocks.merge(blocks, outcome.blocks)
            record.data = {"gradient_blocks": gradient_blocks.rows(blocks)}
        if outcome.status != "pass":
            self._fill_failure(record, _Failed(spec, outcome), minimize=False)
            record = self.known.settle_single(self, record, spec, outcome)
        else:
            record.message = outcome.message(self.adapter.name)
            record.worst = _worst_dict(spec, outcome)
        record.duration_s = round(time.monotonic() - started, 3)
        return record


class KeyedDatabase(ExampleDatabase):
    """`base` with every key prefixed: one set of saved examples per implementation and check,
    though the test function (whose digest hypothesis keys examples by) is the same for all."""

    def __init__(self, base: ExampleDatabase, prefix: str) -> None:
        super().__init__()
        self.base, self.prefix = base, prefix.encode() + b"\0"

    def fetch(self, key: bytes):
        return self.base.fetch(self.prefix + key)

    def save(self, key: bytes, value: bytes) -> None:
        self.base.save(self.prefix + key, value)

    def delete(self, key: bytes, value: bytes) -> None:
        self.base.delete(self.prefix + key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.base.move(self.prefix + src, self.prefix + dest, value)


def _worst_dict(spec: CaseSpec, outcome: CheckOutcome) -> dict:
    w = outcome.worst
    d = w.as_dict() if w is not None else {}
    d["case_id"] = spec.to_string()
    return d


def check_implementation(
    adapter: Adapter,
    *,
    checks: tuple[str, ...] = CHECKS,
    seed: int | None = None,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    time_budget: float = DEFAULT_TIME_BUDGET,
    case: CaseSpec | None = None,
    progress: Progress | None = None,
    shrink: bool = True,
    database=None,
    on_check: Callable[[CheckRecord], None] | None = None,
) -> ImplementationRecord:
    """Run `checks` on one implementation and return its record; `on_check` hears of each
    check's record as soon as it is decided."""
    started = time.monotonic()
    seed = random.randrange(2**32) if seed is None else seed
    record = ImplementationRecord(
        name=adapter.name,
        target=getattr(adapter, "target", "") or adapter.name,
        description=adapter.description,
        supports=adapter.supports.features(),
        gradients=adapter.supports.gradients,
        variant=adapter.variant.description if adapter.variant else None,
        layout=adapter.layout.to_dict() if adapter.layout else None,
    )
    checker = Checker(
        adapter,
        seed=seed,
        max_examples=max_examples,
        time_budget=time_budget,
        progress=progress,
        shrink=shrink,
        database=database,
    )
    for check in checks:
        if case is not None:
            record.checks.append(checker.run_case(case, check))
        else:
            record.checks.append(checker.run(check))
        if on_check is not None:
            on_check(record.checks[-1])
    record.features = {
        name: {
            "supported": supported,
            "cases": checker.features.get(name, [0, 0])[0],
            "failed": checker.features.get(name, [0, 0])[1],
        }
        for name, supported in adapter.supports.features().items()
    }
    record.duration_s = round(time.monotonic() - started, 3)
    record.summarize()
    return record
