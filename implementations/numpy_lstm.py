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
    dW_ih = sum_t da_t^T x_t;  dW_hh = sum_t da_t^T h_{t-1};  db = sum_t da_t;
    dW_hr = sum_t dh_t^T m_t

Where the speed comes from: the per-step arrays are feature-major, (features, batch), so each gate
is one contiguous block for NumPy's elementwise loops. Each step is one matrix product,
``[W_ih, W_hh, b] @ [x_t; h_{t-1}; 1]`` (the input projection and the bias folded in), then one
``exp`` over all four gates (see `_Direction`), and every elementwise step writes into buffers
allocated once per call (``out=``), none per step. The backward's one product per step gives
dx_t and dh_{t-1} together, and the weight gradients (bias included) are one product over all
steps after the loop. The gradient pass overwrites the kept gate activations with da_t in place.

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

# Canonical gate blocks are i, f, g, o; internally i, f, o, g, so that the three sigmoid gates are
# one contiguous block for sigmoid'(a) = s (1 - s). The permutation swaps the last two blocks:
# it is its own inverse.
INTERNAL = (0, 1, 3, 2)


def _permute(w: np.ndarray) -> np.ndarray:
    parts = np.split(w, 4, axis=0)
    return np.concatenate([parts[k] for k in INTERNAL], axis=0)


def _transposed(a: np.ndarray) -> np.ndarray:
    """(T, F, B) -> (F, T*B), contiguous: all steps side by side for one weight-gradient product."""
    steps, features, batch = a.shape
    return np.ascontiguousarray(a.transpose(1, 0, 2)).reshape(features, steps * batch)


class _Direction:
    """The weights of one layer in one direction, in the layouts the two passes use.

    The forward multiplies ``W = [W_ih, W_hh, b_ih + b_hh]`` by ``z_t = [x_t; h_{t-1}; 1]``: one
    product per step, bias included. Its rows are scaled by -1 (i, f, o) and -2 (g), so that
    ``1 / (1 + exp(W z_t))`` is sigmoid(a) for i, f, o and sigmoid(2 a_g) for g, whence
    ``tanh(a_g) = 2 sigmoid(2 a_g) - 1``; both scalings are exact in binary floating point. The
    backward multiplies ``[W_ih, W_hh]^T`` by da_t, which gives dx_t and dh_{t-1} at once.
    """

    def __init__(self, w_ih, w_hh, b_ih, b_hh, w_hr, dtype) -> None:
        hidden = w_hh.shape[0] // 4
        self.hidden, self.out, self.inp = hidden, w_hh.shape[1], w_ih.shape[1]
        self.has_bias = b_ih is not None
        blocks = [w_ih, w_hh] + ([(b_ih + b_hh)[:, None]] if self.has_bias else [])
        w = _permute(np.concatenate([np.asarray(b, dtype) for b in blocks], axis=1))
        self.width = w.shape[1]  # K = I + P (+ 1 for the bias)
        scale = np.full((4 * hidden, 1), -1.0, dtype)
        scale[3 * hidden :] = -2.0
        self.w_fwd = np.ascontiguousarray(w * scale)
        self.w_back_t = np.ascontiguousarray(w[:, : self.inp + self.out].T)
        self.w_hr = None if w_hr is None else np.ascontiguousarray(np.asarray(w_hr, dtype))
        self.w_hr_t = None if w_hr is None else np.ascontiguousarray(self.w_hr.T)  # type: ignore[union-attr]  # set just above

    def new_z(self, steps: int, batch: int, dtype) -> np.ndarray:
        """The per-step inputs of the forward's product, z_t = [x_t; h_prev; 1], (T+1, K, B)."""
        z = np.empty((steps + 1, self.width, batch), dtype)
        if self.has_bias:
            z[:, -1, :] = 1
        return z


def _layout(steps: int, reverse: bool):
    """Which slot of z (and of the cell states) each step reads, and the order of the steps.

    Step t reads slot ``t + shift`` and writes slot ``t + 1 - shift``. Forward: z[t] holds x_t
    and h_{t-1}, h0 sits in slot 0. Reverse: z[t+1] holds x_t and h_{t+1}, h0 sits in slot T.
    """
    if reverse:
        return 1, range(steps - 1, -1, -1)
    return 0, range(steps)


def _h_rows(d: _Direction, z: np.ndarray, reverse: bool) -> np.ndarray:
    """The outputs h_0..h_{T-1} of one direction, (T, P, B): a view of its z."""
    steps, rows = z.shape[0] - 1, slice(d.inp, d.inp + d.out)
    return z[:steps, rows] if reverse else z[1:, rows]


class _Tape:
    """What one direction's forward keeps for its backward."""

    __slots__ = ("z", "gates", "c", "tanh_c", "m", "reverse")
    z: np.ndarray
    gates: np.ndarray
    c: np.ndarray
    tanh_c: np.ndarray
    m: np.ndarray | None  # with a projection only
    reverse: bool


def _forward_direction(
    d: _Direction, z: np.ndarray, h0: np.ndarray, c0: np.ndarray, reverse: bool, keep: bool
):
    """Run one direction over z (T+1, K, B), whose x rows hold the input (see `_layout`).

    Every h_t is written into z's h rows, where the next step reads it. Per-step arrays are
    feature-major, (features, batch), so that each gate is one contiguous block. Returns
    ``(c_n, tape)``; the tape (what the backward needs) only when `keep`.
    """
    steps, batch, hid, dtype = z.shape[0] - 1, z.shape[2], d.hidden, z.dtype
    rows = slice(d.inp, d.inp + d.out)
    shift, order = _layout(steps, reverse)
    z[steps * shift, rows] = h0
    if keep:
        gates = np.empty((steps, 4 * hid, batch), dtype)
        c = np.empty((steps + 1, hid, batch), dtype)
        tanh_c = np.empty((steps, hid, batch), dtype)
        m = np.empty((steps, hid, batch), dtype) if d.w_hr is not None else None
        c[steps * shift] = c0
    else:  # one gate buffer, two rolling cell-state slots
        a_buf = np.empty((4 * hid, batch), dtype)
        c = np.empty((2, hid, batch), dtype)
        c[0] = c0
        tc_buf, m_buf = np.empty((hid, batch), dtype), np.empty((hid, batch), dtype)
    ig = np.empty((hid, batch), dtype)
    w_fwd, w_hr = d.w_fwd, d.w_hr
    one, two = dtype.type(1), dtype.type(2)  # scalars of the array's dtype: no conversion per call
    if not keep:
        slots = ((c[0], c[1]), (c[1], c[0]))
    # Local names: each step is ~15 NumPy calls on small blocks, where lookups show.
    matmul, exp, add, divide, multiply, subtract, tanh = (
        np.matmul,
        np.exp,
        np.add,
        np.divide,
        np.multiply,
        np.subtract,
        np.tanh,
    )
    with np.errstate(over="ignore"):  # exp(large) = inf: sigmoid 0, as it should be
        for k, t in enumerate(order):
            if keep:
                a, c_prev, c_now, tc = gates[t], c[t + shift], c[t + 1 - shift], tanh_c[t]
                m_t = None if m is None else m[t]
            else:
                (c_prev, c_now), a, tc, m_t = slots[k & 1], a_buf, tc_buf, m_buf
            i, f, o, g = a[:hid], a[hid : 2 * hid], a[2 * hid : 3 * hid], a[3 * hid :]
            matmul(w_fwd, z[t + shift], out=a)  # -a (i, f, o) and -2 a_g
            exp(a, out=a)
            add(a, one, out=a)
            divide(one, a, out=a)  # (measured faster than np.reciprocal here)
            multiply(g, two, out=g)
            subtract(g, one, out=g)
            multiply(f, c_prev, out=c_now)
            multiply(i, g, out=ig)
            add(c_now, ig, out=c_now)
            tanh(c_now, out=tc)
            h_t = z[t + 1 - shift, rows]
            if w_hr is None:
                multiply(o, tc, out=h_t)
            else:
                multiply(o, tc, out=m_t)
                matmul(w_hr, m_t, out=h_t)  # type: ignore[arg-type]  # m_t is set with w_hr
    if not keep:
        return c[steps % 2], None
    tape = _Tape()
    tape.z, tape.gates, tape.c, tape.tanh_c, tape.m, tape.reverse = z, gates, c, tanh_c, m, reverse
    return c[steps * (1 - shift)], tape


def _backward_direction(
    d: _Direction, tape: _Tape, d_out: np.ndarray, d_hn: np.ndarray, d_cn: np.ndarray
):
    """The backward of `_forward_direction`.

    `d_out` (T, P, B), the gradient reaching each output h_t from above, is overwritten with the
    total gradient of h_t; the tape's gates are overwritten with da_t. Returns ``(d_xh, dh0,
    dc0, grads)`` with ``d_xh[:, :I]`` the input gradient (T, I, B) and `grads` by kind
    (``weight_ih``...), in the canonical layout.
    """
    steps, _, batch = d_out.shape
    hid, n_in, dtype = d.hidden, d.inp, d_out.dtype
    gates, c, tanh_c, m, z = tape.gates, tape.c, tape.tanh_c, tape.m, tape.z
    shift, order = _layout(steps, tape.reverse)
    d_xh = np.empty((steps, n_in + d.out, batch), dtype)  # [dx_t; dh_{t-1}] per step
    dh = d_hn  # the gradient reaching h_t from step t+1 (read only)
    dc = np.array(d_cn, dtype, order="C")  # the gradient reaching c_t from step t+1 (through f)
    dc_next = np.empty_like(dc)
    dm = np.empty((hid, batch), dtype) if d.w_hr is not None else None
    up, dsig = np.empty((3 * hid, batch), dtype), np.empty((3 * hid, batch), dtype)
    tmp = np.empty((hid, batch), dtype)
    w_back_t, w_hr_t = d.w_back_t, d.w_hr_t
    one = dtype.type(1)
    matmul, add, multiply, subtract = np.matmul, np.add, np.multiply, np.subtract
    for t in reversed(order):
        a = gates[t]
        i, f, o, g = a[:hid], a[hid : 2 * hid], a[2 * hid : 3 * hid], a[3 * hid :]
        s, tc = a[: 3 * hid], tanh_c[t]
        dh_t = d_out[t]
        add(dh_t, dh, out=dh_t)
        dm_t = dh_t if w_hr_t is None else matmul(w_hr_t, dh_t, out=dm)
        # dc_t = dc + dm * o * (1 - tanh(c)^2)
        multiply(tc, tc, out=tmp)
        subtract(one, tmp, out=tmp)
        multiply(tmp, o, out=tmp)
        multiply(tmp, dm_t, out=tmp)
        add(dc, tmp, out=dc)
        # what reaches i, f, o: dc * g, dc * c_{t-1}, dm * tanh(c_t)
        multiply(dc, g, out=up[:hid])
        multiply(dc, c[t + shift], out=up[hid : 2 * hid])
        multiply(dm_t, tc, out=up[2 * hid :])
        multiply(s, s, out=dsig)
        subtract(s, dsig, out=dsig)  # sigmoid'(a) = s (1 - s)
        # da_g = dc * i * (1 - g^2), in g's place (i is read before it is overwritten)
        multiply(g, g, out=tmp)
        subtract(one, tmp, out=tmp)
        multiply(tmp, i, out=tmp)
        multiply(tmp, dc, out=g)
        multiply(dc, f, out=dc_next)  # what reaches c_{t-1}, before f is overwritten
        multiply(up, dsig, out=s)  # da_i, da_f, da_o
        matmul(w_back_t, a, out=d_xh[t])
        dh = d_xh[t, n_in:]
        dc, dc_next = dc_next, dc
    # Weight gradients: one product over all steps, bias included through z's row of ones.
    d_a = _transposed(gates)
    w = _permute(d_a @ _transposed(z[shift : shift + steps]).T)
    grads = {
        "weight_ih": np.ascontiguousarray(w[:, :n_in]),
        "weight_hh": np.ascontiguousarray(w[:, n_in : n_in + d.out]),
    }
    if d.has_bias:
        grads["bias_ih"] = w[:, -1].copy()
        grads["bias_hh"] = w[:, -1].copy()
    if m is not None:
        grads["weight_hr"] = _transposed(d_out) @ _transposed(m).T
    return d_xh, dh, dc, grads


class NumpyLSTM:
    """`nn.LSTM` in NumPy: built from the canonical parameters, `forward` and `gradients`.

    Arrays in and out are in `nn.LSTM`'s layouts (see `parity.Built`).
    """

    # One layer and direction, each way; class attributes so that a test can swap in a copy.
    forward_direction = staticmethod(_forward_direction)
    backward_direction = staticmethod(_backward_direction)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        params: Mapping[str, np.ndarray],
        dtype="float32",
    ) -> None:
        # dropout acts only in training; this is nn.LSTM in evaluation mode.
        self.dtype = np.dtype(dtype)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.proj_size = batch_first, proj_size
        self.num_directions = 2 if bidirectional else 1
        self.out = proj_size or hidden_size
        self.layers: list[list[_Direction]] = []
        for layer in range(num_layers):
            row = []
            for direction in range(self.num_directions):
                sfx = f"_l{layer}{'_reverse' if direction else ''}"
                row.append(
                    _Direction(
                        params["weight_ih" + sfx],
                        params["weight_hh" + sfx],
                        params["bias_ih" + sfx] if bias else None,
                        params["bias_hh" + sfx] if bias else None,
                        params["weight_hr" + sfx] if proj_size else None,
                        self.dtype,
                    )
                )
            self.layers.append(row)

    def _time_major(self, input: np.ndarray, state):
        """Input as (T, B, I) and the state as (L*D, B, ·), whatever the layout given."""
        x = np.asarray(input, dtype=self.dtype)
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        if x.shape[0] == 0:  # as nn.LSTM answers an empty sequence
            raise ValueError("Expected sequence length to be larger than 0 in RNN")
        rows, batch = self.num_layers * self.num_directions, x.shape[1]
        if state is None:
            h0 = np.zeros((rows, batch, self.out), self.dtype)
            c0 = np.zeros((rows, batch, self.hidden_size), self.dtype)
        else:
            h0, c0 = (np.asarray(s, dtype=self.dtype) for s in state)
            if unbatched:
                h0, c0 = h0[:, None, :], c0[:, None, :]
        return x, h0, c0, unbatched

    def _run(self, x, h0, c0, keep: bool):
        """Every layer and direction; returns the last layer's z buffers, h_n, c_n and tapes."""
        steps, batch, _ = x.shape
        h_n, c_n, tapes, previous = [], [], [], None
        for layer, directions in enumerate(self.layers):
            zs = []
            for direction, d in enumerate(directions):
                reverse = bool(direction)
                z = d.new_z(steps, batch, self.dtype)
                xs = z[1:, : d.inp] if reverse else z[:steps, : d.inp]
                if previous is None:
                    xs[...] = x.transpose(0, 2, 1)
                else:  # the layer below's outputs, direction by direction
                    for k, (pd, pz) in enumerate(previous):
                        xs[:, k * pd.out : (k + 1) * pd.out] = _h_rows(pd, pz, k == 1)
                row = layer * self.num_directions + direction
                c_last, tape = self.forward_direction(d, z, h0[row].T, c0[row].T, reverse, keep)
                h_last = z[0 if reverse else steps, d.inp : d.inp + d.out]
                h_n.append(h_last.T)
                c_n.append(c_last.T)
                tapes.append(tape)
                zs.append((d, z))
            previous = zs
        return previous, np.stack(h_n), np.stack(c_n), tapes

    def _output(self, last, unbatched):
        steps, batch = last[0][1].shape[0] - 1, last[0][1].shape[2]
        out = np.empty((steps, batch, self.out * self.num_directions), self.dtype)
        for k, (d, z) in enumerate(last):
            out[:, :, k * self.out : (k + 1) * self.out] = _h_rows(d, z, k == 1).transpose(0, 2, 1)
        if unbatched:
            return out[:, 0, :]
        return out.transpose(1, 0, 2).copy() if self.batch_first else out

    # -- variable lengths: padded input plus one length per row (parity's Supports.lengths) ----
    def _groups(self, input: np.ndarray, lengths):
        """(n, rows, at) for each length n: the batch rows of that length, and the index of
        their first n steps in an array of the input's layout (batch_first or not)."""
        lengths = np.asarray(lengths)
        if np.ndim(input) != 3 or lengths.shape != (np.shape(input)[0 if self.batch_first else 1],):
            raise ValueError(
                f"lengths of shape {lengths.shape} for input of shape "
                f"{np.shape(input)}: one length per batch row"
            )
        steps = np.shape(input)[1 if self.batch_first else 0]
        if lengths.size and not (1 <= lengths.min() and lengths.max() <= steps):
            raise ValueError(f"lengths={lengths.tolist()}: each must be in 1..{steps}")
        for n in np.unique(lengths):
            rows = np.flatnonzero(lengths == n)
            steps_kept = slice(0, int(n))
            yield int(n), rows, ((rows, steps_kept) if self.batch_first else (steps_kept, rows))

    def _forward_lengths(self, input, state, lengths):
        """Each length's rows as one batch over that length: a row's padding never enters,
        as nn.LSTM on the batch packed (the output is zero at padded positions)."""
        x = np.asarray(input, dtype=self.dtype)
        out_shape = x.shape[:2] + (self.out * self.num_directions,)
        output = np.zeros(out_shape, self.dtype)
        rows_all = self.num_layers * self.num_directions
        h_n = np.zeros((rows_all, x.shape[0 if self.batch_first else 1], self.out), self.dtype)
        c_n = np.zeros(h_n.shape[:2] + (self.hidden_size,), self.dtype)
        for _, rows, at in self._groups(x, lengths):
            sub = None if state is None else tuple(np.asarray(s)[:, rows] for s in state)
            y, (h, c) = self.forward(x[at], sub)
            output[at] = y
            h_n[:, rows], c_n[:, rows] = h, c
        return output, (h_n, c_n)

    def _gradients_lengths(self, input, state, cotangents, lengths):
        """The gradients of `_forward_lengths`: each length's rows as one batch, summed."""
        x = np.asarray(input, dtype=self.dtype)
        g_out, g_h, g_c = (np.asarray(g, dtype=self.dtype) for g in cotangents)
        grads: dict[str, np.ndarray] = {"input": np.zeros_like(x)}
        if state is not None:
            grads["h0"] = np.zeros(np.shape(state[0]), self.dtype)
            grads["c0"] = np.zeros(np.shape(state[1]), self.dtype)
        for _, rows, at in self._groups(x, lengths):
            sub = None if state is None else tuple(np.asarray(s)[:, rows] for s in state)
            part = self.gradients(x[at], sub, (g_out[at], g_h[:, rows], g_c[:, rows]))
            grads["input"][at] = part.pop("input")
            if state is not None:
                grads["h0"][:, rows], grads["c0"][:, rows] = part.pop("h0"), part.pop("c0")
            for name, g in part.items():
                grads[name] = grads[name] + g if name in grads else g
        return grads

    def forward(self, input: np.ndarray, state=None, lengths=None):
        """`(output, (h_n, c_n))`, keeping nothing for a backward pass. `lengths`: one per
        row of a padded batch (see `_forward_lengths`)."""
        if lengths is not None:
            return self._forward_lengths(input, state, lengths)
        x, h0, c0, unbatched = self._time_major(input, state)
        last, h_n, c_n, _ = self._run(x, h0, c0, keep=False)
        if unbatched:
            h_n, c_n = h_n[:, 0, :], c_n[:, 0, :]
        return self._output(last, unbatched), (h_n, c_n)

    def gradients(
        self, input: np.ndarray, state, cotangents, lengths=None
    ) -> dict[str, np.ndarray]:
        """Gradients of ``sum(g_out * output) + sum(g_h * h_n) + sum(g_c * c_n)``."""
        if lengths is not None:
            return self._gradients_lengths(input, state, cotangents, lengths)
        x, h0, c0, unbatched = self._time_major(input, state)
        _, _, _, tapes = self._run(x, h0, c0, keep=True)
        g_out, g_h, g_c = (np.asarray(g, dtype=self.dtype) for g in cotangents)
        if unbatched:
            g_out, g_h, g_c = g_out[:, None, :], g_h[:, None, :], g_c[:, None, :]
        elif self.batch_first:
            g_out = g_out.transpose(1, 0, 2)
        out, dirs = self.out, self.num_directions
        d_y = g_out.transpose(0, 2, 1)  # (T, D*P, B), feature-major like z
        grads: dict[str, np.ndarray] = {}
        d_h0, d_c0 = np.empty_like(h0), np.empty_like(c0)
        for layer in reversed(range(self.num_layers)):
            d_x = None
            for direction, d in enumerate(self.layers[layer]):
                row = layer * dirs + direction
                # A private copy: the backward overwrites it with the total gradient of each h_t.
                d_out = np.array(d_y[:, direction * out : (direction + 1) * out], order="C")
                d_xh, dh, dc, g = self.backward_direction(
                    d, tapes[row], d_out, g_h[row].T, g_c[row].T
                )
                d_h0[row], d_c0[row] = dh.T, dc.T
                sfx = f"_l{layer}{'_reverse' if direction else ''}"
                for kind, value in g.items():
                    grads[kind + sfx] = value
                dx = d_xh[:, : d.inp]
                d_x = dx if d_x is None else np.add(d_x, dx, out=d_x)
            assert d_x is not None  # a layer has one direction or two
            d_y = d_x
        d_input = d_y.transpose(0, 2, 1)  # (T, B, I)
        if unbatched:
            d_input, d_h0, d_c0 = d_input[:, 0, :], d_h0[:, 0, :], d_c0[:, 0, :]
        elif self.batch_first:
            d_input = d_input.transpose(1, 0, 2)
        grads["input"] = np.ascontiguousarray(d_input)
        if state is not None:
            grads["h0"], grads["c0"] = d_h0, d_c0
        return grads


class NumpyAdapter(Adapter):
    name = "numpy"
    description = (
        "nn.LSTM in NumPy with back-propagation through time by hand, every feature, "
        "built for speed"
    )
    supports = Supports(gradients="manual", lengths=True)
    lstm: type = NumpyLSTM

    def build(self, config: LSTMConfig, params: Mapping[str, np.ndarray], dtype: str):
        return self.lstm(**config.as_dict(), params=params, dtype=dtype)
