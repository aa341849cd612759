"""No false alarms: correct LSTMs computed differently pass every check they support.

`tests/harness/lstms/correct.py` holds correct look-alikes that differ from `nn.LSTM` in how they
compute (per-gate matmuls, one fused matrix, a cell loop, the input projection precomputed,
sigmoid through tanh, tanh through sigmoid, float64 inside, batch-first inside) and one that supports only a subset of
the features. The default run uses one seed; `-m thorough` runs many. The properties have their
own (test_properties.py).
"""

import pytest

from parity import REFERENCE_CHECKS
from parity.cases import CaseSpec

from .lstms import correct
from .verdicts import assert_no_false_alarm

MODULE = "tests.harness.lstms.correct"


def _assert_passes(record):
    assert_no_false_alarm(record)
    assert any(c.status == "pass" for c in record.checks)


@pytest.mark.parametrize("cls", correct.CORRECT, ids=lambda c: c.__name__)
def test_correct_lstm_passes(cls, check_lstm):
    _assert_passes(check_lstm(cls, MODULE, checks=REFERENCE_CHECKS, seed=0, max_examples=10))


def test_a_subset_implementation_is_checked_on_its_subset(check_lstm):
    record = check_lstm(correct.SubsetLSTM, MODULE, checks=("output",), max_examples=10)
    _assert_passes(record)
    features = record.features
    assert not features["bidirectional"]["supported"] and features["bidirectional"]["cases"] == 0
    assert not features["projection"]["supported"] and features["projection"]["cases"] == 0
    assert features["multi_layer"]["supported"] and features["multi_layer"]["cases"] > 0


@pytest.mark.thorough
@pytest.mark.parametrize("seed", range(50))
@pytest.mark.parametrize("cls", correct.CORRECT, ids=lambda c: c.__name__)
def test_no_false_alarm_over_many_seeds(cls, seed, check_lstm):
    _assert_passes(check_lstm(cls, MODULE, checks=REFERENCE_CHECKS, seed=seed, max_examples=10))


# Chaotic float64 cases (large weights, long sequences) that search seeds once turned into false
# alarms: probed at float32's rounding level, their spread saturated at O(1) and, scaled down to
# float64, underestimated float64's rounding by orders of magnitude.
CHAOTIC_FLOAT64 = [
    "input_size=4,hidden_size=9,proj_size=8,seq_len=41,batch=1,weight_scale=8.0,seed=73",
    "input_size=1,hidden_size=9,proj_size=8,seq_len=71,batch=1,weight_scale=8.0,seed=73",
    "input_size=3,hidden_size=12,seq_len=120,batch=2,weight_scale=8.0,seed=5",
    # Here even a 2^-40 probe saturates, and a gate flips at step 77 under some perturbations.
    "input_size=8,hidden_size=20,proj_size=11,seq_len=95,batch=1,weight_scale=8.0,seed=1072",
]


@pytest.mark.parametrize("spec", CHAOTIC_FLOAT64)
@pytest.mark.parametrize("cls", [correct.TextbookLSTM, correct.FusedLSTM],
                         ids=lambda c: c.__name__)
def test_no_false_alarm_on_chaotic_float64_cases(cls, spec, check_lstm):
    case = CaseSpec.from_string(spec)
    assert case.dtype == "float64"
    _assert_passes(check_lstm(cls, MODULE, checks=("output", "h_n", "c_n", "gradients"), case=case))


def test_finite_differences_do_not_fail_a_chaotic_case_they_cannot_resolve(check_lstm):
    # 200 steps at weight scale 8: backpropagation gives slopes of ~1e41 while the loss moves by
    # O(1), so differences at any representable step see a different, smoothed function. Their
    # three steps once happened to agree here, and the check failed a correct LSTM.
    case = CaseSpec.from_string(
        "input_size=15,hidden_size=26,num_layers=2,proj_size=25,seq_len=200,batch=1,"
        "weight_scale=8.0,bias_scale=4.0,input_offset=3.0,seed=30741319")
    record = check_lstm(correct.FusedLSTM, MODULE, checks=("finite-differences",), case=case)
    _assert_passes(record)
    assert record.checks[0].unresolved_cases == 1


# Sigmoid through tanh is off by an ulp absolute where the exact value is near 0: on a saturated
# chaotic sequence that grows like any rounding, though perturbing the inputs never shows it.
ABSOLUTE_GATE_ERRORS = [
    ("output", "input_size=16,hidden_size=2,num_layers=2,bias=false,bidirectional=true,"
               "seq_len=200,batch=1,dtype=float32,weight_scale=8.0,input_offset=3.0,seed=277"),
    ("h_n", "input_size=16,hidden_size=2,num_layers=2,bias=false,bidirectional=true,"
            "seq_len=199,batch=1,weight_scale=8.0,input_offset=3.0,seed=277"),
    ("gradients", "input_size=8,hidden_size=1,seq_len=1,batch=1,weight_scale=8.0,seed=277"),
]


@pytest.mark.parametrize("check,spec", ABSOLUTE_GATE_ERRORS)
def test_no_false_alarm_on_absolute_gate_errors(check, spec, check_lstm):
    _assert_passes(check_lstm(correct.TanhSigmoidLSTM, MODULE, checks=(check,),
                              case=CaseSpec.from_string(spec)))


# Three saturated layers of one unit: h is ~1e-11 and so is the loss, while tanh computed as
# 2 sigmoid(2x) - 1 (or sigmoid through tanh) is accurate to an ulp of 1, not of h. Differences
# of such a forward once "disagreed" 1800x with its exact gradients (the `numpy` LSTM's 288x).
TINY_LOSS = "input_size=4,hidden_size=1,num_layers=3,bias=false,seq_len=1,batch=1," \
            "input_scale=10.0,seed=0"


@pytest.mark.parametrize("cls", [correct.SigmoidTanhLSTM, correct.TanhSigmoidLSTM],
                         ids=lambda c: c.__name__)
def test_no_false_alarm_from_absolute_rounding_on_a_tiny_loss(cls, check_lstm):
    _assert_passes(check_lstm(cls, MODULE, checks=("finite-differences",),
                              case=CaseSpec.from_string(TINY_LOSS)))


def test_no_false_alarm_where_float32_cannot_represent_the_gradient(check_lstm):
    # 200 saturated steps through three projected layers: the input gradient is ~1e48, past
    # float32's range; a correct float32 LSTM (torch's own) gives inf or nan there.
    case = CaseSpec.from_string(
        "input_size=15,hidden_size=31,num_layers=3,bidirectional=true,proj_size=18,seq_len=200,"
        "batch=1,dtype=float32,weight_scale=8.0,bias_scale=4.0,input_scale=100.0,"
        "input_offset=3.0,seed=2379704339")
    _assert_passes(check_lstm(correct.TextbookLSTM, MODULE, checks=("gradients",), case=case))
