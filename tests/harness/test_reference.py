"""The reference runs behind the tolerances: each must be nn.LSTM, moved only as intended."""

import dataclasses

import numpy as np
import torch
from hypothesis import given, settings

from parity import CaseSpec, as_adapter
from parity.cases import materialize
from parity.evaluation import Evaluation
from parity.gate_noise import run_gate_noise_lstm
from parity.reference import run_reference, run_torch_lstm, shared_reference
from parity.strategies import case_specs

from .lstms import correct


def _float64(case):
    params = {n: np.asarray(a, np.float64) for n, a in case.params.items()}
    state = None if case.state is None else tuple(np.asarray(s, np.float64) for s in case.state)
    cot = tuple(np.asarray(c, np.float64) for c in case.cotangents)
    return params, np.asarray(case.input, np.float64), state, cot


@given(case_specs(max_work=20_000))
@settings(max_examples=25, deadline=None)
def test_gate_noise_run_without_noise_is_nn_lstm(spec):
    # Every feature combination the harness draws: the same equations, layouts and gradients.
    # At moderate scales, so that two summation orders agree to a fixed tolerance.
    case = materialize(dataclasses.replace(spec, weight_scale=1.0, input_scale=1.0,
                                           input_offset=0.0))
    params, x, state, cot = _float64(case)
    want = run_torch_lstm(case.config, params, x, state, cot, torch.float64)
    forward, grads = run_gate_noise_lstm(case.config, params, x, state, cot, 0.0,
                                         np.random.default_rng(0))
    assert set(grads) == set(want.gradients)
    for group, got in (("forward", forward), ("gradients", grads)):
        for name, g in got.items():
            w = (want.forward if group == "forward" else want.gradients)[name]
            assert g.shape == w.shape, name
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=f"{group} {name}")


@given(case_specs(max_work=20_000))
@settings(max_examples=10, deadline=None)
def test_gate_noise_moves_the_result_by_about_the_noise(spec):
    case = materialize(spec)
    params, x, state, _ = _float64(case)
    want = run_torch_lstm(case.config, params, x, state, None, torch.float64)
    forward, _ = run_gate_noise_lstm(case.config, params, x, state, None, 1e-9,
                                     np.random.default_rng(0))
    moved = max(float(np.max(np.abs(forward[n] - want.forward[n]), initial=0.0))
                for n in forward)
    assert 0 < moved or x.size == 0


# float32's unit roundoff (6e-8) times a conditioning of up to ~1000.
WELL_CONDITIONED_SPREAD = 1e-4


@given(case_specs(max_work=20_000))
@settings(max_examples=10, deadline=None)
def test_reference_samples_land_near_the_reference(spec):
    # The samples estimate rounding: none may be a different function (a wrong layout would
    # move them by O(1) on every case; rounding moves them by far less on most).
    ref = run_reference(materialize(spec))
    for s in ref.samples + ref.direct:
        for name, got in s.forward.items():
            assert got.shape == ref.want.forward[name].shape
        for name, got in s.gradients.items():
            assert got.shape == ref.want.gradients[name].shape
    spread = max(ref.spread_of("forward", n).linear for n in ref.want.forward)
    assert np.isfinite(spread)
    # The size claimed: on a well-conditioned case (default scales, a short sequence) the
    # samples land within float32's rounding times a modest conditioning of the reference,
    # relative to the values' scale, not O(1) away.
    if spec.weight_scale <= 1.0 and spec.input_scale <= 1.0 and spec.seq_len <= 16:
        scale = max(float(np.max(np.abs(w), initial=0.0)) for w in ref.want.forward.values())
        assert spread <= WELL_CONDITIONED_SPREAD * max(scale, 1.0), (spread, scale)


def test_evaluations_of_one_case_share_its_reference_run_and_no_other():
    spec = CaseSpec.from_string("input_size=3,hidden_size=4,seq_len=5,batch=2,seed=41")
    first = Evaluation(as_adapter(correct.PerGateLSTM, name="a"), spec)
    second = Evaluation(as_adapter(correct.FusedLSTM, name="b"), spec, reduced=False)
    assert first.reference() is second.reference()
    # Other parameters (a variant's reducing setting), or another case: another run.
    case = first.case
    other = {n: a * 2 for n, a in case.params.items()}
    moved = shared_reference(case, other)
    assert moved is not first.reference()
    np.testing.assert_allclose(moved.want.forward["output"],
                               run_reference(case, other).want.forward["output"])
    assert not np.allclose(moved.want.forward["output"], first.reference().want.forward["output"])
    another = Evaluation(as_adapter(correct.PerGateLSTM, name="a"), spec.replace(seed=42))
    assert another.reference() is not first.reference()
