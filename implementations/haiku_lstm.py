"""dm-haiku: `hk.LSTM` per layer and direction, unrolled by `hk.dynamic_unroll`, in JAX.

The canonical parameters go in through `parity.convert.to_haiku` (one Linear on ``[x, h]``,
gates i, g, f, o, the two biases folded, less the +1 hk.LSTM adds to the forget gate in every
call), traced by JAX, so gradients reach the canonical names through the conversion (the JAX
family's vjp, implementations/_jax.py). hk.LSTM has no projection: proj_size > 0 is
unsupported; bias=False is the bias zero but for the forget gate's -1 (hk.LSTM always has one).

No lengths (`Supports(lengths=False)`, shown as ``-`` by ``parity list`` and ``parity table``):
``hk.dynamic_unroll`` and ``hk.static_unroll`` take no lengths or mask (``hk.ResetCore``
resets the state at marked steps; it does not hold it past a sequence's end), so a mask would
be this adapter's own code, checked as if it were Haiku's: the ``padded`` and
``padding-invariance`` checks are unsupported here (docs/variable-lengths.md).
"""

from __future__ import annotations

from parity import LSTMConfig, Layout, Supports
from parity.convert import to_haiku

from ._jax import JAX_REQUIRES, JaxFamilyAdapter

__all__ = ["HaikuAdapter"]


class HaikuAdapter(JaxFamilyAdapter):
    name = "haiku"
    description = "dm-haiku hk.LSTM unrolled by hk.dynamic_unroll, one per layer and direction"
    layout = Layout(
        gate_order="i, g, f, o",
        biases=1,
        weights="[x, h] @ w (I + H, 4H); +1 added to the forget gate in every call",
    )
    supports = Supports(projection=False, gradients="autograd")
    requires = JAX_REQUIRES + ("haiku",)
    install = "parity[haiku]"

    def check_config(self, config: LSTMConfig) -> None:
        if config.proj_size:
            raise NotImplementedError("hk.LSTM has no projection (proj_size > 0)")

    def haiku_parameters(self, params, config: LSTMConfig) -> dict:
        """The canonical parameters in Haiku's layout (a test overrides this with a mistake)."""
        import jax.numpy as jnp

        return to_haiku(params, config, concatenate=jnp.concatenate)

    def run(self, config, dtype, params, x, h0, c0):
        import haiku as hk
        import jax.numpy as jnp

        def stack(x, h0, c0):
            h_n, c_n = [], []
            for layer in range(config.num_layers):
                outputs = []
                for direction in range(config.num_directions):
                    k = layer * config.num_directions + direction
                    core = hk.LSTM(
                        config.hidden_size, name=f"lstm_l{layer}{'_reverse' if direction else ''}"
                    )
                    seq = x[::-1] if direction else x
                    ys, state = hk.dynamic_unroll(
                        core, seq, hk.LSTMState(h0[k], c0[k]), time_major=True
                    )
                    outputs.append(ys[::-1] if direction else ys)
                    h_n.append(state.hidden)
                    c_n.append(state.cell)
                x = jnp.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
            return x, jnp.stack(h_n), jnp.stack(c_n)

        apply = hk.without_apply_rng(hk.transform(stack)).apply
        return apply(self.haiku_parameters(params, config), x, h0, c0)
