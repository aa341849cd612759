"""Variants: compared with nn.LSTM in their reducing setting, all gradients checked by finite
differences in every setting (extra parameters included)."""

import dataclasses

import torch

from parity_implementations.article_torch import FusedAdapter, PeepholeAdapter, PeepholeCell
from parity import REFERENCE_CHECKS, as_adapter, check_implementation


class OutputPeepholeDetachedCell(PeepholeCell):
    def output_gate(self, pre, c_t):
        return pre + c_t * self.p_o.detach()


class OutputPeepholeDetached(PeepholeAdapter):
    """Peephole whose output-gate peephole gets no gradient: invisible to nn.LSTM, not to FD."""

    cell = OutputPeepholeDetachedCell


class NeverReducesCell(PeepholeCell):
    def output_gate(self, pre, c_t):
        return pre + c_t * (self.p_o + 0.5)


class NeverReduces(PeepholeAdapter):
    """Peephole with an offset: with its weights zero it still is not nn.LSTM."""

    cell = NeverReducesCell


def _statuses(adapter_cls, checks=REFERENCE_CHECKS):  # properties: test_registered
    record = check_implementation(as_adapter(adapter_cls, name=adapter_cls.__name__), seed=0,
                                  max_examples=8, checks=checks)
    return {c.check: c.status for c in record.checks}


def test_the_peephole_variant_passes_everything():
    assert set(_statuses(PeepholeAdapter).values()) == {"pass"}


def test_a_gradient_bug_in_an_extra_parameter_is_caught_by_finite_differences():
    statuses = _statuses(OutputPeepholeDetached)
    assert statuses["finite-differences"] == "fail"
    # In the reducing setting the detached parameter is zero: nn.LSTM cannot see the bug.
    assert statuses["output"] == statuses["gradients"] == "pass"


def test_a_variant_that_does_not_reduce_fails_against_the_reference():
    assert _statuses(NeverReduces, ("output",)) == {"output": "fail"}


def test_extra_parameters_are_drawn_nonzero_for_finite_differences():
    from parity.evaluation import Evaluation
    from parity import CaseSpec

    adapter = as_adapter(PeepholeAdapter, name="peephole")
    spec = CaseSpec.from_string("input_size=2,hidden_size=3,seq_len=2,batch=1,seed=5")
    drawn = Evaluation(adapter, spec, reduced=False).implementation_params
    reduced = Evaluation(adapter, spec).implementation_params
    assert torch.tensor(drawn["weight_co_l0"]).abs().sum() > 0
    assert not reduced["weight_co_l0"].any()


# -- a reducing setting that is a configuration: Variant.reducing_adapter ---------------------
class FusedSwapped(FusedAdapter):
    """The fused cell reading its gate blocks as i, g, f, o."""

    def module_parameters(self, config, params):
        out = super().module_parameters(config, params)
        h = config.hidden_size
        order = [0, 2, 1, 3]
        for name in [n for n in out if n.endswith((".W", ".U"))]:
            out[name] = torch.cat([out[name][:, k * h:(k + 1) * h] for k in order], dim=1)
        return out


def _reducing_through(adapter_cls):
    class Peephole(PeepholeAdapter):
        variant = dataclasses.replace(PeepholeAdapter.variant, reducing_adapter=adapter_cls())

    return Peephole


def test_the_comparisons_build_the_reducing_adapter_and_finite_differences_the_variant():
    from parity.evaluation import Evaluation
    from parity import CaseSpec

    adapter = as_adapter(_reducing_through(FusedAdapter), name="peephole-via-fused")
    spec = CaseSpec.from_string("input_size=2,hidden_size=3,seq_len=2,batch=1,seed=5")
    reduced, drawn = Evaluation(adapter, spec), Evaluation(adapter, spec, reduced=False)
    assert isinstance(reduced.builder, FusedAdapter)
    assert "weight_co_l0" not in reduced.implementation_params  # fused takes what it names
    assert drawn.builder is adapter and "weight_co_l0" in drawn.implementation_params
    assert _quick(_reducing_through(FusedAdapter)) == {"output": "pass", "gradients": "pass"}


def test_a_wrong_reducing_adapter_is_caught():
    assert _quick(_reducing_through(FusedSwapped), ("output",)) == {"output": "fail"}


def _quick(adapter_cls, checks=("output", "gradients")):
    """Wiring, not search: the edge cases and two drawn cases, no shrinking."""
    record = check_implementation(as_adapter(adapter_cls, name=adapter_cls.__name__), seed=0,
                                  max_examples=2, checks=checks, shrink=False)
    return {c.check: c.status for c in record.checks}
