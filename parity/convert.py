"""Weight converters between `torch.nn.LSTM`'s layout and Flax's, Equinox's, Keras's, ONNX's and
Haiku's.

Usable without the harness (``from parity.convert import to_keras``) to port trained weights,
and imported by no framework: the functions take and return plain arrays. ``to_*`` uses only
array operators and methods (``.T``, slicing, ``+``), so it also works on JAX arrays and torch
tensors, and a framework can differentiate through it (the adapters in ``implementations/``
do: their gradients come back under the canonical names through the conversion itself);
``to_onnx`` and every ``from_*`` use NumPy.

**Canonical** (PyTorch's), per layer ``k`` and direction (suffix ``_reverse`` for the second)::

    weight_ih_l{k}  (4H, I_k)   gate row blocks i, f, g, o; the cell computes W x
    weight_hh_l{k}  (4H, H_out)
    bias_ih_l{k}    (4H,)       two biases, added together
    bias_hh_l{k}    (4H,)
    weight_hr_l{k}  (P, H)      projection (proj_size = P > 0)

``I_k`` is input_size for layer 0 and ``D * H_out`` after it (D = 2 when bidirectional),
``H_out`` is proj_size when projecting, else hidden_size. The reverse direction reads the
sequence from its last step to its first and writes each output at its own step.

Where the other layout has one bias, ``to_*`` folds ``bias_ih + bias_hh`` into it, and
``from_*`` cannot split them back: it returns ``bias_ih`` = the folded bias, ``bias_hh`` = 0,
which computes the same function. So ``to_x(from_x(w)) == w`` exactly, and
``from_x(to_x(p))`` equals ``p`` with the biases folded (`fold_biases`). Flax, Equinox, Keras
and ONNX's LSTMs have no projection: their converters raise ValueError for proj_size > 0.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .adapter import LSTMConfig, parameter_shapes

__all__ = [
    "HAIKU_FORGET_BIAS",
    "HAIKU_GATES",
    "ONNX_GATES",
    "fold_biases",
    "from_equinox",
    "from_flax",
    "from_haiku",
    "from_keras",
    "from_onnx",
    "to_equinox",
    "to_flax",
    "to_haiku",
    "to_keras",
    "to_onnx",
]

ONNX_GATES = ("i", "o", "f", "g")  # ONNX's iofc, its "c" being nn.LSTM's g
_TORCH_TO_ONNX = (0, 3, 1, 2)  # ONNX block k is canonical block _TORCH_TO_ONNX[k]
_FLAX_GATES = ("i", "f", "g", "o")  # Flax names its kernels ii, if, ig, io and hi, hf, hg, ho


def _names(layer: int, direction: int) -> dict[str, str]:
    sfx = f"_l{layer}{'_reverse' if direction else ''}"
    return {
        kind: kind + sfx for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    }


def _check(canonical: Mapping, config: LSTMConfig, framework: str) -> None:
    if config.proj_size:
        raise ValueError(f"proj_size={config.proj_size}: {framework}'s LSTM has no projection")
    want = parameter_shapes(config)
    missing = [n for n in want if n not in canonical]
    if missing:
        raise ValueError(f"missing canonical parameters for {config}: {', '.join(missing)}")
    for name, shape in want.items():
        if tuple(canonical[name].shape) != shape:
            raise ValueError(
                f"{name} has shape {tuple(canonical[name].shape)}; {config} needs {shape}"
            )


def _blocks(a, hidden: int) -> list:
    """The four gate blocks of a canonical weight or bias (rows), by slicing only."""
    return [a[k * hidden : (k + 1) * hidden] for k in range(4)]


def _folded(canonical: Mapping, names: dict, config: LSTMConfig):
    if not config.bias:
        return None
    return canonical[names["bias_ih"]] + canonical[names["bias_hh"]]


def fold_biases(canonical: Mapping, config: LSTMConfig) -> dict[str, np.ndarray]:
    """`canonical` with each ``bias_ih`` replaced by ``bias_ih + bias_hh`` and ``bias_hh`` by 0:
    the same function, in the form a one-bias layout round-trips to."""
    out = {n: np.asarray(a) for n, a in canonical.items()}
    if config.bias:
        for layer in range(config.num_layers):
            for direction in range(config.num_directions):
                n = _names(layer, direction)
                out[n["bias_ih"]] = out[n["bias_ih"]] + out[n["bias_hh"]]
                out[n["bias_hh"]] = np.zeros_like(out[n["bias_hh"]])
    return out


def _per_direction(config: LSTMConfig):
    for layer in range(config.num_layers):
        for direction in range(config.num_directions):
            yield layer, direction, _names(layer, direction)


# -- Flax ------------------------------------------------------------------------------------
def to_flax(canonical: Mapping, config: LSTMConfig) -> dict:
    """Canonical parameters -> the ``params`` of a stack of ``flax.linen`` LSTM layers.

    Flax's ``LSTMCell`` keeps one Dense per gate and per side, computing ``x @ kernel``: input
    kernels ``ii, if, ig, io`` of shape (I, H) without bias, hidden kernels ``hi, hf, hg, ho`` of
    shape (H, H) with a bias (H,). Layer ``k`` is ``{"cell": cell}`` (an ``nn.RNN``), or
    ``{"forward_rnn": {"cell": ...}, "backward_rnn": {"cell": ...}}`` (an ``nn.Bidirectional``),
    under the key ``f"layer_{k}"``::

        {"layer_0": {"cell": {"ii": {"kernel": W_ii^T}, ..., "hi": {"kernel": W_hi^T,
                                                                  "bias": b_ii + b_hi}, ...}}}

    A one-layer ``nn.RNN(nn.LSTMCell(H))`` takes ``{"params": to_flax(p, config)["layer_0"]}``.
    The hidden biases hold ``bias_ih + bias_hh`` (zeros when config.bias is False: Flax's cell
    always has them). The carry Flax passes is ``(c, h)``, not PyTorch's ``(h, c)``.
    """
    _check(canonical, config, "Flax")
    h = config.hidden_size
    out: dict = {}
    for layer, direction, names in _per_direction(config):
        w_ih = _blocks(canonical[names["weight_ih"]], h)
        w_hh = _blocks(canonical[names["weight_hh"]], h)
        bias = _folded(canonical, names, config)
        b = _blocks(bias, h) if bias is not None else [None] * 4
        cell = {}
        for k, gate in enumerate(_FLAX_GATES):
            cell["i" + gate] = {"kernel": w_ih[k].T}
            hidden = {"kernel": w_hh[k].T}
            hidden["bias"] = b[k] if b[k] is not None else 0 * w_hh[k][:, 0]
            cell["h" + gate] = hidden
        key = f"layer_{layer}"
        if config.bidirectional:
            out.setdefault(key, {})["backward_rnn" if direction else "forward_rnn"] = {"cell": cell}
        else:
            out[key] = {"cell": cell}
    return out


def from_flax(params: Mapping, config: LSTMConfig) -> dict[str, np.ndarray]:
    """The inverse of `to_flax`: canonical parameters (biases folded into ``bias_ih``)."""
    _no_projection(config, "Flax")
    out: dict[str, np.ndarray] = {}
    for layer, direction, names in _per_direction(config):
        node = params[f"layer_{layer}"]
        if config.bidirectional:
            node = node["backward_rnn" if direction else "forward_rnn"]
        cell = node["cell"]
        out[names["weight_ih"]] = np.concatenate(
            [np.asarray(cell["i" + g]["kernel"]).T for g in _FLAX_GATES]
        )
        out[names["weight_hh"]] = np.concatenate(
            [np.asarray(cell["h" + g]["kernel"]).T for g in _FLAX_GATES]
        )
        bias = np.concatenate([np.asarray(cell["h" + g]["bias"]) for g in _FLAX_GATES])
        _set_bias(out, names, bias, config, "Flax")
        _shape_check(out, names, config, "Flax")
    return out


# -- Equinox ---------------------------------------------------------------------------------
def to_equinox(canonical: Mapping, config: LSTMConfig) -> list[list[dict]]:
    """Canonical parameters -> the fields of one ``eqx.nn.LSTMCell`` per layer and direction.

    ``to_equinox(p, config)[layer][direction]`` is ``{"weight_ih": (4H, I), "weight_hh":
    (4H, H), "bias": (4H,) or None}``: Equinox's layout is PyTorch's (``W x``, gates i, f, g,
    o) with one bias, ``bias_ih + bias_hh`` (None when config.bias is False, ``use_bias=False``).
    Put them in with ``eqx.tree_at(lambda c: (c.weight_ih, c.weight_hh, c.bias), cell, ...)``.
    """
    _check(canonical, config, "Equinox")
    out: list[list[dict]] = [[] for _ in range(config.num_layers)]
    for layer, _direction, names in _per_direction(config):
        out[layer].append(
            {
                "weight_ih": canonical[names["weight_ih"]],
                "weight_hh": canonical[names["weight_hh"]],
                "bias": _folded(canonical, names, config),
            }
        )
    return out


def from_equinox(cells, config: LSTMConfig) -> dict[str, np.ndarray]:
    """The inverse of `to_equinox` (cells as dicts or ``eqx.nn.LSTMCell`` objects)."""
    _no_projection(config, "Equinox")
    out: dict[str, np.ndarray] = {}
    for layer, direction, names in _per_direction(config):
        cell = cells[layer][direction]
        # B023: the lambda is called in this iteration only, on this iteration's cell.
        get = cell.get if isinstance(cell, Mapping) else lambda k: getattr(cell, k)  # noqa: B023
        out[names["weight_ih"]] = np.asarray(get("weight_ih"))
        out[names["weight_hh"]] = np.asarray(get("weight_hh"))
        bias = get("bias")
        _set_bias(out, names, None if bias is None else np.asarray(bias), config, "Equinox")
        _shape_check(out, names, config, "Equinox")
    return out


# -- Keras -------------------------------------------------------------------------------------
def to_keras(canonical: Mapping, config: LSTMConfig, transpose=lambda a: a.T) -> list[list]:
    """Canonical parameters -> ``set_weights`` lists for a stack of ``keras.layers.LSTM``.

    ``to_keras(p, config)[layer]`` is ``[kernel, recurrent_kernel, bias]`` for an ``LSTM``
    layer, and the forward layer's three followed by the backward layer's for a
    ``Bidirectional(LSTM)`` (``Bidirectional.set_weights``' order). ``kernel`` is
    ``weight_ih`` transposed (I, 4H) and ``recurrent_kernel`` ``weight_hh`` transposed (H, 4H):
    Keras computes ``x @ kernel``, with the gate column blocks in the same order i, f, c, o
    (its c is nn.LSTM's g). ``bias`` (4H,) is ``bias_ih + bias_hh``; with config.bias False the
    layer is ``LSTM(use_bias=False)`` and the list has no bias. `transpose` transposes a matrix
    (``tf.transpose`` for TensorFlow tensors, which have no ``.T``).
    """
    _check(canonical, config, "Keras")
    out: list[list] = [[] for _ in range(config.num_layers)]
    for layer, _direction, names in _per_direction(config):
        out[layer] += [
            transpose(canonical[names["weight_ih"]]),
            transpose(canonical[names["weight_hh"]]),
        ]
        if config.bias:
            out[layer].append(_folded(canonical, names, config))
    return out


def from_keras(weights, config: LSTMConfig) -> dict[str, np.ndarray]:
    """The inverse of `to_keras`: ``[layer.get_weights() for layer in lstm_layers]``."""
    _no_projection(config, "Keras")
    per = 3 if config.bias else 2
    out: dict[str, np.ndarray] = {}
    for layer, direction, names in _per_direction(config):
        w = weights[layer]
        if len(w) != per * config.num_directions:
            raise ValueError(
                f"layer {layer}: {len(w)} Keras weights; {config} needs "
                f"{per * config.num_directions}"
            )
        own = w[direction * per : (direction + 1) * per]
        out[names["weight_ih"]] = np.asarray(own[0]).T
        out[names["weight_hh"]] = np.asarray(own[1]).T
        _set_bias(out, names, np.asarray(own[2]) if config.bias else None, config, "Keras")
        _shape_check(out, names, config, "Keras")
    return out


# -- ONNX ------------------------------------------------------------------------------------
def to_onnx(canonical: Mapping, config: LSTMConfig) -> list[dict[str, np.ndarray]]:
    """Canonical parameters -> the inputs ``W``, ``R``, ``B`` of one ONNX ``LSTM`` node per layer.

    ``W`` (D, 4H, I) and ``R`` (D, 4H, H) keep PyTorch's ``W x`` but order the gate row blocks
    i, o, f, c (ONNX's iofc; c is nn.LSTM's g); direction 0 is forward and 1 reverse
    (``direction="bidirectional"``). ``B`` (D, 8H) is ``[bias_ih, bias_hh]`` reordered the same
    way: ONNX keeps both biases, so this conversion is exact both ways. No ``B`` when
    config.bias is False (ONNX then uses zeros). The node's output ``Y`` is (T, D, B, H): the
    next layer's input is ``Y`` transposed to (T, B, D, H) and reshaped to (T, B, D*H).
    """
    _check(canonical, config, "ONNX")
    h = config.hidden_size
    out: list[dict[str, np.ndarray]] = []
    for layer in range(config.num_layers):
        w, r, b = [], [], []
        for direction in range(config.num_directions):
            names = _names(layer, direction)
            w.append(_onnx_order(canonical[names["weight_ih"]], h))
            r.append(_onnx_order(canonical[names["weight_hh"]], h))
            if config.bias:
                b.append(
                    np.concatenate(
                        [
                            _onnx_order(canonical[names["bias_ih"]], h),
                            _onnx_order(canonical[names["bias_hh"]], h),
                        ]
                    )
                )
        node = {"W": np.stack(w), "R": np.stack(r)}
        if config.bias:
            node["B"] = np.stack(b)
        out.append(node)
    return out


def from_onnx(nodes, config: LSTMConfig) -> dict[str, np.ndarray]:
    """The inverse of `to_onnx` (exact: ONNX keeps both biases)."""
    _no_projection(config, "ONNX")
    h = config.hidden_size
    out: dict[str, np.ndarray] = {}
    for layer, direction, names in _per_direction(config):
        node = nodes[layer]
        out[names["weight_ih"]] = _torch_order(np.asarray(node["W"])[direction], h)
        out[names["weight_hh"]] = _torch_order(np.asarray(node["R"])[direction], h)
        if config.bias:
            b = np.asarray(node["B"])[direction]
            out[names["bias_ih"]] = _torch_order(b[: 4 * h], h)
            out[names["bias_hh"]] = _torch_order(b[4 * h :], h)
        elif node.get("B") is not None and np.any(node["B"]):
            raise ValueError(f"layer {layer}: config.bias is False but the ONNX B is not zero")
        _shape_check(out, names, config, "ONNX")
    return out


def _onnx_order(a, hidden: int) -> np.ndarray:
    blocks = _blocks(np.asarray(a), hidden)
    return np.concatenate([blocks[k] for k in _TORCH_TO_ONNX])


def _torch_order(a: np.ndarray, hidden: int) -> np.ndarray:
    blocks = _blocks(a, hidden)
    return np.concatenate([blocks[_TORCH_TO_ONNX.index(k)] for k in range(4)])


# -- Haiku -------------------------------------------------------------------------------------
HAIKU_GATES = ("i", "g", "f", "o")  # hk.LSTM splits its Linear's output as i, g, f, o
_TORCH_TO_HAIKU = (0, 2, 1, 3)  # Haiku block k is canonical block _TORCH_TO_HAIKU[k]
# hk.LSTM computes sigmoid(f + 1) in every call (its docstring calls it an initialization);
# nn.LSTM adds nothing. The converters move it into the bias.
HAIKU_FORGET_BIAS = 1.0


def _haiku_module(layer: int, direction: int) -> str:
    return f"lstm_l{layer}{'_reverse' if direction else ''}/linear"


def to_haiku(canonical: Mapping, config: LSTMConfig, concatenate=np.concatenate) -> dict:
    """Canonical parameters -> the ``params`` of one ``hk.LSTM`` per layer and direction.

    ``hk.LSTM`` runs one ``hk.Linear`` on ``[x, h]``: ``w`` (I + H, 4H) is ``weight_ih`` and
    ``weight_hh`` transposed and stacked, ``x @ w``, with the gate column blocks in Haiku's order
    i, g, f, o; ``b`` (4H,) is ``bias_ih + bias_hh`` in that order, less HAIKU_FORGET_BIAS on
    the f block (hk.LSTM adds it back in every call; zeros but that when config.bias is False:
    hk.LSTM always has a bias). The modules are named ``lstm_l{k}`` and ``lstm_l{k}_reverse``
    (``hk.LSTM(H, name=...)``), so the keys are ``"lstm_l0/linear"``, ...::

        {"lstm_l0/linear": {"w": [[W_ii^T W_ig^T W_if^T W_io^T], [W_hi^T ... W_ho^T]],
                            "b": [b_i, b_g, b_f - 1, b_o]}}

    `concatenate` joins arrays (``jnp.concatenate`` to trace the conversion in JAX).
    """
    _check(canonical, config, "Haiku")
    h = config.hidden_size
    out: dict = {}
    for layer, direction, names in _per_direction(config):
        w_ih = _blocks(canonical[names["weight_ih"]], h)
        w_hh = _blocks(canonical[names["weight_hh"]], h)
        bias = _folded(canonical, names, config)
        b = _blocks(bias, h) if bias is not None else [0 * w_hh[k][:, 0] for k in range(4)]
        order = _TORCH_TO_HAIKU
        w = concatenate(
            [concatenate([w_ih[k] for k in order]).T, concatenate([w_hh[k] for k in order]).T]
        )
        b = concatenate([b[k] - HAIKU_FORGET_BIAS if k == 1 else b[k] for k in order])
        out[_haiku_module(layer, direction)] = {"w": w, "b": b}
    return out


def from_haiku(params: Mapping, config: LSTMConfig) -> dict[str, np.ndarray]:
    """The inverse of `to_haiku` (biases folded into ``bias_ih``, HAIKU_FORGET_BIAS added back
    to the forget gate's)."""
    _no_projection(config, "Haiku")
    h = config.hidden_size
    out: dict[str, np.ndarray] = {}
    for layer, direction, names in _per_direction(config):
        node = params[_haiku_module(layer, direction)]
        w, b = np.asarray(node["w"]), np.asarray(node["b"])
        width = config.layer_input_size(layer)
        if w.shape != (width + h, 4 * h) or b.shape != (4 * h,):
            raise ValueError(
                f"{_haiku_module(layer, direction)}: w {w.shape}, b {b.shape}; "
                f"{config} needs w {(width + h, 4 * h)}, b {(4 * h,)}"
            )
        cols = _blocks(w.T, h)  # Haiku's blocks, as rows
        torch_rows = [cols[_TORCH_TO_HAIKU.index(k)] for k in range(4)]
        out[names["weight_ih"]] = np.concatenate([r[:, :width] for r in torch_rows])
        out[names["weight_hh"]] = np.concatenate([r[:, width:] for r in torch_rows])
        hb = _blocks(b, h)
        bias = np.concatenate([hb[_TORCH_TO_HAIKU.index(k)] for k in range(4)])
        bias[h : 2 * h] += HAIKU_FORGET_BIAS
        _set_bias(out, names, bias, config, "Haiku")
        _shape_check(out, names, config, "Haiku")
    return out


# -- shared --------------------------------------------------------------------------------------
def _no_projection(config: LSTMConfig, framework: str) -> None:
    if config.proj_size:
        raise ValueError(f"proj_size={config.proj_size}: {framework}'s LSTM has no projection")


def _set_bias(out: dict, names: dict, bias, config: LSTMConfig, framework: str) -> None:
    if config.bias:
        if bias is None:
            raise ValueError(
                f"{names['bias_ih']}: config.bias is True but the {framework} weights have no bias"
            )
        out[names["bias_ih"]] = bias
        out[names["bias_hh"]] = np.zeros_like(bias)
    elif bias is not None and np.any(bias):
        raise ValueError(
            f"{names['weight_ih']}: config.bias is False but the {framework} bias is not zero"
        )


def _shape_check(out: dict, names: dict, config: LSTMConfig, framework: str) -> None:
    want = parameter_shapes(config)
    for name in (names["weight_ih"], names["weight_hh"], names["bias_ih"]):
        if name in want and tuple(out[name].shape) != want[name]:
            raise ValueError(
                f"{name}: the {framework} weights give shape "
                f"{tuple(out[name].shape)}; {config} needs {want[name]}"
            )
