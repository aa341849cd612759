"""Blame on the right part: errors are the exception's, a step-0 training difference is the
forward's, and an error on one feature does not hide how the others fare."""

import importlib

import pytest
import torch

from parity import CaseSpec

from .lstms import broken, one_bug
from .lstms.broken import GateOrderIGFO
from .lstms.correct import BatchFirstNativeLSTM, Float64InternallyLSTM, TextbookLSTM

MODULE = "tests.harness.test_diagnosis"


class ZerosInFloat32(TextbookLSTM):
    """Builds the zero initial state in float32 whatever the input's dtype (a habit from
    torch.zeros' default): a float64 call without hx raises on the dtype mismatch."""

    def initial_state(self, hx, batch, x):
        h0, c0 = super().initial_state(hx, batch, x)
        if hx is None:
            return h0.float(), c0.float()
        return h0, c0


class RaisesWhenBidirectional(TextbookLSTM):
    """Raises on every bidirectional case; correct on the rest."""

    def forward(self, input, hx=None):
        if self.bidirectional:
            raise RuntimeError("bidirectional is broken here")
        return super().forward(input, hx)


class DeclinesBidirectionalWithState(TextbookLSTM):
    """Declines (NotImplementedError) a bidirectional call with an initial state; correct on
    everything else."""

    def forward(self, input, hx=None):
        if self.bidirectional and hx is not None:
            raise NotImplementedError("bidirectional with an initial state")
        return super().forward(input, hx)


def test_declining_one_combination_declines_those_cases_only(check_lstm):
    record = check_lstm(DeclinesBidirectionalWithState, MODULE, checks=("output",),
                        max_examples=30)
    (c,) = record.checks
    assert c.status == "pass", c.describe()
    assert c.unsupported_cases > 0
    # Bidirectional cases without a state still ran, and passed.
    bi = record.features["bidirectional"]
    assert bi["cases"] > 0 and bi["failed"] == 0


def test_an_exception_on_empty_inputs_that_every_input_raises_is_an_error_not_empty_handling(
        check_lstm):
    record = check_lstm(ZerosInFloat32, MODULE, checks=("degenerate",), max_examples=5)
    (c,) = record.checks
    assert c.status == "error", c.describe()
    assert c.failure["exception"]["type"] == "RuntimeError"
    assert c.failure["likely_cause"] is None
    assert "empty" not in c.message


def test_a_loss_that_differs_before_the_first_update_blames_the_forward(check_lstm):
    record = check_lstm(GateOrderIGFO, "tests.harness.lstms.broken", checks=("training",))
    (c,) = record.checks
    assert c.status == "fail"
    assert c.failure["finding"]["where"]["step"] == 0
    assert c.failure["likely_cause"].startswith("forward: the loss differs before the first")


def test_an_error_on_one_feature_leaves_the_others_mapped(check_lstm):
    record = check_lstm(RaisesWhenBidirectional, MODULE, checks=("output",), max_examples=30)
    (c,) = record.checks
    assert c.status == "error"
    assert c.failure["exception"]["message"] == "bidirectional is broken here"
    assert "bidirectional=true" in c.failure["case_id"]
    features = record.features
    # Cases past the error were drawn: bidirectional ones all raised, others passed.
    bi = features["bidirectional"]
    assert bi["cases"] >= 2 and bi["failed"] == bi["cases"]
    layers = features["multi_layer"]
    assert layers["cases"] > layers["failed"]
    assert c.examples > bi["cases"]


def test_zeros_in_float32_is_correct_in_float32():
    # The fixture above is wrong only through the dtype: a float32 call works.
    m = ZerosInFloat32(2, 3)
    out, _ = m(torch.zeros(4, 1, 2))
    assert out.shape == (4, 1, 3)


class CellOutputWithoutTanhInFloat64(Float64InternallyLSTM):
    """h = o * c (no tanh of the cell), computed in float64 and rounded to the input's dtype,
    as a NumPy port computes: unbounded h grows the rounding of the float32 state handed back
    between steps past nn.LSTM's spread."""

    def hidden_update(self, o, c, where):
        return o * c


# Seen on a public NumPy LSTM with this very bug: a step-by-step failure at 1.7x its tolerance.
LARGE_WEIGHTS_CASE = ("input_size=4,hidden_size=4,seq_len=24,batch=1,dtype=float32,"
                      "initial_state=none,weight_scale=8.0,input_offset=3.0,seed=26")


def test_a_property_failing_by_rounding_where_the_forward_differs_blames_the_forward(
        check_lstm):
    case = CaseSpec.from_string(LARGE_WEIGHTS_CASE)
    record = check_lstm(CellOutputWithoutTanhInFloat64, MODULE,
                        checks=("output", "step-by-step"), case=case)
    output, steps = record.checks
    assert output.status == "fail" and "h = o * c" in output.failure["likely_cause"]
    assert steps.status == "fail", steps.message
    assert steps.failure["finding"]["max_rel_error"] < 1e-3  # rounding, grown
    assert steps.failure["likely_cause"].startswith(
        "forward: the forward differs from nn.LSTM's on this case"), steps.failure["likely_cause"]
    # The same float64-inside computation with the tanh passes both on that case.
    record = check_lstm(Float64InternallyLSTM, "tests.harness.lstms.correct",
                        checks=("output", "step-by-step"), case=case)
    assert [c.status for c in record.checks] == ["pass", "pass"]


class _TanhStraightThrough(torch.autograd.Function):
    """tanh forward; its backward passes the gradient through unchanged (derivative 1)."""

    @staticmethod
    def forward(ctx, x):
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class CellTanhWithoutDerivative(TextbookLSTM):
    """h = o * tanh(c), but the backward leaves out tanh's derivative (a forward fixed by hand,
    its hand-written backward left as it was): gradients grow along long sequences."""

    def hidden_update(self, o, c, where):
        return o * _TanhStraightThrough.apply(c)


LONG_CASE = ("input_size=4,hidden_size=4,seq_len=100,batch=1,dtype=float64,initial_state=none,"
             "input_offset=3.0,seed=26")


def test_a_property_failing_by_rounding_where_the_gradients_differ_blames_the_backward(
        check_lstm):
    record = check_lstm(CellTanhWithoutDerivative, MODULE, checks=("gradients", "chunking"),
                        case=CaseSpec.from_string(LONG_CASE))
    gradients, chunking = record.checks
    assert gradients.status == "fail"
    assert gradients.failure["likely_cause"].startswith("backward:")
    assert chunking.status == "fail", chunking.message
    assert chunking.failure["finding"]["max_rel_error"] < 1e-3  # rounding, grown
    assert chunking.failure["likely_cause"].startswith(
        "backward: the gradients differ from nn.LSTM's on this case"), \
        chunking.failure["likely_cause"]
    # With tanh's own backward, the same loop passes both on that case.
    record = check_lstm(TextbookLSTM, "tests.harness.lstms.correct",
                        checks=("gradients", "chunking"), case=CaseSpec.from_string(LONG_CASE))
    assert [c.status for c in record.checks] == ["pass", "pass"]


# Two of the one-bug LSTMs, on the property cases where their forward's own difference grows
# the rounding of the runs compared: the property's cause ("batch rows influence each other",
# "layers are not chained as nn.LSTM chains them") would point at the wrong part.
ROUNDING_GROWN = [
    ("CellOutputWithoutTanh", "batch-independence",
     "input_size=4,hidden_size=7,seq_len=24,batch=2,dtype=float32,initial_state=none,"
     "weight_scale=8.0,input_offset=3.0,seed=26"),
    ("OutputRoundedThroughFloat32", "stacking",
     "input_size=1,hidden_size=1,num_layers=2,seq_len=1,batch=1,dtype=float64,"
     "initial_state=none,seed=11"),
]


@pytest.mark.parametrize("name, check, case", ROUNDING_GROWN, ids=[r[0] for r in ROUNDING_GROWN])
def test_one_bug_lstms_property_failures_by_rounding_blame_the_forward(name, check, case,
                                                                       check_lstm):
    record = check_lstm(getattr(one_bug, name), "tests.harness.lstms.one_bug", checks=(check,),
                        case=CaseSpec.from_string(case))
    (c,) = record.checks
    assert c.status == "fail", c.message
    assert c.failure["likely_cause"].startswith(
        "forward: the forward differs from nn.LSTM's on this case"), c.failure["likely_cause"]


@pytest.mark.parametrize("module, name", [("one_bug", "BatchFirstByReshape"),
                                          ("outside_bad", "BadBatchFirstView")])
def test_properties_failing_on_a_batch_first_bug_blame_the_layout(module, name, check_lstm):
    """A batch_first reshape bug fails step-by-step, chunking, causality... on batch_first
    cases; their themes (a state not carried, a lookahead) are not the bug."""
    cls = getattr(importlib.import_module(f"tests.harness.lstms.{module}"), name)
    checks = ("step-by-step", "chunking", "batch-independence", "causality", "bidirectional")
    record = check_lstm(cls, f"tests.harness.lstms.{module}", checks=checks, seed=1,
                        max_examples=8)
    failed = [c for c in record.checks if c.status == "fail"]
    assert len(failed) >= 3, [c.describe() for c in record.checks]
    for c in failed:
        assert "batch_first=true" in c.failure["case_id"]
        assert c.failure["likely_cause"].startswith("batch_first: the same case with "
                                                    "batch_first=False passes"), c.describe()


def test_a_correct_batch_first_lstm_passes_those_properties(check_lstm):
    """Batch-first inside (the layout conversions the other way round): the same search passes."""
    checks = ("step-by-step", "chunking", "batch-independence", "causality", "bidirectional")
    record = check_lstm(BatchFirstNativeLSTM, "tests.harness.lstms.correct", checks=checks,
                        seed=1, max_examples=8)
    assert [c.status for c in record.checks] == ["pass"] * len(checks), \
        [c.describe() for c in record.checks]


def test_a_real_batch_leak_keeps_its_own_cause_though_the_forward_differs_too(check_lstm):
    """BatchMeanLeak adds 1e-3 of the batch mean to each row: the forward differs from
    nn.LSTM's, and batch-independence fails at relative 5e-4 but 1e7x its tolerance, far past
    grown rounding: the property's own cause is the right one."""
    case = ("input_size=1,hidden_size=1,seq_len=1,batch=2,dtype=float64,initial_state=none,"
            "seed=11")
    record = check_lstm(broken.BatchMeanLeak, "tests.harness.lstms.broken",
                        checks=("output", "batch-independence"), case=CaseSpec.from_string(case))
    output, rows = record.checks
    assert output.status == rows.status == "fail"
    assert rows.failure["finding"]["max_rel_error"] < 1e-3
    assert rows.failure["likely_cause"].startswith("batch rows influence each other")
