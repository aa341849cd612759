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
