"""The `numpy` LSTM through the harness, and broken copies of it that the harness must catch.

Each broken copy is the shipped code with one line changed (the change is asserted to apply, so a
refactoring cannot turn a test into one that checks the correct code twice): a term dropped or
mistaken in the hand-written backward, a gate slice off by one in the forward.
"""

import inspect
import textwrap

import numpy as np
import pytest

from parity_implementations import numpy_lstm
from parity_implementations.numpy_lstm import NumpyAdapter, NumpyLSTM
from parity import REFERENCE_CHECKS, CaseSpec, as_adapter, check_implementation


def _with_bug(function, line: str, replacement: str):
    """A copy of `function` with `line` (exactly one occurrence) replaced."""
    source = textwrap.dedent(inspect.getsource(function))
    assert source.count(line) == 1, f"{line!r} not found once in {function.__name__}"
    namespace = dict(vars(numpy_lstm))
    exec(compile(source.replace(line, replacement), inspect.getsourcefile(function), "exec"),
         namespace)
    return namespace[function.__name__]


def _broken_adapter(name, *, forward=None, backward=None):
    lstm = type(name, (NumpyLSTM,), {})
    if forward:
        lstm.forward_direction = staticmethod(_with_bug(numpy_lstm._forward_direction, *forward))
    if backward:
        lstm.backward_direction = staticmethod(
            _with_bug(numpy_lstm._backward_direction, *backward))
    return as_adapter(type(name, (NumpyAdapter,), {"lstm": lstm}), name=name)


BROKEN = {
    # The carry dc_{t+1} * f_{t+1} into c_t dropped: truncated back-propagation through c.
    "dropped-dc-carry": (dict(backward=("multiply(dc, f, out=dc_next)",
                                        "dc_next[...] = 0")),
                         ("gradients", "finite-differences")),
    # tanh'(c) taken as 1 - tanh(c) instead of 1 - tanh(c)^2.
    "wrong-tanh-derivative": (dict(backward=("multiply(tc, tc, out=tmp)",
                                             "np.copyto(tmp, tc)")),
                              ("gradients", "finite-differences")),
    # The forget gate read one row late (from the input gate's block's last row on).
    "forget-slice-off-by-one": (dict(forward=("i, f, o, g = a[:hid], a[hid : 2 * hid]",
                                              "i, f, o, g = a[:hid], a[hid + 1 : 2 * hid + 1]")),
                                ("output", "h_n", "c_n")),
}


@pytest.mark.parametrize("bug", list(BROKEN))
def test_a_broken_copy_is_caught_by_the_checks_it_breaks(bug):
    changes, checks = BROKEN[bug]
    record = check_implementation(_broken_adapter(bug, **changes), checks=checks, seed=0,
                                  max_examples=5, time_budget=3600.0, shrink=False)
    statuses = {c.check: c.status for c in record.checks}
    assert all(statuses[c] == "fail" for c in checks), statuses
    for c in record.checks:
        assert c.failure["finding"]["ratio"] > 1


# Every feature at once, in both dtypes; the full search runs in test_registered.py.
EVERYTHING = ("input_size=5,hidden_size=6,num_layers=2,bias=False,batch_first=True,dropout=0.5,"
              "bidirectional=True,proj_size=3,seq_len=7,batch=3,initial_state=random,seed=3")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_shipped_numpy_passes_every_check_with_every_feature(dtype):
    spec = CaseSpec.from_string(f"{EVERYTHING},dtype={dtype}")
    record = check_implementation(as_adapter(NumpyAdapter, name="numpy"), case=spec,
                                  checks=REFERENCE_CHECKS)  # properties: test_properties
    statuses = {c.check: c.status for c in record.checks}
    assert set(statuses.values()) == {"pass"}, statuses


def test_it_computes_without_torch():
    source = inspect.getsource(numpy_lstm)
    assert "import torch" not in source and "from torch" not in source


def test_the_forward_keeps_nothing_and_returns_fresh_arrays():
    """Two calls give equal, independent results: no buffer is shared between calls."""
    rng = np.random.default_rng(0)
    params = {n: rng.standard_normal(s) * 0.3 for n, s in
              NumpyAdapter().parameter_shapes(numpy_lstm.LSTMConfig(3, 4)).items()}
    lstm = NumpyLSTM(3, 4, params=params, dtype="float64")
    x = rng.standard_normal((5, 2, 3))
    first, (h1, c1) = lstm.forward(x)
    kept = first.copy(), h1.copy(), c1.copy()
    second, (h2, c2) = lstm.forward(x * 2)
    assert all(np.array_equal(a, b) for a, b in zip(kept, (first, h1, c1)))
    assert not np.allclose(first, second)
