"""Correct drop-in `torch.nn.LSTM` look-alikes, each computing the same function another way.

The harness must PASS every class here. They differ from `nn.LSTM` (and from each other) only in
the order and precision of their arithmetic, so they exercise the tolerance policy: a check that
fails one of them is too strict.

`TextbookLSTM` is the base of both this module and `broken.py`: an explicit per-layer,
per-direction loop over time, split into small hook methods so that each alternative here, and
each bug in `broken.py`, is one short override. The hooks, in the order one forward call runs
them:

    add_batch_dim / remove_batch_dim   unbatched (T, I) input <-> a batch of one
    to_internal / from_internal        the module's layout <-> the loop's (`time_dim`)
    initial_state                      hx, or zeros, as (L*D, B, H_out) and (L*D, B, H)
    layer_weights                      the parameters one (layer, direction) computes with
    direction_input / direction_output the reverse direction flips time, and flips back
    precompute_input                   work done on the whole sequence before the loop
    carry                              the state handed from one step to the next
    cell_step                          gate_preactivations -> split_gates -> gate_activations
                                       -> cell_update -> hidden_update (uses `sigmoid`, `tanh`)
    project                            h -> W_hr h when proj_size > 0
    stack_steps                        per-step outputs -> one tensor along `time_dim`
    final_state                        which step's (h, c) become h_n, c_n
    next_layer_input                   the directions' outputs -> the next layer's input
    assemble                           the value forward returns
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CORRECT",
    "BatchFirstNativeLSTM",
    "CellLoopLSTM",
    "Float64InternallyLSTM",
    "FusedLSTM",
    "PerGateLSTM",
    "PrecomputedInputLSTM",
    "SubsetLSTM",
    "TanhSigmoidLSTM",
    "TextbookLSTM",
    "Weights",
    "Where",
    "StepState",
]


class Weights(NamedTuple):
    """The parameters of one (layer, direction); biases and projection may be None."""

    ih: Tensor  # (4H, in)
    hh: Tensor  # (4H, H_out)
    b_ih: Tensor | None  # (4H,)
    b_hh: Tensor | None  # (4H,)
    hr: Tensor | None  # (H_out, H) when proj_size > 0


class Where(NamedTuple):
    """Where a step happens; `step` counts in processing order (the reverse direction's step 0
    reads the last time position)."""

    layer: int
    direction: int
    step: int
    seq_len: int


class StepState(NamedTuple):
    """What one step leaves behind: the recurrent h (projected), c, and h before projection."""

    h: Tensor
    c: Tensor
    h_full: Tensor


class TextbookLSTM(nn.Module):
    """The LSTM equations written out plainly: loop over layers, directions and time steps."""

    # The loop's tensor layout: 0 time-major (T, B, .), 1 batch-major (B, T, .).
    time_dim = 0
    # Whether unbatched (T, I) input is accepted; a subclass declines with False.
    supports_unbatched = True
    # Attributes rather than calls to torch so that a variant can swap in another formula.
    sigmoid = staticmethod(torch.sigmoid)
    tanh = staticmethod(torch.tanh)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        # nn.LSTM's own argument checks, so a look-alike rejects what it rejects.
        if not 0 <= dropout <= 1:
            raise ValueError(f"dropout should be a number in range [0, 1], got {dropout}")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError("hidden_size and num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.num_directions = 2 if bidirectional else 1
        self.check_supported()

        # Same names, shapes and registration order as nn.LSTM: the harness copies by name.
        H, H_out = hidden_size, self.output_size
        bound = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            width = input_size if layer == 0 else H_out * self.num_directions
            for direction in range(self.num_directions):
                shapes = [("weight_ih", (4 * H, width)), ("weight_hh", (4 * H, H_out))]
                if bias:
                    shapes += [("bias_ih", (4 * H,)), ("bias_hh", (4 * H,))]
                if proj_size > 0:
                    shapes += [("weight_hr", (proj_size, H))]
                for name, shape in shapes:
                    value = torch.empty(shape, device=device, dtype=dtype).uniform_(-bound, bound)
                    self.register_parameter(name + self.suffix(layer, direction),
                                            nn.Parameter(value))

    # -- configuration ------------------------------------------------------------------------
    @property
    def output_size(self) -> int:
        """Width of h, and of each direction's output."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @staticmethod
    def suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def check_supported(self) -> None:
        """Raise NotImplementedError for a configuration this class does not implement."""

    def flatten_parameters(self) -> None:
        """nn.LSTM's cuDNN hook; callers of a drop-in replacement may call it."""

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, batch_first={self.batch_first}, dropout={self.dropout}, "
                f"bidirectional={self.bidirectional}, proj_size={self.proj_size}")

    # -- forward ------------------------------------------------------------------------------
    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        if input.dim() not in (2, 3):
            raise ValueError(f"LSTM: expected input to be 2D or 3D, got {input.dim()}D")
        batched = input.dim() == 3
        if not batched:
            if not self.supports_unbatched:
                raise NotImplementedError(f"{type(self).__name__}: unbatched input")
            input, hx = self.add_batch_dim(input, hx)
        x = self.to_internal(input)
        if x.shape[self.time_dim] == 0:
            raise ValueError("Expected sequence length to be larger than 0 in RNN")
        h0, c0 = self.initial_state(hx, x.shape[1 - self.time_dim], x)
        output, h_n, c_n = self.run_layers(x, h0, c0)
        output = self.from_internal(output)
        if not batched:
            output, h_n, c_n = self.remove_batch_dim(output, h_n, c_n)
        return self.assemble(output, h_n, c_n)

    def add_batch_dim(self, input: Tensor, hx):
        # Unbatched input is time-major whatever batch_first says; put the batch of one where
        # batch_first expects it so the rest of forward sees an ordinary batched call.
        input = input.unsqueeze(0 if self.batch_first else 1)
        if hx is not None:
            hx = tuple(s.unsqueeze(1) for s in hx)
        return input, hx

    def remove_batch_dim(self, output: Tensor, h_n: Tensor, c_n: Tensor):
        return output.squeeze(0 if self.batch_first else 1), h_n.squeeze(1), c_n.squeeze(1)

    def to_internal(self, input: Tensor) -> Tensor:
        return input if self.batch_first == (self.time_dim == 1) else input.transpose(0, 1)

    def from_internal(self, output: Tensor) -> Tensor:
        return output if self.batch_first == (self.time_dim == 1) else output.transpose(0, 1)

    def initial_state(self, hx, batch: int, x: Tensor) -> tuple[Tensor, Tensor]:
        if hx is not None:
            return hx[0], hx[1]
        n = self.num_layers * self.num_directions
        zeros = dict(dtype=x.dtype, device=x.device)
        return (torch.zeros(n, batch, self.output_size, **zeros),
                torch.zeros(n, batch, self.hidden_size, **zeros))

    def assemble(self, output: Tensor, h_n: Tensor, c_n: Tensor):
        return output, (h_n, c_n)

    # -- layers and directions ----------------------------------------------------------------
    def run_layers(self, x: Tensor, h0: Tensor, c0: Tensor):
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction  # layer-major, as nn.LSTM
                out, h, c = self.run_direction(x, h0[k], c0[k], layer, direction)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            if layer < self.num_layers - 1:
                x = self.next_layer_input(outs, layer)
        return torch.cat(outs, -1), torch.stack(h_n), torch.stack(c_n)

    def next_layer_input(self, outs: list[Tensor], layer: int) -> Tensor:
        # nn.LSTM drops out every layer's output but the last, and only while training.
        return F.dropout(torch.cat(outs, -1), self.dropout, self.training)

    def layer_weights(self, layer: int, direction: int) -> Weights:
        sfx = self.suffix(layer, direction)
        get = lambda name: getattr(self, name + sfx, None)  # noqa: E731
        return Weights(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"),
                       get("weight_hr"))

    def run_direction(self, x: Tensor, h: Tensor, c: Tensor, layer: int, direction: int):
        w = self.layer_weights(layer, direction)
        xs = self.precompute_input(self.direction_input(x, direction), w)
        seq_len = xs.shape[self.time_dim]
        states = []
        for step in range(seq_len):
            where = Where(layer, direction, step, seq_len)
            h, c = self.carry(h, c, where)
            h_full, c = self.cell_step(xs.select(self.time_dim, step), h, c, w, where)
            h = self.project(h_full, w)
            states.append(StepState(h, c, h_full))
        out = self.direction_output(self.stack_steps([s.h for s in states]), direction)
        h_n, c_n = self.final_state(direction, states, out, w)
        return out, h_n, c_n

    def direction_input(self, x: Tensor, direction: int) -> Tensor:
        # The reverse direction is the forward recurrence run on the time-reversed sequence.
        return x.flip(self.time_dim) if direction == 1 else x

    def direction_output(self, out: Tensor, direction: int) -> Tensor:
        # ...and its outputs go back to the time positions they were computed from.
        return out.flip(self.time_dim) if direction == 1 else out

    def stack_steps(self, hs: list[Tensor]) -> Tensor:
        return torch.stack(hs, self.time_dim)

    def final_state(self, direction: int, states: list[StepState], out: Tensor, w: Weights):
        # The last step processed: for the reverse direction that is time position 0.
        return states[-1].h, states[-1].c

    # -- one step -----------------------------------------------------------------------------
    def precompute_input(self, xs: Tensor, w: Weights) -> Tensor:
        return xs

    def carry(self, h: Tensor, c: Tensor, where: Where) -> tuple[Tensor, Tensor]:
        return h, c

    def cell_step(self, x: Tensor, h: Tensor, c: Tensor, w: Weights, where: Where):
        """One step: (x_t, h_{t-1}, c_{t-1}) -> (h_t before projection, c_t)."""
        pre = self.gate_preactivations(x, h, w, where)
        i, f, g, o = self.gate_activations(*self.split_gates(pre), where)
        c = self.cell_update(i, f, g, c, where)
        return self.hidden_update(o, c, where), c

    def gate_preactivations(self, x: Tensor, h: Tensor, w: Weights, where: Where) -> Tensor:
        pre = x @ w.ih.T + h @ w.hh.T
        if w.b_ih is not None:
            pre = pre + w.b_ih
        if w.b_hh is not None:
            pre = pre + w.b_hh
        return pre

    def split_gates(self, pre: Tensor):
        i, f, g, o = pre.chunk(4, -1)  # PyTorch's row-block order
        return i, f, g, o

    def gate_activations(self, i, f, g, o, where: Where):
        return self.sigmoid(i), self.sigmoid(f), self.tanh(g), self.sigmoid(o)

    def cell_update(self, i, f, g, c, where: Where) -> Tensor:
        return f * c + i * g

    def hidden_update(self, o, c, where: Where) -> Tensor:
        return o * self.tanh(c)

    def project(self, h: Tensor, w: Weights) -> Tensor:
        return h if w.hr is None else h @ w.hr.T


class PerGateLSTM(TextbookLSTM):
    """Eight matrix products, one per (gate, input or hidden), on slices of the canonical
    weights: the layout of implementations that keep one matrix per gate."""

    def gate_preactivations(self, x, h, w, where):
        H = self.hidden_size
        gates = []
        for k in range(4):
            rows = slice(k * H, (k + 1) * H)
            pre = x @ w.ih[rows].T + h @ w.hh[rows].T
            if w.b_ih is not None:
                pre = pre + w.b_ih[rows] + w.b_hh[rows]
            gates.append(pre)
        return torch.cat(gates, -1)


class FusedLSTM(TextbookLSTM):
    """One matrix product per step over [x, h] with the weights side by side and the two biases
    summed once: the usual fused-kernel layout, with its own summation order."""

    def gate_preactivations(self, x, h, w, where):
        pre = torch.cat([x, h], -1) @ torch.cat([w.ih, w.hh], 1).T
        return pre if w.b_ih is None else pre + (w.b_ih + w.b_hh)


class CellLoopLSTM(TextbookLSTM):
    """Steps with torch's own fused cell (`torch.lstm_cell`, what nn.LSTMCell runs), which has no
    projection."""

    def check_supported(self):
        if self.proj_size > 0:
            raise NotImplementedError("CellLoopLSTM: proj_size > 0 (nn.LSTMCell has no projection)")

    def cell_step(self, x, h, c, w, where):
        h, c = torch.lstm_cell(x, (h, c), w.ih, w.hh, w.b_ih, w.b_hh)
        return h, c


class SubsetLSTM(TextbookLSTM):
    """Correct, but declines several features: the harness must only draw what it supports."""

    supports_unbatched = False

    def check_supported(self):
        if self.bidirectional:
            raise NotImplementedError("SubsetLSTM: bidirectional")
        if self.proj_size > 0:
            raise NotImplementedError("SubsetLSTM: proj_size > 0")
        if self.num_layers > 2:
            raise NotImplementedError("SubsetLSTM: num_layers > 2")


class PrecomputedInputLSTM(TextbookLSTM):
    """Projects the whole input sequence with one matrix product before the loop (cuDNN's
    strategy), so the step only adds the recurrent term."""

    def precompute_input(self, xs, w):
        xw = xs @ w.ih.T
        return xw if w.b_ih is None else xw + w.b_ih

    def gate_preactivations(self, xw, h, w, where):
        pre = xw + h @ w.hh.T
        return pre if w.b_hh is None else pre + w.b_hh


def _sigmoid_via_tanh(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.tanh(0.5 * x))


class TanhSigmoidLSTM(TextbookLSTM):
    """Sigmoid as 0.5 (1 + tanh(x / 2)): equal mathematically, rounded differently."""

    sigmoid = staticmethod(_sigmoid_via_tanh)


def _tanh_via_sigmoid(x: Tensor) -> Tensor:
    return 2.0 * torch.sigmoid(2.0 * x) - 1.0


class SigmoidTanhLSTM(TextbookLSTM):
    """Tanh as 2 sigmoid(2x) - 1 (one exp for all four gates in fused kernels): equal
    mathematically, off by an ulp absolute where tanh is near 0, so a tiny loss carries more
    rounding than its own size suggests."""

    tanh = staticmethod(_tanh_via_sigmoid)


class Float64InternallyLSTM(TextbookLSTM):
    """Does all arithmetic in float64 and rounds the results to the input's dtype: more accurate
    than torch's float32 LSTM, never less."""

    def forward(self, input, hx=None):
        wide = None if hx is None else tuple(s.to(torch.float64) for s in hx)
        output, (h_n, c_n) = super().forward(input.to(torch.float64), wide)
        return output.to(input.dtype), (h_n.to(input.dtype), c_n.to(input.dtype))

    def layer_weights(self, layer, direction):
        w = super().layer_weights(layer, direction)
        return Weights(*(None if t is None else t.to(torch.float64) for t in w))


class BatchFirstNativeLSTM(TextbookLSTM):
    """Keeps (B, T, .) inside and loops over dim 1, so the layout conversions run the other way
    round from the time-major classes."""

    time_dim = 1


class EmptySequenceAnsweredLSTM(TextbookLSTM):
    """Answers a zero-length sequence where nn.LSTM raises: no output steps, and the initial
    state (zeros when none is given) as the final state: what an empty sequence computes.
    Not in CORRECT (it differs from nn.LSTM only there); the degenerate property must pass it."""

    def forward(self, input, hx=None):
        time_dim = 1 if self.batch_first and input.dim() == 3 else 0
        if input.shape[time_dim] == 0:
            shape = list(input.shape)
            shape[-1] = self.output_size * self.num_directions
            if hx is None:
                rows = (input.shape[1 - time_dim],) if input.dim() == 3 else ()
                n = self.num_layers * self.num_directions
                hx = (input.new_zeros((n, *rows, self.output_size)),
                      input.new_zeros((n, *rows, self.hidden_size)))
            return input.new_zeros(shape), (hx[0].clone(), hx[1].clone())
        return super().forward(input, hx)


CORRECT = (
    TextbookLSTM,
    PerGateLSTM,
    FusedLSTM,
    CellLoopLSTM,
    SubsetLSTM,
    PrecomputedInputLSTM,
    TanhSigmoidLSTM,
    SigmoidTanhLSTM,
    Float64InternallyLSTM,
    BatchFirstNativeLSTM,
)
