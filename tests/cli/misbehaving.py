"""Look-alikes that misbehave rather than compute wrong numbers: one per misbehaviour status.

Each is a drop-in nn.LSTM (a subclass, so its numbers are right where it behaves) that goes
wrong in one way. Those that hang or crash do it on batched input only: parity probes a
look-alike's unbatched support with a call at load time, and these must get past loading to
show what the checks do with them (`CrashesOnLoad` is the one that does not).
"""

import ctypes
import os
import time

import torch


class Raises(torch.nn.LSTM):
    """Raises from forward."""

    def forward(self, input, hx=None):
        raise RuntimeError("boom: the kernel is not built for this shape")


class ReturnsOutputOnly(torch.nn.LSTM):
    """Returns the output alone, not (output, (h_n, c_n))."""

    def forward(self, input, hx=None):
        return super().forward(input, hx)[0]


class ReturnsNaN(torch.nn.LSTM):
    """Returns NaN in the output."""

    def forward(self, input, hx=None):
        output, state = super().forward(input, hx)
        return output * float("nan"), state


class WrongShape(torch.nn.LSTM):
    """Returns a batched output batch-first when asked for sequence-first."""

    def forward(self, input, hx=None):
        output, state = super().forward(input, hx)
        if input.dim() == 3 and not self.batch_first:
            output = output.transpose(0, 1)
        return output, state


class ReturnsFloat64(torch.nn.LSTM):
    """Computes in float32 but returns float64 (a silent cast)."""

    def forward(self, input, hx=None):
        output, (h_n, c_n) = super().forward(input, hx)
        return output.double(), (h_n.double(), c_n.double())


class Nondeterministic(torch.nn.LSTM):
    """Scales every output by fresh noise: the same call twice differs, gradients too."""

    def forward(self, input, hx=None):
        output, state = super().forward(input, hx)
        return output * (1 + 1e-3 * torch.randn_like(output)), state


class MutatesInput(torch.nn.LSTM):
    """Right results, but scales its input tensor in place afterwards."""

    def forward(self, input, hx=None):
        result = super().forward(input, hx)
        input.data.mul_(0.5)
        return result


class MutatesWeights(torch.nn.LSTM):
    """Right results, but clips the weights it was given in place afterwards."""

    def forward(self, input, hx=None):
        result = super().forward(input, hx)
        self.weight_hh_l0.data.clamp_(-0.01, 0.01)
        return result


def _note_pid():
    """Where a test asks for it, say which process is about to hang or die (a line each)."""
    path = os.environ.get("PARITY_TEST_PIDFILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")


class Hangs(torch.nn.LSTM):
    """Never returns from a batched forward."""

    def forward(self, input, hx=None):
        if input.dim() == 3:
            _note_pid()
            while True:
                time.sleep(1)
        return super().forward(input, hx)


class AlsoHangs(Hangs):
    """Hangs under another name: two hangs side by side."""


class KillsItself(torch.nn.LSTM):
    """Ends its own process (os._exit) on a batched forward."""

    def forward(self, input, hx=None):
        if input.dim() == 3:
            os._exit(3)
        return super().forward(input, hx)


class Segfaults(torch.nn.LSTM):
    """Reads address 0 on a batched forward: a segmentation fault."""

    def forward(self, input, hx=None):
        if input.dim() == 3:
            ctypes.string_at(0)
        return super().forward(input, hx)


class CrashesOnLoad(torch.nn.LSTM):
    """Ends its own process as soon as it is constructed."""

    def __init__(self, *args, **kwargs):
        os._exit(4)


class DeclinesLongSequences(torch.nn.LSTM):
    """Raises NotImplementedError from forward on sequences over 4 steps: unsupported cases,
    not an error."""

    def forward(self, input, hx=None):
        if input.shape[1 if self.batch_first and input.dim() == 3 else 0] > 4:
            raise NotImplementedError("sequences over 4 steps")
        return super().forward(input, hx)



class WrongOnWideInput(torch.nn.LSTM):
    """Wrong (output off by 0.5) only where the input is wider than the hidden state by more
    than 8: no explicit edge case is, so only drawn cases find it (the example database test).
    One layer, one direction: the edge cases stay cheap."""

    def __init__(self, *args, num_layers=1, bidirectional=False, proj_size=0, **kwargs):
        if num_layers > 1 or bidirectional or proj_size:
            raise NotImplementedError("one layer, one direction")
        super().__init__(*args, **kwargs)

    def forward(self, input, hx=None):
        output, state = super().forward(input, hx)
        if self.input_size > self.hidden_size + 8:
            output = output + 0.5
        return output, state


class OwnParameterNames(torch.nn.Module):
    """Takes nn.LSTM's arguments but names its parameters its own way: not a drop-in."""

    def __init__(self, input_size, hidden_size, **kwargs):
        super().__init__()
        self.W = torch.nn.Parameter(torch.zeros(input_size, 4 * hidden_size))

    def forward(self, input, hx=None):
        raise AssertionError("never called: parity refuses it at load time")


NOT_AN_LSTM = 42
AN_INSTANCE = torch.nn.LSTM(2, 3)
