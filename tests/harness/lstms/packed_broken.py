"""Packed-sequence LSTMs with one classic variable-length bug each: the harness must catch each
with the `packed` check and name the cause in `parity.packed.MISTAKES` given here."""

from __future__ import annotations

from .packed_correct import MaskedPackedLSTM, SortedPackedLSTM

__all__ = ["PACKED_BROKEN"]


class FinalStateAfterPadding(MaskedPackedLSTM):
    """The forward direction's state runs on through the padding: h_n is the state at step T."""

    forward_through_padding = True


class ReverseFromPaddedEnd(MaskedPackedLSTM):
    """The reverse direction starts at the padded end, not at each sequence's last step."""

    reverse_from_padded_end = True


class LengthsOffByOne(MaskedPackedLSTM):
    """A mask `t <= length`: every sequence runs one step into the padding."""

    length_offset = 1


class LengthsOneShort(MaskedPackedLSTM):
    """A mask `t < length - 1`: every sequence stops one step early."""

    length_offset = -1


class FinalStateSortedOrder(SortedPackedLSTM):
    """h_n, c_n left in the length-sorted order of the packed data."""

    unsort_final = False


class InitialStateNotPermuted(SortedPackedLSTM):
    """hx used in the order it was given, against length-sorted data."""

    permute_hx = False


class StateDetachedPastLength(MaskedPackedLSTM):
    """The state a row carries on past its last step is detached: its forward is right, but
    h_n's and c_n's gradients never reach a shorter sequence's steps (backward only)."""

    detach_past_length = True


# class -> the name of the mistake in parity.packed.MISTAKES it must be diagnosed as
PACKED_BROKEN = {
    FinalStateAfterPadding: "final state after padding",
    ReverseFromPaddedEnd: "reverse from padded end",
    LengthsOffByOne: "one step long",
    LengthsOneShort: "one step short",
    FinalStateSortedOrder: "sorted h_n",
    InitialStateNotPermuted: "unpermuted h0",
}
