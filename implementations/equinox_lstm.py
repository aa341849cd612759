"""Equinox: `eqx.nn.LSTMCell` (one bias, unbatched), `jax.vmap` over the batch, a scan over time.

Equinox's cell has nn.LSTM's layout (``W x``, gates i, f, g, o) with one bias; the canonical
parameters go in through `parity.convert.to_equinox` (``bias_ih + bias_hh``) and `eqx.tree_at`,
traced by JAX, so gradients reach the canonical names through the conversion. Layers and
directions are stacked here; the reverse direction scans the flipped sequence and flips its
outputs back. No projection (the cell has none): proj_size > 0 is unsupported.

No lengths (`Supports(lengths=False)`, shown as ``-`` by ``parity list`` and ``parity table``):
Equinox has a cell (``LSTMCell.__call__(input, hidden)``) and no sequence driver that takes
lengths or a mask. The scan over time is this adapter's, so a mask would be the adapter's own
code, checked as if it were Equinox's: the ``padded`` and ``padding-invariance`` checks are
unsupported here (docs/variable-lengths.md).
"""

from __future__ import annotations

from parity import LSTMConfig, Layout, Supports
from parity.convert import to_equinox

from ._jax import JAX_REQUIRES, JaxFamilyAdapter

__all__ = ["EquinoxAdapter"]


class EquinoxAdapter(JaxFamilyAdapter):
    name = "equinox"
    description = "eqx.nn.LSTMCell, vmapped over the batch and scanned over time"
    layout = Layout(biases=1, weights="W x: weight_ih (4H, I), weight_hh (4H, H), one bias (4H)")
    supports = Supports(projection=False, gradients="autograd")
    requires = JAX_REQUIRES + ("equinox",)

    def check_config(self, config: LSTMConfig) -> None:
        if config.proj_size:
            raise NotImplementedError("eqx.nn.LSTMCell has no projection (proj_size > 0)")

    def run(self, config, dtype, params, x, h0, c0):
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        cells = to_equinox(params, config)
        key = jax.random.PRNGKey(0)  # the initial weights are replaced below
        h_n, c_n = [], []
        for layer in range(config.num_layers):
            outputs = []
            for direction in range(config.num_directions):
                k = layer * config.num_directions + direction
                fields = cells[layer][direction]
                template = eqx.nn.LSTMCell(
                    fields["weight_ih"].shape[1],
                    config.hidden_size,
                    use_bias=config.bias,
                    dtype=dtype,
                    key=key,
                )
                cell = eqx.tree_at(
                    lambda c: (c.weight_ih, c.weight_hh),
                    template,
                    (fields["weight_ih"], fields["weight_hh"]),
                )
                if config.bias:
                    cell = eqx.tree_at(lambda c: c.bias, cell, fields["bias"])
                batched = jax.vmap(cell)

                def step(carry, x_t, batched=batched):
                    carry = batched(x_t, carry)
                    return carry, carry[0]

                seq = x[::-1] if direction else x
                (h, c), ys = jax.lax.scan(step, (h0[k], c0[k]), seq)
                outputs.append(ys[::-1] if direction else ys)
                h_n.append(h)
                c_n.append(c)
            x = jnp.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
        return x, jnp.stack(h_n), jnp.stack(c_n)
