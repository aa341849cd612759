"""nn.LSTM's equations in float64 with one known mistake built in, for the diagnosis.

`parity.diagnose` names a likely cause only when the reference, rerun with that very mistake,
gives what the implementation gave. Mistakes in the data around `nn.LSTM` (gate blocks in
another order, a bias dropped, the initial state routed elsewhere) are reruns of `nn.LSTM`
itself; mistakes inside the cell (h = o * c, clamped pre-activations, a tanh after the
projection) need the equations written out, here, with a hook for each.

`trace` also returns every step's h and c per layer and direction: the evidence that a final
state is some other step's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch

from .adapter import LSTMConfig
from .process_state import harness_settings

__all__ = ["CellMistake", "detached_recurrence_gradients", "run_mistaken_lstm", "trace"]

FORWARD_NAMES = ("output", "h_n", "c_n")


@dataclass(frozen=True)
class CellMistake:
    """One change to nn.LSTM's cell; the defaults are nn.LSTM's own equations."""

    # Clamp every gate pre-activation (all four blocks) to [-clamp, clamp].
    clamp_preactivations: float | None = None
    # Clamp sigmoid's argument only (gates i, f, o) to [-clamp, clamp].
    clamp_sigmoid: float | None = None
    # h = o * c instead of o * tanh(c).
    no_cell_tanh: bool = False
    # tanh applied after the projection (h = tanh(W_hr h)).
    tanh_after_projection: bool = False
    # The cell state clamped to [-clamp, clamp] after every update.
    clamp_cell: float | None = None
    # h = tanh(c): the output gate left out.
    no_output_gate: bool = False


def run_mistaken_lstm(
    config: LSTMConfig,
    params: Mapping[str, np.ndarray],
    input: np.ndarray,
    state,
    mistake: CellMistake,
) -> dict[str, np.ndarray]:
    """The forward of nn.LSTM with `mistake` (float64 NumPy, laid out as nn.LSTM's)."""
    forward, _ = _run(config, params, input, state, mistake)
    return forward


def trace(
    config: LSTMConfig, params: Mapping[str, np.ndarray], input: np.ndarray, state
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """(layer, direction) -> (h, c) after every step, each (steps, batch, size), in the
    order the direction processes the steps (the last is the final state); batch 1 for
    unbatched input."""
    _, states = _run(config, params, input, state, CellMistake())
    return states


def _run(config, params, input, state, mistake: CellMistake):
    p = {n: torch.as_tensor(np.asarray(a, np.float64)) for n, a in params.items()}
    x = torch.as_tensor(np.asarray(input, np.float64))
    batched = x.dim() == 3
    if not batched:
        x = x.unsqueeze(1)
    elif config.batch_first:
        x = x.transpose(0, 1)
    steps, batch = x.shape[0], x.shape[1]
    dirs = 2 if config.bidirectional else 1
    out_size = config.proj_size or config.hidden_size
    if state is not None:
        h0, c0 = (torch.as_tensor(np.asarray(s, np.float64)) for s in state)
        if not batched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
    else:
        h0 = x.new_zeros(config.num_layers * dirs, batch, out_size)
        c0 = x.new_zeros(config.num_layers * dirs, batch, config.hidden_size)
    sigmoid: Callable = torch.sigmoid
    if mistake.clamp_sigmoid is not None:
        k = mistake.clamp_sigmoid

        def sigmoid(z):
            return torch.sigmoid(z.clamp(-k, k))

    layer_input, h_n, c_n, states = x, [], [], {}
    with torch.no_grad():
        for layer in range(config.num_layers):
            outputs = []
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                w_ih, w_hh = p[f"weight_ih{sfx}"], p[f"weight_hh{sfx}"]
                bias = p[f"bias_ih{sfx}"] + p[f"bias_hh{sfx}"] if config.bias else None
                w_hr = p.get(f"weight_hr{sfx}") if config.proj_size else None
                h, c = h0[layer * dirs + d], c0[layer * dirs + d]
                out: list = [None] * steps
                hs, cs = [], []
                for t in range(steps - 1, -1, -1) if d else range(steps):
                    z = layer_input[t] @ w_ih.T + h @ w_hh.T
                    if bias is not None:
                        z = z + bias
                    if mistake.clamp_preactivations is not None:
                        z = z.clamp(-mistake.clamp_preactivations, mistake.clamp_preactivations)
                    i, f, g, o = z.chunk(4, -1)
                    c = sigmoid(f) * c + sigmoid(i) * torch.tanh(g)
                    if mistake.clamp_cell is not None:
                        c = c.clamp(-mistake.clamp_cell, mistake.clamp_cell)
                    h = c if mistake.no_cell_tanh else torch.tanh(c)
                    if not mistake.no_output_gate:
                        h = sigmoid(o) * h
                    if w_hr is not None:
                        h = h @ w_hr.T
                        if mistake.tanh_after_projection:
                            h = torch.tanh(h)
                    out[t] = h
                    hs.append(h)
                    cs.append(c)
                states[(layer, d)] = (
                    torch.stack(hs).numpy() if hs else np.zeros((0, batch, out_size)),
                    torch.stack(cs).numpy() if cs else np.zeros((0, batch, config.hidden_size)),
                )
                outputs.append(torch.stack(out) if steps else x.new_zeros(0, batch, out_size))
                h_n.append(h)
                c_n.append(c)
            layer_input = torch.cat(outputs, -1)
    output, hn, cn = layer_input, torch.stack(h_n), torch.stack(c_n)
    if not batched:
        output, hn, cn = output.squeeze(1), hn.squeeze(1), cn.squeeze(1)
    elif config.batch_first:
        output = output.transpose(0, 1)
    return {n: t.numpy() for n, t in zip(FORWARD_NAMES, (output, hn, cn))}, states


@harness_settings()  # autograd on, whatever the implementation left set
def detached_recurrence_gradients(
    config: LSTMConfig,
    params: Mapping[str, np.ndarray],
    input: np.ndarray,
    state,
    cotangents,
    *,
    detach_h: bool,
    detach_c: bool,
) -> dict[str, np.ndarray]:
    """nn.LSTM's gradients (float64, autograd) of ``sum(g_out * output) + sum(g_h * h_n) +
    sum(g_c * c_n)`` with back-propagation through time cut after every step: the h and/or c
    each step hands to the next is detached (``h = h.detach()`` in the time loop, or a
    hand-written backward that never carries dh_next / dc_next back). The forward is
    unchanged; gradient names are the canonical ones, "input", "h0" and "c0"."""
    leaves = {
        n: torch.tensor(np.asarray(a, np.float64), requires_grad=True) for n, a in params.items()
    }
    x_leaf = torch.tensor(np.asarray(input, np.float64), requires_grad=True)
    batched = x_leaf.dim() == 3
    x = x_leaf if batched else x_leaf.unsqueeze(1)
    if batched and config.batch_first:
        x = x.transpose(0, 1)
    steps, batch = x.shape[0], x.shape[1]
    dirs = 2 if config.bidirectional else 1
    out_size = config.proj_size or config.hidden_size
    h0_leaf: torch.Tensor | None
    c0_leaf: torch.Tensor | None
    if state is not None:
        h0_leaf, c0_leaf = (
            torch.tensor(np.asarray(s, np.float64), requires_grad=True) for s in state
        )
        h0, c0 = (h0_leaf, c0_leaf) if batched else (h0_leaf.unsqueeze(1), c0_leaf.unsqueeze(1))
    else:
        h0_leaf = c0_leaf = None
        h0 = x.new_zeros(config.num_layers * dirs, batch, out_size)
        c0 = x.new_zeros(config.num_layers * dirs, batch, config.hidden_size)
    layer_input, h_n, c_n = x, [], []
    for layer in range(config.num_layers):
        outputs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = leaves[f"weight_ih{sfx}"], leaves[f"weight_hh{sfx}"]
            bias = leaves[f"bias_ih{sfx}"] + leaves[f"bias_hh{sfx}"] if config.bias else None
            w_hr = leaves.get(f"weight_hr{sfx}") if config.proj_size else None
            h, c = h0[layer * dirs + d], c0[layer * dirs + d]
            out: list = [None] * steps
            order = list(range(steps - 1, -1, -1) if d else range(steps))
            for k, t in enumerate(order):
                z = layer_input[t] @ w_ih.T + h @ w_hh.T
                if bias is not None:
                    z = z + bias
                i, f, g, o = z.chunk(4, -1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                if w_hr is not None:
                    h = h @ w_hr.T
                out[t] = h
                if k < steps - 1:  # what the next step receives
                    h = h.detach() if detach_h else h
                    c = c.detach() if detach_c else c
            outputs.append(torch.stack(out))
            h_n.append(h)
            c_n.append(c)
        layer_input = torch.cat(outputs, -1)
    output, hn, cn = layer_input, torch.stack(h_n), torch.stack(c_n)
    if not batched:
        output, hn, cn = output.squeeze(1), hn.squeeze(1), cn.squeeze(1)
    elif config.batch_first:
        output = output.transpose(0, 1)
    loss = sum(
        (torch.as_tensor(np.asarray(g, np.float64)) * t).sum()
        for g, t in zip(cotangents, (output, hn, cn))
    )
    named = {
        "input": x_leaf,
        **({} if h0_leaf is None else {"h0": h0_leaf, "c0": c0_leaf}),
        **leaves,
    }
    # loss: a tensor (three cotangents); named: h0 and c0 only where they are leaves
    grads = torch.autograd.grad(loss, list(named.values()), allow_unused=True)  # type: ignore[arg-type]
    return {
        n: (np.zeros(tuple(t.shape)) if g is None else g.numpy())
        for (n, t), g in zip(named.items(), grads)
    }
