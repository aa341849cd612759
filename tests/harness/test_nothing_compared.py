"""A check that compared nothing has not passed.

Measured in a blind test: an LSTM that declined every case drawn (NotImplementedError) got
`pass`, exit 0, whenever the time budget ran out before hypothesis gave up on the declined
draws (it counts the undrawn rest as passing); the same seed gave `unsupported` on a faster
run. Whatever the timing, a check with no case compared is `unsupported`, with the reason.
"""

import torch

from parity import as_adapter, check_implementation

from .lstms import correct

MODULE = "tests.harness.lstms.correct"


class DeclinesEveryCall(torch.nn.LSTM):
    """Constructs for every config (so every feature is probed as supported) but declines
    every call: as a look-alike whose forward raises NotImplementedError on what it does not
    handle, for every case drawn."""

    calls = 0

    def forward(self, input, hx=None):
        if DeclinesEveryCall.calls > 0:  # the probe at load time is the first call
            raise NotImplementedError("this case is not supported")
        DeclinesEveryCall.calls += 1
        return super().forward(input, hx)


def _check(cls, time_budget):
    target = f"{__name__}:{cls.__name__}"
    adapter = as_adapter(cls, name=target, target=target)
    return check_implementation(adapter, checks=("output",), seed=0, max_examples=5,
                                time_budget=time_budget)


def test_no_time_to_compare_anything_is_not_a_pass():
    # A budget of zero: the search stops drawing before the first case is evaluated.
    record = _check(correct.CORRECT[0], time_budget=0.0)
    (check,) = record.checks
    assert check.examples == 0
    assert check.status == "unsupported"
    assert "no case was compared" in check.message
    assert record.status != "pass"


def test_every_case_declined_is_not_a_pass_whatever_the_budget():
    for budget in (0.0, 0.05, 3600.0):
        DeclinesEveryCall.calls = 0
        record = _check(DeclinesEveryCall, time_budget=budget)
        (check,) = record.checks
        assert check.examples == 0
        assert check.status == "unsupported", (budget, check.status, check.message)


def test_a_correct_lstm_with_time_to_compare_still_passes():
    record = _check(correct.CORRECT[0], time_budget=3600.0)
    (check,) = record.checks
    assert check.status == "pass" and check.examples > 0
