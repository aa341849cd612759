"""Look-alikes that declare known divergences (`parity_known_divergences`), for
tests/harness/test_known_divergences.py.

Each pairs a bug from broken.py (or none) with a declaration: declared and still happening,
declared and fixed, declared next to an undeclared bug outside the combination, and inside it.
"""

from __future__ import annotations

from parity import KnownDivergence

from .broken import ForgetBiasPlusOne, ReverseInputNotFlipped
from .correct import FusedLSTM

REVERSE = KnownDivergence(
    cause="the reverse direction runs forward in time (its input is never flipped)",
    checks=("output", "h_n", "c_n"), where={"bidirectional": True}, status="fail")


class DeclaredReverse(ReverseInputNotFlipped):
    """The reverse direction never flips its input, and says so."""

    parity_known_divergences = (REVERSE,)


class FixedReverse(FusedLSTM):
    """Correct, but still declares the reverse-direction divergence (fixed upstream)."""

    parity_known_divergences = (REVERSE,)


class DeclaredReverseAndForgetBias(ForgetBiasPlusOne):
    """+1 on the forget gate everywhere (undeclared), the reverse direction declared."""

    parity_known_divergences = (REVERSE,)


RAISES_LONG = KnownDivergence(
    cause="raises on bidirectional sequences longer than 5 steps",
    checks=("output",), where={"bidirectional": True}, status="error",
    match="bidirectional sequences longer than 5")


def _refuse_long_bidirectional(module, input) -> None:
    steps = input.shape[1] if module.batch_first and input.dim() == 3 else input.shape[0]
    if module.bidirectional and steps > 5:
        raise RuntimeError("this LSTM does not support bidirectional sequences longer than 5 "
                           "steps")


class DeclaredRaiseButAlsoWrong(ReverseInputNotFlipped):
    """Bidirectional: raises on sequences longer than 5 steps (declared), and on shorter ones
    runs the reverse direction forward in time (not declared: inside the same combination)."""

    parity_known_divergences = (RAISES_LONG,)

    def forward(self, input, hx=None):
        _refuse_long_bidirectional(self, input)
        return super().forward(input, hx)


class DeclaredRaise(FusedLSTM):
    """Raises on bidirectional sequences longer than 5 steps (declared); otherwise correct."""

    parity_known_divergences = (RAISES_LONG,)

    def forward(self, input, hx=None):
        _refuse_long_bidirectional(self, input)
        return super().forward(input, hx)
