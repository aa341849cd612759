"""Reduced-precision matrix products (parity.precision): caught in float32 and named exactly;
other reduced-precision bugs are not given a product's name."""

import pytest

from parity.precision import PRODUCT_ROUNDINGS

from .lstms import broken
from .lstms.precision_broken import PRECISION_BROKEN

CAUSES = {(fmt, nearest): cause for fmt, nearest, cause in PRODUCT_ROUNDINGS}


@pytest.mark.parametrize("cls", list(PRECISION_BROKEN), ids=lambda c: c.__name__)
def test_reduced_precision_products_are_named(check_lstm, cls):
    record = check_lstm(cls, "tests.harness.lstms.precision_broken", checks=["output"], seed=1)
    check = record.checks[0]
    assert check.status == "fail", check.message
    assert check.failure["case"]["dtype"] == "float32"
    assert check.failure["likely_cause"] == CAUSES[PRECISION_BROKEN[cls]]


@pytest.mark.parametrize("cls", [broken.Float16GatePreactivations, broken.BFloat16CellState],
                         ids=lambda c: c.__name__)
def test_other_rounding_is_not_called_a_product(check_lstm, cls):
    check = check_lstm(cls, "tests.harness.lstms.broken", checks=["c_n"], seed=1).checks[0]
    assert check.status == "fail", check.message
    assert "matrix products" not in (check.failure["likely_cause"] or "")
