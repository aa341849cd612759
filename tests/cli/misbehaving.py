"""Look-alikes that misbehave rather than compute wrong numbers."""

import torch


class Raises(torch.nn.LSTM):
    """Raises from forward."""

    def forward(self, input, hx=None):
        raise RuntimeError("boom: the kernel is not built for this shape")


class ReturnsOutputOnly(torch.nn.LSTM):
    """Returns the output alone, not (output, (h_n, c_n))."""

    def forward(self, input, hx=None):
        return super().forward(input, hx)[0]


class ReturnsNaN(torch.nn.LSTM):
    """Returns NaN in the output."""

    def forward(self, input, hx=None):
        output, state = super().forward(input, hx)
        return output * float("nan"), state


NOT_AN_LSTM = 42
