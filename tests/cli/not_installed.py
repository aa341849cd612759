"""An adapter whose framework is not installed anywhere (for tests/cli/test_not_installed.py)."""

from parity import Adapter, Supports


class FrameworkAdapter(Adapter):
    description = "an LSTM in a framework nobody has installed"
    supports = Supports(projection=False)
    requires = ("numpy", "parity_no_such_framework")
    install = "parity[nowhere]"

    def build(self, config, params, dtype):  # never reached: its framework is missing
        raise AssertionError("built although its framework is not installed")
