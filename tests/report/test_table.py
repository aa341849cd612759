"""The cross-framework table (`parity table`): what it shows comes from the results JSON, and
each implementation's parameter layout gets there from its adapter's `parity.Layout`."""

import json
import subprocess
import sys

from parity import Layout
from parity.table import render_table
from parity_implementations.lstmcell_loop import LSTMCellLoopAdapter


class StatedLayout(LSTMCellLoopAdapter):
    """A correct LSTM whose adapter states a layout (not its own: the table shows what is
    stated, and nothing in the checks reads it)."""

    layout = Layout(gate_order="i, g, f, o", biases=1, weights="[x, h] @ w, stated")


class NoLayout(LSTMCellLoopAdapter):
    """The same LSTM, its adapter silent about its layout."""


def test_a_stated_layout_goes_through_the_json_into_the_table(tmp_path):
    json_path, table_path = tmp_path / "r.json", tmp_path / "table.md"
    check = subprocess.run(
        [sys.executable, "-m", "parity", "check", "--impl", f"{__name__}:StatedLayout",
         "--impl", f"{__name__}:NoLayout", "--only", "output", "--max-examples", "2",
         "--seed", "0", "--no-database", "-q", "--json", str(json_path)],
        capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr
    data = json.loads(json_path.read_text())
    stated, silent = data["implementations"]
    assert stated["layout"] == {"gate_order": "i, g, f, o", "biases": 1,
                                "weights": "[x, h] @ w, stated"}
    assert silent["layout"] is None
    table = subprocess.run([sys.executable, "-m", "parity", "table", str(json_path), "--out",
                            str(table_path)], capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stdout + table.stderr
    rows: dict = {}
    for line in table_path.read_text().splitlines():  # the first table's row of each
        if line.startswith("| tests."):
            rows.setdefault(line.split(" | ")[0].lstrip("| "), line.split(" | "))
    # implementation | what it is | gate order | biases | gradients | ...
    assert rows[f"{__name__}:StatedLayout"][2:4] == ["i, g, f, o", "1"]
    assert rows[f"{__name__}:NoLayout"][2:4] == ["?", "?"]
    text = table_path.read_text()
    assert f"| {__name__}:StatedLayout | [x, h] @ w, stated |" in text
    assert f"| {__name__}:NoLayout | ? |" in text


def test_a_not_installed_framework_keeps_its_stated_layout():
    """A framework not installed in one job (its layout from the adapter class) shows its
    layout; the checks column says none ran."""
    data = {"seed": 0, "max_examples": 5, "implementations": [
        {"name": "haiku", "description": "hk.LSTM", "status": "not-installed",
         "gradients": "autograd", "supports": {}, "checks": [],
         "layout": Layout(gate_order="i, g, f, o", biases=1, weights="w").to_dict()}]}
    row = next(line for line in render_table(data).splitlines() if line.startswith("| haiku"))
    cells = row.split(" | ")
    assert cells[2:5] == ["i, g, f, o", "1", "autograd"] and "none run" in row
