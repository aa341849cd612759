"""parity: check that an LSTM computes what torch.nn.LSTM computes.

Outputs, final states and gradients, on configurations drawn by hypothesis, with finite
differences checking each implementation's gradients against its own forward. See README.md.
"""

__version__ = "0.1.0"  # first: results.environment() reads it

import importlib as _importlib
import typing as _typing

# What `parity` exports, by the module it comes from, imported on first use (PEP 562): neither
# `import parity` nor `python -m parity` imports torch before it needs it (the CLI starts its
# worker processes, which import torch too, first: on two cores the two imports overlap).
_EXPORTS = {
    "CHECKS": "checks",
    "DTYPES": "adapter",
    "ENTRY_POINT_GROUP": "registry",
    "GATES": "adapter",
    "Adapter": "adapter",
    "Built": "adapter",
    "Case": "cases",
    "CaseSpec": "cases",
    "CheckRecord": "results",
    "Failure": "results",
    "ImplementationRecord": "results",
    "InvalidArgument": "adapter",
    "KnownDivergence": "expected",
    "LSTMConfig": "adapter",
    "Layout": "adapter",
    "LoadError": "registry",
    "NotInstalled": "registry",
    "PROPERTIES": "checks",
    "REFERENCE_CHECKS": "checks",
    "RunRecord": "results",
    "Supports": "adapter",
    "TorchAdapter": "torch_adapter",
    "Variant": "adapter",
    "as_adapter": "registry",
    "case_specs": "strategies",
    "check_implementation": "runner",
    "load": "registry",
    "load_results": "results",
    "lstm_configs": "strategies",
    "materialize": "cases",
    "parameter_shapes": "adapter",
    "registered": "registry",
}

__all__ = [
    "__version__",
    "CHECKS",
    "DTYPES",
    "ENTRY_POINT_GROUP",
    "GATES",
    "Adapter",
    "Built",
    "Case",
    "CaseSpec",
    "CheckRecord",
    "Failure",
    "ImplementationRecord",
    "InvalidArgument",
    "KnownDivergence",
    "LSTMConfig",
    "Layout",
    "LoadError",
    "NotInstalled",
    "PROPERTIES",
    "REFERENCE_CHECKS",
    "RunRecord",
    "Supports",
    "TorchAdapter",
    "Variant",
    "as_adapter",
    "case_specs",
    "check_implementation",
    "load",
    "load_results",
    "lstm_configs",
    "materialize",
    "parameter_shapes",
    "registered",
]


def __getattr__(name: str) -> _typing.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if _typing.TYPE_CHECKING:  # what a type checker and an IDE see: the same names, imported eagerly
    from .adapter import (
        DTYPES,
        GATES,
        Adapter,
        Built,
        InvalidArgument,
        Layout,
        LSTMConfig,
        Supports,
        Variant,
        parameter_shapes,
    )
    from .cases import Case, CaseSpec, materialize
    from .checks import CHECKS, PROPERTIES, REFERENCE_CHECKS
    from .expected import KnownDivergence
    from .registry import (
        ENTRY_POINT_GROUP,
        LoadError,
        NotInstalled,
        as_adapter,
        load,
        registered,
    )
    from .results import (
        CheckRecord,
        Failure,
        ImplementationRecord,
        RunRecord,
        load_results,
    )
    from .runner import check_implementation
    from .strategies import case_specs, lstm_configs
    from .torch_adapter import TorchAdapter
