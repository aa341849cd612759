"""parity: check that an LSTM computes what torch.nn.LSTM computes.

Outputs, final states and gradients, on configurations drawn by hypothesis, with finite
differences checking each implementation's gradients against its own forward. See README.md.
"""

__version__ = "0.1.0"

from .adapter import (  # __version__ first: results.environment() reads it
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

__all__ = [
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
    "__version__",
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
