"""The properties: each catches an LSTM that breaks it, and passes the correct ones.

`tests/harness/lstms/property_broken.py` holds one LSTM per property that breaks exactly it;
the property must fail (or error) on it, with a minimal case that fails again when replayed.
Every correct LSTM of `correct.py` passes every property it supports (one seed here, many
under `-m thorough`).
"""

import pytest

from parity import CaseSpec, as_adapter, check_implementation
from parity.properties import PROPERTIES, PROPERTY_TABLE

from .lstms import (broken, correct, lengths_adapters, packed_broken, property_broken,
                    strides_broken)
from .verdicts import assert_no_false_alarm

BROKEN_MODULE = "tests.harness.lstms.property_broken"
CORRECT_MODULE = "tests.harness.lstms.correct"
METAMORPHIC = tuple(PROPERTY_TABLE)


def _assert_passes(record):
    assert_no_false_alarm(record)
    assert all(c.kind == "property" for c in record.checks)


@pytest.mark.parametrize("cls", property_broken.PROPERTY_BROKEN, ids=lambda c: c.__name__)
def test_each_property_catches_the_lstm_that_breaks_it(cls, check_lstm):
    check = cls.expected_property
    record = check_lstm(cls, BROKEN_MODULE, checks=(check,), max_examples=8)
    c = record.checks[0]
    assert c.kind == "property"
    # A property's run in another shape than nn.LSTM gives is wrong-shape, as in every check.
    statuses = getattr(cls, "expected_statuses", ("fail", "error"))
    assert c.status in statuses, f"{cls.__name__}: {c.status}: {c.message}"
    f = c.failure
    assert f["reproduce"].startswith(
        f"python -m parity check --impl {BROKEN_MODULE}:{cls.__name__} --only {check}")
    if check == "training":
        runs = c.data["runs"]
        assert {r["optimizer"] for r in runs} == {"sgd", "adam"}
        assert any(r["first_divergence"] is not None for r in runs)
        return
    assert c.failure["likely_cause"] or c.status == "wrong-shape"
    replay = check_implementation(as_adapter(cls, name=cls.__name__), checks=(check,),
                                  case=CaseSpec.from_string(f["case_id"]))
    assert replay.checks[0].status == c.status


# Properties whose broken LSTMs sit beside their own tests (test_packed.py, test_strides.py,
# test_lengths.py).
ELSEWHERE = {"packed": packed_broken.PACKED_BROKEN, "lengths": packed_broken.PACKED_BROKEN,
             "strides": strides_broken.__all__, "padded": list(lengths_adapters.LENGTHS_BROKEN),
             "padding-invariance": [lengths_adapters.NormalizesOverPadding,
                                    lengths_adapters.GradientThroughPadding]}


def test_every_property_has_a_broken_lstm():
    covered = {cls.expected_property for cls in property_broken.PROPERTY_BROKEN}
    covered |= {name for name, lstms in ELSEWHERE.items() if lstms}
    assert covered == set(PROPERTIES)


def test_noise_below_float32_tolerance_is_caught_only_by_determinism(check_lstm):
    """The reference checks pass NoisyEval in float32 (its noise is far inside the tolerance);
    determinism does not."""
    case = CaseSpec.from_string("input_size=3,hidden_size=4,seq_len=5,batch=2,dtype=float32,"
                                "seed=1")
    record = check_lstm(property_broken.NoisyEval, BROKEN_MODULE,
                        checks=("output", "determinism"), case=case)
    statuses = {c.check: c.status for c in record.checks}
    assert statuses == {"output": "pass", "determinism": "fail"}
    assert "differs between two identical forward calls" in record.checks[1].message


def test_training_fails_for_a_backward_that_drops_one_term(check_lstm):
    record = check_lstm(broken.TruncatedBPTT, "tests.harness.lstms.broken", checks=("training",))
    c = record.checks[0]
    assert c.status == "fail" and "loss curves part at step" in c.message
    assert c.failure["finding"]["ratio"] > 1


@pytest.mark.parametrize("cls", correct.CORRECT, ids=lambda c: c.__name__)
def test_correct_lstms_pass_every_property(cls, check_lstm):
    checks = METAMORPHIC + (("training",) if cls is correct.TextbookLSTM else ())
    _assert_passes(check_lstm(cls, CORRECT_MODULE, checks=checks, seed=0, max_examples=4))


def test_properties_an_implementation_cannot_run_are_unsupported(check_lstm):
    record = check_lstm(correct.SubsetLSTM, CORRECT_MODULE,
                        checks=("bidirectional", "unbatched", "stacking"), max_examples=4)
    statuses = {c.check: c.status for c in record.checks}
    assert statuses == {"bidirectional": "unsupported", "unbatched": "unsupported",
                        "stacking": "pass"}
    assert "bidirectional" in record.checks[0].message


@pytest.mark.thorough
@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("cls", correct.CORRECT, ids=lambda c: c.__name__)
def test_no_false_alarm_from_properties_over_many_seeds(cls, seed, check_lstm):
    _assert_passes(check_lstm(cls, CORRECT_MODULE, checks=METAMORPHIC, seed=seed,
                              max_examples=20))


@pytest.mark.thorough
@pytest.mark.parametrize("cls", correct.CORRECT, ids=lambda c: c.__name__)
def test_correct_lstms_train_like_nn_lstm(cls, check_lstm):
    _assert_passes(check_lstm(cls, CORRECT_MODULE, checks=("training",)))


def test_an_empty_sequence_answered_with_the_initial_state_passes_degenerate(check_lstm):
    """nn.LSTM raises for seq_len=0; an LSTM that returns what an empty sequence computes (no
    output steps, h_n, c_n = h0, c0) is not failed for it (a blind test's NumPy LSTM was). One
    that answers it with zeros in place of the given state is (EmptySequenceForgetsState)."""
    record = check_lstm(correct.EmptySequenceAnsweredLSTM, CORRECT_MODULE,
                        checks=("degenerate",), max_examples=8)
    _assert_passes(record)
    assert record.checks[0].status == "pass"
