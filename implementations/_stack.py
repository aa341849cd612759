"""Layers, directions and layouts around a one-direction sequence cell.

The article cells (`article_torch.py`) and the `nn.LSTMCell` loop run one layer in one direction
over a batch-first sequence, as the article writes them. `StackedLSTM` gives them everything else
`nn.LSTM` has: num_layers, bidirectional, batch_first or time-major input, unbatched input,
h0/c0 laid out (num_layers * num_directions, batch, hidden), dropout between layers in training.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

SequenceCell = Callable[..., nn.Module]  # (input_size, hidden_size, proj_size, bias, **factory)


class StackedLSTM(nn.Module):
    """`nn.LSTM`'s constructor and forward, built from one-direction sequence cells."""

    def __init__(
        self,
        cell: SequenceCell,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.hidden_size, self.proj_size = hidden_size, proj_size
        self.num_layers, self.batch_first, self.dropout = num_layers, batch_first, dropout
        self.num_directions = 2 if bidirectional else 1
        out = proj_size or hidden_size
        self.cells = nn.ModuleList(
            nn.ModuleList(
                cell(
                    input_size if layer == 0 else out * self.num_directions,
                    hidden_size,
                    proj_size=proj_size,
                    bias=bias,
                    device=device,
                    dtype=dtype,
                )
                for _ in range(self.num_directions)
            )
            for layer in range(num_layers)
        )

    def forward(self, input: torch.Tensor, hx=None):
        unbatched = input.dim() == 2
        if unbatched:
            input = input.unsqueeze(1)  # (T, 1, I): a batch of one, time-major
            hx = None if hx is None else tuple(s.unsqueeze(1) for s in hx)
        elif self.batch_first:
            input = input.transpose(0, 1)
        x = input.transpose(0, 1)  # the cells take (B, T, features)
        if x.shape[1] == 0:  # as nn.LSTM answers an empty sequence
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        batch, out = x.shape[0], self.proj_size or self.hidden_size
        if hx is None:
            rows = self.num_layers * self.num_directions
            h0 = x.new_zeros(rows, batch, out)
            c0 = x.new_zeros(rows, batch, self.hidden_size)
        else:
            h0, c0 = hx
        h_layers, c_layers = [], []
        for layer, cells in enumerate(self.cells):
            outputs = []
            for direction, cell in enumerate(cells):  # type: ignore[arg-type,var-annotated]  # ModuleLists
                k = layer * self.num_directions + direction
                seq = x.flip(1) if direction else x
                y, (h, c) = cell(seq, (h0[k], c0[k]))
                outputs.append(y.flip(1) if direction else y)
                h_layers.append(h)
                c_layers.append(c)
            x = torch.cat(outputs, dim=2)
            if self.training and self.dropout and layer < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        output = x.transpose(0, 1)  # back to (T, B, ·)
        h_n, c_n = torch.stack(h_layers), torch.stack(c_layers)
        if unbatched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, (h_n, c_n)


def direction_suffix(direction: int) -> str:
    return "_reverse" if direction else ""


def canonical_names(layer: int, direction: int) -> dict[str, str]:
    """The canonical names of one layer and direction, by kind."""
    sfx = f"_l{layer}{direction_suffix(direction)}"
    return {
        kind: kind + sfx for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    }
