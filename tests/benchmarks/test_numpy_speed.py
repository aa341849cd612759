"""pytest-benchmark timings of `numpy` and of `nn.LSTM` at `parity bench`'s shapes.

Deselected by default (marker ``benchmark``); run with ``pytest -m benchmark -p no:xdist``
(pytest-benchmark does not time under xdist), compare commits with ``--benchmark-autosave`` and
``pytest-benchmark compare``. They report times and never assert on them; the ratio to
``nn.LSTM`` in one run is what ``parity bench`` prints.
"""

import pytest

from parity import load
from parity.bench import DEFAULT_SHAPES, _Case, set_threads

pytestmark = pytest.mark.benchmark

CALLS = {
    ("numpy", "forward"): "forward",
    ("numpy", "forward+backward"): "forward_backward",
    ("nn.LSTM", "forward"): "reference_forward",
    ("nn.LSTM", "forward+backward"): "reference_forward_backward",
}


@pytest.fixture(scope="module")
def cases():
    set_threads(1)  # as `parity bench` does by default: one thread for torch and the BLAS
    adapter = load("numpy")
    return {shape: _Case(adapter, shape, "float32") for shape in DEFAULT_SHAPES}


@pytest.mark.parametrize("shape", DEFAULT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("who, pass_", list(CALLS), ids=lambda v: str(v))
def test_speed(benchmark, cases, shape, who, pass_):
    benchmark.group = f"{'x'.join(map(str, shape))} {pass_}"
    benchmark.extra_info.update(shape=list(shape), dtype="float32", implementation=who)
    benchmark(getattr(cases[shape], CALLS[who, pass_]))
