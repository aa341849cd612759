"""PackedSequence batches (parity.packed): caught with the right cause, and no false alarms."""

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from parity import as_adapter
from parity.adapter import InvalidArgument, LSTMConfig
from parity.cases import CaseSpec
from parity import packed
from parity.packed import MISTAKES, simulate

from .lstms.correct import TextbookLSTM
from .lstms.packed_broken import PACKED_BROKEN, StateDetachedPastLength
from .lstms.packed_correct import PACKED_CORRECT, MaskedPackedLSTM
from .verdicts import assert_no_false_alarm

CAUSES = {m.name: m.cause for m in MISTAKES}
PACKED_BROKEN_BY_NAME = {cls.__name__: cls for cls in PACKED_BROKEN}
BROKEN = "tests.harness.lstms.packed_broken"
CORRECT = "tests.harness.lstms.packed_correct"


@pytest.mark.parametrize("cls", list(PACKED_BROKEN), ids=lambda c: c.__name__)
def test_packed_bug_is_caught_with_its_cause(check_lstm, cls):
    record = check_lstm(cls, BROKEN, checks=["packed"], seed=1)
    check = record.checks[0]
    assert check.status == "fail", check.message
    assert check.failure["likely_cause"] == CAUSES[PACKED_BROKEN[cls]], check.failure
    # The failure names the lengths and the order, and --case reproduces it.
    assert "lengths=" in check.failure["case_id"]
    again = check_lstm(cls, BROKEN, checks=["packed"],
                       case=CaseSpec.from_string(check.failure["case_id"])).checks[0]
    assert again.status == "fail"
    assert again.failure["likely_cause"] == check.failure["likely_cause"]


def test_a_backward_that_does_not_follow_the_lengths_is_caught_by_its_own_differences(
        check_lstm):
    # The forward matches nn.LSTM on every packed batch; only the gradients are wrong, and
    # differences of its own forward on the packed batch say that the backward is the culprit.
    record = check_lstm(StateDetachedPastLength, BROKEN, checks=["packed"], seed=1)
    check = record.checks[0]
    assert check.status == "fail", check.message
    assert check.failure["likely_cause"] == packed.BACKWARD_CAUSE, check.failure
    compared = {c["where"].get("compared", "") for c in check.failure["comparisons"]}
    assert any(w.startswith("its gradients vs differences of its own forward") for w in compared)


@pytest.mark.parametrize("cls", PACKED_CORRECT, ids=lambda c: c.__name__)
def test_correct_packed_lstm_passes(check_lstm, cls):
    record = check_lstm(cls, CORRECT, checks=["packed"], seed=2)
    assert record.checks[0].examples > 0
    assert record.features["packed"]["cases"] > 0
    assert_no_false_alarm(record)


def test_nn_lstm_passes_packed():
    adapter = as_adapter(torch.nn.LSTM, name="torch")
    assert adapter.supports.packed
    from parity import check_implementation
    record = check_implementation(adapter, checks=("packed",), seed=3, max_examples=20,
                                  time_budget=3600.0)
    assert record.checks[0].examples > 0
    assert_no_false_alarm(record)


def test_lookalike_without_packed_input_is_unsupported(check_lstm):
    adapter = as_adapter(TextbookLSTM, name="textbook")
    assert not adapter.supports.packed
    record = check_lstm(TextbookLSTM, "tests.harness.lstms.correct", checks=["packed"])
    assert record.checks[0].status == "unsupported"
    assert as_adapter(MaskedPackedLSTM, name="masked").supports.packed


def test_case_spec_lengths_round_trip():
    text = "input_size=2,hidden_size=3,seq_len=5,batch=4,dtype=float64,initial_state=none," \
           "seed=1,lengths=2;5;3;1,enforce_sorted=false"
    spec = CaseSpec.from_string(text)
    assert spec.lengths == (2, 5, 3, 1) and not spec.enforce_sorted
    assert spec.to_string() == text
    assert "packed" in spec.features()
    # Shrinking keeps the lengths valid: fewer rows, shorter sequences, sorted.
    assert spec.replace(batch=2).lengths == (2, 5)
    assert spec.replace(seq_len=2).lengths == (2, 2, 2, 1)
    assert spec.replace(enforce_sorted=True).lengths == (5, 3, 2, 1)


@pytest.mark.parametrize("text, why", [
    ("lengths=2;5;3;1", "decreasing"),
    ("lengths=5;3", "one length per row"),
    ("lengths=6;3;3;1", "1..seq_len"),
    ("lengths=0;3;3;1,enforce_sorted=false", "1..seq_len"),
])
def test_case_spec_rejects_bad_lengths(text, why):
    with pytest.raises(InvalidArgument, match=why):
        CaseSpec.from_string(f"input_size=2,hidden_size=3,seq_len=5,batch=4,{text}")


def test_rerun_without_mistake_is_nn_lstm_on_the_packed_batch():
    """The reruns the causes rest on agree with nn.LSTM where no mistake is built in."""
    config = LSTMConfig(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2,
                         dtype=torch.float64)
    params = {n: p.detach().numpy() for n, p in lstm.named_parameters()}
    lengths = np.array([4, 6, 1])
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    h0, c0 = torch.randn(4, 3, 2, dtype=torch.float64), torch.randn(4, 3, 5, dtype=torch.float64)
    out, (h_n, c_n) = lstm(pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False),
                           (h0, c0))
    want, _ = pad_packed_sequence(out)
    got, gh, gc = simulate(config, params, x.numpy(), (h0.numpy(), c0.numpy()),
                           forward_steps=lengths, final_step=lengths, reverse_start=lengths - 1)
    np.testing.assert_allclose(got, want.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(gh, h_n.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(gc, c_n.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("cls, cause", [
    (PACKED_BROKEN_BY_NAME["FinalStateAfterPadding"], "depends on the rest of the batch"),
    (PACKED_BROKEN_BY_NAME["FinalStateSortedOrder"], "depends on the batch's order"),
], ids=lambda v: getattr(v, "__name__", ""))
def test_lengths_property_catches_without_a_reference(check_lstm, cls, cause):
    check = check_lstm(cls, BROKEN, checks=["lengths"], seed=1).checks[0]
    assert check.status == "fail", check.message
    assert cause in check.failure["likely_cause"]


@pytest.mark.parametrize("cls", (*PACKED_CORRECT, torch.nn.LSTM), ids=lambda c: c.__name__)
def test_lengths_property_passes_correct(check_lstm, cls):
    module = "torch.nn" if cls is torch.nn.LSTM else CORRECT
    record = check_lstm(cls, module, checks=["lengths"], seed=4, max_examples=12)
    assert record.checks[0].examples > 0
    assert_no_false_alarm(record)
