"""Keras 3 on its TensorFlow backend: `keras.layers.LSTM` / `Bidirectional`, one per layer.

The most used non-torch LSTM, with its own kernel layout (``x @ kernel``, gates i, f, c, o) and
one bias; the canonical parameters go in through `parity.convert.to_keras` in TensorFlow ops
and `Layer.stateless_call`, and `tf.GradientTape` takes the gradients back to the canonical
names through the conversion. float64 through the layers' dtype policy. No projection.

Keras fixes its backend when it is first imported, for the whole process: this adapter sets
``KERAS_BACKEND=tensorflow`` before importing it and refuses to run, saying so, where keras was
already imported with another backend (the `keras` adapter's torch, say). `parity check` runs
every implementation in a child process of its own, so the two adapters never meet there.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from parity import Adapter, KnownDivergence, LSTMConfig, Layout, Supports
from parity.convert import to_keras

from ._layout import reject_empty_sequence

__all__ = ["KNOWN_DIVERGENCES", "KerasTensorFlowAdapter", "import_keras_tensorflow"]

KNOWN_DIVERGENCES = (
    KnownDivergence(
        cause="with an empty batch (batch=0) its cell's bias add raises (Biases must be 1D: "
        "[0, 4H]) where nn.LSTM returns empty tensors",
        checks=("degenerate",),
        status="fail",
        match="batch=0 .*Biases must be 1D",
    ),
)


def import_keras_tensorflow():
    """keras, on the TensorFlow backend."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"keras was imported with the {backend!r} backend before parity's "
            f"keras-tf adapter could select 'tensorflow'; run it in a process of "
            f"its own (parity check does), or set KERAS_BACKEND=tensorflow "
            f"before anything imports keras"
        )
    return keras


class KerasTensorFlowAdapter(Adapter):
    name = "keras-tf"
    description = "keras.layers.LSTM / Bidirectional on Keras 3's TensorFlow backend, one per layer"
    layout = Layout(
        gate_order="i, f, g, o",
        biases=1,
        weights="x @ kernel (I, 4H), h @ recurrent_kernel (H, 4H); Keras calls g c",
    )
    supports = Supports(projection=False, gradients="autograd")
    requires = ("keras", "tensorflow")
    install = "parity[tensorflow]"
    known_divergences = KNOWN_DIVERGENCES

    def keras_weights(self, params, config: LSTMConfig) -> list[list]:
        """The canonical parameters in Keras's layout (a test overrides this with a mistake)."""
        import tensorflow as tf

        return to_keras(params, config, transpose=tf.transpose)

    def make_layers(self, config: LSTMConfig, dtype: str) -> list:
        keras = import_keras_tensorflow()
        layers = []
        for layer in range(config.num_layers):

            def lstm():
                return keras.layers.LSTM(
                    config.hidden_size,
                    return_sequences=True,
                    return_state=True,
                    use_bias=config.bias,
                    dtype=dtype,
                )

            made = (
                keras.layers.Bidirectional(lstm(), dtype=dtype) if config.bidirectional else lstm()
            )
            made.build((None, None, config.layer_input_size(layer)))
            layers.append(made)
        return layers

    def build(self, config: LSTMConfig, params, dtype: str):
        if config.proj_size:
            raise NotImplementedError("keras.layers.LSTM has no projection (proj_size > 0)")
        return _Built(self, config, self.make_layers(config, dtype), params, dtype)


class _Built:
    def __init__(self, adapter, config: LSTMConfig, layers, params, dtype):
        self.adapter, self.config, self.layers, self.dtype = adapter, config, layers, dtype
        self.params = {n: np.array(a, dtype) for n, a in params.items()}

    def _run(self, params, x, state):
        import tensorflow as tf

        c = self.config
        unbatched = len(x.shape) == 2
        if unbatched:
            x = x[None]
            state = None if state is None else tuple(s[:, None] for s in state)
        elif not c.batch_first:
            x = tf.transpose(x, (1, 0, 2))  # Keras is batch-major
        weights = self.adapter.keras_weights(params, c)
        h_n, c_n = [], []
        for layer, keras_layer in enumerate(self.layers):
            rows = range(layer * c.num_directions, (layer + 1) * c.num_directions)
            initial = None
            if state is not None:
                initial = [s for k in rows for s in (state[0][k], state[1][k])]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result, _ = keras_layer.stateless_call(
                    list(weights[layer]),
                    [v.value for v in keras_layer.non_trainable_variables],
                    x,
                    initial_state=initial,
                )
            x, finals = result[0], result[1:]
            h_n += finals[0::2]
            c_n += finals[1::2]
        h_n, c_n = tf.stack(h_n), tf.stack(c_n)
        if unbatched:
            return x[0], h_n[:, 0], c_n[:, 0]
        if not c.batch_first:
            x = tf.transpose(x, (1, 0, 2))
        return x, h_n, c_n

    def _leaves(self, input, state):
        import tensorflow as tf

        leaves = {"input": tf.constant(np.array(input, self.dtype))}
        if state is not None:
            leaves["h0"], leaves["c0"] = (tf.constant(np.array(s, self.dtype)) for s in state)
        params = {n: tf.constant(a.copy()) for n, a in self.params.items()}
        return leaves, params

    def forward(self, input, state):
        reject_empty_sequence(self.config, input)
        leaves, params = self._leaves(input, state)
        hx = None if state is None else (leaves["h0"], leaves["c0"])
        y, h, c = self._run(params, leaves["input"], hx)
        return np.array(y), (np.array(h), np.array(c))

    def gradients(self, input, state, cotangents):
        import tensorflow as tf

        reject_empty_sequence(self.config, input)
        leaves, params = self._leaves(input, state)
        hx = None if state is None else (leaves["h0"], leaves["c0"])
        every = {**leaves, **params}
        with tf.GradientTape() as tape:
            for t in every.values():
                tape.watch(t)
            outs = self._run(params, leaves["input"], hx)
            loss = tf.add_n(
                [
                    tf.reduce_sum(tf.constant(np.asarray(g), t.dtype) * t)
                    for g, t in zip(cotangents, outs)
                ]
            )
        grads = tape.gradient(loss, list(every.values()))
        return {
            n: np.zeros_like(np.asarray(leaf)) if g is None else np.array(g)
            for (n, leaf), g in zip(every.items(), grads)
        }
