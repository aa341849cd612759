"""Implementations that misbehave: each is named, with the call and the case, and the run goes on.

One drop-in look-alike per misbehaviour (tests/cli/misbehaving.py) goes through
``python -m parity check --impl module:Class --json out.json``: in-process through `main` for
most (the implementation still runs in a child process: that is the point), and as a real
subprocess where the process itself matters (crashes among good implementations, Ctrl-C).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parity.cli import main

M = "tests.cli.misbehaving"
CORRECT = "tests.harness.lstms.correct:FusedLSTM"
FAST = ["--max-examples", "3", "--seed", "0", "-q", "--no-database"]
ROOT = Path(__file__).resolve().parents[2]
# A subprocess run pays for its interpreter and imports; one case per check keeps the rest small.
ONE_CASE = "input_size=2,hidden_size=3,seq_len=4,batch=2,seed=1"


def check(tmp_path, *args):
    out = tmp_path / "out.json"
    code = main(["check", *args, "--json", str(out), *FAST])
    return code, json.loads(out.read_text())


@pytest.mark.parametrize("cls, only, status, words", [
    ("Raises", "output", "error", "forward raised RuntimeError: boom"),
    ("ReturnsOutputOnly", "output", "wrong-structure", "expected (output, (h_n, c_n))"),
    ("WrongShape", "output", "wrong-shape", "output has shape"),
    ("ReturnsFloat64", "output", "wrong-dtype", "output is float64; asked for float32"),
    ("ReturnsNaN", "output", "nan", "output is nan where nn.LSTM gives"),
    ("Nondeterministic", "output", "nondeterministic", "forward called twice on the same case"),
    ("Nondeterministic", "gradients", "nondeterministic", "gradients called twice"),
    ("MutatesInput", "output", "mutates-input", "changed the tensors it was given in place: "
                                                "input (max |change|"),
    ("MutatesInput", "gradients", "mutates-input", "gradients: changed the tensors"),
    ("MutatesWeights", "h_n", "mutates-input", "weight_hh_l0 (max |change|"),
    ("KillsItself", "output", "crashed", "crashed (exit code 3) during forward"),
    ("Segfaults", "output", "crashed", "crashed (killed by SIGSEGV) during forward"),
])
def test_each_misbehaviour_has_its_status_and_a_one_line_message(cls, only, status, words,
                                                                  tmp_path, capsys):
    code, data = check(tmp_path, "--impl", f"{M}:{cls}", "--only", only, "--no-shrink")
    assert code == 1
    assert data["verdict"] == "error"
    (impl,) = data["implementations"]
    assert impl["status"] == status
    (record,) = impl["checks"]
    assert record["status"] == status
    message = record["message"]
    # One line naming the implementation, the call and the case; the same on stdout.
    assert message.startswith(f"{M}:{cls}: ") and words in message
    assert "[case input_size=" in message and "\n" not in message
    out = capsys.readouterr()
    assert message in out.out and "Traceback" not in out.out + out.err
    failure = record["failure"]
    assert failure["case_id"] in message
    assert failure["reproduce"].endswith(f'--only {only} --case "{failure["case_id"]}"')


def test_a_crash_records_the_exit_status_and_the_call(tmp_path):
    _, data = check(tmp_path, "--impl", f"{M}:Segfaults", "--only", "output")
    failure = data["implementations"][0]["checks"][0]["failure"]
    assert failure["crashed"] == {"call": "forward", "exit_code": None, "signal": "SIGSEGV"}
    _, data = check(tmp_path, "--impl", f"{M}:KillsItself", "--only", "output")
    failure = data["implementations"][0]["checks"][0]["failure"]
    assert failure["crashed"] == {"call": "forward", "exit_code": 3, "signal": None}


def test_wrong_shape_and_dtype_say_expected_against_got_per_tensor(tmp_path):
    _, data = check(tmp_path, "--impl", f"{M}:WrongShape", "--only", "output")
    failure = data["implementations"][0]["checks"][0]["failure"]
    output = failure["tensors"]["output"]
    steps, batch, width = output["want"]["shape"]
    assert output["got"]["shape"] == [batch, steps, width] != output["want"]["shape"]
    assert failure["tensors"]["h_n"]["got"]["shape"] == failure["tensors"]["h_n"]["want"]["shape"]
    _, data = check(tmp_path, "--impl", f"{M}:ReturnsFloat64", "--only", "output")
    tensors = data["implementations"][0]["checks"][0]["failure"]["tensors"]
    assert {t["got"]["dtype"] for t in tensors.values()} == {"float64"}
    assert {t["want"]["dtype"] for t in tensors.values()} == {"float32"}


def test_a_hang_is_a_timeout_and_the_other_checks_are_not_waited_for_again(tmp_path):
    code, data = check(tmp_path, "--impl", f"{M}:Hangs", "--only", "output", "--only", "h_n",
                       "--timeout", "1")
    assert code == 1
    (impl,) = data["implementations"]
    assert impl["status"] == "timeout"
    first, second = impl["checks"]
    assert first["status"] == second["status"] == "timeout"
    assert first["failure"]["timeout"] == {"call": "forward", "limit_s": 1.0}
    assert "timeout (ran over the 1s limit) during forward [case " in first["message"]
    assert "not waited for again" in second["message"]


def test_a_crash_while_loading_is_the_implementations_status(tmp_path):
    code, data = check(tmp_path, "--impl", f"{M}:CrashesOnLoad", "--impl", CORRECT,
                       "--only", "output")
    assert code == 1
    crashed, correct = data["implementations"]
    assert crashed["status"] == "crashed" and crashed["checks"] == []
    assert "crashed (exit code 4) while loading" in crashed["error"]
    assert correct["status"] == "pass"


def test_not_implemented_at_call_time_stays_unsupported(tmp_path, capsys):
    code, data = check(tmp_path, "--impl", f"{M}:DeclinesLongSequences", "--only", "h_n",
                       "--time-budget", "5")
    assert code == 0
    (record,) = data["implementations"][0]["checks"]
    assert record["status"] == "pass" and record["unsupported_cases"] > 0
    # The summary says how many cases were declined, not only the JSON.
    assert f"{record['unsupported_cases']} declined (NotImplementedError)" in \
        capsys.readouterr().out


def test_side_by_side_the_order_and_the_verdicts_are_kept(tmp_path):
    code, data = check(tmp_path, "-j", "2", "--impl", f"{M}:KillsItself", "--impl", CORRECT,
                       "--only", "h_n")
    assert code == 1
    assert [i["status"] for i in data["implementations"]] == ["crashed", "pass"]


def run_parity(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "parity", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, **kwargs)


def test_crashes_and_a_hang_between_good_implementations_leave_the_others_reported(tmp_path):
    out = tmp_path / "out.json"
    proc = run_parity("check", "--impl", CORRECT, "--impl", f"{M}:Segfaults", "--impl",
                      f"{M}:Hangs", "--impl", f"{M}:KillsItself", "--impl", "fused",
                      "--only", "h_n", "--timeout", "2", "--case", ONE_CASE, "--json",
                      str(out), *FAST)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert [i["status"] for i in data["implementations"]] == \
        ["pass", "crashed", "timeout", "crashed", "pass"]
    assert all(i["checks"][0]["examples"] == 1 for i in data["implementations"][::4])


def test_ctrl_c_kills_the_children_and_leaves_the_previous_json(tmp_path):
    out = tmp_path / "out.json"
    out.write_text("previous")
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen(
        [sys.executable, "-m", "parity", "check", "--impl", CORRECT, "--impl", f"{M}:Hangs",
         "--only", "output", "--timeout", "600", "--case", ONE_CASE, "--json", str(out),
         # One child at a time, so that the first is decided when the second hangs (side by
         # side, the hang could start before the first is done: "0 of 2 decided").
         "-j", "1", *FAST],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PARITY_TEST_PIDFILE": str(pidfile)},
        # A pytest-xdist worker ignores SIGINT, and an ignored signal stays ignored across exec:
        # give the command a terminal's default, as a user's shell would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        child = int(pidfile.read_text().split()[0])
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in stdout + stderr
    assert "interrupted: 1 of 2 implementations decided (checks: 1 pass); nothing written" \
        in stdout
    assert out.read_text() == "previous"
    assert not [p for p in tmp_path.iterdir() if p.name not in ("out.json", "pid")]
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_ctrl_c_kills_children_side_by_side(tmp_path):
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen(
        [sys.executable, "-m", "parity", "check", "--impl", f"{M}:Hangs", "--impl",
         f"{M}:AlsoHangs", "--only", "output", "--timeout", "600", "--case", ONE_CASE,
         "--json", str(tmp_path / "out.json"), "-j", "2", *FAST],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PARITY_TEST_PIDFILE": str(pidfile)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (
                pidfile.exists() and len(pidfile.read_text().split()) == 2):
            time.sleep(0.2)
        children = [int(pid) for pid in pidfile.read_text().split()]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted: 0 of 2 implementations decided; nothing written" in stdout
    assert not (tmp_path / "out.json").exists()
    deadline = time.monotonic() + 10
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(set(children)) == 2 and not any(map(_alive, children))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_example_database_replays_a_failure_first_unless_a_seed_is_given(tmp_path,
                                                                             monkeypatch):
    from parity import as_adapter
    from parity.isolation import example_database
    from parity.runner import Checker

    target = f"{M}:WrongOnWideInput"
    monkeypatch.chdir(tmp_path)
    base = ["check", "--impl", target, "--only", "output", "--no-shrink", "-q"]
    assert main([*base, "--seed", "0", "--max-examples", "1", "--no-database"]) == 0
    assert not (tmp_path / ".parity").exists()
    # Seed 0 draws a failing case on its second example (as the strategies stand: a change to
    # them may need another seed here); the run saves it (a seeded run writes to the database
    # but does not read it, so that the seed alone decides what is drawn).
    assert main([*base, "--seed", "0", "--max-examples", "2"]) == 1
    directory = tmp_path / ".parity" / "examples"
    assert any(p.is_file() for p in directory.rglob("*"))

    # Seed 0 with one example passes; with the database read, the saved failure comes back.
    adapter = as_adapter(__import__(M, fromlist=["x"]).WrongOnWideInput, name=target,
                         target=target)

    def run(database):
        return Checker(adapter, seed=0, max_examples=1, shrink=False, time_budget=3600,
                       database=database).run("output")
    replayed = run(example_database(str(directory)))
    assert replayed.status == "fail"
    assert replayed.failure["case"]["input_size"] > replayed.failure["case"]["hidden_size"] + 8
    assert run(example_database(str(directory), read=False)).status == "pass"


def test_saved_examples_are_kept_apart_per_implementation_and_check():
    """One database holds the examples of every implementation and check: each sees its own."""
    from hypothesis.database import InMemoryExampleDatabase

    from parity.runner import KeyedDatabase

    shared = InMemoryExampleDatabase()
    a, b = KeyedDatabase(shared, "mypkg:LSTM\0output"), KeyedDatabase(shared, "mypkg:LSTM\0h_n")
    a.save(b"digest", b"case-a")
    b.save(b"digest", b"case-b")
    assert list(a.fetch(b"digest")) == [b"case-a"]
    assert list(b.fetch(b"digest")) == [b"case-b"]
    a.move(b"digest", b"digest.secondary", b"case-a")
    assert list(a.fetch(b"digest")) == [] and list(a.fetch(b"digest.secondary")) == [b"case-a"]
    b.delete(b"digest", b"case-b")
    assert list(b.fetch(b"digest")) == [] and list(a.fetch(b"digest.secondary")) == [b"case-a"]


def test_the_report_renders_crashes_and_misbehaviours(tmp_path):
    page = tmp_path / "parity.html"
    code = main(["report", "--impl", f"{M}:KillsItself", "--impl", f"{M}:CrashesOnLoad",
                 "--impl", f"{M}:WrongShape", "--only", "output", "--case", ONE_CASE,
                 "--out", str(page), *FAST])
    assert code == 1
    html = page.read_text()
    assert "crashed" in html and "wrong-shape" in html


# -- one implementation's checks split between children (more cores than implementations) -----
def test_checks_are_split_in_parts_of_about_equal_cost_and_shared_runs_stay_together():
    from parity.checks import CHECKS
    from parity.isolation import COSTS, SHARED_RUNS, _parts

    parts = _parts(list(CHECKS), 2)
    assert len(parts) == 2
    assert sorted(c for p in parts for c in p) == sorted(CHECKS)  # each check once
    assert any(set(SHARED_RUNS) <= set(p) for p in parts)
    for p in parts:
        assert p == [c for c in CHECKS if c in p]  # in the checks' own order
    a, b = (sum(COSTS.get(c, 1) for c in p) for p in parts)
    assert abs(a - b) <= max(COSTS.values())
    # Never more parts than there are groups, nor empty ones.
    assert _parts(["output", "h_n"], 4) == [["output", "h_n"]]
    assert _parts(["output", "causality"], 1) == [["output", "causality"]]


def _statuses_and_cases(data):
    return [(c["check"], c["status"], c["examples"], (c.get("failure") or {}).get("case"))
            for i in data["implementations"] for c in i["checks"]]


def test_split_between_children_the_records_are_those_of_one_child(tmp_path):
    broken = "tests.harness.lstms.broken:GateOrderIGFO"
    only = ["--only", "output", "--only", "h_n", "--only", "causality", "--only", "determinism"]
    code1, one = check(tmp_path, "-j", "1", "--impl", broken, *only, "--no-shrink")
    code2, two = check(tmp_path, "-j", "2", "--impl", broken, *only, "--no-shrink")
    assert code1 == code2 == 1
    assert _statuses_and_cases(one) == _statuses_and_cases(two)
    assert [c["check"] for c in two["implementations"][0]["checks"]] == \
        ["output", "h_n", "causality", "determinism"]
    assert two["implementations"][0]["features"] == one["implementations"][0]["features"]


def test_split_between_children_a_crash_in_each_part_is_recorded_where_it_happened(tmp_path):
    code, data = check(tmp_path, "-j", "2", "--impl", f"{M}:KillsItself", "--only", "h_n",
                       "--only", "causality", "--case", ONE_CASE)
    assert code == 1
    (impl,) = data["implementations"]
    assert impl["status"] == "crashed"
    assert [(c["check"], c["status"]) for c in impl["checks"]] == \
        [("h_n", "crashed"), ("causality", "crashed")]
    assert all("crashed (exit code 3) during forward" in c["message"] for c in impl["checks"])


def test_each_checks_record_is_told_as_it_comes_back_from_the_children():
    from parity.isolation import Options, check_isolated, load_isolated

    options = Options(checks=("h_n", "causality", "determinism"), seed=0, max_examples=2,
                      time_budget=3600.0,
                      case=ONE_CASE, threads=1)
    heard = []
    (record,) = check_isolated(
        [CORRECT], load_isolated([CORRECT], options), options, jobs=2,
        on_check=lambda name, check: heard.append((name, check.check, check.status)))
    assert sorted(heard) == sorted((record.name, c.check, c.status) for c in record.checks)
    assert len(heard) == 3 and {status for *_, status in heard} == {"pass"}
