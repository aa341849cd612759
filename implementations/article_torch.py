"""The three hand-made torch LSTMs of "Building a LSTM by hand on PyTorch" (seed 002).

The article's layout, kept as written: ``x @ W`` (W is input_size x hidden) rather than
`nn.LSTM`'s ``W x``, one bias per gate where `nn.LSTM` has two, gates in the order i, f, g, o,
batch-first sequences, one layer, one direction. Each cell is:

- `NaiveCell`: eight matrices, W_i, U_i, ..., W_o, U_o, and four biases;
- `FusedCell`: the article's optimized cell, one matrix per input (W, input x 4H) and one per
  hidden state (U, hidden x 4H), one bias (4H);
- `PeepholeCell`: the fused cell with peephole connections. The article's peephole code feeds
  c_{t-1} *in place of* h_{t-1}, which never reduces to `nn.LSTM`. This one keeps h and adds
  Gers & Schmidhuber's diagonal peepholes (i and f look at c_{t-1}, o at c_t), the form ONNX,
  Keras and TensorFlow use, so that with peephole weights zero it is `nn.LSTM`.

`StackedLSTM` extends each to layers, directions and layouts; the adapters below map the
canonical parameters onto the article's layout (transposes, gate slices, b_ih + b_hh summed).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from parity import LSTMConfig, Supports, TorchAdapter, Variant

from ._stack import StackedLSTM, canonical_names

__all__ = [
    "FusedAdapter",
    "FusedCell",
    "NaiveAdapter",
    "NaiveCell",
    "PeepholeAdapter",
    "PeepholeCell",
]

GATE_NAMES = ("i", "f", "c", "o")  # the article's names; its "c" is nn.LSTM's g


def _uniform(shape, hidden, device, dtype) -> nn.Parameter:
    bound = 1.0 / math.sqrt(hidden)  # the article: "the same as PyTorch's default"
    return nn.Parameter(torch.empty(shape, device=device, dtype=dtype).uniform_(-bound, bound))


class _Projection(nn.Module):
    """Optional projection h = (o * tanh(c)) @ W_hr, in the article's x @ W layout."""

    def __init__(self, hidden_size, proj_size, device=None, dtype=None):
        super().__init__()
        self.W_hr = (
            _uniform((hidden_size, proj_size), hidden_size, device, dtype) if proj_size else None
        )

    def project(self, h):
        return h if self.W_hr is None else h @ self.W_hr


class NaiveCell(_Projection):
    """The article's first cell: eight matrices, one bias per gate."""

    def __init__(self, input_sz, hidden_sz, proj_size=0, bias=True, device=None, dtype=None):
        super().__init__(hidden_sz, proj_size, device, dtype)
        self.hidden_size = hidden_sz
        out = proj_size or hidden_sz
        for g in GATE_NAMES:
            setattr(self, f"W_{g}", _uniform((input_sz, hidden_sz), hidden_sz, device, dtype))
            setattr(self, f"U_{g}", _uniform((out, hidden_sz), hidden_sz, device, dtype))
            setattr(
                self, f"b_{g}", _uniform((hidden_sz,), hidden_sz, device, dtype) if bias else None
            )

    def _gate(self, g, x_t, h_t):
        pre = x_t @ getattr(self, f"W_{g}") + h_t @ getattr(self, f"U_{g}")
        b = getattr(self, f"b_{g}")
        return pre if b is None else pre + b

    def forward(self, x, init_states):
        bs, seq_sz, _ = x.size()
        h_t, c_t = init_states
        hidden_seq = []
        for t in range(seq_sz):
            x_t = x[:, t, :]
            i_t = torch.sigmoid(self._gate("i", x_t, h_t))
            f_t = torch.sigmoid(self._gate("f", x_t, h_t))
            g_t = torch.tanh(self._gate("c", x_t, h_t))
            o_t = torch.sigmoid(self._gate("o", x_t, h_t))
            c_t = f_t * c_t + i_t * g_t
            h_t = self.project(o_t * torch.tanh(c_t))
            hidden_seq.append(h_t.unsqueeze(0))
        hidden_seq = _stack_steps(hidden_seq, x, h_t)
        return hidden_seq, (h_t, c_t)


def _stack_steps(steps, x, h_t):
    if not steps:  # seq_len 0: an empty output of the right width
        return x.new_zeros(x.shape[0], 0, h_t.shape[-1])
    return torch.cat(steps, dim=0).transpose(0, 1).contiguous()


class FusedCell(_Projection):
    """The article's optimized cell: W (input x 4H), U (hidden x 4H), one bias, gates i, f, g, o."""

    def __init__(self, input_sz, hidden_sz, proj_size=0, bias=True, device=None, dtype=None):
        super().__init__(hidden_sz, proj_size, device, dtype)
        self.hidden_size = hidden_sz
        out = proj_size or hidden_sz
        self.W = _uniform((input_sz, hidden_sz * 4), hidden_sz, device, dtype)
        self.U = _uniform((out, hidden_sz * 4), hidden_sz, device, dtype)
        self.bias = _uniform((hidden_sz * 4,), hidden_sz, device, dtype) if bias else None

    def gates(self, x_t, h_t, c_t):
        gates = x_t @ self.W + h_t @ self.U
        return gates if self.bias is None else gates + self.bias

    def forward(self, x, init_states):
        bs, seq_sz, _ = x.size()
        HS = self.hidden_size
        h_t, c_t = init_states
        hidden_seq = []
        for t in range(seq_sz):
            x_t = x[:, t, :]
            gates = self.gates(x_t, h_t, c_t)
            i_t, f_t, g_t = (
                torch.sigmoid(gates[:, :HS]),  # input
                torch.sigmoid(gates[:, HS : HS * 2]),  # forget
                torch.tanh(gates[:, HS * 2 : HS * 3]),
            )
            c_t = f_t * c_t + i_t * g_t
            o_t = torch.sigmoid(self.output_gate(gates[:, HS * 3 :], c_t))
            h_t = self.project(o_t * torch.tanh(c_t))
            hidden_seq.append(h_t.unsqueeze(0))
        hidden_seq = _stack_steps(hidden_seq, x, h_t)
        return hidden_seq, (h_t, c_t)

    def output_gate(self, pre, c_t):
        return pre


class PeepholeCell(FusedCell):
    """The fused cell with diagonal peepholes: i and f see c_{t-1}, o sees c_t."""

    def __init__(self, input_sz, hidden_sz, proj_size=0, bias=True, device=None, dtype=None):
        super().__init__(input_sz, hidden_sz, proj_size, bias, device, dtype)
        self.p_i = _uniform((hidden_sz,), hidden_sz, device, dtype)
        self.p_f = _uniform((hidden_sz,), hidden_sz, device, dtype)
        self.p_o = _uniform((hidden_sz,), hidden_sz, device, dtype)

    def gates(self, x_t, h_t, c_t):
        HS = self.hidden_size
        gates = super().gates(x_t, h_t, c_t)
        peep = torch.cat(
            [c_t * self.p_i, c_t * self.p_f, torch.zeros_like(gates[:, 2 * HS :])], dim=1
        )
        return gates + peep

    def output_gate(self, pre, c_t):
        return pre + c_t * self.p_o


# -- adapters: canonical parameters -> the article's layout -----------------------------------
def _cell_params(config: LSTMConfig, params, per_cell) -> dict[str, torch.Tensor]:
    out = {}
    for layer in range(config.num_layers):
        for direction in range(config.num_directions):
            names = canonical_names(layer, direction)
            prefix = f"cells.{layer}.{direction}."
            w_ih, w_hh = params[names["weight_ih"]], params[names["weight_hh"]]
            bias = params[names["bias_ih"]] + params[names["bias_hh"]] if config.bias else None
            for key, value in per_cell(w_ih, w_hh, bias, layer, direction).items():
                out[prefix + key] = value
            if config.proj_size:
                out[prefix + "W_hr"] = params[names["weight_hr"]].T
    return out


class _ArticleAdapter(TorchAdapter):
    cell: type = FusedCell
    supports = Supports(gradients="autograd")

    def make_module(self, config: LSTMConfig, dtype: torch.dtype) -> nn.Module:
        return StackedLSTM(self.cell, **config.as_dict(), dtype=dtype)


class NaiveAdapter(_ArticleAdapter):
    name = "naive"
    description = "seed 002's naive torch cell: eight matrices, x @ W, one bias per gate"
    cell = NaiveCell

    def module_parameters(self, config, params):
        h = config.hidden_size

        def per_cell(w_ih, w_hh, bias, layer, direction):
            out = {}
            for k, g in enumerate(GATE_NAMES):
                rows = slice(k * h, (k + 1) * h)
                out[f"W_{g}"] = w_ih[rows].T
                out[f"U_{g}"] = w_hh[rows].T
                if bias is not None:
                    out[f"b_{g}"] = bias[rows]
            return out

        return _cell_params(config, params, per_cell)


class FusedAdapter(_ArticleAdapter):
    name = "fused"
    description = "seed 002's optimized torch cell: one fused matrix per input and hidden state"
    cell = FusedCell

    def module_parameters(self, config, params):
        def per_cell(w_ih, w_hh, bias, layer, direction):
            out = {"W": w_ih.T, "U": w_hh.T}
            if bias is not None:
                out["bias"] = bias
            return out

        return _cell_params(config, params, per_cell)


def peephole_parameters(config: LSTMConfig) -> dict[str, tuple[int, ...]]:
    """The peephole weights the variant adds: one vector per gate, layer and direction."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(config.num_layers):
        for direction in range(config.num_directions):
            sfx = f"_l{layer}{'_reverse' if direction else ''}"
            for gate in ("i", "f", "o"):
                shapes[f"weight_c{gate}{sfx}"] = (config.hidden_size,)
    return shapes


def _peepholes_off(config: LSTMConfig, params: dict) -> dict:
    return {
        n: (np.zeros_like(a) if n in peephole_parameters(config) else a) for n, a in params.items()
    }


class PeepholeAdapter(FusedAdapter):
    name = "peephole"
    description = (
        "seed 002's peephole cell (Gers & Schmidhuber's diagonal peepholes on the fused cell)"
    )
    cell = PeepholeCell
    variant = Variant(
        description="peephole connections: weight_ci/cf/co_l{k} (hidden_size,) on the cell state",
        reducing_setting="peephole weights zero",
        extra_parameters=peephole_parameters,
        reduce=_peepholes_off,
    )

    def module_parameters(self, config, params):
        out = super().module_parameters(config, params)
        for layer in range(config.num_layers):
            for direction in range(config.num_directions):
                sfx = f"_l{layer}{'_reverse' if direction else ''}"
                for gate in ("i", "f", "o"):
                    out[f"cells.{layer}.{direction}.p_{gate}"] = params[f"weight_c{gate}{sfx}"]
        return out
