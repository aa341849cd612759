"""Finite differences: the estimate, its error bound, and the check on whole implementations."""

import numpy as np
import pytest
import torch

from parity import (CaseSpec, Supports, TorchAdapter, as_adapter, check_implementation,
                    torch_adapter)
from parity.checks import _finite_differences, check_finite_differences
from parity.evaluation import Evaluation
from parity.finite_diff import _estimate, directional, per_element
from parity.reference import make_torch_lstm

from .lstms import broken, correct

SPEC = CaseSpec.from_string("input_size=2,hidden_size=3,seq_len=2,batch=1")


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    point = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}

    def loss(p):
        return float(np.sum(np.tanh(p["a"] @ p["b"])) + np.sum(p["b"] ** 3) / 100)

    t = np.tanh(point["a"] @ point["b"])
    grads = {"a": np.outer(1 - t**2, point["b"]),
             "b": point["a"].T @ (1 - t**2) + 3 * point["b"] ** 2 / 100}
    return loss, point, grads


@pytest.mark.parametrize("seed", range(5))
def test_exact_gradients_pass(seed):
    loss, point, grads = _problem(seed)
    rng = np.random.default_rng(seed)
    assert all(c.passed for c in directional(loss, point, grads, "float64", 1e-16, rng))
    assert all(c.passed for c in per_element(loss, point, grads, "float64", 1e-16, SPEC))


@pytest.mark.parametrize("relative", [1e-3, 1e-5])
def test_a_slightly_wrong_gradient_fails(relative):
    loss, point, grads = _problem()
    wrong = {"a": grads["a"] * (1 + relative), "b": grads["b"]}
    rng = np.random.default_rng(0)
    assert not all(c.passed for c in directional(loss, point, wrong, "float64", 1e-16, rng))


def test_one_wrong_element_is_found_and_located():
    loss, point, grads = _problem()
    wrong = {"a": grads["a"].copy(), "b": grads["b"]}
    wrong["a"][2, 1] += 1e-3
    results = {c.tensor: c for c in per_element(loss, point, wrong, "float64", 1e-16, SPEC)}
    assert results["b"].passed and not results["a"].passed
    assert results["a"].index == (2, 1)


def test_float32_differences_are_judged_by_their_own_error_estimate():
    loss, point, grads = _problem()
    p32 = {k: v.astype(np.float32) for k, v in point.items()}
    rng = np.random.default_rng(0)
    noise = 4 * 2.0**-24 * 10  # the loss's rounding noise in float32
    assert all(c.passed for c in directional(loss, p32, grads, "float32", noise, rng))
    zeros = {k: np.zeros_like(v) for k, v in grads.items()}
    assert not all(c.passed for c in directional(loss, p32, zeros, "float32", noise, rng))


class TorchForwardOnly(TorchAdapter):
    """nn.LSTM declared forward-only: finite differences of its forward vs the reference."""

    supports = Supports(gradients="none")

    def make_module(self, config, dtype):
        return make_torch_lstm(config, dtype)


class GateSwappedForwardOnly(TorchForwardOnly):
    """Forward-only with the f and g blocks swapped: its derivatives are another function's."""

    def module_parameters(self, config, params):
        h = config.hidden_size
        out = {}
        for name, p in params.items():
            if name.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
                i, f, g, o = p.split(h, dim=0)
                p = torch.cat([i, g, f, o], dim=0)
            out[name] = p
        return out


def test_forward_only_implementation_is_checked_against_reference_gradients():
    record = check_implementation(as_adapter(TorchForwardOnly, name="fwd"), seed=0,
                                  max_examples=6, checks=("gradients", "finite-differences"))
    status = {c.check: c.status for c in record.checks}
    assert status == {"gradients": "unsupported", "finite-differences": "pass"}


def test_forward_only_with_a_wrong_function_fails_finite_differences():
    record = check_implementation(as_adapter(GateSwappedForwardOnly, name="fwd"), seed=0,
                                  max_examples=6, checks=("finite-differences",))
    assert record.checks[0].status == "fail"


def test_a_step_outside_the_linear_regime_is_refined_then_unresolved():
    # The differences of a smooth loss agree at every step; what they cannot do is resolve a
    # derivative the reference says is 1e40 on a loss of magnitude 1 (a chaotic case, where
    # the exact slope lives on scales far below any step).
    loss, point, grads = _problem(0)
    direction = {n: np.ones_like(a) for n, a in point.items()}
    resolved = _estimate(loss, point, direction, 1e-3, 1e-16)
    assert resolved[2]
    assert not _estimate(loss, point, direction, 1e-3, 1e-16, slope=1e40, bound=1.0)[2]
    # A slope the step can follow is refined to, not given up on.
    refined = _estimate(loss, point, direction, 1e-3, 1e-16, slope=1e4, bound=1.0)
    assert refined[2] and refined[0] == pytest.approx(resolved[0], rel=1e-6)


def test_noise_as_large_as_the_differences_is_unresolved():
    loss, point, grads = _problem(0)
    direction = {n: np.ones_like(a) for n, a in point.items()}
    assert not _estimate(loss, point, direction, 1e-3, noise=1.0)[2]


# -- one instance through with_parameters (check_finite_differences' first try) ---------------
FD_CASES = ["input_size=3,hidden_size=4,seq_len=4,batch=2,initial_state=random,seed=5",
            "input_size=4,hidden_size=6,num_layers=2,seq_len=12,batch=3,seed=6"]


def _fd_evaluation(cls, spec):
    adapter = as_adapter(cls, name=cls.__name__, target=f"tests:{cls.__name__}")
    return Evaluation(adapter, CaseSpec.from_string(spec), reduced=False)


@pytest.mark.parametrize("spec", FD_CASES)
@pytest.mark.parametrize("name", ["CandidateTanhWrongDerivative", "BiasHhGradHalved",
                                  "WeightHhDetached"])
def test_a_wrong_gradient_fails_differences_as_rebuilding_every_step_decides(name, spec):
    cls = getattr(broken, name)
    reused, through = _finite_differences(_fd_evaluation(cls, spec), reuse=True)
    assert through and not reused.passed
    outcome = check_finite_differences(_fd_evaluation(cls, spec))
    rebuilt, _ = _finite_differences(_fd_evaluation(cls, spec), reuse=False)
    assert outcome.status == rebuilt.status == "fail"
    assert [c.as_dict() for c in outcome.comparisons] == [c.as_dict() for c in rebuilt.comparisons]


@pytest.mark.parametrize("spec", FD_CASES)
def test_a_stale_with_parameters_falls_back_to_rebuilding(spec, monkeypatch):
    # with_parameters that keeps the weights it was built with: the differences through it see
    # a loss that does not move with the weights and disagree with the gradients; the check
    # then builds an instance per step, and a correct LSTM passes.
    monkeypatch.setattr(torch_adapter._BuiltTorchModule, "with_parameters",
                        lambda self, params: self)
    stale, through = _finite_differences(_fd_evaluation(correct.PerGateLSTM, spec), reuse=True)
    assert through and not stale.passed
    assert check_finite_differences(_fd_evaluation(correct.PerGateLSTM, spec)).status == "pass"


@pytest.mark.parametrize("spec", FD_CASES)
@pytest.mark.parametrize("name", ["PerGateLSTM", "Float64InternallyLSTM", "SigmoidTanhLSTM"])
def test_a_correct_lstm_passes_differences_through_with_parameters(name, spec):

    outcome, through = _finite_differences(_fd_evaluation(getattr(correct, name), spec), True)
    assert through and outcome.status == "pass"
