"""Loading implementations: entry points, module:attr, look-alike probing, clear errors."""

import pytest
import torch

from parity import Adapter, LoadError, Supports, as_adapter, load, registered
from parity.registry import LookalikeAdapter

BUILT_IN = {"torch", "naive", "fused", "peephole", "lstmcell"}


def test_built_ins_register_through_entry_points():
    assert BUILT_IN <= set(registered())
    for name in BUILT_IN:
        adapter = load(name)
        assert isinstance(adapter, Adapter)
        assert adapter.name == name and adapter.target == name


def test_torch_lstm_itself_is_a_lookalike_supporting_everything():
    adapter = load("torch.nn:LSTM")
    assert isinstance(adapter, LookalikeAdapter)
    # Supports() leaves packed off (only torch modules can take a PackedSequence): the probe
    # finds that nn.LSTM takes one.
    assert adapter.supports == Supports(packed=True)


class NoReverse(torch.nn.LSTM):
    """A look-alike declining two features."""

    def __init__(self, *args, **kwargs):
        if kwargs.get("bidirectional") or kwargs.get("proj_size"):
            raise NotImplementedError("one direction, no projection")
        super().__init__(*args, **kwargs)

    def forward(self, input, hx=None):
        if input.dim() == 2:
            raise NotImplementedError("batched input only")
        return super().forward(input, hx)


class Float32Only(torch.nn.LSTM):
    def __init__(self, *args, dtype=None, **kwargs):
        if dtype == torch.float64:
            raise NotImplementedError("float32 only")
        super().__init__(*args, dtype=dtype, **kwargs)


class NoDtypeArgument(torch.nn.LSTM):
    """Takes no device/dtype: the harness converts it with .to(dtype)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size)


class WrongNames(torch.nn.Module):
    def __init__(self, input_size, hidden_size, **kwargs):
        super().__init__()
        self.W = torch.nn.Parameter(torch.zeros(input_size, 4 * hidden_size))


def test_lookalike_probing_finds_declined_features():
    s = as_adapter(NoReverse, name="t").supports
    assert (s.bidirectional, s.projection, s.unbatched) == (False, False, False)
    assert s.multi_layer and s.no_bias and s.batch_first and s.float64
    assert as_adapter(Float32Only, name="t").supports.dtypes == ("float32",)


def test_lookalike_without_dtype_argument_is_converted():
    adapter = as_adapter(NoDtypeArgument, name="t")
    assert adapter.supports.float64
    from parity import LSTMConfig
    module = adapter.make_module(LSTMConfig(2, 3), torch.float64)
    assert next(module.parameters()).dtype == torch.float64


@pytest.mark.parametrize("target, message", [
    ("no-such-name", "no implementation registered under that name"),
    ("no_such_module_xyz:LSTM", "cannot import 'no_such_module_xyz'"),
    ("torch.nn:NoSuchLSTM", "module 'torch.nn' has no attribute 'NoSuchLSTM'"),
    ("math:pi", "neither a parity adapter"),
    ("tests.harness.test_registry:WrongNames", "not a drop-in nn.LSTM look-alike"),
    (":X", "expected NAME or MODULE:ATTR"),
])
def test_load_errors_say_what_is_wrong(target, message):
    with pytest.raises(LoadError, match=message):
        load(target)


def test_an_instance_is_refused_with_a_hint():
    with pytest.raises(LoadError, match="give the class"):
        as_adapter(torch.nn.LSTM(2, 3), name="x")
