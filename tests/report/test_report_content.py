"""The page rendered from hand-made results, read as HTML: what a person reading it must find.

The JSON here holds what other parts of the project add (property checks, statuses such as
`timeout` and `not-installed`, training curves, the bench and audit studies): the report renders
whatever the JSON has, never a fixed list.
"""

import copy
import json
import re

import pytest

from parity.report import render_report

from . import fixtures
from .html_tree import parse


@pytest.fixture(scope="module")
def page():
    return parse(render_report(fixtures.results()))


def matrix_row(page, name):
    return page.find("table", id="matrix").find("tr", data_implementation=name)


def test_check_columns_come_from_the_json_reference_checks_before_properties(page):
    header = [th.attrs["data-column"] for th in page.find("table", id="matrix")
              .find_all("th", data_column=True)]
    # output, h_n, gradients are reference checks (in first-appearance order); step-by-step
    # (no "kind", unknown name), training ("kind": "property") and causality are properties.
    assert header == ["output", "h_n", "gradients", "step-by-step", "training", "causality"]
    groups = [th.text() for th in page.find("table", id="matrix").find_all("th", cls="group")]
    assert groups == ["features", "checks against nn.LSTM", "properties"]


def test_every_cell_has_a_symbol_and_passing_cells_show_the_worst_ratio(page):
    row = matrix_row(page, "good")
    out = row.find("td", data_check="output")
    assert out.attrs["data-status"] == "pass" and "pass" in out.classes
    assert out.find("span", cls="sym").text() == "\u2713"
    assert out.find("span", cls="val").text() == "0.1\u00d7"
    # A check this implementation did not run is said so, not left blank or shown passing.
    missing = row.find("td", data_check="causality")
    assert missing.attrs["data-status"] == "not-run" and missing.attrs["title"] == "not run"


def test_a_failing_cell_shows_by_how_much(page):
    cell = matrix_row(page, "mypkg.lstm:Broken").find("td", data_check="output")
    assert "fail" in cell.classes
    assert cell.find("span", cls="sym").text() == "\u2717"
    assert cell.find("span", cls="val").text() == "6.4e+04\u00d7"


def test_an_unknown_status_is_a_problem_cell_with_its_name(page):
    cell = matrix_row(page, "mypkg.lstm:Broken").find("td", data_check="causality")
    assert "error" in cell.classes and cell.attrs["data-status"] == "timeout"
    assert cell.find("span", cls="val").text() == "timeout"
    assert "killed" in cell.attrs["title"]
    # ... and it gets a failure block with its message and a way to run it again.
    block = page.find("section", data_implementation="mypkg.lstm:Broken") \
        .find("div", cls="failure", data_check="causality")
    assert "longer than 60 s" in block.find("p", cls="message").text()
    assert block.find("pre", cls="rerun").text() == \
        "python -m parity check --impl mypkg.lstm:Broken --only causality --seed 1234"


def test_not_installed_is_neutral_with_the_install_command(page):
    row = matrix_row(page, "flax")
    cell = row.find("td", data_check="output")
    assert "neutral" in cell.classes and "error" not in cell.classes
    assert cell.find("span", cls="val").text() == "not-installed"
    assert "pip install parity[jax]" in cell.attrs["title"]
    section = page.find("section", data_implementation="flax")
    assert not section.find_all("div", cls="failure")
    assert "pip install parity[jax]" in section.text()


def test_feature_cells_count_failing_cases_and_unsupported_features(page):
    row = matrix_row(page, "mypkg.lstm:Broken")
    cells = row.find_all("td", cls="cell")[1:1 + len(fixtures.FEATURES)]  # after the status
    assert [c.attrs["data-status"] for c in cells] == ["fail", "pass", "unsupported", "pass"]
    assert cells[0].find("span", cls="val").text() == "2/3"


def test_a_failure_says_where_how_much_cause_case_and_reproduce(page):
    block = page.find("section", data_implementation="mypkg.lstm:Broken") \
        .find("div", cls="failure", data_check="output")
    facts = {dt.text(): dd for dt, dd in zip(block.find_all("dt"), block.find_all("dd"))}
    assert facts["where"].find("code").text() == \
        "output[batch=0, step=2, layer=0, direction=forward, unit=0]"
    assert "63500.0" not in facts["by how much"].text()  # numbers are rounded for reading
    assert "6.35e+04\u00d7 the tolerance" in facts["by how much"].text()
    assert "0.127" in facts["by how much"].text() and "2e-06" in facts["by how much"].text()
    assert facts["likely cause"].text().startswith("gate order")
    assert facts["minimal case"].text() == \
        "input_size=1,hidden_size=1,seq_len=3,batch=1,seed=7"
    assert "input (3, 1, 1)" in facts["shapes"].text()
    assert block.find("pre", cls="reproduce").text() == fixtures.REPRODUCE
    assert block.find("button", cls="copy")
    # The other failing tensor on the same case is listed, the finding itself not twice.
    others = block.find("details").find_all("tr")[1:]
    assert len(others) == 1 and "h_n[layer=0]" in others[0].text()


def test_plots_per_implementation(page):
    section = page.find("section", data_implementation="good")
    titles = [f.find("figcaption", cls="title").text() for f in section.find_all("figure")]
    assert titles == ["good: error / tolerance against sequence length",
                      "good: worst gradient error / tolerance per parameter group and gate block "
                      "(layers and directions merged)",
                      "good: training (sgd): loss per step", "good: training (adam): loss per step"]
    seq, blocks, sgd, _ = section.find_all("svg", role="img")
    # Every sample is a point (15 samples over 5 checks; none on the same pixel).
    assert len([e for e in seq.iter() if e.tag in ("circle", "rect", "path")
                and re.match(r"s\d", e.attrs.get("class", ""))]) == 15
    # The gradient grid: one labelled cell per (group, gate) measured; weight_hh's forget gate
    # over its tolerance, weight_hr's infinite error marked as such.
    cells = {r.find("title").text(): r.attrs["class"] for r in blocks.find_all("rect")
             if r.find_all("title")}
    assert len(cells) == len(fixtures.GRADIENT_BLOCKS)
    assert cells["weight_hh, gate f: worst error / tolerance 3.5"] == "heat4"
    assert cells["weight_hh, gate i: worst error / tolerance 0.01"] == "heat1"
    assert cells["weight_hr, gate all: worst error / tolerance \u221e"] == "heat4"
    # Training: both loss curves, and the step where they part.
    assert len(sgd.find_all("path", cls="line")) == 2
    assert "diverges at step 2" in sgd.text()


def test_the_distribution_has_a_lane_per_check_and_implementation(page):
    svg = page.find("section", id="distribution").find("svg")
    lanes = [t.text() for t in svg.find_all("text", cls="lane")]
    groups = [t.text() for t in svg.find_all("text", cls="group")]
    assert groups == ["output", "h_n", "gradients", "step-by-step", "training"]
    assert lanes.count("good") == 5 and lanes.count("mypkg.lstm:Broken") == 1
    assert "1 \u221e" in lanes  # the failing check's infinite sample, counted not dropped


def test_bench_and_audit_studies(page):
    bench = page.find("section", id="bench")
    rows = bench.find("table", cls="bench").find_all("tr")[1:]
    assert [r.find_all("td")[3].text() for r in rows] == ["forward", "forward+backward"]
    assert rows[0].find_all("td")[7].text() == "3.0 MiB"
    bars = [r for r in bench.find("svg").find_all("rect") if r.find_all("title")]
    assert [b.find("title").text() for b in bars] == [
        "good 100\u00d78\u00d732\u00d764 float32 forward: 2",
        "good 100\u00d78\u00d732\u00d764 float32 forward+backward: 0.75"]
    audit = page.find("section", id="audit")
    assert "drops the outer gradient" in audit.find("p", cls="conclusion").text()
    titles = [f.text() for f in audit.find_all("figcaption", cls="title")]
    assert len(titles) == 3 and "mean over 2 seeds" in titles[0]
    assert all(len(s.find_all("path", cls="line")) == 2 for s in audit.find_all("svg", role="img"))


def test_a_study_the_page_does_not_know_is_shown_as_json(page):
    pre = page.find("section", id="study-mystery").find("pre")
    assert json.loads(pre.text()) == {"answer": 42}


def test_environment(page):
    env = page.find("dl", id="environment-facts")
    facts = {dt.text(): dd.text() for dt, dd in zip(env.find_all("dt"), env.find_all("dd"))}
    for key in ("python", "torch", "numpy", "hypothesis", "platform", "processor",
                "git_commit"):
        assert facts[key] == fixtures.results()["environment"][key]
    assert facts["seed"] == "1234" and facts["time taken"] == "41.2 s"
    assert facts["examples per check"].startswith("40")


def test_the_page_needs_nothing_from_the_network(page):
    for e in page.iter():
        assert e.tag not in ("link", "iframe", "img", "object", "embed"), e
        for key in ("src", "href", "xlink:href", "action"):
            value = e.attrs.get(key) or ""
            assert not value or value.startswith("#"), (e.tag, key, value)
    for style in page.find_all("style"):
        assert "url(" not in style.text() and "@import" not in style.text()


def test_sparse_results_render():
    """A JSON that holds only what is required (an older or a foreign writer) still renders."""
    data = {"format": "parity-results/1", "verdict": "error",
            "implementations": [{"name": "x", "checks": [{"check": "output"}]},
                                {"name": "y", "error": "cannot import mypkg"}]}
    page = parse(render_report(data))
    assert matrix_row(page, "x").find("td", data_check="output").attrs["data-status"] == \
        "error"
    assert "cannot import mypkg" in page.find("section", data_implementation="y") \
        .find("p", data_role="implementation-error").text()


def test_text_from_the_json_is_escaped():
    data = fixtures.results()
    data["implementations"][0]["name"] = "<script>alert(1)</script>"
    page = parse(render_report(data))
    assert not any("alert" in s.text() for s in page.find_all("script"))
    assert matrix_row(page, "<script>alert(1)</script>")


def test_a_default_size_report_stays_small():
    """Five implementations, every check at the runner's sample cap: plots draw one mark per
    pixel, so the page stays a few hundred KB whatever the number of samples."""
    data = fixtures.results()
    template = data["implementations"][0]
    many = []
    for k in range(5):
        impl = copy.deepcopy(template)
        impl["name"] = f"impl{k}"
        for c in impl["checks"]:
            c["samples"] = [[1 + (7 * j) % 200, "float32", 10 ** (-6 + 6 * ((j * 37) % 400) / 400)]
                            for j in range(400)]
        many.append(impl)
    data["implementations"] = many
    size = len(render_report(data).encode())
    assert size < 1_500_000, f"{size / 1e6:.2f} MB"
