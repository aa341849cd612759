"""One real run of the CLI for the report tests: a correct LSTM and one with a planted bug."""

import pytest

from parity.cli import main

CORRECT = "tests.harness.lstms.correct:FusedLSTM"
BROKEN = "tests.harness.lstms.broken:BiasIhOnly"


@pytest.fixture(scope="session")
def cli_report(tmp_path_factory):
    """(exit code, directory holding parity.html and parity.json)."""
    d = tmp_path_factory.mktemp("report")
    code = main(["report", "--impl", CORRECT, "--impl", BROKEN, "--only", "output",
                 "--only", "h_n", "--only", "gradients", "--max-examples", "3", "--seed", "0",
                 "-q", "--out", str(d / "parity.html"), "--json", str(d / "parity.json")])
    return code, d
