"""Result records and their JSON form (the single source the report renders from).

The JSON, top to bottom::

    {"format": "parity-results/1", "verdict": "pass" | "fail" | "error", "seed": ..., ...,
     "implementations": [
        {"name": ..., "target": ..., "status": ..., "supports": {...}, "features": {...},
         "checks": [
            {"check": "output", "status": "pass" | "fail" | "unsupported" | "error",
             "examples": N, "worst": {...}, "failure": {...} | null, "samples": [...]}]}]}

`verdict` is ``"error"`` when any implementation could not be run or misbehaved during a check
(raised, crashed, hung, wrong shape... see parity.misbehaviour),
else ``"fail"`` when any check found a discrepancy, else ``"pass"``. README.md documents every
field.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .cases import CaseSpec
from .misbehaviour import MISBEHAVIOURS, worst_status

__all__ = [
    "FIXED",
    "FORMAT",
    "KNOWN",
    "NOT_INSTALLED",
    "STATUSES",
    "CheckRecord",
    "Failure",
    "ImplementationRecord",
    "RunRecord",
    "environment",
    "load_results",
    "write_atomic",
]

FORMAT = "parity-results/1"
# A misbehaviour (parity.misbehaviour: crashed, timeout, error, wrong-shape...) is worse than a
# discrepancy: the implementation did not give a number to compare.
STATUSES = ("pass", "known", "fail", "fixed", "unsupported", *MISBEHAVIOURS)
# A check whose only findings are declared divergences (parity.expected): counted as a pass.
KNOWN = "known"
# A declared divergence that no longer happens: counted as a discrepancy (remove the declaration).
FIXED = "fixed"
# An implementation whose optional extra is not installed: skipped, and ignored by the verdict.
NOT_INSTALLED = "not-installed"


@dataclass
class Failure:
    """A check's minimal failing example: what, where, by how much, the likely cause, and the
    one-line command that reproduces it. Built by `Failure.of` wherever a check fails (the
    search, training, a crash or a hang seen by the parent process); JSON is `asdict` of it.

    Read like the JSON it becomes, too (``failure["likely_cause"]``, ``failure.get(...)``):
    the report and `parity.expected` read failures both from records and from results files.
    """

    message: str
    reproduce: str
    case: dict | None = None  # the case's fields (CaseSpec.as_dict)
    case_id: str | None = None  # its one-line form (CaseSpec.to_string), for --case
    shapes: dict | None = None  # nn.LSTM's shape of each tensor of the case
    finding: dict | None = None  # the worst comparison (Comparison.as_dict)
    comparisons: list = field(default_factory=list)  # the failing comparisons, worst first
    likely_cause: str | None = None  # parity.diagnose's sentence, or None
    exception: dict | None = None  # {call, type, message, location} where it raised
    tensors: dict | None = None  # shapes and dtypes got and wanted (wrong-shape, wrong-dtype)
    diagnosis_error: str | None = None  # the diagnosis itself raised (never hides the finding)
    crashed: dict | None = None  # {call, exit_code, signal}: the process died during a call
    timeout: dict | None = None  # {call, limit_s}: a call ran past the time limit

    @classmethod
    def of(cls, spec: CaseSpec | None, message: str, reproduce: str, **rest: Any) -> Failure:
        """The failure of a check on `spec` (None where no case was running)."""
        return cls(
            message=message,
            reproduce=reproduce,
            case=spec.as_dict() if spec else None,
            case_id=spec.to_string() if spec else None,
            shapes={k: list(v) for k, v in spec.shapes().items()} if spec else None,
            **rest,
        )

    @classmethod
    def from_dict(cls, data: dict) -> Failure:
        """Back from its JSON form (a child process's record, a results file)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and getattr(self, key, None) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in self.__dataclass_fields__ else None
        return default if value is None else value


@dataclass
class CheckRecord:
    """One check of one implementation: its status and the evidence for it."""

    check: str
    status: str
    examples: int = 0  # cases evaluated (explicit edge cases included)
    unsupported_cases: int = 0  # drawn cases the implementation declined (NotImplementedError)
    duration_s: float = 0.0
    message: str = ""
    worst: dict | None = None  # the largest error relative to tolerance, and its case
    failure: Failure | None = None  # the minimal failing example, where, by how much, reproduce
    samples: list = field(default_factory=list)  # [seq_len, dtype, ratio] per evaluated case
    note: str = ""  # e.g. the time budget ran out before max_examples
    unresolved_cases: int = 0  # cases where the dtype could not resolve some tensor at all
    # Check-specific evidence that is not a comparison (e.g. a training check's loss curves).
    data: dict | None = None
    # "reference" (compared with nn.LSTM) or "property" (the implementation against itself).
    kind: str = "reference"
    # Warnings the implementation raised during the check, counted: [{category, message, where,
    # count}] (parity.isolation; empty in-process).
    warnings: list = field(default_factory=list)
    # Declared divergences for this check (parity.expected): each with its status ("known":
    # seen, with the evidence; "fixed": no longer happens) and the declared cause.
    known: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.failure, dict):  # from a child process or a results file
            self.failure = Failure.from_dict(self.failure)

    def describe(self) -> list[str]:
        """The lines a person reads about a failure or error: what, where, cause, reproduce."""
        lines = [self.message] if self.message else []
        f = self.failure
        if not f:
            return lines
        location = (f.get("exception") or {}).get("location")
        if location:
            lines.append(f"at {location}")
        if f.get("likely_cause"):
            lines.append(f"likely cause: {f['likely_cause']}")
        if f.get("case_id"):
            lines.append(f"minimal case: {f['case_id']}")
        lines.append(f"reproduce: {f['reproduce']}")
        return lines


@dataclass
class ImplementationRecord:
    name: str
    target: str
    description: str = ""
    status: str = "pass"
    supports: dict = field(default_factory=dict)
    gradients: str = ""
    variant: str | None = None
    # How it holds nn.LSTM's parameters (parity.Layout: gate_order, biases, weights), as its
    # adapter states it; None where not stated.
    layout: dict | None = None
    features: dict = field(default_factory=dict)  # feature -> {"supported", "cases", "failed"}
    checks: list[CheckRecord] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None  # the implementation could not be loaded or probed at all

    def summarize(self) -> str:
        if self.status == NOT_INSTALLED:
            return self.status
        statuses = [c.status for c in self.checks]
        misbehaved = worst_status(statuses + ([self.status] if self.error else []))
        if misbehaved:
            self.status = misbehaved
        elif self.error:
            self.status = "error"
        elif "fail" in statuses or FIXED in statuses:
            self.status = "fail"
        elif statuses and all(s == "unsupported" for s in statuses):
            self.status = "unsupported"
        else:
            self.status = "pass"
        return self.status


@dataclass
class RunRecord:
    verdict: str
    seed: int
    max_examples: int
    started: str
    duration_s: float
    command: str
    environment: dict
    implementations: list[ImplementationRecord]
    format: str = FORMAT
    # Results that are not checks, by name, rendered by the report when present:
    # "bench" (a list of timing rows), "audit" (the nested-network article's gradients).
    studies: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(sanitize(self.to_dict()), indent=1, allow_nan=False, default=_jsonable)


def verdict_of(records: list[ImplementationRecord]) -> str:
    statuses = [r.summarize() for r in records]
    if worst_status(statuses):
        return "error"
    if "fail" in statuses:
        return "fail"
    return "pass"


def _jsonable(value):
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def sanitize(value):
    """JSON has no inf or NaN: write them as strings, readable and round-trippable."""
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    return value


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write to a temporary file beside `path`, then rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, _new_file_mode(path))  # mkstemp's 0600 would keep a shared report private
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _new_file_mode(path: Path) -> int:
    """The mode `open(path, "w")` would give: the existing file's, else 0666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def load_results(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a parity results file (format {data.get('format')!r})")
    return data


def environment() -> dict:
    """Versions and machine, for the record and the report."""
    import hypothesis
    import numpy
    import torch

    from . import __version__

    env = {
        "parity": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "hypothesis": hypothesis.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    commit = _git_commit()
    if commit:
        env["git_commit"] = commit
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
