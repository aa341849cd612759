"""ONNX: the canonical weights in one ONNX ``LSTM`` node per layer, run by ONNX Runtime (float32)
or by onnx's reference evaluator (float32 and float64).

The weights go in through `parity.convert.to_onnx` (gate order i, o, f, c; ``W [D, 4H, I]``,
``R [D, 4H, H]``, ``B [D, 8H]``) as initializers; layers are chained nodes, each layer's
``Y [T, D, B, H]`` transposed to ``[T, B, D, H]`` and reshaped to ``[T, B, D*H]`` for the next.
The graph's outputs are the last layer's ``Y`` as the node gives it and every layer's ``Y_h``,
``Y_c`` concatenated (layer-major, as nn.LSTM's h_n); the adapter reads ``Y`` into nn.LSTM's
layout. ONNX's LSTM has no projection (unsupported). Forward only: the harness compares finite
differences of the forward with the reference's gradients. ONNX Runtime's LSTM kernel is
float32 only.
"""

from __future__ import annotations

import numpy as np

from parity import Adapter, LSTMConfig, Layout, Supports
from parity.convert import to_onnx
from ._layout import reject_empty_sequence

__all__ = ["OnnxReferenceAdapter", "OnnxRuntimeAdapter", "lstm_model"]

OPSET = 17  # LSTM-14, Transpose-13, Reshape-14, Concat-13
ONNX_DTYPES = {"float32": 1, "float64": 11}  # TensorProto.FLOAT, TensorProto.DOUBLE


def lstm_model(
    config: LSTMConfig, nodes: list[dict], dtype: str, with_state: bool, with_lengths: bool = False
):
    """An ONNX model of `config`'s LSTM holding `nodes` (`to_onnx`'s output) as initializers.

    Inputs ``X [T, B, I]``, with `with_lengths` ``sequence_lens [B]`` (int32, given to every
    layer's node), and, `with_state`, ``initial_h_{k}``, ``initial_c_{k}`` per layer
    ``[D, B, H]``; outputs ``Y [T, D, B, H]`` (the last layer's), ``Y_h``, ``Y_c``
    ``[L*D, B, H]``."""
    from onnx import helper, numpy_helper

    elem = ONNX_DTYPES[dtype]
    d, h = config.num_directions, config.hidden_size
    direction = "bidirectional" if config.bidirectional else "forward"
    inputs = [helper.make_tensor_value_info("X", elem, ["T", "B", config.input_size])]
    if with_lengths:
        inputs.append(helper.make_tensor_value_info("sequence_lens", 6, ["B"]))  # INT32
    graph_nodes, initializers, finals_h, finals_c = [], [], [], []
    x = "X"
    for layer, node in enumerate(nodes):
        names = {}
        for key in ("W", "R", "B"):
            if key in node:
                names[key] = f"{key}_{layer}"
                initializers.append(
                    numpy_helper.from_array(np.asarray(node[key], dtype), names[key])
                )
        lens = "sequence_lens" if with_lengths else ""
        state = [lens, "", ""]  # sequence_lens, initial_h, initial_c
        if with_state:
            state = [lens, f"initial_h_{layer}", f"initial_c_{layer}"]
            inputs += [helper.make_tensor_value_info(n, elem, [d, "B", h]) for n in state[1:]]
        y, y_h, y_c = f"Y_{layer}", f"Y_h_{layer}", f"Y_c_{layer}"
        graph_nodes.append(
            helper.make_node(
                "LSTM",
                [x, names["W"], names["R"], names.get("B", "")] + state,
                [y, y_h, y_c],
                hidden_size=h,
                direction=direction,
            )
        )
        finals_h.append(y_h)
        finals_c.append(y_c)
        if layer < len(nodes) - 1:
            graph_nodes.append(helper.make_node("Transpose", [y], [f"{y}_t"], perm=[0, 2, 1, 3]))
            x = f"X_{layer + 1}"
            graph_nodes.append(helper.make_node("Reshape", [f"{y}_t", "next_shape"], [x]))
    if len(nodes) > 1:
        initializers.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "next_shape"))
    graph_nodes.append(helper.make_node("Identity", [f"Y_{len(nodes) - 1}"], ["Y"]))
    graph_nodes.append(helper.make_node("Concat", finals_h, ["Y_h"], axis=0))
    graph_nodes.append(helper.make_node("Concat", finals_c, ["Y_c"], axis=0))
    outputs = [
        helper.make_tensor_value_info("Y", elem, ["T", d, "B", h]),
        helper.make_tensor_value_info("Y_h", elem, [config.num_layers * d, "B", h]),
        helper.make_tensor_value_info("Y_c", elem, [config.num_layers * d, "B", h]),
    ]
    graph = helper.make_graph(graph_nodes, "parity_lstm", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # what ONNX Runtime releases from 1.14 on read
    return model


class _OnnxAdapter(Adapter):
    layout = Layout(
        gate_order="i, o, f, g",
        weights="W x: W (D, 4H, I), R (D, 4H, H), B (D, 8H) = [Wb, Rb]; ONNX calls g c",
    )
    requires: tuple[str, ...] = ("onnx",)
    install = "parity[onnx]"

    def onnx_nodes(self, params, config: LSTMConfig) -> list[dict]:
        """The canonical parameters in ONNX's layout (a test overrides this with a mistake)."""
        return to_onnx(params, config)

    def read_output(self, y: np.ndarray) -> np.ndarray:
        """ONNX's ``Y [T, D, B, H]`` -> nn.LSTM's ``[T, B, D*H]``."""
        t, d, b, h = y.shape
        return y.transpose(0, 2, 1, 3).reshape(t, b, d * h)

    def session(self, model):
        """A callable ``feeds -> [Y, Y_h, Y_c]``."""
        raise NotImplementedError

    def build(self, config: LSTMConfig, params, dtype: str):
        if config.proj_size:
            raise NotImplementedError("ONNX's LSTM has no projection (proj_size > 0)")
        nodes = self.onnx_nodes({n: np.asarray(a, dtype) for n, a in params.items()}, config)
        run = {
            (with_state, False): self.session(lstm_model(config, nodes, dtype, with_state))
            for with_state in (False, True)
        }
        return _Built(self, config, run, dtype, nodes)


class _Built:
    def __init__(self, adapter: _OnnxAdapter, config: LSTMConfig, run, dtype: str, nodes) -> None:
        self.adapter, self.config, self.run, self.dtype = adapter, config, run, dtype
        self.nodes = nodes

    def _session(self, with_state: bool, with_lengths: bool):
        """The model with or without initial state and sequence_lens; those with lengths
        made on first use (most runs never ask for them)."""
        key = (with_state, with_lengths)
        if key not in self.run:
            self.run[key] = self.adapter.session(
                lstm_model(self.config, self.nodes, self.dtype, with_state, with_lengths)
            )
        return self.run[key]

    def forward(self, input, state, lengths=None):
        """nn.LSTM's forward; `lengths` (Supports.lengths) go in as ``sequence_lens``."""
        c = self.config
        reject_empty_sequence(c, input)
        if np.ndim(input) == 3 and np.shape(input)[0 if c.batch_first else 1] == 0:
            # Measured: ONNX Runtime 1.32 aborts the process (SIGABRT) on an empty batch, and
            # the reference evaluator fails to reshape it. Declined, not emulated.
            raise NotImplementedError("an empty batch: ONNX's LSTM cannot run it")
        x = np.asarray(input, self.dtype)
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None]
            state = None if state is None else tuple(s[:, None] for s in state)
        elif c.batch_first:
            x = x.swapaxes(0, 1)
        feeds = {"X": np.ascontiguousarray(x)}
        if lengths is not None:
            if unbatched:
                raise ValueError("lengths for unbatched input: lengths need a batch")
            feeds["sequence_lens"] = np.asarray(lengths, np.int32)
        if state is not None:
            d = c.num_directions
            for layer in range(c.num_layers):
                rows = slice(layer * d, (layer + 1) * d)
                feeds[f"initial_h_{layer}"] = np.ascontiguousarray(state[0][rows], self.dtype)
                feeds[f"initial_c_{layer}"] = np.ascontiguousarray(state[1][rows], self.dtype)
        y, h_n, c_n = self._session(state is not None, lengths is not None)(feeds)
        output = self.adapter.read_output(np.asarray(y))
        if unbatched:
            return output[:, 0], (h_n[:, 0], c_n[:, 0])
        if c.batch_first:
            output = output.swapaxes(0, 1)
        return np.ascontiguousarray(output), (np.asarray(h_n), np.asarray(c_n))


class OnnxRuntimeAdapter(_OnnxAdapter):
    name = "onnxruntime"
    description = "an ONNX LSTM node per layer, run by ONNX Runtime (CPU, float32)"
    supports = Supports(projection=False, float64=False, gradients="none", lengths=True)
    requires = ("onnx", "onnxruntime")

    def session(self, model):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # like the reference: one thread, no pool to wake
        options.inter_op_num_threads = 1
        sess = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        return lambda feeds: sess.run(None, feeds)


class OnnxReferenceAdapter(_OnnxAdapter):
    name = "onnx-reference"
    description = "an ONNX LSTM node per layer, run by onnx's reference evaluator (NumPy)"
    # No lengths: the reference evaluator's LSTM ignores sequence_lens (onnx 1.23, measured:
    # it runs every row over the whole padded batch).
    supports = Supports(projection=False, gradients="none")

    def session(self, model):
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(model)

        def run(feeds):
            with np.errstate(over="ignore"):  # its sigmoid's exp overflows to the right 0
                return evaluator.run(None, feeds)

        return run
