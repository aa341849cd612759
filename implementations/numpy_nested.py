"""The nested-network LSTM of "An intuitive guide to LSTMs" (seed 000), with true gradients.

The article builds its LSTM from three small dense networks on ``[x_t, h_{t-1}]`` (x first, as
its ``list(input_data) + list(pred)``), each a stack of layers ``a = act(a @ W)`` with no biases:

- the forget network:    f_t = sigmoid(forget(x_t, h_{t-1}))     ("forget_nn")
- the select network:    s_t = sigmoid(select(x_t, h_{t-1}))     ("select_nn")
- the candidate network: g_t = tanh(candidate(x_t, h_{t-1}))     ("recurrent_nn")

      c_t = f_t * c_{t-1} + g_t          (no input gate)
      h_t = s_t * tanh(c_t)              (the prediction, fed back as h)

with c starting at ones (``colposs = 1``) and h at zeros. Its network, the default here, is
``[[I, 5, sigmoid], [5, 5, sigmoid], [5, H, sigmoid]]`` for every gate network: the network's
own sigmoid and then the gate's sigmoid (or tanh) on top, as the article writes it. Widths and
activations of the gate networks are configurable (`NestedAdapter.widths`, `.activations`).

Vectorized over a batch; gradients by a hand-written back-propagation through time
(`NestedLSTM.backward`, next to the forward). The variant reduces to `nn.LSTM` in one
*configuration*: each gate network a single linear layer with no activation, the cell state
starting at zeros when none is given, and `nn.LSTM`'s input gate held open (input-gate weights
zero, input-gate bias `SATURATING_BIAS`, other biases zero). `NestedLinearAdapter` is that
configuration, taking `nn.LSTM`'s own ``weight_ih_l0`` / ``weight_hh_l0`` (f, g, o rows).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from parity import Adapter, LSTMConfig, Supports, Variant, parameter_shapes

__all__ = [
    "ACTIVATIONS",
    "ARTICLE_ACTIVATIONS",
    "ARTICLE_WIDTHS",
    "NETWORKS",
    "SATURATING_BIAS",
    "NestedAdapter",
    "NestedLSTM",
    "NestedLinearAdapter",
    "nested_parameters",
    "open_input_gate",
]

NETWORKS = ("forget", "select", "candidate")
ARTICLE_WIDTHS = (5, 5)  # the article's hidden layers: [3,5], [5,5], [5,1]
ARTICLE_ACTIVATIONS = ("sigmoid", "sigmoid", "sigmoid")
# sigmoid(40) rounds to exactly 1.0 in float32 and float64 (e^-40 = 4e-18 is below half an ulp
# of 1 in either), and torch's sigmoid backward, y * (1 - y), is then exactly 0: with this bias
# nn.LSTM's input gate is open exactly, not to within e^-bias, in its forward and its gradients.
SATURATING_BIAS = 40.0


def _sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) -> inf for z << 0: 1/inf = 0 is the limit
        return 1 / (1 + np.exp(-z))


# name -> (activation, its derivative written in terms of the activation's value a = act(z))
ACTIVATIONS: dict[str | None, tuple[Callable, Callable]] = {
    "sigmoid": (_sigmoid, lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a * a),
    "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype)),  # heaviside(z, 0)
    None: (lambda z: z, lambda a: np.ones_like(a)),
}


def network_sizes(input_size: int, hidden_size: int, widths: Sequence[int]) -> list[tuple]:
    """(rows, columns) of each layer's weight, ``a @ W`` layout, input [x, h] first."""
    sizes = [input_size + hidden_size, *widths, hidden_size]
    return list(zip(sizes[:-1], sizes[1:]))


def nested_parameters(config: LSTMConfig, widths: Sequence[int]) -> dict[str, tuple]:
    """The gate networks' weights, ``forget.0.weight`` ... ``candidate.K.weight``."""
    return {
        f"{net}.{k}.weight": shape
        for net in NETWORKS
        for k, shape in enumerate(network_sizes(config.input_size, config.hidden_size, widths))
    }


class NestedLSTM:
    """The article's cell over a sequence, time-major: x (T, B, I), h0 and c0 (B, H)."""

    def __init__(
        self,
        weights: Mapping[str, Sequence[np.ndarray]],
        activations: Sequence[str | None],
        input_size: int,
        hidden_size: int,
    ) -> None:
        self.weights = {net: list(weights[net]) for net in NETWORKS}
        self.activations = list(activations)
        self.input_size, self.hidden_size = input_size, hidden_size
        depth = len(self.weights["forget"])
        if len(self.activations) != depth:
            raise ValueError(f"activations={self.activations!r}: one per layer ({depth} layers)")

    def _network(self, net: str, a: np.ndarray, keep: list) -> np.ndarray:
        for W, act in zip(self.weights[net], self.activations):
            a = ACTIVATIONS[act][0](a @ W)
            keep.append(a)
        return a

    def forward(self, x, h0, c0):
        """(output (T, B, H), h_n, c_n, cache for `backward`)."""
        T, B, _ = x.shape
        H = self.hidden_size
        out = np.empty((T, B, H), x.dtype)
        cells = np.empty((T + 1, B, H), x.dtype)  # c_{-1} .. c_{T-1}
        cells[0] = c0
        inputs = np.empty((T, B, self.input_size + H), x.dtype)
        layers = {net: [] for net in NETWORKS}  # per step, each layer's activation
        gates = {net: np.empty((T, B, H), x.dtype) for net in NETWORKS}
        h = h0
        for t in range(T):
            inputs[t, :, : self.input_size], inputs[t, :, self.input_size :] = x[t], h
            keep = {net: [] for net in NETWORKS}
            f = _sigmoid(self._network("forget", inputs[t], keep["forget"]))
            s = _sigmoid(self._network("select", inputs[t], keep["select"]))
            g = np.tanh(self._network("candidate", inputs[t], keep["candidate"]))
            for net, value in zip(NETWORKS, (f, s, g)):
                gates[net][t] = value
                layers[net].append(keep[net])
            cells[t + 1], h = self._cell_forward(f, s, g, cells[t])
            out[t] = h
        cache = (inputs, layers, gates, cells)
        h_n = out[-1] if T else h0
        return out, h_n, cells[-1], cache

    @staticmethod
    def _cell_forward(f, s, g, c_prev):
        """(c_t, h_t): the article's cell_state and multiply gates."""
        c = f * c_prev + g
        return c, s * np.tanh(c)

    @staticmethod
    def _cell_backward(dh, dc, f, s, g, c_prev, c):
        """dL/d(each gate network's output) and dL/dc_{t-1}, from dL/dh_t and the dL/dc_t
        carried back from step t+1."""
        tc = np.tanh(c)
        dc = dc + dh * s * (1 - tc * tc)
        d_top = {
            "forget": dc * c_prev * f * (1 - f),  # through f = sigmoid(forget's output)
            "select": dh * tc * s * (1 - s),
            "candidate": dc * (1 - g * g),
        }
        return d_top, dc * f

    def backward(self, cache, g_out, g_h, g_c, *, through_time: bool = True):
        """Gradients of ``sum(g_out * output) + sum(g_h * h_n) + sum(g_c * c_n)``.

        Returns ``{"input": (T, B, I), "h0", "c0": (B, H), net: [dW per layer]}``. With
        `through_time` False, nothing flows from step t back into step t-1 (h_{t-1} and c_{t-1}
        held constant): the exact per-step gradient, summed over steps, used by the audit.
        """
        inputs, layers, gates, cells = cache
        T, B, _ = inputs.shape
        I = self.input_size
        dtype = inputs.dtype
        # Each layer's dL/dz, per step; the weight gradients are one GEMM each after the loop.
        dz = {
            net: [np.empty((T, B, W.shape[1]), dtype) for W in self.weights[net]]
            for net in NETWORKS
        }
        d_input = np.empty((T, B, I), dtype)
        dh, dc = np.array(g_h, dtype), np.array(g_c, dtype)
        for t in reversed(range(T)):
            f, s, g = (gates[net][t] for net in NETWORKS)
            dh = dh + g_out[t]
            d_top, dc = self._cell_backward(dh, dc, f, s, g, cells[t], cells[t + 1])
            d_in = np.zeros((B, inputs.shape[2]), dtype)
            for net in NETWORKS:
                da = d_top[net]
                for k in reversed(range(len(self.weights[net]))):
                    d = da * ACTIVATIONS[self.activations[k]][1](layers[net][t][k])
                    dz[net][k][t] = d
                    da = d @ self.weights[net][k].T
                d_in += da
            d_input[t] = d_in[:, :I]
            dh = d_in[:, I:]
            if not through_time:
                dh, dc = np.zeros_like(dh), np.zeros_like(dc)
        grads: dict = {"input": d_input, "h0": dh, "c0": dc}
        for net in NETWORKS:
            below = [inputs] + [
                np.stack([step[k] for step in layers[net]]) if T else None
                for k in range(len(self.weights[net]) - 1)
            ]
            grads[net] = [
                (a.reshape(T * B, -1).T @ d.reshape(T * B, -1)) if T else np.zeros_like(W)
                for a, d, W in zip(below, dz[net], self.weights[net])
            ]
        return grads


class _Built:
    """`nn.LSTM`'s layouts around a `NestedLSTM`; parameters under the adapter's names."""

    def __init__(
        self, config: LSTMConfig, lstm: NestedLSTM, initial_cell: float, dtype, to_names
    ) -> None:
        self.config, self.lstm, self.initial_cell = config, lstm, initial_cell
        self.dtype, self.to_names = dtype, to_names

    def _time_major(self, input, state):
        unbatched = input.ndim == 2
        x = (
            input[:, None]
            if unbatched
            else (input.swapaxes(0, 1) if self.config.batch_first else input)
        )
        if x.shape[0] == 0:  # as nn.LSTM answers an empty sequence
            raise ValueError("Expected sequence length to be larger than 0 in RNN")
        B, H = x.shape[1], self.config.hidden_size
        if state is None:
            h0, c0 = np.zeros((B, H), self.dtype), np.full((B, H), self.initial_cell, self.dtype)
        else:
            h0, c0 = ((s[0, None] if unbatched else s[0]) for s in state)
        return x, h0, c0, unbatched

    def _layout(self, seq, unbatched):
        if unbatched:
            return seq[:, 0]
        return seq.swapaxes(0, 1) if self.config.batch_first else seq

    def _states(self, h, c, unbatched):
        return (h, c) if unbatched else (h[None], c[None])  # (1, H) or (1, B, H)

    def forward(self, input, state):
        x, h0, c0, unbatched = self._time_major(input, state)
        out, h_n, c_n, _ = self.lstm.forward(x, h0, c0)
        return self._layout(out, unbatched), self._states(h_n, c_n, unbatched)

    def gradients(self, input, state, cotangents):
        x, h0, c0, unbatched = self._time_major(input, state)
        g_out, g_h, g_c = cotangents
        if unbatched:
            g_out = g_out[:, None]
        elif self.config.batch_first:
            g_out = g_out.swapaxes(0, 1)
        g_h, g_c = (g[0, None] if unbatched else g[0] for g in (g_h, g_c))
        out, h_n, c_n, cache = self.lstm.forward(x, h0, c0)
        grads = self.lstm.backward(cache, g_out, g_h, g_c)
        result = {"input": self._layout(grads["input"], unbatched)}
        if state is not None:
            result["h0"], result["c0"] = self._states(grads["h0"], grads["c0"], unbatched)
        result.update(self.to_names({net: grads[net] for net in NETWORKS}))
        return result


def open_input_gate(config: LSTMConfig, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """nn.LSTM's parameters with its input gate held open, exactly, and no other bias."""
    if not config.bias:
        return params  # no bias to open the gate with: the reducing build declines the case
    out = dict(params)
    h = config.hidden_size
    for name in ("weight_ih_l0", "weight_hh_l0"):
        w = out[name].copy()
        w[:h] = 0
        out[name] = w
    out["bias_ih_l0"] = np.zeros_like(out["bias_ih_l0"])
    out["bias_ih_l0"][:h] = SATURATING_BIAS
    out["bias_hh_l0"] = np.zeros_like(out["bias_hh_l0"])
    return out


_SUPPORTS = Supports(
    gradients="manual",
    multi_layer=False,
    bidirectional=False,
    projection=False,
    # It has no biases at all; the reference needs its own to hold the input
    # gate open, so only bias=True configs are drawn (and the biases are lacked).
    no_bias=False,
)


def _decline(config: LSTMConfig) -> None:
    if config.num_layers > 1 or config.bidirectional or config.proj_size:
        raise NotImplementedError(
            "the nested-network LSTM is one layer, one direction, no projection"
        )


class NestedLinearAdapter(Adapter):
    """The reducing configuration: one linear layer per gate network on nn.LSTM's own weights.

    Gate network weights are nn.LSTM's rows, transposed to the article's ``a @ W`` layout:
    forget = [W_if | W_hf]^T, select = [W_io | W_ho]^T (the output gate), candidate =
    [W_ig | W_hg]^T; the input-gate rows are unused (their gradient is zero). No biases, and
    the cell state starts at zeros as nn.LSTM's does.
    """

    name = "numpy-nested-linear"
    description = (
        "seed 000's nested-network LSTM reduced to one linear layer per gate "
        "network, on nn.LSTM's weights"
    )
    supports = _SUPPORTS
    variant = Variant(
        description="no input gate and no biases: nn.LSTM's f, g, o rows of weight_ih_l0 and "
        "weight_hh_l0",
        reducing_setting=f"nn.LSTM's input-gate weights zero, input-gate bias "
        f"{SATURATING_BIAS:g} (sigmoid exactly 1), other biases zero",
        extra_parameters=lambda config: {},
        reduce=open_input_gate,
        lacks=lambda config: frozenset(n for n in parameter_shapes(config) if n.startswith("bias")),
    )
    ROWS = {"forget": 1, "select": 3, "candidate": 2}  # gate row block in nn.LSTM's i, f, g, o
    lstm_class = NestedLSTM

    def build(self, config: LSTMConfig, params: Mapping[str, np.ndarray], dtype: str):
        _decline(config)
        if not config.bias:
            raise NotImplementedError(
                "the reduction to nn.LSTM needs nn.LSTM's biases "
                "(bias=True) to hold its input gate open"
            )
        h, i = config.hidden_size, config.input_size
        w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
        weights = {
            net: [np.concatenate([w_ih[k * h : (k + 1) * h], w_hh[k * h : (k + 1) * h]], axis=1).T]
            for net, k in self.ROWS.items()
        }
        np_dtype = np.dtype(dtype)

        def to_names(grads):
            g_ih, g_hh = np.zeros((4 * h, i), np_dtype), np.zeros((4 * h, h), np_dtype)
            for net, k in self.ROWS.items():
                (dw,) = grads[net]
                g_ih[k * h : (k + 1) * h] = dw[:i].T
                g_hh[k * h : (k + 1) * h] = dw[i:].T
            return {"weight_ih_l0": g_ih, "weight_hh_l0": g_hh}

        lstm = self.lstm_class(weights, (None,), i, h)
        return _Built(config, lstm, 0.0, np_dtype, to_names)


class NestedAdapter(Adapter):
    """The article's nested-network LSTM (its network by default); a variant of nn.LSTM.

    Subclass (or pass keywords) to change the gate networks: `widths` of the hidden layers,
    `activations` one per layer (names in `ACTIVATIONS`, None for linear), `initial_cell` the
    cell state when none is given.
    """

    name = "numpy-nested"
    description = (
        "seed 000's nested-network LSTM: forget, select and candidate networks "
        "(3 sigmoid layers each), no input gate, no biases, c0 = 1; hand-written BPTT"
    )
    supports = _SUPPORTS
    widths: tuple[int, ...] = ARTICLE_WIDTHS
    activations: tuple[str | None, ...] = ARTICLE_ACTIVATIONS
    initial_cell: float = 1.0
    lstm_class = NestedLSTM
    reducing_class = NestedLinearAdapter

    def __init__(self, *, widths=None, activations=None, initial_cell=None) -> None:
        if widths is not None:
            self.widths = tuple(widths)
        if activations is not None:
            self.activations = tuple(activations)
        if initial_cell is not None:
            self.initial_cell = float(initial_cell)
        if len(self.activations) != len(self.widths) + 1:
            raise ValueError(
                f"activations={self.activations!r}: one per layer "
                f"({len(self.widths) + 1} layers for widths={self.widths!r})"
            )
        unknown = [a for a in self.activations if a not in ACTIVATIONS]
        if unknown:
            raise ValueError(
                f"activations={unknown!r}: must be among {', '.join(map(str, ACTIVATIONS))}"
            )
        widths = self.widths
        self.variant = Variant(
            description="no input gate, no biases; gate networks forget/select/candidate, "
            f"hidden widths {list(widths)}, activations {list(self.activations)}; "
            f"c0 = {self.initial_cell:g} by default",
            reducing_setting="each gate network one linear layer with no activation, c0 = 0 "
            "by default (NestedLinearAdapter), against nn.LSTM with its input "
            f"gate open (weights zero, bias {SATURATING_BIAS:g}) and no other "
            "bias",
            extra_parameters=lambda config: nested_parameters(config, widths),
            reduce=open_input_gate,
            lacks=lambda config: frozenset(parameter_shapes(config)),
            reducing_adapter=self.reducing_class(),
        )

    def build(self, config: LSTMConfig, params: Mapping[str, np.ndarray], dtype: str):
        _decline(config)
        depth = len(self.widths) + 1
        weights = {net: [params[f"{net}.{k}.weight"] for k in range(depth)] for net in NETWORKS}

        def to_names(grads):
            return {f"{net}.{k}.weight": dw for net in NETWORKS for k, dw in enumerate(grads[net])}

        lstm = self.lstm_class(weights, self.activations, config.input_size, config.hidden_size)
        return _Built(config, lstm, self.initial_cell, np.dtype(dtype), to_names)
