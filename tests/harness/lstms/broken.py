"""Broken drop-in `torch.nn.LSTM` look-alikes, each with one realistic bug.

The harness must CATCH every class here. Each is `TextbookLSTM` with one hook overridden (see
correct.py for the hooks), and carries:

- a docstring whose first sentence is the bug;
- ``expected_checks``: the harness checks the bug necessarily fails, among "output", "h_n",
  "c_n", "gradients", "finite-differences", on a case that has its features. A forward bug may
  fail "gradients" too, and does not list it; a gradient-only bug computes exactly nn.LSTM's
  forward and lists "gradients" and "finite-differences" (its autograd disagrees with
  differences of its own, correct, forward);
- ``features``: what a case needs for the bug to show. The harness's own feature names
  ("multi_layer", "bidirectional", "projection", "batch_first", "unbatched", "dropout",
  "float32") and these: "bias" (bias=True), "initial state" (hx given, not zeros),
  "hx None", "repeated calls" (forward called twice on one module), "time-major"
  (batch_first=False), "num_layers>=3", "seq_len==1", "seq_len>1", "seq_len>5",
  "seq_len>48", "batch==1", "batch>1", "hidden_size>16" (and not a multiple of 16),
  "large pre-activations" (|gate pre-activation| > 6, e.g. weights scaled x4),
  "hidden_size>=64", "seq_len>256", "batch>64", "|c|>50" (a long saturated run), "weights changed after a call" (one
  instance called with other weights first, see `parity.Built.with_parameters`),
  "states differ in shape" (batch * ... != num_layers * num_directions, see the class);
- ``expected_status``: the status each of ``expected_checks`` must have on the default search
  ("fail", or the misbehaviour the bug shows first: "error", "wrong-shape", "nondeterministic");
- ``expected_cause``: a phrase the likely cause must contain (one for every check, or a dict per
  check); None where the status is a misbehaviour whose message is the cause (an error's
  exception, a wrong shape's shapes). "no known cause; the evidence: " where no known cause
  fits: a cause that pointed elsewhere would be worse than none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .correct import TextbookLSTM

__all__ = ["BROKEN"]  # extended below

FORWARD = ("output", "h_n", "c_n")
BACKWARD = ("gradients", "finite-differences")


# -- gate order -----------------------------------------------------------------------------
class GateOrderIGFO(TextbookLSTM):
    """Reads the weight row blocks as i, g, f, o (a port from a library with that order)."""

    expected_checks = FORWARD
    features = ()
    expected_status = 'fail'
    expected_cause = 'reads the gate blocks as i, g, f, o'

    def split_gates(self, pre):
        i, g, f, o = pre.chunk(4, -1)
        return i, f, g, o


class GateOrderFIGO(TextbookLSTM):
    """Reads the weight row blocks as f, i, g, o."""

    expected_checks = FORWARD
    features = ()
    expected_status = 'fail'
    expected_cause = 'reads the gate blocks as f, i, g, o'

    def split_gates(self, pre):
        f, i, g, o = pre.chunk(4, -1)
        return i, f, g, o


class GateOrderIFOG(TextbookLSTM):
    """Reads the weight row blocks as i, f, o, g (Keras/TF-style order)."""

    expected_checks = FORWARD
    features = ()
    expected_status = 'fail'
    expected_cause = 'reads the gate blocks as i, f, o, g'

    def split_gates(self, pre):
        i, f, o, g = pre.chunk(4, -1)
        return i, f, g, o


# -- biases ---------------------------------------------------------------------------------
class BiasIhOnly(TextbookLSTM):
    """Adds only bias_ih, ignoring bias_hh (ported from a framework with a single bias)."""

    expected_checks = FORWARD
    features = ("bias",)
    expected_status = 'fail'
    expected_cause = 'bias_hh is ignored'

    def layer_weights(self, layer, direction):
        return super().layer_weights(layer, direction)._replace(b_hh=None)


class BiasIhTwice(TextbookLSTM):
    """Adds bias_ih twice instead of bias_ih + bias_hh (a copy-paste slip)."""

    expected_checks = FORWARD
    features = ("bias",)
    expected_status = 'fail'
    expected_cause = 'bias_ih is used twice'

    def layer_weights(self, layer, direction):
        w = super().layer_weights(layer, direction)
        return w._replace(b_hh=w.b_ih)


class ForgetBiasPlusOne(TextbookLSTM):
    """Adds +1 to the forget gate's pre-activation (Keras's unit_forget_bias, done in forward);
    it shows once some step starts from a nonzero c."""

    expected_checks = FORWARD
    features = ("seq_len>1",)
    expected_status = 'fail'
    expected_cause = 'forget-gate bias of +1'

    def gate_activations(self, i, f, g, o, where):
        return super().gate_activations(i, f + 1.0, g, o, where)


# -- initial and final state ----------------------------------------------------------------
class InitialStateIgnored(TextbookLSTM):
    """Starts from zeros even when hx is given (h_n and c_n differ too unless a long sequence has
    forgotten h0 and c0)."""

    expected_checks = ("output",)
    features = ("initial state",)
    expected_status = 'fail'
    expected_cause = 'h0 and c0 are ignored'

    def initial_state(self, hx, batch, x):
        return super().initial_state(None, batch, x)


class InitialStateSwapped(TextbookLSTM):
    """Unpacks hx as (c0, h0) instead of (h0, c0) (with proj_size > 0 it fails on shapes; h_n and
    c_n differ too unless a long sequence has forgotten the initial state)."""

    expected_checks = ("output",)
    features = ("initial state",)
    expected_status = 'error'
    expected_cause = None

    def initial_state(self, hx, batch, x):
        h0, c0 = super().initial_state(hx, batch, x)
        return c0, h0


class FinalStateSwapped(TextbookLSTM):
    """Returns (output, (c_n, h_n)) instead of (output, (h_n, c_n))."""

    expected_checks = ("h_n", "c_n")
    features = ()
    expected_status = 'fail'
    expected_cause = "h_n and c_n are returned in each other's place"

    def assemble(self, output, h_n, c_n):
        return output, (c_n, h_n)


class ReverseFinalStateFromFirstStep(TextbookLSTM):
    """The reverse direction's h_n and c_n are its state after its first processed step (time
    position T-1) instead of its last (time position 0)."""

    expected_checks = ("h_n", "c_n")
    features = ("bidirectional", "seq_len>1")
    expected_status = 'fail'
    expected_cause = 'reverse] is the h of layer 0 reverse at time step'

    def final_state(self, direction, states, out, w):
        s = states[0] if direction == 1 else states[-1]
        return s.h, s.c


class HnFromLastOutput(TextbookLSTM):
    """Takes h_n as output[-1] for both directions, which for the reverse direction is its first
    processed step, not its last."""

    expected_checks = ("h_n",)
    features = ("bidirectional", "seq_len>1")
    expected_status = 'fail'
    expected_cause = 'reverse] is the h of layer 0 reverse at time step'

    def final_state(self, direction, states, out, w):
        return out.select(self.time_dim, -1), states[-1].c


# -- batch_first ----------------------------------------------------------------------------
class BatchFirstStateTransposed(TextbookLSTM):
    """With batch_first, also transposes h0/c0 on the way in and h_n/c_n on the way out (they are
    (L*D, B, H) whatever batch_first says); with batch > 1 the shapes or the values differ."""

    expected_checks = ("h_n", "c_n")
    features = ("batch_first", "batch>1")
    expected_status = 'wrong-shape'
    expected_cause = None

    def initial_state(self, hx, batch, x):
        if hx is not None and self.batch_first:
            hx = tuple(s.transpose(0, 1) for s in hx)
        return super().initial_state(hx, batch, x)

    def assemble(self, output, h_n, c_n):
        if self.batch_first:
            h_n, c_n = h_n.transpose(0, 1), c_n.transpose(0, 1)
        return super().assemble(output, h_n, c_n)


class BatchFirstOutputNotRestored(TextbookLSTM):
    """With batch_first, transposes the input to time-major but returns the output time-major."""

    expected_checks = ("output",)
    features = ("batch_first", "seq_len>1")
    expected_status = 'wrong-shape'
    expected_cause = None

    def from_internal(self, output):
        return output


# -- reverse direction ----------------------------------------------------------------------
class ReverseInputNotFlipped(TextbookLSTM):
    """The reverse direction flips its outputs back but never flipped its input, so it runs
    forward in time."""

    expected_checks = FORWARD
    features = ("bidirectional", "seq_len>1")
    expected_status = 'fail'
    expected_cause = 'only the reverse direction differs'

    def direction_input(self, x, direction):
        return x


class ReverseOutputNotFlipped(TextbookLSTM):
    """The reverse direction runs on the flipped input but leaves its outputs in processing
    order instead of putting them back at their time positions."""

    expected_checks = ("output",)
    features = ("bidirectional", "seq_len>1")
    expected_status = 'fail'
    expected_cause = 'its outputs are in reverse time order'

    def direction_output(self, out, direction):
        return out


# -- layers ---------------------------------------------------------------------------------
class DeepLayersShareWeights(TextbookLSTM):
    """Layers 2 and deeper compute with layer 1's weights (the lookup was written as
    `min(layer, 1)`, "only the first layer's input width differs")."""

    expected_checks = FORWARD
    features = ("num_layers>=3",)
    expected_status = 'fail'
    expected_cause = 'layer 0 matches and layer 2 on does not'

    def layer_weights(self, layer, direction):
        return super().layer_weights(min(layer, 1), direction)


class NextLayerForwardOnly(TextbookLSTM):
    """Feeds the next layer the forward direction's output twice instead of [forward, reverse]."""

    expected_checks = FORWARD
    features = ("bidirectional", "multi_layer")
    expected_status = 'fail'
    expected_cause = 'layer 0 matches and layer 1 on does not'

    def next_layer_input(self, outs, layer):
        return super().next_layer_input([outs[0]] * len(outs), layer)


class LayerInputViewNotTranspose(TextbookLSTM):
    """Hands each next layer its input through a batch-first round trip written with
    reshape(B, T, .) instead of transpose(0, 1), scrambling time steps and batch rows."""

    expected_checks = FORWARD
    features = ("multi_layer", "batch>1", "seq_len>1")
    expected_status = 'fail'
    expected_cause = 'layer 0 matches and layer 1 on does not'

    def next_layer_input(self, outs, layer):
        x = super().next_layer_input(outs, layer)  # (T, B, .)
        T, B = x.shape[0], x.shape[1]
        return x.reshape(B, T, -1).transpose(0, 1)


class DropoutInEval(TextbookLSTM):
    """Applies inter-layer dropout in eval mode too (`F.dropout(x, p, training=True)`)."""

    expected_checks = FORWARD
    features = ("dropout", "multi_layer")
    expected_status = ('nondeterministic', 'fail')
    expected_cause = 'dropout: the same case with dropout=0 matches'

    def next_layer_input(self, outs, layer):
        return F.dropout(torch.cat(outs, -1), self.dropout, training=True)


# -- projection -----------------------------------------------------------------------------
class ProjectedCellState(TextbookLSTM):
    """Applies the projection to the final cell state as well as to h, so c_n comes back
    (L*D, B, proj_size) instead of (L*D, B, hidden_size)."""

    expected_checks = ("c_n",)
    features = ("projection",)
    expected_status = 'wrong-shape'
    expected_cause = None

    def final_state(self, direction, states, out, w):
        h, c = super().final_state(direction, states, out, w)
        return h, self.project(c, w)


class ProjectionWithTanh(TextbookLSTM):
    """Puts a tanh after the projection (a Dense layer's activation left on), in the output and
    in the recurrence (so c_n differs too once a step reads a projected h)."""

    expected_checks = ("output", "h_n")
    features = ("projection",)
    expected_status = 'fail'
    expected_cause = 'a tanh after the projection'

    def project(self, h, w):
        return h if w.hr is None else torch.tanh(super().project(h, w))


class ProjectionSharedAcrossDirections(TextbookLSTM):
    """The reverse direction projects with the forward direction's weight_hr (looked up by layer
    only); c_n differs too once a step reads a projected h."""

    expected_checks = ("output", "h_n")
    features = ("projection", "bidirectional")
    expected_status = 'fail'
    expected_cause = 'only the reverse direction differs'

    def layer_weights(self, layer, direction):
        w = super().layer_weights(layer, direction)
        return w if w.hr is None else w._replace(hr=getattr(self, f"weight_hr_l{layer}"))


class UnprojectedFinalHidden(TextbookLSTM):
    """Returns h_n before the projection, (L*D, B, hidden_size) instead of (L*D, B, proj_size)."""

    expected_checks = ("h_n",)
    features = ("projection",)
    expected_status = 'wrong-shape'
    expected_cause = None

    def final_state(self, direction, states, out, w):
        return states[-1].h_full, states[-1].c


# -- gradients only: the forward is exactly nn.LSTM's -----------------------------------------
class WeightHhDetached(TextbookLSTM):
    """Uses weight_hh through `.detach()`, so weight_hh gets no gradient (a leftover from a
    weight-norm experiment); it needs a nonzero h entering some step."""

    expected_checks = BACKWARD
    features = ("seq_len>1",)
    expected_status = 'fail'
    expected_cause = {'gradients': 'detached: the gradient of weight_hh_l0 is zero', 'finite-differences': '(weight_hh_l0): the backward pass is wrong'}

    def layer_weights(self, layer, direction):
        w = super().layer_weights(layer, direction)
        return w._replace(hh=w.hh.detach())


class InitialStateDetached(TextbookLSTM):
    """Detaches h0 and c0 (the truncated-BPTT idiom applied to the caller's hx), so they get no
    gradient."""

    expected_checks = BACKWARD
    features = ("initial state",)
    expected_status = 'fail'
    expected_cause = {'gradients': 'detached: the gradient of h0, c0 is zero', 'finite-differences': '(h0, c0): the backward pass is wrong'}

    def initial_state(self, hx, batch, x):
        h0, c0 = super().initial_state(hx, batch, x)
        return h0.detach(), c0.detach()


class TruncatedBPTT(TextbookLSTM):
    """Detaches h and c every 5 steps (truncated backpropagation through time left on)."""

    expected_checks = BACKWARD
    features = ("seq_len>5",)
    expected_status = 'fail'
    expected_cause = {'gradients': 'truncated: the input gradient matches for the last', 'finite-differences': 'the backward pass is wrong'}

    def carry(self, h, c, where):
        if where.step > 0 and where.step % 5 == 0:
            return h.detach(), c.detach()
        return h, c


class RecurrentBlocksTransposed(TextbookLSTM):
    """Multiplies h by each gate's weight_hh block as stored (h @ W_hh_k for W_hh_k h: a port of
    x @ W code); each block is (H, H), so the shapes fit and nothing raises."""

    expected_checks = FORWARD
    features = ("seq_len>1",)
    expected_status = 'fail'
    expected_cause = "weight_hh's gate blocks are used transposed"

    def gate_preactivations(self, x, h, w, where):
        H = self.hidden_size
        blocks = w.hh.split(H, 0)
        if blocks[0].shape[0] != blocks[0].shape[1]:  # projected: the port has no such layer
            return super().gate_preactivations(x, h, w, where)
        pre = x @ w.ih.T + torch.cat([h @ b for b in blocks], -1)
        if w.b_ih is not None:
            pre = pre + w.b_ih
        if w.b_hh is not None:
            pre = pre + w.b_hh
        return pre


class StateDetachedEveryStep(TextbookLSTM):
    """Hands h and c to the next step detached (back-propagation through time cut to one step,
    as a hand-written backward that never carries dh_next / dc_next back)."""

    expected_checks = BACKWARD
    features = ("seq_len>1",)
    expected_status = 'fail'
    expected_cause = {'gradients': 'truncated: back-propagation through time stops after every '
                                   'step: the gradient does not flow from one step into the '
                                   'previous one through h and c',
                      'finite-differences': 'the backward pass is wrong'}

    def carry(self, h, c, where):
        return (h.detach(), c.detach()) if where.step > 0 else (h, c)


class HiddenDetachedEveryStep(TextbookLSTM):
    """Hands h to the next step detached, c attached (the recurrent product's gradient
    dropped)."""

    expected_checks = BACKWARD
    features = ("seq_len>1",)
    expected_status = 'fail'
    expected_cause = {'gradients': 'through h (the state handed to the next step is detached',
                      'finite-differences': 'the backward pass is wrong'}

    def carry(self, h, c, where):
        return (h.detach(), c) if where.step > 0 else (h, c)


class _TanhWrongGrad(torch.autograd.Function):
    """tanh with a hand-written backward that uses 1 - y instead of 1 - y**2."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y)


class _SigmoidWrongGrad(torch.autograd.Function):
    """sigmoid with a hand-written backward that uses y instead of y * (1 - y)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class _HalfGrad(torch.autograd.Function):
    """Identity forward, half the gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return 0.5 * grad


class CandidateTanhWrongDerivative(TextbookLSTM):
    """The cell candidate g uses a hand-written tanh whose backward is 1 - y, not 1 - y**2."""

    expected_checks = BACKWARD
    features = ()
    expected_status = 'fail'
    expected_cause = {'gradients': 'only the gradients of gate block(s) g differ', 'finite-differences': 'the backward pass is wrong'}

    def gate_activations(self, i, f, g, o, where):
        i, f, _, o = super().gate_activations(i, f, g, o, where)
        return i, f, _TanhWrongGrad.apply(g), o


class OutputGateSigmoidWrongDerivative(TextbookLSTM):
    """The output gate uses a hand-written sigmoid whose backward is y, not y (1 - y)."""

    expected_checks = BACKWARD
    features = ()
    expected_status = 'fail'
    expected_cause = {'gradients': 'only the gradients of gate block(s) o differ', 'finite-differences': 'the backward pass is wrong'}

    def gate_activations(self, i, f, g, o, where):
        i, f, g, _ = super().gate_activations(i, f, g, o, where)
        return i, f, g, _SigmoidWrongGrad.apply(o)


class BiasHhGradHalved(TextbookLSTM):
    """bias_hh goes through a hand-written identity Function whose backward halves the gradient
    (left from splitting one fused bias's gradient between the two)."""

    expected_checks = BACKWARD
    features = ("bias",)
    expected_status = 'fail'
    expected_cause = {'gradients': 'scaled: the gradient of bias_hh_l0 is 0.5 times', 'finite-differences': '(bias_hh_l0): the backward pass is wrong'}

    def layer_weights(self, layer, direction):
        w = super().layer_weights(layer, direction)
        return w if w.b_hh is None else w._replace(b_hh=_HalfGrad.apply(w.b_hh))


# -- small drift ----------------------------------------------------------------------------
class OutputScaledSlightly(TextbookLSTM):
    """Multiplies the output sequence (not h_n) by 1 + 1e-4 (a calibration factor left in)."""

    expected_checks = ("output",)
    features = ()
    expected_status = 'fail'
    expected_cause = 'scaled: output is 1.0001 times'

    def assemble(self, output, h_n, c_n):
        return super().assemble(output * (1 + 1e-4), h_n, c_n)


class CellStateDrift(TextbookLSTM):
    """Multiplies the cell state by 1 + 3e-5 every step, in float32 and float64 alike (output and
    h_n drift too unless tanh(c) is saturated)."""

    expected_checks = ("c_n",)
    features = ()
    expected_status = 'fail'
    expected_cause = 'no known cause; the evidence: '

    def cell_update(self, i, f, g, c, where):
        return super().cell_update(i, f, g, c, where) * (1 + 3e-5)


# -- reduced precision ----------------------------------------------------------------------
class Float16GatePreactivations(TextbookLSTM):
    """In float32, rounds the gate pre-activations to float16 (a mixed-precision kernel's
    accumulator); output and h_n usually differ too, but on small cases only c_n is sure to."""

    expected_checks = ("c_n",)
    features = ("float32",)
    expected_status = 'fail'
    expected_cause = 'precision: '

    def gate_preactivations(self, x, h, w, where):
        pre = super().gate_preactivations(x, h, w, where)
        return pre.half().to(pre.dtype) if pre.dtype == torch.float32 else pre


class BFloat16CellState(TextbookLSTM):
    """Rounds the cell state to bfloat16 every step (the state kept in a bfloat16 buffer); output
    and h_n differ too unless tanh(c) is saturated."""

    expected_checks = ("c_n",)
    features = ()
    expected_status = 'fail'
    expected_cause = 'precision: '

    def cell_update(self, i, f, g, c, where):
        c = super().cell_update(i, f, g, c, where)
        return c.to(torch.bfloat16).to(c.dtype)


# -- bugs in a corner of the configuration space ----------------------------------------------
class OutputRingBuffer(TextbookLSTM):
    """Collects the per-step outputs in a preallocated buffer of 48 steps indexed modulo its
    size, so beyond 48 steps later outputs overwrite earlier ones."""

    expected_checks = ("output",)
    features = ("seq_len>48",)
    expected_status = 'fail'
    expected_cause = 'no known cause; the evidence: '
    slots = 48

    def stack_steps(self, hs):
        buffer = [None] * self.slots
        for t, h in enumerate(hs):
            buffer[t % self.slots] = h
        return torch.stack([buffer[t % self.slots] for t in range(len(hs))], self.time_dim)


class BlockedWideHidden(TextbookLSTM):
    """For hidden_size > 16 computes each gate in blocks of 16 units, and the short last block,
    shifted back to stay 16 wide, keeps the block's first columns instead of its last."""

    expected_checks = FORWARD
    features = ("hidden_size>16",)
    expected_status = 'fail'
    expected_cause = 'no known cause; the evidence: '
    block = 16

    def gate_preactivations(self, x, h, w, where):
        H, n = self.hidden_size, self.block
        if H <= n:
            return super().gate_preactivations(x, h, w, where)
        xh = torch.cat([x, h], -1)
        W = torch.cat([w.ih, w.hh], 1)
        b = None if w.b_ih is None else w.b_ih + w.b_hh
        parts = []
        for gate in range(4):
            for start in range(0, H, n):
                width = min(n, H - start)
                lo = gate * H + (start if width == n else H - n)
                part = xh @ W[lo:lo + n].T + (0 if b is None else b[lo:lo + n])
                parts.append(part[..., :width])  # a short block needs part[..., n - width:]
        return torch.cat(parts, -1)


class ThirdLayerTanhForget(TextbookLSTM):
    """Layer index 2 uses tanh instead of sigmoid for its forget gate (a per-layer activation
    table with one wrong entry)."""

    expected_checks = FORWARD
    features = ("num_layers>=3", "seq_len>1")
    expected_status = 'fail'
    expected_cause = 'layer 0 matches and layer 2 on does not'

    def gate_activations(self, i, f, g, o, where):
        i, f_sig, g, o = super().gate_activations(i, f, g, o, where)
        return i, (self.tanh(f) if where.layer == 2 else f_sig), g, o


class SingleStepSkipsOutputGate(TextbookLSTM):
    """A seq_len == 1 fast path (one decoding step) computes h = tanh(c), forgetting the output
    gate."""

    expected_checks = ("output", "h_n")
    features = ("seq_len==1",)
    expected_status = 'fail'
    expected_cause = 'without the output gate'

    def hidden_update(self, o, c, where):
        return self.tanh(c) if where.seq_len == 1 else super().hidden_update(o, c, where)


class BatchOfOneStacking(TextbookLSTM):
    """For a batch of one, squeezes the batch dim off the step outputs, stacks them along the
    wrong dim and reshapes back to (T, 1, .), scrambling time and features."""

    expected_checks = ("output",)
    features = ("batch==1", "seq_len>1", "hidden_size>1")
    expected_status = 'fail'
    expected_cause = 'no known cause; the evidence: '

    def stack_steps(self, hs):
        if hs[0].shape[0] != 1:
            return super().stack_steps(hs)
        stacked = torch.stack([h.squeeze(0) for h in hs], 1)  # (H_out, T), meant (T, H_out)
        shape = (len(hs), 1, -1) if self.time_dim == 0 else (1, len(hs), -1)
        return stacked.reshape(shape)


def _fast_sigmoid(x):
    # "Clamp so exp cannot overflow": exact for |x| <= 6, off by up to 2.5e-3 beyond.
    return torch.sigmoid(x.clamp(-6.0, 6.0))


class ClampedFastSigmoid(TextbookLSTM):
    """Clamps sigmoid's argument to [-6, 6] (an overflow guard), exact for small pre-activations
    and wrong by up to 2.5e-3 for large ones (h_n and c_n only if the gates saturate at the steps
    that reach them)."""

    expected_checks = ("output",)
    features = ("large pre-activations",)
    expected_status = 'fail'
    expected_cause = 'clamped to [-6, 6]'
    sigmoid = staticmethod(_fast_sigmoid)


# -- leaks between batch rows, calls, modes ---------------------------------------------------
class BatchMeanLeak(TextbookLSTM):
    """Adds 1e-3 times the batch mean of h to h every step (a half-removed normalization), so
    batch rows leak into each other."""

    expected_checks = ("output", "h_n")
    features = ()
    expected_status = 'fail'
    expected_cause = 'no known cause; the evidence: '

    def hidden_update(self, o, c, where):
        h = super().hidden_update(o, c, where)
        return h + 1e-3 * h.mean(0, keepdim=True)


class UnbatchedAsSeqLenOne(TextbookLSTM):
    """Adds the batch dim to unbatched (T, I) input at dim 0 as if batch_first, so a time-major
    module runs one step over a batch of T, and takes the last row as h_n/c_n."""

    expected_checks = FORWARD
    features = ("unbatched", "time-major", "seq_len>1")
    expected_status = 'fail'
    expected_cause = 'input is read as a batch'

    def add_batch_dim(self, input, hx):
        return input.unsqueeze(0), None if hx is None else tuple(s.unsqueeze(1) for s in hx)

    def remove_batch_dim(self, output, h_n, c_n):
        return output.squeeze(0), h_n[:, -1], c_n[:, -1]


class CarriesStateBetweenCalls(TextbookLSTM):
    """Keeps h_n/c_n from the previous call and starts from them when hx is None (a stateful
    RNN), so the second call on one module differs from the first (in h_n and c_n too unless a
    long sequence has forgotten the carried state)."""

    expected_checks = ("output",)
    features = ("hx None", "repeated calls")
    expected_status = 'nondeterministic'
    expected_cause = None

    def initial_state(self, hx, batch, x):
        fresh = super().initial_state(hx, batch, x)
        kept = getattr(self, "_kept", None)
        if hx is None and kept is not None and all(
                k.shape == f.shape and k.dtype == f.dtype for k, f in zip(kept, fresh)):
            return kept
        return fresh

    def run_layers(self, x, h0, c0):
        output, h_n, c_n = super().run_layers(x, h0, c0)
        self._kept = (h_n.detach(), c_n.detach())
        return output, h_n, c_n


# -- found by a blind test: bugs on paths the case generator once never took -------------------
class WideHiddenInterleavedGates(TextbookLSTM):
    """For hidden_size >= 64 (a "large layer" kernel path) reads the gate pre-activations
    interleaved per unit (i0 f0 g0 o0 i1 ...), the packed layout of that path, from weights that
    were never repacked."""

    expected_checks = FORWARD
    features = ("hidden_size>=64",)
    expected_status = 'fail'
    expected_cause = 'no known cause; the evidence: '

    def split_gates(self, pre):
        if self.hidden_size < 64:
            return super().split_gates(pre)
        i, f, g, o = pre.reshape(*pre.shape[:-1], self.hidden_size, 4).unbind(-1)
        return i, f, g, o


class SequenceChunkDropsCellState(TextbookLSTM):
    """Runs long sequences in chunks of 256 steps and starts each chunk after the first from
    the carried h but a zero cell state (the chunk kernel's c was never handed over)."""

    expected_checks = ("output",)  # the lost cell state has faded by the last step
    features = ("seq_len>256",)
    expected_status = 'fail'
    expected_cause = 'a buffer or chunk boundary'

    def carry(self, h, c, where):
        return (h, torch.zeros_like(c)) if where.step and where.step % 256 == 0 else (h, c)


class BatchTileStateFromFirstTile(TextbookLSTM):
    """Runs the batch in tiles of 64 rows and gives every tile past the first the first
    tile's initial state (h0/c0 rows 0-63 again), not its own rows."""

    expected_checks = FORWARD
    features = ("batch>64", "initial state")
    expected_status = 'fail'
    expected_cause = 'no known cause; the evidence: '

    def initial_state(self, hx, batch, x):
        h0, c0 = super().initial_state(hx, batch, x)
        if batch <= 64:
            return h0, c0
        rows = torch.arange(batch, device=h0.device) % 64
        return h0[:, rows], c0[:, rows]


class CellStateClampedAt50(TextbookLSTM):
    """Clamps the cell state to [-50, 50] every step (to "keep tanh's argument sane"): exact
    until a long saturated run takes |c| past 50, which only c_n shows (tanh(50) is 1)."""

    expected_checks = ("c_n",)
    features = ("|c|>50",)
    expected_status = 'fail'
    expected_cause = 'cell state clamped to [-50, 50]'

    def cell_update(self, i, f, g, c, where):
        return super().cell_update(i, f, g, c, where).clamp(-50.0, 50.0)


class PrepackedWeightsCache(TextbookLSTM):
    """Packs [W_ih, W_hh] once per module on its first inference call and never refreshes the
    pack when the weights change (load_state_dict or an optimizer step after that call)."""

    expected_checks = FORWARD
    features = ("weights changed after a call",)
    expected_status = 'fail'
    expected_cause = "state between calls: a fresh instance gives nn.LSTM's answer"

    def gate_preactivations(self, x, h, w, where):
        if torch.is_grad_enabled():
            return super().gate_preactivations(x, h, w, where)
        cache = self.__dict__.setdefault("_packed", {})
        key = (where.layer, where.direction, x.dtype)
        if key not in cache:
            cache[key] = torch.cat([w.ih, w.hh], 1).T.contiguous()
        pre = torch.cat([x, h], -1) @ cache[key]
        return pre if w.b_ih is None else pre + w.b_ih + w.b_hh


class UnbatchedStateUnsqueezedAtZero(TextbookLSTM):
    """For unbatched input adds the batch dim to h0/c0 with unsqueeze(0), like the input's,
    instead of unsqueeze(1): right only while num_layers * num_directions == 1."""

    expected_checks = FORWARD
    features = ("unbatched", "initial state", "bidirectional")
    expected_status = 'error'
    expected_cause = None

    def add_batch_dim(self, input, hx):
        input, _ = super().add_batch_dim(input, None)
        return input, None if hx is None else tuple(s.unsqueeze(0) for s in hx)


class BatchFirstOutputWidthHidden(TextbookLSTM):
    """Turns a batch_first output back with ``reshape(B, T, D * hidden_size)``, the width
    without a projection (D * proj_size with one)."""

    expected_checks = ("output",)
    features = ("batch_first", "projection")
    expected_status = 'error'
    expected_cause = None

    def from_internal(self, output):
        if not self.batch_first:
            return super().from_internal(output)
        steps, batch = output.shape[0], output.shape[1]
        return output.transpose(0, 1).reshape(batch, steps, self.num_directions * self.hidden_size)


BROKEN = (
    GateOrderIGFO,
    GateOrderFIGO,
    GateOrderIFOG,
    BiasIhOnly,
    BiasIhTwice,
    ForgetBiasPlusOne,
    InitialStateIgnored,
    InitialStateSwapped,
    FinalStateSwapped,
    ReverseFinalStateFromFirstStep,
    HnFromLastOutput,
    BatchFirstStateTransposed,
    BatchFirstOutputNotRestored,
    ReverseInputNotFlipped,
    ReverseOutputNotFlipped,
    DeepLayersShareWeights,
    NextLayerForwardOnly,
    LayerInputViewNotTranspose,
    DropoutInEval,
    ProjectedCellState,
    ProjectionWithTanh,
    ProjectionSharedAcrossDirections,
    UnprojectedFinalHidden,
    WeightHhDetached,
    InitialStateDetached,
    TruncatedBPTT,
    RecurrentBlocksTransposed,
    StateDetachedEveryStep,
    HiddenDetachedEveryStep,
    CandidateTanhWrongDerivative,
    OutputGateSigmoidWrongDerivative,
    BiasHhGradHalved,
    OutputScaledSlightly,
    CellStateDrift,
    Float16GatePreactivations,
    BFloat16CellState,
    OutputRingBuffer,
    BlockedWideHidden,
    SequenceChunkDropsCellState,
    BatchTileStateFromFirstTile,
    ThirdLayerTanhForget,
    SingleStepSkipsOutputGate,
    BatchOfOneStacking,
    ClampedFastSigmoid,
    BatchMeanLeak,
    UnbatchedAsSeqLenOne,
    CarriesStateBetweenCalls,
    WideHiddenInterleavedGates,
    CellStateClampedAt50,
    PrepackedWeightsCache,
    UnbatchedStateUnsqueezedAtZero,
    BatchFirstOutputWidthHidden,
)

__all__ += [cls.__name__ for cls in BROKEN]
