"""A base for implementations that are torch modules, with gradients from autograd.

Subclasses say how to make the module and how canonical parameters become the module's own
(``module_parameters``, written in torch ops: transposes, slices, a summed bias). The harness's
canonical tensors are the autograd leaves and the module runs through
`torch.func.functional_call`, so the gradients come back under canonical names with no
hand-written inverse mapping to get wrong.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import torch
from torch.func import functional_call

from .adapter import Adapter, Cotangents, LSTMConfig, State
from .misbehaviour import MutatesInput, WrongShape, WrongStructure, changed, snapshot

__all__ = ["TorchAdapter", "TORCH_DTYPES"]

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _leaf(array: np.ndarray, requires_grad: bool) -> torch.Tensor:
    # A copy: the implementation must never see (or be able to mutate) the harness's arrays.
    return torch.tensor(array).requires_grad_(requires_grad)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def unpack_result(result):
    """`(output, (h_n, c_n))` -> three tensors, or a TypeError saying what came back instead."""
    try:
        output, (h_n, c_n) = result
    except (TypeError, ValueError):
        got = type(result).__name__
        if isinstance(result, (tuple, list)):
            got = f"a {got} of {len(result)}"
        raise WrongStructure(f"returned {got}; expected (output, (h_n, c_n)) like nn.LSTM") \
            from None
    return output, h_n, c_n


class TorchAdapter(Adapter):
    """Adapter for a torch module whose forward is `nn.LSTM`'s: ``module(input, (h0, c0))``."""

    def make_module(self, config: LSTMConfig, dtype: torch.dtype) -> torch.nn.Module:
        """A new module for `config`; raise NotImplementedError for what it does not support."""
        raise NotImplementedError

    def module_parameters(
        self, config: LSTMConfig, params: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The module's parameters (by its own names) as differentiable functions of `params`."""
        return dict(params)

    def call(self, module: torch.nn.Module, input: torch.Tensor, state):
        """Run the module; override for another calling convention."""
        return module(input, state)

    def build(self, config: LSTMConfig, params: Mapping[str, np.ndarray], dtype: str):
        with warnings.catch_warnings():
            # nn.LSTM warns about dropout with one layer; that is a config we draw on purpose.
            warnings.simplefilter("ignore", UserWarning)
            module = self.make_module(config, TORCH_DTYPES[dtype])
        module.eval()  # dropout between layers must change nothing at evaluation time
        return _BuiltTorchModule(self, config, module, params)


class _BuiltTorchModule:
    def __init__(self, adapter: TorchAdapter, config, module, params) -> None:
        self.adapter, self.config, self.module = adapter, config, module
        self.params = {name: np.asarray(value) for name, value in params.items()}

    def with_parameters(self, params) -> "_BuiltTorchModule":
        """The same module object called with other weights (see `parity.Built`)."""
        return _BuiltTorchModule(self.adapter, self.config, self.module, params)

    def _run(self, params, input, state):
        mapped = self.adapter.module_parameters(self.config, params)
        with warnings.catch_warnings():
            # nn.LSTM warns about dropout with one layer; that is a config we draw on purpose.
            warnings.simplefilter("ignore", UserWarning)
            result = functional_call(self.module, mapped, (input, state), strict=False)
        return unpack_result(result)

    def forward(self, input: np.ndarray, state: State | None):
        params = {n: _leaf(a, False) for n, a in self.params.items()}
        hx = None if state is None else tuple(_leaf(s, False) for s in state)
        leaves = {"input": _leaf(input, False), **params}
        if hx is not None:
            leaves["h0"], leaves["c0"] = hx
        # The module gets fresh copies, so the harness's arrays are safe; whether it writes into
        # what it is given is still a finding (it would corrupt a caller's tensors).
        before = snapshot(leaves)
        with torch.no_grad():
            output, h_n, c_n = self._run(params, leaves["input"], hx)
        _unchanged(leaves, before)
        return _to_numpy(output), (_to_numpy(h_n), _to_numpy(c_n))

    def gradients(self, input: np.ndarray, state: State | None, cotangents: Cotangents):
        leaves = {"input": _leaf(input, True)}
        hx = None
        if state is not None:
            leaves["h0"], leaves["c0"] = (_leaf(s, True) for s in state)
            hx = (leaves["h0"], leaves["c0"])
        params = {n: _leaf(a, True) for n, a in self.params.items()}
        leaves.update(params)
        before = snapshot(leaves)
        with torch.enable_grad():
            output, h_n, c_n = self._run(params, leaves["input"], hx)
            loss = 0
            for what, g, t in zip(("output", "h_n", "c_n"), cotangents, (output, h_n, c_n)):
                if tuple(t.shape) != g.shape:
                    raise WrongShape(
                        f"{what} has shape {tuple(t.shape)}; nn.LSTM gives {g.shape}"
                    )
                loss = loss + (torch.as_tensor(g, dtype=t.dtype) * t).sum()
            grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        _unchanged(leaves, before)
        # A leaf the loss does not reach has gradient zero (None from autograd): reported as zeros
        # so that a detached parameter shows up as a gradient that is wrong, not as a crash.
        return {
            name: np.zeros_like(leaf.detach().numpy()) if g is None else _to_numpy(g)
            for (name, leaf), g in zip(leaves.items(), grads)
        }


def _unchanged(leaves: dict, before: dict) -> None:
    moved = changed(leaves, before)
    if moved:
        raise MutatesInput(f"changed the tensors it was given in place: {moved}")
