"""Known divergences: findings declared in advance, required to still happen (strict xfails).

An implementation that really differs from `nn.LSTM` (a third-party library with a bug, a
documented difference) would keep a check red forever. Its adapter (or a user, for their own
implementation) declares each such finding instead, as a `KnownDivergence`: the checks it shows
in, the cases it shows on (a feature combination, or a predicate), what it looks like (its
status, and a regular expression its message matches) and its cause in one sentence.

Then, per check:

- a finding on a case inside a declaration's combination, with its status and message, is
  *explained*: recorded as evidence (the first one, shrunk within the combination), not
  reported as a failure, and not counted as a drawn case (hypothesis draws another in its
  place, so that the rest of the space is searched as fully as without declarations). Every
  other finding is checked as usual, inside the combination too: a case there that fails in
  another way (another status, another message) is an undeclared finding, and a case there
  that passes is simply a pass. The search and its shrinking never
  take an explained finding for the one they are shrinking (`Tracker.explains`).
- after the check, each declaration for it must have been seen. When the search met none of
  its cases (it draws everything, so it may not have), its cases are drawn on purpose; when
  none shows the finding it is reported ``fixed``: the divergence no longer happens, remove the
  declaration. A fixed declaration fails the check, like a strict xfail that passes.

A check whose only findings are declared has status ``known``: the verdict counts it as a pass
and the CLI and the report show its declarations apart, each with the evidence found.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from .adapter import InvalidArgument, LSTMConfig
from .cases import CaseSpec
from .checks import CHECKS
from .evaluation import CheckOutcome, Evaluator, Unsupported
from .misbehaviour import MISBEHAVIOURS, is_misbehaviour
from .results import FIXED, KNOWN, CheckRecord, Failure

__all__ = ["FIXED", "KNOWN", "KnownDivergence", "Tracker"]

# What a declared finding may look like: a discrepancy, or a misbehaviour.
FINDING_STATUSES = ("fail", *MISBEHAVIOURS)
# Fields a feature combination may name: the constructor's and the case's.
WHERE_FIELDS = tuple(f.name for f in dataclasses.fields(LSTMConfig)) + tuple(
    f.name for f in dataclasses.fields(CaseSpec) if f.name != "config"
)
# Seconds spent simplifying a declaration's evidence (within its combination).
EVIDENCE_SHRINK_BUDGET = 5.0


@dataclass(frozen=True)
class KnownDivergence:
    """A finding declared in advance: where it shows, what it looks like, and why.

    `checks`: the checks it shows in (each must still show it). `where`: the cases it shows on,
    either field -> value (a value, or a collection of values: ``{"num_layers": (2, 3),
    "bidirectional": True}``; fields of `LSTMConfig` and of `CaseSpec`, ``batch=None`` for
    unbatched input), or a predicate on a `CaseSpec`; None for every case. `status`: the
    finding's status (``"fail"`` or a misbehaviour such as ``"error"``), or several. `match`: a
    regular expression the finding's message must contain (searched with re.DOTALL: an
    exception's text spans lines), such as the exception's text or the tensor that differs;
    None for any. `cause`: one sentence, shown with the evidence.
    """

    cause: str
    checks: tuple[str, ...]
    where: Mapping[str, object] | Callable[[CaseSpec], bool] | None = None
    status: str | tuple[str, ...] = "fail"
    match: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cause, str) or not self.cause.strip():
            raise InvalidArgument(f"cause={self.cause!r}: say why, in one sentence")
        checks = (self.checks,) if isinstance(self.checks, str) else tuple(self.checks or ())
        if not checks:
            raise InvalidArgument(f"checks={self.checks!r}: name the checks it shows in")
        for check in checks:
            if check not in CHECKS:
                raise InvalidArgument(
                    f"checks: {check!r} is not a check; one of {', '.join(CHECKS)}"
                )
        object.__setattr__(self, "checks", checks)
        statuses = (self.status,) if isinstance(self.status, str) else tuple(self.status)
        for status in statuses or ("",):
            if status not in FINDING_STATUSES:
                raise InvalidArgument(
                    f"status={status!r}: must be one of {', '.join(FINDING_STATUSES)}"
                )
        object.__setattr__(self, "status", statuses)
        if isinstance(self.where, Mapping):
            for key in self.where:
                if key not in WHERE_FIELDS:
                    raise InvalidArgument(
                        f"where: {key!r} is not a case field; one of {', '.join(WHERE_FIELDS)}"
                    )
            object.__setattr__(self, "where", dict(self.where))
        elif self.where is not None and not callable(self.where):
            raise InvalidArgument(
                f"where={self.where!r}: a mapping of case fields to values, "
                f"a predicate on a CaseSpec, or None"
            )
        if self.match is not None:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise InvalidArgument(
                    f"match={self.match!r}: not a regular expression ({exc})"
                ) from None

    # -- where ----------------------------------------------------------------------------------
    def applies(self, spec: CaseSpec) -> bool:
        """Whether `spec` is in the declared combination."""
        if self.where is None:
            return True
        if callable(self.where):
            return bool(self.where(spec))
        values = spec.as_dict()
        return all(_allows(allowed, values[key]) for key, allowed in self.where.items())

    def explains(self, check: str, spec: CaseSpec, status: str, message: str) -> bool:
        """Whether a finding (`status`, `message`) of `check` on `spec` is this one."""
        return (
            check in self.checks
            and status in self.status
            and self.applies(spec)
            and (self.match is None or re.search(self.match, message, re.DOTALL) is not None)
        )

    def into(self, strategy: st.SearchStrategy[CaseSpec]) -> st.SearchStrategy[CaseSpec]:
        """`strategy`'s cases moved into the combination (a predicate: filtered into it)."""
        if self.where is None:
            return strategy
        if callable(self.where):
            return strategy.filter(self.applies)
        choices = {k: _choices(v) for k, v in self.where.items()}

        def moved(spec: CaseSpec):
            return st.fixed_dictionaries({k: st.sampled_from(v) for k, v in choices.items()}).map(
                lambda values: _replaced(spec, values)
            )

        return strategy.flatmap(moved).filter(lambda s: s is not None)

    def moved(self, spec: CaseSpec) -> CaseSpec | None:
        """`spec` moved into the combination (each field's first value), or None."""
        if self.where is None or callable(self.where):
            return spec if self.applies(spec) else None
        return _replaced(spec, {k: _choices(v)[0] for k, v in self.where.items()})

    def describe_where(self) -> str:
        if self.where is None:
            return "every case"
        if callable(self.where):
            return getattr(self.where, "__doc__", None) or getattr(
                self.where, "__name__", "a predicate"
            )  # type: ignore[return-value]
        return ", ".join(
            f"{k} in {list(_choices(v))}" if len(_choices(v)) > 1 else f"{k}={_choices(v)[0]}"
            for k, v in self.where.items()
        )

    def as_dict(self) -> dict:
        return {
            "cause": self.cause,
            "checks": list(self.checks),
            "where": self.describe_where(),
            "status": list(self.status),
            "match": self.match,
        }


def _choices(allowed) -> tuple:
    if isinstance(allowed, (str, bytes)) or not hasattr(allowed, "__iter__"):
        return (allowed,)
    return tuple(allowed)


def _allows(allowed, value) -> bool:
    return value in _choices(allowed)


def _replaced(spec: CaseSpec, values: dict) -> CaseSpec | None:
    try:
        return spec.replace(**values)
    except (InvalidArgument, ValueError, TypeError):
        return None


@dataclass
class _Seen:
    """What one check found of one declaration."""

    specs: set = field(default_factory=set)
    first: tuple[CaseSpec, CheckOutcome] | None = None

    @property
    def cases(self) -> int:
        return len(self.specs)


@dataclass
class Tracker:
    """The declarations of one implementation, and what each check found of them."""

    declarations: tuple[KnownDivergence, ...]
    seen: dict = field(default_factory=dict)  # (check, index) -> _Seen

    @classmethod
    def of(cls, adapter) -> Tracker:
        return cls(tuple(getattr(adapter, "known_divergences", ()) or ()))

    def seen_in(self, check: str) -> bool:
        """Whether `check` has met any declared finding so far."""
        return any(c == check for c, _ in self.seen)

    def for_check(self, check: str) -> list[tuple[int, KnownDivergence]]:
        return [(i, d) for i, d in enumerate(self.declarations) if check in d.checks]

    def seen_for(self, check: str) -> bool:
        """Whether any case of `check` was explained by a declaration."""
        return any(key[0] == check for key in self.seen)

    def which(self, check: str, spec: CaseSpec, status: str, message: str) -> int | None:
        """The declaration that explains this finding, if one does."""
        if status == "pass":
            return None
        return next(
            (i for i, d in self.for_check(check) if d.explains(check, spec, status, message)), None
        )

    def explains(self, check: str, spec: CaseSpec, outcome: CheckOutcome, name: str) -> bool:
        """The search's hook: True (and the evidence kept) when a declaration explains the
        outcome of `check` on `spec`; the search then takes it for neither pass nor failure."""
        return self._explained_by(check, spec, outcome, name) is not None

    def _explained_by(
        self, check: str, spec: CaseSpec, outcome: CheckOutcome, name: str
    ) -> int | None:
        i = self.which(check, spec, outcome.status, outcome.message(name))
        if i is None:
            return None
        seen = self.seen.setdefault((check, i), _Seen())
        seen.specs.add(spec)
        if seen.first is None:
            seen.first = (spec, outcome)
        return i

    # -- after a check --------------------------------------------------------------------------
    def settle(self, checker: Evaluator, record: CheckRecord, drawn=None) -> CheckRecord:
        """Confirm each declaration for `record`'s check (drawing its cases when the search did
        not meet them), attach what was found, and set the status: ``known`` when only
        declared findings showed, ``fixed`` when a declaration no longer shows."""
        check = record.check
        mine = self.for_check(check)
        if not mine or record.status == "unsupported":
            return record
        entries = []
        for i, declaration in mine:
            seen = self.seen.get((check, i))
            if seen is None and drawn is not None:
                self._confirm(checker, check, i, declaration, drawn)
                seen = self.seen.get((check, i))
            entries.append(self._entry(checker, check, declaration, seen))
        record.known = entries
        return _with_status(record)

    def settle_single(
        self, checker: Evaluator, record: CheckRecord, spec: CaseSpec, outcome: CheckOutcome
    ) -> CheckRecord:
        """`--case`: one case decides nothing about the others; only an explained finding is
        recorded (and makes the status ``known``)."""
        if outcome.status == "pass" or not self.explains(
            record.check, spec, outcome, checker.adapter.name
        ):
            return record
        i = self.which(record.check, spec, outcome.status, outcome.message(checker.adapter.name))
        assert i is not None  # `explains`: a declaration explains it
        record.known = [
            self._entry(
                checker,
                record.check,
                self.declarations[i],
                self.seen[(record.check, i)],
                minimize=False,
            )
        ]
        record.failure, record.message, record.status = None, "", "pass"
        return _with_status(record)

    def settle_record(
        self, checker: Evaluator, record: CheckRecord, strict: bool = True
    ) -> CheckRecord:
        """A check decided outside the search (training): its one finding, explained or not;
        `strict` False (`--case`): a declaration not seen on this one case is not fixed."""
        mine = self.for_check(record.check)
        if not mine or record.status == "unsupported":
            return record
        f: Failure | dict = record.failure or {}
        spec = CaseSpec.from_string(f["case_id"]) if f.get("case_id") else None
        i = None if spec is None else self.which(record.check, spec, record.status, record.message)
        entries = []
        for j, declaration in mine:
            entry = {**declaration.as_dict(), "status": FIXED, "cases": 0, "evidence": None}
            if j == i:
                entry.update(status=KNOWN, cases=1, evidence=record.failure)
            elif not strict:
                continue
            entries.append(entry)
        if i is not None:
            record.failure, record.message = None, ""
            record.status = "pass"
        record.known = entries
        return _with_status(record)

    def _confirm(
        self, checker: Evaluator, check: str, i: int, declaration: KnownDivergence, drawn
    ) -> None:
        """Draw cases inside the combination until the finding shows, or as many as the search
        drew, or its time budget is spent."""
        strategy, edges, examples, budget = drawn
        deadline = time.monotonic() + budget
        name = checker.adapter.name
        explicit = list(
            dict.fromkeys(m for m in (declaration.moved(e) for e in edges) if m is not None)
        )
        for spec in explicit:
            if self._try(checker, check, spec, name) == i:
                return

        class _Found(Exception):
            pass

        def test(spec: CaseSpec) -> None:
            if time.monotonic() > deadline:
                raise _Found  # not found: out of time
            if self._try(checker, check, spec, name) == i:
                raise _Found

        wrapped = seed(checker.seed)(given(declaration.into(strategy))(test))
        wrapped = settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            verbosity=Verbosity.quiet,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )(wrapped)
        try:
            wrapped()
        except (_Found, Unsatisfiable):
            pass

    def _try(self, checker: Evaluator, check: str, spec: CaseSpec, name: str) -> int | None:
        """The declaration that explains `check`'s outcome on `spec`, if one does."""
        try:
            outcome = checker.outcome(spec, check)
        except Unsupported:
            return None
        return self._explained_by(check, spec, outcome, name)

    def _entry(
        self,
        checker: Evaluator,
        check: str,
        declaration: KnownDivergence,
        seen: _Seen | None,
        minimize: bool = True,
    ) -> dict:
        entry = {**declaration.as_dict(), "status": FIXED, "cases": 0, "evidence": None}
        if seen is None or seen.first is None:
            return entry
        spec, outcome = seen.first
        if minimize:
            spec, outcome = self._simplest(checker, check, declaration, spec, outcome)
        entry.update(
            status=KNOWN, cases=seen.cases, evidence=checker.evidence(check, spec, outcome)
        )
        return entry

    def _simplest(self, checker: Evaluator, check, declaration, spec, outcome):
        """A simpler case inside the combination that shows the same finding, greedily."""
        name = checker.adapter.name
        deadline = time.monotonic() + EVIDENCE_SHRINK_BUDGET
        improved = True
        while improved and time.monotonic() < deadline:
            improved = False
            for candidate in spec.simplifications(checker.dtypes_for(check)):
                if time.monotonic() >= deadline:
                    break
                if not declaration.applies(candidate):
                    continue
                try:
                    got = checker.outcome(candidate, check)
                except Unsupported:
                    continue
                if declaration.explains(check, candidate, got.status, got.message(name)):
                    spec, outcome, improved = candidate, got, True
                    break
        return spec, outcome


def _with_status(record: CheckRecord) -> CheckRecord:
    """``fixed`` over ``known`` over ``pass``; an undeclared finding keeps its own status."""
    statuses = {e["status"] for e in record.known}
    if record.status == "pass":
        if FIXED in statuses:
            record.status = FIXED
            fixed = [e for e in record.known if e["status"] == FIXED]
            record.message = (
                f"{len(fixed)} declared divergence"
                f"{'s' if len(fixed) != 1 else ''} no longer "
                f"happen{'s' if len(fixed) == 1 else ''} (fixed: remove the "
                f"declaration): " + "; ".join(e["cause"] for e in fixed)
            )
        elif KNOWN in statuses:
            record.status = KNOWN
    return record


def is_failing(status: str) -> bool:
    """Whether a check status fails the verdict (misbehaviours are worse: see results)."""
    return status in ("fail", FIXED) or is_misbehaviour(status)
