"""Correct drop-in `nn.LSTM` look-alikes that take a `PackedSequence`, each computed another way.

The harness must PASS every class here on packed batches:

- `MaskedPackedLSTM` unpacks the PackedSequence to a padded batch in the original order, runs a
  loop over time that updates only the rows still inside their sequence, and packs again;
- `SortedPackedLSTM` runs natively on the packed data in length-sorted order (the first
  ``batch_sizes[t]`` rows at step t), permuting hx into that order and h_n back out of it;
- `PerSequencePackedLSTM` runs each sequence alone over its own length.

`broken.py`'s style: each bug in `packed_broken.py` is one class attribute of these.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["PACKED_CORRECT", "MaskedPackedLSTM", "PerSequencePackedLSTM", "SortedPackedLSTM"]


class _PackedBase(nn.Module):
    """nn.LSTM's constructor, parameters and calling convention; the loop is the subclass's."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.proj_size = bias, batch_first, proj_size
        self.dropout = float(dropout)
        self.num_directions = 2 if bidirectional else 1
        self.out_size = proj_size or hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        H = hidden_size
        for layer in range(num_layers):
            width = input_size if layer == 0 else self.out_size * self.num_directions
            for d in range(self.num_directions):
                shapes = [("weight_ih", (4 * H, width)), ("weight_hh", (4 * H, self.out_size))]
                if bias:
                    shapes += [("bias_ih", (4 * H,)), ("bias_hh", (4 * H,))]
                if proj_size:
                    shapes += [("weight_hr", (proj_size, H))]
                for name, shape in shapes:
                    value = torch.empty(shape, device=device, dtype=dtype).uniform_(-bound, bound)
                    self.register_parameter(name + self._sfx(layer, d), nn.Parameter(value))

    @staticmethod
    def _sfx(layer, d):
        return f"_l{layer}" + ("_reverse" if d else "")

    def weights(self, layer, d):
        s = self._sfx(layer, d)
        get = lambda n: getattr(self, n + s, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), \
            get("weight_hr")

    def cell(self, x, h, c, w):
        w_ih, w_hh, b_ih, b_hh, w_hr = w
        z = x @ w_ih.T + h @ w_hh.T
        if b_ih is not None:
            z = z + b_ih + b_hh
        i, f, g, o = z.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if w_hr is not None:
            h = h @ w_hr.T
        return h, c

    def initial(self, hx, batch, like):
        LD = self.num_layers * self.num_directions
        if hx is None:
            return (like.new_zeros(LD, batch, self.out_size),
                    like.new_zeros(LD, batch, self.hidden_size))
        return hx

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self.forward_packed(input, hx)
        if input.dim() != 3:
            raise NotImplementedError("unbatched input")
        x = input.transpose(0, 1) if self.batch_first else input
        T, B = x.shape[0], x.shape[1]
        packed = pack_padded_sequence(x, torch.full((B,), T, dtype=torch.int64))
        out, state = self.forward_packed(packed, hx)
        y, _ = pad_packed_sequence(out, total_length=T)
        return (y.transpose(0, 1) if self.batch_first else y), state


class MaskedPackedLSTM(_PackedBase):
    """Unpack, run a masked loop over the padded batch in the original order, pack again."""

    forward_through_padding = False  # bug: the forward direction's state runs on past length
    reverse_from_padded_end = False  # bug: the reverse direction starts at step T - 1
    length_offset = 0  # bug: a mask `t < length + offset`
    detach_past_length = False  # bug (backward only): the state carried past a row's end detached

    def forward_packed(self, packed, hx):
        x, lengths = pad_packed_sequence(packed)  # original order, time-major
        T, B = x.shape[0], x.shape[1]
        h0, c0 = self.initial(hx, B, x)
        lengths = lengths.to(x.device) + self.length_offset
        h_n, c_n, layer_in = [], [], x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                h, c = h0[k], c0[k]
                w = self.weights(layer, d)
                ys = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    hn, cn = self.cell(layer_in[t], h, c, w)
                    if d:
                        active = (t <= lengths - 1) | self.reverse_from_padded_end
                    else:
                        active = (t < lengths) | self.forward_through_padding
                    m = active[:, None]
                    kept = (h.detach(), c.detach()) if self.detach_past_length else (h, c)
                    h, c = torch.where(m, hn, kept[0]), torch.where(m, cn, kept[1])
                    ys[t] = torch.where(m, hn, torch.zeros_like(hn))
                h_n.append(h)
                c_n.append(c)
                outs.append(torch.stack(ys))
            layer_in = torch.cat(outs, dim=-1)
        _, true_lengths = pad_packed_sequence(packed)
        out = pack_padded_sequence(layer_in, true_lengths, enforce_sorted=False)
        return out, (torch.stack(h_n), torch.stack(c_n))


class SortedPackedLSTM(_PackedBase):
    """Natively on the packed data: step t updates the first ``batch_sizes[t]`` (longest) rows."""

    permute_hx = True  # bug when False: hx used in the order it was given
    unsort_final = True  # bug when False: h_n, c_n left in length-sorted order

    def forward_packed(self, packed, hx):
        data, sizes = packed.data, packed.batch_sizes.tolist()
        B = sizes[0]
        h0, c0 = self.initial(hx, B, data)
        order = packed.sorted_indices
        if order is not None and self.permute_hx:
            h0, c0 = h0[:, order], c0[:, order]
        starts = [0]
        for s in sizes:
            starts.append(starts[-1] + s)
        h_n, c_n, layer_in = [], [], data
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                h, c = h0[k], c0[k]
                w = self.weights(layer, d)
                ys = [None] * len(sizes)
                for t in (range(len(sizes) - 1, -1, -1) if d else range(len(sizes))):
                    n = sizes[t]
                    hn, cn = self.cell(layer_in[starts[t]:starts[t] + n], h[:n], c[:n], w)
                    h = torch.cat([hn, h[n:]])
                    c = torch.cat([cn, c[n:]])
                    ys[t] = hn
                h_n.append(h)
                c_n.append(c)
                outs.append(torch.cat(ys))
            layer_in = torch.cat(outs, dim=-1)
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if packed.unsorted_indices is not None and self.unsort_final:
            h_n, c_n = h_n[:, packed.unsorted_indices], c_n[:, packed.unsorted_indices]
        out = PackedSequence(layer_in, packed.batch_sizes, packed.sorted_indices,
                             packed.unsorted_indices)
        return out, (h_n, c_n)


class PerSequencePackedLSTM(_PackedBase):
    """Each sequence alone, over its own length, then padded and packed together."""

    def forward_packed(self, packed, hx):
        x, lengths = pad_packed_sequence(packed)
        T, B = x.shape[0], x.shape[1]
        h0, c0 = self.initial(hx, B, x)
        rows, hs, cs = [], [], []
        for b in range(B):
            n = int(lengths[b])
            layer_in = x[:n, b:b + 1]
            for layer in range(self.num_layers):
                outs = []
                for d in range(self.num_directions):
                    k = layer * self.num_directions + d
                    h, c = h0[k, b:b + 1], c0[k, b:b + 1]
                    w = self.weights(layer, d)
                    ys = [None] * n
                    for t in (range(n - 1, -1, -1) if d else range(n)):
                        h, c = self.cell(layer_in[t], h, c, w)
                        ys[t] = h
                    hs.append((k, b, h))
                    cs.append((k, b, c))
                    outs.append(torch.stack(ys))
                layer_in = torch.cat(outs, dim=-1)
            rows.append(torch.cat([layer_in, layer_in.new_zeros(T - n, *layer_in.shape[1:])]))
        LD = self.num_layers * self.num_directions
        h_n = torch.stack([torch.cat([h for k2, b, h in hs if k2 == k]) for k in range(LD)])
        c_n = torch.stack([torch.cat([c for k2, b, c in cs if k2 == k]) for k in range(LD)])
        out = pack_padded_sequence(torch.cat(rows, dim=1), lengths, enforce_sorted=False)
        return out, (h_n, c_n)


PACKED_CORRECT = (MaskedPackedLSTM, SortedPackedLSTM, PerSequencePackedLSTM)
