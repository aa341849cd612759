"""`python -m parity report`: the page a run writes, read as HTML; rendering from a saved JSON;
writing atomically."""

import json
import os
import stat

import pytest

import parity.report
from parity.cli import main

from .conftest import BROKEN, CORRECT
from .html_tree import parse

pytestmark = pytest.mark.xdist_group("report")  # one worker runs the CLI fixture once


def test_report_has_one_row_per_implementation_with_check_statuses(cli_report):
    code, d = cli_report
    assert code == 1  # a failing implementation still gets its report
    matrix = parse((d / "parity.html").read_text()).find("table", id="matrix")
    rows = {tr.attrs["data-implementation"]: {td.attrs["data-check"]: td.attrs["data-status"]
                                              for td in tr.find_all("td", data_check=True)}
            for tr in matrix.find_all("tr", data_implementation=True)}
    assert rows == {CORRECT: {"output": "pass", "h_n": "pass", "gradients": "pass"},
                    BROKEN: {"output": "fail", "h_n": "fail", "gradients": "fail"}}


def test_each_failure_shows_the_command_that_reproduces_it(cli_report):
    _, d = cli_report
    page = parse((d / "parity.html").read_text())
    section = page.find("section", data_implementation=BROKEN)
    blocks = section.find_all("div", cls="failure")
    assert [b.attrs["data-check"] for b in blocks] == ["output", "h_n", "gradients"]
    data = json.loads((d / "parity.json").read_text())
    records = {c["check"]: c for c in data["implementations"][1]["checks"]}
    for b in blocks:
        failure = records[b.attrs["data-check"]]["failure"]
        cmd = b.find("pre", cls="reproduce").text()
        assert cmd.startswith(f"python -m parity check --impl {BROKEN} "
                              f"--only {b.attrs['data-check']} --case ")
        assert cmd == failure["reproduce"]
        assert b.find("dd", cls="likely-cause").text() == failure["likely_cause"]
    assert "bias" in blocks[0].find("dd", cls="likely-cause").text()
    assert not page.find("section", data_implementation=CORRECT).find_all("div", cls="failure")


def test_the_gradients_grid_comes_from_the_run(cli_report):
    """The gradients check records its worst error per parameter group and gate block; the
    page draws them."""
    _, d = cli_report
    data = json.loads((d / "parity.json").read_text())
    correct = next(i for i in data["implementations"] if i["name"] == CORRECT)
    blocks = next(c for c in correct["checks"] if c["check"] == "gradients")["data"][
        "gradient_blocks"]
    section = parse((d / "parity.html").read_text()).find("section", data_implementation=CORRECT)
    svg = section.find_all("svg", role="img")[1]
    assert len([r for r in svg.find_all("rect") if r.find_all("title")]) == len(blocks)


def test_report_renders_from_saved_json_the_same(cli_report, tmp_path):
    _, d = cli_report
    again = tmp_path / "again.html"
    code = main(["report", "--from", str(d / "parity.json"), "--out", str(again)])
    assert code == 1
    assert again.read_text() == (d / "parity.html").read_text()


def test_the_report_is_readable_by_others_as_a_plain_file_would_be(cli_report, tmp_path):
    _, d = cli_report
    out = tmp_path / "r.html"
    old = os.umask(0o022)
    try:
        assert main(["report", "--from", str(d / "parity.json"), "--out", str(out)]) == 1
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_a_failed_render_leaves_the_previous_report(cli_report, tmp_path, monkeypatch):
    _, d = cli_report
    out = tmp_path / "parity.html"
    out.write_text("the previous report")

    def broken(data):
        raise RuntimeError("template exploded")
    monkeypatch.setattr(parity.report, "render_report", broken)
    with pytest.raises(RuntimeError):
        main(["report", "--from", str(d / "parity.json"), "--out", str(out)])
    assert out.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["parity.html"]  # no half-written temp file


def test_from_a_file_that_is_not_results_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    assert main(["report", "--from", str(bad), "--out", str(tmp_path / "x.html")]) == 2
    assert "not a parity results file" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
