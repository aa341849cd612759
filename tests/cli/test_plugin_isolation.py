"""The pytest plugin runs implementations the way `python -m parity check` does: in a child.

A user's first contact with parity is often ``pytest --parity-impl mypkg:MyLSTM``. An
implementation that kills its process or hangs must fail its items with what it was doing, and
the session must go on to the others (here a correct one checked after them), instead of taking
pytest down or stalling it.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
M = "tests.cli.misbehaving"
CORRECT = "tests.harness.lstms.correct:FusedLSTM"


def _pytest(tmp_path, *args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # An empty directory: no test of its own, so the plugin adds one item per check.
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-rfEs", "--parity-max-examples", "3", "--parity-check", "output",
         "--parity-check", "gradients", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_crash_and_a_hang_fail_their_items_and_the_session_goes_on(tmp_path):
    # The 3 s limit is for the hang; the correct implementation after it is only asked to run
    # (its verdict under the default limit is the next test's): no correct LSTM is held to a
    # wall-clock limit this machine's speed decides.
    run = _pytest(tmp_path, "--parity-impl", f"{M}:KillsItself", "--parity-impl", f"{M}:Hangs",
                  "--parity-impl", f"{M}:CrashesOnLoad", "--parity-impl", CORRECT,
                  "--parity-timeout", "3", "-rA")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "crashed (exit code 3) during forward" in out, out
    assert "timeout (ran over the 3s limit)" in out, out
    assert "crashed (exit code 4) while loading" in out, out
    for impl in ("KillsItself", "Hangs", "CrashesOnLoad"):
        for check in ("output", "gradients"):
            assert f"FAILED ::parity[{M}:{impl}-{check}]" in out, out
    # The items after the crashes and the hang ran.
    for check in ("output", "gradients"):
        assert f"parity[{CORRECT}-{check}]" in out, out


def test_after_misbehaving_ones_a_correct_implementation_passes(tmp_path):
    run = _pytest(tmp_path, "--parity-impl", f"{M}:CrashesOnLoad", "--parity-impl", CORRECT)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "2 failed, 2 passed" in out, out


def test_in_process_runs_the_same_checks(tmp_path):
    run = _pytest(tmp_path, "--parity-impl", CORRECT, "--parity-in-process")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_a_broken_implementation_fails_with_where_and_how_to_reproduce(tmp_path):
    run = _pytest(tmp_path, "--parity-impl", "tests.harness.lstms.broken:GateOrderIGFO")
    out = run.stdout
    assert run.returncode == 1, out
    assert "reproduce: python -m parity check --impl tests.harness.lstms.broken:" in out, out


def test_a_name_that_does_not_load_is_a_usage_error_naming_the_plugin_option(tmp_path):
    run = _pytest(tmp_path, "--parity-impl", f"{M}:Missing")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out  # its items fail with the usage error
    assert f"--parity-impl {M}:Missing: module '{M}' has no attribute 'Missing'" in out, out
    assert "--impl" not in out.replace("--parity-impl", ""), out
