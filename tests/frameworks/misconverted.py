"""Adapters with the weight-porting mistakes people make, each one mistake in a correct adapter.

The harness must catch each and name its cause (tests/frameworks/test_frameworks.py).
"""

from __future__ import annotations

import numpy as np

from parity_implementations.flax_lstm import FlaxAdapter
from parity_implementations.haiku_lstm import HaikuAdapter
from parity_implementations.keras_tf_lstm import KerasTensorFlowAdapter
from parity_implementations.mindspore_lstm import MindSporeAdapter
from parity_implementations.paddle_lstm import PaddleAdapter
from parity_implementations.jax_lstm import JaxAdapter
from parity_implementations.keras_lstm import KerasAdapter
from parity_implementations.onnx_lstm import OnnxReferenceAdapter
from parity.convert import HAIKU_FORGET_BIAS, to_flax, to_haiku, to_keras

__all__ = ["FlaxBiasNotFolded", "FlaxReverseFromPaddedEnd", "HaikuForgetBiasKept", "JaxReverseOutputUnflipped",
           "KerasGatesIFOC", "KerasTensorFlowGatesIFOC", "MindSporeAscendGateOrder",
           "OnnxOutputReadAsTBDH",
           "OnnxTorchGateOrder", "PaddleBiasIhTwice"]


def _gate_blocks_in(params, config, order):
    """`params` with every weight's and bias's gate row blocks rearranged: block k of the result
    is canonical block order[k]. Indexing only, so torch and jax arrays pass through."""
    h = config.hidden_size
    rows = np.concatenate([np.arange(g * h, (g + 1) * h) for g in order])
    return {n: a if n.startswith("weight_hr") else a[rows] for n, a in params.items()}


class KerasGatesIFOC(KerasAdapter):
    """Keras kernels written with their gate columns in i, f, o, c (TensorFlow 1 / cuDNN-style
    habit) where Keras reads i, f, c, o."""

    description = "keras, gate columns written as i, f, o, c"

    def keras_weights(self, params, config):
        return to_keras(_gate_blocks_in(params, config, (0, 1, 3, 2)), config)


class FlaxBiasNotFolded(FlaxAdapter):
    """Flax's hidden biases given bias_hh alone: bias_ih was not folded in."""

    description = "flax, bias_ih not folded into the hidden biases"

    def flax_parameters(self, params, config):
        if config.bias:
            params = {n: 0 * a if n.startswith("bias_ih") else a for n, a in params.items()}
        return to_flax(params, config)


class FlaxReverseFromPaddedEnd(FlaxAdapter):
    """Flax's two directions with the lengths given to the forward one only: the reverse
    direction flips the whole padded batch (starting at the padded end) and ends there."""

    description = "flax, seq_lengths not given to the reverse direction"

    def bidirectional(self, forward, backward):
        import flax.linen as nn

        class ReverseUnmasked(nn.Module):
            forward_rnn: nn.Module
            backward_rnn: nn.Module

            def __call__(self, x, initial_carry, seq_lengths=None):
                fw, y_fw = self.forward_rnn(x, initial_carry=initial_carry[0],
                                            seq_lengths=seq_lengths, return_carry=True)
                bw, y_bw = self.backward_rnn(x, initial_carry=initial_carry[1],
                                             return_carry=True, reverse=True, keep_order=True)
                return (fw, bw), _concat(y_fw, y_bw)

        return ReverseUnmasked(forward, backward)


def _concat(a, b):
    import jax.numpy as jnp

    return jnp.concatenate([a, b], axis=-1)


class OnnxTorchGateOrder(OnnxReferenceAdapter):
    """ONNX's W, R, B written in PyTorch's gate order i, f, g, o; ONNX reads i, o, f, c."""

    description = "onnx-reference, weights in PyTorch's gate order"

    def onnx_nodes(self, params, config):
        nodes = []
        for layer in range(config.num_layers):
            sfx = [f"_l{layer}" + ("_reverse" if d else "") for d in range(config.num_directions)]
            node = {"W": np.stack([params["weight_ih" + s] for s in sfx]),
                    "R": np.stack([params["weight_hh" + s] for s in sfx])}
            if config.bias:
                node["B"] = np.stack([np.concatenate([params["bias_ih" + s],
                                                      params["bias_hh" + s]]) for s in sfx])
            nodes.append(node)
        return nodes


class OnnxReferenceWithLengths(OnnxReferenceAdapter):
    """onnx's reference evaluator declared to take lengths: its LSTM ignores sequence_lens
    (onnx 1.23), so every row runs on through the padding."""

    description = "onnx-reference, sequence_lens given (which it ignores)"
    supports = OnnxReferenceAdapter.supports.replace(lengths=True)


class OnnxOutputReadAsTBDH(OnnxReferenceAdapter):
    """ONNX's Y [T, D, B, H] reshaped to [T, B, D*H] as if it were [T, B, D, H]."""

    description = "onnx-reference, Y read as [T, B, D, H]"

    def read_output(self, y):
        t, d, b, h = y.shape
        return y.reshape(t, b, d * h)


class JaxReverseOutputUnflipped(JaxAdapter):
    """The last layer's reverse direction left in the order it was computed (last step first)."""

    description = "jax, reverse direction's output not flipped back"

    def run(self, config, dtype, params, x, h0, c0, lengths=None):
        import jax.numpy as jnp

        y, h_n, c_n = super().run(config, dtype, params, x, h0, c0, lengths)
        if config.bidirectional:
            h = config.output_hidden_size
            y = jnp.concatenate([y[..., :h], y[::-1, :, h:]], axis=-1)
        return y, h_n, c_n


class HaikuForgetBiasKept(HaikuAdapter):
    """Haiku's bias written without taking off the +1 hk.LSTM adds to the forget gate in every
    call (its docstring calls it an initialization)."""

    description = "haiku, forget gate's +1 left in"

    def haiku_parameters(self, params, config):
        import jax.numpy as jnp

        out = to_haiku(params, config, concatenate=jnp.concatenate)
        h = config.hidden_size
        for node in out.values():  # add back what to_haiku took off: f is Haiku's block 2
            node["b"] = node["b"].at[2 * h:3 * h].add(HAIKU_FORGET_BIAS)
        return out


class KerasTensorFlowGatesIFOC(KerasTensorFlowAdapter):
    """Keras-on-TensorFlow kernels written with gate columns i, f, o, c (Keras reads i, f, c,
    o)."""

    description = "keras-tf, gate columns written as i, f, o, c"

    def keras_weights(self, params, config):
        import tensorflow as tf

        h = config.hidden_size
        rows = np.concatenate([np.arange(g * h, (g + 1) * h) for g in (0, 1, 3, 2)])
        moved = {n: tf.gather(a, rows) for n, a in params.items()}  # TF has no fancy indexing
        return to_keras(moved, config, transpose=tf.transpose)


class PaddleBiasIhTwice(PaddleAdapter):
    """Paddle's parameters set by a name map with a slip: bias_hh_l{k} given bias_ih_l{k}."""

    description = "paddle, bias_ih set in place of bias_hh"

    def paddle_parameters(self, params, config):
        return {n: params[n.replace("bias_hh", "bias_ih")] for n in params}


class MindSporeAscendGateOrder(MindSporeAdapter):
    """MindSpore's parameters written with the gate blocks in i, g, f, o: the order of
    ``ops.DynamicRNN`` (its i, j, f, o), which mindspore.nn.LSTM itself feeds on Ascend, where
    nn.LSTM on CPU reads i, f, g, o."""

    description = "mindspore, gate blocks written as i, g, f, o (Ascend's DynamicRNN order)"

    def mindspore_parameters(self, params, config):
        return _gate_blocks_in(params, config, (0, 2, 1, 3))
