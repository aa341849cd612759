"""The adapter interface every implementation meets, and the canonical parameter layout.

The canonical parameters are `torch.nn.LSTM`'s, by name and shape, as NumPy arrays:
``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``weight_hr_l{k}``,
with the suffix ``_reverse`` for the second direction. Gate row blocks come in PyTorch's order
i, f, g, o. An adapter maps these onto its implementation's own layout (one summed bias, ``x @ W``
instead of ``W x``, one matrix per gate, another gate order) and maps nothing back: the harness
asks for gradients with respect to the canonical names.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping, Protocol

import numpy as np

__all__ = [
    "DTYPES",
    "GATES",
    "GRADIENT_MODES",
    "Adapter",
    "Layout",
    "Built",
    "Cotangents",
    "LSTMConfig",
    "State",
    "Supports",
    "Variant",
    "parameter_shapes",
    "split_parameter_name",
]

GATES = ("i", "f", "g", "o")  # PyTorch's row-block order in weight_ih / weight_hh / biases
DTYPES = ("float64", "float32")
GRADIENT_MODES = ("autograd", "manual", "none")

State = tuple[np.ndarray, np.ndarray]
Cotangents = tuple[np.ndarray, np.ndarray, np.ndarray]  # for output, h_n, c_n


class InvalidArgument(ValueError):
    """An argument has a value the harness cannot use (hypothesis's InvalidArgument style)."""


@dataclass(frozen=True)
class LSTMConfig:
    """The constructor arguments of `torch.nn.LSTM` that shape the computation."""

    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    proj_size: int = 0

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidArgument(f"{name}={value!r}: must be an integer >= 1")
        if not isinstance(self.proj_size, int) or self.proj_size < 0:
            raise InvalidArgument(f"proj_size={self.proj_size!r}: must be an integer >= 0")
        if self.proj_size >= self.hidden_size:
            raise InvalidArgument(
                f"proj_size={self.proj_size}: must be smaller than hidden_size={self.hidden_size}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidArgument(f"dropout={self.dropout!r}: must be in [0, 1)")

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_hidden_size(self) -> int:
        """Width of h (and of each direction's output): proj_size when projecting."""
        return self.proj_size or self.hidden_size

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.output_hidden_size * self.num_directions

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _suffix(direction: int) -> str:
    return "_reverse" if direction else ""


def parameter_shapes(config: LSTMConfig) -> dict[str, tuple[int, ...]]:
    """The canonical parameters of `config`, in `torch.nn.LSTM`'s registration order."""
    hidden, out = config.hidden_size, config.output_hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(config.num_layers):
        for direction in range(config.num_directions):
            sfx = f"_l{layer}{_suffix(direction)}"
            shapes["weight_ih" + sfx] = (4 * hidden, config.layer_input_size(layer))
            shapes["weight_hh" + sfx] = (4 * hidden, out)
            if config.bias:
                shapes["bias_ih" + sfx] = (4 * hidden,)
                shapes["bias_hh" + sfx] = (4 * hidden,)
            if config.proj_size:
                shapes["weight_hr" + sfx] = (config.proj_size, hidden)
    return shapes


def split_parameter_name(name: str) -> tuple[str, int, int] | None:
    """``'weight_ih_l1_reverse'`` -> ``('weight_ih', 1, 1)``; None for a non-canonical name."""
    reverse = name.endswith("_reverse")
    stem = name[: -len("_reverse")] if reverse else name
    kind, sep, layer = stem.rpartition("_l")
    if not sep or not layer.isdigit():
        return None
    return kind, int(layer), int(reverse)


# Each feature's label: in a narrow terminal column (`parity list`), and in the report's matrix.
# A feature not named here is labelled by its name (underscores as spaces in the report).
FEATURE_LABELS: dict[str, tuple[str, str]] = {
    "multi_layer": ("layers", "layers"),
    "bidirectional": ("bidir", "bidirectional"),
    "projection": ("proj", "projection"),
    "no_bias": ("no-bias", "no bias"),
    "batch_first": ("batch_first", "batch_first"),
    "unbatched": ("unbatched", "unbatched"),
    "dropout": ("dropout", "dropout"),
    "float32": ("f32", "float32"),
    "float64": ("f64", "float64"),
    "initial_state": ("h0/c0", "initial state"),
}


def feature_label(feature: str, *, short: bool = False) -> str:
    """How `feature` (a `Supports` field, or a drawn feature) is labelled for a person."""
    if feature in FEATURE_LABELS:
        return FEATURE_LABELS[feature][0 if short else 1]
    return feature if short else feature.replace("_", " ")


@dataclass(frozen=True)
class Supports:
    """What an implementation can do. The harness draws only what is declared here.

    `gradients` says where gradients come from: ``"autograd"`` (torch autograd or another
    framework's), ``"manual"`` (a hand-written backward), or ``"none"`` (forward only: the harness
    then compares finite differences of the forward with the reference's gradients).

    `lengths` True: `Built.forward` and `Built.gradients` also take ``lengths=``, an int64
    array with one length per batch row (1..seq_len, in the batch's order, not sorted), the
    input being padded to seq_len with values that must not matter (docs/adapter-contract.md).
    False (the default): no call ever passes the keyword.

    `initial_state` False: the implementation takes no (h0, c0). No call then ever passes a
    state (``state`` is None in every `Built.forward` and `Built.gradients` call), the cases
    are drawn without one, and the checks that need a state to carry between calls
    (``step-by-step``, ``chunking``) are unsupported for that reason.
    """

    multi_layer: bool = True
    bidirectional: bool = True
    projection: bool = True
    no_bias: bool = True
    batch_first: bool = True
    unbatched: bool = True
    dropout: bool = True
    float32: bool = True
    float64: bool = True
    initial_state: bool = True
    # Takes a `PackedSequence` as nn.LSTM does (parity.packed): torch modules only, so off
    # unless declared or found by probing a drop-in look-alike.
    packed: bool = False
    # Takes padded input plus per-row lengths, ``forward(input, state, lengths=...)`` and
    # ``gradients(input, state, cotangents, lengths=...)`` (parity.lengths): declared only.
    # An adapter without it is never called with the keyword.
    lengths: bool = False
    gradients: Literal["autograd", "manual", "none"] = "autograd"

    def __post_init__(self) -> None:
        if self.gradients not in GRADIENT_MODES:
            raise InvalidArgument(f"gradients={self.gradients!r}: must be one of {GRADIENT_MODES}")
        if not (self.float32 or self.float64):
            raise InvalidArgument("float32=False, float64=False: an implementation needs a dtype")

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(d for d in DTYPES if getattr(self, d))

    def features(self) -> dict[str, bool]:
        """Feature name -> supported, for listings and the report."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.type == "bool"}

    def replace(self, **changes) -> Supports:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Layout:
    """How an implementation holds nn.LSTM's parameters: what the cross-framework table shows.

    Metadata for people porting weights (exported into the results JSON, rendered by
    `parity table`), stated by the adapter and tested against its converter
    (tests/convert): nothing the checks rely on. nn.LSTM's own is the default.
    """

    #: The gate blocks in the order the implementation stores them, nn.LSTM's names
    #: (i, f, g, o; Keras calls g "c", ONNX stores i, o, f, c).
    gate_order: str = "i, f, g, o"
    #: 2: a bias on each side (bias_ih and bias_hh), as nn.LSTM; 1: one per gate (their sum).
    biases: int = 2
    #: The weights' form: ``"W x, (4H, I) and (4H, H)"`` is nn.LSTM's.
    weights: str = "W x: weight_ih (4H, I), weight_hh (4H, H), nn.LSTM's names"

    def __post_init__(self) -> None:
        if sorted(g.strip() for g in self.gate_order.split(",")) != sorted(GATES):
            raise InvalidArgument(
                f"gate_order={self.gate_order!r}: must name the gates "
                f"{', '.join(GATES)} once each, comma-separated"
            )
        if self.biases not in (1, 2):
            raise InvalidArgument(f"biases={self.biases!r}: must be 1 or 2")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Variant:
    """An LSTM variant: parameters it adds to (or lacks from) `nn.LSTM`, and where it reduces to it.

    `reduce` takes drawn parameters (canonical plus extra) and returns them in the reducing
    setting (for a peephole cell: peephole weights zero), where the variant must equal
    `nn.LSTM` run on the canonical part. Finite differences check all of its gradients, extra
    parameters included, in every setting.

    Where the reducing setting is a configuration of the implementation and not only parameter
    values (gate networks of one linear layer instead of several), `reducing_adapter` is that
    configuration: the comparisons with `nn.LSTM` build it, on the parameters `reduce` returns
    (it takes those its `parameter_shapes` names), while finite differences keep building the
    variant itself, as drawn. Cases are drawn from the variant's `supports`.
    """

    description: str
    reducing_setting: str
    extra_parameters: Callable[[LSTMConfig], Mapping[str, tuple[int, ...]]]
    reduce: Callable[[LSTMConfig, dict[str, np.ndarray]], dict[str, np.ndarray]]
    lacks: Callable[[LSTMConfig], frozenset[str]] = field(default=lambda config: frozenset())
    reducing_adapter: Adapter | None = None


class Built(Protocol):
    """One implementation instance, built for one config with one set of weights.

    The harness calls the same instance more than once; it must not carry state between calls.
    Arrays in and out are NumPy arrays of the case's dtype, in `nn.LSTM`'s layouts: input
    (T, B, I), (B, T, I) when batch_first, (T, I) unbatched; state (L*D, B, H_out), (L*D, B, H);
    output (T, B, D*H_out); h_n, c_n like the state.
    """

    def forward(
        self, input: np.ndarray, state: State | None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """The forward pass, `(output, (h_n, c_n))`; `state` None means no initial state given."""

    def gradients(
        self, input: np.ndarray, state: State | None, cotangents: Cotangents
    ) -> dict[str, np.ndarray]:
        """Gradients of ``sum(g_out * output) + sum(g_h * h_n) + sum(g_c * c_n)``.

        Keys: ``"input"``, ``"h0"`` and ``"c0"`` (when a state is given) and every parameter name,
        each in the shape of what it is the gradient of. A name missing or not given is
        ``wrong-structure``, another shape ``wrong-shape`` (docs/adapter-contract.md).
        Needed only when `Supports.gradients` is not ``"none"``.
        """

    # With `Supports.lengths`, both also take ``lengths=None``: an int64 array (B,), each row's
    # length in the batch's order; the input is padded to seq_len. Then only what nn.LSTM
    # computes on the same batch packed is compared: output at each row's valid steps, h_n and
    # c_n at each row's own last step (the reverse direction's at its first), and the
    # gradients (the cotangent of output is zero at padded steps) of the valid input, h0, c0
    # and every parameter. The keyword is passed only when lengths are given.

    # Optional: ``with_parameters(params) -> Built``, the same instance (its module, its caches)
    # called with other weights, as after ``load_state_dict`` or an optimizer step. Where a built
    # instance has it, the harness's first call on each case uses other weights through it, so
    # that weights prepared once and cached (packed, transposed, fused) and never refreshed show.
    # Module look-alikes (`TorchAdapter`) have it.


class Adapter(abc.ABC):
    """The one door into the harness: say what you support, and build instances on request."""

    #: Set by the registry from the entry point name, or by the adapter itself.
    name: str = ""
    #: How to load it again (a registered name or ``module:attr``), for reproduction commands.
    target: str = ""
    description: str = ""
    supports: Supports = Supports()
    variant: Variant | None = None
    #: Top-level modules it imports (lazily, in `build`), checked before it is instantiated:
    #: when one is missing it is "not installed" (skipped unless named), not an error.
    requires: tuple[str, ...] = ()
    #: What installs them, for the message: ``"parity[jax]"``, ``"mypkg[gpu]"``.
    install: str = ""
    #: Findings declared in advance (`parity.expected.KnownDivergence`), each required to still
    #: happen: shown apart as known, and failing as "fixed" once it no longer does.
    known_divergences: tuple = ()
    #: How it holds nn.LSTM's parameters (`Layout`), for the cross-framework table; None: not
    #: stated.
    layout: Layout | None = None

    @abc.abstractmethod
    def build(self, config: LSTMConfig, params: Mapping[str, np.ndarray], dtype: str) -> Built:
        """An instance for `config` holding `params` (canonical names, plus a variant's extras).

        Raise NotImplementedError for a configuration the implementation does not support: the
        harness then records that case as unsupported.
        """

    def parameter_shapes(self, config: LSTMConfig) -> dict[str, tuple[int, ...]]:
        """The parameters this implementation takes: canonical, less what a variant lacks, plus
        extras."""
        shapes = parameter_shapes(config)
        if self.variant is not None:
            for name in self.variant.lacks(config):
                shapes.pop(name, None)
            shapes.update(self.variant.extra_parameters(config))
        return shapes

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
