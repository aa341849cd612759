"""The weight converters: exact round trips, and each layout as the frameworks document it.

Pure NumPy: no framework needed. That the converted weights compute nn.LSTM's function in each
framework is what `tests/frameworks/` checks, through the adapters that use these converters.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from parity import LSTMConfig, Supports, lstm_configs, parameter_shapes
from parity import convert

ONE_BIAS = {"flax": (convert.to_flax, convert.from_flax),
            "equinox": (convert.to_equinox, convert.from_equinox),
            "keras": (convert.to_keras, convert.from_keras)}
ALL = {**ONE_BIAS, "onnx": (convert.to_onnx, convert.from_onnx)}

configs = lstm_configs(Supports(projection=False), max_input=9, max_hidden=9)


def random_parameters(config: LSTMConfig, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s) for n, s in parameter_shapes(config).items()}


def assert_same_tree(a, b):
    """Equal structure, and every leaf exactly equal (NaN nowhere)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    elif a is None:
        assert b is None
    else:
        assert np.asarray(a).shape == np.asarray(b).shape
        assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("framework", ALL)
@settings(max_examples=25, deadline=None)
@given(config=configs, seed=st.integers(0, 2**16))
def test_round_trips_are_exact(framework, config, seed):
    to, back = ALL[framework]
    p = random_parameters(config, seed)
    there = to(p, config)
    # from(to(p)): p itself where the layout keeps both biases, else p with the biases folded.
    want = p if framework == "onnx" else convert.fold_biases(p, config)
    assert_same_tree(back(there, config), want)
    # to(from(x)) == x for anything the framework holds.
    assert_same_tree(to(back(there, config), config), there)


@pytest.mark.parametrize("framework", ONE_BIAS)
def test_folded_bias_is_the_sum(framework):
    config = LSTMConfig(input_size=2, hidden_size=3)
    p = random_parameters(config, 0)
    back = ONE_BIAS[framework][1](ONE_BIAS[framework][0](p, config), config)
    np.testing.assert_array_equal(back["bias_ih_l0"], p["bias_ih_l0"] + p["bias_hh_l0"])
    np.testing.assert_array_equal(back["bias_hh_l0"], np.zeros(12))


def gate_labelled(config: LSTMConfig) -> dict[str, np.ndarray]:
    """Every weight's and bias's gate block filled with its gate's number: i 1, f 2, g 3, o 4;
    bias_hh's with ten times that, so a fold shows as 11, 22, 33, 44; reverse direction negated."""
    h, p = config.hidden_size, {}
    for name, shape in parameter_shapes(config).items():
        labels = np.repeat([1.0, 2.0, 3.0, 4.0], h)
        labels = labels * (10 if name.startswith("bias_hh") else 1)
        labels = labels * (-1 if name.endswith("_reverse") else 1)
        p[name] = np.broadcast_to(labels.reshape((4 * h,) + (1,) * (len(shape) - 1)),
                                  shape).copy()
    return p


CONFIG = LSTMConfig(input_size=2, hidden_size=3, num_layers=2, bidirectional=True)


def test_onnx_layout_is_iofc_directions_stacked():
    nodes = convert.to_onnx(gate_labelled(CONFIG), CONFIG)
    assert [sorted(n) for n in nodes] == [["B", "R", "W"]] * 2
    w, r, b = nodes[1]["W"], nodes[1]["R"], nodes[1]["B"]
    assert w.shape == (2, 12, 6) and r.shape == (2, 12, 3) and b.shape == (2, 24)
    # ONNX's gate order is i, o, f, c: canonical blocks 1 (i), 4 (o), 2 (f), 3 (g).
    assert list(w[0, ::3, 0]) == [1, 4, 2, 3] and list(w[1, ::3, 0]) == [-1, -4, -2, -3]
    assert list(r[0, ::3, 0]) == [1, 4, 2, 3]
    assert list(b[0, ::3]) == [1, 4, 2, 3, 10, 40, 20, 30]


def test_keras_layout_is_transposed_ifco_one_bias():
    weights = convert.to_keras(gate_labelled(CONFIG), CONFIG)
    assert [len(w) for w in weights] == [6, 6]  # Bidirectional: forward's 3, then backward's
    kernel, recurrent, bias = weights[0][:3]
    assert kernel.shape == (2, 12) and recurrent.shape == (3, 12) and bias.shape == (12,)
    assert list(kernel[0, ::3]) == [1, 2, 3, 4]  # columns i, f, c, o
    assert list(bias[::3]) == [11, 22, 33, 44]
    assert list(weights[0][3][0, ::3]) == [-1, -2, -3, -4]  # the backward layer's kernel


def test_flax_layout_is_one_kernel_per_gate_bias_on_the_hidden_side():
    params = convert.to_flax(gate_labelled(CONFIG), CONFIG)
    assert sorted(params) == ["layer_0", "layer_1"]
    assert sorted(params["layer_1"]) == ["backward_rnn", "forward_rnn"]
    cell = params["layer_0"]["forward_rnn"]["cell"]
    assert sorted(cell) == ["hf", "hg", "hi", "ho", "if", "ig", "ii", "io"]
    assert sorted(cell["ii"]) == ["kernel"] and sorted(cell["hi"]) == ["bias", "kernel"]
    assert cell["if"]["kernel"].shape == (2, 3) and cell["hf"]["kernel"].shape == (3, 3)
    assert np.all(cell["if"]["kernel"] == 2) and np.all(cell["ho"]["bias"] == 44)
    assert np.all(params["layer_1"]["backward_rnn"]["cell"]["ig"]["kernel"] == -3)


def test_equinox_layout_is_pytorchs_with_one_bias():
    cells = convert.to_equinox(gate_labelled(CONFIG), CONFIG)
    assert [len(c) for c in cells] == [2, 2]
    assert cells[1][1]["weight_ih"].shape == (12, 6)
    assert list(cells[0][0]["bias"][::3]) == [11, 22, 33, 44]


def test_without_bias():
    config = LSTMConfig(input_size=2, hidden_size=3, bias=False)
    p = random_parameters(config, 1)
    assert len(convert.to_keras(p, config)[0]) == 2
    assert convert.to_equinox(p, config)[0][0]["bias"] is None
    assert "B" not in convert.to_onnx(p, config)[0]
    assert np.all(convert.to_flax(p, config)["layer_0"]["cell"]["hi"]["bias"] == 0)
    for framework, (to, back) in ALL.items():
        assert_same_tree(back(to(p, config), config), p)


def test_what_a_layout_cannot_hold_is_an_error():
    projected = LSTMConfig(input_size=2, hidden_size=3, proj_size=2)
    for framework, (to, back) in ALL.items():
        with pytest.raises(ValueError, match="no projection"):
            to(random_parameters(projected, 0), projected)
    config = LSTMConfig(input_size=2, hidden_size=3)
    no_bias = LSTMConfig(input_size=2, hidden_size=3, bias=False)
    with pytest.raises(ValueError, match="bias is not zero"):
        convert.from_equinox(convert.to_equinox(random_parameters(config, 0), config), no_bias)
    with pytest.raises(ValueError, match="needs 2"):
        convert.from_keras(convert.to_keras(random_parameters(config, 0), config), no_bias)
    with pytest.raises(ValueError, match="missing"):
        convert.to_onnx({}, config)
    with pytest.raises(ValueError, match="shape"):
        convert.from_keras(convert.to_keras(random_parameters(config, 0), config),
                           LSTMConfig(input_size=5, hidden_size=3))


def test_to_works_on_tensors_so_frameworks_differentiate_through_it():
    config = LSTMConfig(input_size=2, hidden_size=3)
    p = {n: torch.tensor(a, requires_grad=True)
         for n, a in random_parameters(config, 2).items()}
    kernel, recurrent, bias = convert.to_keras(p, config)[0]
    (kernel.sum() + 2 * bias.sum()).backward()
    assert torch.equal(p["weight_ih_l0"].grad, torch.ones(12, 2, dtype=torch.float64))
    assert torch.equal(p["bias_hh_l0"].grad, torch.full((12,), 2.0, dtype=torch.float64))


@settings(max_examples=25, deadline=None)
@given(config=configs, seed=st.integers(0, 2**16))
def test_haiku_round_trips_exactly(config, seed):
    """Integer-valued parameters, so that moving Haiku's forget-gate +1 in and out is exact."""
    p = {n: np.round(a * 8) for n, a in random_parameters(config, seed).items()}
    there = convert.to_haiku(p, config)
    assert_same_tree(convert.from_haiku(there, config), convert.fold_biases(p, config))
    assert_same_tree(convert.to_haiku(convert.from_haiku(there, config), config), there)


def test_haiku_layout():
    """One Linear on [x, h] (x @ w), gate columns i, g, f, o, the forget gate's bias less 1."""
    config = LSTMConfig(input_size=2, hidden_size=3, bidirectional=True)
    p = gate_labelled(config)
    node = convert.to_haiku(p, config)["lstm_l0_reverse/linear"]
    assert node["w"].shape == (2 + 3, 12)
    np.testing.assert_array_equal(node["w"][0], -np.repeat([1.0, 3.0, 2.0, 4.0], 3))
    np.testing.assert_array_equal(node["b"], -np.repeat([11.0, 33.0, 22.0 + 1.0, 44.0], 3))
    no_bias = convert.to_haiku(gate_labelled(LSTMConfig(2, 3, bias=False)),
                               LSTMConfig(2, 3, bias=False))["lstm_l0/linear"]
    np.testing.assert_array_equal(no_bias["b"], np.repeat([0.0, 0.0, -1.0, 0.0], 3))


# -- the layouts the adapters state (parity.Layout, shown by `parity table`) ---------------------
GATE_NAMES = {1.0: "i", 2.0: "f", 3.0: "g", 4.0: "o"}


def _stored(blocks) -> tuple[str, int]:
    """(gate order, biases) read off a converter's output for the forward direction of layer
    0 of `gate_labelled`: `blocks` is (the weight's gate blocks, as they are stored; the stored
    biases' values, one array each)."""
    weight, biases = blocks
    order = ", ".join(GATE_NAMES[float(v)] for v in weight)
    return order, len(biases)


def _read_onnx(config):
    node = convert.to_onnx(gate_labelled(config), config)[0]
    h = config.hidden_size
    return node["W"][0, ::h, 0], np.split(node["B"][0], 2)  # B: [Wb, Rb]


def _read_keras(config):
    kernel, _recurrent, bias = convert.to_keras(gate_labelled(config), config)[0][:3]
    return kernel[0, ::config.hidden_size], [bias]


def _read_haiku(config):
    node = convert.to_haiku(gate_labelled(config), config)["lstm_l0/linear"]
    return node["w"][0, ::config.hidden_size], [node["b"]]


def _read_equinox(config):
    cell = convert.to_equinox(gate_labelled(config), config)[0][0]
    return cell["weight_ih"][::config.hidden_size, 0], [cell["bias"]]


def _read_flax(config):
    cell = convert.to_flax(gate_labelled(config), config)["layer_0"]["cell"]
    # One Dense per gate, named for nn.LSTM's gate: the order is by name.
    order = [cell["i" + g]["kernel"][0, 0] for g in "ifgo"]
    return order, [np.concatenate([cell[s + g].get("bias", []) for g in "ifgo"])
                   for s in "ih" if any("bias" in cell[s + g] for g in "ifgo")]


def _read_by_name(adapter_method):
    """Adapters that set nn.LSTM's names as they are: what they hand over is what they got."""
    def read(config):
        p = gate_labelled(config)
        given = adapter_method(p, config)
        assert given.keys() == p.keys() and all(given[n] is p[n] for n in p)
        return p["weight_ih_l0"][::config.hidden_size, 0], [p["bias_ih_l0"], p["bias_hh_l0"]]
    return read


def _stated_layouts():
    from parity_implementations.equinox_lstm import EquinoxAdapter
    from parity_implementations.flax_lstm import FlaxAdapter
    from parity_implementations.haiku_lstm import HaikuAdapter
    from parity_implementations.keras_lstm import KerasAdapter
    from parity_implementations.keras_tf_lstm import KerasTensorFlowAdapter
    from parity_implementations.mindspore_lstm import MindSporeAdapter
    from parity_implementations.onnx_lstm import OnnxReferenceAdapter, OnnxRuntimeAdapter
    from parity_implementations.paddle_lstm import PaddleAdapter

    return [(OnnxRuntimeAdapter, _read_onnx), (OnnxReferenceAdapter, _read_onnx),
            (KerasAdapter, _read_keras), (KerasTensorFlowAdapter, _read_keras),
            (HaikuAdapter, _read_haiku), (EquinoxAdapter, _read_equinox),
            (FlaxAdapter, _read_flax),
            (PaddleAdapter, _read_by_name(PaddleAdapter().paddle_parameters)),
            (MindSporeAdapter, _read_by_name(MindSporeAdapter().mindspore_parameters))]


@pytest.mark.parametrize("index", range(9))
def test_each_adapters_stated_layout_is_what_its_converter_writes(index):
    """The gate order and bias count `parity table` shows come from the adapter's `layout`;
    here they are read back off what the adapter actually hands its framework."""
    adapter, read = _stated_layouts()[index]
    config = LSTMConfig(input_size=2, hidden_size=3)
    order, biases = _stored(read(config))
    assert (adapter.layout.gate_order, adapter.layout.biases) == (order, biases), adapter.name


def test_a_layout_must_name_each_gate_once_and_one_or_two_biases():
    from parity import InvalidArgument, Layout

    assert Layout().to_dict() == {"gate_order": "i, f, g, o", "biases": 2,
                                  "weights": Layout().weights}
    with pytest.raises(InvalidArgument, match="gate_order='i, f, f, o'"):
        Layout(gate_order="i, f, f, o")
    with pytest.raises(InvalidArgument, match="biases=3"):
        Layout(biases=3)
