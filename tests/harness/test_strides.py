"""Views with strides and tensors kept across calls (parity.strides)."""

import pytest
import torch

from parity import as_adapter, check_implementation

from .lstms import correct, strides_broken
from .verdicts import assert_no_false_alarm

BROKEN = "tests.harness.lstms.strides_broken"


@pytest.mark.parametrize("cls, status, cause", [
    (strides_broken.InputStridesIgnored, "fail", "strides ignored"),
    (strides_broken.OutputAliasesBuffer, "fail", "tensors kept across calls"),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_strides_bug_is_caught_with_its_cause(check_lstm, cls, status, cause):
    check = check_lstm(cls, BROKEN, checks=["strides"], seed=1).checks[0]
    assert check.status == status, check.message
    assert check.failure["likely_cause"].startswith(cause)


def test_state_strides_ignored_is_caught(check_lstm):
    # Reading an expanded h0 as contiguous runs past its storage: torch raises (an error), a
    # kernel reads garbage (a failure); either way it is not a pass.
    check = check_lstm(strides_broken.StateStridesIgnored, BROKEN, checks=["strides"],
                       seed=1).checks[0]
    assert check.status in ("fail", "error"), check.message


@pytest.mark.parametrize("cls", [correct.TextbookLSTM, correct.FusedLSTM, torch.nn.LSTM],
                         ids=lambda c: c.__name__)
def test_strides_passes_correct(check_lstm, cls):
    module = "torch.nn" if cls is torch.nn.LSTM else "tests.harness.lstms.correct"
    record = check_lstm(cls, module, checks=["strides"], seed=2, max_examples=12)
    assert record.checks[0].examples > 0
    assert_no_false_alarm(record)


def test_strides_is_unsupported_outside_torch():
    from parity_implementations.numpy_lstm import NumpyAdapter
    record = check_implementation(as_adapter(NumpyAdapter, name="numpy"), checks=("strides",),
                                  seed=0, max_examples=4)
    assert record.checks[0].status == "unsupported"
    assert "torch module" in record.checks[0].message
