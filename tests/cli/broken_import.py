"""A module that cannot be imported: a dependency it needs is missing (a usage error)."""

import no_such_dependency_xyz  # noqa: F401

LSTM = None
