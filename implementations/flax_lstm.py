"""Flax (`flax.linen`): `LSTMCell` driven by `nn.RNN`, `nn.Bidirectional` for two directions.

One `nn.RNN` (or `nn.Bidirectional` of two) per layer, stacked; the canonical parameters go in
through `parity.convert.to_flax` (one kernel per gate and side, ``x @ kernel``, the two biases
folded into the hidden side's), traced by JAX, so gradients reach the canonical names through
the conversion. Flax's carry is ``(c, h)``. Flax's cells have no projection: proj_size > 0 is
unsupported. A bias-free LSTM is the cell with zero hidden biases (Flax's cell always has them;
the function is the same).

Variable lengths (`Supports(lengths=True)`) are Flax's own: the lengths go to `nn.RNN` and
`nn.Bidirectional` as ``seq_lengths``. Flax then takes each row's carry at its own last step,
and its reverse direction flips each row within its own length (`flax.linen.flip_sequences`),
so it starts at the row's last valid step; the outputs at padded positions are whatever the
scan computed there (not compared). Checked against nn.LSTM on the batch packed by the
``padded`` check (docs/variable-lengths.md).
"""

from __future__ import annotations

from parity import LSTMConfig, Layout, Supports
from parity.convert import to_flax

from ._jax import JAX_REQUIRES, JaxFamilyAdapter

__all__ = ["FlaxAdapter", "FlaxOptimizedAdapter"]


class FlaxAdapter(JaxFamilyAdapter):
    name = "flax"
    description = "flax.linen LSTMCell driven by nn.RNN / nn.Bidirectional, one per layer"
    layout = Layout(
        biases=1,
        weights="x @ kernel: one Dense per gate and side, (I, H) and (H, H); the bias on h's side",
    )
    supports = Supports(projection=False, gradients="autograd", lengths=True)
    requires = JAX_REQUIRES + ("flax",)
    cell = "LSTMCell"  # or "OptimizedLSTMCell": the same parameters, fused kernels

    def check_config(self, config: LSTMConfig) -> None:
        if config.proj_size:
            raise NotImplementedError("Flax's LSTM cells have no projection (proj_size > 0)")

    def flax_parameters(self, params, config: LSTMConfig) -> dict:
        """The canonical parameters in Flax's layout (a test overrides this with a mistake)."""
        return to_flax(params, config)

    def bidirectional(self, forward, backward):
        """The two directions of a layer as one module (a test overrides this with a mistake)."""
        import flax.linen as nn

        return nn.Bidirectional(forward, backward, return_carry=True)

    def run(self, config, dtype, params, x, h0, c0, lengths=None):
        import flax.linen as nn
        import jax.numpy as jnp

        cell = getattr(nn, self.cell)
        flax_params = self.flax_parameters(params, config)
        x = x.swapaxes(0, 1)  # nn.RNN scans axis 1 (time_major=False)
        h_n, c_n = [], []
        for layer in range(config.num_layers):

            def rnn():
                return nn.RNN(
                    cell(config.hidden_size, dtype=dtype, param_dtype=dtype), return_carry=True
                )

            k = layer * config.num_directions
            if config.bidirectional:
                module = self.bidirectional(rnn(), rnn())
                carry = ((c0[k], h0[k]), (c0[k + 1], h0[k + 1]))
                (fw, bw), x = module.apply(
                    {"params": flax_params[f"layer_{layer}"]},
                    x,
                    initial_carry=carry,
                    seq_lengths=lengths,
                )
                carries = [fw, bw]
            else:
                carry, x = rnn().apply(
                    {"params": flax_params[f"layer_{layer}"]},
                    x,
                    initial_carry=(c0[k], h0[k]),
                    seq_lengths=lengths,
                )
                carries = [carry]
            for c, h in carries:
                h_n.append(h)
                c_n.append(c)
        return x.swapaxes(0, 1), jnp.stack(h_n), jnp.stack(c_n)


class FlaxOptimizedAdapter(FlaxAdapter):
    description = "flax.linen OptimizedLSTMCell driven by nn.RNN / nn.Bidirectional"
    cell = "OptimizedLSTMCell"
