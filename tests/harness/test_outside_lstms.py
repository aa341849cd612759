"""LSTMs written outside the project, as `python -m parity check --impl MODULE:CLASS` sees them.

`lstms/outside_good.py` and `lstms/outside_bad.py` were written blind to the harness (see
`lstms/README.md`): every correct one must pass and every buggy one must fail, with the CLI's
default search. Slow (a full default check each), so `thorough`.
"""

import pytest

from .lstms import outside_bad, outside_good

pytestmark = pytest.mark.thorough

CHECKS = ("output", "h_n", "c_n", "gradients", "finite-differences")


@pytest.mark.parametrize("cls", outside_good.GOOD, ids=lambda c: c.__name__)
def test_outside_correct_lstm_passes(cls, check_lstm):
    record = check_lstm(cls, "tests.harness.lstms.outside_good", checks=CHECKS, seed=1,
                        max_examples=40)
    bad = {c.check: "\n".join(c.describe()) for c in record.checks
           if c.status not in ("pass", "unsupported")}
    assert not bad, bad


@pytest.mark.parametrize("cls", outside_bad.BAD, ids=lambda c: c.__name__)
def test_outside_buggy_lstm_is_caught(cls, check_lstm):
    record = check_lstm(cls, "tests.harness.lstms.outside_bad", checks=CHECKS, seed=1,
                        max_examples=40)
    assert any(c.status in ("fail", "error") for c in record.checks), (
        f"{cls.__name__} ({cls.__doc__.strip().splitlines()[0]}) passed every check")
