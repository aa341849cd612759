"""MindSpore's `mindspore.nn.LSTM`: its layout, a porting mistake caught and named, and each way
it differs from nn.LSTM shown with MindSpore and torch alone (no harness).

Needs ``pip install -e '.[mindspore]'`` (NumPy 1: docs/frameworks.md); marked ``mindspore``,
deselected by default and run by ``tox -e mindspore`` (not by ``tox -e frameworks``: the
extra holds NumPy back, so it has an environment of its own).
"""

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from parity import LSTMConfig, Supports, lstm_configs, parameter_shapes
from parity.isolation import Options, check_isolated, load_isolated

pytestmark = pytest.mark.mindspore


@pytest.fixture(scope="module")
def ms():
    from parity_implementations.mindspore_lstm import import_mindspore

    return import_mindspore()


def _pair(ms, config: LSTMConfig, dtype=torch.float32, seed=0):
    """nn.LSTM and mindspore.nn.LSTM holding the same weights, set by name."""
    torch.manual_seed(seed)
    ref = torch.nn.LSTM(**config.as_dict(), dtype=dtype)
    lstm = ms.nn.LSTM(config.input_size, config.hidden_size, num_layers=config.num_layers,
                      has_bias=config.bias, batch_first=config.batch_first,
                      bidirectional=config.bidirectional,
                      dtype=ms.float64 if dtype == torch.float64 else ms.float32)
    own = dict(lstm.parameters_and_names())
    for name, p in ref.named_parameters():
        own[name].set_data(ms.Tensor(p.detach().numpy()))
    return ref, lstm


# -- its layout is nn.LSTM's: no converter ----------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(config=lstm_configs(Supports(projection=False), max_input=9, max_hidden=9, wide=False),
       seed=st.integers(0, 2**16))
def test_its_parameters_are_nn_lstms_by_name_shape_and_value(ms, config, seed):
    """Every canonical name is a MindSpore parameter of that shape, and what is set by name is
    what it holds (so the adapter sets them as they are)."""
    lstm = ms.nn.LSTM(config.input_size, config.hidden_size, num_layers=config.num_layers,
                      has_bias=config.bias, bidirectional=config.bidirectional)
    own = dict(lstm.parameters_and_names())
    shapes = parameter_shapes(config)
    assert {n: tuple(p.shape) for n, p in own.items()} == shapes
    rng = np.random.default_rng(seed)
    params = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    for n, a in params.items():
        own[n].set_data(ms.Tensor(a))
    for n, a in params.items():
        np.testing.assert_array_equal(own[n].asnumpy(), a)


def test_it_computes_nn_lstms_function_in_float32_gate_order_included(ms):
    config = LSTMConfig(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    ref, lstm = _pair(ms, config)
    x = np.random.default_rng(1).standard_normal((5, 2, 3)).astype(np.float32)
    with torch.no_grad():
        want, (want_h, want_c) = ref(torch.tensor(x))
    got, (h, c) = lstm(ms.Tensor(x))
    np.testing.assert_allclose(got.asnumpy(), want.numpy(), atol=1e-6)
    np.testing.assert_allclose(h.asnumpy(), want_h.numpy(), atol=1e-6)
    np.testing.assert_allclose(c.asnumpy(), want_c.numpy(), atol=1e-6)


# -- a porting mistake, caught and named ------------------------------------------------------
def test_weights_in_ascends_gate_order_are_caught_and_named():
    target = "tests.frameworks.misconverted:MindSporeAscendGateOrder"
    options = Options(checks=("output",), seed=0, max_examples=10, time_budget=3600.0,
                      threads=1)
    [record] = check_isolated([target], load_isolated([target], options), options)
    [result] = record.checks
    assert result.status == "fail", result.message
    assert result.failure["likely_cause"].startswith(
        "gate order: the implementation reads the gate blocks as i, g, f, o"), \
        result.failure["likely_cause"]


# -- the divergences declared (parity_implementations.mindspore_lstm.KNOWN_DIVERGENCES) --------
def test_it_raises_on_unbatched_input(ms):
    """nn.LSTM reads (seq_len, input_size) as one sequence; MindSpore's kernel wants rank 3."""
    _, lstm = _pair(ms, LSTMConfig(input_size=3, hidden_size=4))
    x = np.zeros((5, 3), np.float32)
    assert tuple(torch.nn.LSTM(3, 4)(torch.tensor(x))[0].shape) == (5, 4)
    with pytest.raises(ValueError, match=r"x_shape\.size\(\) must be equal to 3, but got 2"):
        lstm(ms.Tensor(x))


def test_it_raises_on_an_empty_batch(ms):
    """Not drawn: after other calls in the process it has crashed it (SIGFPE) instead."""
    _, lstm = _pair(ms, LSTMConfig(input_size=3, hidden_size=4))
    x = np.zeros((5, 0, 3), np.float32)
    assert tuple(torch.nn.LSTM(3, 4)(torch.tensor(x))[0].shape) == (5, 0, 4)
    with pytest.raises(RuntimeError, match="could not execute a primitive"):
        lstm(ms.Tensor(x))


def test_the_check_is_known_with_the_declaration_and_fails_without_it():
    from parity import check_implementation
    from parity_implementations.mindspore_lstm import KNOWN_DIVERGENCES, MindSporeAdapter

    [unbatched] = KNOWN_DIVERGENCES

    def check(declared):
        class Adapter(MindSporeAdapter):
            known_divergences = declared

        record = check_implementation(Adapter(), checks=("unbatched",), seed=0,
                                      max_examples=5, time_budget=3600.0)
        return record.checks[0]

    declared = check(KNOWN_DIVERGENCES)
    assert declared.status == "known"
    assert [(k["cause"], k["status"]) for k in declared.known] == [(unbatched.cause, "known")]
    undeclared = check(())
    assert undeclared.status == "error" and undeclared.failure["case"]["batch"] is None
    assert "x_shape.size() must be equal to 3" in undeclared.message


# -- float64, not drawn (Supports(float64=False)): why ----------------------------------------
def test_float64_with_an_initial_state_raises(ms):
    config = LSTMConfig(input_size=3, hidden_size=4)
    _, lstm = _pair(ms, config, torch.float64)
    x, s = np.zeros((5, 2, 3)), ms.Tensor(np.zeros((1, 2, 4)))
    with pytest.raises(TypeError, match="must be one of Float32, Float16, but got Float64"):
        lstm(ms.Tensor(x), (s, s))


_FLOAT64 = """
import numpy as np, torch, mindspore as ms
def pair(i, h, dtype):
    torch.manual_seed(0)
    ref = torch.nn.LSTM(i, h, dtype=dtype)
    lstm = ms.nn.LSTM(i, h, dtype=ms.float64 if dtype == torch.float64 else ms.float32)
    own = dict(lstm.parameters_and_names())
    for n, p in ref.named_parameters():
        own[n].set_data(ms.Tensor(p.detach().numpy()))
    return ref, lstm
ref, lstm = pair(2, 3, torch.float64)
x = np.random.default_rng(0).standard_normal((4, 2, 2))
tx = torch.tensor(x, requires_grad=True)
want = ref(tx)[0]
want_grad = torch.autograd.grad(want.sum(), tx)[0].numpy()
got = lstm(ms.Tensor(x))[0]
got_grad = ms.grad(lambda x: lstm(x)[0].sum())(ms.Tensor(x)).asnumpy()
print(got.asnumpy().dtype, np.abs(got.asnumpy() - want.detach().numpy()).max(),
      np.abs(got_grad - want_grad).max())
"""


def test_float64_is_not_computed_in_float64_and_its_gradients_are_wrong():
    """Without a state float64 runs and returns float64, but never nn.LSTM's float64 result:
    from run to run (fresh processes, the same case) float32's rounding (4e-8) or wrong
    outright (0.017); its input gradient is wrong (0.17 off, or NaN). In float32 both are
    nn.LSTM's (the check passes)."""
    out = subprocess.run([sys.executable, "-c", _FLOAT64], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    dtype, forward, gradient = out.stdout.split()[-3:]
    assert dtype == "float64"
    assert float(forward) > 1e-12  # float64's rounding is ~1e-16
    assert not float(gradient) <= 1e-3  # NaN is wrong too


def test_the_mindspore_extra_installs_numpy_1():
    """MindSpore 2.10's compiled modules are built against NumPy 1 (docs/frameworks.md)."""
    code = "import numpy; print(numpy.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split(".")[0] == "1", "parity[mindspore] installs NumPy 1"


def test_graph_mode_is_refused_clearly():
    code = ("import mindspore; mindspore.set_context(mode=mindspore.GRAPH_MODE)\n"
            "from parity_implementations.mindspore_lstm import import_mindspore\n"
            "import_mindspore()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode != 0 and "needs PyNative mode" in out.stderr, out.stderr
