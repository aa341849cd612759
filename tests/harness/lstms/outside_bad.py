"""Twelve drop-in look-alikes of ``torch.nn.LSTM`` that are each subtly WRONG in one way.

Every class registers nn.LSTM's parameters (same names, shapes, i/f/g/o row order) and
implements ``forward(input, hx=None) -> (output, (h_n, c_n))`` with full feature support
(num_layers, bias, batch_first, dropout, bidirectional, proj_size, unbatched input, hx).
Each one contains exactly one bug of the kind people make when writing an LSTM by hand,
porting one, or optimising one.  See README.md in this folder for the table of bugs.
"""

import torch
import torch.nn.functional as F

from .outside_good import _LSTMBase, _weights, _to_time_major, _from_time_major

__all__ = ["BAD",
           "BadHnDirectionMajor", "BadReverseProjWeight", "BadBatchFirstView",
           "BadBiasHhLayer0", "BadCellBackwardDcPrev", "BadDetachEvery8",
           "BadBiasGradMean", "BadDetachC0", "BadHalfCandidate", "BadSigmoidClamp",
           "BadChunkPadTail", "BadH0IndexNoDirection"]


def _D(mod):
    return 2 if mod.bidirectional else 1


def _interlayer_dropout(mod, seq, layer):
    if layer < mod.num_layers - 1 and mod.dropout > 0 and mod.training:
        seq = F.dropout(seq, mod.dropout, training=True)
    return seq


def _step(xw_t, h, c, w_hh, w_hr, sig=torch.sigmoid, tanh_g=torch.tanh):
    """One step given the precomputed input part xw_t (includes biases)."""
    gates = xw_t + F.linear(h, w_hh)
    gi, gf, gg, go = gates.chunk(4, dim=-1)
    c = sig(gf) * c + sig(gi) * tanh_g(gg)
    h = sig(go) * torch.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)
    return h, c


# =========================================================================== 1
class BadHnDirectionMajor(_LSTMBase):
    """h_n/c_n are stacked direction-major (all forward layers, then all reverse layers) instead of nn.LSTM's layer-major order (l0, l0_reverse, l1, l1_reverse, ...)."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T, D = x.shape[0], _D(self)
        seq = x
        fin_h = [[] for _ in range(D)]
        fin_c = [[] for _ in range(D)]
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                xw = F.linear(seq, w_ih, b_ih)
                if b_hh is not None:
                    xw = xw + b_hh
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    h, c = _step(xw[t], h, c, w_hh, w_hr)
                    ys[t] = h
                outs.append(torch.stack(ys))
                fin_h[d].append(h)
                fin_c[d].append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        # BUG: direction-major flattening; nn.LSTM uses index layer * D + direction
        h_n = torch.stack([h for per_dir in fin_h for h in per_dir])
        c_n = torch.stack([c for per_dir in fin_c for c in per_dir])
        return _from_time_major(self, seq, h_n, c_n, batched)


# =========================================================================== 2
class BadReverseProjWeight(_LSTMBase):
    """The reverse direction projects with the forward direction's weight_hr_l{k} (name built without the '_reverse' suffix), so weight_hr_l{k}_reverse is unused."""

    def _params(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        w_ih = getattr(self, "weight_ih" + sfx)
        w_hh = getattr(self, "weight_hh" + sfx)
        b = (getattr(self, "bias_ih" + sfx) + getattr(self, "bias_hh" + sfx)) if self.bias else None
        w_hr = getattr(self, f"weight_hr_l{layer}") if self.proj_size > 0 else None  # BUG
        return w_ih, w_hh, b, w_hr

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        D = _D(self)
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b, w_hr = self._params(layer, d)
                src = seq.flip(0) if d else seq
                xw = torch.matmul(src, w_ih.t())
                if b is not None:
                    xw = xw + b
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = []
                for t in range(src.shape[0]):
                    h, c = _step(xw[t], h, c, w_hh, w_hr)
                    ys.append(h)
                y = torch.stack(ys)
                outs.append(y.flip(0) if d else y)
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# =========================================================================== 3
class BadBatchFirstView(_LSTMBase):
    """batch_first is handled with reshape (B,T,F)->(T,B,F) (and back) instead of transpose, which scrambles batch and time whenever batch>1 and seq_len>1."""

    def forward(self, input, hx=None):
        if input.dim() not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D")
        batched = input.dim() == 3
        if not batched:
            x = input.unsqueeze(1)
        elif self.batch_first:
            B, T = input.shape[0], input.shape[1]
            x = input.reshape(T, B, input.shape[2])          # BUG: should be transpose(0, 1)
        else:
            x = input
        T, B = x.shape[0], x.shape[1]
        D = _D(self)
        Ho = self.proj_size or self.hidden_size
        if hx is None:
            h0 = x.new_zeros(self.num_layers * D, B, Ho)
            c0 = x.new_zeros(self.num_layers * D, B, self.hidden_size)
        else:
            h0, c0 = hx
            if not batched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = [None] * T
                for t in (reversed(range(T)) if d else range(T)):
                    z = F.linear(seq[t], w_ih, b_ih) + F.linear(h, w_hh, b_hh)
                    i, f, g, o = z.chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    if w_hr is not None:
                        h = h @ w_hr.t()
                    ys[t] = h
                outs.append(torch.stack(ys))
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, 2), layer)
        h_n, c_n = torch.stack(hs), torch.stack(cs)
        if not batched:
            return seq.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            seq = seq.reshape(B, T, seq.shape[2])             # BUG (mirror of the one above)
        return seq, (h_n, c_n)


# =========================================================================== 4
class BadBiasHhLayer0(_LSTMBase):
    """Every layer uses bias_hh_l0 (the layer index is not substituted into the bias_hh name), so deeper layers ignore their own bias_hh_l{k}."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T, D, H = x.shape[0], _D(self), self.hidden_size
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                rev = "_reverse" if d else ""
                w_ih = getattr(self, f"weight_ih_l{layer}{rev}")
                w_hh = getattr(self, f"weight_hh_l{layer}{rev}")
                w_hr = getattr(self, f"weight_hr_l{layer}{rev}") if self.proj_size else None
                if self.bias:
                    b = getattr(self, f"bias_ih_l{layer}{rev}") + getattr(self, "bias_hh_l0" + rev)  # BUG
                xw = torch.einsum("tbi,gi->tbg", seq, w_ih)
                if self.bias:
                    xw = xw + b
                h, c = h0[layer * D + d], c0[layer * D + d]
                out = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    z = xw[t] + h @ w_hh.t()
                    a = torch.cat([torch.sigmoid(z[:, :2 * H]), torch.tanh(z[:, 2 * H:3 * H]),
                                   torch.sigmoid(z[:, 3 * H:])], 1)
                    c = a[:, H:2 * H] * c + a[:, :H] * a[:, 2 * H:3 * H]
                    h = a[:, 3 * H:] * torch.tanh(c)
                    if w_hr is not None:
                        h = h @ w_hr.t()
                    out[t] = h
                outs.append(torch.stack(out))
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# =========================================================================== 5
class _CellStepDcPrev(torch.autograd.Function):
    """LSTM cell step (no projection) with a hand-written backward."""

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih, b_hh):
        gates = x.matmul(w_ih.t()) + h.matmul(w_hh.t())
        if b_ih is not None:
            gates = gates + b_ih + b_hh
        gi, gf, gg, go = gates.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(gi), torch.sigmoid(gf), torch.tanh(gg), torch.sigmoid(go)
        c_new = f * c + i * g
        tc = torch.tanh(c_new)
        ctx.save_for_backward(x, h, c, w_ih, w_hh, i, f, g, o, tc)
        ctx.has_bias = b_ih is not None
        return o * tc, c_new

    @staticmethod
    def backward(ctx, dm, dc_new):
        x, h, c, w_ih, w_hh, i, f, g, o, tc = ctx.saved_tensors
        dm = torch.zeros_like(tc) if dm is None else dm
        dc_new = torch.zeros_like(tc) if dc_new is None else dc_new
        do = dm * tc
        dc = dc_new + dm * o * (1.0 - tc * tc)
        dgates = torch.cat([dc * g * i * (1.0 - i),
                            dc * c * f * (1.0 - f),
                            dc * i * (1.0 - g * g),
                            do * o * (1.0 - o)], dim=1)
        dc_prev = dc_new * f            # BUG: must be dc * f (drops the path through m = o*tanh(c))
        dx = dgates.matmul(w_ih)
        dh = dgates.matmul(w_hh)
        dw_ih = dgates.t().matmul(x)
        dw_hh = dgates.t().matmul(h)
        db = dgates.sum(0) if ctx.has_bias else None
        return dx, dh, dc_prev, dw_ih, dw_hh, db, db


class BadCellBackwardDcPrev(_LSTMBase):
    """Hand-written cell backward propagates dc_prev = dc_next * f using only the incoming cell gradient, dropping the dh*o*(1-tanh^2 c) term (gradient-only bug, needs seq_len>=2 or a grad w.r.t. c0)."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T, D = x.shape[0], _D(self)
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = {}
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    m, c = _CellStepDcPrev.apply(seq[t], h, c, w_ih, w_hh, b_ih, b_hh)
                    h = m.matmul(w_hr.t()) if w_hr is not None else m
                    ys[t] = h
                outs.append(torch.stack([ys[t] for t in range(T)]))
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# =========================================================================== 6
class BadDetachEvery8(_LSTMBase):
    """The recurrent state (h, c) is .detach()ed every 8 time steps (truncated BPTT baked into the module): forward is exact, gradients are wrong once seq_len > 8."""

    tbptt = 8

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T, D, H = x.shape[0], _D(self), self.hidden_size
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                xw = F.linear(seq, w_ih, None if b_ih is None else b_ih + b_hh)
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = [None] * T
                order = range(T - 1, -1, -1) if d else range(T)
                for n, t in enumerate(order):
                    if n > 0 and n % self.tbptt == 0:
                        h, c = h.detach(), c.detach()    # BUG: cuts the gradient through time
                    z = torch.addmm(xw[t], h, w_hh.t())
                    i, f, o = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H]), torch.sigmoid(z[:, 3 * H:])
                    c = torch.addcmul(f * c, i, torch.tanh(z[:, 2 * H:3 * H]))
                    h = o * torch.tanh(c)
                    if w_hr is not None:
                        h = h.mm(w_hr.t())
                    ys[t] = h
                outs.append(torch.stack(ys))
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# =========================================================================== 7
class _GatesFn(torch.autograd.Function):
    """Fused gate pre-activation z = x W_ih^T + h W_hh^T + b_ih + b_hh with a manual backward."""

    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih, b_hh):
        z = x.matmul(w_ih.t()) + h.matmul(w_hh.t())
        if b_ih is not None:
            z = z + b_ih + b_hh
        ctx.save_for_backward(x, h, w_ih, w_hh)
        ctx.has_bias = b_ih is not None
        return z

    @staticmethod
    def backward(ctx, dz):
        x, h, w_ih, w_hh = ctx.saved_tensors
        db = dz.mean(0) if ctx.has_bias else None        # BUG: should be dz.sum(0)
        return dz.matmul(w_ih), dz.matmul(w_hh), dz.t().matmul(x), dz.t().matmul(h), db, db


class BadBiasGradMean(_LSTMBase):
    """Manual backward of the fused gate matmul reduces the bias gradient over the batch with mean instead of sum (bias grads are 1/batch too small; exact when batch == 1)."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T, D = x.shape[0], _D(self)
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    z = _GatesFn.apply(seq[t], h, w_ih, w_hh, b_ih, b_hh)
                    i, f, g, o = z.chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    if w_hr is not None:
                        h = F.linear(h, w_hr)
                    ys[t] = h
                outs.append(torch.stack(ys))
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# =========================================================================== 8
class BadDetachC0(_LSTMBase):
    """The user-supplied initial cell state c0 is .detach()ed (meant to stop BPTT across batches), so no gradient flows into c0; outputs and all other gradients are exact."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        c0 = c0.detach()                                   # BUG
        T, D = x.shape[0], _D(self)
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                xw = F.linear(seq, w_ih, b_ih)
                if b_hh is not None:
                    xw = xw + b_hh
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    h, c = _step(xw[t], h, c, w_hh, w_hr)
                    ys[t] = h
                outs.append(torch.stack(ys))
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# =========================================================================== 9
def _tanh_half(z):
    # "cheap" candidate activation computed in float16 and cast back
    return torch.tanh(z.to(torch.float16)).to(z.dtype)


class BadHalfCandidate(_LSTMBase):
    """The cell candidate g = tanh(z_g) is computed in float16 and cast back (mixed-precision 'optimisation'), giving ~1e-4..1e-3 relative error in every configuration."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T, D = x.shape[0], _D(self)
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                xw = F.linear(seq, w_ih, b_ih)
                if b_hh is not None:
                    xw = xw + b_hh
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    h, c = _step(xw[t], h, c, w_hh, w_hr, tanh_g=_tanh_half)   # BUG
                    ys[t] = h
                outs.append(torch.stack(ys))
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# =========================================================================== 10
def _safe_sigmoid(z):
    # "overflow-safe" sigmoid: clamp before exp
    return 1.0 / (1.0 + torch.exp(-z.clamp(-8.0, 8.0)))


class BadSigmoidClamp(_LSTMBase):
    """Gate sigmoid is computed as 1/(1+exp(-clamp(z,-8,8))) to 'avoid exp overflow': wrong (up to 3.4e-4, zero gradient) only when a gate pre-activation exceeds |8|, i.e. large inputs/weights."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T, D = x.shape[0], _D(self)
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                xw = F.linear(seq, w_ih, b_ih)
                if b_hh is not None:
                    xw = xw + b_hh
                h, c = h0[layer * D + d], c0[layer * D + d]
                ys = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    h, c = _step(xw[t], h, c, w_hh, w_hr, sig=_safe_sigmoid)   # BUG
                    ys[t] = h
                outs.append(torch.stack(ys))
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# =========================================================================== 11
class BadChunkPadTail(_LSTMBase):
    """Time is processed in chunks of 16 with the input zero-padded to a multiple of 16; outputs are sliced back but h_n/c_n are taken after the padded steps (wrong only when seq_len > 16 and not a multiple of 16)."""

    chunk = 16

    def _run(self, src, h, c, w_ih, w_hh, b, w_hr):
        T = src.shape[0]
        K = min(self.chunk, T)
        Tp = -(-T // K) * K
        if Tp != T:
            src = torch.cat([src, src.new_zeros((Tp - T,) + tuple(src.shape[1:]))], 0)
        ys = []
        for s in range(0, Tp, K):
            xw = F.linear(src[s:s + K], w_ih, b)          # per-chunk input projection
            for k in range(K):
                h, c = _step(xw[k], h, c, w_hh, w_hr)
                ys.append(h)
        return torch.stack(ys[:T]), h, c                  # BUG: h, c include the padded steps

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        D = _D(self)
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                b = None if b_ih is None else b_ih + b_hh
                src = seq.flip(0) if d else seq
                y, h, c = self._run(src, h0[layer * D + d], c0[layer * D + d], w_ih, w_hh, b, w_hr)
                outs.append(y.flip(0) if d else y)
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


# =========================================================================== 12
class BadH0IndexNoDirection(_LSTMBase):
    """Initial states are read as h0[layer], c0[layer] instead of h0[layer*D + direction], so with bidirectional and a given hx the wrong rows initialise most directions."""

    def forward(self, input, hx=None):
        x, h0, c0, batched = _to_time_major(self, input, hx)
        T, D = x.shape[0], _D(self)
        seq = x
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh, w_hr = _weights(self, layer, d)
                xw = F.linear(seq, w_ih, b_ih)
                if b_hh is not None:
                    xw = xw + b_hh
                h, c = h0[layer], c0[layer]                # BUG: ignores the direction
                ys = [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    h, c = _step(xw[t], h, c, w_hh, w_hr)
                    ys[t] = h
                outs.append(torch.stack(ys))
                hs.append(h)
                cs.append(c)
            seq = _interlayer_dropout(self, torch.cat(outs, -1), layer)
        return _from_time_major(self, seq, torch.stack(hs), torch.stack(cs), batched)


BAD = [BadHnDirectionMajor, BadReverseProjWeight, BadBatchFirstView, BadBiasHhLayer0,
       BadCellBackwardDcPrev, BadDetachEvery8, BadBiasGradMean, BadDetachC0,
       BadHalfCandidate, BadSigmoidClamp, BadChunkPadTail, BadH0IndexNoDirection]
