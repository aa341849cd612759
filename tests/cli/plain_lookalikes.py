"""Correct look-alikes that are noisy or spare, for what the output says about them.

`OneLayerLSTM` has no docstring on purpose (it must be described by its class and module, not by
nn.Module's docstring) and supports one layer only (dropout, which acts between layers, is then
not applicable rather than unsupported). `WarningLSTM` is right but warns on every call.
"""

import warnings

import numpy as np
import torch
from torch import nn


class OneLayerLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if num_layers != 1 or bidirectional or proj_size:
            raise NotImplementedError("one layer, one direction, no projection")
        bound = hidden_size ** -0.5

        def parameter(*shape):
            return nn.Parameter(torch.empty(*shape, dtype=dtype).uniform_(-bound, bound))

        self.weight_ih_l0 = parameter(4 * hidden_size, input_size)
        self.weight_hh_l0 = parameter(4 * hidden_size, hidden_size)
        if bias:
            self.bias_ih_l0 = parameter(4 * hidden_size)
            self.bias_hh_l0 = parameter(4 * hidden_size)
        self.bias, self.batch_first, self.hidden_size = bias, batch_first, hidden_size

    def forward(self, input, hx=None):
        if input.dim() != 3:
            raise NotImplementedError("batched input only")
        x = input.transpose(0, 1) if self.batch_first else input
        if hx is None:
            h = c = x.new_zeros(x.shape[1], self.hidden_size)
        else:
            h, c = hx[0][0], hx[1][0]
        steps = []
        for x_t in x:
            gates = x_t @ self.weight_ih_l0.T + h @ self.weight_hh_l0.T
            if self.bias:
                gates = gates + self.bias_ih_l0 + self.bias_hh_l0
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            steps.append(h)
        output = torch.stack(steps)
        return (output.transpose(0, 1) if self.batch_first else output), \
            (h.unsqueeze(0), c.unsqueeze(0))


class WarningLSTM(nn.LSTM):
    """nn.LSTM, with a NumPy overflow warning on every call and a FutureWarning on every third."""

    calls = 0

    def forward(self, input, hx=None):
        np.exp(np.float32(100.0))  # RuntimeWarning: overflow encountered in exp
        WarningLSTM.calls += 1
        if WarningLSTM.calls % 3 == 0:
            warnings.warn("a third call", FutureWarning)
        return super().forward(input, hx)
