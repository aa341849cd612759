"""Loading an implementation from Python: errors that fit the caller, and nothing left behind."""

import sys

import pytest

from parity import LoadError, load


def test_a_load_error_from_the_api_names_the_target_not_a_command_line_option():
    with pytest.raises(LoadError) as info:
        load("tests.cli.misbehaving:Missing")
    message = str(info.value)
    assert message.startswith("tests.cli.misbehaving:Missing: module 'tests.cli.misbehaving' "
                              "has no attribute 'Missing'"), message
    assert "--impl" not in message


def test_a_module_in_the_current_directory_loads_and_sys_path_is_left_as_it_was(
        tmp_path, monkeypatch):
    (tmp_path / "here_lstm.py").write_text("import torch\nHereLSTM = torch.nn.LSTM\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    before = list(sys.path)
    adapter = load("here_lstm:HereLSTM")
    assert adapter.name == "here_lstm:HereLSTM"
    assert sys.path == before
    sys.modules.pop("here_lstm", None)


def test_sys_path_is_left_as_it_was_when_the_import_fails(tmp_path, monkeypatch):
    (tmp_path / "broken_here.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    before = list(sys.path)
    with pytest.raises(LoadError, match="RuntimeError: boom"):
        load("broken_here:X")
    assert sys.path == before
