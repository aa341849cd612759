"""What the JAX, Flax and Equinox adapters share: float64, jit, and gradients by `jax.vjp`.

An adapter of this family says how to run its framework's LSTM on canonical parameters
(`JaxFamilyAdapter.run`, time-major and batched, in jax ops so that `jax.vjp` differentiates
through the weight conversion too: the gradients come back under the canonical names with no
hand-written inverse). The forward and the vjp are jitted once per (adapter, config, dtype,
shapes) and reused by every call and every build with those shapes: what a benchmark should
time is the compiled call, not the tracing.

float64 needs ``jax_enable_x64``, a process-wide flag. It is switched on at the first build and
left on; float32 runs stay float32 because every array handed to JAX is given its dtype
explicitly (NumPy float32 in, float32 parameters, no float64 constants).
"""

from __future__ import annotations

import functools
from typing import Mapping

import numpy as np

from parity import Adapter, LSTMConfig

from ._layout import from_time_major, reject_empty_sequence, state_batched, to_time_major

JAX_REQUIRES = ("jax", "jaxlib")


def enable_x64() -> None:
    import jax

    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


@functools.cache
def _compiled():
    """The jitted forward and vjp (built on first use: importing jax is not free)."""
    import jax
    import jax.numpy as jnp

    def apply(adapter, config, dtype, unbatched, params, x, h0, c0, lengths=None):
        x = to_time_major(config, unbatched, x)
        batch = x.shape[1]
        if h0 is None:
            rows = config.num_layers * config.num_directions
            h0 = jnp.zeros((rows, batch, config.output_hidden_size), dtype)
            c0 = jnp.zeros((rows, batch, config.hidden_size), dtype)
        else:
            h0, c0 = state_batched(unbatched, h0), state_batched(unbatched, c0)
        if lengths is None:
            y, h_n, c_n = adapter.run(config, dtype, params, x, h0, c0)
        else:  # only adapters that declare Supports(lengths=True) take them
            y, h_n, c_n = adapter.run(config, dtype, params, x, h0, c0, lengths=lengths)
        return from_time_major(config, unbatched, y, h_n, c_n)

    static = (0, 1, 2, 3)
    forward = jax.jit(apply, static_argnums=static)

    def vjp(adapter, config, dtype, unbatched, params, x, h0, c0, cotangents, lengths=None):
        if h0 is None:
            primals = (params, x)

            def fn(p, x):
                return apply(adapter, config, dtype, unbatched, p, x, None, None, lengths)
        else:
            primals = (params, x, h0, c0)

            def fn(p, x, h, c):  # type: ignore[misc]  # with a state: two more primals
                return apply(adapter, config, dtype, unbatched, p, x, h, c, lengths)

        _, pullback = jax.vjp(fn, *primals)
        return pullback(cotangents)

    return forward, jax.jit(vjp, static_argnums=static)


class JaxFamilyAdapter(Adapter):
    """Base for adapters whose LSTM runs in JAX (jax itself, Flax, Equinox)."""

    requires: tuple[str, ...] = JAX_REQUIRES
    install = "parity[jax]"

    def run(self, config: LSTMConfig, dtype: str, params: Mapping, x, h0, c0):
        """Time-major batched: x (T, B, I), h0 (L*D, B, H_out), c0 (L*D, B, H) ->
        (output (T, B, D*H_out), h_n, c_n), in jax ops on canonical `params`. An adapter that
        declares Supports(lengths=True) also takes ``lengths=`` (B,), an int array."""
        raise NotImplementedError

    def check_config(self, config: LSTMConfig) -> None:
        """Raise NotImplementedError for what the framework cannot express."""

    def build(self, config: LSTMConfig, params: Mapping[str, np.ndarray], dtype: str):
        self.check_config(config)
        enable_x64()
        return _Built(self, config, params, dtype)

    # Hashed by identity as a static argument of jit: one compilation per adapter instance.
    __hash__ = object.__hash__

    def __eq__(self, other) -> bool:
        return self is other


class _Built:
    def __init__(self, adapter: JaxFamilyAdapter, config: LSTMConfig, params, dtype: str):
        import jax.numpy as jnp

        self.adapter, self.config, self.dtype = adapter, config, dtype
        self.np_dtype = np.dtype(dtype)
        # A copy on the device: the implementation never sees the harness's arrays.
        self.params = {n: jnp.asarray(np.asarray(a, self.np_dtype)) for n, a in params.items()}

    def _arrays(self, input, state):
        reject_empty_sequence(self.config, input)
        x = np.asarray(input, self.np_dtype)
        h0 = c0 = None
        if state is not None:
            h0, c0 = (np.asarray(s, self.np_dtype) for s in state)
        return x, h0, c0, x.ndim == 2

    def forward(self, input, state, lengths=None):
        forward, _ = _compiled()
        x, h0, c0, unbatched = self._arrays(input, state)
        y, h_n, c_n = forward(
            self.adapter,
            self.config,
            self.dtype,
            unbatched,
            self.params,
            x,
            h0,
            c0,
            _lengths(lengths),
        )
        return np.asarray(y), (np.asarray(h_n), np.asarray(c_n))

    def gradients(self, input, state, cotangents, lengths=None):
        _, vjp = _compiled()
        x, h0, c0, unbatched = self._arrays(input, state)
        cts = tuple(np.asarray(g, self.np_dtype) for g in cotangents)
        grads = vjp(
            self.adapter,
            self.config,
            self.dtype,
            unbatched,
            self.params,
            x,
            h0,
            c0,
            cts,
            _lengths(lengths),
        )
        out = {n: np.asarray(g) for n, g in grads[0].items()}
        out["input"] = np.asarray(grads[1])
        if state is not None:
            out["h0"], out["c0"] = np.asarray(grads[2]), np.asarray(grads[3])
        return out


def _lengths(lengths):
    """Lengths as JAX takes them (a copy: the implementation never sees the harness's array)."""
    return None if lengths is None else np.array(lengths, np.int32)
