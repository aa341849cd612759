"""The reference checks decide most comparisons under the tolerance's floor, without the
reference's sample runs (`parity.tolerances.floor`, `parity.reference.ReferenceRun.runs`): that
shortcut may change what runs, never a verdict. A correct LSTM computed another way must still
pass (by the floor where it lands inside it, by the full tolerance where it does not), and a
broken one must still fail, decided by the full tolerance."""

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity import CaseSpec, as_adapter
from parity import checks as checks_module
from parity import reference
from parity.cases import materialize
from parity.checks import check_forward, check_gradients
from parity.evaluation import Evaluation
from parity.reference import run_reference
from parity.tolerances import Spread, floor, resolvable, tolerance

from .lstms import broken, correct

FORWARD = ("output", "h_n", "c_n")
SHORT = [
    "input_size=3,hidden_size=4,seq_len=5,batch=2,dtype=float32,seed=5",
    "input_size=4,hidden_size=6,num_layers=2,seq_len=8,batch=2,dtype=float32,"
    "initial_state=random,seed=7",
    "input_size=5,hidden_size=8,seq_len=40,batch=2,dtype=float32,weight_scale=4.0,seed=11",
    "input_size=3,hidden_size=4,seq_len=6,batch=2,dtype=float64,initial_state=random,seed=3",
]
# Saturated and chaotic: tanh as 2 sigmoid(2x) - 1 lands beyond the floor here (and output is
# not resolvable in float32 at all), though it is correct.
CHAOTIC = ("input_size=16,hidden_size=2,num_layers=2,bias=false,bidirectional=true,seq_len=200,"
           "batch=1,dtype=float32,weight_scale=8.0,input_offset=3.0,seed=277")


@pytest.fixture(autouse=True)
def _no_shared_references(monkeypatch):
    # Which sample runs a case's reference has made is the point here: no run shared with an
    # earlier test (parity.reference.shared_reference) may have made them already.
    monkeypatch.setattr(reference, "_shared", OrderedDict())


def _evaluation(cls, spec: str) -> Evaluation:
    adapter = as_adapter(cls, name=cls.__name__, target=f"tests:{cls.__name__}")
    return Evaluation(adapter, CaseSpec.from_string(spec))


def _outcomes(ev: Evaluation) -> list:
    return [check_forward(ev, n) for n in FORWARD] + [check_gradients(ev)]


@given(dtype=st.sampled_from(["float32", "float64"]),
       want=st.lists(st.floats(-1e6, 1e6), max_size=6),
       spreads=st.tuples(*[st.floats(0, 1e3)] * 3),
       unit=st.floats(0, 1e6))
def test_the_full_tolerance_is_never_below_its_floor(dtype, want, spreads, unit):
    linear, probe, direct = spreads
    want = np.array(want)
    assert tolerance(dtype, want, Spread(linear, probe, direct), unit) >= floor(dtype, want, unit)


@pytest.mark.parametrize("spec", SHORT)
@pytest.mark.parametrize("cls", [correct.PerGateLSTM, correct.Float64InternallyLSTM,
                                 correct.TanhSigmoidLSTM], ids=lambda c: c.__name__)
def test_a_correct_lstm_inside_the_floor_passes_without_sample_runs(cls, spec):
    ev = _evaluation(cls, spec)
    outcomes = _outcomes(ev)
    assert [o.status for o in outcomes] == ["pass"] * 4
    assert ev.reference().probed == ()
    for o in outcomes:  # each passed under the floor, which it reports as its tolerance
        for c in o.comparisons:
            want = ev.reference().want.forward.get(c.tensor) if o.check in FORWARD else None
            if want is not None:
                assert c.tolerance == floor(ev.spec.dtype, want, 1.0)


def test_a_correct_lstm_beyond_the_floor_passes_under_the_full_tolerance():
    ev = _evaluation(correct.SigmoidTanhLSTM, CHAOTIC)
    outcomes = _outcomes(ev)
    assert [o.status for o in outcomes] == ["pass"] * 4
    assert set(ev.reference().probed) == {"forward", "gradients"}
    # Beyond the floor: had the floor decided, this would have failed.
    out = ev.reference().want.forward["output"]
    got = ev.forward()["output"]
    assert np.max(np.abs(got - out)) > floor("float32", out, 1.0)
    assert outcomes[0].comparisons[0].unresolved


@pytest.mark.parametrize("spec", SHORT[:3])
@pytest.mark.parametrize("cls", [broken.CellStateDrift, broken.Float16GatePreactivations,
                                 broken.OutputScaledSlightly, broken.BFloat16CellState],
                         ids=lambda c: c.__name__)
def test_a_small_bug_fails_as_the_full_computation_decides(cls, spec, monkeypatch):
    ev = _evaluation(cls, spec)
    lazy = _outcomes(ev)
    assert any(o.status == "fail" for o in lazy)
    assert "forward" in ev.reference().probed or "gradients" in ev.reference().probed
    # Without the floor (a floor of zero settles nothing but an exact match), every check runs
    # the full computation: the same verdicts, the same numbers for every failure.
    monkeypatch.setattr(checks_module, "floor", lambda dtype, want, unit: 0.0)
    full = _outcomes(_evaluation(cls, spec))
    assert [o.status for o in lazy] == [o.status for o in full]
    for a, b in zip(lazy, full):
        if a.status != "pass":
            assert [c.as_dict() for c in a.comparisons] == [c.as_dict() for c in b.comparisons]


@pytest.mark.parametrize("spec", SHORT)
@pytest.mark.parametrize("cls", [correct.PerGateLSTM, correct.SigmoidTanhLSTM],
                         ids=lambda c: c.__name__)
def test_the_floor_never_changes_a_correct_lstms_verdict(cls, spec, monkeypatch):
    lazy = [o.status for o in _outcomes(_evaluation(cls, spec))]
    monkeypatch.setattr(checks_module, "floor", lambda dtype, want, unit: 0.0)
    assert lazy == [o.status for o in _outcomes(_evaluation(cls, spec))] == ["pass"] * 4


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_the_sample_runs_draw_the_same_perturbations_whenever_they_run(seed):
    spec = CaseSpec.from_string(f"input_size=3,hidden_size=4,num_layers=2,seq_len=6,batch=2,"
                                f"dtype=float32,initial_state=random,seed={seed}")
    case = materialize(spec)
    first = run_reference(case)
    forward_only = first.runs("forward")
    with_gradients = first.runs("gradients")
    # A second reference that runs the gradient samples first: the same numbers, whatever order.
    second = run_reference(case)
    second_gradients = second.runs("gradients")
    second_forward = second.runs("forward")
    for a, b in ((forward_only, second_forward), (with_gradients, second_gradients)):
        for sa, sb in zip(a[0] + a[1], b[0] + b[1]):
            for n in FORWARD:
                np.testing.assert_array_equal(sa.forward[n], sb.forward[n])
            if sa.gradients is not None:
                for n in sa.gradients:
                    np.testing.assert_array_equal(sa.gradients[n], sb.gradients[n])
    # Forward only, by torch's inference path (whose float32 rounding may differ from its
    # training path's by an ulp): the forward spread never depends on which ran first.
    assert all(s.gradients is None for s in forward_only[0] + forward_only[1])
    assert all(s.gradients is not None for s in with_gradients[0] + with_gradients[1])
    assert resolvable("float32", first.want.forward["output"],
                      first.spread_of("forward", "output"))


# -- the properties compare two runs of the implementation the same way ---------------------------
@pytest.mark.parametrize("spec", SHORT[:2])
def test_a_property_of_a_correct_lstm_passes_without_sample_runs(spec):
    from parity.properties import run_property

    ev = _evaluation(correct.PerGateLSTM, spec)
    outcome = run_property(ev, "step-by-step")
    assert outcome.status == "pass", outcome.message("PerGateLSTM")
    assert ev.reference_forward().probed == ()


def test_a_property_finding_is_decided_under_the_full_tolerance():
    """A state not carried over (a step at a time restarts from zeros): caught, and the
    comparison that fails is the one under the full tolerance (the sample runs were made)."""
    from parity.properties import run_property

    ev = _evaluation(broken.InitialStateIgnored, SHORT[0])
    outcome = run_property(ev, "step-by-step")
    assert outcome.status == "fail"
    assert ev.reference_forward().probed == ("forward",)


# -- training: the perturbed runs only where the floor does not settle it -------------------------
class _RoundsCoarser(correct.TextbookLSTM):
    """Correct, its hidden state rounded ~1e-12 relative (a longer chain of float64 operations):
    beyond the training floor (ATOL), well inside what runs perturbed at float64's rounding
    reach."""

    def hidden_update(self, o, c, where):
        return super().hidden_update(o, c, where) * (1 + 1e-12)


def _training(cls, monkeypatch):
    from parity import check_implementation
    from parity import training

    monkeypatch.setattr(training, "_REFERENCE_RUNS", {})  # nothing trained by an earlier test
    record = check_implementation(as_adapter(cls, name=cls.__name__), checks=("training",))
    perturbed = [k for k in training._REFERENCE_RUNS if k[-1] == "spread"]
    return record.checks[0], perturbed


def test_a_correct_lstm_trains_within_the_floor_without_perturbed_runs(monkeypatch):
    check, perturbed = _training(correct.PerGateLSTM, monkeypatch)
    assert check.status == "pass", check.message
    assert perturbed == []


def test_a_correct_lstm_beyond_the_training_floor_passes_under_the_perturbed_runs(monkeypatch):
    check, perturbed = _training(_RoundsCoarser, monkeypatch)
    assert check.status == "pass", check.message
    assert len(perturbed) == 2  # both optimizers needed the perturbed runs
    # Had the floor decided, it would have failed.
    run = check.data["runs"][0]
    diff = np.abs(np.array(run["implementation_loss"]) - np.array(run["reference_loss"]))
    assert np.max(diff) > 1e-13 * np.max(np.maximum(1.0, np.abs(run["reference_loss"])))


def test_a_training_bug_is_decided_under_the_perturbed_runs(monkeypatch):
    check, perturbed = _training(broken.TruncatedBPTT, monkeypatch)
    assert check.status == "fail" and "from nn.LSTM runs perturbed" in check.message
    assert perturbed
