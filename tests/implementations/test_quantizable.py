"""torch.ao.nn.quantizable.LSTM (float mode): each known divergence shown with plain torch on a
minimal case, independently of the harness; then the harness on the registered adapter, with
its declarations and with one removed.
"""

import pytest
import torch
from torch import nn
from torch.ao.nn.quantizable import LSTM as QuantizableLSTM

from parity_implementations.quantizable_lstm import KNOWN_DIVERGENCES, QuantizableAdapter
from parity import check_implementation

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # its dropout warning


def _copy_weights(quantizable: nn.Module, reference: nn.LSTM) -> None:
    """nn.LSTM's weights into the quantizable LSTM's igates/hgates, by hand."""
    with torch.no_grad():
        for layer, block in enumerate(quantizable.layers):
            for direction, side in enumerate(("layer_fw", "layer_bw")):
                if not hasattr(block, side) or getattr(block, side) is None:
                    continue
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                cell = getattr(block, side).cell
                cell.igates.weight.copy_(getattr(reference, "weight_ih" + sfx))
                cell.igates.bias.copy_(getattr(reference, "bias_ih" + sfx))
                cell.hgates.weight.copy_(getattr(reference, "weight_hh" + sfx))
                cell.hgates.bias.copy_(getattr(reference, "bias_hh" + sfx))


@pytest.mark.parametrize("kwargs, shape", [
    ({"num_layers": 2}, (5, 2, 3)),
    ({"bidirectional": True}, (5, 2, 3)),
    ({"batch_first": True}, (2, 5, 3)),
])
def test_where_it_agrees_with_nn_lstm(kwargs, shape):
    """With nn.LSTM's weights, batched float32 input: the same numbers (so the declarations
    below are what differs, not the gate order or the biases)."""
    torch.manual_seed(0)
    reference = nn.LSTM(3, 4, **kwargs).eval()
    quantizable = QuantizableLSTM(3, 4, **kwargs).eval()
    _copy_weights(quantizable, reference)
    x = torch.randn(shape)
    with torch.no_grad():
        got, (h, c) = quantizable(x)
        want, (h_want, c_want) = reference(x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(h, h_want)
    torch.testing.assert_close(c, c_want)


def test_bidirectional_layers_after_the_first_are_built_too_narrow():
    quantizable = QuantizableLSTM(3, 4, num_layers=2, bidirectional=True)
    # nn.LSTM's second layer reads both directions of the first: 2 * hidden_size wide.
    assert nn.LSTM(3, 4, num_layers=2, bidirectional=True).weight_ih_l1.shape == (16, 8)
    assert quantizable.layers[1].layer_fw.cell.igates.in_features == 4
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        quantizable(torch.randn(5, 2, 3))


def test_float64_input_without_a_state_meets_float32_zeros():
    quantizable = QuantizableLSTM(3, 4, dtype=torch.float64).eval()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="same dtype"):
        quantizable(x)
    zeros = torch.zeros(1, 2, 4, dtype=torch.float64)
    output, _ = quantizable(x, (zeros, zeros))  # the same zeros, given in float64: runs
    assert output.dtype == torch.float64
    # nn.LSTM makes its zeros in the input's dtype.
    assert nn.LSTM(3, 4, dtype=torch.float64)(x)[0].dtype == torch.float64


def test_unbatched_input_is_read_as_a_batch_of_input_size_rows():
    quantizable = QuantizableLSTM(3, 4).eval()
    x = torch.randn(5, 3)  # (seq_len, input_size), no batch dimension
    with torch.no_grad():
        output, (h, c) = quantizable(x)
        want, (h_want, _) = nn.LSTM(3, 4)(x)
    assert want.shape == (5, 4) and h_want.shape == (1, 4)
    assert output.shape == (5, 3, 4) and h.shape == (1, 3, 4)  # batch = input_size = 3
    with pytest.raises(RuntimeError, match="is invalid for input of size"):
        quantizable(x, (torch.zeros(1, 4), torch.zeros(1, 4)))  # nn.LSTM's unbatched state


def test_an_empty_batch_raises_where_nn_lstm_returns_empty_tensors():
    x = torch.zeros(5, 0, 3)
    assert nn.LSTM(3, 4)(x)[0].shape == (5, 0, 4)
    with pytest.raises(RuntimeError, match="cannot reshape tensor of 0 elements"):
        QuantizableLSTM(3, 4).eval()(x)


def test_the_harness_shows_every_declaration_as_known():
    record = check_implementation(QuantizableAdapter(), checks=("output", "training"), seed=0,
                                  max_examples=10, time_budget=3600.0)
    output, training = record.checks
    assert output.status == "known" and training.status == "known"
    declared = [d for d in KNOWN_DIVERGENCES if "output" in d.checks]
    assert [k["cause"] for k in output.known] == [d.cause for d in declared]
    assert all(k["status"] == "known" and k["evidence"] for k in output.known)
    assert record.status == "pass"


def test_the_harness_fails_with_a_declaration_removed():
    class Undeclared(QuantizableAdapter):
        known_divergences = KNOWN_DIVERGENCES[1:]  # the bidirectional layers' width

    record = check_implementation(Undeclared(), checks=("output",), seed=0, max_examples=10,
                                  time_budget=3600.0)
    [output] = record.checks
    assert output.status == "wrong-parameters"
    assert "the module builds `layers.1.layer_fw.cell.igates.weight` as" in output.message
    case = output.failure["case"]
    assert case["num_layers"] >= 2 and case["bidirectional"]
