"""Layout mistakes of a port are named: values right, misplaced.

Two mistakes a weight port makes that no rerun of nn.LSTM with another gate order or bias
reproduces: reading a (T, D, B, H) output (ONNX's Y) as (T, B, D, H), and a reverse direction
whose outputs stay in the order it computed them. Each is caught and its likely cause names it;
a correct bidirectional LSTM passes the same case.
"""

import pytest
import torch
from torch import nn

from parity import CaseSpec, as_adapter, check_implementation

from .lstms.broken import ReverseOutputNotFlipped

CASES = [
    "input_size=3,hidden_size=4,bidirectional=true,seq_len=5,batch=3",
    "input_size=3,hidden_size=4,num_layers=2,bidirectional=true,batch_first=true,seq_len=5,"
    "batch=2,initial_state=random",
]


class DirectionBatchMisread(nn.LSTM):
    """nn.LSTM whose output went through ONNX's (T, D, B, H) and came back reshaped to
    (T, B, D*H) without a transpose: directions and batch rows interleaved."""

    def forward(self, input, hx=None):
        output, state = super().forward(input, hx)
        if not self.bidirectional or input.dim() == 2:
            return output, state
        if self.batch_first:
            output = output.transpose(0, 1)
        t, b, _ = output.shape
        y = output.reshape(t, b, 2, self.hidden_size).permute(0, 2, 1, 3)  # ONNX's Y
        output = y.reshape(t, b, 2 * self.hidden_size)  # the misread
        return (output.transpose(0, 1) if self.batch_first else output), state


def run(cls, case: str):
    adapter = as_adapter(cls, name=cls.__name__)
    return check_implementation(adapter, checks=("output", "h_n"),
                                case=CaseSpec.from_string(case)).checks


@pytest.mark.parametrize("case", CASES)
def test_batch_and_direction_axes_swapped_is_named(case):
    output, h_n = run(DirectionBatchMisread, case)
    assert (output.status, h_n.status) == ("fail", "pass")
    assert output.failure["likely_cause"].startswith(
        "layout: the output's batch and direction axes are swapped")


# One layer: with two, the misplaced outputs feed layer 1 and its final state differs too
# (shrinking takes a failure found on more layers down to one).
@pytest.mark.parametrize("case", [CASES[0], CASES[1].replace("num_layers=2", "num_layers=1")])
def test_reverse_direction_stored_unflipped_is_named(case):
    output, h_n = run(ReverseOutputNotFlipped, case)
    assert (output.status, h_n.status) == ("fail", "pass")
    assert output.failure["likely_cause"].startswith(
        "reverse direction: its outputs are in reverse time order")


@pytest.mark.parametrize("case", CASES)
def test_a_correct_bidirectional_lstm_passes_the_same_cases(case):
    assert [c.status for c in run(nn.LSTM, case)] == ["pass", "pass"]


# A module that packs its weights on its first call and never refreshes the pack: the harness's
# first call uses other weights, and the cause says what the rerun on a fresh instance shows.
@pytest.mark.parametrize("case", CASES)
def test_weights_cached_from_the_first_call_are_named(case):
    from .lstms.broken import PrepackedWeightsCache

    output, h_n = run(PrepackedWeightsCache, case)
    assert (output.status, h_n.status) == ("fail", "fail")
    assert output.failure["likely_cause"].startswith(
        "state between calls: a fresh instance gives nn.LSTM's answer on this case")


class SquareWeightsSwapped(nn.LSTM):
    """Uses weight_hh on the input and weight_ih on h: it type-checks only when input_size is the
    hidden size, which is when it goes unnoticed."""

    def forward(self, input, hx=None):
        swapped = {n: getattr(self, n.replace("_ih_", "_TMP_").replace("_hh_", "_ih_")
                              .replace("_TMP_", "_hh_"))
                   for n, _ in self.named_parameters() if n.startswith("weight_")}
        return torch.func.functional_call(nn.LSTM(
            self.input_size, self.hidden_size, self.num_layers, self.bias, self.batch_first,
            0.0, self.bidirectional, self.proj_size, dtype=self.weight_ih_l0.dtype),
            {**dict(self.named_parameters()), **swapped}, (input, hx))


def test_weight_ih_and_weight_hh_swapped_are_named():
    output, h_n = run(SquareWeightsSwapped, "input_size=4,hidden_size=4,seq_len=5,batch=3")
    assert (output.status, h_n.status) == ("fail", "fail")
    assert output.failure["likely_cause"].startswith(
        "weights: weight_ih and weight_hh are used in each other's place")
