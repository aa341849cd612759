"""nn.LSTM's input and state layouts to the time-major batched one the other frameworks run in.

Written with array methods only (``swapaxes``, indexing), so the same code serves NumPy arrays
and traced JAX arrays (differentiated through by `jax.vjp`).
"""

from __future__ import annotations

from parity import LSTMConfig


def reject_empty_sequence(config: LSTMConfig, input) -> None:
    """Raise for a zero-length sequence, as nn.LSTM does (the frameworks return empty results)."""
    time_axis = 1 if config.batch_first and len(input.shape) == 3 else 0
    if input.shape[time_axis] == 0:
        raise ValueError("Expected sequence length to be larger than 0 in RNN")


def to_time_major(config: LSTMConfig, unbatched: bool, x):
    """Input in nn.LSTM's layout -> (T, B, I)."""
    if unbatched:
        return x[:, None]
    return x.swapaxes(0, 1) if config.batch_first else x


def state_batched(unbatched: bool, s):
    """h0 or c0 -> (L*D, B, ·)."""
    return s[:, None] if unbatched else s


def from_time_major(config: LSTMConfig, unbatched: bool, y, h_n, c_n):
    """(T, B, D*H) output and (L*D, B, ·) states -> nn.LSTM's layouts."""
    if unbatched:
        return y[:, 0], h_n[:, 0], c_n[:, 0]
    if config.batch_first:
        y = y.swapaxes(0, 1)
    return y, h_n, c_n


def names(layer: int, direction: int) -> dict[str, str]:
    sfx = f"_l{layer}{'_reverse' if direction else ''}"
    return {
        kind: kind + sfx for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    }
