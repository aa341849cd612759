"""The command line as a user runs it: exit codes, messages, the JSON, reproduction."""

import json
import shlex
import subprocess
import sys

import pytest

from parity import PROPERTIES
from parity.cli import main
from parity.results import FORMAT

CORRECT = "tests.harness.lstms.correct:FusedLSTM"
BROKEN = "tests.harness.lstms.broken:GateOrderIGFO"
FAST = ["--max-examples", "3", "--seed", "0", "-q"]


def run(*args):
    return subprocess.run([sys.executable, "-m", "parity", *args], capture_output=True,
                          text=True, timeout=600)


def test_help_lists_the_commands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("check", "report", "list"):
        assert command in out.stdout
    assert "exit status" in out.stdout


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_list_shows_every_built_in(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("torch", "naive", "fused", "peephole", "lstmcell"):
        assert name in out
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"torch", "naive", "fused", "peephole", "lstmcell"}
    assert next(r for r in rows if r["name"] == "lstmcell")["supports"]["projection"] is False


@pytest.mark.parametrize("args, message", [
    (["--impl", "no-such-name"], "no implementation registered under that name"),
    (["--impl", "no_such_module_xyz:LSTM"], "cannot import 'no_such_module_xyz'"),
    (["--impl", "tests.cli.misbehaving:Missing"], "has no attribute 'Missing'"),
    (["--impl", "tests.cli.misbehaving:NOT_AN_LSTM"], "neither a parity adapter"),
    (["--impl", "fused", "--max-examples", "-1"], "-1: must be >= 1"),
    (["--impl", "fused", "--max-examples", "many"], "'many': not an integer"),
    (["--impl", "fused", "--only", "everything"], "must be one of output, h_n"),
    (["--impl", "fused", "--case", "input_size=0,hidden_size=1,seq_len=1"], "input_size=0"),
    (["--impl", "fused", "--json", "/proc/no/such/dir/out.json"], "--json /proc/no/such/dir"),
    (["--impl", "fused", "--json", "/"], "is a directory"),
    (["--impl", "tests.cli.broken_import:LSTM"],
     "cannot import 'tests.cli.broken_import': ModuleNotFoundError: No module named "
     "'no_such_dependency_xyz'"),
    (["--impl", "tests.cli.misbehaving:"], "expected NAME or MODULE:ATTR"),
    (["--impl", "tests.cli.misbehaving:OwnParameterNames"],
     "is not a drop-in nn.LSTM look-alike: its parameters are not nn.LSTM's"),
    (["--impl", "tests.cli.misbehaving:AN_INSTANCE"], "is an nn.Module instance; give the class"),
    (["--impl", "fused", "--timeout", "0"], "--timeout: 0.0: must be > 0"),
    (["--impl", "fused", "-j", "0"], "-j/--jobs: 0: must be >= 1"),
    (["--impl", "fused", "--json", "/proc/version"], "--json /proc/version"),
])
def test_usage_errors_exit_2_with_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        code = main(["check", *args])
        raise SystemExit(code)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_correct_lookalike_passes_with_exit_0(tmp_path):
    out = tmp_path / "out.json"
    proc = run("check", "--impl", CORRECT, "--json", str(out), *FAST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["format"] == FORMAT and data["verdict"] == "pass" and data["seed"] == 0
    (impl,) = data["implementations"]
    assert impl["target"] == CORRECT and impl["status"] == "pass"
    assert [c["check"] for c in impl["checks"]] == ["output", "h_n", "c_n", "gradients",
                                                   "finite-differences", *PROPERTIES]
    assert {c["check"] for c in impl["checks"] if c["kind"] == "property"} == set(PROPERTIES)
    training = next(c for c in impl["checks"] if c["check"] == "training")
    assert [r["optimizer"] for r in training["data"]["runs"]] == ["sgd", "adam"]
    # It takes no PackedSequence, nor lengths: the variable-length checks are unsupported,
    # never passed.
    packed = {"packed", "lengths", "padded", "padding-invariance"}
    assert all(c["status"] == "pass" and c["examples"] > 0 for c in impl["checks"]
               if c["check"] not in packed)
    assert {c["status"] for c in impl["checks"] if c["check"] in packed} == {"unsupported"}
    assert impl["features"]["bidirectional"]["cases"] > 0
    assert {"python", "torch", "numpy", "hypothesis"} <= set(data["environment"])


def test_a_broken_lookalike_fails_with_exit_1_and_its_reproduction_replays(tmp_path):
    out = tmp_path / "out.json"
    proc = run("check", "--impl", BROKEN, "--only", "output", "--json", str(out), *FAST)
    assert proc.returncode == 1
    assert "likely cause: gate order" in proc.stdout
    data = json.loads(out.read_text())
    assert data["verdict"] == "fail"
    failure = data["implementations"][0]["checks"][0]["failure"]
    assert failure["finding"]["tensor"] == "output"
    assert failure["likely_cause"].startswith("gate order")
    command = failure["reproduce"]
    assert command.startswith(f"python -m parity check --impl {BROKEN} --only output --case ")
    replay = subprocess.run(shlex.split(command.replace("python", sys.executable, 1)),
                            capture_output=True, text=True, timeout=600)
    assert replay.returncode == 1
    assert failure["case_id"] in replay.stdout and "FAIL" in replay.stdout


def test_several_implementations_one_failing_the_others_reported(tmp_path, capsys):
    out = tmp_path / "out.json"
    code = main(["check", "--impl", "tests.cli.misbehaving:Raises", "--impl", CORRECT,
                 "--only", "h_n", "--json", str(out), *FAST])
    assert code == 1
    statuses = [i["status"] for i in json.loads(out.read_text())["implementations"]]
    assert statuses == ["error", "pass"]


def test_a_usage_error_from_the_command_line_is_one_line_without_traceback():
    proc = run("check", "--impl", "tests.cli.misbehaving:Missing")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "parity check: error: --impl tests.cli.misbehaving:Missing: module "
        "'tests.cli.misbehaving' has no attribute 'Missing' (it has: " + proc.stderr.split(
            "(it has: ")[1].strip()]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_a_failed_run_leaves_the_previous_json_intact(tmp_path):
    out = tmp_path / "out.json"
    out.write_text("previous")
    assert main(["check", "--impl", "no-such-name", "--json", str(out)]) == 2
    assert out.read_text() == "previous"
    assert not [p for p in tmp_path.iterdir() if p.name != "out.json"]


def test_only_takes_several_checks_after_one_flag_or_repeated():
    from parity.cli import build_parser

    parser = build_parser()
    one_flag = parser.parse_args(["check", "--only", "output", "h_n", "--impl", "torch"])
    repeated = parser.parse_args(["check", "--only", "output", "--only", "h_n"])
    assert one_flag.only == repeated.only == ["output", "h_n"]
    assert one_flag.impl == ["torch"]
