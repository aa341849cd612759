"""Each implementation's checks in a child process, every call into it under a time limit.

The harness runs code it did not write. In a child, a segfault, an ``os._exit`` or the kernel's
out-of-memory killer ends that child, not the run; a call that hangs is ended by its parent.
Before every call into the implementation the child notes which call on which case it is
starting, and when (a heartbeat in memory shared with its parent,
`parity.evaluation.reporting_calls`: a few stores per call, no message, so that finite
differences' thousands of small calls cost nothing extra), so the parent can end a call that
runs too long and say what a crash or a hang was running, and how to run it again. After a crash
or a timeout, a fresh child takes up the checks not yet decided. Records come back over a pipe,
as dicts, each check as it is decided.

Children come from a fork server that has imported torch and parity once (``spawn`` where there
is no fork server), so a child starts in milliseconds, never forked from a process that has run
torch's thread pools.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait
from typing import Callable

from .cases import CaseSpec
from .checks import FORWARD_CHECKS
from .registry import LoadError, NotInstalled
from .results import CheckRecord, Failure, ImplementationRecord
from .workers import context, thread_environment, threads_per_child

__all__ = [
    "DEFAULT_TIMEOUT",
    "Options",
    "check_isolated",
    "example_database",
    "load_isolated",
    "threads_per_child",
]

# Seconds one call into an implementation may take. The largest drawn case (3 bidirectional
# projected layers, 200 steps, batch 40) takes a correct torch implementation ~1 s for forward
# and gradients together on one loaded core; a NumPy one up to ~10x that. 60 s never fires on a
# correct implementation and still ends a hang within a minute.
DEFAULT_TIMEOUT = 60.0
# Seconds a child is given to exit after being told to (it has sent its record).
_EXIT_GRACE = 5.0
# The process exit status of a child whose parent went away (nothing left to report to).
_ORPHANED = 70
# Seconds between the parent's looks at a child's heartbeat (at most; sooner near a deadline).
_POLL = 0.5
# Bytes of shared memory for the heartbeat's "call\ncase" text (a case spec is ~150).
_HEARTBEAT_TEXT = 1024


@dataclass(frozen=True)
class Options:
    """What a child needs to run the checks of one implementation (picklable)."""

    checks: tuple[str, ...]
    seed: int
    max_examples: int
    time_budget: float
    case: str | None = None  # a CaseSpec string: check exactly this case
    shrink: bool = True
    database: str | None = None  # a directory of hypothesis examples, or None for none
    database_read: bool = True  # False: save new failures there but do not replay old ones
    timeout: float = DEFAULT_TIMEOUT
    threads: int = 0  # torch threads in the child; 0 leaves torch's default
    # Registered name -> MODULE:ATTR, as the parent found them (None: the child's own).
    entry_points: dict | None = None
    # Where hypothesis keeps its caches; None: beside `database`, or hypothesis's default
    # (`.hypothesis/` in the working directory) when there is no database either.
    hypothesis_home: str | None = None


# -- the example database --------------------------------------------------------------------
def example_database(path: str | None, read: bool = True):
    """Hypothesis's directory database at `path`: failures found are saved and, when `read`,
    tried first on the next run. With `read` False (a run with an explicit --seed), saved
    examples are not replayed, so that the seed alone decides what is drawn."""
    if path is None:
        return None
    from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

    directory = DirectoryBasedExampleDatabase(path)
    if read:
        return directory

    class WriteOnly(ExampleDatabase):
        def fetch(self, key):
            return iter(())

        def save(self, key, value):
            directory.save(key, value)

        def delete(self, key, value):
            directory.delete(key, value)

    return WriteOnly()


# -- the child --------------------------------------------------------------------------------
def _hypothesis_home(options: Options) -> None:
    """Keep hypothesis's caches (it would write `.hypothesis/` in the working directory) where
    the parent said, else beside the example database."""
    home = options.hypothesis_home or (
        os.path.join(os.path.dirname(options.database.rstrip(os.sep)), "hypothesis")
        if options.database
        else None
    )
    if home:
        from hypothesis.configuration import set_hypothesis_home_dir

        set_hypothesis_home_dir(home)


class _WarningCounts:
    """The warnings the code under test raised, counted by kind and place, in order of first
    appearance; the harness's own (raised from parity's or hypothesis's files) are shown as
    usual."""

    def __init__(self, show) -> None:
        import hypothesis

        self.show = show
        self.counts: dict[tuple[str, str, str], int] = {}
        self.own_files = tuple(
            os.path.dirname(os.path.abspath(f)) + os.sep for f in (__file__, hypothesis.__file__)
        )

    def __call__(self, message, category, filename, lineno, file=None, line=None) -> None:
        if os.path.abspath(filename).startswith(self.own_files):
            self.show(message, category, filename, lineno, file, line)
            return
        key = (category.__name__, str(message).strip(), f"{filename}:{lineno}")
        self.counts[key] = self.counts.get(key, 0) + 1

    def take(self) -> list[dict]:
        """The counts since the last take: [{category, message, where, count}]."""
        taken = [
            {"category": c, "message": m, "where": w, "count": n}
            for (c, m, w), n in self.counts.items()
        ]
        self.counts = {}
        return taken


@contextlib.contextmanager
def _counted_warnings():
    """Count every warning raised inside (each one, not only the first from a place), instead
    of printing it: a check draws hundreds of cases, and one overflow warning per case would
    bury the results. The counts go to the parent with each check's record."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        counted = _WarningCounts(warnings.showwarning)
        warnings.showwarning = counted
        yield counted


def _child(kind: str, targets: list[str], options: Options, messages, control, beat, text) -> None:
    """Entry point of a child process: load (`kind` "load") or check (`kind` "check")."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle

    def orphaned():
        # The parent holds the other end of `control`; when it is gone, so is our purpose.
        try:
            control.recv()
        except (EOFError, OSError):
            pass
        os._exit(_ORPHANED)

    threading.Thread(target=orphaned, daemon=True).start()
    _hypothesis_home(options)
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)

    from .evaluation import reporting_calls
    from .registry import load

    last = [None, None]  # the (call, spec) whose text is in `text`

    def hook(call, spec):
        # `beat`: [1.0 while in a call else 0.0, when the call started]; `text`: call\ncase.
        if call is None:
            beat[0] = 0.0
            return
        if call != last[0] or spec is not last[1]:
            last[0], last[1] = call, spec
            text.value = f"{call}\n{spec.to_string() if spec else ''}".encode()[
                : _HEARTBEAT_TEXT - 1
            ]
        beat[1] = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
        beat[0] = 1.0

    for target in targets:
        hook("load", None)
        try:
            # Not shown: loading probes a look-alike with calls that the checks make again,
            # where what they raise is counted.
            with _counted_warnings():
                adapter = load(target, options.entry_points)
        except NotInstalled as exc:
            cls = exc.adapter_class
            messages.send(
                (
                    "loaded",
                    target,
                    {
                        "name": exc.name,
                        "target": target,
                        "status": "not-installed",
                        "reason": exc.reason,
                        "error": str(exc),
                        "description": cls.description,
                        "supports": cls.supports.features(),
                        "gradients": cls.supports.gradients,
                        "layout": cls.layout.to_dict() if cls.layout else None,
                    },
                )
            )
            continue
        except LoadError as exc:
            messages.send(("load-error", target, str(exc)))
            continue
        finally:
            hook(None, None)
        messages.send(
            (
                "loaded",
                target,
                {
                    "name": adapter.name,
                    "target": getattr(adapter, "target", "") or adapter.name,
                    "description": adapter.description,
                    "supports": adapter.supports.features(),
                    "gradients": adapter.supports.gradients,
                    "variant": adapter.variant.description if adapter.variant else None,
                    "layout": adapter.layout.to_dict() if adapter.layout else None,
                },
            )
        )
        if kind != "check":
            continue
        from .runner import check_implementation

        with reporting_calls(hook), _counted_warnings() as counted:
            record = check_implementation(
                adapter,
                checks=options.checks,
                seed=options.seed,
                max_examples=options.max_examples,
                time_budget=options.time_budget,
                case=CaseSpec.from_string(options.case) if options.case else None,
                progress=lambda name, check, done, total: messages.send(
                    ("progress", check, done, total)
                ),
                shrink=options.shrink,
                database=example_database(options.database, options.database_read),
                on_check=lambda rec: messages.send(
                    ("check", {**asdict(rec), "warnings": counted.take()})
                ),
            )
        messages.send(("features", record.features))
    messages.send(("done",))


# -- the parent -------------------------------------------------------------------------------
class _Child:
    """One child process, seen from the parent: what it is running, and since when."""

    def __init__(self, ctx, kind: str, targets: list[str], options: Options) -> None:
        self.kind, self.targets, self.options = kind, targets, options
        receive, self._send_end = ctx.Pipe(duplex=False)
        control_receive, self.control = ctx.Pipe(duplex=False)
        self.beat = ctx.RawArray("d", 2)
        self.text = ctx.RawArray("c", _HEARTBEAT_TEXT)
        self.process = ctx.Process(
            target=_child,
            name=f"parity-{kind}",
            args=(kind, targets, options, self._send_end, control_receive, self.beat, self.text),
            daemon=True,
        )
        self.process.start()
        self._send_end.close()
        control_receive.close()
        self.messages = receive
        self.done = False  # it said it has sent everything
        self.closed = False  # its end of the pipe is closed: it has ended, one way or another

    @property
    def call(self) -> str | None:
        """The call running now, or None between calls."""
        return self.last_call if self.beat[0] else None

    @property
    def last_call(self) -> str:
        return self.text.value.decode(errors="replace").partition("\n")[0]

    @property
    def case(self) -> str:
        """The case of the last call started ("" for none)."""
        return self.text.value.decode(errors="replace").partition("\n")[2]

    def deadline(self) -> float | None:
        return self.beat[1] + self.options.timeout if self.beat[0] else None

    def receive(self, most: int = 10_000) -> list[tuple]:
        """The messages waiting (up to `most`, so that a chatty child cannot starve the
        clock)."""
        out: list[tuple] = []
        try:
            while not self.closed and len(out) < most and self.messages.poll():
                out.append(self.messages.recv())
        except (EOFError, OSError):
            self.closed = True
        return out

    def ended(self) -> bool:
        return self.closed or not self.process.is_alive()

    def how_it_ended(self) -> tuple[int | None, str | None, str]:
        """(exit code, signal name, in words) of a child that ended."""
        self.process.join(_EXIT_GRACE)
        code = self.process.exitcode
        if code is None:
            return None, None, "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return None, name, f"killed by {name}"
        return code, None, f"exit code {code}"

    def kill(self) -> None:
        if self.done:  # it is on its way out: let it go by itself
            self.process.join(_EXIT_GRACE)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(_EXIT_GRACE)
        self.messages.close()
        self.control.close()


def _until_event(children: list[_Child]) -> None:
    """Block until a child has something to say, ends, or runs out of time in a call."""
    # A call starting is not a message: look again every _POLL seconds, sooner for a deadline.
    deadlines = [d for d in (c.deadline() for c in children) if d is not None]
    timeout = min([_POLL] + [max(0.0, d - time.monotonic()) for d in deadlines])
    waitables = [c.messages for c in children] + [c.process.sentinel for c in children]
    wait(waitables, timeout)


def load_isolated(targets: list[str], options: Options) -> dict[str, dict]:
    """Load every target in a child (user code runs there: imports, constructors, probes).

    Returns target -> its description, or ``{"status": "crashed" | "timeout", "error": ...}``
    for one that crashed or hung while loading. A target that cannot be loaded at all (unknown
    name, import error, not an implementation) raises LoadError: a usage error.
    """
    ctx = context()
    with thread_environment(options.threads):
        pending, info = list(targets), {}
        while pending:
            child = _Child(ctx, "load", pending, options)
            try:
                while not child.done:
                    for message in child.receive():
                        if message[0] == "loaded":
                            info[message[1]] = message[2]
                        elif message[0] == "load-error":
                            raise LoadError(message[2])
                        elif message[0] == "done":
                            child.done = True
                    if child.done:
                        break
                    if child.ended():
                        status, words = "crashed", child.how_it_ended()[2]
                    # The heartbeat read once: a call that ends between two reads would make
                    # the second None.
                    elif (deadline := child.deadline()) is not None and time.monotonic() > deadline:
                        status, words = "timeout", f"ran over the {options.timeout:g}s limit"
                    else:
                        _until_event([child])
                        continue
                    target = next(t for t in pending if t not in info)
                    info[target] = {
                        "name": target,
                        "target": target,
                        "status": status,
                        "error": f"{target}: {status} ({words}) while loading: "
                        f"its import, its constructor, or the calls that "
                        f"probe the features it supports",
                    }
                    break
            finally:
                child.kill()
            pending = [t for t in pending if t not in info]
    return info


@dataclass
class _Job:
    """Checks of one implementation (all of them, or a part: see `_parts`), over as many
    children as crashes make it take."""

    target: str
    info: dict
    checks: list[str]
    started: float = field(default_factory=time.monotonic)
    records: dict = field(default_factory=dict)  # check -> CheckRecord
    features: dict = field(default_factory=dict)
    hung: dict = field(default_factory=dict)  # (call, case) -> the check it timed out in
    check_started: float = field(default_factory=time.monotonic)  # the check running now

    def remaining(self) -> list[str]:
        return [c for c in self.checks if c not in self.records]

    def record(self) -> ImplementationRecord:
        i = self.info
        record = ImplementationRecord(
            name=i["name"],
            target=i["target"],
            description=i.get("description", ""),
            supports=i.get("supports", {}),
            gradients=i.get("gradients", ""),
            variant=i.get("variant"),
            layout=i.get("layout"),
            features=self.features,
            checks=[self.records[c] for c in self.checks if c in self.records],
            duration_s=round(time.monotonic() - self.started, 3),
            error=i.get("error"),
        )
        if i.get("status"):
            record.status = i["status"]
        record.summarize()
        return record

    def add_features(self, counts: dict) -> None:
        for name, c in counts.items():
            merged = self.features.setdefault(name, {**c, "cases": 0, "failed": 0})
            merged["cases"] += c["cases"]
            merged["failed"] += c["failed"]


# Checks whose cases share runs (the implementation's and nn.LSTM's, with gradients): never
# split between children.
SHARED_RUNS = (*FORWARD_CHECKS, "gradients")
# What each check costs, roughly, in units of ~0.2 s of a correct torch look-alike's default
# check on one core (measured with `--json`: output 2.3 s, gradients 1.3, finite differences
# 3.9, training 1.4, each property 0.1 to 0.3); for splitting an implementation's checks
# between children of about equal cost when there are more cores than implementations.
COSTS = {"output": 12, "gradients": 7, "finite-differences": 20, "training": 7}


def _parts(checks: list[str], n: int) -> list[list[str]]:
    """`checks` in at most `n` parts of about equal cost, each part in the order of `checks`.

    Largest first, each into the cheapest part so far; SHARED_RUNS stay together.
    """
    groups = [[c for c in checks if c in SHARED_RUNS]] + [
        [c] for c in checks if c not in SHARED_RUNS
    ]
    costed = sorted(((sum(COSTS.get(c, 1) for c in g), g) for g in groups if g), reverse=True)
    n = max(1, min(n, len(costed)))
    costs = [0.0] * n
    parts: list[list[str]] = [[] for _ in range(n)]
    for cost, g in costed:
        i = costs.index(min(costs))
        parts[i] += g
        costs[i] += cost
    return [[c for c in checks if c in part] for part in parts if part]


def _merged(jobs: list[_Job], checks: list[str]) -> _Job:
    """One implementation's parts as one job (its `checks` in their order): its records,
    features and time over all."""
    first = jobs[0]
    info = next((j.info for j in jobs if j.info.get("status")), first.info)
    whole = _Job(first.target, info, checks, started=min(j.started for j in jobs))
    for j in jobs:
        whole.records.update(j.records)
        whole.add_features(j.features)
    return whole


def check_isolated(
    targets: list[str],
    info: dict[str, dict],
    options: Options,
    *,
    jobs: int = 1,
    on_start: Callable[[dict], None] | None = None,
    on_done: Callable[[ImplementationRecord], None] | None = None,
    progress: Callable[[str, str, int, int], None] | None = None,
    on_check: Callable[[str, CheckRecord], None] | None = None,
) -> list[ImplementationRecord]:
    """Check each target in children, `jobs` at a time; records in the order of `targets`.

    With fewer targets than `jobs`, each target's checks are split into parts of about equal
    cost (`_parts`), each in a child of its own, so that every core is used: the records are
    the same, each check being its own search, seeded alike. `on_done` is given each record in
    the order of `targets`, as soon as those before it are done too; `on_check` is given the
    implementation's name and each check's record as it comes back. `info` is what
    `load_isolated` returned. Children still running when this returns or raises
    (KeyboardInterrupt included) are killed.
    """
    ctx = context()
    split = max(1, jobs // max(1, len(targets)))
    queue: list[_Job] = []
    parts: dict[str, list[_Job]] = {}
    for t in targets:
        hung: dict = {}  # a call that hung in one part is not waited for again in another
        for checks in _parts(list(options.checks), split):
            parts.setdefault(t, []).append(_Job(t, info[t], checks, hung=hung))
        queue += parts[t]
    finished: dict[str, ImplementationRecord] = {}
    running: dict[_Child, _Job] = {}
    started: set[str] = set()
    unfinished = {t: len(jobs_of) for t, jobs_of in parts.items()}  # parts not yet finished
    told = 0  # records passed to on_done: in the order of targets, whatever order they end in

    def finish(job: _Job) -> None:
        nonlocal told
        unfinished[job.target] -= 1
        if not unfinished[job.target]:
            finished[job.target] = _merged(parts[job.target], list(options.checks)).record()
        while told < len(targets) and targets[told] in finished:
            if on_done:
                on_done(finished[targets[told]])
            told += 1

    def start(job: _Job) -> None:
        if job.info.get("status") or not job.remaining():
            finish(job)
            return
        child_options = Options(**{**asdict(options), "checks": tuple(job.remaining())})
        running[_Child(ctx, "check", [job.target], child_options)] = job

    with thread_environment(options.threads):
        try:
            while queue or running:
                while queue and len(running) < max(1, jobs):
                    job = queue.pop(0)
                    if on_start and job.target not in started:
                        on_start(job.info)
                    started.add(job.target)
                    start(job)
                if not running:
                    continue
                _until_event(list(running))
                for child in list(running):
                    job = running[child]
                    ended = _step(child, job, options, progress, on_check)
                    if ended:
                        child.kill()
                        del running[child]
                        if job.remaining() and not child.done:
                            start(job)  # a fresh child for the checks not yet decided
                        else:
                            finish(job)
        finally:
            for child in running:
                child.kill()
    return [finished[t] for t in targets]


def _step(child: _Child, job: _Job, options: Options, progress, on_check) -> bool:
    """Handle what `child` said or did; True when it is over (done, crashed or timed out)."""
    if _handle(child, job, options, progress, on_check, child.receive()):
        return True
    if child.call is not None and (child.call, child.case) in job.hung:
        # The same call on the same case already ran out of time: do not wait again.
        first = job.hung[(child.call, child.case)]
        _ended(
            job,
            child,
            "timeout",
            options,
            f"the same call timed out in the {first} check; not waited for again",
        )
        return True
    deadline = child.deadline()
    if deadline is not None and time.monotonic() > deadline:
        if job.remaining():
            job.hung[(child.call, child.case)] = job.remaining()[0]
        _ended(job, child, "timeout", options, f"ran over the {options.timeout:g}s limit")
        return True
    if child.ended():
        # What it sent just before it ended, then how it ended.
        if _handle(child, job, options, progress, on_check, child.receive()):
            return True
        code, name, words = child.how_it_ended()
        _ended(job, child, "crashed", options, words, code, name)
        return True
    return False


def _handle(child: _Child, job: _Job, options: Options, progress, on_check, messages) -> bool:
    for message in messages:
        kind = message[0]
        if kind == "load-error":  # it loaded in the loading child: not reproducible
            job.info = {**job.info, "status": "error", "error": message[2]}
            return True
        if kind == "progress" and progress:
            progress(job.info["name"], message[1], message[2], message[3])
        elif kind == "check":
            record = CheckRecord(**message[1])
            job.records[record.check] = record
            job.check_started = time.monotonic()
            if on_check:
                on_check(job.info["name"], record)
        elif kind == "features":
            job.add_features(message[1])
        elif kind == "done":
            child.done = True
            return True
    return False


def _ended(
    job: _Job,
    child: _Child,
    status: str,
    options: Options,
    words: str,
    exit_code: int | None = None,
    signal_name: str | None = None,
) -> None:
    """Record the check `child` was running as crashed or timed out, with what it was doing."""
    if not job.remaining():
        return
    check = job.remaining()[0]  # the checks run in order, each sent when decided
    name = job.info.get("name", job.target)
    during = child.call or child.last_call
    spec = CaseSpec.from_string(child.case) if child.case else None
    if child.call is not None:
        doing = f"during {child.call}"
    elif during:
        doing = f"between calls (the last: {during})"
    else:
        doing = "before its first call"
    where = f" [case {spec.to_string()}]" if spec else ""
    message = f"{name}: {status} ({words}) {doing}{where}"
    reproduce = (
        spec.reproduce(job.info.get("target", job.target), check)
        if spec
        else f"python -m parity check --impl {job.target} --only {check}"
    )
    failure = Failure.of(
        spec,
        message,
        reproduce,
        **{
            status: {"call": during or None, "exit_code": exit_code, "signal": signal_name}
            if status == "crashed"
            else {"call": during or None, "limit_s": options.timeout}
        },
    )
    job.records[check] = CheckRecord(
        check,
        status,
        message=message,
        failure=failure,
        duration_s=round(time.monotonic() - job.check_started, 3),
    )
    job.check_started = time.monotonic()
