"""Look-alikes that mishandle real-world tensors: strides ignored, buffers kept across calls."""

from __future__ import annotations

import torch

from .correct import TextbookLSTM

__all__ = ["InputStridesIgnored", "OutputAliasesBuffer", "StateStridesIgnored"]


def _as_if_contiguous(t: torch.Tensor) -> torch.Tensor:
    """What a kernel that takes data_ptr() and assumes a contiguous layout reads."""
    strides = torch.empty(t.shape).stride()
    return t.as_strided(t.shape, strides, t.storage_offset())


class InputStridesIgnored(TextbookLSTM):
    """Reads the input's storage as if it were contiguous."""

    def forward(self, input, hx=None):
        return super().forward(_as_if_contiguous(input), hx)


class StateStridesIgnored(TextbookLSTM):
    """Reads h0 and c0's storage as if they were contiguous (an expanded h0 reads past row 0)."""

    def forward(self, input, hx=None):
        if hx is not None:
            hx = tuple(_as_if_contiguous(s) for s in hx)
        return super().forward(input, hx)


class OutputAliasesBuffer(TextbookLSTM):
    """Returns its output in a buffer it keeps and overwrites on the next call."""

    def forward(self, input, hx=None):
        output, state = super().forward(input, hx)
        buf = getattr(self, "_buffer", None)
        if buf is None or buf.shape != output.shape or buf.dtype != output.dtype:
            buf = self._buffer = torch.empty_like(output)
        with torch.no_grad():
            buf.copy_(output)
        return buf, state
