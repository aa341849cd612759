"""No false alarms: correct LSTMs computed differently pass every check they support.

`tests/harness/lstms/correct.py` holds correct look-alikes that differ from `nn.LSTM` in how they
compute (per-gate matmuls, one fused matrix, a cell loop, the input projection precomputed,
sigmoid through tanh, float64 inside, batch-first inside) and one that supports only a subset of
the features. The default run uses one seed; `-m thorough` runs many.
"""

import pytest

from parity import CHECKS

from .lstms import correct

MODULE = "tests.harness.lstms.correct"


def _assert_passes(record):
    bad = {c.check: "\n".join(c.describe()) for c in record.checks
           if c.status not in ("pass", "unsupported")}
    assert not bad, f"false alarm on {record.name}: {bad}"
    assert any(c.status == "pass" for c in record.checks)


@pytest.mark.parametrize("cls", correct.CORRECT, ids=lambda c: c.__name__)
def test_correct_lstm_passes(cls, check_lstm):
    _assert_passes(check_lstm(cls, MODULE, checks=CHECKS, seed=0, max_examples=10))


def test_a_subset_implementation_is_checked_on_its_subset(check_lstm):
    record = check_lstm(correct.SubsetLSTM, MODULE, checks=("output",), max_examples=10)
    _assert_passes(record)
    features = record.features
    assert not features["bidirectional"]["supported"] and features["bidirectional"]["cases"] == 0
    assert not features["projection"]["supported"] and features["projection"]["cases"] == 0
    assert features["multi_layer"]["supported"] and features["multi_layer"]["cases"] > 0


@pytest.mark.thorough
@pytest.mark.parametrize("seed", range(50))
@pytest.mark.parametrize("cls", correct.CORRECT, ids=lambda c: c.__name__)
def test_no_false_alarm_over_many_seeds(cls, seed, check_lstm):
    _assert_passes(check_lstm(cls, MODULE, checks=CHECKS, seed=seed, max_examples=10))
