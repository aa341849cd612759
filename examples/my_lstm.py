"""A hand-written LSTM with a bug, for the README's first run of parity.

It takes nn.LSTM's constructor arguments and names its parameters as nn.LSTM does, so parity
checks it with nothing to write (a drop-in look-alike). One layer, one direction, batched input:
the rest it declines with NotImplementedError, which parity reports as unsupported.
"""

import torch
from torch import nn


class MyLSTM(nn.Module):
    """My LSTM: one layer, a loop over time steps."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if num_layers != 1 or bidirectional or proj_size:
            raise NotImplementedError("one layer, one direction, no projection")
        bound = hidden_size ** -0.5

        def weights(*shape):
            return nn.Parameter(torch.empty(*shape, dtype=dtype).uniform_(-bound, bound))

        self.weight_ih_l0 = weights(4 * hidden_size, input_size)
        self.weight_hh_l0 = weights(4 * hidden_size, hidden_size)
        if bias:
            self.bias_ih_l0 = weights(4 * hidden_size)
            self.bias_hh_l0 = weights(4 * hidden_size)
        self.bias, self.batch_first, self.hidden_size = bias, batch_first, hidden_size

    def forward(self, input, hx=None):
        if input.dim() != 3:
            raise NotImplementedError("batched input only")
        x = input.transpose(0, 1) if self.batch_first else input
        if hx is None:
            h = c = x.new_zeros(x.shape[1], self.hidden_size)
        else:
            h, c = hx[0][0], hx[1][0]
        outputs = []
        for x_t in x:
            gates = x_t @ self.weight_ih_l0.T + h @ self.weight_hh_l0.T
            if self.bias:
                gates = gates + self.bias_ih_l0 + self.bias_hh_l0
            i, g, f, o = gates.chunk(4, dim=1)  # the bug: nn.LSTM's order is i, f, g, o
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        output = torch.stack(outputs)
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, (h.unsqueeze(0), c.unsqueeze(0))
