"""The command line: ``python -m parity check | list | report | bench``.

Exit status: 0 when every supported check passed, 1 when a check found a discrepancy or an
implementation misbehaved, 2 for a usage error (unknown name, import error, bad option).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import __version__
from .adapter import InvalidArgument, feature_label
from .cases import CaseSpec
from .checks import CHECKS
from .isolation import DEFAULT_TIMEOUT, Options, check_isolated, load_isolated, threads_per_child
from .registry import LoadError, NotInstalled, load, registered
from .results import (
    NOT_INSTALLED,
    ImplementationRecord,
    RunRecord,
    environment,
    load_results,
    sanitize,
    verdict_of,
    write_atomic,
)
from .runner import DEFAULT_MAX_EXAMPLES, DEFAULT_TIME_BUDGET
from .workers import MAX_DEFAULT_JOBS, default_jobs

__all__ = ["main"]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
DEFAULT_REPORT = "reports/parity.html"
DEFAULT_JSON = "reports/parity.json"
# Hypothesis's example database: failures found are tried first on the next run (git-ignored).
DEFAULT_DATABASE = ".parity/examples"


class UsageError(Exception):
    """A one-line message for stderr, then exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (what is wrong, where to look), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(convert, noun: str, ok, rule: str):
    """An argparse type: `convert` the text, then require `ok(value)` (else say `rule`)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not {noun}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{value}: must be {rule}")
        return value

    return parse


_positive_int = _number(int, "an integer", lambda v: v >= 1, ">= 1")
_seed = _number(int, "an integer", lambda v: 0 <= v < 2**32, "in [0, 2**32)")
_seconds = _number(float, "a number", lambda v: v > 0, "> 0")


def _check_name(text: str) -> str:
    if text not in CHECKS:
        raise argparse.ArgumentTypeError(f"{text!r}: must be one of {', '.join(CHECKS)}")
    return text


def _case(text: str) -> CaseSpec:
    try:
        return CaseSpec.from_string(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--impl",
        action="append",
        metavar="NAME|MODULE:ATTR",
        help="an implementation to check: a registered name (see `parity list`) or "
        "MODULE:ATTR naming an adapter or a drop-in nn.LSTM look-alike class; "
        "repeat for several (default: every registered implementation)",
    )
    p.add_argument(
        "--seed",
        type=_seed,
        help="seed of the search; the same seed draws the same cases (default: random, printed)",
    )
    p.add_argument(
        "--max-examples",
        type=_positive_int,
        default=DEFAULT_MAX_EXAMPLES,
        metavar="N",
        help=f"cases drawn per check, on top of the explicit edge cases "
        f"(default: {DEFAULT_MAX_EXAMPLES})",
    )
    p.add_argument(
        "--only",
        type=_check_name,
        action="extend",
        nargs="+",
        metavar="CHECK",
        help=f"run only these checks; repeatable ({', '.join(CHECKS)})",
    )
    p.add_argument(
        "--case",
        type=_case,
        metavar="SPEC",
        help="check exactly this case (the spec a failure prints) instead of searching",
    )
    p.add_argument(
        "--time-budget",
        type=_seconds,
        default=DEFAULT_TIME_BUDGET,
        metavar="SECONDS",
        help=f"per check: stop drawing new cases after this long "
        f"(default: {DEFAULT_TIME_BUDGET:.0f})",
    )
    p.add_argument(
        "--no-shrink",
        action="store_true",
        help="report the first failing case found, without shrinking it",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per call into an implementation: a call running longer is ended and "
        f"reported as a timeout (default: {DEFAULT_TIMEOUT:.0f})",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=(jobs := default_jobs()),
        metavar="N",
        help="N processes side by side, each checking an implementation (or, with fewer "
        "implementations than N, a share of one's checks) on its share of the cores "
        f"(default: one per core, at most {MAX_DEFAULT_JOBS}: {jobs} here)",
    )
    p.add_argument(
        "--no-database",
        action="store_true",
        help=f"neither replay nor save failing examples in {DEFAULT_DATABASE}/ "
        f"(default: replay them first, unless --seed is given; save new ones)",
    )
    p.add_argument(
        "--json", metavar="PATH", help="write the results as JSON (format: docs/json-format.md)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="list every kind of warning an implementation raised (default: the "
        "count and the most frequent, once per check)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="parity",
        description="Check that LSTM implementations compute what torch.nn.LSTM computes: "
        "outputs, final states and gradients, on configurations drawn by "
        "hypothesis.",
        epilog="exit status: 0 every supported check passed; 1 a discrepancy or a misbehaving "
        "implementation; 2 usage error",
    )
    parser.add_argument("--version", action="version", version=f"parity {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = sub.add_parser(
        "check",
        help="check implementations against torch.nn.LSTM",
        description="Check implementations against torch.nn.LSTM.",
    )
    _add_run_options(check)

    report = sub.add_parser(
        "report",
        help="check, then write the HTML parity report",
        description="Run the checks (or read --from results.json) and "
        "write one self-contained HTML page.",
    )
    _add_run_options(report)
    report.add_argument(
        "--out",
        default=DEFAULT_REPORT,
        metavar="PATH",
        help=f"where to write the page (default: {DEFAULT_REPORT})",
    )
    report.add_argument(
        "--from",
        dest="from_json",
        metavar="RESULTS.json",
        help="render from a results JSON written by check --json, without running anything",
    )
    report.add_argument(
        "--merge",
        action="append",
        metavar="RESULTS.json",
        help="with --from: add the implementations of another results JSON "
        "(one checked there replaces the same name not installed here); "
        "repeatable; with --json, the merged results are written too",
    )

    table = sub.add_parser(
        "table",
        help="the cross-framework table, as Markdown, from results",
        description="Write each implementation's supports, outcome and "
        "known divergences as a Markdown table, from results "
        "JSON files (merged in order).",
    )
    table.add_argument("results", nargs="+", metavar="RESULTS.json")
    table.add_argument("--out", metavar="PATH", help="write here (default: standard output)")

    lst = sub.add_parser("list", help="the registered implementations and what each supports")
    lst.add_argument("--json", action="store_true", help="as JSON")

    _add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "list":
            return _list(args)
        if args.command == "check":
            return _check(args)
        if args.command == "report":
            return _report(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "table":
            return _table(args)
    except LoadError as exc:  # what --impl named cannot be loaded
        print(f"parity {args.command}: error: --impl {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"parity {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE


# -- list ------------------------------------------------------------------------------------
def _list(args) -> int:
    rows: list[dict] = []
    for name, ep in registered().items():
        try:
            adapter = load(name)
            feats = adapter.supports.features()
            rows.append(
                {
                    "name": name,
                    "target": ep.value,
                    "description": adapter.description,
                    "gradients": adapter.supports.gradients,
                    "supports": feats,
                    "variant": adapter.variant.description if adapter.variant else None,
                }
            )
        except NotInstalled as exc:
            cls = exc.adapter_class
            rows.append(
                {
                    "name": name,
                    "target": ep.value,
                    "description": cls.description,
                    "gradients": cls.supports.gradients,
                    "supports": cls.supports.features(),
                    "not_installed": exc.reason,
                }
            )
        except LoadError as exc:
            rows.append({"name": name, "target": ep.value, "error": str(exc)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_PASS
    if not rows:
        print("no implementations registered (entry point group parity.implementations)")
        return EXIT_PASS
    features = list(next((r["supports"] for r in rows if "supports" in r), {}))
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  gradients  " + " ".join(_short(f) for f in features))
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<{width}}  cannot load: {r['error']}")
            continue
        if "not_installed" in r:
            print(f"{r['name']:<{width}}  {r['not_installed']}")
            print(f"{'':<{width}}  {r['description']}")
            continue
        moot = _not_applicable(r["supports"])
        marks = " ".join(
            f"{_mark(r['supports'][f], f in moot):<{len(_short(f))}}" for f in features
        )
        print(f"{r['name']:<{width}}  {r['gradients']:<9}  {marks}")
        print(
            f"{'':<{width}}  {r['description']}"
            + (f" [variant: {r['variant']}]" if r.get("variant") else "")
        )
    return EXIT_PASS


def _mark(supported: bool, moot: bool) -> str:
    return "yes" if supported else "n/a" if moot else "-"


def _not_applicable(supports: dict[str, bool]) -> dict[str, str]:
    """Features that mean nothing for an implementation, with why: not unsupported, moot."""
    if "dropout" in supports and not supports.get("multi_layer", True) and not supports["dropout"]:
        return {"dropout": "one layer only; nn.LSTM's dropout acts between layers"}
    return {}


def _short(feature: str) -> str:
    return feature_label(feature, short=True)


# -- check -----------------------------------------------------------------------------------
def _writable(path: str, option: str) -> Path:
    p = Path(path)
    if p.exists() and p.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file path")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create its directory ({exc.strerror})") from None
    # Try it: permission bits say nothing to root, nor about read-only or virtual file systems.
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"{option} {path}: directory {str(p.parent)!r} is not writable ({exc.strerror})"
        ) from None
    return p


def _targets(args) -> list[str]:
    if args.impl:
        return list(dict.fromkeys(args.impl))
    names = list(registered())
    if not names:
        raise UsageError(
            "no implementations registered and no --impl given; install the "
            "project (pip install -e .) or name one with --impl MODULE:ATTR"
        )
    return names


def _run(args, out=None) -> RunRecord:
    """Load everything first (usage errors before any work), then check each, every
    implementation in a child process of its own (parity.isolation)."""
    out = out or sys.stdout
    targets = _targets(args)
    checks = tuple(dict.fromkeys(args.only)) if args.only else CHECKS
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    # Hypothesis's caches go beside the example database; with none, into a directory of this
    # run's own, removed at the end: --no-database leaves nothing in the working directory.
    scratch = (
        tempfile.TemporaryDirectory(prefix="parity-", ignore_cleanup_errors=True)
        if args.no_database
        else None
    )
    options = Options(
        checks=checks,
        seed=seed,
        max_examples=args.max_examples,
        time_budget=args.time_budget,
        case=args.case.to_string() if args.case else None,
        shrink=not args.no_shrink,
        database=None if args.no_database else str(Path(DEFAULT_DATABASE).resolve()),
        # An explicit seed repeats a run exactly: saved examples are not replayed then.
        database_read=args.seed is None,
        timeout=args.timeout,
        threads=threads_per_child(args.jobs),
        entry_points={name: ep.value for name, ep in registered().items()},
        hypothesis_home=scratch.name if scratch else None,
    )
    started = time.monotonic()
    stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    progress = None if args.quiet else _Progress(jobs=args.jobs)
    records = []
    try:
        info = load_isolated(targets, options)
        # An optional framework that is not installed: a usage error when named (--impl jax),
        # skipped with the reason when only registered.
        missing = [t for t in targets if info[t].get("status") == NOT_INSTALLED]
        if missing and args.impl:
            raise LoadError(info[missing[0]]["error"])
        targets = [t for t in targets if t not in missing]
        what = (
            f"case {args.case.to_string()}"
            if args.case
            else f"seed {seed}, {args.max_examples} examples per check"
        )
        print(
            f"parity {__version__}: checking {len(targets)} implementation"
            f"{'s' if len(targets) != 1 else ''} against torch.nn.LSTM ({what})",
            file=out,
        )

        def header(i: dict) -> None:
            print(f"\n{i['name']}: {i.get('description', '')}".rstrip(), file=out, flush=True)

        def done(record) -> None:
            if progress:
                progress.clear()
            if args.jobs > 1:
                header({"name": record.name, "description": record.description})
            _print_record(record, out, verbose=args.verbose)
            records.append(record)

        checked = check_isolated(
            targets,
            info,
            options,
            jobs=args.jobs,
            on_start=header if args.jobs == 1 else None,
            on_done=done,
            progress=progress,
            on_check=(lambda name, record: progress.over(name, record.check)) if progress else None,
        )
        records = checked + [_not_installed(info[t], out) for t in missing]
    except KeyboardInterrupt:
        if progress:
            progress.clear()
        print(
            f"\ninterrupted: {len(records)} of {len(targets)} implementations decided"
            + (f" ({_summary(records)})" if records else "")
            + "; nothing written",
            file=out,
            flush=True,
        )
        raise
    finally:
        if scratch:
            scratch.cleanup()
    verdict = verdict_of(records)
    argv = ["python", "-m", "parity"] + sys.argv[1:] if sys.argv else []
    return RunRecord(
        verdict,
        seed,
        args.max_examples,
        stamp,
        round(time.monotonic() - started, 3),
        shlex.join(argv),
        environment(),
        records,
    )


def _not_installed(i: dict, out) -> ImplementationRecord:
    print(f"\n{i['name']}: {i['reason']}; skipped", file=out, flush=True)
    return ImplementationRecord(
        name=i["name"],
        target=i["target"],
        description=f"{i['description']} ({i['reason']})",
        status=NOT_INSTALLED,
        supports=i["supports"],
        gradients=i["gradients"],
        layout=i.get("layout"),
        features={f: {"supported": v, "cases": 0, "failed": 0} for f, v in i["supports"].items()},
    )


def _check(args) -> int:
    json_path = _writable(args.json, "--json") if args.json else None
    try:
        run = _run(args)
    except KeyboardInterrupt:
        return 130
    if json_path:
        write_atomic(json_path, run.to_json())
    _print_verdict(run, json_path)
    return EXIT_PASS if run.verdict == "pass" else EXIT_FAIL


def _report(args) -> int:
    from .report import render_report

    out_path = _writable(args.out, "--out")
    json_path = _writable(args.json, "--json") if args.json else None
    if args.merge and not args.from_json:
        raise UsageError("--merge needs --from")
    if args.from_json:
        data = _load_merged([args.from_json] + (args.merge or []), "--from")
        if json_path and args.merge:
            write_atomic(json_path, json.dumps(sanitize(data), indent=1, allow_nan=False))
    else:
        try:
            run = _run(args)
        except KeyboardInterrupt:
            return 130
        if json_path:
            write_atomic(json_path, run.to_json())
        data = json.loads(run.to_json())
    write_atomic(out_path, render_report(data))
    if not args.from_json:
        _print_verdict(run, json_path)
    print(f"report: {out_path} ({out_path.stat().st_size / 1024:.0f} KiB)")
    verdict = data.get("verdict", "error")
    return EXIT_PASS if verdict == "pass" else EXIT_FAIL


def _load_merged(paths: list[str], option: str) -> dict:
    from .table import merge_results

    loaded = []
    for path in paths:
        try:
            loaded.append(load_results(path))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{option} {path}: {exc}") from None
    return merge_results(*loaded)


def _table(args) -> int:
    from .table import render_table

    data = _load_merged(args.results, "table")
    text = render_table(data, source=", ".join(f"`{p}`" for p in args.results))
    if args.out:
        write_atomic(_writable(args.out, "--out"), text)
        print(f"table: {args.out}")
    else:
        print(text, end="")
    return EXIT_PASS


# -- bench -----------------------------------------------------------------------------------
def _shape(text: str):
    from .bench import parse_shape

    try:
        return parse_shape(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_bench_parser(sub) -> None:
    from .bench import DEFAULT_REPEAT, DEFAULT_SHAPES

    shapes = " ".join(",".join(map(str, s)) for s in DEFAULT_SHAPES)
    bench = sub.add_parser(
        "bench",
        help="time implementations against torch.nn.LSTM",
        description="Time the forward and forward+backward of each implementation and of "
        "torch.nn.LSTM in the same process, interleaved and repeated; print median "
        "times, ratios and peak memory.",
    )
    bench.add_argument(
        "--impl",
        action="append",
        required=True,
        metavar="NAME|MODULE:ATTR",
        help="an implementation to time (a registered name or MODULE:ATTR); repeatable",
    )
    bench.add_argument(
        "--shape",
        type=_shape,
        action="append",
        metavar="L,N,I,H",
        help=f"seq_len,batch,input,hidden; repeatable (default: {shapes})",
    )
    bench.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="default: float32"
    )
    bench.add_argument(
        "--repeat",
        type=_positive_int,
        default=DEFAULT_REPEAT,
        metavar="N",
        help=f"timed calls of each, interleaved (default: {DEFAULT_REPEAT})",
    )
    bench.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        metavar="N",
        help="threads for torch and for the BLAS alike (default: 1)",
    )
    bench.add_argument(
        "--no-memory",
        action="store_true",
        help="skip the peak-memory measurement (a child process)",
    )
    bench.add_argument(
        "--json", metavar="PATH", help="write the rows as JSON (format: docs/bench.md)"
    )
    bench.add_argument(
        "--into",
        metavar="RESULTS",
        help="also put the rows into this parity "
        "results JSON as studies.bench, for the report (report --from RESULTS)",
    )


def _bench(args) -> int:
    from . import bench

    json_path = _writable(args.json, "--json") if args.json else None
    into = None
    if args.into:
        try:
            into = load_results(args.into)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--into {args.into}: {exc}") from None
        _writable(args.into, "--into")
    adapters = [load(t) for t in dict.fromkeys(args.impl)]
    shapes = list(dict.fromkeys(args.shape)) if args.shape else list(bench.DEFAULT_SHAPES)
    threads = bench.set_threads(args.threads)
    print(
        f"parity {__version__}: timing {', '.join(a.name for a in adapters)} against "
        f"torch.nn.LSTM ({args.dtype}, {args.repeat} interleaved calls each, median; threads: "
        f"torch {threads['torch']}, BLAS {threads['blas']})",
        flush=True,
    )
    rows, reference_memory = bench.bench(
        adapters,
        shapes,
        args.dtype,
        args.repeat,
        memory=not args.no_memory,
        threads=args.threads,
        out=sys.stdout,
    )
    if json_path:
        write_atomic(
            json_path, bench.to_json(rows, reference_memory, threads, args.repeat, environment())
        )
        print(f"results: {json_path}")
    if into is not None:
        into.setdefault("studies", {})["bench"] = [r.to_json() for r in rows]
        write_atomic(args.into, json.dumps(sanitize(into), indent=1, allow_nan=False))
        print(f"studies.bench: {args.into}")
    return EXIT_PASS


# -- printing ------------------------------------------------------------------------------
_MARK = {
    "pass": "PASS",
    "fail": "FAIL",
    "error": "ERROR",
    "unsupported": "unsupported",
    "known": "KNOWN",
    "fixed": "FIXED",
}


def _print_record(record, out, verbose: bool = False) -> None:
    if record.error:
        print(f"  {record.status.upper():<11} {record.error}", file=out)
    for c in record.checks:
        worst = ""
        if c.worst and c.status == "pass" and c.unresolved_cases < c.examples:
            worst = f", worst {c.worst['ratio']:.2g}x tolerance"
        cases = f"{c.examples} case{'s' if c.examples != 1 else ''}" if c.examples else ""
        if c.unresolved_cases:
            cases += f" ({c.unresolved_cases} too ill-conditioned to compare)"
        if c.unsupported_cases and c.status != "unsupported":
            cases += f", {c.unsupported_cases} declined (NotImplementedError)"
        detail = ", ".join(x for x in (cases + worst, f"{c.duration_s:.1f}s") if x)
        print(f"  {_MARK.get(c.status, c.status.upper()):<11} {c.check:<19} {detail}", file=out)
        if c.status not in ("pass", "unsupported") and c.failure:
            for line in c.describe():
                print(f"      {line}", file=out)
        elif c.status == "unsupported" and c.message:
            print(f"      {c.message}", file=out)
        _print_known(c, out)
        if c.note and c.kind != "property":  # a property's short budget runs out by design
            print(f"      note: {c.note}", file=out)
        for line in _warning_lines(c.warnings, verbose):
            print(f"      {line}", file=out)
    supported = {k: v["supported"] for k, v in record.features.items()}
    moot = _not_applicable(supported)
    unsupported = [k for k, v in supported.items() if not v and k not in moot]
    if unsupported:
        print(f"  unsupported features (not drawn): {', '.join(unsupported)}", file=out)
    for feature, why in moot.items():
        print(f"  not applicable: {feature} ({why})", file=out)
    out.flush()


def _warning_lines(counted: list[dict], verbose: bool) -> list[str]:
    """The implementation's warnings during one check: how many, and the most frequent kind
    (every kind when `verbose`)."""
    if not counted:
        return []
    total = sum(w["count"] for w in counted)
    kinds = sorted(counted, key=lambda w: -w["count"])
    head = f"warnings: {total} raised by the implementation"

    def one(w: dict) -> str:
        return f"{w['count']} x {w['category']}: {w['message']} ({_short_path(w['where'])})"

    if verbose:
        return [head + ":"] + [f"  {one(w)}" for w in kinds]
    more = (
        f"; {len(kinds) - 1} other kind{'s' if len(kinds) > 2 else ''} (-v lists them)"
        if len(kinds) > 1
        else ""
    )
    return [f"{head}: {one(kinds[0])}{more}"]


def _short_path(where: str) -> str:
    path, _, line = where.rpartition(":")
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        relative = path
    return f"{path if relative.startswith('..') else relative}:{line}"


def _print_known(check, out) -> None:
    """A check's declared divergences, apart: ~ happened as declared, x no longer happens."""
    for k in check.known:
        if k["status"] == "known":
            e = k.get("evidence") or {}
            n = k["cases"]
            print(
                f"      ~ known divergence ({n} case{'s' if n != 1 else ''}): {k['cause']}",
                file=out,
            )
            for line in (e.get("message"), e.get("case_id") and f"minimal case: {e['case_id']}"):
                if line:
                    print(f"          {line}", file=out)
        else:
            print(
                f"      x declared divergence no longer happens (fixed: remove the "
                f"declaration): {k['cause']} [where {k['where']}]",
                file=out,
            )


def _summary(records) -> str:
    counts: dict[str, int] = {}
    for r in records:
        for c in r.checks:
            counts[c.status] = counts.get(c.status, 0) + 1
        if r.error and r.status != NOT_INSTALLED:
            counts[r.status] = counts.get(r.status, 0) + 1
    return "checks: " + ", ".join(f"{n} {s}" for s, n in counts.items())


def _print_verdict(run: RunRecord, json_path) -> None:
    skipped = sum(r.status == NOT_INSTALLED for r in run.implementations)
    print(
        f"\nverdict: {run.verdict} ({len(run.implementations) - skipped} implementations"
        f"{f', {skipped} not installed' if skipped else ''}; "
        f"{_summary(run.implementations)}) in {run.duration_s:.0f}s, seed {run.seed}"
    )
    if json_path:
        print(f"results: {json_path}")


# Where the output is not a terminal (a CI log), a long run still says it is alive this often.
PLAIN_PROGRESS_EVERY_S = 15.0


class _Progress:
    """Progress on stderr: on a terminal one live line (implementation, check, cases done,
    elapsed), rewritten in place; elsewhere a plain line at most every PLAIN_PROGRESS_EVERY_S.
    With `jobs` children side by side, the line shows the check each is on, with its own elapsed
    time: the checks not yet `over`, at most the `jobs` heard from last (a child that crashed
    in a check never says it is over)."""

    def __init__(
        self,
        stream=None,
        *,
        jobs: int = 1,
        tty: bool | None = None,
        clock=time.monotonic,
        every: float = PLAIN_PROGRESS_EVERY_S,
    ) -> None:
        self.stream = stream or sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty, self.clock, self.every, self.jobs = tty, clock, every, max(1, jobs)
        self.width = 0
        self.started = clock()
        self.last_plain = self.started
        # (implementation, check) -> [done, total, started, last heard], in order first heard.
        self.active: dict[tuple[str, str], list] = {}
        self.order: dict[str, int] = {}  # implementations, in order first heard: a steady line

    def __call__(self, implementation: str, check: str, done: int, total: int) -> None:
        now = self.clock()
        entry = self.active.setdefault((implementation, check), [0, 0, now, now])
        entry[:2], entry[3] = (done, total), now
        while len(self.active) > self.jobs:
            del self.active[min(self.active, key=lambda k: self.active[k][3])]
        self.order.setdefault(implementation, len(self.order))
        by_implementation: dict[str, list[str]] = {}
        for (impl, name), (d, t, since, _) in sorted(
            self.active.items(), key=lambda item: self.order[item[0][0]]
        ):
            by_implementation.setdefault(impl, []).append(
                f"{name} {d}/{t} cases, {_elapsed(now - since)}"
            )
        line = (
            "  "
            + " | ".join(f"{impl}: {'; '.join(parts)}" for impl, parts in by_implementation.items())
            + f" (run {_elapsed(now - self.started)})"
        )
        if self.tty:
            # A line wider than the terminal wraps, and "\r" then rewrites only its last row.
            columns = shutil.get_terminal_size((80, 24)).columns
            line = line[: max(columns - 1, 10)]
            self.stream.write("\r" + line.ljust(self.width))
            self.stream.flush()
            self.width = len(line)
        elif now - self.last_plain >= self.every:
            self.stream.write(line.lstrip().join(("... ", "\n")))
            self.stream.flush()
            self.last_plain = now

    def over(self, implementation: str, check: str) -> None:
        """`check` of `implementation` is decided: off the line from the next report on."""
        self.active.pop((implementation, check), None)

    def clear(self) -> None:
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
