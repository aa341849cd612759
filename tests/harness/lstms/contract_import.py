"""A module that switches torch's grad mode off when imported (a notebook habit at the top of a
file); its LSTM is nn.LSTM itself."""

import torch

torch.set_grad_enabled(False)


class LSTM(torch.nn.LSTM):
    """nn.LSTM, from a module whose import switched autograd off."""
