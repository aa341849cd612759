"""`parity bench` as a user runs it: rows, JSON, usage errors."""

import json
import sys

import numpy as np
import pytest

from parity.bench import FORMAT, _peak_of, parse_shape
from parity.cli import main

ROW_KEYS = ["implementation", "shape", "dtype", "pass", "seconds", "reference_seconds", "ratio",
            "peak_bytes"]


def test_bench_writes_a_row_per_pass_with_the_documented_keys(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--impl", "numpy", "--shape", "3,2,4,5", "--repeat", "1",
                 "--no-memory", "--json", str(out)]) == 0
    stdout = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["format"] == FORMAT
    assert data["threads"]["torch"] == 1 and data["threads"]["requested"] == 1
    rows = data["rows"]
    assert [r["pass"] for r in rows] == ["forward", "forward+backward"]
    for row in rows:
        assert list(row) == ROW_KEYS
        assert row["implementation"] == "numpy" and row["shape"] == [3, 2, 4, 5]
        assert row["dtype"] == "float32"
        assert row["seconds"] > 0 and row["reference_seconds"] > 0
        assert row["ratio"] == pytest.approx(row["seconds"] / row["reference_seconds"])
    assert rows[0]["peak_bytes"] is None and rows[1]["peak_bytes"] is None  # --no-memory
    assert "forward+backward" in stdout and "ratio" in stdout


def test_into_puts_the_rows_into_a_results_file_that_the_report_renders(tmp_path):
    from parity.report import render_report
    from parity.results import load_results
    from tests.report.html_tree import parse

    results = tmp_path / "parity.json"
    assert main(["check", "--impl", "torch", "--only", "output", "--max-examples", "1",
                 "--seed", "0", "-q", "--no-database", "--json", str(results)]) == 0
    assert main(["bench", "--impl", "numpy", "--shape", "3,2,4,5", "--repeat", "1",
                 "--no-memory", "--into", str(results)]) == 0
    data = load_results(results)
    rows = data["studies"]["bench"]
    assert [r["pass"] for r in rows] == ["forward", "forward+backward"]
    assert all(list(r) == ROW_KEYS for r in rows)
    assert data["implementations"][0]["name"] == "torch"  # the checks are kept
    page = parse(render_report(data))
    assert "numpy" in page.find("section", id="bench").text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
def test_peak_memory_sees_what_a_call_allocates():
    def allocates_16_mib():
        np.ones(4 * 2**20, np.float32).sum()

    def allocates_nothing_large():
        np.ones(16, np.float32).sum()

    assert _peak_of(allocates_16_mib) >= 16 * 2**20
    assert _peak_of(allocates_nothing_large) < 2**20


def test_a_forward_only_implementation_gets_only_the_forward_row(capsys):
    assert main(["bench", "--impl", "tests.cli.test_bench:ForwardOnly", "--shape", "2,1,2,3",
                 "--repeat", "1", "--no-memory"]) == 0
    out = capsys.readouterr().out
    assert "forward " in out and "forward+backward" not in out


@pytest.mark.parametrize("args, message", [
    (["--impl", "numpy", "--shape", "1,2,3"], "must be L,N,I,H"),
    (["--impl", "numpy", "--shape", "1,2,x,4"], "four integers"),
    (["--impl", "numpy", "--shape", "0,2,3,4"], ">= 1"),
    (["--impl", "no-such-name"], "no implementation registered under that name"),
    (["--impl", "numpy", "--repeat", "0"], "0: must be >= 1"),
    (["--impl", "numpy", "--dtype", "float16"], "invalid choice"),
    ([], "--impl"),
])
def test_bench_usage_errors_exit_2_with_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(main(["bench", *args]))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_parse_shape():
    assert parse_shape("100,32,64,128") == (100, 32, 64, 128)


# A forward-only adapter (gradients="none"), loaded by module:attr above.
from parity_implementations.numpy_lstm import NumpyAdapter  # noqa: E402
from parity import Supports  # noqa: E402


class ForwardOnly(NumpyAdapter):
    supports = Supports(gradients="none")
