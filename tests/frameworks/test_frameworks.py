"""The JAX, Flax, Equinox, Keras and ONNX adapters and converters, with their frameworks.

Needs the extras (``pip install -e '.[all]'``); marked ``frameworks``, deselected by default and
run by ``tox -e frameworks``, which also runs ``python -m parity check`` over the six adapters.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

from parity import CaseSpec, LSTMConfig, as_adapter, check_implementation
from parity.convert import from_equinox, from_flax, from_keras

from . import misconverted

pytestmark = pytest.mark.frameworks

FORWARD = ("output", "h_n", "c_n")


def checked(cls, checks=FORWARD, seed=0, max_examples=10, case=None):
    target = f"tests.frameworks.misconverted:{cls.__name__}"
    return check_implementation(as_adapter(cls, name=target, target=target), checks=checks,
                                seed=seed, max_examples=max_examples, time_budget=3600.0,
                                case=None if case is None else CaseSpec.from_string(case))


# -- each mistake caught, its cause named -------------------------------------------------------
MISTAKES = [
    (misconverted.KerasGatesIFOC, "output",
     "gate order: the implementation reads the gate blocks as i, f, o, g"),
    (misconverted.FlaxBiasNotFolded, "output", "bias: bias_ih is ignored"),
    (misconverted.OnnxTorchGateOrder, "output",
     "gate order: the implementation reads the gate blocks as i, o, f, g"),
    (misconverted.OnnxOutputReadAsTBDH, "output",
     "layout: the output's batch and direction axes are swapped"),
    (misconverted.JaxReverseOutputUnflipped, "output",
     "reverse direction: its outputs are in reverse time order"),
]


@pytest.mark.parametrize("cls, check, cause", MISTAKES, ids=[m[0].__name__ for m in MISTAKES])
def test_mis_conversion_is_caught_and_named(cls, check, cause):
    record = checked(cls, checks=(check,))
    result = record.checks[0]
    assert result.status == "fail", result.message
    print(f"{cls.__name__}: {result.failure['case_id']}\n  likely cause: "
          f"{result.failure['likely_cause']}")
    assert result.failure["likely_cause"].startswith(cause), result.failure["likely_cause"]


def test_flax_optimized_cell_passes():
    from parity_implementations.flax_lstm import FlaxOptimizedAdapter

    record = check_implementation(as_adapter(FlaxOptimizedAdapter, name="flax-optimized"),
                                  checks=FORWARD + ("gradients",), seed=0, max_examples=4,
                                  time_budget=3600.0)
    assert [c.status for c in record.checks] == ["pass"] * 4


# -- porting a framework's own weights to torch with from_* --------------------------------------
def torch_lstm(config, params, x, batch_first=True):
    module = torch.nn.LSTM(**config.as_dict(), dtype=torch.float64)
    module.batch_first = batch_first
    module.load_state_dict({n: torch.tensor(np.asarray(a, np.float64)) for n, a in params.items()})
    with torch.no_grad():
        y, (h, c) = module(torch.tensor(np.asarray(x, np.float64)))
    return y.numpy(), h.numpy(), c.numpy()


X = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)  # (B, T, I)


def test_keras_weights_ported_with_from_keras_compute_the_same_in_torch():
    from parity_implementations.keras_lstm import import_keras

    keras = import_keras()
    config = LSTMConfig(input_size=3, hidden_size=4, bidirectional=True)
    layer = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True,
                                                         return_state=True,
                                                         bias_initializer="random_normal"))
    y, h_f, c_f, h_b, c_b = (t.detach().numpy() for t in layer(X))
    want_y, want_h, want_c = torch_lstm(config, from_keras([layer.get_weights()], config), X)
    np.testing.assert_allclose(y, want_y, atol=1e-5)
    np.testing.assert_allclose(np.stack([h_f, h_b]), want_h, atol=1e-5)
    np.testing.assert_allclose(np.stack([c_f, c_b]), want_c, atol=1e-5)


def test_flax_weights_ported_with_from_flax_compute_the_same_in_torch():
    import flax.linen as nn
    import jax

    config = LSTMConfig(input_size=3, hidden_size=4)
    rnn = nn.RNN(nn.LSTMCell(4, bias_init=nn.initializers.normal(1.0)), return_carry=True)
    variables = rnn.init(jax.random.PRNGKey(1), X)
    (c, h), y = rnn.apply(variables, X)
    want_y, want_h, want_c = torch_lstm(config, from_flax({"layer_0": variables["params"]},
                                                          config), X)
    np.testing.assert_allclose(np.asarray(y), want_y, atol=1e-5)
    np.testing.assert_allclose(np.asarray(h), want_h[0], atol=1e-5)
    np.testing.assert_allclose(np.asarray(c), want_c[0], atol=1e-5)


def test_equinox_weights_ported_with_from_equinox_compute_the_same_in_torch():
    import equinox as eqx
    import jax

    config = LSTMConfig(input_size=3, hidden_size=4)
    cell = eqx.nn.LSTMCell(3, 4, key=jax.random.PRNGKey(2))
    state = (np.zeros(4, np.float32), np.zeros(4, np.float32))
    ys = []
    for x_t in X[0]:
        state = cell(x_t, state)
        ys.append(np.asarray(state[0]))
    want_y, want_h, want_c = torch_lstm(config, from_equinox([[cell]], config), X[:1])
    np.testing.assert_allclose(np.stack(ys), want_y[0], atol=1e-5)
    np.testing.assert_allclose(np.asarray(state[1]), want_c[0, 0], atol=1e-5)


# -- the environment ----------------------------------------------------------------------------
def test_importing_parity_and_listing_import_no_framework():
    code = ("import sys, parity, parity_implementations.jax_lstm, parity_implementations.flax_lstm, "
            "parity_implementations.equinox_lstm, parity_implementations.keras_lstm, "
            "parity_implementations.onnx_lstm; from parity.cli import main; main(['list']); "
            "print(sorted(m for m in ('jax', 'flax', 'equinox', 'keras', 'onnx', "
            "'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_keras_imported_with_another_backend_is_refused_clearly():
    code = ("import os; os.environ['KERAS_BACKEND'] = 'jax'; import keras; "
            "from parity_implementations.keras_lstm import import_keras; import_keras()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "keras was imported with the 'jax' backend" in out.stderr


def test_float32_stays_float32_after_x64_is_on():
    from parity_implementations.jax_lstm import JaxAdapter

    config = LSTMConfig(input_size=2, hidden_size=3)
    params = {n: np.ones(s, np.float32) * 0.1 for n, s in
              __import__("parity").parameter_shapes(config).items()}
    JaxAdapter().build(config, params, "float64")  # switches jax_enable_x64 on
    y, (h, c) = JaxAdapter().build(config, params, "float32").forward(
        np.ones((4, 1, 2), np.float32), None)
    assert y.dtype == h.dtype == c.dtype == np.float32
