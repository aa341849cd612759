"""MindSpore's `mindspore.nn.LSTM`: nn.LSTM's parameter names and layout, its own kernels.

Its parameters are nn.LSTM's by name, shape and gate order (``weight_ih_l0`` ...
``bias_hh_l1_reverse``, gates i, f, g, o; shown for drawn configurations in
tests/frameworks/test_mindspore.py), so no converter: each is set by name. ``has_bias`` for
``bias``; no projection. On CPU each layer and direction is one call of MindSpore's LSTM
kernel, given the two biases summed. Run in PyNative mode (MindSpore 2's default); gradients
from ``mindspore.grad``.

Needs NumPy 1 (``parity[mindspore]`` pins it): MindSpore 2.10's compiled modules are built
against NumPy 1.x, and under NumPy 2 a float64 forward failed with a SystemError left pending
by its NumPy bridge (docs/frameworks.md).

Declared as a known divergence (parity.expected, docs/known-divergences.md), shown with
MindSpore alone in tests/frameworks/test_mindspore.py: unbatched input raises. Not drawn, each
with the reason shown there too: an empty batch (it raises, and after other calls in the
process it has crashed it with SIGFPE); float64 (MindSpore documents float32 and float16 input
only; given float64 it raises with a state, and otherwise computes at float32's precision at
best, with wrong gradients).
"""

from __future__ import annotations

import numpy as np

from parity import Adapter, KnownDivergence, LSTMConfig, Layout, Supports

from ._layout import reject_empty_sequence

__all__ = ["KNOWN_DIVERGENCES", "MindSporeAdapter", "import_mindspore"]

KNOWN_DIVERGENCES = (
    KnownDivergence(
        cause="it raises on unbatched (seq_len, input_size) input (its LSTM kernel takes rank-3 "
        "input only) where nn.LSTM reads it as a batch of one",
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
        match=r"x_shape\.size\(\) must be equal to 3|perm",
    ),
)


def import_mindspore():
    """mindspore, in PyNative mode (eager: what the adapter's calls need)."""
    import mindspore

    if mindspore.get_context("mode") != mindspore.PYNATIVE_MODE:
        raise RuntimeError(
            "mindspore is in graph mode in this process; parity's mindspore "
            "adapter needs PyNative mode (mindspore.set_context(mode="
            "mindspore.PYNATIVE_MODE)), or a process of its own (parity check "
            "gives it one)"
        )
    return mindspore


class MindSporeAdapter(Adapter):
    name = "mindspore"
    description = "MindSpore mindspore.nn.LSTM (nn.LSTM's parameter names, its own LSTM kernel)"
    layout = Layout()  # nn.LSTM's names and shapes (its CPU kernel is given their sum)
    # float64: it documents float32 and float16 input only. Given float64 its forward raises
    # when given a state; without one it returns float64 computed at float32's precision at
    # best (wrong outright in some runs of the same case), and wrong gradients (NaN in some
    # runs) (docs/frameworks.md, tests/frameworks/test_mindspore.py): not drawn. Declared
    # instead, the raise would explain every float64 case (the harness's first call on a case
    # gives a state), and the rest varies from run to run: no strict declaration holds.
    supports = Supports(projection=False, float64=False, gradients="autograd")
    requires = ("mindspore",)
    install = "parity[mindspore]"
    known_divergences = KNOWN_DIVERGENCES

    def mindspore_parameters(self, params, config: LSTMConfig) -> dict:
        """The canonical parameters by MindSpore's names (a test overrides this with a
        mistake)."""
        return dict(params)

    def build(self, config: LSTMConfig, params, dtype: str):
        if config.proj_size:
            raise NotImplementedError("mindspore.nn.LSTM has no projection (proj_size > 0)")
        ms = import_mindspore()
        module = ms.nn.LSTM(
            config.input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            has_bias=config.bias,
            batch_first=config.batch_first,
            dropout=float(config.dropout),
            bidirectional=config.bidirectional,
            dtype=ms.float64 if dtype == "float64" else ms.float32,
        )
        module.set_train(False)  # nn.LSTM's evaluation mode: no dropout between layers
        own = dict(module.parameters_and_names())
        for name, value in self.mindspore_parameters(params, config).items():
            own[name].set_data(ms.Tensor(np.array(value, dtype)))
        return _Built(config, module, own, list(params), dtype)


class _Built:
    def __init__(self, config: LSTMConfig, module, own: dict, names: list, dtype: str):
        self.config, self.module, self.own, self.names, self.dtype = (
            config,
            module,
            own,
            names,
            dtype,
        )

    def _tensors(self, input, state):
        import mindspore as ms

        reject_empty_sequence(self.config, input)
        if input.ndim == 3 and input.shape[0 if self.config.batch_first else 1] == 0:
            # Its kernel raises on an empty batch, and after other calls in the process it has
            # crashed it instead (SIGFPE): a crash ends the checks' process, so not drawn.
            raise NotImplementedError(
                "mindspore.nn.LSTM raises on an empty batch, or crashes the process (SIGFPE)"
            )
        x = ms.Tensor(np.array(input, self.dtype))
        hx = None if state is None else tuple(ms.Tensor(np.array(s, self.dtype)) for s in state)
        return x, hx

    def forward(self, input, state):
        x, hx = self._tensors(input, state)
        output, (h_n, c_n) = self.module(x, hx)
        return output.asnumpy(), (h_n.asnumpy(), c_n.asnumpy())

    def gradients(self, input, state, cotangents):
        import mindspore as ms

        x, hx = self._tensors(input, state)
        weights = [ms.Tensor(np.asarray(g, self.dtype)) for g in cotangents]

        def loss(x, *hx):
            outs = self.module(x, hx or None)
            return sum((w * t).sum() for w, t in zip(weights, (outs[0], *outs[1])))

        leaves = (x,) if hx is None else (x, *hx)
        positions = tuple(range(len(leaves)))
        params = [self.own[n] for n in self.names]
        by_input, by_param = ms.grad(loss, grad_position=positions, weights=params)(*leaves)
        if not isinstance(by_input, tuple):
            by_input = (by_input,)
        grads = dict(zip(("input", "h0", "c0"), (g.asnumpy() for g in by_input)))
        grads.update((n, g.asnumpy()) for n, g in zip(self.names, by_param))
        return grads
