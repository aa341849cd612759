"""Shared helpers for the harness's own tests."""

import pytest

from parity import as_adapter, check_implementation


def run_checks(cls, module: str, *, checks, seed: int = 0, max_examples: int = 20,
               time_budget: float = 3600.0, shrink: bool = True, case=None):
    """Check a look-alike class as the CLI would (`--impl module:Class`).

    The time budget is set out of reach: what these tests decide must not depend on how fast
    the machine is."""
    target = f"{module}:{cls.__name__}"
    adapter = as_adapter(cls, name=target, target=target)
    return check_implementation(adapter, checks=tuple(checks), seed=seed,
                                max_examples=max_examples, time_budget=time_budget,
                                shrink=shrink, case=case)


@pytest.fixture
def check_lstm():
    return run_checks
