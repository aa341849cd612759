"""The other frameworks' adapters and converters (JAX, Flax, Equinox, Haiku, Keras on torch and
on TensorFlow, ONNX, PaddlePaddle), with their frameworks.

Needs the extras (``pip install -e '.[all]'``); marked ``frameworks``, deselected by default and
run by ``tox -e frameworks``, which also runs ``python -m parity check`` over the six adapters.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

from parity import LSTMConfig, as_adapter, check_implementation
from parity.cases import CaseSpec
from parity.isolation import Options, check_isolated, load_isolated
from parity.convert import from_equinox, from_flax, from_keras

from . import misconverted

pytestmark = pytest.mark.frameworks

FORWARD = ("output", "h_n", "c_n")
# Seconds of drawing a check for the flax tests that must pass (every case drawn must pass, and
# at least one is); the tests that must fail draw without a limit, so the same cases every time.
PASS_BUDGET = 10.0


def checked(cls, checks=FORWARD, seed=0, max_examples=10, case=None):
    """`cls` checked in a child process of its own, as `parity check` runs it: TensorFlow and
    PaddlePaddle cannot share a process (importing paddle after tensorflow segfaults), nor Keras
    two backends."""
    target = f"tests.frameworks.misconverted:{cls.__name__}"
    options = Options(checks=tuple(checks), seed=seed, max_examples=max_examples,
                      time_budget=3600.0, case=case, threads=1)
    return check_isolated([target], load_isolated([target], options), options)[0]


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
    (misconverted.HaikuForgetBiasKept, "output", "bias: a forget-gate bias of +1 is added"),
    (misconverted.KerasTensorFlowGatesIFOC, "output",
     "gate order: the implementation reads the gate blocks as i, f, o, g"),
    (misconverted.PaddleBiasIhTwice, "output", "bias: bias_ih is used twice"),
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

    # A pass on the cases drawn within 10 s a check (JAX compiles each new shape: the edge cases
    # alone, ~20 shapes a check, took 50-80 s on 2 cores), whatever this machine's speed.
    record = check_implementation(as_adapter(FlaxOptimizedAdapter, name="flax-optimized"),
                                  checks=FORWARD + ("gradients",), seed=0, max_examples=4,
                                  time_budget=PASS_BUDGET)
    assert [c.status for c in record.checks] == ["pass"] * 4
    assert all(c.examples > 0 for c in record.checks)


# -- padded input plus lengths (Supports(lengths=True)) -------------------------------------------
def test_onnxruntime_with_sequence_lens_passes():
    from parity_implementations.onnx_lstm import OnnxRuntimeAdapter

    adapter = OnnxRuntimeAdapter()
    assert adapter.supports.lengths
    record = check_implementation(adapter, checks=("padded", "padding-invariance"), seed=0,
                                  max_examples=20, time_budget=3600.0)
    assert [c.status for c in record.checks] == ["pass", "pass"], record.checks
    assert all(c.examples > 0 for c in record.checks)


def test_jax_with_a_mask_passes():
    from parity_implementations.jax_lstm import JaxAdapter

    adapter = JaxAdapter()
    assert adapter.supports.lengths
    record = check_implementation(adapter, checks=("padded", "padding-invariance"), seed=0,
                                  max_examples=4, time_budget=3600.0)
    assert [c.status for c in record.checks] == ["pass", "pass"], record.checks
    assert all(c.examples > 0 for c in record.checks)


# Bidirectional, 2 layers, rows of lengths 2, 6 and 4 (unsorted): the reverse direction must
# start at each row's own last step, and h_n / c_n come from each row's own end.
FLAX_BIDIRECTIONAL_CASE = ("input_size=3,hidden_size=4,num_layers=2,bidirectional=true,seq_len=6,"
                           "batch=3,dtype=float64,initial_state=random,seed=3,lengths=2;6;4,"
                           "enforce_sorted=false")


def test_flax_with_seq_lengths_passes():
    from parity_implementations.flax_lstm import FlaxAdapter

    adapter = FlaxAdapter()
    assert adapter.supports.lengths
    record = check_implementation(adapter, checks=("padded", "padding-invariance"), seed=0,
                                  max_examples=4, time_budget=PASS_BUDGET)
    assert [c.status for c in record.checks] == ["pass", "pass"], record.checks
    assert all(c.examples > 0 for c in record.checks)
    record = check_implementation(FlaxAdapter(), checks=("padded", "padding-invariance"),
                                  case=CaseSpec.from_string(FLAX_BIDIRECTIONAL_CASE))
    assert [c.status for c in record.checks] == ["pass", "pass"], record.checks


def test_flax_reverse_direction_without_seq_lengths_is_caught():
    """Caught on two layers; its cause named on one (on two, the second layer's reverse
    direction also reads the first's outputs at padded steps, which the simulated mistake
    leaves at zero: no cause is named there rather than a wrong one)."""
    record = checked(misconverted.FlaxReverseFromPaddedEnd, checks=("padded",),
                     case=FLAX_BIDIRECTIONAL_CASE)
    result = record.checks[0]
    assert result.status == "fail", result.message
    cause = result.failure["likely_cause"]
    assert cause is None or cause.startswith("the reverse direction starts at the padded end")
    record = checked(misconverted.FlaxReverseFromPaddedEnd, checks=("padded",),
                     case=FLAX_BIDIRECTIONAL_CASE.replace("num_layers=2", "num_layers=1"))
    result = record.checks[0]
    assert result.status == "fail", result.message
    assert result.failure["likely_cause"].startswith(
        "the reverse direction starts at the padded end"), result.failure["likely_cause"]


def isolated(target, checks, seed=0, max_examples=4, case=None):
    options = Options(checks=tuple(checks), seed=seed, max_examples=max_examples,
                      time_budget=3600.0, case=case, threads=1)
    return check_isolated([target], load_isolated([target], options), options)[0]


def test_keras_with_a_mask_passes_in_float32_and_is_known_in_float64():
    """Keras's masked path computes its products in float32 on the torch backend (its
    adapter's declaration): float64 cases are that known divergence, float32 ones pass."""
    record = isolated("keras", ("padded", "padding-invariance"))
    assert [c.status for c in record.checks] == ["known", "pass"], record.checks
    assert record.checks[0].examples > 0  # float32 cases compared and passed
    float64 = ("input_size=3,hidden_size=4,num_layers=2,bidirectional=true,seq_len=6,batch=3,"
               "dtype=float64,initial_state=random,seed=3,lengths=2;6;4,enforce_sorted=false")
    assert isolated("keras", ("padded",), case=float64).checks[0].status == "known"
    float32 = float64.replace("float64", "float32")
    assert isolated("keras", ("padded",), case=float32).checks[0].status == "pass"


def test_keras_masked_matmul_is_float32_on_torch():
    """The cause declared for the keras adapter, measured on Keras itself (in a process of its
    own: Keras fixes its backend at import)."""
    code = ("import os; os.environ['KERAS_BACKEND'] = 'torch'\n"
            "import torch, keras\n"
            "x = torch.ones(2, 3, dtype=torch.float64)\n"
            "print(keras.ops.matmul(x, x.T).dtype)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "torch.float32"


def test_onnx_reference_ignoring_sequence_lens_is_caught():
    """Measured: onnx's reference evaluator runs every row over the whole padded batch."""
    record = checked(misconverted.OnnxReferenceWithLengths, checks=("padded",))
    result = record.checks[0]
    assert result.status == "fail", result.message
    assert result.failure["likely_cause"].startswith((
        "the final state is taken after running on through the padding",
        "the padding is run as if it were data")), result.failure["likely_cause"]


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
            "parity_implementations.onnx_lstm, parity_implementations.haiku_lstm, "
            "parity_implementations.paddle_lstm, parity_implementations.keras_tf_lstm, "
            "parity_implementations.mindspore_lstm; "
            "from parity.cli import main; main(['list']); "
            "print(sorted(m for m in ('jax', 'flax', 'equinox', 'keras', 'onnx', "
            "'onnxruntime', 'haiku', 'paddle', 'tensorflow', 'mindspore') "
            "if m in sys.modules))")
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


def test_keras_tf_refuses_keras_already_on_torch_clearly():
    code = ("from parity_implementations.keras_lstm import import_keras; import_keras(); "
            "from parity_implementations.keras_tf_lstm import import_keras_tensorflow; "
            "import_keras_tensorflow()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "keras was imported with the 'torch' backend" in out.stderr
    assert "run it in a process of its own" in out.stderr


def test_keras_on_torch_and_on_tensorflow_in_one_run(tmp_path):
    """parity check gives each implementation its own process: both backends in one run."""
    out = subprocess.run([sys.executable, "-m", "parity", "check", "--impl", "keras",
                          "--impl", "keras-tf", "--only", "output", "--max-examples", "2",
                          "--seed", "0", "--no-database", "-q"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("PASS") == 2


def test_haiku_weights_ported_with_from_haiku_compute_the_same_in_torch():
    import haiku as hk
    import jax

    from parity.convert import from_haiku

    config = LSTMConfig(input_size=3, hidden_size=4)

    def unroll(x):
        core = hk.LSTM(4, name="lstm_l0")
        return hk.dynamic_unroll(core, x, core.initial_state(x.shape[1]), time_major=True)

    f = hk.without_apply_rng(hk.transform(unroll))
    xt = X.swapaxes(0, 1)  # (T, B, I)
    params = f.init(jax.random.PRNGKey(3), xt)
    params = jax.tree.map(lambda a: a + 0.3, params)  # a nonzero bias
    ys, state = f.apply(params, xt)
    want_y, want_h, want_c = torch_lstm(config, from_haiku(params, config), xt,
                                        batch_first=False)
    np.testing.assert_allclose(np.asarray(ys), want_y, atol=1e-5)
    np.testing.assert_allclose(np.asarray(state.hidden), want_h[0], atol=1e-5)
    np.testing.assert_allclose(np.asarray(state.cell), want_c[0], atol=1e-5)


# -- the divergences each framework's own LSTM shows, with the framework alone ----------------
def _crashes(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import warnings; "
                           "warnings.simplefilter('ignore'); import paddle\n" + code],
                          capture_output=True, text=True, timeout=300)


def test_paddle_without_biases_crashes_the_process():
    out = _crashes("m = paddle.nn.LSTM(3, 4, bias_ih_attr=False, bias_hh_attr=False)\n"
                   "m(paddle.randn([2, 5, 3]))\nprint('returned')")
    assert out.returncode != 0 and "returned" not in out.stdout
    assert "Segmentation fault" in out.stderr or out.returncode < 0


def test_paddle_on_an_empty_sequence_crashes_the_process():
    out = _crashes("paddle.nn.LSTM(3, 4, time_major=True)(paddle.zeros([0, 2, 3]))\n"
                   "print('returned')")
    assert out.returncode != 0 and "returned" not in out.stdout


def test_paddle_raises_on_unbatched_input_and_on_an_empty_batch():
    out = _crashes(
        "lstm = paddle.nn.LSTM(3, 4, time_major=True)\n"
        "for x in (paddle.randn([5, 3]), paddle.zeros([5, 0, 3])):\n"
        "    try:\n        lstm(x)\n        print('returned')\n"
        "    except Exception as e:\n        print('raised', str(e).splitlines()[0])\n")
    unbatched, empty = out.stdout.strip().splitlines()[-2:]
    # nn.LSTM reads (seq_len, input_size) as one sequence, and returns (5, 0, 4) for batch 0.
    assert unbatched.startswith("raised") and "rank of Input in RNN" in unbatched
    assert empty.startswith("raised") and ("input size should not be 0" in empty
                                           or "holds no memory" in empty)


def test_paddle_backward_needs_training_mode():
    out = _crashes(
        "lstm = paddle.nn.LSTM(3, 4, time_major=True)\n"
        "for mode in ('train', 'eval'):\n"
        "    getattr(lstm, mode)()\n"
        "    x = paddle.randn([5, 2, 3])\n    x.stop_gradient = False\n"
        "    try:\n"
        "        g = paddle.grad(lstm(x)[0].sum(), [x] + list(lstm.parameters()))\n"
        "        print(mode, 'gradient', list(g[0].shape))\n"
        "    except Exception as e:\n        print(mode, 'raised')\n")
    assert "train gradient [5, 2, 3]" in out.stdout and "eval raised" in out.stdout, out.stderr


def test_paddle_refuses_a_process_with_tensorflow_clearly():
    code = ("import tensorflow\nfrom parity_implementations.paddle_lstm import import_paddle\n"
            "import_paddle()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "run it in a process of its own" in out.stderr


def test_keras_on_tensorflow_raises_on_an_empty_batch():
    # A process of its own: keras may already be on torch in this one.
    code = ("import numpy as np\nfrom parity_implementations.keras_tf_lstm import "
            "import_keras_tensorflow\nkeras = import_keras_tensorflow()\n"
            "layer = keras.layers.LSTM(4, return_sequences=True)\n"
            "try:\n    print(layer(np.zeros((0, 5, 3), np.float32)).shape)\n"
            "except Exception as e:\n    print('raised', 'Biases must be 1D' in str(e))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert "raised True" in out.stdout, out.stderr  # nn.LSTM returns (0, 5, 4) batch-major
