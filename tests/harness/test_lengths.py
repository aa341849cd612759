"""Padded input plus lengths (parity.lengths): the classic bugs caught with their cause, correct
adapters passing, and adapters without `Supports(lengths=True)` never called with the keyword."""

import numpy as np
import pytest

from parity import Supports, check_implementation
from parity.cases import CaseSpec
from parity.evaluation import Evaluation
from parity.lengths import BACKWARD_CAUSE, run_padded
from parity.packed import FD_DIRECTIONS
from parity.packed import MISTAKES
from parity_implementations.numpy_lstm import NumpyAdapter, NumpyLSTM

from .lstms.lengths_adapters import (LENGTHS_BROKEN, FinalStateAfterPadding, GradientThroughPadding,
                                     LengthsOffByOne, LengthsSorted, MaskedLengthsAdapter,
                                     NormalizesOverPadding)
from .verdicts import assert_no_false_alarm

CAUSES = {m.name: m.cause for m in MISTAKES}


def run(adapter, checks, **kw):
    kw.setdefault("seed", 1)
    kw.setdefault("max_examples", 20)
    return check_implementation(adapter, checks=tuple(checks), time_budget=3600.0, **kw)


@pytest.mark.parametrize("cls", list(LENGTHS_BROKEN), ids=lambda c: c.__name__)
def test_lengths_bug_is_caught_with_its_cause(cls):
    record = run(cls(), ["padded"])
    check = record.checks[0]
    assert check.status == "fail", check.message
    assert check.failure["likely_cause"] == CAUSES[LENGTHS_BROKEN[cls]], check.failure
    # The failure names the lengths, and --case reproduces it.
    assert "lengths=" in check.failure["case_id"]
    again = run(cls(), ["padded"], case=CaseSpec.from_string(check.failure["case_id"]))
    assert again.checks[0].status == "fail"
    assert again.checks[0].failure["likely_cause"] == check.failure["likely_cause"]


@pytest.mark.parametrize("adapter", [NumpyAdapter(), MaskedLengthsAdapter()],
                         ids=lambda a: type(a).__name__)
def test_correct_lengths_adapter_passes(adapter):
    record = run(adapter, ["padded", "padding-invariance", "lengths"], seed=2)
    for check in record.checks:
        assert check.examples > 0, check.check
    assert record.features["lengths"]["cases"] > 0
    assert_no_false_alarm(record)


@pytest.mark.parametrize("cls, part", [
    (NormalizesOverPadding, "reach valid results"),
    (FinalStateAfterPadding, "reach valid results"),
    (GradientThroughPadding, "reach the gradients of valid positions"),
], ids=["normalizes over padding", "final state after padding", "gradient through padding"])
def test_padding_invariance_catches_a_leak(cls, part):
    check = run(cls(), ["padding-invariance"]).checks[0]
    assert check.status == "fail", check.message
    assert part in check.failure["likely_cause"]


def test_gradient_leak_fails_padded_with_the_backward_as_cause():
    """Its forward matches nn.LSTM; its gradients with lengths disagree with differences of
    that forward (finite differences with lengths): the backward is named."""
    check = run(GradientThroughPadding(), ["padded"]).checks[0]
    assert check.status == "fail", check.message
    assert check.failure["likely_cause"] == BACKWARD_CAUSE, check.failure


def _padded_outcome_on(adapter, spec):
    ev = Evaluation(adapter, spec)
    return run_padded(ev)


SMALL_PADDED = ("input_size=2,hidden_size=3,num_layers=2,bidirectional=true,seq_len=5,batch=3,"
                "initial_state=random,seed=6,lengths=2;5;3,enforce_sorted=false")


@pytest.mark.parametrize("adapter", [NumpyAdapter(), MaskedLengthsAdapter()],
                         ids=lambda a: type(a).__name__)
def test_finite_differences_with_lengths_pass_a_correct_backward(adapter):
    outcome = _padded_outcome_on(adapter, CaseSpec.from_string(SMALL_PADDED))
    differences = [c for c, label in zip(outcome.comparisons, outcome.labels)
                   if label.startswith("its gradients vs differences")]
    assert len(differences) == FD_DIRECTIONS
    assert any(not c.unresolved for c in differences)  # something was measured
    assert outcome.passed, outcome.message("x")


def test_finite_differences_with_lengths_catch_a_wrong_backward():
    outcome = _padded_outcome_on(GradientThroughPadding(), CaseSpec.from_string(SMALL_PADDED))
    differences = [c for c, label in zip(outcome.comparisons, outcome.labels)
                   if label.startswith("its gradients vs differences")]
    assert differences and not all(c.passed for c in differences)
    assert outcome.likely_cause == BACKWARD_CAUSE


def test_finite_differences_with_lengths_skip_float32_and_forward_only():
    spec = CaseSpec.from_string(SMALL_PADDED.replace("seed=6", "dtype=float32,seed=6"))
    outcome = _padded_outcome_on(MaskedLengthsAdapter(), spec)
    assert not any(label.startswith("its gradients vs differences") for label in outcome.labels)


class _NoLengthsBuilt(NumpyLSTM):
    """Takes no `lengths` keyword at all: being called with it would raise TypeError."""

    def forward(self, input, state=None):
        return super().forward(input, state)

    def gradients(self, input, state, cotangents):
        return super().gradients(input, state, cotangents)


class NoLengths(NumpyAdapter):
    supports = Supports(gradients="manual")
    lstm = _NoLengthsBuilt


class DeclinesLengths(NumpyAdapter):
    """Declares lengths, then declines them (NotImplementedError): unsupported, not pass."""

    class lstm(NumpyLSTM):
        def forward(self, input, state=None, lengths=None):
            if lengths is not None:
                raise NotImplementedError("no lengths here")
            return super().forward(input, state)


def test_adapter_without_lengths_is_unsupported_and_never_called_with_it():
    record = run(NoLengths(), ["padded", "padding-invariance", "output"], max_examples=5)
    status = {c.check: c.status for c in record.checks}
    assert status == {"padded": "unsupported", "padding-invariance": "unsupported",
                      "output": "pass"}
    assert not record.features["lengths"]["supported"]


def test_adapter_declining_lengths_is_unsupported():
    record = run(DeclinesLengths(), ["padded"], max_examples=5)
    assert record.checks[0].status == "unsupported"


def test_lengths_are_given_as_declared():
    """One int64 length per batch row, in the batch's order; the input padded to seq_len with
    drawn (not zero) values."""
    seen = []

    class Spy(NumpyAdapter):
        class lstm(NumpyLSTM):
            def forward(self, input, state=None, lengths=None):
                if lengths is not None:
                    seen.append((np.array(input), np.array(lengths)))
                return super().forward(input, state, lengths)

    spec = CaseSpec.from_string("input_size=2,hidden_size=3,seq_len=5,batch=3,seed=4,"
                                "lengths=2;5;1,enforce_sorted=false")
    record = run(Spy(), ["padded"], case=spec)
    assert record.checks[0].status == "pass"
    x, lengths = seen[0]
    assert lengths.dtype == np.int64 and lengths.tolist() == [2, 5, 1]
    assert x.shape == (5, 3, 2) and np.all(x[2:, 0] != 0)


# The `lengths` property (parity.packed.run_lengths_property, on padded input plus lengths): the
# implementation against itself, each row alone against its row of the batch.
ROWS = "a sequence's result depends on the rest of the batch"
ORDER = "the result depends on the batch's order: lengths, h0 or c0 applied to rows in another order"


@pytest.mark.parametrize("cls, cause, compared", [
    (FinalStateAfterPadding, ROWS, "run alone vs its row of the lengths batch"),
    (LengthsOffByOne, ROWS, "run alone vs its row of the lengths batch"),
    # Shrunk to lengths already sorted, where each row alone agrees: only the permuted batch
    # shows the lengths going to other rows.
    (LengthsSorted, ORDER, "the lengths batch permuted by"),
], ids=["final state after padding", "one step long", "lengths sorted"])
def test_lengths_property_catches_a_row_that_depends_on_the_batch(cls, cause, compared):
    check = run(cls(), ["lengths"]).checks[0]
    assert check.status == "fail", check.message
    assert check.failure["likely_cause"].startswith(cause), check.failure
    assert compared in check.message


def test_lengths_property_needs_packed_or_lengths():
    record = run(NumpyAdapter(), ["lengths"])
    assert record.checks[0].status == "pass" and record.checks[0].examples > 0
    no_lengths = type("NoLengths", (MaskedLengthsAdapter,),
                      {"supports": Supports(lengths=False, gradients="autograd")})()
    check = run(no_lengths, ["lengths"]).checks[0]
    assert check.status == "unsupported"
    assert check.message == "needs packed or lengths, which the implementation does not support"
