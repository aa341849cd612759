"""Process-wide torch settings: the harness's own, and what an implementation leaves changed.

torch keeps some settings per process (grad mode, the default dtype, the number of threads).
An implementation runs in the harness's process, so what it sets there outlives its call: a
constructor that calls ``torch.set_grad_enabled(False)`` (a notebook habit) would switch
autograd off for the reference computed next. Two things follow:

- the harness's own torch computations (the reference, its training runs) run under
  `harness_settings`: grad mode on, float32 default dtype, the CPU as default device, whatever
  was left set, and what was set is restored afterwards;
- every call into an implementation runs under `watch`: the settings are read before and after,
  and restored to what they were. A change that alters what a caller's own code computes
  afterwards is a finding (status ``changes-global-state``): grad mode (the caller's training
  silently gets no gradients), the default dtype and the default device (the caller's new
  tensors change dtype or device). A change that alters speed or rounding only (threads,
  deterministic algorithms, anomaly detection, oneDNN, float32 matmul precision) is harmless:
  restored without a word, as a correct LSTM tuning its own speed must not get a false alarm.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

__all__ = ["SETTINGS", "Setting", "capture", "harness_settings", "restore", "watch"]


@dataclass(frozen=True)
class Setting:
    """One process-wide torch setting: how to read and set it, and whether a change is a finding."""

    name: str
    get: Callable[[], object]
    # Setters take their own type (bool, dtype, int...); some return a value (a context manager).
    set: Callable[[Any], object]
    finding: bool
    # The call that sets `value`, for the message: "torch.set_grad_enabled(False)".
    call: Callable[[Any], str]
    # What the harness's own computations run under (None: whatever it is).
    harness: object = None


def _set_default_device(value) -> None:
    # None removes the default-device context torch.set_default_device installs: the CPU,
    # without a device mode slowing every factory call.
    torch.set_default_device(None if value == "cpu" else value)


def _set_deterministic(value) -> None:
    torch.use_deterministic_algorithms(value[0], warn_only=value[1])


def _set_anomaly(value) -> None:
    torch.set_anomaly_enabled(value[0], value[1])


def _set_mkldnn(value) -> None:
    torch.backends.mkldnn.enabled = value


SETTINGS = (
    Setting(
        "grad mode",
        torch.is_grad_enabled,
        torch.set_grad_enabled,
        True,
        lambda v: f"torch.set_grad_enabled({v})",
        harness=True,
    ),
    Setting(
        "default dtype",
        torch.get_default_dtype,
        torch.set_default_dtype,
        True,
        lambda v: f"torch.set_default_dtype({v})",
        harness=torch.float32,
    ),
    Setting(
        "default device",
        lambda: str(torch.get_default_device()),
        _set_default_device,
        True,
        lambda v: f"torch.set_default_device({v!r})",
        harness="cpu",
    ),
    Setting(
        "number of threads",
        torch.get_num_threads,
        torch.set_num_threads,
        False,
        lambda v: f"torch.set_num_threads({v})",
    ),
    Setting(
        "deterministic algorithms",
        lambda: (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        ),
        _set_deterministic,
        False,
        lambda v: f"torch.use_deterministic_algorithms({v[0]}, warn_only={v[1]})",
    ),
    Setting(
        "anomaly detection",
        lambda: (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
        _set_anomaly,
        False,
        lambda v: f"torch.set_anomaly_enabled({v[0]}, {v[1]})",
    ),
    Setting(
        "oneDNN",
        lambda: bool(torch.backends.mkldnn.enabled),
        _set_mkldnn,
        False,
        lambda v: f"torch.backends.mkldnn.enabled = {v}",
    ),
    Setting(
        "float32 matmul precision",
        torch.get_float32_matmul_precision,
        torch.set_float32_matmul_precision,
        False,
        lambda v: f"torch.set_float32_matmul_precision({v!r})",
    ),
)


def capture() -> dict[str, object]:
    """Every setting's value now, by name."""
    return {s.name: s.get() for s in SETTINGS}


def restore(values: dict[str, object]) -> None:
    """Set back what `capture` read (only what differs: setting threads is not free)."""
    for s in SETTINGS:
        if s.name in values and s.get() != values[s.name]:
            s.set(values[s.name])


@contextlib.contextmanager
def harness_settings() -> Iterator[None]:
    """The harness's own torch computations: under its settings, whatever the implementation
    left set; everything restored afterwards."""
    before = capture()
    try:
        for s in SETTINGS:
            if s.harness is not None and before[s.name] != s.harness:
                s.set(s.harness)
        yield
    finally:
        restore(before)


def _describe(setting: Setting, old, new) -> str:
    if setting.name == "grad mode":
        what = "switched torch's grad mode off" if not new else "switched torch's grad mode on"
    else:
        what = f"changed torch's {setting.name} from {old} to {new}"
    return f"{what} ({setting.call(new)})"


@contextlib.contextmanager
def watch(changes: list[str]) -> Iterator[None]:
    """Run a call into the implementation; afterwards every setting is what it was before, and
    `changes` gets a description of each change that is a finding (see the module docstring)."""
    before = capture()
    try:
        yield
    finally:
        after = capture()
        for s in SETTINGS:
            if s.finding and after[s.name] != before[s.name]:
                changes.append(_describe(s, before[s.name], after[s.name]))
        restore(before)
