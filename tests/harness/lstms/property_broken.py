"""Drop-in `torch.nn.LSTM` look-alikes, each breaking one property (`parity.properties`).

Each is `TextbookLSTM` (correct.py) with one hook overridden, and carries `expected_property`:
the property check that must catch it. Several slip past the reference checks on most drawn
cases (a bug only where a state is handed over, only in float32's noise, only in the gradient
of c0, only for an empty batch): that is what the properties are for.
"""

from __future__ import annotations

import torch

from .correct import TextbookLSTM

__all__ = ["PROPERTY_BROKEN"]  # extended below


class SingleStepIgnoresState(TextbookLSTM):
    """A one-step fast path (a decoding step) starts from zeros even when hx is given, so a
    sequence fed one step at a time never carries its state."""

    expected_property = "step-by-step"

    def initial_state(self, hx, batch, x):
        if x.shape[self.time_dim] == 1:
            hx = None
        return super().initial_state(hx, batch, x)


class InitialCellStateDetached(TextbookLSTM):
    """c0 enters through `.detach()`: the forward is exact, but the gradient does not flow back
    into the previous chunk's c_n."""

    expected_property = "chunking"

    def initial_state(self, hx, batch, x):
        h0, c0 = super().initial_state(hx, batch, x)
        return h0, c0.detach()


class NeighbourRowLeak(TextbookLSTM):
    """Adds 1e-3 times the previous batch row's h to each row's h every step (a roll over the
    wrong dim left in a data-augmentation experiment)."""

    expected_property = "batch-independence"

    def hidden_update(self, o, c, where):
        h = super().hidden_update(o, c, where)
        return h + 1e-3 * h.roll(1, dims=0)  # h is (B, H) inside a step


class InputSmoothedAhead(TextbookLSTM):
    """Smooths the input over time with a centred kernel (x_t + 0.01 x_{t+1}) before the loop:
    each step peeks at the next input."""

    expected_property = "causality"

    def direction_input(self, x, direction):
        x = super().direction_input(x, direction)
        ahead = torch.cat([x.narrow(self.time_dim, 1, x.shape[self.time_dim] - 1),
                           torch.zeros_like(x.narrow(self.time_dim, 0, 1))], self.time_dim)
        return x + 0.01 * ahead


class UnbatchedDropsState(TextbookLSTM):
    """For unbatched input, drops hx instead of unsqueezing it (starts from zeros)."""

    expected_property = "unbatched"

    def add_batch_dim(self, input, hx):
        input, _ = super().add_batch_dim(input, hx)
        return input, None


class BatchFirstHnTransposed(TextbookLSTM):
    """With batch_first, returns h_n and c_n as (B, L*D, H), as if they followed batch_first."""

    expected_property = "batch-first"
    expected_statuses = ("wrong-shape",)  # (B, L*D, H) is not a shape nn.LSTM gives

    def assemble(self, output, h_n, c_n):
        if self.batch_first and output.dim() == 3:
            h_n, c_n = h_n.transpose(0, 1), c_n.transpose(0, 1)
        return output, (h_n, c_n)


class ReverseOutputOffByOne(TextbookLSTM):
    """Puts the reverse direction's outputs back one time position late (a roll by one where a
    flip was meant, fixed up at one end)."""

    expected_property = "bidirectional"

    def direction_output(self, out, direction):
        out = super().direction_output(out, direction)
        return out.roll(1, self.time_dim) if direction == 1 else out


class UpperLayersWithoutHiddenBias(TextbookLSTM):
    """Layers above the first skip bias_hh (the bias lookup written for layer 0 only)."""

    expected_property = "stacking"

    def layer_weights(self, layer, direction):
        w = super().layer_weights(layer, direction)
        return w._replace(b_hh=None) if layer > 0 else w


class NoisyEval(TextbookLSTM):
    """Multiplies h by 1 + 3e-7 x Gaussian noise every step, in eval mode too (a noise
    regularizer not switched off): a few float32 ulps, far inside float32's reference
    tolerance."""

    expected_property = "determinism"

    def hidden_update(self, o, c, where):
        h = super().hidden_update(o, c, where)
        return h * (1 + 3e-7 * torch.randn_like(h))


class EmptySequenceForgetsState(TextbookLSTM):
    """Returns an empty output and zeros as the final state for a zero-length sequence, even
    when (h0, c0) is given (the empty sequence's answer is the initial state; nn.LSTM raises)."""

    expected_property = "degenerate"

    def forward(self, input, hx=None):
        time_dim = 1 if self.batch_first and input.dim() == 3 else 0
        if input.shape[time_dim] == 0:
            batched = input.dim() == 3
            shape = list(input.shape)
            shape[-1] = self.output_size * self.num_directions
            rows = (input.shape[1 - time_dim],) if batched else ()
            n = self.num_layers * self.num_directions
            h0 = input.new_zeros((n, *rows, self.output_size))
            c0 = input.new_zeros((n, *rows, self.hidden_size))
            return input.new_zeros(shape), (h0, c0)
        return super().forward(input, hx)


class EmptyBatchRaises(TextbookLSTM):
    """Rejects a batch of zero (`if batch == 0: raise`), where nn.LSTM returns empty results."""

    expected_property = "degenerate"

    def initial_state(self, hx, batch, x):
        if batch == 0:
            raise ValueError("batch size must be positive")
        return super().initial_state(hx, batch, x)


class RecurrentPathDetached(TextbookLSTM):
    """The recurrent product uses h_{t-1}.detach(): the forward is exact, but back-propagation
    through time loses the term through weight_hh into earlier steps."""

    expected_property = "training"

    def gate_preactivations(self, x, h, w, where):
        return super().gate_preactivations(x, h.detach(), w, where)


PROPERTY_BROKEN = (
    SingleStepIgnoresState,
    InitialCellStateDetached,
    NeighbourRowLeak,
    InputSmoothedAhead,
    UnbatchedDropsState,
    BatchFirstHnTransposed,
    ReverseOutputOffByOne,
    UpperLayersWithoutHiddenBias,
    NoisyEval,
    EmptySequenceForgetsState,
    EmptyBatchRaises,
    RecurrentPathDetached,
)

__all__ += [cls.__name__ for cls in PROPERTY_BROKEN]
