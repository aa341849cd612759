"""The fork server that `parity.isolation`'s children come from, and their thread counts.

Light on purpose: it imports nothing of parity's and not torch, so that ``python -m parity``
can start the server (which imports torch and parity once, for every child) before it imports
torch itself: on two cores the two imports overlap instead of following each other.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os

__all__ = [
    "MAX_THREADS_PER_CHILD",
    "PRELOAD",
    "context",
    "start_server",
    "thread_environment",
    "threads_per_child",
]

# What the fork server imports once, so that a child starts in milliseconds.
PRELOAD = ["parity.isolation", "parity.runner", "parity.registry"]

# Threads per child. The cases a check draws are small (at most MAX_WORK multiply-adds a step),
# where a thread pool costs more than it gains; and pools spinning against any other process on
# the machine slow them down fifty-fold (the training check of `fused`: 4 s with one thread,
# 196 s with two on a 2-core machine with one other busy process).
MAX_THREADS_PER_CHILD = 1


# Children side by side by default (`default_jobs`): one per core, at most this many (each holds
# its own copy of the cases and nn.LSTM's runs of them).
MAX_DEFAULT_JOBS = 8


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_jobs() -> int:
    """Children side by side when the user says nothing: one per core, up to MAX_DEFAULT_JOBS."""
    return min(MAX_DEFAULT_JOBS, cores())


def threads_per_child(jobs: int) -> int:
    """Threads for each of `jobs` children side by side: the cores shared out, at most
    MAX_THREADS_PER_CHILD, and never more than OMP_NUM_THREADS where the user set it."""
    threads = max(1, min(MAX_THREADS_PER_CHILD, cores() // max(1, jobs)))
    try:
        threads = min(threads, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        pass
    return max(1, threads)


@contextlib.contextmanager
def thread_environment(threads: int):
    """BLAS libraries read their thread counts once, when loaded: set them for the fork server
    (which loads them for every child), unless the user set them."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        if threads and saved[n] is None:
            os.environ[n] = str(threads)
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)


def context():
    """The fork server's context, preloading `PRELOAD`; ``spawn`` where there is none."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def start_server(jobs: int = 1) -> None:
    """Start the fork server now, as the children of `jobs` side by side will need it; it
    imports `PRELOAD` in the background. Nothing where there is no fork server. The first child
    would start it anyway: this only starts it sooner."""
    if context().get_start_method() != "forkserver":
        return
    with thread_environment(threads_per_child(jobs)):
        multiprocessing.forkserver.ensure_running()
