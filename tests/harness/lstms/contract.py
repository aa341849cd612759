"""LSTMs and adapters for the adapter contract (docs/adapter-contract.md).

- `CellStack` is an LSTM in a layout of its own (per layer and direction, an ``igates`` and an
  ``hgates`` linear layer), computed as its own loop: `CellStackAdapter` maps nn.LSTM's
  parameters onto it and must pass; each ``*Adapter`` below it gets one thing about the
  mapping or the module wrong, as real adapters do, and must be ``wrong-parameters``.
- `NoStateLSTM` takes no initial state (``forward(input)``), with nn.LSTM's parameter names:
  as a look-alike (probed) and through `NoStateAdapter` (declared, with its own `call`).
- Look-alikes that change torch's process-wide settings, harmful and harmless.
- `RenamedGradientsAdapter` and friends: plain adapters whose gradients come back under the
  wrong names or shapes.
"""

from __future__ import annotations

import torch
from torch import nn

from parity import Adapter, Supports, TorchAdapter

DIRECTIONS = ("fw", "bw")


def _run_direction(w_ih, w_hh, b_ih, b_hh, x: torch.Tensor, h: torch.Tensor,
                   c: torch.Tensor, reverse: bool, cell_tanh: bool = True):
    """One direction of one layer over (T, B, I): the input part of every step in one product,
    then the recurrence, gates in i, f, g, o order."""
    T = x.shape[0]
    pre = x @ w_ih.t()  # (T, B, 4H)
    if b_ih is not None:
        pre = pre + (b_ih + b_hh)
    steps = range(T - 1, -1, -1) if reverse else range(T)
    out = [None] * T
    for t in steps:
        i, f, g, o = (pre[t] + h @ w_hh.t()).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * (torch.tanh(c) if cell_tanh else c)
        out[t] = h
    output = torch.stack(out) if T else x.new_zeros((0, x.shape[1], h.shape[-1]))
    return output, h, c


def _lstm(x, hx, weights, num_layers: int, directions: int, hidden: int, batch_first: bool,
          cell_tanh: bool = True):
    """nn.LSTM's function, `weights[layer][direction]` = (w_ih, w_hh, b_ih, b_hh)."""
    unbatched = x.dim() == 2
    x = x.unsqueeze(1) if unbatched else x
    if batch_first and not unbatched:
        x = x.transpose(0, 1)
    if x.shape[0] == 0:
        raise ValueError("seq_len=0: an empty sequence (nn.LSTM raises too)")
    L, D, H = num_layers, directions, hidden
    if hx is None:
        h0 = c0 = x.new_zeros((L * D, x.shape[1], H))
    else:
        h0, c0 = (s.unsqueeze(1) if unbatched else s for s in hx)
    hs, cs = [], []
    for layer in range(L):
        outs = []
        for k in range(D):
            row = layer * D + k
            out, h, c = _run_direction(*weights[layer][k], x, h0[row], c0[row], bool(k),
                                       cell_tanh)
            outs.append(out)
            hs.append(h)
            cs.append(c)
        x = torch.cat(outs, dim=-1)
    h_n, c_n = torch.stack(hs), torch.stack(cs)
    if batch_first and not unbatched:
        x = x.transpose(0, 1)
    if unbatched:
        x, h_n, c_n = x.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
    return x, (h_n, c_n)


class CellStack(nn.Module):
    """A stacked, optionally bidirectional LSTM with parameters of its own names.

    `narrow_upper_reverse` builds the reverse direction of layers >= 1 with input width H
    instead of 2H: the torch.ao.nn.quantizable.LSTM bug (its own forward then crashes)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 bidirectional=False, narrow_upper_reverse=False, extra=False):
        super().__init__()
        self.hidden_size, self.num_layers, self.batch_first = hidden_size, num_layers, batch_first
        self.directions = DIRECTIONS[: 2 if bidirectional else 1]
        self.layers = nn.ModuleList()
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * len(self.directions)
            cells = nn.ModuleDict()
            for d in self.directions:
                w = hidden_size if (narrow_upper_reverse and layer and d == "bw") else width
                cells[d] = nn.ModuleDict({"igates": nn.Linear(w, 4 * hidden_size, bias=bias),
                                          "hgates": nn.Linear(hidden_size, 4 * hidden_size,
                                                              bias=bias)})
            self.layers.append(cells)
        if extra:  # a parameter nn.LSTM has no counterpart for, left as the module holds it
            self.temperature = nn.Parameter(torch.ones(()))

    def forward(self, input, hx=None):
        weights = [[(cells[d]["igates"].weight, cells[d]["hgates"].weight,
                     cells[d]["igates"].bias, cells[d]["hgates"].bias)
                    for d in self.directions] for cells in self.layers]
        output, state = _lstm(input, hx, weights, self.num_layers, len(self.directions),
                              self.hidden_size, self.batch_first)
        if getattr(self, "temperature", None) is not None:
            output = output * self.temperature
        return output, state


class CellStackAdapter(TorchAdapter):
    """`CellStack`, its parameters mapped by name from nn.LSTM's (correct)."""

    description = "CellStack: an LSTM with its own parameter names, mapped by an adapter"
    supports = Supports(projection=False)
    module_options: dict = {}

    def make_module(self, config, dtype):
        if config.proj_size:
            raise NotImplementedError("no projection")
        return CellStack(config.input_size, config.hidden_size, config.num_layers, config.bias,
                         config.batch_first, config.bidirectional,
                         **self.module_options).to(dtype)

    def module_parameters(self, config, params):
        out = {}
        for layer in range(config.num_layers):
            for k in range(config.num_directions):
                sfx = f"_l{layer}{'_reverse' if k else ''}"
                at = f"layers.{layer}.{DIRECTIONS[k]}."
                out[at + "igates.weight"] = params["weight_ih" + sfx]
                out[at + "hgates.weight"] = params["weight_hh" + sfx]
                if config.bias:
                    out[at + "igates.bias"] = params["bias_ih" + sfx]
                    out[at + "hgates.bias"] = params["bias_hh" + sfx]
        return out


class MisspelledKeyAdapter(CellStackAdapter):
    """Maps layer 0's recurrent weight to `hgate.weight` (one letter short)."""

    def module_parameters(self, config, params):
        out = super().module_parameters(config, params)
        out["layers.0.fw.hgate.weight"] = out.pop("layers.0.fw.hgates.weight")
        return out


class MissingKeyAdapter(CellStackAdapter):
    """Leaves out the recurrent biases (the module would keep its random init for them)."""

    def module_parameters(self, config, params):
        return {k: v for k, v in super().module_parameters(config, params).items()
                if not k.endswith("hgates.bias")}


class TransposedAdapter(CellStackAdapter):
    """Hands the input weights over as x @ W layouts want them: transposed, for a module that
    computes W x."""

    def module_parameters(self, config, params):
        return {k: v.t() if k.endswith("igates.weight") else v
                for k, v in super().module_parameters(config, params).items()}


class IgnoresDtypeAdapter(CellStackAdapter):
    """Makes the module in torch's default dtype (float32), whatever the case asks for."""

    def make_module(self, config, dtype):
        return super().make_module(config, torch.float32)


class NoRecurrentBiasAdapter(CellStackAdapter):
    """A right mapping onto a module that never builds its recurrent biases."""

    def make_module(self, config, dtype):
        module = super().make_module(config, dtype)
        for cells in module.layers:
            for cell in cells.values():
                cell["hgates"].bias = None
        return module


class NarrowUpperReverseAdapter(CellStackAdapter):
    """A right mapping onto a module built wrong: layers >= 1 of the reverse direction take H
    inputs instead of 2H (torch.ao.nn.quantizable.LSTM, num_layers >= 2, bidirectional)."""

    module_options = {"narrow_upper_reverse": True}


class UncoveredAdapter(CellStackAdapter):
    """A module with a parameter nn.LSTM has no counterpart for, declared `uncovered` and held
    at 1 by the module (correct)."""

    module_options = {"extra": True}
    uncovered = ("temperature",)


class UndeclaredExtraAdapter(CellStackAdapter):
    """The same module with the extra parameter not declared: a module parameter not given."""

    module_options = {"extra": True}


# -- no initial state -----------------------------------------------------------------------
class _DropIn(nn.Module):
    """A drop-in look-alike with nn.LSTM's parameter names, computed by `_lstm`'s loop."""

    cell_tanh = True

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=None):
        super().__init__()
        if proj_size:
            raise NotImplementedError("no projection")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.bidirectional = bidirectional
        D = 2 if bidirectional else 1
        bound = hidden_size ** -0.5
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * D
            for k in range(D):
                sfx = f"_l{layer}{'_reverse' if k else ''}"
                shapes = {"weight_ih": (4 * hidden_size, width),
                          "weight_hh": (4 * hidden_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(4 * hidden_size,), bias_hh=(4 * hidden_size,))
                for name, shape in shapes.items():
                    setattr(self, name + sfx, nn.Parameter(
                        torch.empty(shape, dtype=dtype).uniform_(-bound, bound)))

    def _weights(self):
        out = []
        for layer in range(self.num_layers):
            row = []
            for k in range(2 if self.bidirectional else 1):
                sfx = f"_l{layer}{'_reverse' if k else ''}"
                row.append((getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx),
                            getattr(self, "bias_ih" + sfx, None),
                            getattr(self, "bias_hh" + sfx, None)))
            out.append(row)
        return out

    def _run(self, input, hx=None):
        return _lstm(input, hx, self._weights(), self.num_layers,
                     2 if self.bidirectional else 1, self.hidden_size, self.batch_first,
                     self.cell_tanh)

    def forward(self, input, hx=None):
        return self._run(input, hx)


class NoStateLSTM(_DropIn):
    """A correct LSTM with no initial-state input: ``forward(input)`` only."""

    def forward(self, input):
        return self._run(input)


class NoStateNoTanhLSTM(NoStateLSTM):
    """No initial state, and the cell output without tanh (h = o * c): wrong."""

    cell_tanh = False


class DeclinesStateLSTM(_DropIn):
    """Takes hx in its signature and declines it, as the README says to decline a feature."""

    def forward(self, input, hx=None):
        if hx is not None:
            raise NotImplementedError("no initial state")
        return self._run(input)


class NoStateAdapter(TorchAdapter):
    """`NoStateLSTM` declared through an adapter: no initial state, its own `call`."""

    description = "an LSTM called as module(input), declared Supports(initial_state=False)"
    supports = Supports(projection=False, initial_state=False)

    def make_module(self, config, dtype):
        if config.proj_size:
            raise NotImplementedError("no projection")
        kwargs = {k: v for k, v in config.as_dict().items() if k != "proj_size"}
        return NoStateLSTM(**kwargs, dtype=dtype)

    def call(self, module, input, state):
        assert state is None, "a state was passed to an implementation that takes none"
        return module(input)


# -- process-wide torch settings ------------------------------------------------------------
class SwitchesGradOff(nn.LSTM):
    """nn.LSTM's numbers; its constructor switches autograd off process-wide (a notebook
    habit)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        torch.set_grad_enabled(False)


class SwitchesGradOffInForward(nn.LSTM):
    """nn.LSTM's numbers; its forward switches autograd off process-wide."""

    def forward(self, input, hx=None):
        torch.set_grad_enabled(False)
        return super().forward(input, hx)


class SetsDefaultDtype(nn.LSTM):
    """nn.LSTM's numbers; its constructor makes float64 the default dtype process-wide."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        torch.set_default_dtype(torch.float64)


class SetsThreads(_DropIn):
    """Correct; tunes torch's thread count for its own speed (harmless)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        torch.set_num_threads(torch.get_num_threads() + 1)


class BatchMajorOutputLSTM(_DropIn):
    """Returns a batched output batch-first when asked for sequence-first (wrong shape)."""

    def forward(self, input, hx=None):
        output, state = self._run(input, hx)
        if input.dim() == 3 and not self.batch_first and input.shape[0] != input.shape[1]:
            output = output.transpose(0, 1)
        return output, state


# -- plain adapters: the gradients' names and shapes ------------------------------------------
class _Renaming:
    def __init__(self, built, rename):
        self.built, self.rename = built, rename

    def forward(self, input, state):
        return self.built.forward(input, state)

    def gradients(self, input, state, cotangents):
        return self.rename(self.built.gradients(input, state, cotangents))


class _PlainAdapter(Adapter):
    """A plain adapter around `CellStackAdapter`'s instances, its gradients passed through
    `rename`."""

    supports = Supports(projection=False)

    def rename(self, grads):
        return grads

    def build(self, config, params, dtype):
        return _Renaming(CellStackAdapter().build(config, params, dtype), self.rename)


class PlainAdapter(_PlainAdapter):
    """Correct: gradients under the names they were asked for."""


class RenamedGradientsAdapter(_PlainAdapter):
    """Returns the gradient of weight_ih_l0 under its own module's name."""

    def rename(self, grads):
        grads["layers.0.fw.igates.weight"] = grads.pop("weight_ih_l0")
        return grads


class TransposedGradientAdapter(_PlainAdapter):
    """Returns the gradient of weight_hh_l0 transposed (x @ W layout)."""

    def rename(self, grads):
        grads["weight_hh_l0"] = grads["weight_hh_l0"].T.copy()
        return grads


# -- another calling convention ---------------------------------------------------------------
class KeywordOnlyLSTM(_DropIn):
    """A correct LSTM whose forward takes keyword arguments only."""

    def forward(self, *, sequence, hidden=None):
        return self._run(sequence, hidden)


class KeywordAdapter(TorchAdapter):
    """`KeywordOnlyLSTM`, called through `call` as it wants to be called (correct)."""

    description = "an LSTM called with keyword arguments, adapted by TorchAdapter.call"
    supports = Supports(projection=False)

    def make_module(self, config, dtype):
        if config.proj_size:
            raise NotImplementedError("no projection")
        kwargs = {k: v for k, v in config.as_dict().items() if k != "proj_size"}
        return KeywordOnlyLSTM(**kwargs, dtype=dtype)

    def call(self, module, input, state):
        return module(sequence=input, hidden=state)


class KeywordWithoutCallAdapter(KeywordAdapter):
    """The same module, `call` not overridden: the default positional call cannot work."""

    call = TorchAdapter.call


# -- an LSTM from the wild: torch.ao.nn.quantizable.LSTM (ships inside torch) -------------------
class QuantizableAdapter(TorchAdapter):
    """torch.ao.nn.quantizable.LSTM in float, its parameters mapped by name. Its layers >= 1
    are built with input width H instead of 2H when bidirectional (its own forward then
    crashes): the mapping is right, the module is not."""

    description = "torch.ao.nn.quantizable.LSTM (float), mapped by name"
    supports = Supports(projection=False, unbatched=False, float64=False, dropout=False)

    def make_module(self, config, dtype):
        from torch.ao.nn.quantizable import LSTM

        if config.proj_size or dtype != torch.float32:
            raise NotImplementedError("float32, no projection")
        return LSTM(config.input_size, config.hidden_size, config.num_layers, config.bias,
                    config.batch_first, bidirectional=config.bidirectional)

    def module_parameters(self, config, params):
        out = {}
        for layer in range(config.num_layers):
            for k, side in enumerate(("layer_fw", "layer_bw")[:config.num_directions]):
                sfx = f"_l{layer}{'_reverse' if k else ''}"
                at = f"layers.{layer}.{side}.cell."
                out[at + "igates.weight"] = params["weight_ih" + sfx]
                out[at + "hgates.weight"] = params["weight_hh" + sfx]
                if config.bias:
                    out[at + "igates.bias"] = params["bias_ih" + sfx]
                    out[at + "hgates.bias"] = params["bias_hh" + sfx]
        return out


class QuantizableUnidirectionalAdapter(QuantizableAdapter):
    """The same, where it is right: one direction."""

    supports = QuantizableAdapter.supports.replace(bidirectional=False)
