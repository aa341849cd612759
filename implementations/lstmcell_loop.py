"""A per-step loop over `torch.nn.LSTMCell`: the way many people first write a custom LSTM.

`nn.LSTMCell` has `nn.LSTM`'s parameter names and layout for one layer and direction, so the
mapping is by name. It has no projection: configs with proj_size > 0 are declined.
"""

from __future__ import annotations

import torch
from torch import nn

from parity import LSTMConfig, Supports, TorchAdapter

from ._stack import StackedLSTM, canonical_names

__all__ = ["CellLoop", "LSTMCellLoopAdapter"]


class CellLoop(nn.Module):
    """One layer, one direction: `nn.LSTMCell` stepped over a batch-first sequence."""

    def __init__(self, input_size, hidden_size, proj_size=0, bias=True, device=None, dtype=None):
        super().__init__()
        if proj_size:
            raise NotImplementedError("nn.LSTMCell has no projection (proj_size > 0)")
        self.cell = nn.LSTMCell(input_size, hidden_size, bias=bias, device=device, dtype=dtype)

    def forward(self, x, state):
        h, c = state
        steps = []
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
            steps.append(h)
        out = torch.stack(steps, dim=1) if steps else x.new_zeros(x.shape[0], 0, h.shape[-1])
        return out, (h, c)


class LSTMCellLoopAdapter(TorchAdapter):
    name = "lstmcell"
    description = "a per-step loop over torch.nn.LSTMCell, per layer and direction"
    supports = Supports(projection=False, gradients="autograd")

    def make_module(self, config: LSTMConfig, dtype: torch.dtype) -> nn.Module:
        return StackedLSTM(CellLoop, **config.as_dict(), dtype=dtype)

    def module_parameters(self, config, params):
        out = {}
        for layer in range(config.num_layers):
            for direction in range(config.num_directions):
                names = canonical_names(layer, direction)
                prefix = f"cells.{layer}.{direction}.cell."
                kinds = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if config.bias else ())
                for kind in kinds:
                    out[prefix + kind] = params[names[kind]]
        return out
