"""Adapters that take padded input plus per-row lengths (`Supports(lengths=True)`), the way
JAX, Keras and ONNX ports take masks or ``sequence_lens``.

`MaskedLengthsAdapter` runs a torch loop over the padded batch that updates only the rows still
inside their sequence (a mask per step), gradients by autograd: the harness must PASS it (and
the NumPy implementation, which runs each length's rows as their own batch instead). Each
broken adapter below is one class attribute of it, with the likely cause the `padded` check
must name (`parity.packed.MISTAKES`); `GradientThroughPadding`, whose forward is right, must get
the backward as its cause (`parity.lengths.BACKWARD_CAUSE`, from finite differences with
lengths).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from parity import Adapter, LSTMConfig, Supports

__all__ = ["LENGTHS_BROKEN", "MaskedLengthsAdapter"]

TARGET = "tests.harness.lstms.lengths_adapters"


class _MaskedLengthsLSTM:
    """One built instance: a masked loop over time, in torch, for autograd."""

    def __init__(self, adapter: MaskedLengthsAdapter, config: LSTMConfig,
                 params: Mapping[str, np.ndarray], dtype: str) -> None:
        self.adapter, self.config = adapter, config
        self.dtype = torch.float32 if dtype == "float32" else torch.float64
        self.params = {n: np.array(a, dtype) for n, a in params.items()}

    def _run(self, p, x, h0, c0, lengths):
        """x (T, B, I) time-major, lengths a (B,) tensor: output, h_n, c_n."""
        a, c = self.adapter, self.config
        T = x.shape[0]
        if a.normalize_over_padding:
            x = x - x.mean(dim=0, keepdim=True)  # the mean takes in the padding
        lengths = lengths + a.length_offset
        h_n, c_n, layer_in = [], [], x
        for layer in range(c.num_layers):
            outs = []
            for d in range(c.num_directions):
                k = layer * c.num_directions + d
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                h, cell = h0[k], c0[k]
                ys = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    z = layer_in[t] @ p["weight_ih" + sfx].T + h @ p["weight_hh" + sfx].T
                    if c.bias:
                        z = z + p["bias_ih" + sfx] + p["bias_hh" + sfx]
                    i, f, g, o = z.chunk(4, dim=-1)
                    cn = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
                    hn = torch.sigmoid(o) * torch.tanh(cn)
                    if c.proj_size:
                        hn = hn @ p["weight_hr" + sfx].T
                    if d:
                        active = (t < lengths) | a.reverse_from_padded_end
                    else:
                        active = (t < lengths) | a.forward_through_padding
                    m = active[:, None]
                    h, cell = torch.where(m, hn, h), torch.where(m, cn, cell)
                    ys[t] = torch.where(m, hn, torch.zeros_like(hn))
                h_n.append(h)
                c_n.append(cell)
                outs.append(torch.stack(ys))
            layer_in = torch.cat(outs, dim=-1)
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if a.gradient_through_padding:
            # Zero in value, but its gradient reaches the valid input scaled by the padding:
            # what a hand-written backward that forgets the mask computes.
            valid = (torch.arange(T)[:, None] < lengths[None, :])[:, :, None]
            inside = torch.where(valid, x, 0).sum()
            outside = torch.where(valid, 0, x).sum().detach()
            h_n = h_n + (inside - inside.detach()) * outside
        return layer_in, h_n, c_n

    def _call(self, input, state, lengths, requires_grad):
        c = self.config
        leaves = {"input": torch.tensor(np.asarray(input), dtype=self.dtype)}
        if state is not None:
            leaves["h0"], leaves["c0"] = (torch.tensor(np.asarray(s), dtype=self.dtype)
                                          for s in state)
        params = {n: torch.tensor(v, dtype=self.dtype) for n, v in self.params.items()}
        for t in (*leaves.values(), *params.values()):
            t.requires_grad_(requires_grad)
        x = leaves["input"]
        unbatched = x.dim() == 2
        if unbatched:
            x = x[:, None]
        elif c.batch_first:
            x = x.transpose(0, 1)
        T, B = x.shape[0], x.shape[1]
        rows = c.num_layers * c.num_directions
        if state is None:
            h0 = x.new_zeros(rows, B, c.proj_size or c.hidden_size)
            c0 = x.new_zeros(rows, B, c.hidden_size)
        else:
            h0, c0 = leaves["h0"], leaves["c0"]
            if unbatched:
                h0, c0 = h0[:, None], c0[:, None]
        n = torch.full((B,), T) if lengths is None else torch.as_tensor(np.asarray(lengths))
        if self.adapter.lengths_sorted:
            n = n.sort(descending=True).values
        y, h_n, c_n = self._run(params, x, h0, c0, n)
        if unbatched:
            y, h_n, c_n = y[:, 0], h_n[:, 0], c_n[:, 0]
        elif c.batch_first:
            y = y.transpose(0, 1)
        return (y, h_n, c_n), {**leaves, **params}

    def forward(self, input, state, lengths=None):
        with torch.no_grad():
            (y, h, c), _ = self._call(input, state, lengths, False)
        return y.numpy().copy(), (h.numpy().copy(), c.numpy().copy())

    def gradients(self, input, state, cotangents, lengths=None):
        with torch.enable_grad():
            outs, leaves = self._call(input, state, lengths, True)
            loss = sum((torch.as_tensor(np.asarray(g)).to(t.dtype) * t).sum()
                       for g, t in zip(cotangents, outs))
            grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        return {n: np.zeros(tuple(v.shape), np.dtype(str(v.dtype).removeprefix("torch.")))
                if g is None else g.numpy().copy() for (n, v), g in zip(leaves.items(), grads)}


class MaskedLengthsAdapter(Adapter):
    """Correct: a masked loop over the padded batch, gradients by autograd."""

    name = target = f"{TARGET}:MaskedLengthsAdapter"
    description = "a masked loop over a padded batch with lengths (torch, autograd)"
    supports = Supports(lengths=True, gradients="autograd")
    forward_through_padding = False  # bug: the forward direction's state runs on past length
    reverse_from_padded_end = False  # bug: the reverse direction starts at step T - 1
    length_offset = 0  # bug: a mask `t < length + offset`
    normalize_over_padding = False  # bug: the input's mean over time takes in the padding
    gradient_through_padding = False  # bug: the valid input's gradient depends on the padding
    lengths_sorted = False  # bug: the lengths applied sorted longest first, rows left in order

    def build(self, config: LSTMConfig, params, dtype: str):
        return _MaskedLengthsLSTM(self, config, params, dtype)


def _broken(name: str, **flags) -> type:
    return type(name, (MaskedLengthsAdapter,), {"name": f"{TARGET}:{name}",
                                                "target": f"{TARGET}:{name}", **flags})


FinalStateAfterPadding = _broken("FinalStateAfterPadding", forward_through_padding=True)
ReverseFromPaddedEnd = _broken("ReverseFromPaddedEnd", reverse_from_padded_end=True)
LengthsOffByOne = _broken("LengthsOffByOne", length_offset=1)
LengthsOneShort = _broken("LengthsOneShort", length_offset=-1)
NormalizesOverPadding = _broken("NormalizesOverPadding", normalize_over_padding=True)
GradientThroughPadding = _broken("GradientThroughPadding", gradient_through_padding=True)
LengthsSorted = _broken("LengthsSorted", lengths_sorted=True)

# adapter -> the name of the mistake in parity.packed.MISTAKES the `padded` check must name
LENGTHS_BROKEN = {
    FinalStateAfterPadding: "final state after padding",
    ReverseFromPaddedEnd: "reverse from padded end",
    LengthsOffByOne: "one step long",
    LengthsOneShort: "one step short",
}
