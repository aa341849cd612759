"""A base for implementations that are torch modules, with gradients from autograd.

Subclasses say how to make the module and how canonical parameters become the module's own
(``module_parameters``, written in torch ops: transposes, slices, a summed bias). The harness's
canonical tensors are the autograd leaves and the module runs through
`torch.func.functional_call`, so the gradients come back under canonical names with no
hand-written inverse mapping to get wrong.

The contract is checked, not trusted (docs/adapter-contract.md): on every build, what
``module_parameters`` returns is held against the module's own parameters and buffers. A key
the module does not have, a module parameter not given (unless listed in ``uncovered``), or a
tensor of another shape or dtype than the module's is ``wrong-parameters``, reported before
anything is compared, naming the key, both shapes and which side can be wrong. Every forward and
gradients call goes through ``call``, the one place a calling convention is adapted.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from typing import Mapping

import numpy as np
import torch
from torch.func import functional_call

from .adapter import Adapter, Cotangents, LSTMConfig, State, parameter_shapes
from .misbehaviour import (
    ChangesGlobalState,
    MutatesInput,
    WrongParameters,
    WrongShape,
    WrongStructure,
    changed,
    snapshot,
)

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
        raise WrongStructure(
            f"returned {got}; expected (output, (h_n, c_n)) like nn.LSTM"
        ) from None
    return output, h_n, c_n


class TorchAdapter(Adapter):
    """Adapter for a torch module whose forward is `nn.LSTM`'s: ``module(input, (h0, c0))``."""

    #: Module parameters (glob patterns of their names, ``"attention.*"``) deliberately not
    #: given by ``module_parameters``: they keep the values the module holds. Any other module
    #: parameter not given is ``wrong-parameters`` (it would silently keep its random init).
    uncovered: tuple[str, ...] = ()

    def make_module(self, config: LSTMConfig, dtype: torch.dtype) -> torch.nn.Module:
        """A new module for `config`; raise NotImplementedError for what it does not support."""
        raise NotImplementedError

    def module_parameters(
        self, config: LSTMConfig, params: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The module's parameters (by its own names) as differentiable functions of `params`."""
        return dict(params)

    def call(self, module: torch.nn.Module, input: torch.Tensor, state):
        """Run the module: the one path every forward and gradients call takes.

        `state` is ``(h0, c0)``, or None for no initial state: the module is called as
        nn.LSTM is, ``module(input, state)``, or as ``module(input)`` when it takes no state
        (``Supports(initial_state=False)``). Override it for another calling convention:
        another argument order, keyword arguments, a result to rearrange into
        ``(output, (h_n, c_n))``."""
        if state is None and not self.supports.initial_state:
            return module(input)
        return module(input, state)

    def build(self, config: LSTMConfig, params: Mapping[str, np.ndarray], dtype: str):
        with warnings.catch_warnings():
            # nn.LSTM warns about dropout with one layer; that is a config we draw on purpose.
            warnings.simplefilter("ignore", UserWarning)
            module = self.make_module(config, TORCH_DTYPES[dtype])
        module.eval()  # dropout between layers must change nothing at evaluation time
        built = _BuiltTorchModule(self, config, module, params)
        built.check_parameters(TORCH_DTYPES[dtype])
        return built


class _Calls(torch.nn.Module):
    """The module as a submodule, called through the adapter's `call`: `functional_call`
    swaps the mapped tensors into it for the duration of that call."""

    def __init__(self, adapter: TorchAdapter, module: torch.nn.Module) -> None:
        super().__init__()
        self.adapter = adapter
        self.module = module

    def forward(self, input, state):
        return self.adapter.call(self.module, input, state)


class _BuiltTorchModule:
    def __init__(self, adapter: TorchAdapter, config, module, params) -> None:
        self.adapter, self.config, self.module = adapter, config, module
        self.params = {name: np.asarray(value) for name, value in params.items()}
        self._calls = _Calls(adapter, module)

    def with_parameters(self, params) -> _BuiltTorchModule:
        """The same module object called with other weights (see `parity.Built`)."""
        return _BuiltTorchModule(self.adapter, self.config, self.module, params)

    def check_parameters(self, dtype: torch.dtype) -> None:
        """Hold what ``module_parameters`` gives against the module's own parameters and
        buffers; raise WrongParameters naming every mismatch (see the module docstring)."""
        leaves = {n: _leaf(a, True) for n, a in self.params.items()}
        with torch.enable_grad():
            mapped = self.adapter.module_parameters(self.config, leaves)
        problems = parameter_mismatches(
            self.module, mapped, leaves, self.config, self.adapter.uncovered
        )
        if problems:
            more = f" ({len(problems) - 3} more)" if len(problems) > 3 else ""
            raise WrongParameters(
                f"module_parameters does not fit the module made for this config: "
                f"{'; '.join(problems[:3])}{more}"
            )

    def run_module(self, params, input, state):
        """The module on `params` (canonical names, torch tensors), `input` and `state`, as
        torch tensors (output, h_n, c_n): what the packed and strides checks call directly."""
        mapped = self.adapter.module_parameters(self.config, params)
        mapped = {f"module.{name}": value for name, value in mapped.items()}
        with warnings.catch_warnings():
            # nn.LSTM warns about dropout with one layer; that is a config we draw on purpose.
            warnings.simplefilter("ignore", UserWarning)
            result = functional_call(self._calls, mapped, (input, state), strict=False)
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
            output, h_n, c_n = self.run_module(params, leaves["input"], hx)
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
            output, h_n, c_n = self.run_module(params, leaves["input"], hx)
            if not torch.is_grad_enabled():  # else autograd's own error says nothing of why
                raise ChangesGlobalState(
                    "the implementation switched torch's grad mode off "
                    "(torch.set_grad_enabled(False)) in its forward, so no gradient reaches "
                    "its parameters (the harness restored it)"
                )
            loss = 0
            for what, g, t in zip(("output", "h_n", "c_n"), cotangents, (output, h_n, c_n)):
                if tuple(t.shape) != g.shape:
                    raise WrongShape(f"{what} has shape {tuple(t.shape)}; nn.LSTM gives {g.shape}")
                loss = loss + (torch.as_tensor(g, dtype=t.dtype) * t).sum()
            # loss is a tensor once a cotangent is added (int 0 with none: torch raises, as ever)
            grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)  # type: ignore[call-overload]
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


def _shape(t) -> str:
    return str(tuple(t.shape)) if hasattr(t, "shape") else type(t).__name__


def _sources(tensor: torch.Tensor, leaves: Mapping[str, torch.Tensor]) -> list[str]:
    """The canonical parameters `tensor` is computed from (by autograd), in order."""
    if not isinstance(tensor, torch.Tensor) or not tensor.requires_grad:
        return []
    names = list(leaves)
    with torch.enable_grad():
        grads = torch.autograd.grad(tensor.sum(), [leaves[n] for n in names], allow_unused=True)
    return [n for n, g in zip(names, grads) if g is not None]


def parameter_mismatches(
    module: torch.nn.Module,
    mapped: Mapping[str, torch.Tensor],
    leaves: Mapping[str, torch.Tensor],
    config: LSTMConfig,
    uncovered: tuple[str, ...] = (),
) -> list[str]:
    """What does not fit between `mapped` (``module_parameters``' result) and `module`'s own
    parameters and buffers, one sentence each, saying which side can be wrong."""
    own = dict(module.named_parameters())
    buffers = dict(module.named_buffers())
    canonical = parameter_shapes(config)
    problems, named_near = [], set()
    for key, value in mapped.items():
        target = own.get(key, buffers.get(key))
        if target is None:
            # A near name already given is no misspelling of this one (a module that does
            # not build one of two biases is not a typo for the other).
            free = [n for n in [*own, *buffers] if n not in mapped]
            close = difflib.get_close_matches(key, free, n=1, cutoff=0.8)
            if close:
                named_near.add(close[0])  # said once: not again as a parameter not given
                problems.append(
                    f"it gives `{key}`, which the module does not have: "
                    f"`{close[0]}` is the nearest name the module has (most likely "
                    f"a misspelling in module_parameters)"
                )
            else:
                names = ", ".join(list(own)[:6]) + (" ..." if len(own) > 6 else "")
                problems.append(
                    f"it gives `{key}`, which the module does not have (a key "
                    f"module_parameters names wrong, or a part the module does "
                    f"not build for this config; its parameters: {names})"
                )
            continue
        if not isinstance(value, torch.Tensor):
            problems.append(f"it gives `{key}` as a {type(value).__name__}, not a tensor")
            continue
        if tuple(value.shape) != tuple(target.shape):
            sources = _sources(value, leaves)
            src = (
                ", ".join(f"`{n}` {canonical.get(n, tuple(leaves[n].shape))}" for n in sources)
                or "no canonical parameter"
            )
            text = (
                f"the module builds `{key}` as {tuple(target.shape)}; module_parameters "
                f"maps nn.LSTM's {src} to {tuple(value.shape)}"
            )
            if len(sources) == 1 and tuple(value.shape) == tuple(leaves[sources[0]].shape):
                text += (
                    " unchanged, so the module is built with another shape than "
                    "nn.LSTM's for the same config (a finding about the implementation, "
                    f"if `{sources[0]}` is the right parameter for `{key}`)"
                )
            elif value.numel() == target.numel():
                text += (
                    " (as many elements: a transpose or reshape module_parameters "
                    "leaves out or adds, or a module built transposed)"
                )
            else:
                text += " (the module, or module_parameters' mapping, is wrong)"
            problems.append(text)
            continue
        if value.dtype != target.dtype:
            problems.append(
                f"the module holds `{key}` as {target.dtype}; the case's parameters "
                f"are {value.dtype} (the module is not made in the dtype "
                f"make_module was asked for)"
            )
    for name, p in own.items():
        if name in mapped or name in named_near:
            continue
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in uncovered):
            problems.append(
                f"the module's parameter `{name}` {tuple(p.shape)} is not given by "
                f"module_parameters, so it would keep the module's own initial "
                f"values (map it, or list it in the adapter's `uncovered`)"
            )
    return problems
