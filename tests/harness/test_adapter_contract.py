"""The adapter contract cannot silently lie (docs/adapter-contract.md).

Each mistake an adapter or a module makes in the contract has a broken example asserting the
exact status and what the message names, and a correct example, computed another way than
nn.LSTM (tests/harness/lstms/contract.py), that must pass.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from parity import CHECKS, CaseSpec, Supports, as_adapter, check_implementation, load
from parity.cases import materialize
from parity.process_state import capture, harness_settings, watch
from parity.reference import run_reference
from parity.strategies import case_specs, edge_cases
from tests.harness.lstms import contract as C

from .verdicts import assert_no_false_alarm

M = "tests.harness.lstms.contract"


def check(name, checks, max_examples=3, case=None):
    adapter = as_adapter(getattr(C, name), name=f"{M}:{name}")
    return check_implementation(adapter, checks=tuple(checks), seed=0,
                                max_examples=max_examples, time_budget=3600.0, case=case)


def only(record):
    (c,) = record.checks
    return c


# -- module_parameters against the module --------------------------------------------------
@pytest.mark.parametrize("name, words, not_words", [
    ("MisspelledKeyAdapter",
     ["it gives `layers.0.fw.hgate.weight`, which the module does not have",
      "`layers.0.fw.hgates.weight` is the nearest name", "misspelling in module_parameters"],
     ["is not given"]),  # the near name is said once, not again as a parameter not given
    ("MissingKeyAdapter",
     ["the module's parameter `layers.0.fw.hgates.bias` (4,) is not given by "
      "module_parameters", "keep the module's own initial values", "`uncovered`"], []),
    ("UndeclaredExtraAdapter",
     ["the module's parameter `temperature` () is not given by module_parameters"], []),
    ("IgnoresDtypeAdapter",
     ["the module holds `layers.0.fw.igates.weight` as torch.float32; the case's parameters "
      "are torch.float64", "not made in the dtype make_module was asked for"], []),
    ("NoRecurrentBiasAdapter",
     ["it gives `layers.0.fw.hgates.bias`, which the module does not have (a key "
      "module_parameters names wrong, or a part the module does not build for this config"],
     ["misspelling"]),  # the near name, igates.bias, is given: no typo for it
    ("TransposedAdapter",
     ["the module builds `layers.0.fw.igates.weight` as (4, 1); module_parameters maps "
      "nn.LSTM's `weight_ih_l0` (4, 1) to (1, 4)", "as many elements"], ["unchanged"]),
])
def test_an_adapter_mistake_is_wrong_parameters_naming_the_key(name, words, not_words):
    record = check(name, ["output", "gradients"])
    for c in record.checks:
        assert c.status == "wrong-parameters", c.message
        assert "build: module_parameters does not fit the module" in c.message
        for w in words:
            assert w in c.message, c.message
        for w in not_words:
            assert w not in c.message, c.message
        assert c.failure["exception"]["call"] == "build"
        assert c.failure["comparisons"] == []  # found before anything was compared
    assert record.status == "wrong-parameters"


def test_a_module_built_wrong_under_a_right_mapping_is_blamed_on_the_module():
    """torch.ao.nn.quantizable.LSTM's bug: layers >= 1 of the reverse direction built with H
    inputs instead of 2H. Shrunk to the config that shows it: 2 layers, bidirectional."""
    c = only(check("NarrowUpperReverseAdapter", ["output"]))
    assert c.status == "wrong-parameters"
    assert ("the module builds `layers.1.bw.igates.weight` as (4, 1); module_parameters maps "
            "nn.LSTM's `weight_ih_l1_reverse` (4, 2) to (4, 2) unchanged") in c.message
    assert "a finding about the implementation" in c.message
    case = c.failure["case"]
    assert case["num_layers"] == 2 and case["bidirectional"] is True


@pytest.mark.parametrize("name", ["CellStackAdapter", "UncoveredAdapter"])
def test_a_right_mapping_onto_a_module_of_its_own_names_passes(name):
    assert_no_false_alarm(check(name, ["output", "c_n", "gradients", "finite-differences"]))


# -- call() is the one calling path ---------------------------------------------------------
def test_call_adapts_another_calling_convention_on_every_call():
    assert_no_false_alarm(check("KeywordAdapter", ["output", "gradients", "finite-differences",
                                                   "chunking", "training"]))
    c = only(check("KeywordWithoutCallAdapter", ["output"]))
    assert c.status == "error" and "TypeError" in c.message


# -- gradients of plain adapters -----------------------------------------------------------------
def test_gradients_under_other_names_are_wrong_structure_naming_them():
    record = check("RenamedGradientsAdapter", ["gradients", "finite-differences", "training"])
    for c in record.checks:
        assert c.status == "wrong-structure", c.message
        assert "no gradient for weight_ih_l0" in c.message
        assert "gradients under names it was not given: layers.0.fw.igates.weight" in c.message


def test_a_gradient_of_another_shape_is_wrong_shape_naming_both_shapes():
    record = check("TransposedGradientAdapter", ["gradients", "finite-differences"])
    for c in record.checks:
        assert c.status == "wrong-shape", c.message
        assert "weight_hh_l0 (1, 4) (the parameter's shape: (4, 1))" in c.message


def test_a_plain_adapter_returning_the_right_names_passes():
    assert_no_false_alarm(check("PlainAdapter", ["gradients", "finite-differences"]))


# -- no initial state ------------------------------------------------------------------------
@pytest.mark.parametrize("name, takes_state", [
    ("NoStateLSTM", False), ("DeclinesStateLSTM", False), ("SetsThreads", True)])
def test_a_lookalike_is_probed_for_an_initial_state(name, takes_state):
    assert as_adapter(getattr(C, name), name=name).supports.initial_state is takes_state


@settings(max_examples=40, deadline=None)
@given(case_specs(Supports(initial_state=False)))
def test_no_case_with_a_state_is_drawn_where_none_is_taken(spec):
    assert spec.initial_state == "none"


def test_no_edge_case_has_a_state_where_none_is_taken():
    specs = edge_cases(Supports(initial_state=False))
    assert specs and all(s.initial_state == "none" for s in specs)
    assert any(s.initial_state != "none" for s in edge_cases(Supports()))


def test_an_lstm_without_a_state_runs_every_check_that_needs_none_and_passes():
    record = check("NoStateLSTM", CHECKS, max_examples=4)
    needs_state = {"step-by-step", "chunking"}
    needs_packed = {"packed", "lengths"}  # a feature of its own it does not have either
    needs_lengths = {"padded", "padding-invariance"}  # nor lengths with padded input
    for c in record.checks:
        if c.check in needs_packed:
            assert c.status == "unsupported" and "needs packed" in c.message, c.message
        elif c.check in needs_lengths:
            assert c.status == "unsupported" and "needs lengths" in c.message, c.message
        elif c.check in needs_state:
            assert c.status == "unsupported"
            assert "needs an initial state to carry (h, c)" in c.message
            assert "Supports(initial_state=False)" in c.message
        else:
            assert c.status == "pass", (c.check, c.message)
            assert c.examples > 0, c.check
    assert record.supports["initial_state"] is False
    assert record.features["initial_state"] == {"supported": False, "cases": 0, "failed": 0}


def test_an_adapter_declaring_no_state_is_never_given_one():
    """`NoStateAdapter.call` raises if a state reaches it: the warm-up call, the properties,
    training and finite differences all pass None."""
    assert_no_false_alarm(check("NoStateAdapter", ["output", "gradients", "finite-differences",
                                                   "degenerate", "unbatched", "training"]))


def test_a_case_given_with_a_state_is_unsupported_not_called():
    case = CaseSpec.from_string("input_size=2,hidden_size=3,seq_len=4,batch=2,"
                                "initial_state=random,seed=1")
    c = only(check("NoStateAdapter", ["output"], case=case))
    # Not "error": NoStateAdapter.call raises when a state reaches it.
    assert c.status == "unsupported" and "declined this case" in c.message


def test_a_wrong_lstm_without_a_state_is_caught():
    c = only(check("NoStateNoTanhLSTM", ["output"]))
    assert c.status == "fail"
    assert c.message.startswith("output[") and " differs: " in c.message


# -- process-wide torch settings -----------------------------------------------------------------
def test_an_implementation_switching_grad_mode_off_is_reported_and_the_harness_unharmed():
    before = capture()
    record = check("SwitchesGradOff", ["output", "gradients", "batch-independence", "training"])
    assert capture() == before
    for c in record.checks:
        assert c.status == "changes-global-state", (c.check, c.message)
        assert ("the implementation switched torch's grad mode off "
                "(torch.set_grad_enabled(False)) in its constructor") in c.message
    assert record.status == "changes-global-state"


def test_grad_mode_switched_off_in_forward_is_reported_where_gradients_are_asked_for():
    record = check("SwitchesGradOffInForward", ["gradients", "training"])
    for c in record.checks:
        assert c.status == "changes-global-state", (c.check, c.message)
        assert "switched torch's grad mode off (torch.set_grad_enabled(False)) in its " \
               "forward" in c.message
    assert torch.is_grad_enabled()


def test_an_implementation_changing_the_default_dtype_is_reported():
    c = only(check("SetsDefaultDtype", ["output"]))
    assert c.status == "changes-global-state"
    assert "torch.set_default_dtype(torch.float64)" in c.message
    assert torch.get_default_dtype() == torch.float32


def test_a_change_made_at_import_is_reported_by_the_checks():
    adapter = load(f"{M.rsplit('.', 1)[0]}.contract_import:LSTM")
    assert torch.is_grad_enabled()
    record = check_implementation(adapter, checks=("output",), seed=0, max_examples=2,
                                  time_budget=3600.0)
    c = only(record)
    assert c.status == "changes-global-state"
    assert c.message.startswith(f"{adapter.name}: load: the implementation switched torch's "
                                f"grad mode off")


def test_a_harmless_setting_changed_is_restored_without_a_finding():
    threads = torch.get_num_threads()
    assert_no_false_alarm(check("SetsThreads", ["output", "gradients"]))
    assert torch.get_num_threads() == threads


def test_watch_restores_every_setting_and_reports_only_the_harmful():
    threads = torch.get_num_threads()
    changes = []
    with watch(changes):
        torch.set_grad_enabled(False)
        torch.set_num_threads(threads + 1)
        torch.set_default_dtype(torch.float64)
    assert torch.is_grad_enabled() and torch.get_num_threads() == threads
    assert torch.get_default_dtype() == torch.float32
    assert len(changes) == 2
    assert "switched torch's grad mode off (torch.set_grad_enabled(False))" in changes[0]
    assert "default dtype from torch.float32 to torch.float64" in changes[1]


def test_the_reference_runs_under_its_own_settings_whatever_was_left_set():
    case = materialize(CaseSpec.from_string("input_size=2,hidden_size=3,seq_len=3,batch=2,"
                                            "initial_state=random,seed=4"))
    want = run_reference(case).want
    try:
        torch.set_grad_enabled(False)
        torch.set_default_dtype(torch.float64)
        got = run_reference(case).want
        assert not torch.is_grad_enabled() and torch.get_default_dtype() == torch.float64
    finally:
        torch.set_grad_enabled(True)
        torch.set_default_dtype(torch.float32)
    for name in want.gradients:
        np.testing.assert_array_equal(got.gradients[name], want.gradients[name])
    with harness_settings():
        assert torch.is_grad_enabled()


# -- a wrong shape is wrong-shape everywhere ------------------------------------------------------
def test_a_wrong_shape_is_wrong_shape_in_every_check_training_included():
    record = check("BatchMajorOutputLSTM", ["output", "gradients", "unbatched", "stacking",
                                            "degenerate", "training"])
    for c in record.checks:
        assert c.status == "wrong-shape", (c.check, c.message)
        assert "output" in c.message and "shape" in c.message
    training = record.checks[-1]
    assert "output has shape (5, 10, 8); nn.LSTM gives (10, 5, 8)" in training.message


def test_torch_quantizable_lstm_bidirectional_stack_is_wrong_parameters_not_a_pass():
    """The bug issue 14 measured the harness passing: found now, before any comparison, on
    the smallest config that has it, blamed on the module."""
    c = only(check("QuantizableAdapter", ["output"]))
    assert c.status == "wrong-parameters"
    assert ("the module builds `layers.1.layer_fw.cell.igates.weight` as (4, 1); "
            "module_parameters maps nn.LSTM's `weight_ih_l1` (4, 2) to (4, 2) unchanged"
            in c.message)
    assert "a finding about the implementation" in c.message
    case = c.failure["case"]
    assert (case["num_layers"], case["bidirectional"]) == (2, True)
    assert_no_false_alarm(check("QuantizableUnidirectionalAdapter", ["output", "gradients"]))
