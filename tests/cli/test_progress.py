"""Progress while checks run: a live line on a terminal, a plain line now and then in a log."""

import io
import os
import pty
import select
import subprocess
import sys

from parity.cli import _Progress


def _run_on_a_terminal(args: list[str], cwd) -> str:
    """Run the CLI with a pseudo-terminal as stdin, stdout and stderr; all it wrote."""
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "LINES": "40"}
    proc = subprocess.Popen([sys.executable, "-m", "parity", *args], stdin=child, stdout=child,
                            stderr=child, cwd=cwd, env=env, close_fds=True)
    os.close(child)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 600)
            if not ready:
                break
            try:
                data = os.read(main, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(main)
        proc.wait(timeout=600)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_sees_the_live_progress_line(tmp_path):
    out = _run_on_a_terminal(["check", "--impl", "torch", "--only", "output", "--seed", "1",
                              "--max-examples", "5", "--no-database"], tmp_path)
    # The live line: carriage return, implementation, check, cases done of total, elapsed.
    assert "\r  torch: output 1/" in out, out
    assert " cases, " in out and "s (run " in out
    assert "PASS" in out and "verdict: pass" in out


def test_quiet_shows_no_progress_line(tmp_path):
    out = _run_on_a_terminal(["check", "--impl", "torch", "--only", "output", "--seed", "1",
                              "--max-examples", "3", "--no-database", "-q"], tmp_path)
    assert "\r  torch:" not in out and "verdict: pass" in out


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_not_a_terminal_prints_a_plain_line_at_most_every_15_seconds():
    clock, stream = _Clock(), io.StringIO()
    progress = _Progress(stream, clock=clock)
    assert not progress.tty  # a StringIO is not a terminal
    progress("naive", "output", 1, 40)
    clock.now += 14.0
    progress("naive", "output", 2, 40)
    assert stream.getvalue() == ""  # a short run prints nothing
    clock.now += 1.5
    progress("naive", "output", 3, 40)
    clock.now += 3.0
    progress("naive", "h_n", 1, 40)
    assert stream.getvalue() == "... naive: output 3/40 cases, 15s (run 15s)\n"
    clock.now += 60.0
    progress("naive", "h_n", 9, 40)
    lines = stream.getvalue().splitlines()
    assert lines[-1] == "... naive: h_n 9/40 cases, 1m00s (run 1m18s)"
    assert "\r" not in stream.getvalue()
    progress.clear()  # nothing to clear in a log
    assert len(stream.getvalue().splitlines()) == 2


def test_the_terminal_line_is_rewritten_in_place_and_cleared():
    clock, stream = _Clock(), io.StringIO()
    progress = _Progress(stream, tty=True, clock=clock)
    progress("fused", "gradients", 10, 41)
    clock.now += 2
    progress("fused", "gradients", 9, 41)
    text = stream.getvalue()
    assert text.count("\r") == 2 and "\n" not in text
    assert text.endswith("\r  fused: gradients 9/41 cases, 2s (run 2s) ")  # padded over the old
    progress.clear()
    assert stream.getvalue().endswith("\r")


def test_children_side_by_side_each_keep_their_check_and_its_own_time():
    clock, stream = _Clock(), io.StringIO()
    progress = _Progress(stream, jobs=2, tty=True, clock=clock)
    # (seconds later, the report heard, the line then shown); implementations in the order
    # first heard, whatever their checks.
    steps = [
        (0, ("jax", "output", 1, 40), "jax: output 1/40 cases, 0s (run 0s)"),
        (3, ("flax", "h_n", 2, 40),
         "jax: output 1/40 cases, 3s | flax: h_n 2/40 cases, 0s (run 3s)"),
        (2, ("flax", "h_n", 3, 40),
         "jax: output 1/40 cases, 5s | flax: h_n 3/40 cases, 2s (run 5s)"),
        (1, ("jax", "output", 5, 40),
         "jax: output 5/40 cases, 6s | flax: h_n 3/40 cases, 3s (run 6s)"),
        # jax's output is over (heard from last, it would otherwise push flax off the line);
        # a share of its checks goes on in the other child.
        (0, ("over", "jax", "output"), None),
        (0.5, ("jax", "finite-differences", 1, 18),
         "jax: finite-differences 1/18 cases, 0s | flax: h_n 3/40 cases, 3s (run 6s)"),
        # jax's finite differences not told over (a child that crashed never says so): of the
        # three, flax's check, heard from least lately, leaves the line.
        (1, ("jax", "gradients", 1, 40),
         "jax: finite-differences 1/18 cases, 1s; gradients 1/40 cases, 0s (run 7s)"),
    ]
    for later, heard, shown in steps:
        clock.now += later
        if heard[0] == "over":
            progress.over(*heard[1:])
            continue
        progress(*heard)
        assert stream.getvalue().rsplit("\r", 1)[-1].rstrip() == "  " + shown
