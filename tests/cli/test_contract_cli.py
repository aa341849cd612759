"""The adapter contract's findings as a user sees them: console, JSON, report, exit status
(docs/adapter-contract.md). The implementations run in a child process, as they always do."""

import json

from parity.cli import main

M = "tests.harness.lstms.contract"
FAST = ["--max-examples", "3", "--seed", "0", "-q", "--no-database"]


def test_contract_findings_show_in_the_console_the_json_and_the_report(tmp_path, capsys):
    out, page = tmp_path / "out.json", tmp_path / "parity.html"
    targets = ["NarrowUpperReverseAdapter", "SwitchesGradOff", "NoStateLSTM"]
    code = main(["report", *(a for t in targets for a in ("--impl", f"{M}:{t}")),
                 "--only", "output", "--json", str(out), "--out", str(page), *FAST])
    assert code == 1
    console = capsys.readouterr()
    assert "Traceback" not in console.out + console.err and "crashed" not in console.out
    impls = {i["name"].rsplit(":", 1)[1]: i for i in json.loads(out.read_text())["implementations"]}
    narrow = impls["NarrowUpperReverseAdapter"]
    assert narrow["status"] == "wrong-parameters"
    assert "`layers.1.bw.igates.weight` as (4, 1)" in narrow["checks"][0]["message"]
    assert narrow["checks"][0]["message"] in console.out
    grad = impls["SwitchesGradOff"]
    assert grad["status"] == "changes-global-state"
    assert "torch.set_grad_enabled(False)" in grad["checks"][0]["message"]
    no_state = impls["NoStateLSTM"]
    assert no_state["status"] == "pass"
    assert no_state["supports"]["initial_state"] is False
    assert no_state["features"]["initial_state"]["supported"] is False
    html = page.read_text()
    assert "wrong-parameters" in html and "changes-global-state" in html
    assert "initial state" in html


def test_list_shows_whether_each_implementation_takes_an_initial_state(capsys):
    assert main(["list", "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if "supports" in r]
    assert rows and all(isinstance(r["supports"]["initial_state"], bool) for r in rows)
    assert main(["list"]) == 0
    assert "h0/c0" in capsys.readouterr().out
