"""`nn.LSTM`'s computation in float64 with rounding-sized noise added to every gate value.

One of the samples behind the tolerances (see `parity.reference.run_reference`). Perturbing the
inputs models a correct implementation whose errors are relative to each value; it cannot model
one whose gate values are off by an ulp *absolute*: sigmoid computed as (1 + tanh(x/2)) / 2, or
through a lookup table, returns 0 or 1 where the exact value is 1e-9 from it, and on a long
saturated sequence that difference grows like any other. This run adds such errors directly.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from .adapter import LSTMConfig

FORWARD_NAMES = ("output", "h_n", "c_n")

__all__ = ["run_gate_noise_lstm"]


def run_gate_noise_lstm(
    config: LSTMConfig,
    params: Mapping[str, np.ndarray],
    input: np.ndarray,
    state,
    cotangents,
    noise: float,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Run nn.LSTM's equations in float64, adding uniform noise of `noise` (absolute) to every
    gate value and to tanh(c). Returns the forward results and, when `cotangents` are given,
    the gradients (as `parity.reference.run_torch_lstm` does)."""
    want_grad = cotangents is not None
    leaves = {"input": torch.tensor(input, dtype=torch.float64, requires_grad=want_grad)}
    if state is not None:
        leaves["h0"], leaves["c0"] = (
            torch.tensor(s, dtype=torch.float64, requires_grad=want_grad) for s in state
        )
    named = {
        n: torch.tensor(a, dtype=torch.float64, requires_grad=want_grad) for n, a in params.items()
    }

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.from_numpy(noise * rng.uniform(-1.0, 1.0, size=shape))

    with torch.set_grad_enabled(want_grad):
        output, h_n, c_n = _forward(config, named, leaves, draw)
    forward = {n: t.detach().numpy() for n, t in zip(FORWARD_NAMES, (output, h_n, c_n))}
    if not want_grad:
        return forward, None
    loss = sum(
        (torch.as_tensor(np.asarray(g, np.float64)) * t).sum()
        for g, t in zip(cotangents, (output, h_n, c_n))
    )
    inputs = {**leaves, **named}
    grads = torch.autograd.grad(loss, list(inputs.values()), allow_unused=True)
    return forward, {
        n: np.zeros(tuple(leaf.shape)) if g is None else g.numpy()
        for (n, leaf), g in zip(inputs.items(), grads)
    }


def _forward(config: LSTMConfig, p, leaves, draw):
    x = leaves["input"]
    batched = x.dim() == 3
    if not batched:
        x = x.unsqueeze(1)
    elif config.batch_first:
        x = x.transpose(0, 1)
    steps, batch = x.shape[0], x.shape[1]
    dirs = 2 if config.bidirectional else 1
    out_size = config.proj_size or config.hidden_size
    if "h0" in leaves:
        h0, c0 = leaves["h0"], leaves["c0"]
        if not batched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
    else:
        h0 = x.new_zeros(config.num_layers * dirs, batch, out_size)
        c0 = x.new_zeros(config.num_layers * dirs, batch, config.hidden_size)
    layer_input, h_layers, c_layers = x, [], []
    for layer in range(config.num_layers):
        outputs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = p[f"weight_ih{sfx}"], p[f"weight_hh{sfx}"]
            bias = p[f"bias_ih{sfx}"] + p[f"bias_hh{sfx}"] if config.bias else None
            w_hr = p.get(f"weight_hr{sfx}") if config.proj_size else None
            h, c = h0[layer * dirs + d], c0[layer * dirs + d]
            noise = draw((steps, 5, batch, config.hidden_size))  # i, f, o, g, tanh(c)
            out: list = [None] * steps
            for t in range(steps - 1, -1, -1) if d else range(steps):
                z = layer_input[t] @ w_ih.T + h @ w_hh.T
                if bias is not None:
                    z = z + bias
                i, f, g, o = z.chunk(4, -1)
                n = noise[t]
                i, f, o = torch.sigmoid(i) + n[0], torch.sigmoid(f) + n[1], torch.sigmoid(o) + n[2]
                c = f * c + i * (torch.tanh(g) + n[3])
                h = o * (torch.tanh(c) + n[4])
                if w_hr is not None:
                    h = h @ w_hr.T
                out[t] = h
            outputs.append(torch.stack(out))
            h_layers.append(h)
            c_layers.append(c)
        layer_input = torch.cat(outputs, -1)
    output, h_n, c_n = layer_input, torch.stack(h_layers), torch.stack(c_layers)
    if not batched:
        return output.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
    if config.batch_first:
        output = output.transpose(0, 1)
    return output, h_n, c_n
