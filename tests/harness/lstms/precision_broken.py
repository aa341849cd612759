"""float32 LSTMs whose matrix products run in reduced precision: caught, and named."""

from __future__ import annotations

import torch

from parity.precision import round_operand

from .correct import TextbookLSTM

__all__ = ["PRECISION_BROKEN"]


class _RoundedProducts(TextbookLSTM):
    fmt = "tf32"
    nearest = True

    def _r(self, t):
        return round_operand(t, self.fmt, self.nearest) if t.dtype == torch.float32 else t

    def gate_preactivations(self, x, h, w, where):
        pre = self._r(x) @ self._r(w.ih).T + self._r(h) @ self._r(w.hh).T
        if w.b_ih is not None:
            pre = pre + w.b_ih + w.b_hh
        return pre

    def project(self, h, w):
        return h if w.hr is None else self._r(h) @ self._r(w.hr).T


class TF32Products(_RoundedProducts):
    """Matrix products with TF32 operands (GPU matmul with allow_tf32)."""


class TF32TruncatedProducts(_RoundedProducts):
    """Matrix products with operands truncated to TF32's 10 mantissa bits."""

    nearest = False


class BFloat16Products(_RoundedProducts):
    """Matrix products with bfloat16 operands (autocast to bfloat16)."""

    fmt = "bfloat16"


# class -> (format, nearest): the PRODUCT_ROUNDINGS entry its cause is
PRECISION_BROKEN = {
    TF32Products: ("tf32", True),
    TF32TruncatedProducts: ("tf32", False),
    BFloat16Products: ("bfloat16", True),
}
