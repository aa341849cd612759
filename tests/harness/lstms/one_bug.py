"""More one-bug look-alikes, of the kinds users write: each states the likely cause it must get.

Like `broken.py` (same base, same attributes), and each class also carries:

- ``expected_status``: the status every check in ``expected_checks`` must have;
- ``expected_cause``: a phrase the likely cause of each of those checks must contain
  (``parity.diagnose`` prints a cause only when the reference rerun with that very mistake
  gives what the implementation gave, or the structure is unambiguous);
- ``must_pass``: checks that must pass all the same (a diagnosis that blames them is wrong).
"""

from __future__ import annotations

import torch

from .correct import TextbookLSTM

__all__ = ["ONE_BUG"]  # extended below


class CellOutputWithoutTanh(TextbookLSTM):
    """Computes h = o * c, leaving out the tanh of the cell state."""

    expected_checks = ("output", "h_n")
    expected_status = "fail"
    expected_cause = "h = o * c"
    must_pass = ()
    features = ()

    def hidden_update(self, o, c, where):
        return o * c


class NoOutputGate(TextbookLSTM):
    """Computes h = tanh(c), leaving out the output gate."""

    expected_checks = ("output", "h_n")
    expected_status = "fail"
    expected_cause = "without the output gate"
    must_pass = ()
    features = ()

    def hidden_update(self, o, c, where):
        return self.tanh(c)


class H0Ignored(TextbookLSTM):
    """Reads c0 from hx but starts h from zeros."""

    expected_checks = ("output",)
    expected_status = "fail"
    expected_cause = "h0 is ignored"
    must_pass = ()
    features = ("initial state",)

    def initial_state(self, hx, batch, x):
        h0, c0 = super().initial_state(hx, batch, x)
        return torch.zeros_like(h0), c0


class C0Ignored(TextbookLSTM):
    """Reads h0 from hx but starts c from zeros."""

    expected_checks = ("output",)
    expected_status = "fail"
    expected_cause = "c0 is ignored (zeros"
    must_pass = ()
    features = ("initial state",)

    def initial_state(self, hx, batch, x):
        h0, c0 = super().initial_state(hx, batch, x)
        return h0, torch.zeros_like(c0)


class StateRowsByLayerOnly(TextbookLSTM):
    """Picks the initial state's row by layer alone (h0[layer]), so both directions of a
    bidirectional LSTM read the same row."""

    expected_checks = ("output",)
    expected_status = "fail"
    expected_cause = "indexed by layer only"
    must_pass = ()
    features = ("bidirectional", "initial state")

    def initial_state(self, hx, batch, x):
        h0, c0 = super().initial_state(hx, batch, x)
        if hx is None or self.num_directions == 1:
            return h0, c0
        rows = [layer for layer in range(self.num_layers) for _ in range(2)]
        return h0[rows], c0[rows]


class StatePairsPerDirection(TextbookLSTM):
    """Without a projection, takes hx as (forward direction's state, reverse direction's
    state): the forward direction starts from h0's two rows of a layer as (h, c), the reverse
    from c0's."""

    expected_checks = ("output",)
    expected_status = "fail"
    expected_cause = "per direction as (h, c) pairs"
    must_pass = ()
    features = ("bidirectional", "initial state")

    def initial_state(self, hx, batch, x):
        h0, c0 = super().initial_state(hx, batch, x)
        if hx is None or self.num_directions == 1 or self.proj_size:
            return h0, c0
        h, c = h0.clone(), c0.clone()
        for layer in range(self.num_layers):
            fwd, rev = 2 * layer, 2 * layer + 1
            h[fwd], c[fwd] = h0[fwd], h0[rev]
            h[rev], c[rev] = c0[fwd], c0[rev]
        return h, c


class BatchFirstByReshape(TextbookLSTM):
    """Turns a batch_first input time-major with reshape instead of transpose (and the output
    back the same way)."""

    expected_checks = ("output",)
    expected_status = "fail"
    expected_cause = "reshape"
    must_pass = ()
    features = ("batch_first", "batch>1", "seq_len>1")

    def to_internal(self, input):
        if not self.batch_first or self.time_dim == 1:
            return super().to_internal(input)
        return input.reshape(input.shape[1], input.shape[0], -1)

    def from_internal(self, output):
        if not self.batch_first or self.time_dim == 1:
            return super().from_internal(output)
        return output.reshape(output.shape[1], output.shape[0], -1)


class PreactivationsClampedAt10(TextbookLSTM):
    """Clamps every gate pre-activation to [-10, 10] ("exp cannot overflow")."""

    expected_checks = ("output",)
    expected_status = "fail"
    expected_cause = "clamped to [-10, 10]"
    must_pass = ()
    features = ("large pre-activations",)

    def gate_preactivations(self, x, h, w, where):
        return super().gate_preactivations(x, h, w, where).clamp(-10.0, 10.0)


class CnDetached(TextbookLSTM):
    """Returns c_n detached (meant for carrying the state to the next batch), so the gradient
    arriving through c_n is lost."""

    expected_checks = ("gradients", "finite-differences")
    expected_status = "fail"
    expected_cause = {"gradients": "c_n is returned detached",
                      "finite-differences": "backward"}
    must_pass = ("output", "h_n", "c_n")
    features = ()

    def assemble(self, output, h_n, c_n):
        return super().assemble(output, h_n, c_n.detach())


class _RoundGradTo32(torch.autograd.Function):
    """Identity forward; the gradient passes through float32 on the way back."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.to(torch.float32).to(grad.dtype)


class GradientsThroughFloat32(TextbookLSTM):
    """Passes every step's pre-activation gradient through float32 (a float32 workspace in a
    hand-written backward)."""

    expected_checks = ("gradients",)
    expected_status = "fail"
    expected_cause = "precision"
    must_pass = ("output", "h_n", "c_n")
    features = ("float64",)

    def gate_preactivations(self, x, h, w, where):
        return _RoundGradTo32.apply(super().gate_preactivations(x, h, w, where))


class _RoundTo32StraightThrough(torch.autograd.Function):
    """Rounds to float32 on the way forward; the exact gradient on the way back."""

    @staticmethod
    def forward(ctx, x):
        return x.to(torch.float32).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


class OutputRoundedThroughFloat32(TextbookLSTM):
    """In float64, rounds the returned output to float32 (a float32 output buffer), while the
    backward is nn.LSTM's exactly: finite differences of such a forward cannot resolve every
    derivative, and must say so rather than fail the backward."""

    expected_checks = ("output",)
    expected_status = "fail"
    expected_cause = "precision"
    must_pass = ("gradients", "finite-differences")
    features = ("float64",)

    def assemble(self, output, h_n, c_n):
        return super().assemble(_RoundTo32StraightThrough.apply(output), h_n, c_n)


class StateResetEvery16Steps(TextbookLSTM):
    """Runs time in chunks of 16 steps and starts each chunk from a zero state (the state is
    not carried across the chunk boundary)."""

    expected_checks = ("output",)
    expected_status = "fail"
    expected_cause = "time: the output matches for steps 0..15 and differs from step 16 on"
    must_pass = ()
    features = ("seq_len>16",)

    def carry(self, h, c, where):
        if where.step > 0 and where.step % 16 == 0:
            return torch.zeros_like(h), torch.zeros_like(c)
        return h, c


class UnitsPast8NeverForget(TextbookLSTM):
    """A vectorized kernel's tail: hidden units from 8 on keep their forget gate at 1 (the tail
    loop never computes it). No known mistake reproduces this; the cause must say so, and not
    blame time ("differs from step 1 on") because step 0 starts from a zero cell."""

    expected_checks = ("c_n",)
    expected_status = "fail"
    expected_cause = "no known cause; the evidence: "
    must_pass = ()
    features = ("hidden_size>8", "seq_len>1")

    def gate_activations(self, i, f, g, o, where):
        i, f, g, o = super().gate_activations(i, f, g, o, where)
        if f.shape[-1] > 8:
            f = torch.cat([f[..., :8], torch.ones_like(f[..., 8:])], -1)
        return i, f, g, o


ONE_BUG = (
    CellOutputWithoutTanh,
    NoOutputGate,
    H0Ignored,
    C0Ignored,
    StateRowsByLayerOnly,
    StatePairsPerDirection,
    BatchFirstByReshape,
    PreactivationsClampedAt10,
    CnDetached,
    GradientsThroughFloat32,
    OutputRoundedThroughFloat32,
    UnitsPast8NeverForget,
    StateResetEvery16Steps,
)

__all__ += [cls.__name__ for cls in ONE_BUG]
