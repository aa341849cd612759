"""Reduced-precision matrix products, named by rerunning the LSTM with them.

A float32 kernel whose matrix products run in TF32 (10 mantissa bits: GPUs' default for
convolutions and, where enabled, for matmul), bfloat16 (7 bits) or float16 (10 bits, a narrower
exponent) lands ~1e-3 to 1e-2 away from nn.LSTM: too far for float32, too close for a structural
mistake. The rounding is a deterministic function of the operands, so an LSTM rerun in float32
with the operands of every product (x W_ih^T, h W_hh^T, and the projection) rounded the same way
lands within float32's own noise of such an implementation: that is the evidence a cause needs.
Each format is tried with round-to-nearest-even and with truncation (what a kernel that drops
the low bits does).
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

__all__ = ["PRODUCT_ROUNDINGS", "reduced_precision_mistakes", "round_operand"]

_TF32_DROP = 13  # float32's 23 mantissa bits less TF32's 10
_BF16_DROP = 16  # less bfloat16's 7


def _drop_bits(t: torch.Tensor, bits: int, nearest: bool) -> torch.Tensor:
    i = t.contiguous().view(torch.int32)
    if nearest:  # round half to even on the kept bits
        i = i + ((1 << (bits - 1)) - 1) + ((i >> bits) & 1)
    return (i & ~((1 << bits) - 1)).view(torch.float32)


def round_operand(t: torch.Tensor, fmt: str, nearest: bool = True) -> torch.Tensor:
    """A float32 tensor rounded to `fmt` ("tf32", "bfloat16", "float16") and back."""
    if fmt == "tf32":
        return _drop_bits(t, _TF32_DROP, nearest)
    if fmt == "bfloat16":
        return t.to(torch.bfloat16).float() if nearest else _drop_bits(t, _BF16_DROP, False)
    if fmt == "float16":
        return t.half().float()
    raise ValueError(f"fmt={fmt!r}: must be tf32, bfloat16 or float16")


# (format, round to nearest, the sentence)
PRODUCT_ROUNDINGS = (
    (
        "tf32",
        True,
        "precision: the matrix products run in TF32 (operands rounded to 10 mantissa "
        "bits, as with torch.backends.cuda.matmul.allow_tf32 or "
        "torch.set_float32_matmul_precision('high')); nn.LSTM's float32 products "
        "keep all 23",
    ),
    (
        "tf32",
        False,
        "precision: the matrix products run in TF32 with the operands truncated "
        "to 10 mantissa bits; nn.LSTM's float32 products keep all 23",
    ),
    (
        "bfloat16",
        True,
        "precision: the matrix products run in bfloat16 (operands rounded to 7 "
        "mantissa bits, as under autocast to bfloat16); nn.LSTM's float32 "
        "products keep all 23",
    ),
    (
        "bfloat16",
        False,
        "precision: the matrix products run in bfloat16 with the operands "
        "truncated to 7 mantissa bits; nn.LSTM's float32 products keep all 23",
    ),
    (
        "float16",
        True,
        "precision: the matrix products run in float16 (operands rounded to 10 "
        "mantissa bits and float16's range, as under autocast to float16); "
        "nn.LSTM's float32 products keep float32's",
    ),
)


def _rounded_lstm(config, params, x, state, rnd: Callable) -> dict[str, np.ndarray]:
    """nn.LSTM's forward in float32 with every product's operands passed through `rnd`.
    `x` is time-major (T, B, I); the result is in that layout too."""
    T, B = x.shape[0], x.shape[1]
    L, D = config.num_layers, config.num_directions
    H, Ho = config.hidden_size, config.output_hidden_size
    p = {n: torch.as_tensor(np.asarray(a, np.float32)) for n, a in params.items()}
    h0 = torch.zeros(L * D, B, Ho) if state is None else torch.as_tensor(state[0])
    c0 = torch.zeros(L * D, B, H) if state is None else torch.as_tensor(state[1])
    layer_in = torch.as_tensor(x)
    h_n, c_n = [], []
    for layer in range(L):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = rnd(p["weight_ih" + sfx]), rnd(p["weight_hh" + sfx])
            w_hr = rnd(p["weight_hr" + sfx]) if config.proj_size else None
            h, c = h0[layer * D + d], c0[layer * D + d]
            ys: list = [None] * T
            for t in range(T - 1, -1, -1) if d else range(T):
                z = rnd(layer_in[t]) @ w_ih.T + rnd(h) @ w_hh.T
                if config.bias:
                    z = z + p["bias_ih" + sfx] + p["bias_hh" + sfx]
                i, f, g, o = z.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                if w_hr is not None:
                    h = rnd(h) @ w_hr.T
                ys[t] = h
            h_n.append(h)
            c_n.append(c)
            outs.append(torch.stack(ys) if T else torch.zeros(0, B, Ho))
        layer_in = torch.cat(outs, dim=-1)
    return {
        "output": layer_in.numpy().astype(np.float64),
        "h_n": torch.stack(h_n).numpy().astype(np.float64),
        "c_n": torch.stack(c_n).numpy().astype(np.float64),
    }


def reduced_precision_mistakes(ev) -> Iterator[tuple[str, Callable[[], dict]]]:
    """(cause, forward of the LSTM with its products rounded that way) pairs, for a float32
    case (`parity.diagnose.known_mistakes` yields these after the structural mistakes)."""
    spec = ev.spec
    if spec.dtype != "float32":
        return
    c = spec.config
    x = np.asarray(ev.case.input, np.float32)
    state = (
        None if ev.case.state is None else tuple(np.asarray(s, np.float32) for s in ev.case.state)
    )
    unbatched = spec.batch is None
    if unbatched:
        x = x[:, None]
        state = None if state is None else tuple(s[:, None] for s in state)
    elif c.batch_first:
        x = np.swapaxes(x, 0, 1)
    x = np.ascontiguousarray(x)

    def back(forward):
        out = forward["output"]
        if unbatched:
            return {"output": out[:, 0], "h_n": forward["h_n"][:, 0], "c_n": forward["c_n"][:, 0]}
        if c.batch_first:
            out = np.swapaxes(out, 0, 1)
        return {**forward, "output": out}

    for fmt, nearest, cause in PRODUCT_ROUNDINGS:

        def run(fmt=fmt, nearest=nearest):
            with torch.no_grad():
                return back(
                    _rounded_lstm(c, ev.reduced, x, state, lambda t: round_operand(t, fmt, nearest))
                )

        yield cause, run
