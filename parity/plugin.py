"""The pytest plugin: options, the `parity_target` fixture, and items for `--parity-impl`.

Wiring only; the work is `parity.runner`. Registered through the ``pytest11`` entry point, so
installing parity makes these available in any project:

- a test that asks for `parity_target` is run once per implementation and check, ids reading
  ``naive-output``, ``mypkg:MyLSTM-gradients``;
- ``pytest --parity-impl mypkg:MyLSTM`` in a project with no such test checks that
  implementation anyway: the plugin adds one item per check.

The checks run as `python -m parity check` runs them: each implementation in a child process
(`parity.isolation`), every call into it under ``--parity-timeout``, so that one that crashes
the process or hangs fails its item with what it was doing and the session goes on. The first
item of an implementation runs all of its checks that were collected (one child, the forward
checks sharing their cases); the others read their result. ``--parity-in-process`` runs them
in the pytest process instead, one item at a time (for a debugger, ``--pdb``).
"""

from __future__ import annotations

import pytest

from .checks import CHECKS
from .isolation import DEFAULT_TIMEOUT, Options, check_isolated, load_isolated, threads_per_child
from .registry import LoadError, NotInstalled, load, registered
from .results import CheckRecord, ImplementationRecord
from .runner import DEFAULT_MAX_EXAMPLES, DEFAULT_TIME_BUDGET, Checker

FIXTURE = "parity_target"
# Target -> the checks collected for it (after -k and -m): what its first item runs.
_COLLECTED = pytest.StashKey[dict]()
# What this session has run, shared by its items: (target, options...) -> the in-process
# Checker, and (target, options..., checks) -> the ImplementationRecord from the child.
_CHECKERS = pytest.StashKey[dict]()
_RECORDS = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parity", "LSTM parity against torch.nn.LSTM")
    group.addoption(
        "--parity-impl",
        action="append",
        default=[],
        metavar="NAME|MODULE:ATTR",
        help="check this implementation (repeatable; default: every registered one)",
    )
    group.addoption(
        "--parity-seed",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the case search (default: 0, so runs repeat)",
    )
    group.addoption(
        "--parity-max-examples",
        type=int,
        default=DEFAULT_MAX_EXAMPLES,
        metavar="N",
        help=f"cases per check (default: {DEFAULT_MAX_EXAMPLES})",
    )
    group.addoption(
        "--parity-time-budget",
        type=float,
        default=DEFAULT_TIME_BUDGET,
        metavar="SECONDS",
        help="per check, stop drawing new cases after this long",
    )
    group.addoption(
        "--parity-check",
        action="append",
        default=[],
        choices=CHECKS,
        help="run only this check (repeatable)",
    )
    group.addoption(
        "--parity-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="seconds one call into an implementation may take before it is ended "
        f"as a hang (default: {DEFAULT_TIMEOUT:g})",
    )
    group.addoption(
        "--parity-in-process",
        action="store_true",
        help="run the checks in the pytest process, not a child (for --pdb); a "
        "crash or a hang then ends or stalls the session",
    )


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        # An xdist worker: several run side by side, and torch's thread pools spinning against
        # each other on few cores slow small LSTMs down tens of times.
        import torch

        torch.set_num_threads(1)


class ParityTarget:
    """One implementation and one check, run on demand. In a child process (see the module
    docstring), all of an implementation's collected checks at once; in process, one checker
    per implementation, so that the forward checks reuse one run of each case."""

    def __init__(self, config: pytest.Config, target: str, check: str) -> None:
        self.config, self.target, self.check = config, target, check
        self._checkers = config.stash.setdefault(_CHECKERS, {})
        self._records = config.stash.setdefault(_RECORDS, {})

    def __repr__(self) -> str:
        return f"<ParityTarget {self.target} {self.check}>"

    def _key(self) -> tuple:
        opt = self.config.getoption
        return (
            self.target,
            opt("parity_seed"),
            opt("parity_max_examples"),
            opt("parity_time_budget"),
            opt("parity_timeout"),
        )

    def _not_installed(self, error: str, reason: str) -> None:
        if self.target in self.config.getoption("parity_impl"):
            raise pytest.UsageError(f"--parity-impl {error}")
        pytest.skip(f"{self.target}: {reason}")

    def checker(self) -> Checker:
        opt = self.config.getoption
        key = self._key()
        if key not in self._checkers:
            try:
                adapter = load(self.target)
            except NotInstalled as exc:
                self._not_installed(str(exc), exc.reason)
            except LoadError as exc:
                raise pytest.UsageError(f"--parity-impl {exc}") from None
            self._checkers[key] = Checker(
                adapter,
                seed=opt("parity_seed"),
                max_examples=opt("parity_max_examples"),
                time_budget=opt("parity_time_budget"),
            )
        return self._checkers[key]

    def isolated(self, checks: tuple[str, ...]) -> ImplementationRecord:
        """This implementation's record for `checks`, run in a child (once per key)."""
        opt = self.config.getoption
        key = (self._key(), checks)
        if key not in self._records:
            options = Options(
                checks=checks,
                seed=opt("parity_seed"),
                max_examples=opt("parity_max_examples"),
                time_budget=opt("parity_time_budget"),
                timeout=opt("parity_timeout"),
                threads=threads_per_child(1),
                entry_points={name: ep.value for name, ep in registered().items()},
            )
            try:
                info = load_isolated([self.target], options)
            except LoadError as exc:
                raise pytest.UsageError(f"--parity-impl {exc}") from None
            i = info[self.target]
            if i.get("status") == "not-installed":
                self._not_installed(i["error"], i["reason"])
            self._records[key] = check_isolated([self.target], info, options)[0]
        return self._records[key]

    def run(self) -> CheckRecord:
        if self.config.getoption("parity_in_process"):
            return self.checker().run(self.check)
        wanted = self.config.stash.get(_COLLECTED, {}).get(self.target, [])
        if self.check in wanted:  # the first of its items runs all of them, in one child
            implementation = self.isolated(tuple(c for c in CHECKS if c in wanted))
        else:  # an item made outside collection: its check alone
            implementation = self.isolated((self.check,))
        for record in implementation.checks:
            if record.check == self.check:
                return record
        # Crashed or hung while loading: no check ran, and the implementation's record says why.
        # Never a pass: a check that did not run has passed nothing.
        status = implementation.status
        if status in ("", "pass", "unsupported"):
            status = "error"
        return CheckRecord(
            self.check,
            status,
            message=implementation.error or f"{self.target}: {self.check} not run",
        )

    def verify(self):
        """Run the check; fail with what, where, by how much and how to reproduce."""
        __tracebackhide__ = True
        record = self.run()
        if record.status == "unsupported":
            pytest.skip(f"unsupported: {record.message}")
        # A discrepancy, a misbehaviour, a crash or a hang, or a declared divergence fixed;
        # "known" (only declared divergences found) passes.
        if record.status not in ("pass", "known"):
            pytest.fail("\n".join(record.describe()), pytrace=False)
        return record


def _targets(config: pytest.Config) -> list[str]:
    return list(dict.fromkeys(config.getoption("parity_impl"))) or list(registered())


def _checks(config: pytest.Config) -> tuple[str, ...]:
    return tuple(dict.fromkeys(config.getoption("parity_check"))) or CHECKS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if FIXTURE not in metafunc.fixturenames:
        return
    config = metafunc.config
    params, ids = [], []
    for target in _targets(config):
        for check in _checks(config):
            params.append(
                pytest.param(
                    ParityTarget(config, target, check),
                    marks=pytest.mark.xdist_group(f"parity-{target}"),
                )
            )
            ids.append(f"{target}-{check}")
    metafunc.parametrize(FIXTURE, params, ids=ids)


@pytest.fixture
def parity_target(request) -> ParityTarget:
    """One (implementation, check) pair; call `.verify()`."""
    return request.param


class ParityItem(pytest.Item):
    """A check of a `--parity-impl` implementation in a project with no parity test of its own."""

    def __init__(self, *, target: ParityTarget, **kwargs) -> None:
        super().__init__(**kwargs)
        self.target = target

    def runtest(self) -> None:
        self.target.verify()

    def reportinfo(self):
        return self.path, None, self.name


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.getoption("parity_impl") and not any(
        FIXTURE in getattr(item, "fixturenames", ()) for item in items
    ):
        for target in _targets(config):
            for check in _checks(config):
                items.append(
                    ParityItem.from_parent(
                        session,
                        name=f"parity[{target}-{check}]",
                        target=ParityTarget(config, target, check),
                    )
                )
    # What each implementation's first item runs in its child: the checks that will be run
    # (trylast: after -k and -m have deselected theirs).
    collected: dict[str, list[str]] = {}
    for item in items:
        given = getattr(item, "target", None)
        if given is None and hasattr(item, "callspec"):
            given = item.callspec.params.get(FIXTURE)
        if isinstance(given, ParityTarget):
            collected.setdefault(given.target, []).append(given.check)
    config.stash[_COLLECTED] = collected
