"""Timing implementations against `torch.nn.LSTM`: what ``parity bench`` runs.

For each shape (seq_len L, batch N, input I, hidden H; one layer, one direction, time-major, with
bias, no initial state) and each implementation, four things are timed in the same process,
interleaved round by round so that a busy machine slows them alike:

- the implementation's forward: its adapter's ``Built.forward`` on NumPy arrays;
- the implementation's forward+backward: ``Built.gradients`` (gradients for the input and every
  parameter of ``sum(g_out * output) + sum(g_h * h_n) + sum(g_c * c_n)``);
- the reference's forward: ``nn.LSTM`` on tensors under ``torch.no_grad()`` (nothing kept for a
  backward, as an implementation's forward keeps nothing);
- the reference's forward+backward: ``nn.LSTM`` forward with gradients recorded, then
  ``torch.autograd.grad`` of the same loss for the input and every parameter.

Times are wall-clock medians; `ratio` is the implementation's over the reference's. A torch-based
implementation's adapter converts to and from NumPy inside the timed call; that cost is its own.
An implementation with ``gradients="none"`` gets only the forward row.

Peak memory (`peak_bytes`) of one forward+backward call is measured in a child process, after a
warm-up call, as the larger of two lower bounds:

- the growth of the resident set: glibc's malloc is told to map every block of 64 KiB or more on
  its own and unmap it when freed (``MALLOC_MMAP_THRESHOLD_``), so resident memory follows what
  is live; the kernel's high-water mark is reset (``/proc/self/clear_refs``) before the call and
  read after it. This sees any allocator (NumPy's, torch's), at page granularity, but not
  memory an allocator keeps cached from the warm-up (oneDNN's scratch space, small blocks in
  malloc's arenas);
- `tracemalloc`'s peak over the call: every NumPy array, exactly; blind to torch's tensors and
  to any allocator that does not report to Python.

Where neither can be measured (not Linux), it is null.

The rows are the same list `RunRecord.studies["bench"]` holds.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from .adapter import Adapter, LSTMConfig, parameter_shapes

__all__ = [
    "DEFAULT_REPEAT",
    "DEFAULT_SHAPES",
    "FORMAT",
    "BenchRow",
    "bench",
    "parse_shape",
    "set_threads",
]

FORMAT = "parity-bench/1"
# (seq_len, batch, input, hidden): issue 4's shape, a small one (call overhead) and a long one.
DEFAULT_SHAPES = ((100, 32, 64, 128), (20, 4, 8, 16), (500, 8, 32, 64))
DEFAULT_REPEAT = 15
SEED = 0
MMAP_THRESHOLD = 65536  # bytes: blocks from this size on are mapped (and unmapped) one by one


@dataclass
class BenchRow:
    """One timing row: an implementation, a shape, a dtype and a pass."""

    implementation: str
    shape: list
    dtype: str
    pass_: str  # "forward" or "forward+backward"
    seconds: float
    reference_seconds: float
    ratio: float
    peak_bytes: int | None = None

    def to_json(self) -> dict:
        row = asdict(self)
        row["pass"] = row.pop("pass_")
        return {
            k: row[k]
            for k in (
                "implementation",
                "shape",
                "dtype",
                "pass",
                "seconds",
                "reference_seconds",
                "ratio",
                "peak_bytes",
            )
        }


def parse_shape(text: str) -> tuple[int, int, int, int]:
    """``"100,32,64,128"`` -> (seq_len, batch, input, hidden); ValueError saying what is wrong."""
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(
            f"{text!r}: must be L,N,I,H (seq_len, batch, input, hidden), four integers"
        )
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r}: must be four integers L,N,I,H") from None
    if min(values) < 1:
        raise ValueError(f"{text!r}: every size must be >= 1")
    return values  # type: ignore[return-value]


def set_threads(n: int) -> dict:
    """Give torch's pool and the BLAS's (NumPy's OpenBLAS, OpenMP) `n` threads; say what they
    are."""
    import torch

    torch.set_num_threads(n)
    blas = None
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # then the BLAS keeps what OPENBLAS_NUM_THREADS / OMP_NUM_THREADS said
        pass
    else:
        threadpool_limits(limits=n)
        blas = {
            f"{p['internal_api']}:{os.path.basename(p['filepath'])}": p["num_threads"]
            for p in threadpool_info()
        }
    return {"requested": n, "torch": torch.get_num_threads(), "blas": blas}


# -- one case ----------------------------------------------------------------------------------
class _Case:
    """Weights, inputs and cotangents for one shape and dtype, and the four timed calls."""

    def __init__(self, adapter: Adapter, shape, dtype: str) -> None:
        import torch

        steps, batch, inp, hidden = shape
        self.config = LSTMConfig(input_size=inp, hidden_size=hidden)
        torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
        torch.manual_seed(SEED)
        self.reference = torch.nn.LSTM(inp, hidden, dtype=torch_dtype)
        params = {n: p.detach().numpy().copy() for n, p in self.reference.named_parameters()}
        assert set(params) == set(parameter_shapes(self.config))
        rng = np.random.default_rng(SEED)
        self.x = rng.standard_normal((steps, batch, inp)).astype(dtype)
        self.cotangents = (
            rng.standard_normal((steps, batch, hidden)).astype(dtype),
            rng.standard_normal((1, batch, hidden)).astype(dtype),
            rng.standard_normal((1, batch, hidden)).astype(dtype),
        )
        self.x_t = torch.from_numpy(self.x)
        self.g_t = tuple(torch.from_numpy(g) for g in self.cotangents)
        self.built = adapter.build(self.config, params, dtype)
        self.has_gradients = adapter.supports.gradients != "none"

    def forward(self) -> None:
        self.built.forward(self.x, None)

    def forward_backward(self) -> None:
        self.built.gradients(self.x, None, self.cotangents)

    def reference_forward(self) -> None:
        import torch

        with torch.no_grad():
            self.reference(self.x_t)

    def reference_forward_backward(self) -> None:
        import torch

        x = self.x_t.detach().requires_grad_(True)
        output, (h_n, c_n) = self.reference(x)
        g_out, g_h, g_c = self.g_t
        loss = (g_out * output).sum() + (g_h * h_n).sum() + (g_c * c_n).sum()
        torch.autograd.grad(loss, [x, *self.reference.parameters()])


def _interleaved(calls: dict[str, Callable[[], None]], repeat: int) -> dict[str, float]:
    """Median seconds of each call, timed round-robin `repeat` times after one warm-up each."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for r in range(repeat):
        # Rotate the order each round: none always runs right after the same neighbour.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench(
    adapters: Sequence[Adapter],
    shapes=DEFAULT_SHAPES,
    dtype: str = "float32",
    repeat: int = DEFAULT_REPEAT,
    memory: bool = True,
    threads: int | None = None,
    out=None,
) -> tuple[list[BenchRow], list[dict]]:
    """Time every adapter at every shape against `nn.LSTM`; rows, and the reference's memory.

    Prints one line per row to `out` as it goes. Returns the rows and, per shape, the
    reference's peak memory (``{"shape", "dtype", "peak_bytes"}``).
    """
    rows: list[BenchRow] = []
    for adapter in adapters:
        for shape in shapes:
            try:
                case = _Case(adapter, shape, dtype)
            except NotImplementedError as exc:
                if out:
                    print(
                        f"  {adapter.name} {_shape_text(shape)} {dtype}: unsupported ({exc})",
                        file=out,
                    )
                continue
            calls = {"forward": case.forward, "reference forward": case.reference_forward}
            if case.has_gradients:
                calls["forward+backward"] = case.forward_backward
                calls["reference forward+backward"] = case.reference_forward_backward
            medians = _interleaved(calls, repeat)
            for pass_ in ("forward", "forward+backward"):
                if pass_ not in medians:
                    continue
                seconds, ref = medians[pass_], medians["reference " + pass_]
                rows.append(
                    BenchRow(adapter.name, list(shape), dtype, pass_, seconds, ref, seconds / ref)
                )
            del case
            gc.collect()
    reference_memory: list[dict]
    reference_memory = [{"shape": list(s), "dtype": dtype, "peak_bytes": None} for s in shapes]
    if memory:
        peaks = measure_memory([a.target or a.name for a in adapters], shapes, dtype, threads)
        for row in rows:
            if row.pass_ == "forward+backward":
                row.peak_bytes = peaks.get(_memory_key(row.implementation, row.shape))
        for entry in reference_memory:
            entry["peak_bytes"] = peaks.get(_memory_key(None, entry["shape"]))
    if out:
        _print_rows(rows, reference_memory, out)
    return rows, reference_memory


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _print_rows(rows: list[BenchRow], reference_memory: list[dict], out) -> None:
    ref_peak = {tuple(e["shape"]): e["peak_bytes"] for e in reference_memory}
    width = max([len(r.implementation) for r in rows] + [14])
    print(
        f"{'implementation':<{width}}  {'shape (L, N, I, H)':<20} {'pass':<17} "
        f"{'median':>10} {'nn.LSTM':>10} {'ratio':>6}  {'peak MiB':>8} {'nn.LSTM':>8}",
        file=out,
    )
    for r in rows:
        peak = _mib(r.peak_bytes) if r.pass_ == "forward+backward" else ""
        rpeak = _mib(ref_peak.get(tuple(r.shape))) if r.pass_ == "forward+backward" else ""
        print(
            f"{r.implementation:<{width}}  {_shape_text(r.shape):<20} {r.pass_:<17} "
            f"{r.seconds * 1e3:>8.2f}ms {r.reference_seconds * 1e3:>8.2f}ms {r.ratio:>6.2f}  "
            f"{peak:>8} {rpeak:>8}",
            file=out,
        )


def _mib(value) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f}"


def to_json(
    rows: list[BenchRow],
    reference_memory: list[dict],
    threads: dict,
    repeat: int,
    environment: dict,
) -> str:
    """The ``parity bench --json`` document (README: `parity bench`)."""
    return json.dumps(
        {
            "format": FORMAT,
            "environment": environment,
            "threads": threads,
            "repeat": repeat,
            "timing": "median wall-clock seconds of interleaved calls in one process",
            "memory": "peak bytes of one forward+backward call after a warm-up, in a child "
            "process: the larger of resident-set growth (MALLOC_MMAP_THRESHOLD_="
            f"{MMAP_THRESHOLD}, high-water mark reset before the call) and tracemalloc's "
            "peak (NumPy arrays); null where it cannot be measured",
            "reference_memory": reference_memory,
            "rows": [r.to_json() for r in rows],
        },
        indent=1,
    )


# -- peak memory, in a child process ----------------------------------------------------------
def _memory_key(implementation: str | None, shape) -> str:
    return f"{implementation or 'nn.LSTM'}|{','.join(str(s) for s in shape)}"


def measure_memory(
    targets: Sequence[str], shapes, dtype: str, threads: int | None = None
) -> dict[str, int | None]:
    """Peak resident growth of forward+backward per implementation and shape (and nn.LSTM's)."""
    if not os.path.exists("/proc/self/clear_refs"):
        return {}
    request = {
        "targets": list(targets),
        "shapes": [list(s) for s in shapes],
        "dtype": dtype,
        "threads": threads,
    }
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
    proc = subprocess.run(
        [sys.executable, "-c", "from parity.bench import _memory_child; _memory_child()"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if proc.returncode != 0:
        return {}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def _resident() -> tuple[int, int]:
    """(current, high-water) resident set size in bytes, from /proc/self/status."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def _peak_of(call: Callable[[], None]) -> int | None:
    """The larger of two lower bounds on the call's peak memory (module docstring)."""
    call()  # warm-up: lazy initialisation is not the call's memory
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset the high-water mark to the current resident size
    except OSError:
        return None
    before, _ = _resident()
    call()
    _, high = _resident()
    gc.collect()
    tracemalloc.start()
    try:
        call()
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(high - before, traced, 0)


def _memory_child() -> None:
    from .registry import load

    request = json.loads(sys.stdin.read())
    if request["threads"]:
        set_threads(request["threads"])
    peaks: dict[str, int | None] = {}
    for target in request["targets"]:
        adapter = load(target)
        for shape in request["shapes"]:
            try:
                case = _Case(adapter, shape, request["dtype"])
            except NotImplementedError:
                continue
            if case.has_gradients:
                peaks[_memory_key(adapter.name, shape)] = _peak_of(case.forward_backward)
            key = _memory_key(None, shape)
            if key not in peaks:
                peaks[key] = _peak_of(case.reference_forward_backward)
            del case
            gc.collect()
    print(json.dumps(peaks))
