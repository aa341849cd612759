"""The pytest plugin: options, the `parity_target` fixture, and items for `--parity-impl`.

Wiring only; the work is `parity.runner`. Registered through the ``pytest11`` entry point, so
installing parity makes these available in any project:

- a test that asks for `parity_target` is run once per implementation and check, ids reading
  ``naive-output``, ``mypkg:MyLSTM-gradients``;
- ``pytest --parity-impl mypkg:MyLSTM`` in a project with no such test checks that
  implementation anyway: the plugin adds one item per check.
"""

from __future__ import annotations

import pytest

from .checks import CHECKS
from .registry import LoadError, NotInstalled, load, registered
from .runner import DEFAULT_MAX_EXAMPLES, DEFAULT_TIME_BUDGET, Checker

FIXTURE = "parity_target"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parity", "LSTM parity against torch.nn.LSTM")
    group.addoption("--parity-impl", action="append", default=[], metavar="NAME|MODULE:ATTR",
                    help="check this implementation (repeatable; default: every registered one)")
    group.addoption("--parity-seed", type=int, default=0, metavar="SEED",
                    help="seed of the case search (default: 0, so runs repeat)")
    group.addoption("--parity-max-examples", type=int, default=DEFAULT_MAX_EXAMPLES,
                    metavar="N", help=f"cases per check (default: {DEFAULT_MAX_EXAMPLES})")
    group.addoption("--parity-time-budget", type=float, default=DEFAULT_TIME_BUDGET,
                    metavar="SECONDS", help="per check, stop drawing new cases after this long")
    group.addoption("--parity-check", action="append", default=[], choices=CHECKS,
                    help="run only this check (repeatable)")


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        # An xdist worker: several run side by side, and torch's thread pools spinning against
        # each other on few cores slow small LSTMs down tens of times.
        import torch

        torch.set_num_threads(1)


class ParityTarget:
    """One implementation and one check, run on demand; checkers are shared per implementation
    so that the forward checks reuse one run of each case."""

    _checkers: dict = {}

    def __init__(self, config: pytest.Config, target: str, check: str) -> None:
        self.config, self.target, self.check = config, target, check

    def __repr__(self) -> str:
        return f"<ParityTarget {self.target} {self.check}>"

    def checker(self) -> Checker:
        opt = self.config.getoption
        key = (self.target, opt("parity_seed"), opt("parity_max_examples"))
        if key not in self._checkers:
            try:
                adapter = load(self.target)
            except NotInstalled as exc:
                if self.target in self.config.getoption("parity_impl"):
                    raise pytest.UsageError(str(exc)) from None
                pytest.skip(f"{self.target}: {exc.reason}")
            except LoadError as exc:
                raise pytest.UsageError(str(exc)) from None
            self._checkers[key] = Checker(adapter, seed=opt("parity_seed"),
                                          max_examples=opt("parity_max_examples"),
                                          time_budget=opt("parity_time_budget"))
        return self._checkers[key]

    def verify(self):
        """Run the check; fail with what, where, by how much and how to reproduce."""
        __tracebackhide__ = True
        record = self.checker().run(self.check)
        if record.status == "unsupported":
            pytest.skip(f"unsupported: {record.message}")
        if record.status != "pass":  # a discrepancy, or a misbehaviour (wrong shape, NaN...)
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
            params.append(pytest.param(ParityTarget(config, target, check),
                                       marks=pytest.mark.xdist_group(f"parity-{target}")))
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
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if not config.getoption("parity_impl"):
        return
    if any(FIXTURE in getattr(item, "fixturenames", ()) for item in items):
        return
    for target in _targets(config):
        for check in _checks(config):
            items.append(ParityItem.from_parent(
                session, name=f"parity[{target}-{check}]",
                target=ParityTarget(config, target, check)))
