"""The gate-by-gate NumPy forward of "The LSTM reference card" (seed 001), forward only.

The article writes one Python function per gate (forget, input, cell state, output) in
`nn.LSTM`'s ``W x + b`` layout, and reads each gate's weights out of a trained `nn.LSTM` by row
slices of ``weight_ih_l0`` / ``weight_hh_l0`` and of both biases, in PyTorch's gate order
i, f, g, o (its names: *ignore*, *forget*, *learn*, *output*). The functions below are the
article's, with ``h`` and ``x`` holding one column per batch row (the article steps one sample)
so that ``np.dot(W, x)`` is unchanged; biases get a column axis to broadcast.

One layer, one direction, no gradients: the harness compares finite differences of this forward
with the reference's gradients. ``bias=False`` (zero biases), batch_first and unbatched input
are layouts around the same cell and are supported.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from parity import Adapter, LSTMConfig, Supports

__all__ = [
    "CardAdapter",
    "CardLSTM",
    "cell_state",
    "forget_gate",
    "input_gate",
    "output_gate",
    "sigmoid",
    "slice_gates",
]


def sigmoid(x):
    # The article's formula. exp(-x) overflows to inf for very negative x, and 1/inf = 0 is the
    # right limit: the overflow warning is noise.
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


# -- the article's four gate functions (its argument names) -----------------------------------
def forget_gate(x, h, Weights_hf, Bias_hf, Weights_xf, Bias_xf, prev_cell_state):
    forget_hidden = np.dot(Weights_hf, h) + Bias_hf
    forget_eventx = np.dot(Weights_xf, x) + Bias_xf
    return np.multiply(sigmoid(forget_hidden + forget_eventx), prev_cell_state)


def input_gate(
    x, h, Weights_hi, Bias_hi, Weights_xi, Bias_xi, Weights_hl, Bias_hl, Weights_xl, Bias_xl
):
    ignore_hidden = np.dot(Weights_hi, h) + Bias_hi
    ignore_eventx = np.dot(Weights_xi, x) + Bias_xi
    learn_hidden = np.dot(Weights_hl, h) + Bias_hl
    learn_eventx = np.dot(Weights_xl, x) + Bias_xl
    return np.multiply(sigmoid(ignore_eventx + ignore_hidden), np.tanh(learn_eventx + learn_hidden))


def cell_state(forget_gate_output, input_gate_output):
    return forget_gate_output + input_gate_output


def output_gate(x, h, Weights_ho, Bias_ho, Weights_xo, Bias_xo, cell_state):
    out_hidden = np.dot(Weights_ho, h) + Bias_ho
    out_eventx = np.dot(Weights_xo, x) + Bias_xo
    return np.multiply(sigmoid(out_eventx + out_hidden), np.tanh(cell_state))


# -- the article's weight extraction ----------------------------------------------------------
def slice_gates(params: Mapping[str, np.ndarray], hidden_size: int, dtype) -> dict:
    """The article's sixteen arrays, sliced from `nn.LSTM`'s layer-0 parameters.

    Row block k of each tensor is gate k in the order i, f, g, o; the article's suffixes are
    i (ignore), f (forget), l (learn: nn.LSTM's g) and o. Biases are (H, 1) columns; absent
    biases (bias=False) are zeros.
    """
    h = hidden_size
    weights = {}
    for k, gate in enumerate("iflo"):
        rows = slice(k * h, (k + 1) * h)
        weights[f"Weights_x{gate}"] = params["weight_ih_l0"][rows]
        weights[f"Weights_h{gate}"] = params["weight_hh_l0"][rows]
        for kind, side in (("ih", "x"), ("hh", "h")):
            bias = params.get(f"bias_{kind}_l0")
            weights[f"Bias_{side}{gate}"] = (
                np.zeros((h, 1), dtype) if bias is None else bias[rows].reshape(h, 1)
            )
    return weights


class CardLSTM:
    """The article's cell stepped over a sequence: input (T, B, I), state (1, B, H) each."""

    def __init__(self, weights: dict) -> None:
        self.w = weights

    def step(self, x, h, c):
        """One time step on columns: x (I, B), h and c (H, B)."""
        w = self.w
        f = forget_gate(x, h, w["Weights_hf"], w["Bias_hf"], w["Weights_xf"], w["Bias_xf"], c)
        i = input_gate(
            x,
            h,
            w["Weights_hi"],
            w["Bias_hi"],
            w["Weights_xi"],
            w["Bias_xi"],
            w["Weights_hl"],
            w["Bias_hl"],
            w["Weights_xl"],
            w["Bias_xl"],
        )
        c = cell_state(f, i)
        h = output_gate(x, h, w["Weights_ho"], w["Bias_ho"], w["Weights_xo"], w["Bias_xo"], c)
        return h, c

    def forward(self, input, h0, c0):
        h, c = h0[0].T, c0[0].T
        outputs = []
        for x_t in input:
            h, c = self.step(x_t.T, h, c)
            outputs.append(h.T)
        out = np.stack(outputs) if outputs else np.zeros((0, *h0.shape[1:]), input.dtype)
        return out, (h.T[None], c.T[None])


class _Built:
    def __init__(self, config: LSTMConfig, lstm: CardLSTM, dtype) -> None:
        self.config, self.lstm, self.dtype = config, lstm, dtype

    def forward(self, input, state):
        unbatched = input.ndim == 2
        x = (
            input[:, None]
            if unbatched
            else (input.swapaxes(0, 1) if self.config.batch_first else input)
        )
        if x.shape[0] == 0:  # as nn.LSTM answers an empty sequence
            raise ValueError("Expected sequence length to be larger than 0 in RNN")
        if state is None:
            zeros = np.zeros((1, x.shape[1], self.config.hidden_size), self.dtype)
            h0 = c0 = zeros
        else:
            h0, c0 = (s[:, None] if unbatched else s for s in state)
        out, (h_n, c_n) = self.lstm.forward(x, h0, c0)
        if unbatched:
            return out[:, 0], (h_n[:, 0], c_n[:, 0])
        if self.config.batch_first:
            out = out.swapaxes(0, 1)
        return out, (h_n, c_n)


class CardAdapter(Adapter):
    name = "numpy-card"
    description = (
        "seed 001's reference card: one NumPy function per gate, weights sliced from "
        "nn.LSTM's in the order i, f, g, o; forward only"
    )
    supports = Supports(gradients="none", multi_layer=False, bidirectional=False, projection=False)

    def build(self, config: LSTMConfig, params: Mapping[str, np.ndarray], dtype: str):
        if config.num_layers > 1 or config.bidirectional or config.proj_size:
            raise NotImplementedError(
                "the reference card is one layer, one direction, no projection"
            )
        weights = slice_gates(params, config.hidden_size, np.dtype(dtype))
        return _Built(config, CardLSTM(weights), np.dtype(dtype))
