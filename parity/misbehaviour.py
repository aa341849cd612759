"""Misbehaviour that is not a wrong number: its status names, and how the harness notices it.

An implementation under test can do worse than compute a wrong value. Each of these is a status
of its own in the results (checks and implementations), printed and rendered as it is:

- ``crashed``: its process died (a segfault, ``os._exit``, killed for memory);
- ``timeout``: one call into it ran longer than the per-call limit;
- ``error``: it raised an exception (kept: the type and message);
- ``wrong-structure``: forward did not return ``(output, (h_n, c_n))``; gradients not a dict,
  or under other names than the inputs and parameters it was given;
- ``wrong-parameters``: the parameters an adapter maps onto its module are not the module's (a
  key the module does not have, a module parameter not given, another shape or dtype), found at
  build time, before anything is compared (docs/adapter-contract.md);
- ``wrong-shape``: a tensor of the wrong shape (expected against got, per tensor);
- ``wrong-dtype``: a tensor of another dtype than the case's (float64 for float32, or back);
- ``mutates-input``: it changed its input, initial state or the weights it was given;
- ``changes-global-state``: it left a process-wide torch setting changed that a caller's own
  code depends on (grad mode, the default dtype or device; `parity.process_state`);
- ``nondeterministic``: the same call twice gave results further apart than the tolerance;
- ``nan``: NaN or inf where the reference is finite.

`fail` (a discrepancy) and `pass` and `unsupported` are the ordinary outcomes.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = [
    "MISBEHAVIOURS",
    "ChangesGlobalState",
    "Misbehaviour",
    "MutatesInput",
    "WrongParameters",
    "WrongShape",
    "WrongStructure",
    "changed",
    "is_misbehaviour",
    "snapshot",
    "worst_status",
]

# Most telling first: an implementation's status is the first of these among its checks.
MISBEHAVIOURS = (
    "crashed",
    "timeout",
    "error",
    "wrong-structure",
    "wrong-parameters",
    "wrong-shape",
    "wrong-dtype",
    "mutates-input",
    "changes-global-state",
    "nondeterministic",
    "nan",
)


def is_misbehaviour(status: str) -> bool:
    return status in MISBEHAVIOURS


def worst_status(statuses: Iterable[str]) -> str | None:
    """The most telling misbehaviour among `statuses`, or None when there is none."""
    found = set(statuses)
    return next((s for s in MISBEHAVIOURS if s in found), None)


class Misbehaviour(Exception):
    """Raised by the harness or an adapter for misbehaviour that has a status of its own."""

    status = "error"


class WrongStructure(Misbehaviour, TypeError):
    """forward did not return ``(output, (h_n, c_n))``."""

    status = "wrong-structure"


class WrongShape(Misbehaviour, ValueError):
    """A tensor came back in a shape that is not nn.LSTM's."""

    status = "wrong-shape"


class WrongParameters(Misbehaviour, ValueError):
    """What an adapter maps onto its module does not fit the module's own parameters."""

    status = "wrong-parameters"


class ChangesGlobalState(Misbehaviour):
    """A call left a process-wide torch setting changed (see `parity.process_state`)."""

    status = "changes-global-state"


class MutatesInput(Misbehaviour):
    """A call changed an array or tensor it was given."""

    status = "mutates-input"


def snapshot(named: dict) -> dict[str, np.ndarray]:
    """Copies of the arrays in `named` (NumPy arrays or anything with ``.detach()``)."""
    return {name: _as_array(value).copy() for name, value in named.items() if value is not None}


def changed(named: dict, before: dict[str, np.ndarray]) -> str | None:
    """What changed since `snapshot`: ``"input (max |change| = 0.5)"``, or None."""
    moved = []
    for name, old in before.items():
        new = _as_array(named[name])
        if new.shape != old.shape:
            moved.append(f"{name} (shape {old.shape} -> {new.shape})")
        elif new.dtype == old.dtype and new.tobytes() == old.tobytes():
            continue  # the same bits (the common case, and 25x cheaper than array_equal)
        elif not np.array_equal(new, old, equal_nan=True):
            diff = np.abs(new.astype(np.float64) - old.astype(np.float64))
            diff = diff[np.isfinite(diff)]
            how = f"max |change| = {diff.max():.3g}" if diff.size else "to non-finite values"
            moved.append(f"{name} ({how})")
    if not moved:
        return None
    shown = ", ".join(moved[:4]) + (f" and {len(moved) - 4} more" if len(moved) > 4 else "")
    return shown


def _as_array(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor: what it holds now, not a view that moves
        return value.detach().cpu().numpy()
    return np.asarray(value)
