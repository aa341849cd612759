"""An implementation whose optional extra is not installed: listed and skipped with the pip
command when only registered, a usage error (exit 2) when named."""

import json
from importlib.metadata import EntryPoint

import pytest

from parity import ENTRY_POINT_GROUP, NotInstalled, load, registry
from parity.cli import main
from parity.plugin import ParityTarget

TARGET = "tests.cli.not_installed:FrameworkAdapter"


@pytest.fixture
def registered_but_missing(monkeypatch):
    """The registry as it is, plus `nowhere`, whose framework is missing."""
    real = registry.registered()
    fake = EntryPoint(name="nowhere", value=TARGET, group=ENTRY_POINT_GROUP)
    eps = {"nowhere": fake, "torch": real["torch"]}
    monkeypatch.setattr(registry, "registered", lambda: eps)
    monkeypatch.setattr("parity.cli.registered", lambda: eps)
    monkeypatch.setattr("parity.plugin.registered", lambda: eps)


def test_named_it_is_a_usage_error_with_the_pip_command(capsys):
    assert main(["check", "--impl", TARGET, "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"parity check: error: --impl {TARGET}: not installed (pip install "
                   f"parity[nowhere]): no module named 'parity_no_such_framework'")
    with pytest.raises(NotInstalled, match="pip install parity\\[nowhere\\]"):
        load(TARGET)


def test_listed_as_not_installed(registered_but_missing, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "nowhere  not installed (pip install parity[nowhere])" in out
    assert main(["list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["nowhere"]["not_installed"] == "not installed (pip install parity[nowhere])"
    assert rows["nowhere"]["supports"]["projection"] is False
    assert "not_installed" not in rows["torch"]


def test_check_skips_it_and_the_verdict_ignores_it(registered_but_missing, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code = main(["check", "--only", "h_n", "--max-examples", "1", "--seed", "0", "-q",
                 "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "nowhere: not installed (pip install parity[nowhere]); skipped" in out
    assert "1 implementations, 1 not installed" in out
    data = json.loads(out_json.read_text())
    assert data["verdict"] == "pass"
    rows = {r["name"]: r for r in data["implementations"]}
    assert rows["nowhere"]["status"] == "not-installed" and rows["nowhere"]["checks"] == []
    assert "pip install parity[nowhere]" in rows["nowhere"]["description"]
    assert rows["torch"]["status"] == "pass"


def test_the_report_renders_it(registered_but_missing, tmp_path, capsys):
    page = tmp_path / "r.html"
    assert main(["report", "--only", "h_n", "--max-examples", "1", "--seed", "0", "-q",
                 "--out", str(page)]) == 0
    from tests.report.html_tree import parse

    tree = parse(page.read_text())
    row = next(r for r in tree.find("table", id="matrix").find_all("tr") if "nowhere" in r.text())
    assert next(c.attrs["data-status"] for c in row.find_all("td") if "data-status" in c.attrs) \
        == "not-installed"
    assert "pip install parity[nowhere]" in tree.text()


class _Config:
    def __init__(self, named, in_process):
        self.named, self.in_process, self.stash = named, in_process, {}

    def getoption(self, name):
        return {"parity_impl": self.named, "parity_seed": 0, "parity_max_examples": 1,
                "parity_time_budget": 5.0, "parity_timeout": 60.0,
                "parity_in_process": self.in_process}[name]


@pytest.mark.parametrize("in_process", [False, True], ids=["child", "in-process"])
def test_the_pytest_plugin_skips_it_unless_named(in_process):
    with pytest.raises(pytest.skip.Exception, match="not installed \\(pip install"):
        ParityTarget(_Config([], in_process), TARGET, "output").run()
    with pytest.raises(pytest.UsageError, match="pip install parity\\[nowhere\\]"):
        ParityTarget(_Config([TARGET], in_process), TARGET, "output").run()
