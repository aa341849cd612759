"""The HTML report, read as HTML: one row per implementation, failures with their reproduction."""

import json
from html.parser import HTMLParser

import pytest

from parity.cli import main


class Page(HTMLParser):
    """Collects the matrix rows, their cells, and the reproduction commands."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.reproduce, self.scripts, self._row, self._pre = {}, [], [], None, None
        self.external = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-implementation" in a:
            self._row = self.rows.setdefault(a["data-implementation"], {})
        if tag == "td" and self._row is not None and "data-check" in a:
            self._row[a["data-check"]] = a.get("class")
        if tag == "pre" and a.get("class") == "reproduce":
            self._pre = []
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(a[key])

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        if tag == "pre" and self._pre is not None:
            self.reproduce.append("".join(self._pre))
            self._pre = None

    def handle_data(self, data):
        if self._pre is not None:
            self._pre.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    code = main(["report", "--impl", "tests.harness.lstms.correct:FusedLSTM",
                 "--impl", "tests.harness.lstms.broken:BiasIhOnly", "--only", "output",
                 "--only", "h_n", "--max-examples", "3", "--seed", "0", "-q",
                 "--out", str(d / "parity.html"), "--json", str(d / "parity.json")])
    return code, d


def test_report_has_one_row_per_implementation_with_check_statuses(report):
    code, d = report
    assert code == 1  # a failing implementation still gets its report
    page = Page((d / "parity.html").read_text())
    assert set(page.rows) == {"tests.harness.lstms.correct:FusedLSTM",
                              "tests.harness.lstms.broken:BiasIhOnly"}
    assert page.rows["tests.harness.lstms.correct:FusedLSTM"] == {"output": "pass",
                                                                 "h_n": "pass"}
    assert page.rows["tests.harness.lstms.broken:BiasIhOnly"]["output"] == "fail"


def test_each_failure_shows_the_command_that_reproduces_it(report):
    _, d = report
    page = Page((d / "parity.html").read_text())
    assert page.reproduce, "no reproduction command on the page"
    assert all(cmd.startswith("python -m parity check --impl tests.harness.lstms.broken:BiasIhOnly")
               for cmd in page.reproduce)
    assert not page.external, "the page must work offline"


def test_report_renders_from_saved_json_the_same(report, tmp_path):
    _, d = report
    again = tmp_path / "again.html"
    code = main(["report", "--from", str(d / "parity.json"), "--out", str(again)])
    assert code == 1
    assert again.read_text() == (d / "parity.html").read_text()


def test_from_a_file_that_is_not_results_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    assert main(["report", "--from", str(bad), "--out", str(tmp_path / "x.html")]) == 2
    assert "not a parity results file" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
