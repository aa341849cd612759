"""Known divergences (parity.expected): declared findings are shown apart and must still happen.

Declared and still happening: "known", the verdict passes. The declaration removed: the same
finding fails, with its cause. Declared but no longer happening: "fixed", the verdict fails.
A declaration never hides an undeclared finding, outside its combination or inside it.
"""

import io
import json
import re
import subprocess
import sys

import pytest

from parity import CaseSpec, InvalidArgument, KnownDivergence
from parity.cli import _print_record
from parity.report import render_report
from parity.table import merge_results, render_table
from parity.results import verdict_of

from .lstms import known
from .lstms.broken import ReverseInputNotFlipped

MODULE = "tests.harness.lstms.known"
FORWARD = ("output", "h_n", "c_n")


def test_declared_and_still_happening_is_known_with_its_evidence(check_lstm):
    record = check_lstm(known.DeclaredReverse, MODULE, checks=FORWARD, max_examples=10)
    assert [c.status for c in record.checks] == ["known"] * 3
    assert verdict_of([record]) == "pass"
    for c in record.checks:
        [entry] = c.known
        assert entry["status"] == "known" and entry["cases"] >= 1
        assert entry["cause"] == known.REVERSE.cause
        evidence = entry["evidence"]
        case = CaseSpec.from_string(evidence["case_id"])
        assert case.config.bidirectional and case.seq_len > 1  # where the bug can show
        assert "differs" in evidence["message"]
        assert evidence["reproduce"].startswith("python -m parity check")


def test_the_same_bug_undeclared_fails_with_its_cause(check_lstm):
    record = check_lstm(ReverseInputNotFlipped, "tests.harness.lstms.broken", checks=("output",),
                        max_examples=10)
    [c] = record.checks
    assert c.status == "fail" and not c.known
    assert "reverse" in c.failure["likely_cause"]
    assert verdict_of([record]) == "fail"


def test_declared_but_no_longer_happening_is_fixed(check_lstm):
    record = check_lstm(known.FixedReverse, MODULE, checks=("output",), max_examples=10)
    [c] = record.checks
    assert c.status == "fixed"
    assert "fixed: remove the declaration" in c.message and known.REVERSE.cause in c.message
    [entry] = c.known
    assert entry["status"] == "fixed" and entry["evidence"] is None
    assert verdict_of([record]) == "fail"
    out = io.StringIO()
    _print_record(record, out)  # what `parity check` prints for it
    assert "FIXED" in out.getvalue()
    assert f"fixed: remove the declaration): {known.REVERSE.cause}" in out.getvalue()


def test_a_declaration_does_not_hide_a_bug_outside_its_combination(check_lstm):
    record = check_lstm(known.DeclaredReverseAndForgetBias, MODULE, checks=("output",),
                        max_examples=10)
    [c] = record.checks
    assert c.status == "fail"
    assert not CaseSpec.from_string(c.failure["case_id"]).config.bidirectional
    assert "forget" in c.failure["likely_cause"]
    assert c.known[0]["status"] == "known"  # and the declared one is still shown


def test_a_declaration_does_not_hide_another_finding_inside_its_combination(check_lstm):
    record = check_lstm(known.DeclaredRaiseButAlsoWrong, MODULE, checks=("output",),
                        max_examples=10)
    [c] = record.checks
    assert c.status == "fail"  # the undeclared discrepancy, on a bidirectional case
    case = CaseSpec.from_string(c.failure["case_id"])
    assert case.config.bidirectional and case.seq_len <= 5
    assert "reverse" in c.failure["likely_cause"]
    [entry] = c.known
    assert entry["status"] == "known"
    assert CaseSpec.from_string(entry["evidence"]["case_id"]).seq_len > 5


def test_a_declared_error_is_known_in_its_checks_only(check_lstm):
    record = check_lstm(known.DeclaredRaise, MODULE, checks=("output", "gradients"),
                        max_examples=10)
    output, gradients = record.checks
    assert output.status == "known"
    [entry] = output.known
    assert entry["evidence"]["exception"]["type"] == "RuntimeError"
    assert output.examples > 0  # the cases outside the combination were compared
    # Declared for `output` only: the gradients check reports the same raise as its own.
    assert gradients.status == "error" and not gradients.known
    assert "longer than 5" in gradients.message


def test_one_case_given_explicitly():
    case = CaseSpec.from_string("input_size=2,hidden_size=3,bidirectional=true,seq_len=4,"
                                "batch=1,seed=1")
    from tests.harness.conftest import run_checks

    record = run_checks(known.DeclaredReverse, MODULE, checks=("output",), case=case)
    assert record.checks[0].status == "known"
    plain = run_checks(known.DeclaredReverse, MODULE, checks=("output",),
                       case=case.replace(bidirectional=False))
    assert plain.checks[0].status == "pass" and not plain.checks[0].known  # nothing required


@pytest.mark.parametrize("kwargs, message", [
    ({"cause": "", "checks": ("output",)}, "cause=''"),
    ({"cause": "x", "checks": ()}, "checks=()"),
    ({"cause": "x", "checks": ("outputs",)}, "'outputs' is not a check"),
    ({"cause": "x", "checks": ("output",), "status": "pass"}, "status='pass'"),
    ({"cause": "x", "checks": ("output",), "where": {"layers": 2}}, "'layers' is not a case"),
    ({"cause": "x", "checks": ("output",), "where": 3}, "where=3"),
    ({"cause": "x", "checks": ("output",), "match": "("}, "match='('"),
])
def test_a_bad_declaration_names_the_argument(kwargs, message):
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        KnownDivergence(**kwargs)


def test_where_matches_values_collections_and_predicates():
    spec = CaseSpec.from_string("input_size=2,hidden_size=3,num_layers=2,seq_len=4,batch=none")
    d = KnownDivergence(cause="x", checks="output", where={"num_layers": (2, 3), "batch": None})
    assert d.applies(spec) and not d.applies(spec.replace(batch=1))
    assert d.moved(spec.replace(num_layers=1, batch=2)) == spec
    p = KnownDivergence(cause="x", checks="output", where=lambda s: s.seq_len > 3)
    assert p.applies(spec) and not p.applies(spec.replace(seq_len=3))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "parity", "check", "--max-examples", "5",
                           "--seed", "0", "--no-database", "-q", *args],
                          capture_output=True, text=True, timeout=600)


def test_cli_shows_known_apart_and_exits_by_the_declarations(tmp_path):
    out = _cli("--impl", f"{MODULE}:DeclaredReverse", "--only", "output",
               "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "KNOWN" in out.stdout and "~ known divergence" in out.stdout
    assert known.REVERSE.cause in out.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["verdict"] == "pass"
    [check] = data["implementations"][0]["checks"]
    assert check["status"] == "known" and check["known"][0]["evidence"]["case_id"]
    page = render_report(data)
    assert "Known divergences" in page and known.REVERSE.cause in page
    table = render_table(data)  # the cross-framework table, from the same JSON
    assert f"| {MODULE}:DeclaredReverse |" in table and "1 known" in table
    assert known.REVERSE.cause in table and "bidirectional=True" in table


def test_results_merge_for_one_page():
    """CI's main job and its frameworks job, on one page: a framework checked in the second
    replaces its not-installed record in the first; the verdict is the worst."""
    main = {"verdict": "pass", "seed": 0, "studies": {"bench": []}, "implementations": [
        {"name": "fused", "status": "pass"}, {"name": "haiku", "status": "not-installed"}]}
    frameworks = {"verdict": "fail", "implementations": [
        {"name": "haiku", "status": "pass"}, {"name": "paddle", "status": "fail"},
        {"name": "fused", "status": "fail"}]}
    merged = merge_results(main, frameworks)
    assert [(i["name"], i["status"]) for i in merged["implementations"]] == [
        ("fused", "pass"), ("haiku", "pass"), ("paddle", "fail")]
    assert merged["verdict"] == "fail" and merged["studies"] == {"bench": []}
    assert main["implementations"][1]["status"] == "not-installed"  # inputs untouched
