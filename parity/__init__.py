"""parity: check that an LSTM computes what torch.nn.LSTM computes.

Outputs, final states and gradients, on configurations drawn by hypothesis, with finite
differences checking each implementation's gradients against its own forward. See README.md.
"""

__version__ = "0.1.0"

from .adapter import (  # noqa: E402 - __version__ first: results.environment() reads it
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
from .cases import Case, CaseSpec, materialize  # noqa: E402
from .checks import CHECKS, PROPERTIES, REFERENCE_CHECKS  # noqa: E402
from .expected import KnownDivergence  # noqa: E402
from .registry import (  # noqa: E402
    ENTRY_POINT_GROUP,
    LoadError,
    NotInstalled,
    as_adapter,
    load,
    registered,
)
from .results import RunRecord, load_results  # noqa: E402
from .runner import check_implementation, reproduce_command  # noqa: E402
from .strategies import case_specs, lstm_configs  # noqa: E402
from .torch_adapter import TorchAdapter  # noqa: E402

__all__ = [
    "CHECKS",
    "DTYPES",
    "ENTRY_POINT_GROUP",
    "GATES",
    "Adapter",
    "Built",
    "Case",
    "CaseSpec",
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
    "reproduce_command",
]
