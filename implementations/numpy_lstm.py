"""`numpy`: a complete `torch.nn.LSTM` in NumPy, forward and back-propagation through time by hand.

Every feature of `nn.LSTM`: layers, both directions, a projection (proj_size), no bias,
batch_first, unbatched input, given or absent h0/c0, float32 and float64; dropout between layers
is a training-time feature and changes nothing in evaluation, which is what is computed here.
The computation uses NumPy only (no torch, no autograd, no compiled code of its own).

One layer and direction, the notation of both passes (``*`` elementwise, ``@`` matrix product)::

    a_t = x_t @ W_ih^T + b_ih + b_hh + h_{t-1} @ W_hh^T          (4H pre-activations)
    i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c_t = f * c_{t-1} + i * g
    m_t = o * tanh(c_t);  h_t = m_t (or m_t @ W_hr^T with a projection)

and backwards, with dh_t the total gradient reaching h_t (from the output and from step t+1)::

    dm_t = dh_t (or dh_t @ W_hr)
    dc_t = dc_{t+1} * f_{t+1} + dm_t * o * (1 - tanh(c_t)^2)
    da_i = dc_t * g * i(1-i);  da_f = dc_t * c_{t-1} * f(1-f);  da_g = dc_t * i * (1-g^2)
    da_o = dm_t * tanh(c_t) * o(1-o)
    dh_{t-1} += da_t @ W_hh;  dx_t = da_t @ W_ih
    dW_ih = sum_t da_t^T x_t;  dW_hh = sum_t da_t^T h_{t-1};  db = sum_t da_t;  dW_hr = sum_t dh_t^T m_t

Where the speed comes from: the input projection of all time steps is one matrix product before
the loop, and the weight gradients are one matrix product each after it; inside the loop the
only matrix products are the recurrent ones, and every elementwise step writes into buffers
allocated once per call (``out=``). The gates are stored in the order i, f, o, g (the three
sigmoid gates contiguous) with the sigmoid rows of the weights halved, so one ``tanh`` over all
four blocks gives the candidate and, through ``sigmoid(a) = (1 + tanh(a / 2)) / 2``, the three
sigmoid gates (halving is exact in binary floating point). The gradient pass overwrites the
kept gate activations with the pre-activation gradients in place.

`NumpyLSTM.forward` keeps nothing for a backward pass (the counterpart of torch under
``no_grad``); `NumpyLSTM.gradients` runs the forward keeping the gates, the cell states, their
tanh and (with a projection) m_t, then the backward. `parity bench` times exactly these two
against `torch.nn.LSTM`'s forward under ``no_grad`` and its forward plus backward.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from parity import Adapter, LSTMConfig, Supports

__all__ = ["NumpyAdapter", "NumpyLSTM"]

# Canonical gate blocks are i, f, g, o; internally i, f, o, g, so that the sigmoid gates are one
# contiguous block. INTERNAL[k] is the canonical block stored at internal position k.
INTERNAL = (0, 1, 3, 2)


def _blocks(w: np.ndarray, order) -> np.ndarray:
    parts = np.split(w, 4, axis=0)
    return np.concatenate([parts[k] for k in order], axis=0)


def _to_internal(w: np.ndarray) -> np.ndarray:
    return _blocks(w, INTERNAL)


def _to_canonical(w: np.ndarray) -> np.ndarray:
    return _blocks(w, INTERNAL)  # the permutation swaps two blocks: it is its own inverse


class _Direction:
    """The weights of one layer in one direction, in the layouts the two passes use."""

    def __init__(self, w_ih, w_hh, b_ih, b_hh, w_hr, dtype) -> None:
        hidden = w_hh.shape[0] // 4
        self.hidden = hidden
        self.out = w_hh.shape[1]
        # Unscaled, internal gate order, for the backward's products with gradients.
        self.w_ih = np.ascontiguousarray(_to_internal(w_ih.astype(dtype)))
        self.w_hh = np.ascontiguousarray(_to_internal(w_hh.astype(dtype)))
        # Halved sigmoid rows, transposed, for the forward: a/2 feeds tanh for i, f, o.
        half = np.ones((4 * hidden, 1), dtype)
        half[: 3 * hidden] = 0.5
        self.w_ih_t = np.ascontiguousarray((self.w_ih * half).T)
        self.w_hh_t = np.ascontiguousarray((self.w_hh * half).T)
        self.bias = None
        if b_ih is not None:
            self.bias = (_to_internal((b_ih + b_hh).astype(dtype)[:, None]) * half)[:, 0].copy()
        self.w_hr = None if w_hr is None else np.ascontiguousarray(w_hr.astype(dtype))
        self.w_hr_t = None if w_hr is None else np.ascontiguousarray(self.w_hr.T)


class _Tape:
    """What one direction's forward keeps for its backward."""

    __slots__ = ("x", "gates", "h", "c", "tanh_c", "m", "reverse")


def _forward_direction(d: _Direction, x: np.ndarray, h0: np.ndarray, c0: np.ndarray,
                       reverse: bool, keep: bool):
    """Run one direction over x (T, B, I); returns (output (T, B, P), h_n, c_n, tape or None).

    Time-indexed buffers have one extra slot for the initial state: slot 0 in the forward
    direction (h_t in slot t+1), slot T in the reverse one (h_t in slot t), so that "the previous
    h of every step" is one contiguous slice for the weight gradient after the loop.
    """
    steps, batch, _ = x.shape
    hid, out, dtype = d.hidden, d.out, x.dtype
    gates = np.matmul(x.reshape(steps * batch, -1), d.w_ih_t).reshape(steps, batch, 4 * hid)
    if d.bias is not None:
        gates += d.bias
    h = np.empty((steps + 1, batch, out), dtype)
    first = steps if reverse else 0
    h[first] = h0
    if keep:
        c = np.empty((steps + 1, batch, hid), dtype)
        c[first] = c0
        tanh_c = np.empty((steps, batch, hid), dtype)
        m = np.empty((steps, batch, hid), dtype) if d.w_hr is not None else None
    else:
        c = np.empty((2, batch, hid), dtype)  # two rolling slots
        c[0] = c0
        tanh_c_t = np.empty((batch, hid), dtype)
        m_t = np.empty((batch, hid), dtype)
    recur = np.empty((batch, 4 * hid), dtype)
    ig = np.empty((batch, hid), dtype)
    w_hh_t, w_hr_t = d.w_hh_t, d.w_hr_t
    sig = slice(0, 3 * hid)
    for k in range(steps):
        t = steps - 1 - k if reverse else k
        prev, now = (t + 1, t) if reverse else (t, t + 1)
        a = gates[t]
        np.matmul(h[prev], w_hh_t, out=recur)
        np.add(a, recur, out=a)
        np.tanh(a, out=a)
        s = a[:, sig]
        np.multiply(s, 0.5, out=s)
        np.add(s, 0.5, out=s)
        i, f, o, g = a[:, :hid], a[:, hid:2 * hid], a[:, 2 * hid:3 * hid], a[:, 3 * hid:]
        if keep:
            c_prev, c_now, tc = c[prev], c[now], tanh_c[t]
            m_now = m[t] if m is not None else None
        else:
            c_prev, c_now, tc, m_now = c[k % 2], c[(k + 1) % 2], tanh_c_t, m_t
        np.multiply(f, c_prev, out=c_now)
        np.multiply(i, g, out=ig)
        np.add(c_now, ig, out=c_now)
        np.tanh(c_now, out=tc)
        if w_hr_t is None:
            np.multiply(o, tc, out=h[now])
        else:
            np.multiply(o, tc, out=m_now)
            np.matmul(m_now, w_hr_t, out=h[now])
    last = 0 if reverse else steps
    output = h[:steps] if reverse else h[1:]
    if not keep:
        c_n = c[steps % 2].copy()
        return output, h[last].copy(), c_n, None
    tape = _Tape()
    tape.x, tape.gates, tape.h, tape.c, tape.tanh_c, tape.m, tape.reverse = \
        x, gates, h, c, tanh_c, m, reverse
    return output, h[last].copy(), c[last].copy(), tape


def _backward_direction(d: _Direction, tape: _Tape, d_out: np.ndarray, d_hn: np.ndarray,
                        d_cn: np.ndarray):
    """The backward of `_forward_direction`: gradients for x, h0, c0 and the weights.

    `d_out` (T, B, P) is consumed: it is overwritten with the total gradient reaching each h_t.
    The tape's gate activations are overwritten with the pre-activation gradients da_t.
    """
    steps, batch, _ = d_out.shape
    hid, dtype, reverse = d.hidden, d_out.dtype, tape.reverse
    gates, c, tanh_c, m = tape.gates, tape.c, tape.tanh_c, tape.m
    dh = d_hn.astype(dtype, copy=True)  # gradient reaching h from the step after
    dc = d_cn.astype(dtype, copy=True)  # gradient reaching c from the step after, times f
    dm = np.empty((batch, hid), dtype) if d.w_hr is not None else None
    dsig = np.empty((batch, 3 * hid), dtype)
    tmp = np.empty((batch, hid), dtype)
    di = np.empty((batch, hid), dtype)
    w_hh, w_hr = d.w_hh, d.w_hr
    sig = slice(0, 3 * hid)
    for k in range(steps):
        t = k if reverse else steps - 1 - k
        prev = t + 1 if reverse else t
        a = gates[t]
        i, f, o, g = a[:, :hid], a[:, hid:2 * hid], a[:, 2 * hid:3 * hid], a[:, 3 * hid:]
        tc = tanh_c[t]
        dh_t = d_out[t]
        np.add(dh_t, dh, out=dh_t)
        if w_hr is None:
            dm_t = dh_t
        else:
            dm_t = np.matmul(dh_t, w_hr, out=dm)
        # dc_t = dc + dm * o * (1 - tanh(c)^2)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1, tmp, out=tmp)
        np.multiply(tmp, o, out=tmp)
        np.multiply(tmp, dm_t, out=tmp)
        np.add(dc, tmp, out=dc)
        # sigmoid'(a) = s (1 - s) for i, f, o, before the activations are overwritten
        s = a[:, sig]
        np.multiply(s, s, out=dsig)
        np.subtract(s, dsig, out=dsig)
        np.multiply(dc, g, out=di)
        # da_g = dc * i * (1 - g^2), in g's place
        np.multiply(g, g, out=tmp)
        np.subtract(1, tmp, out=tmp)
        np.multiply(tmp, i, out=tmp)
        np.multiply(tmp, dc, out=g)
        np.copyto(i, di)
        np.multiply(dm_t, tc, out=o)
        np.multiply(dc, f, out=tmp)  # the carry dc * f for step t-1, before f is overwritten
        np.multiply(dc, c[prev], out=f)
        np.multiply(s, dsig, out=s)
        dc, tmp = tmp, dc
        np.matmul(a, w_hh, out=dh)
    flat = gates.reshape(steps * batch, 4 * hid)
    h_prev = tape.h[1:] if reverse else tape.h[:-1]
    grads = {
        "weight_ih": _to_canonical(flat.T @ tape.x.reshape(steps * batch, -1)),
        "weight_hh": _to_canonical(flat.T @ h_prev.reshape(steps * batch, -1)),
    }
    if d.bias is not None:
        db = _to_canonical(flat.sum(axis=0)[:, None])[:, 0]
        grads["bias_ih"], grads["bias_hh"] = db, db.copy()
    if w_hr is not None:
        grads["weight_hr"] = d_out.reshape(steps * batch, -1).T @ m.reshape(steps * batch, hid)
    d_x = (flat @ d.w_ih).reshape(steps, batch, -1)
    return d_x, dh, dc, grads


class NumpyLSTM:
    """`nn.LSTM` in NumPy: built from the canonical parameters, `forward` and `gradients`.

    Arrays in and out are in `nn.LSTM`'s layouts (see `parity.Built`).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *,
                 params: Mapping[str, np.ndarray], dtype="float32") -> None:
        # dropout acts only in training; this is nn.LSTM in evaluation mode.
        self.dtype = np.dtype(dtype)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.proj_size = bias, batch_first, proj_size
        self.num_directions = 2 if bidirectional else 1
        self.out = proj_size or hidden_size
        self.layers: list[list[_Direction]] = []
        for layer in range(num_layers):
            row = []
            for direction in range(self.num_directions):
                sfx = f"_l{layer}{'_reverse' if direction else ''}"
                row.append(_Direction(
                    params["weight_ih" + sfx], params["weight_hh" + sfx],
                    params["bias_ih" + sfx] if bias else None,
                    params["bias_hh" + sfx] if bias else None,
                    params["weight_hr" + sfx] if proj_size else None, self.dtype))
            self.layers.append(row)

    # -- layouts -------------------------------------------------------------------------------
    def _time_major(self, input: np.ndarray, state):
        x = np.asarray(input, dtype=self.dtype)
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        x = np.ascontiguousarray(x)
        rows, batch = self.num_layers * self.num_directions, x.shape[1]
        if state is None:
            h0 = np.zeros((rows, batch, self.out), self.dtype)
            c0 = np.zeros((rows, batch, self.hidden_size), self.dtype)
        else:
            h0, c0 = (np.asarray(s, dtype=self.dtype) for s in state)
            if unbatched:
                h0, c0 = h0[:, None, :], c0[:, None, :]
        return x, h0, c0, unbatched

    def _user_layout(self, output, h_n, c_n, unbatched):
        if unbatched:
            return output[:, 0, :], (h_n[:, 0, :], c_n[:, 0, :])
        if self.batch_first:
            output = output.transpose(1, 0, 2)
        return np.ascontiguousarray(output), (h_n, c_n)

    # -- the passes ----------------------------------------------------------------------------
    def _run(self, x, h0, c0, keep: bool):
        h_n, c_n, tapes = [], [], []
        for layer, directions in enumerate(self.layers):
            outputs = []
            for direction, d in enumerate(directions):
                row = layer * self.num_directions + direction
                y, h, c, tape = _forward_direction(d, x, h0[row], c0[row], bool(direction), keep)
                outputs.append(y)
                h_n.append(h)
                c_n.append(c)
                tapes.append(tape)
            x = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=2)
        return x, np.stack(h_n), np.stack(c_n), tapes

    def forward(self, input: np.ndarray, state=None):
        """`(output, (h_n, c_n))`, keeping nothing for a backward pass."""
        x, h0, c0, unbatched = self._time_major(input, state)
        output, h_n, c_n, _ = self._run(x, h0, c0, keep=False)
        return self._user_layout(output, h_n, c_n, unbatched)

    def gradients(self, input: np.ndarray, state, cotangents) -> dict[str, np.ndarray]:
        """Gradients of ``sum(g_out * output) + sum(g_h * h_n) + sum(g_c * c_n)``."""
        x, h0, c0, unbatched = self._time_major(input, state)
        _, _, _, tapes = self._run(x, h0, c0, keep=True)
        g_out, g_h, g_c = (np.asarray(g, dtype=self.dtype) for g in cotangents)
        if unbatched:
            g_out, g_h, g_c = g_out[:, None, :], g_h[:, None, :], g_c[:, None, :]
        elif self.batch_first:
            g_out = g_out.transpose(1, 0, 2)
        out, dirs = self.out, self.num_directions
        grads: dict[str, np.ndarray] = {}
        d_h0, d_c0 = np.empty_like(h0), np.empty_like(c0)
        d_y = g_out
        for layer in reversed(range(self.num_layers)):
            d_x = None
            for direction, d in enumerate(self.layers[layer]):
                row = layer * dirs + direction
                # A private copy: the backward overwrites it with the total gradient of each h_t.
                d_out = np.array(d_y[:, :, direction * out:(direction + 1) * out], order="C")
                dx, dh, dc, g = _backward_direction(d, tapes[row], d_out, g_h[row], g_c[row])
                d_h0[row], d_c0[row] = dh, dc
                sfx = f"_l{layer}{'_reverse' if direction else ''}"
                for kind, value in g.items():
                    grads[kind + sfx] = value
                d_x = dx if d_x is None else np.add(d_x, dx, out=d_x)
            d_y = d_x
        if unbatched:
            d_y, d_h0, d_c0 = d_y[:, 0, :], d_h0[:, 0, :], d_c0[:, 0, :]
        elif self.batch_first:
            d_y = d_y.transpose(1, 0, 2)
        grads["input"] = np.ascontiguousarray(d_y)
        if state is not None:
            grads["h0"], grads["c0"] = d_h0, d_c0
        return grads


class NumpyAdapter(Adapter):
    name = "numpy"
    description = ("nn.LSTM in NumPy with back-propagation through time by hand, every feature, "
                   "built for speed")
    supports = Supports(gradients="manual")

    def build(self, config: LSTMConfig, params: Mapping[str, np.ndarray], dtype: str):
        return NumpyLSTM(**config.as_dict(), params=params, dtype=dtype)
