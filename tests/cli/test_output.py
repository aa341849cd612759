"""What a run prints and leaves behind: warnings counted once per check, nothing written to the
working directory with --no-database, look-alikes named by their own docstring or their class,
and a feature that does not apply shown as such."""

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from parity.registry import LookalikeAdapter
from tests.cli.plain_lookalikes import OneLayerLSTM, WarningLSTM

# One xdist worker for the module, so that the module-scoped CLI run (`both`) runs once.
pytestmark = pytest.mark.xdist_group("output")

ROOT = Path(__file__).resolve().parents[2]
ONE_LAYER = "tests.cli.plain_lookalikes:OneLayerLSTM"
WARNING = "tests.cli.plain_lookalikes:WarningLSTM"


def run(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "parity", "check", "--seed", "1",
                           "--max-examples", "3", "-q", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """One run of both look-alikes, from an empty directory, with --no-database."""
    cwd = tmp_path_factory.mktemp("cwd")
    proc = run("--impl", ONE_LAYER, "--impl", WARNING, "--only", "output", "--only",
               "gradients", "--no-database", "--json", "out.json", cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, cwd


def test_no_database_leaves_nothing_in_the_working_directory(both):
    _, cwd = both
    assert sorted(p.name for p in cwd.iterdir()) == ["out.json"]  # no .hypothesis/, no .parity/


def test_an_implementations_warnings_are_counted_once_per_check(both):
    proc, cwd = both
    assert "RuntimeWarning" not in proc.stderr and "a third call" not in proc.stderr
    lines = [x.strip() for x in proc.stdout.splitlines() if "warnings:" in x]
    assert len(lines) == 2  # one per check of WarningLSTM, none for OneLayerLSTM
    data = json.loads((cwd / "out.json").read_text())
    warning_lstm = next(i for i in data["implementations"] if i["target"] == WARNING)
    for line, check in zip(lines, warning_lstm["checks"]):
        got = re.fullmatch(r"warnings: (\d+) raised by the implementation: (\d+) x "
                           r"RuntimeWarning: overflow encountered in exp "
                           r"\(\S*tests/cli/plain_lookalikes\.py:\d+\); "
                           r"1 other kind \(-v lists them\)", line)
        assert got, line
        total, overflows = map(int, got.groups())
        kinds = {w["category"]: w for w in check["warnings"]}
        assert set(kinds) == {"RuntimeWarning", "FutureWarning"}
        assert kinds["RuntimeWarning"]["count"] == overflows >= check["examples"]
        # every third call warns too
        assert total == overflows + kinds["FutureWarning"]["count"]
        assert kinds["FutureWarning"]["count"] == pytest.approx(overflows / 3, abs=1)


def test_verbose_lists_every_kind(tmp_path):
    proc = run("--impl", WARNING, "--only", "output", "--no-database", "-v", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"\n +\d+ x RuntimeWarning: overflow encountered in exp \(", out), out
    assert re.search(r"\n +\d+ x FutureWarning: a third call \(", out), out
    assert "-v lists them" not in out and "RuntimeWarning" not in proc.stderr


def test_the_example_database_and_hypothesis_caches_stay_under_dot_parity(tmp_path):
    proc = run("--impl", "torch", "--only", "output", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".parity"]


def test_a_lookalike_without_a_docstring_is_named_by_its_class_and_module(both):
    proc, _ = both
    assert "Base class for all neural network modules" not in proc.stdout
    assert (f"{ONE_LAYER}: drop-in nn.LSTM look-alike tests.cli.plain_lookalikes.OneLayerLSTM"
            in proc.stdout)
    assert LookalikeAdapter(OneLayerLSTM).description == \
        "drop-in nn.LSTM look-alike tests.cli.plain_lookalikes.OneLayerLSTM"
    # its own docstring, when it has one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its warnings, from the probing calls
        adapter = LookalikeAdapter(WarningLSTM)
    assert adapter.description.startswith("nn.LSTM, with a NumPy overflow")


def test_dropout_for_a_one_layer_implementation_is_not_applicable_not_unsupported(both):
    proc, _ = both
    block = proc.stdout.split(f"{WARNING}:")[0]
    assert "unsupported features (not drawn): multi_layer, bidirectional, projection, " \
           "unbatched, packed, lengths\n" in block
    assert "not applicable: dropout (one layer only" in block
