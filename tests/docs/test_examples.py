"""The README's and docs/' example commands, run, so that the docs cannot drift from the code.

The extraction rule (docs/layout.md says the same to authors of docs pages):

- Only marked blocks run: a fenced ```sh block whose line just above is an HTML comment
  ``<!-- example: default -->`` (runs in the default test run; keep those to seconds) or
  ``<!-- example: thorough -->`` (runs only with ``-m thorough``). Unmarked blocks, such as
  commands with placeholder names (``mypkg.lstm:MyLSTM``), are never run.
- Each non-empty line of the block is one command, run with ``sh -c`` from an empty temporary
  directory, with this checkout first on PYTHONPATH (so ``examples.my_lstm`` imports) and the
  running Python's bin directory first on PATH (so ``python`` and ``pytest`` are this
  environment's). A trailing ``# comment`` is the reader's, not the shell's: it is dropped.
- The command must exit 0, or the status the marker names: ``<!-- example: default, exit 1 -->``.
- With ``output follows`` in the marker, the next fenced block is the command's output: each of
  its lines must equal the real output's, in order, with durations (``0.5s``, ``in 7s``) masked.
- The README's ``<!-- install commands ... -->`` block is not run here (it installs tox and runs
  the whole suite); `.ci/run` runs its lines verbatim, which the last test checks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*example:\s*(default|thorough)\s*(?:,([^>]*))?-->")
FENCE = re.compile(r"^```(\w*)\s*$")
DURATION = re.compile(r"\b\d+(?:\.\d+)?s\b")


@dataclass
class Example:
    page: str
    line: int
    tier: str  # "default" or "thorough"
    commands: list[str]
    exit_status: int
    output: list[str] | None  # the documented output, when it follows

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _blocks(lines: list[str], start: int) -> tuple[str, list[str], int] | None:
    """The fenced block opening at `start`: (language, its lines, the line after it)."""
    m = FENCE.match(lines[start]) if start < len(lines) else None
    if not m:
        return None
    end = start + 1
    while end < len(lines) and not lines[end].startswith("```"):
        end += 1
    return m.group(1), lines[start + 1:end], end + 1


def examples() -> list[Example]:
    found = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, text in enumerate(lines):
            m = MARKER.fullmatch(text.strip())
            if not m:
                continue
            name = page.relative_to(ROOT).as_posix()
            block = _blocks(lines, i + 1)
            assert block and block[0] == "sh", f"{name}:{i + 1}: the marker must sit on the " \
                                               f"line just above a ```sh block"
            _, body, after = block
            options = [o.strip() for o in (m.group(2) or "").split(",") if o.strip()]
            exit_status, output = 0, None
            for option in options:
                if option.startswith("exit "):
                    exit_status = int(option.split()[1])
                elif option == "output follows":
                    while after < len(lines) and not lines[after].strip():
                        after += 1
                    shown = _blocks(lines, after)
                    assert shown, f"{name}:{i + 1}: 'output follows' but no block follows"
                    output = shown[1]
                else:
                    raise AssertionError(f"{name}:{i + 1}: unknown example option {option!r}")
            commands = [c.split(" # ")[0].rstrip() if " # " in c else c.rstrip()
                        for c in body if c.strip()]
            found.append(Example(name, i + 1, m.group(1), commands, exit_status, output))
    return found


EXAMPLES = examples()


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
               str(ROOT), os.environ.get("PYTHONPATH")])),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
           "COLUMNS": "200"}
    return subprocess.run(["sh", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)


def _check(example: Example, tmp_path: Path) -> None:
    for command in example.commands:
        proc = _run(command, tmp_path)
        assert proc.returncode == example.exit_status, (
            f"{example.id}: `{command}` exited {proc.returncode}, the docs say "
            f"{example.exit_status}\n{proc.stdout}\n{proc.stderr}")
        if example.output is not None:
            want = [DURATION.sub("<t>s", x).rstrip() for x in example.output]
            got = [DURATION.sub("<t>s", x).rstrip() for x in proc.stdout.splitlines()]
            assert got == want, f"{example.id}: the output shown differs from a real run of " \
                                f"`{command}`:\n{proc.stdout}"


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.tier == "default"],
                         ids=lambda e: e.id)
def test_example(example: Example, tmp_path):
    _check(example, tmp_path)


@pytest.mark.thorough
@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.tier == "thorough"],
                         ids=lambda e: e.id)
def test_thorough_example(example: Example, tmp_path):
    _check(example, tmp_path)


def test_the_rule_finds_the_readmes_failure_and_the_docs_examples():
    by_page = {e.page for e in EXAMPLES}
    assert "README.md" in by_page and "docs/command-line.md" in by_page
    readme = [e for e in EXAMPLES if e.page == "README.md"]
    assert any(e.output and e.exit_status == 1 and e.tier == "default" for e in readme)


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"docs/{page.name} is not linked"


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_ci_runs_the_readmes_install_commands_verbatim():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, x in enumerate(lines) if x.strip().startswith("<!-- install commands"))
    block = _blocks(lines, start + 1)
    assert block and block[0] == "sh"
    commands = [c.split("   #")[0].strip() for c in block[1] if c.strip()]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for command in commands:
        assert command in [x.strip() for x in ci], f".ci/run does not run `{command}`"
    # with the system's own Python first on PATH
    assert any(x.strip().startswith('export PATH="/usr/bin:') for x in ci)
