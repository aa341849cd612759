"""Six CORRECT drop-in look-alikes of ``torch.nn.LSTM``, each computed differently.

Every class registers parameters with nn.LSTM's exact names and shapes
(weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k},
plus the ``_reverse`` suffix; gate rows in i, f, g, o order) and implements
``forward(input, hx=None) -> (output, (h_n, c_n))`` with nn.LSTM semantics.

  GoodFusedLoop        fused 4H gate matmul via F.linear, python time loop     (all features)
  GoodPerGate          4 separate gate matrices, addmm, flip-based reverse     (all features)
  GoodCellFunction     torch.autograd.Function cell step, hand-written backward (all features)
  GoodEinsumStacked    both directions batched together with einsum           (all features)
  GoodFuncVmap         per-sample sequence function vmapped with torch.func    (all features)
  GoodSubsetConcat     TF-style concatenated [x, h] kernel, torch.where acts   (subset: no bidirectional,
                                                                                no projection, no unbatched)
"""
import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GOOD", "GoodFusedLoop", "GoodPerGate", "GoodCellFunction",
           "GoodEinsumStacked", "GoodFuncVmap", "GoodSubsetConcat"]


# --------------------------------------------------------------------------- helpers
def _check_and_store(mod, input_size, hidden_size, num_layers, bias, batch_first,
                     dropout, bidirectional, proj_size):
    if not (0.0 <= float(dropout) <= 1.0):
        raise ValueError("dropout should be a number in range [0, 1]")
    if hidden_size <= 0 or num_layers <= 0:
        raise ValueError("hidden_size and num_layers must be positive")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")
    mod.input_size = int(input_size)
    mod.hidden_size = int(hidden_size)
    mod.num_layers = int(num_layers)
    mod.bias = bool(bias)
    mod.batch_first = bool(batch_first)
    mod.dropout = float(dropout)
    mod.bidirectional = bool(bidirectional)
    mod.proj_size = int(proj_size)


def _register_params(mod, device, dtype):
    """Register parameters in nn.LSTM's order with nn.LSTM's names and shapes."""
    fk = {"device": device, "dtype": dtype}
    H = mod.hidden_size
    D = 2 if mod.bidirectional else 1
    H_out = mod.proj_size if mod.proj_size > 0 else H
    for layer in range(mod.num_layers):
        in_size = mod.input_size if layer == 0 else D * H_out
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
            shapes = [("weight_ih", (4 * H, in_size)), ("weight_hh", (4 * H, H_out))]
            if mod.bias:
                shapes += [("bias_ih", (4 * H,)), ("bias_hh", (4 * H,))]
            if mod.proj_size > 0:
                shapes += [("weight_hr", (mod.proj_size, H))]
            for name, shape in shapes:
                mod.register_parameter(name + sfx, nn.Parameter(torch.empty(shape, **fk)))
    stdv = 1.0 / math.sqrt(H)
    with torch.no_grad():
        for p in mod.parameters():
            p.uniform_(-stdv, stdv)


def _weights(mod, layer, d):
    sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
    return (getattr(mod, "weight_ih" + sfx), getattr(mod, "weight_hh" + sfx),
            getattr(mod, "bias_ih" + sfx, None), getattr(mod, "bias_hh" + sfx, None),
            getattr(mod, "weight_hr" + sfx, None))


def _to_time_major(mod, input, hx):
    if input.dim() not in (2, 3):
        raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D")
    batched = input.dim() == 3
    if not batched:
        x = input.unsqueeze(1)
    else:
        x = input.transpose(0, 1) if mod.batch_first else input
    B = x.shape[1]
    D = 2 if mod.bidirectional else 1
    H_out = mod.proj_size if mod.proj_size > 0 else mod.hidden_size
    if hx is None:
        h0 = x.new_zeros(mod.num_layers * D, B, H_out)
        c0 = x.new_zeros(mod.num_layers * D, B, mod.hidden_size)
    else:
        h0, c0 = hx
        if not batched:
            if h0.dim() != 2 or c0.dim() != 2:
                raise RuntimeError("For unbatched 2-D input, hx and cx should also be 2-D")
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        if h0.shape != (mod.num_layers * D, B, H_out) or c0.shape != (mod.num_layers * D, B, mod.hidden_size):
            raise RuntimeError("LSTM: hidden state has the wrong shape")
    return x, h0, c0, batched


def _from_time_major(mod, out, h_n, c_n, batched):
    if not batched:
        return out.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
    if mod.batch_first:
        out = out.transpose(0, 1)
    return out, (h_n, c_n)


class _LSTMBase(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        _check_and_store(self, input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size)
        _register_params(self, device, dtype)

    def extra_repr(self):
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, batch_first={self.batch_first}, dropout={self.dropout}, "
                f"bidirectional={self.bidirectional}, proj_size={self.proj_size}")


# --------------------------------------------------------------------------- 1
class GoodFusedLoop(_LSTMBase):
    """Fused implementation: whole-sequence input projection with one F.linear per
    layer/direction, then a python loop doing one (B,4H) recurrent F.linear per step and
    splitting the gates with chunk(4). Reverse direction iterates indices backwards."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T = x.shape[0]
        D = 2 if self.bidirectional else 1
        layer_in = x
        hn, cn = [], []
        for layer in range(self.num_layers):
            per_dir = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                xw = F.linear(layer_in, w_ih, b_ih)
                if b_hh is not None:
                    xw = xw + b_hh
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = [None] * T
                for t in (range(T - 1, -1, -1) if d == 1 else range(T)):
                    gates = xw[t] + F.linear(h, w_hh)
                    gi, gf, gg, go = gates.chunk(4, dim=-1)
                    c = torch.sigmoid(gf) * c + torch.sigmoid(gi) * torch.tanh(gg)
                    h = torch.sigmoid(go) * torch.tanh(c)
                    if w_hr is not None:
                        h = F.linear(h, w_hr)
                    ys[t] = h
                per_dir.append(torch.stack(ys, 0))
                hn.append(h)
                cn.append(c)
            layer_in = torch.cat(per_dir, dim=-1)
            if layer < self.num_layers - 1 and self.dropout > 0:
                layer_in = F.dropout(layer_in, self.dropout, training=self.training)
        return _from_time_major(self, layer_in, torch.stack(hn, 0), torch.stack(cn, 0), batched)


# --------------------------------------------------------------------------- 2
class GoodPerGate(_LSTMBase):
    """Per-gate implementation: each of the four gates has its own (H,in) and (H,H_out)
    matrices (slices of the nn.LSTM weights) and is computed with torch.addmm. The reverse
    direction is done by flipping the sequence in time, running forwards, and flipping back."""

    @staticmethod
    def _affine(inp, w, b):
        return torch.addmm(b, inp, w.t()) if b is not None else inp.mm(w.t())

    def _direction(self, seq, h, c, w_ih, w_hh, b_ih, b_hh, w_hr):
        H = self.hidden_size
        Wx = [w_ih[k * H:(k + 1) * H] for k in range(4)]
        Wh = [w_hh[k * H:(k + 1) * H] for k in range(4)]
        if b_ih is not None:
            bs = [b_ih[k * H:(k + 1) * H] + b_hh[k * H:(k + 1) * H] for k in range(4)]
        else:
            bs = [None] * 4
        outs = []
        for t in range(seq.shape[0]):
            xt = seq[t]
            pre = [self._affine(xt, Wx[k], bs[k]) + h.mm(Wh[k].t()) for k in range(4)]
            i_t = torch.sigmoid(pre[0])
            f_t = torch.sigmoid(pre[1])
            g_t = torch.tanh(pre[2])
            o_t = torch.sigmoid(pre[3])
            c = f_t * c + i_t * g_t
            h = o_t * torch.tanh(c)
            if w_hr is not None:
                h = h.mm(w_hr.t())
            outs.append(h)
        return torch.stack(outs), h, c

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        D = 2 if self.bidirectional else 1
        seq = x
        h_fin, c_fin = [], []
        for layer in range(self.num_layers):
            ys = []
            for d in range(D):
                params = _weights(self, layer, d)
                src = seq if d == 0 else torch.flip(seq, dims=[0])
                y, h, c = self._direction(src, h0[layer * D + d], c0[layer * D + d], *params)
                ys.append(y if d == 0 else torch.flip(y, dims=[0]))
                h_fin.append(h)
                c_fin.append(c)
            seq = torch.cat(ys, dim=2)
            if self.dropout > 0 and self.training and layer + 1 < self.num_layers:
                seq = F.dropout(seq, p=self.dropout, training=True)
        return _from_time_major(self, seq, torch.stack(h_fin), torch.stack(c_fin), batched)


# --------------------------------------------------------------------------- 3
class _CellStep(torch.autograd.Function):
    """One LSTM cell step (without projection) with an explicit backward.

    forward(x, h, c, W_ih, W_hh, b_ih, b_hh) -> (m, c_new),  m = o * tanh(c_new)."""

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih, b_hh):
        gates = x.matmul(w_ih.t()) + h.matmul(w_hh.t())
        if b_ih is not None:
            gates = gates + b_ih
        if b_hh is not None:
            gates = gates + b_hh
        gi, gf, gg, go = gates.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(gi), torch.sigmoid(gf), torch.tanh(gg), torch.sigmoid(go)
        c_new = f * c + i * g
        tc = torch.tanh(c_new)
        m = o * tc
        ctx.save_for_backward(x, h, c, w_ih, w_hh, i, f, g, o, tc)
        ctx.bias_flags = (b_ih is not None, b_hh is not None)
        return m, c_new

    @staticmethod
    def backward(ctx, dm, dc_new):
        x, h, c, w_ih, w_hh, i, f, g, o, tc = ctx.saved_tensors
        if dm is None:
            dm = torch.zeros_like(tc)
        if dc_new is None:
            dc_new = torch.zeros_like(tc)
        do = dm * tc
        dc = dc_new + dm * o * (1.0 - tc * tc)
        di = dc * g
        df = dc * c
        dg = dc * i
        dc_prev = dc * f
        dgates = torch.cat([di * i * (1.0 - i),
                            df * f * (1.0 - f),
                            dg * (1.0 - g * g),
                            do * o * (1.0 - o)], dim=1)
        dx = dgates.matmul(w_ih) if ctx.needs_input_grad[0] else None
        dh = dgates.matmul(w_hh) if ctx.needs_input_grad[1] else None
        dw_ih = dgates.t().matmul(x) if ctx.needs_input_grad[3] else None
        dw_hh = dgates.t().matmul(h) if ctx.needs_input_grad[4] else None
        db = dgates.sum(0)
        db_ih = db if ctx.bias_flags[0] and ctx.needs_input_grad[5] else None
        db_hh = db if ctx.bias_flags[1] and ctx.needs_input_grad[6] else None
        return dx, dh, dc_prev, dw_ih, dw_hh, db_ih, db_hh


class GoodCellFunction(_LSTMBase):
    """Each time step goes through a custom torch.autograd.Function (_CellStep) whose
    backward is written by hand; projection (weight_hr) is applied outside it with plain
    autograd ops. Full feature support."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T = x.shape[0]
        D = 2 if self.bidirectional else 1
        layer_in = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = {}
                order = list(range(T))
                if d == 1:
                    order.reverse()
                for t in order:
                    m, c = _CellStep.apply(layer_in[t], h, c, w_ih, w_hh, b_ih, b_hh)
                    h = m.matmul(w_hr.t()) if w_hr is not None else m
                    ys[t] = h
                outs.append(torch.stack([ys[t] for t in range(T)]))
                hs.append(h)
                cs.append(c)
            layer_in = torch.cat(outs, -1) if D == 2 else outs[0]
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        return _from_time_major(self, layer_in, torch.stack(hs), torch.stack(cs), batched)


# --------------------------------------------------------------------------- 4
class GoodEinsumStacked(_LSTMBase):
    """Both directions of a layer are run simultaneously: their weights are stacked along a
    leading direction axis and every contraction is an einsum; the reverse direction gets
    the time-flipped input. Has its own input/hx handling."""

    def forward(self, input, hx=None):
        batched = input.dim() == 3
        if input.dim() == 2:
            x = input[:, None, :]
        elif input.dim() == 3:
            x = input.permute(1, 0, 2) if self.batch_first else input
        else:
            raise ValueError("expected 2D or 3D input")
        T, B = x.shape[0], x.shape[1]
        L, H = self.num_layers, self.hidden_size
        D = 2 if self.bidirectional else 1
        Ho = self.proj_size or H
        if hx is None:
            h0 = x.new_zeros(L, D, B, Ho)
            c0 = x.new_zeros(L, D, B, H)
        else:
            h0, c0 = hx
            if not batched:
                h0, c0 = h0[:, None, :], c0[:, None, :]
            h0 = h0.reshape(L, D, B, Ho)
            c0 = c0.reshape(L, D, B, H)
        seq = x
        fin_h, fin_c = [], []
        for layer in range(L):
            sfx = [f"_l{layer}", f"_l{layer}_reverse"][:D]
            Wi = torch.stack([getattr(self, "weight_ih" + s) for s in sfx])   # (D,4H,In)
            Wh = torch.stack([getattr(self, "weight_hh" + s) for s in sfx])   # (D,4H,Ho)
            bias = (torch.stack([getattr(self, "bias_ih" + s) + getattr(self, "bias_hh" + s) for s in sfx])
                    if self.bias else None)
            Wr = torch.stack([getattr(self, "weight_hr" + s) for s in sfx]) if self.proj_size else None
            xs = torch.stack([seq, seq.flip(0)][:D])                           # (D,T,B,In)
            pre = torch.einsum("dtbi,dgi->dtbg", xs, Wi)
            if bias is not None:
                pre = pre + bias[:, None, None, :]
            h, c = h0[layer], c0[layer]
            ys = []
            for t in range(T):
                z = pre[:, t] + torch.einsum("dbk,dgk->dbg", h, Wh)
                zi, zf, zg, zo = z.unflatten(-1, (4, H)).unbind(-2)
                c = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)
                m = torch.sigmoid(zo) * torch.tanh(c)
                h = torch.einsum("dbh,dph->dbp", m, Wr) if Wr is not None else m
                ys.append(h)
            Y = torch.stack(ys, 1)                                             # (D,T,B,Ho)
            if D == 2:
                Y = torch.stack([Y[0], Y[1].flip(0)])
            seq = torch.einsum("dtbh->tbdh", Y).reshape(T, B, D * Ho)
            fin_h.append(h)
            fin_c.append(c)
            if self.training and self.dropout > 0 and layer < L - 1:
                seq = F.dropout(seq, self.dropout, training=True)
        h_n = torch.cat(fin_h, 0)
        c_n = torch.cat(fin_c, 0)
        if not batched:
            return seq[:, 0], (h_n[:, 0], c_n[:, 0])
        if self.batch_first:
            seq = seq.permute(1, 0, 2)
        return seq, (h_n, c_n)


# --------------------------------------------------------------------------- 5
def _single_sequence(w_ih, w_hh, b_ih, b_hh, w_hr, x, h, c, *, reverse):
    """One direction of one layer for ONE sample: x (T,In), h (Ho,), c (H,)."""
    H = w_hh.shape[0] // 4
    T = x.shape[0]
    xw = torch.matmul(x, w_ih.transpose(0, 1))
    if b_ih is not None:
        xw = xw + (b_ih + b_hh)
    ys = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        z = xw[t] + torch.mv(w_hh, h)
        zi, zf, zg, zo = torch.split(z, H)
        c = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)
        h = torch.sigmoid(zo) * torch.tanh(c)
        if w_hr is not None:
            h = torch.mv(w_hr, h)
        ys[t] = h
    return torch.stack(ys), h, c


class GoodFuncVmap(_LSTMBase):
    """Writes the recurrence for a single (unbatched) sample with matrix-vector products and
    lifts it to the batch with torch.func.vmap (one vmap per layer/direction); inter-layer
    dropout is applied outside vmap on the (T,B,D*H_out) tensor."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        D = 2 if self.bidirectional else 1
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            ys = []
            for d in range(D):
                fn = functools.partial(_single_sequence, *_weights(self, layer, d), reverse=(d == 1))
                y, hT, cT = torch.func.vmap(fn, in_dims=(1, 0, 0), out_dims=(1, 0, 0))(
                    seq, h0[layer * D + d], c0[layer * D + d])
                ys.append(y)
                hs.append(hT)
                cs.append(cT)
            seq = torch.cat(ys, dim=-1).contiguous()
            if layer < self.num_layers - 1:
                seq = F.dropout(seq, self.dropout, self.training) if self.dropout > 0 else seq
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# --------------------------------------------------------------------------- 6
class GoodSubsetConcat(_LSTMBase):
    """TF/Keras-style concatenated kernel: K = [W_ih | W_hh] applied to [x_t, h]; activations
    via one torch.where (tanh on the g rows, sigmoid elsewhere); outputs written into a
    preallocated tensor. Supports num_layers, bias, batch_first, dropout, hx.
    Declines (NotImplementedError): bidirectional, proj_size>0 (in __init__), unbatched
    input (in forward)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        if bidirectional:
            raise NotImplementedError("GoodSubsetConcat: bidirectional not supported")
        if proj_size:
            raise NotImplementedError("GoodSubsetConcat: proj_size not supported")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)

    def forward(self, input, hx=None):
        if input.dim() != 3:
            raise NotImplementedError("GoodSubsetConcat: unbatched input not supported")
        x = input.transpose(0, 1) if self.batch_first else input
        T, B, _ = x.shape
        H = self.hidden_size
        if hx is None:
            h0 = x.new_zeros(self.num_layers, B, H)
            c0 = x.new_zeros(self.num_layers, B, H)
        else:
            h0, c0 = hx
        is_g = torch.zeros(4 * H, dtype=torch.bool, device=x.device)
        is_g[2 * H:3 * H] = True
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh, _ = _weights(self, layer, 0)
            K = torch.cat([w_ih, w_hh], dim=1).t()          # (In+H, 4H)
            b = (b_ih + b_hh) if b_ih is not None else None
            h, c = h0[layer], c0[layer]
            out = x.new_empty(T, B, H)
            for t in range(T):
                z = torch.cat([seq[t], h], dim=1) @ K
                if b is not None:
                    z = z + b
                a = torch.where(is_g, torch.tanh(z), torch.sigmoid(z))
                i, f, g, o = a.split(H, dim=1)
                c = f * c + i * g
                h = o * torch.tanh(c)
                out[t] = h
            hs.append(h)
            cs.append(c)
            seq = out
            if self.dropout > 0 and layer != self.num_layers - 1:
                seq = F.dropout(seq, self.dropout, self.training)
        if self.batch_first:
            seq = seq.transpose(0, 1)
        return seq, (torch.stack(hs), torch.stack(cs))


GOOD = [GoodFusedLoop, GoodPerGate, GoodCellFunction, GoodEinsumStacked, GoodFuncVmap, GoodSubsetConcat]
