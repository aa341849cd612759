"""How fast can a NumPy LSTM forward be here? A lower bound, timed against `nn.LSTM`.

``python -m parity_studies.numpy_floor [--shape L,N,I,H ...] [--repeat N]``

Any LSTM forward does, per step, the matrix products for the four gates' pre-activations and
evaluates 5H x B transcendental functions (sigmoid of three gates, tanh of the candidate and of
the cell state). In NumPy each of these is at least one call: a product through the BLAS, and
``np.exp`` (``np.tanh`` is slower here). This times, interleaved with ``nn.LSTM``'s forward
under ``no_grad`` (medians, one thread for torch and the BLAS, as `parity bench`):

- ``products``: the per-step products alone, ``[W_ih, W_hh, b] @ [x_t; h_{t-1}; 1]`` (what
  `parity_implementations.numpy_lstm` computes), and the same with the input projection hoisted
  out of the loop as one product over all steps;
- ``products + exp``: those products plus one ``np.exp`` over the 4H x B gates and one over the
  H x B cell state per step, and nothing else: no ``1 + e``, no reciprocal, no cell update, no
  output product, no copies in or out;
- ``numpy``: the shipped `numpy` LSTM's forward.

If ``products + exp`` is already close to ``nn.LSTM``, the rest of an LSTM step (at least seven
more elementwise passes) cannot fit in what is left, whatever the NumPy code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from parity.bench import DEFAULT_SHAPES, parse_shape, set_threads

__all__ = ["main", "floor"]


def _loops(shape, rng):
    steps, batch, inp, hid = shape
    f32 = np.float32
    w = (rng.standard_normal((4 * hid, inp + hid + 1)) * 0.1).astype(f32)
    w_hh = np.ascontiguousarray(w[:, inp : inp + hid])
    w_ih_t = np.ascontiguousarray(w[:, :inp].T)
    z = rng.standard_normal((steps + 1, inp + hid + 1, batch)).astype(f32)
    x = rng.standard_normal((steps * batch, inp)).astype(f32)
    a = np.empty((4 * hid, batch), f32)
    c = rng.standard_normal((hid, batch)).astype(f32)
    tc = np.empty_like(c)
    xw = np.empty((steps * batch, 4 * hid), f32)
    h_rows = slice(inp, inp + hid)

    def products():
        for t in range(steps):
            np.matmul(w, z[t], out=a)

    def hoisted():
        np.matmul(x, w_ih_t, out=xw)
        for t in range(steps):
            np.matmul(w_hh, z[t, h_rows], out=a)

    def products_exp():
        for t in range(steps):
            np.matmul(w, z[t], out=a)
            np.exp(a, out=a)
            np.exp(c, out=tc)

    def hoisted_exp():
        np.matmul(x, w_ih_t, out=xw)
        for t in range(steps):
            np.matmul(w_hh, z[t, h_rows], out=a)
            np.exp(a, out=a)
            np.exp(c, out=tc)

    return {
        "products": products,
        "products (input hoisted)": hoisted,
        "products + exp": products_exp,
        "products + exp (input hoisted)": hoisted_exp,
    }


def floor(shape, repeat: int = 21) -> dict[str, float]:
    """Median seconds of each loop, of the `numpy` forward and of `nn.LSTM`'s, interleaved."""
    import torch

    from parity_implementations.numpy_lstm import NumpyLSTM

    steps, batch, inp, hid = shape
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(inp, hid)
    params = {n: p.detach().numpy().copy() for n, p in lstm.named_parameters()}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, inp)).astype(np.float32)
    x_t = torch.from_numpy(x)
    ours = NumpyLSTM(inp, hid, params=params, dtype="float32")

    def reference():
        with torch.no_grad():
            lstm(x_t)

    calls = {**_loops(shape, rng), "numpy": lambda: ours.forward(x), "nn.LSTM": reference}
    times = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m parity_studies.numpy_floor", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--shape",
        action="append",
        type=parse_shape,
        metavar="L,N,I,H",
        help="seq_len,batch,input,hidden; repeatable (default: parity bench's three)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=21,
        metavar="N",
        help="timed calls of each, interleaved (default: 21)",
    )
    args = p.parse_args(argv)
    set_threads(1)
    for shape in args.shape or DEFAULT_SHAPES:
        medians = floor(tuple(shape), args.repeat)
        ref = medians["nn.LSTM"]
        print(
            f"shape {tuple(shape)} float32, one thread; ratio to nn.LSTM's forward "
            f"({ref * 1e3:.2f} ms):"
        )
        for name, seconds in medians.items():
            print(f"  {name:32s} {seconds * 1e3:8.2f} ms  {seconds / ref:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
