"""Hypothesis strategies: configs, sequences, weights and initial states, as `CaseSpec`s.

Drawn broadly on purpose: sizes from 1 to past the block sizes kernels like (8, 16, 32), and
now and then the widths of real layers (64 to 256, where kernels switch to other tilings),
combinations of features rather than one at a time, weights and inputs at scales far from the
default init, long sequences in every run. Each strategy draws only what `supports` allows.
Choices are ordered simplest first, so a failure shrinks toward the plainest case that still
fails: one layer, one direction, default scales, no initial state.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .adapter import LSTMConfig, Supports
from .cases import CaseSpec

__all__ = [
    "EDGE_CASES",
    "REAL_EDGE_CASES",
    "case_specs",
    "real_sizes",
    "edge_cases",
    "initial_states",
    "lstm_configs",
    "scales",
    "sequences",
    "sizes",
]

ALL = Supports()

# Sizes around the block widths vectorized kernels use, where off-by-one tails hide.
BLOCK_EDGES = (7, 8, 9, 15, 16, 17, 31, 32, 33)
# Real layers' widths, around the tiles kernels switch to for large layers (64, 128); drawn for
# one case in WIDE_ONE_IN of hidden and of input sizes, shorter and narrower-batched to cost alike.
WIDE_SIZES = (63, 64, 65, 127, 128, 129, 256)
WIDE_ONE_IN = 8
# Long sequences: past 64 (and past a power of two) where drift and truncation show.
LONG_SEQUENCES = (65, 100, 128, 200)
# Real batch and sequence sizes, drawn for one case in REAL_ONE_IN at small widths (REAL_WIDTH,
# one or two layers; a long sequence in LONG_ONE_IN of them, a wide batch otherwise): batches
# past the 64-row tiles of batched kernels, sequences past the 256- and 512-step chunks of
# long-sequence kernels. Such a case costs its steps more than its multiply-adds (each step is a
# few calls), so a long one is kept to REAL_STEPS steps over all layers and directions (250 to
# 1000 steps each), and a wide batch to what MAX_WORK allows.
REAL_BATCHES = (65, 128, 129, 256)
REAL_SEQUENCES = (257, 300, 513, 1000)
REAL_ONE_IN = 48
LONG_ONE_IN = 4  # of those, a long sequence (it costs as much as ~5 other cases)
REAL_WIDTH = 9  # block edges 7, 8, 9 included
REAL_STEPS = 1000
# Keep one case cheap enough to run hundreds of: seq_len x batch x width x layers x directions,
# where a wide layer's width counts as its multiply-adds per step over those of a 40 x 40 one
# (see `_work`).
MAX_WORK = 120_000

WEIGHT_SCALES = (1.0, 3.0, 0.25, 8.0)  # x nn.LSTM's bound 1/sqrt(H); 3 and 8 saturate the gates
BIAS_SCALES = (1.0, 0.0, 4.0)
INPUT_SCALES = (1.0, 0.01, 10.0, 100.0)  # raw, unnormalized data as well as normalized
INPUT_OFFSETS = (0.0, 3.0)


def sizes(*, max_size: int = 40) -> st.SearchStrategy[int]:
    """Widths: small ones most, block edges often, anything up to `max_size` sometimes."""
    return st.one_of(
        st.integers(1, min(6, max_size)),
        st.sampled_from([s for s in BLOCK_EDGES if s <= max_size]),
        st.integers(1, max_size),
    )


def _sometimes_wide(narrow: st.SearchStrategy[int], wide: bool) -> st.SearchStrategy[int]:
    """`narrow`, or one of WIDE_SIZES in one draw of WIDE_ONE_IN (shrinking toward narrow)."""
    if not wide:
        return narrow
    return st.integers(0, WIDE_ONE_IN - 1).flatmap(
        lambda k: st.sampled_from(WIDE_SIZES) if k == WIDE_ONE_IN - 1 else narrow
    )


@st.composite
def lstm_configs(
    draw,
    supports: Supports = ALL,
    *,
    max_input: int = 40,
    max_hidden: int = 40,
    max_layers: int = 3,
    wide: bool = True,
) -> LSTMConfig:
    """`nn.LSTM` constructor arguments, within what `supports` declares; with `wide`, hidden and
    input sizes are now and then one of WIDE_SIZES, past `max_hidden` and `max_input`."""
    hidden = draw(_sometimes_wide(sizes(max_size=max_hidden), wide))
    input_size = draw(_sometimes_wide(sizes(max_size=max_input), wide))
    layers = draw(st.integers(1, max_layers)) if supports.multi_layer else 1
    bidirectional = draw(st.booleans()) if supports.bidirectional else False
    proj = 0
    if supports.projection and hidden > 1:
        proj = draw(st.one_of(st.just(0), st.integers(1, hidden - 1)))
    bias = draw(st.sampled_from([True, False])) if supports.no_bias else True
    batch_first = draw(st.booleans()) if supports.batch_first else False
    dropout = draw(st.sampled_from([0.0, 0.5])) if supports.dropout else 0.0
    return LSTMConfig(input_size, hidden, layers, bias, batch_first, dropout, bidirectional, proj)


def sequences(*, max_len: int = 64) -> st.SearchStrategy[int]:
    """Sequence lengths: short ones, up to `max_len`, and long ones past it."""
    return st.one_of(st.integers(1, 8), st.integers(1, max_len), st.sampled_from(LONG_SEQUENCES))


def initial_states() -> st.SearchStrategy[str]:
    """No initial state (the default path), random nonzero h0/c0, or explicit zeros."""
    return st.sampled_from(["none", "random", "zeros"])


def scales() -> st.SearchStrategy[tuple[float, float, float, float]]:
    """(weight, bias, input scale, input offset)."""
    return st.tuples(
        st.sampled_from(WEIGHT_SCALES),
        st.sampled_from(BIAS_SCALES),
        st.sampled_from(INPUT_SCALES),
        st.sampled_from(INPUT_OFFSETS),
    )


def _width(config: LSTMConfig) -> int:
    """The larger size, or for a wide layer its multiply-adds per step, 4 H (I + H), in units of
    those of a 40 x 40 layer per 40 of width: the same as the larger size up to 40 x 40."""
    hidden, inp = config.hidden_size, config.input_size
    return max(inp, hidden, -(-hidden * (inp + hidden) // 80))


def _work(config: LSTMConfig, seq_len: int, batch: int | None) -> int:
    return seq_len * (batch or 1) * _width(config) * config.num_layers * config.num_directions


@st.composite
def real_sizes(
    draw, supports: Supports = ALL, *, max_work: int = MAX_WORK
) -> tuple[LSTMConfig, int, int]:
    """(config, seq_len, batch) of a real batch or a real sequence at small widths: one of
    REAL_BATCHES rows of a short sequence, or one of REAL_SEQUENCES steps of a small batch."""
    config = draw(
        lstm_configs(
            supports, max_input=REAL_WIDTH, max_hidden=REAL_WIDTH, max_layers=2, wide=False
        )
    )
    directions_layers = config.num_layers * config.num_directions
    if draw(st.integers(0, LONG_ONE_IN - 1)) == LONG_ONE_IN - 1:
        seq_len = draw(st.sampled_from(REAL_SEQUENCES))
        seq_len = max(1, min(seq_len, REAL_STEPS // directions_layers))
        batch = draw(st.integers(1, 4))
    else:
        seq_len = draw(st.integers(1, 8))
        batch = draw(st.sampled_from(REAL_BATCHES))
    batch = max(1, min(batch, max_work // max(1, _work(config, seq_len, 1))))
    return config, seq_len, batch


@st.composite
def case_specs(
    draw,
    supports: Supports = ALL,
    *,
    dtypes: tuple[str, ...] | None = None,
    max_seq_len: int = 64,
    max_work: int = MAX_WORK,
) -> CaseSpec:
    """One case: config, sequence length, batch, dtype, scales, initial state, seed; now and
    then (one in REAL_ONE_IN, `real_sizes`) a real batch or sequence at small widths."""
    if draw(st.integers(0, REAL_ONE_IN - 1)) == REAL_ONE_IN - 1:
        config, seq_len, batch = draw(real_sizes(supports, max_work=max_work))
    else:
        config = draw(lstm_configs(supports))
        seq_len = draw(sequences(max_len=max_seq_len))
        # A wide layer runs a shorter sequence rather than blow the budget (narrow ones never
        # do).
        seq_len = max(1, min(seq_len, max_work // max(1, _work(config, 1, 1))))
        unbatched = supports.unbatched and draw(st.booleans())
        batch = None
        if not unbatched:
            # Shrink the batch before the rest when the case would be slow to run.
            room = max(1, max_work // max(1, _work(config, seq_len, 1)))
            batch = draw(
                st.one_of(st.integers(1, min(4, room)), st.integers(1, max(1, min(40, room))))
            )
    dtype = draw(st.sampled_from(list(dtypes or supports.dtypes)))
    weight, bias, scale, offset = draw(scales())
    return CaseSpec(
        config,
        seq_len,
        batch,
        dtype,
        draw(initial_states()) if supports.initial_state else "none",
        weight,
        bias,
        scale,
        offset,
        seed=draw(st.integers(0, 2**32 - 1)),
    )


# Explicit examples run on every search, before anything is drawn: the edges, and long and wide
# cases so that no run depends on luck to reach them.
EDGE_CASES = (
    "input_size=1,hidden_size=1,seq_len=1,batch=1,seed=11",
    "input_size=3,hidden_size=5,num_layers=3,bidirectional=true,proj_size=2,seq_len=6,batch=2,"
    "initial_state=random,seed=12",
    "input_size=4,hidden_size=8,num_layers=2,seq_len=200,batch=2,weight_scale=3.0,"
    "bias_scale=4.0,initial_state=random,seed=13",
    "input_size=40,hidden_size=33,seq_len=5,batch=17,bidirectional=true,seed=14",
    "input_size=5,hidden_size=6,batch_first=true,proj_size=4,seq_len=9,batch=3,input_scale=100.0,"
    "input_offset=3.0,initial_state=zeros,seed=15",
    # Unbatched input with a state of several layers and directions: (L*D, H) in, not (1, H).
    "input_size=2,hidden_size=3,num_layers=2,bidirectional=true,seq_len=7,batch=none,"
    "initial_state=random,bias=false,seed=16",
    # A real layer's width, past the 64- and 128-wide tiles of large-layer kernel paths.
    "input_size=64,hidden_size=129,num_layers=2,bidirectional=true,seq_len=3,batch=2,"
    "initial_state=random,seed=17",
    # Saturated gates that add the same sign every step: the cell state grows past 50 (past
    # any clipping a port may have left in), which only c_n shows (tanh(50) is 1).
    "input_size=4,hidden_size=8,seq_len=100,batch=2,weight_scale=8.0,bias_scale=4.0,"
    "input_offset=3.0,seed=26",
)
# Real batch and sequence sizes at small widths (cost of a 40 x 40 case of 3 x 25 steps): past
# the 64-row batch tiles of kernels, and past 256- and 512-step sequence chunks. Explicit in the
# checks against nn.LSTM (output, h_n, c_n, gradients), which see what a tile or a chunk gets
# wrong directly. Finite differences (~25 forward calls a case) and the properties (several)
# draw such sizes only now and then (`real_sizes`): the thousand-step case alone was a third of
# each of their costs for a Python-loop LSTM.
REAL_EDGE_CASES = (
    "input_size=3,hidden_size=4,seq_len=3,batch=256,initial_state=random,seed=27",
    "input_size=2,hidden_size=3,seq_len=1000,batch=2,initial_state=random,seed=28",
)


def edge_cases(
    supports: Supports = ALL, dtypes: tuple[str, ...] | None = None, *, real: bool = True
) -> list[CaseSpec]:
    """`EDGE_CASES` (and with `real`, `REAL_EDGE_CASES`) in every supported dtype, with
    unsupported features turned off."""
    out = []
    for text in EDGE_CASES + (REAL_EDGE_CASES if real else ()):
        spec = CaseSpec.from_string(text)
        c = spec.config
        changes: dict[str, object] = {
            "num_layers": c.num_layers if supports.multi_layer else 1,
            "bidirectional": c.bidirectional and supports.bidirectional,
            "proj_size": c.proj_size if supports.projection else 0,
            "bias": c.bias or not supports.no_bias,
            "batch_first": c.batch_first and supports.batch_first,
            "dropout": c.dropout if supports.dropout else 0.0,
        }
        if spec.batch is None and not supports.unbatched:
            changes["batch"] = 1
        if not supports.initial_state:
            changes["initial_state"] = "none"
        spec = spec.replace(**changes)
        for dtype in dtypes or supports.dtypes:
            out.append(spec.replace(dtype=dtype))
    return out
