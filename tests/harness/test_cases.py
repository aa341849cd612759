"""Cases: the printable spec round-trips, and the same spec gives the same arrays."""

import numpy as np
import pytest
from hypothesis import given, settings

from parity import CaseSpec, InvalidArgument, LSTMConfig, materialize, parameter_shapes
from parity.strategies import case_specs


@given(case_specs())
@settings(max_examples=200, deadline=None)
def test_spec_string_round_trips(spec):
    assert CaseSpec.from_string(spec.to_string()) == spec


@given(case_specs())
@settings(max_examples=60, deadline=None)
def test_materialize_is_deterministic_and_shaped_like_nn_lstm(spec):
    a, b = materialize(spec), materialize(spec)
    assert a.input.tobytes() == b.input.tobytes()
    assert all(a.params[n].tobytes() == b.params[n].tobytes() for n in a.params)
    assert a.input.shape == spec.input_shape and a.input.dtype == np.dtype(spec.dtype)
    assert {n: p.shape for n, p in a.params.items()} == parameter_shapes(spec.config)
    h_shape, c_shape = spec.state_shapes()
    if spec.initial_state == "none":
        assert a.state is None
    else:
        assert (a.state[0].shape, a.state[1].shape) == (h_shape, c_shape)
    assert [c.shape for c in a.cotangents] == [spec.output_shape, h_shape, c_shape]


def test_shapes_follow_nn_lstm_conventions():
    spec = CaseSpec.from_string(
        "input_size=3,hidden_size=5,num_layers=2,bidirectional=true,proj_size=2,"
        "batch_first=true,seq_len=7,batch=4")
    assert spec.shapes() == {"input": (4, 7, 3), "output": (4, 7, 4), "h_n": (4, 4, 2),
                             "c_n": (4, 4, 5)}
    unbatched = spec.replace(batch=None)
    assert unbatched.shapes() == {"input": (7, 3), "output": (7, 4), "h_n": (4, 2),
                                  "c_n": (4, 5)}


def test_parameter_shapes_match_torch():
    import torch

    for kwargs in ({}, {"num_layers": 3, "bidirectional": True, "proj_size": 2, "bias": False}):
        config = LSTMConfig(4, 6, **kwargs)
        module = torch.nn.LSTM(4, 6, **kwargs)
        assert parameter_shapes(config) == {n: tuple(p.shape)
                                            for n, p in module.named_parameters()}


@pytest.mark.parametrize("text, message", [
    ("input_size=0,hidden_size=2,seq_len=1", "input_size=0: must be an integer >= 1"),
    ("input_size=2,hidden_size=2,proj_size=2,seq_len=1", "proj_size=2: must be smaller"),
    ("input_size=2,hidden_size=2,seq_len=1,dtype=float16", "dtype='float16'"),
    ("input_size=2,hidden_size=2,seq_len=x", "seq_len='x': expected int"),
    ("input_size=2,hidden_size=2,colour=red,seq_len=1", "'colour=red' is not key=value"),
    ("input_size=2,seq_len=1", "hidden_size is missing"),
])
def test_bad_specs_name_the_argument(text, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        CaseSpec.from_string(text)


def test_the_one_line_case_always_shows_dtype_and_initial_state():
    spec = CaseSpec.from_string("input_size=2,hidden_size=3,seq_len=4,batch=2,seed=1")
    line = spec.to_string()
    assert "dtype=float64" in line and "initial_state=none" in line
    # The older form, without them, still reads back as the same case.
    assert CaseSpec.from_string(line) == spec
