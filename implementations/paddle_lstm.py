"""PaddlePaddle's `paddle.nn.LSTM`: nn.LSTM's constructor and parameter names, its own kernels.

Its parameters are nn.LSTM's by name and layout (``weight_ih_l0`` ... ``bias_hh_l1_reverse``,
gates i, f, g, o), so no converter: each is set by name. ``direction="bidirect"`` for two
directions, ``time_major`` for the layout (Paddle's default is batch-major, nn.LSTM's the
opposite). Gradients from ``paddle.grad``.

Not drawn, each with the reason (docs/frameworks.md, shown in tests/frameworks):
- bias=False (``bias_ih_attr=False, bias_hh_attr=False``): its forward crashes the process
  (SIGSEGV in the fused rnn kernel);
- proj_size > 0: its parameter names no longer match their shapes (the names are assigned out
  of order), so no weights can be set by name;
- seq_len=0: it crashes the process (SIGFPE); the adapter raises as nn.LSTM does instead of
  calling it;
- gradients with dropout > 0: its backward raises in evaluation mode (its kernel keeps what
  backward needs only when training), so gradients are taken in training mode, where its
  dropout between layers is on: such cases are declined for gradients.
Declared as known divergences (parity.expected): it raises on unbatched (seq_len,
input_size) input, and on an empty batch.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np

from parity import Adapter, KnownDivergence, LSTMConfig, Layout, Supports

from ._layout import reject_empty_sequence

__all__ = ["KNOWN_DIVERGENCES", "PaddleAdapter"]

KNOWN_DIVERGENCES = (
    KnownDivergence(
        cause="it raises on unbatched (seq_len, input_size) input (the rank of its input must "
        "be 3) where nn.LSTM reads it as a batch of one",
        checks=(
            "output",
            "h_n",
            "c_n",
            "gradients",
            "finite-differences",
            "step-by-step",
            "chunking",
            "causality",
            "unbatched",
            "bidirectional",
            "stacking",
            "determinism",
            "degenerate",
        ),
        where={"batch": None},
        status=("error", "fail"),
        # batch_first: its transpose to time-major raises first.
        match="rank of Input in RNN +must be 3|dimension should be equal to or greater than "
        "the axis's size",
    ),
    KnownDivergence(
        cause="with an empty batch (batch=0) it raises (the input size should not be 0) where "
        "nn.LSTM returns empty tensors",
        checks=("degenerate",),
        status="fail",
        match="batch=0 .*(input size should not be 0|holds no memory)",
    ),
)


def import_paddle():
    """paddle, or a clear error where importing it would crash the process."""
    if "paddle" not in sys.modules and "tensorflow" in sys.modules:
        # Measured with paddlepaddle 3 and tensorflow-cpu 2.21: a segfault in paddle's core.
        raise RuntimeError(
            "paddle cannot be imported into a process that has imported "
            "TensorFlow (it crashes); run it in a process of its own (parity "
            "check does)"
        )
    import paddle

    return paddle


@contextlib.contextmanager
def _default_dtype(dtype: str):
    """Paddle makes a layer's parameters in its process-wide default dtype: set it, then put
    it back."""
    paddle = import_paddle()
    saved = paddle.get_default_dtype()
    paddle.set_default_dtype(dtype)
    try:
        yield paddle
    finally:
        paddle.set_default_dtype(saved)


class PaddleAdapter(Adapter):
    name = "paddle"
    description = "PaddlePaddle paddle.nn.LSTM (nn.LSTM's parameter names, its own rnn kernel)"
    layout = Layout()  # nn.LSTM's names and shapes
    supports = Supports(no_bias=False, projection=False, gradients="autograd")
    requires = ("paddle",)
    install = "parity[paddle]"
    known_divergences = KNOWN_DIVERGENCES

    def paddle_parameters(self, params, config: LSTMConfig) -> dict:
        """The canonical parameters by Paddle's names (a test overrides this with a mistake)."""
        return dict(params)

    def build(self, config: LSTMConfig, params, dtype: str):
        if not config.bias:
            raise NotImplementedError("paddle.nn.LSTM without biases crashes the process")
        if config.proj_size:
            raise NotImplementedError("paddle.nn.LSTM's projection parameters are misnamed")
        with _default_dtype(dtype) as paddle:
            module = paddle.nn.LSTM(
                config.input_size,
                config.hidden_size,
                num_layers=config.num_layers,
                direction="bidirect" if config.bidirectional else "forward",
                time_major=not config.batch_first,
                dropout=config.dropout,
            )
        module.eval()
        return _Built(self, config, module, params, dtype)


class _Built:
    def __init__(self, adapter: PaddleAdapter, config: LSTMConfig, module, params, dtype):
        self.adapter, self.config, self.module, self.dtype = adapter, config, module, dtype
        self.params = {n: np.array(a, dtype) for n, a in params.items()}

    def _run(self, input, state, grad: bool):
        import paddle

        if grad:
            if self.config.dropout and self.config.num_layers > 1:
                raise NotImplementedError(
                    "paddle.nn.LSTM's backward needs training mode, where its dropout is on"
                )
            self.module.train()  # the same function with no dropout; eval has no backward
        else:
            self.module.eval()

        reject_empty_sequence(self.config, input)  # paddle's kernel dies of SIGFPE on it
        own = dict(self.module.named_parameters())
        for name, value in self.adapter.paddle_parameters(self.params, self.config).items():
            own[name].set_value(np.asarray(value, self.dtype))
            own[name].stop_gradient = not grad
        x = paddle.to_tensor(np.array(input), stop_gradient=not grad)
        hx = None
        if state is not None:
            hx = tuple(paddle.to_tensor(np.array(s), stop_gradient=not grad) for s in state)
        output, (h_n, c_n) = self.module(x, hx)
        return x, hx, own, (output, h_n, c_n)

    def forward(self, input, state):
        import paddle

        with paddle.no_grad():
            _, _, _, (output, h_n, c_n) = self._run(input, state, grad=False)
        return output.numpy(), (h_n.numpy(), c_n.numpy())

    def gradients(self, input, state, cotangents):
        import paddle

        x, hx, own, outs = self._run(input, state, grad=True)
        loss = sum((paddle.to_tensor(g) * t).sum() for g, t in zip(cotangents, outs))
        leaves = {"input": x}
        if hx is not None:
            leaves["h0"], leaves["c0"] = hx
        leaves.update({n: own[n] for n in self.params})
        grads = paddle.grad(loss, list(leaves.values()), allow_unused=True)
        return {
            n: np.zeros_like(self.params.get(n, np.asarray(input))) if g is None else g.numpy()
            for n, g in zip(leaves, grads)
        }
