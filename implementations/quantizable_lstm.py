"""`torch.ao.nn.quantizable.LSTM` in float mode: the LSTM post-training quantization swaps in.

It ships inside torch and takes `nn.LSTM`'s constructor (less ``proj_size``), but it is its own
code: one `QuantizableLSTMCell` per layer and direction, each with two `nn.Linear` gate
networks (``igates`` on the input, ``hgates`` on h), gates in `nn.LSTM`'s order i, f, g, o.
Those map onto the canonical parameters by name, so the adapter is a `TorchAdapter`: torch
autograd takes gradients back to the canonical names.

It differs from `nn.LSTM` in ways declared below as known divergences (docs/known-divergences.md),
each shown independently of the harness in tests/implementations/test_quantizable.py.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from parity import CHECKS, KnownDivergence, LSTMConfig, Layout, Supports, TorchAdapter

__all__ = ["KNOWN_DIVERGENCES", "QuantizableAdapter"]

_EVERY_CHECK = tuple(c for c in CHECKS)

# Each is shown on a minimal case with plain torch in tests/implementations/test_quantizable.py.
KNOWN_DIVERGENCES = (
    KnownDivergence(
        cause="with num_layers >= 2 and bidirectional=True its layers after the first are built "
        "with input width hidden_size instead of 2 * hidden_size, so its own forward "
        "raises on the previous layer's two-direction output",
        # Not step-by-step, chunking, causality and bidirectional: they run one-direction or
        # one-layer LSTMs.
        checks=(
            "output",
            "h_n",
            "c_n",
            "gradients",
            "finite-differences",
            "batch-independence",
            "unbatched",
            "batch-first",
            "stacking",
            "determinism",
            "degenerate",
            "strides",
        ),
        where={"num_layers": (2, 3), "bidirectional": True},
        # parity.TorchAdapter compares what the module built with nn.LSTM's shapes at every
        # build (wrong-parameters), before load_state_dict or a forward could raise.
        status="wrong-parameters",
        match=r"the module builds `layers\.[12]\.layer_fw\.cell\.igates\.weight` as",
    ),
    KnownDivergence(
        cause="called without an initial state it makes float32 zeros for h0 and c0 whatever the "
        "input's dtype, so a float64 input raises a dtype mismatch",
        checks=_EVERY_CHECK,
        where={"dtype": "float64"},
        # The message depends on the matmul (with or without bias); `degenerate` reports the
        # raise as its own finding (status fail).
        status=("error", "fail"),
        match="(must|to) have the same dtype",
    ),
    KnownDivergence(
        cause="it takes the input's second dimension as the batch, so unbatched (seq_len, "
        "input_size) input is read as a batch of input_size rows: with an initial state it "
        "raises reshaping the (layers * directions, hidden) state, without one it returns "
        "output and states with a batch dimension of input_size",
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
            "strides",
        ),
        where={"batch": None},
        status=("error", "wrong-shape", "fail"),
        match="is invalid for input of size|shape",
    ),
    KnownDivergence(
        cause="with an empty batch (batch=0) it raises reshaping its stacked final states "
        "(reshape(-1, 0, hidden_size) of a tensor with no elements) where nn.LSTM returns "
        "empty tensors",
        checks=("degenerate",),
        where={"dtype": "float32"},
        status="fail",
        match="batch=0 .*cannot reshape tensor of 0 elements",
    ),
)

# torch's names for the two gate networks of a cell, and the canonical parameters they hold.
_GATE_NETWORKS = {"igates": ("weight_ih", "bias_ih"), "hgates": ("weight_hh", "bias_hh")}


class QuantizableAdapter(TorchAdapter):
    name = "quantizable"
    description = "torch.ao.nn.quantizable.LSTM in float mode (the LSTM quantization swaps in)"
    layout = Layout(
        weights="W x: two nn.Linear per cell, igates (4H, I) on x and hgates (4H, H) on h"
    )
    # No proj_size argument at all: a missing feature, not a divergence.
    supports = Supports(projection=False, gradients="autograd")
    known_divergences = KNOWN_DIVERGENCES

    def make_module(self, config: LSTMConfig, dtype: torch.dtype) -> nn.Module:
        if config.proj_size:
            raise NotImplementedError("torch.ao.nn.quantizable.LSTM has no proj_size")
        from torch.ao.nn.quantizable import LSTM

        args = config.as_dict()
        del args["proj_size"]
        with warnings.catch_warnings():
            # It warns that dropout is ignored (true of nn.LSTM at evaluation time too).
            warnings.simplefilter("ignore", UserWarning)
            return LSTM(**args, dtype=dtype)

    def build(self, config: LSTMConfig, params, dtype: str):
        built = super().build(config, params, dtype)
        # The weights go in as a user's would, through load_state_dict: it refuses a parameter
        # of another shape than the module built. (Calling the module with the canonical
        # tensors swapped in, as TorchAdapter does, would run them whatever shape it built.)
        mapped = self.module_parameters(
            config, {n: torch.as_tensor(a) for n, a in built.params.items()}
        )
        built.module.load_state_dict(mapped, strict=False)
        return built

    def module_parameters(self, config, params):
        out = {}
        for layer in range(config.num_layers):
            for direction in range(config.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                side = "layer_bw" if direction else "layer_fw"
                for network, (weight, bias) in _GATE_NETWORKS.items():
                    prefix = f"layers.{layer}.{side}.cell.{network}."
                    out[prefix + "weight"] = params[weight + sfx]
                    if config.bias:
                        out[prefix + "bias"] = params[bias + sfx]
        return out
