"""An LSTM written in JAX: `jax.lax.scan` over time, jitted, gradients from `jax.vjp`.

It holds the canonical parameters as they are (nn.LSTM's layout is as natural in JAX as in
torch: ``x @ W.T``), so it needs no converter, and it has every feature nn.LSTM has:
layers, directions, projection, no bias, batch_first, unbatched input, float32 and float64.
The input projection of all steps is one matrix product before the scan; the scan carries
(h, c) and does the recurrent product per step.
"""

from __future__ import annotations

from parity import LSTMConfig, Layout, Supports

from ._jax import JaxFamilyAdapter
from ._layout import names

__all__ = ["JaxAdapter", "jax_lstm"]


def jax_lstm(config: LSTMConfig, params, x, h0, c0, lengths=None):
    """nn.LSTM's forward in jax ops: x (T, B, I), h0/c0 (L*D, B, ·), canonical `params`.
    `lengths` (B,): a padded batch, masked: a step past a row's length leaves its state as it
    is and outputs zero, so the reverse direction starts at each row's own last step."""
    import jax
    import jax.numpy as jnp

    steps, batch = x.shape[0], x.shape[1]
    if lengths is None:
        valid = jnp.ones((steps, batch), bool)
    else:
        valid = jnp.arange(steps)[:, None] < jnp.asarray(lengths)[None, :]
    h_n, c_n = [], []
    layer_input = x
    for layer in range(config.num_layers):
        outputs = []
        for direction in range(config.num_directions):
            n, k = names(layer, direction), layer * config.num_directions + direction
            w_hh = params[n["weight_hh"]]
            w_hr = params[n["weight_hr"]] if config.proj_size else None
            seq = layer_input[::-1] if direction else layer_input
            mask = valid[::-1] if direction else valid
            xw = seq @ params[n["weight_ih"]].T
            if config.bias:
                xw = xw + (params[n["bias_ih"]] + params[n["bias_hh"]])

            def step(carry, inputs, w_hh=w_hh, w_hr=w_hr):
                h, c = carry
                xw_t, m = inputs
                i, f, g, o = jnp.split(xw_t + h @ w_hh.T, 4, axis=-1)
                c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
                h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
                if w_hr is not None:
                    h_new = h_new @ w_hr.T
                if lengths is None:
                    return (h_new, c_new), h_new
                m = m[:, None]
                return (
                    (jnp.where(m, h_new, h), jnp.where(m, c_new, c)),
                    jnp.where(m, h_new, jnp.zeros_like(h_new)),
                )

            (h, c), ys = jax.lax.scan(step, (h0[k], c0[k]), (xw, mask))
            outputs.append(ys[::-1] if direction else ys)
            h_n.append(h)
            c_n.append(c)
        layer_input = jnp.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
    return layer_input, jnp.stack(h_n), jnp.stack(c_n)


class JaxAdapter(JaxFamilyAdapter):
    name = "jax"
    description = "an LSTM in JAX: lax.scan over time, jitted, gradients from jax.vjp"
    layout = Layout()  # nn.LSTM's names and shapes, as they are
    supports = Supports(gradients="autograd", lengths=True)

    def run(self, config, dtype, params, x, h0, c0, lengths=None):
        return jax_lstm(config, params, x, h0, c0, lengths)
