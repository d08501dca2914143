"""``virtbench run``: the UnixBench-compatible suite."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from virtbench import console
from virtbench.errors import UsageError
from virtbench.procfs import start_time
from virtbench.report.text import render
from virtbench.results.environment import collect
from virtbench.results.model import Mode, RunResult
from virtbench.runner.executor import LocalExecutor
from virtbench.runner.limits import check_copies
from virtbench.runner.suite import (
    ProgressEvent,
    SuiteConfig,
    SuiteRunner,
    check_budget,
    check_disk_space,
    estimate_seconds,
    select_copies,
)
from virtbench.store import master_path, save_and_record
from virtbench.units import format_duration, parse_duration
from virtbench.workloads.build import ensure_built
from virtbench.workloads.catalog import CATALOG, GROUPS, select
from virtbench.workloads.profiles import DEFAULT_PROFILE, PROFILES, get_profile

NAME = "run"
HELP = "run the UnixBench-compatible suite (default: the 12 index tests)"


def parse_precision(text: str) -> float:
    """``2%`` or ``0.02`` -> 0.02; must be in (0, 50%]."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a precision: {text!r} (e.g. 2%% or 0.02)") \
            from None
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"precision must be between 0 and 50%, got {text!r}")
    return value


def parse_budget(text: str) -> float:
    """``90s``, ``10m``, ``1h`` -> seconds (argparse type of ``--budget``)."""
    try:
        return parse_duration(text, "--budget")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--budget: ")) from None


def process_started() -> float:
    """``time.monotonic()`` at which this process started (the budget's start), from
    ``/proc/self/stat`` and ``/proc/uptime``; now when they cannot be read."""
    now = time.monotonic()
    ticks = start_time(os.getpid())
    try:
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read(64).split()[0])
    except (OSError, ValueError, IndexError):
        return now
    if ticks is None:
        return now
    age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    return now - min(max(age, 0.0), 60.0)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"labels are key=value, got {text!r}")
    return key.strip(), value.strip()


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("tests", nargs="*", metavar="TEST",
                   help=f"test ids ({', '.join(CATALOG)}) and groups "
                        f"({', '.join(GROUPS)}); default: index; --list describes them")
    p.add_argument("-c", "--copies", type=positive_int, action="append", metavar="N",
                   help="parallel copies (repeatable); default: 1, then one per CPU")
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES),
                   help=f"build flags and semantics (default {DEFAULT_PROFILE})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--precision", type=parse_precision, metavar="P",
                      help="adaptive mode: short passes until the 95%% CI half-width <= P "
                           "(e.g. 2%%) or the test's standard time is spent")
    mode.add_argument("--budget", type=parse_budget, metavar="DURATION",
                      help="budgeted mode: the whole selection (every copies setting) within "
                           "DURATION (90s, 10m, 1h), with 95%% intervals for every test and "
                           "the index")
    mode.add_argument("--quick", action="store_true",
                      help="smoke run: 1-2 s passes, 2 passes; NOT comparable")
    p.add_argument("--tmpdir", type=Path, default=None,
                   help="directory for the file tests (default: $TMPDIR or /tmp)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="also write the result document to FILE")
    p.add_argument("--label", type=parse_label, action="append", default=[], metavar="K=V",
                   help="label the run (repeatable)")
    p.add_argument("--db", metavar="URL", default=None,
                   help="results database URL (default: $VIRTBENCH_DB or SQLite in the data dir)")
    p.add_argument("--json", action="store_true",
                   help="print the result document (JSON) instead of the text report")
    p.add_argument("--no-detect", action="store_true",
                   help="skip virtualization detection in the environment record")
    p.add_argument("--list", action="store_true",
                   help="list the tests (ids, names, units, index baselines) and groups; "
                        "run nothing")


EXAMPLES = (
    "virtbench run                       # the 12 index tests: 1 copy, then one per CPU",
    "virtbench run --list                # the test ids and groups to name",
    "virtbench run dhry2reg pipe -c 1    # two tests, one copy",
    "virtbench run --quick               # a smoke run (not comparable)",
    "virtbench run --precision 2% --label env=vm -o result.json",
    "virtbench run --budget 10m          # the index at 1 and N copies in 10 minutes, with CIs",
)


def list_tests() -> str:
    """``run --list``: every test of the catalog, then the groups."""
    from virtbench.table import Col, output_width, render
    from virtbench.workloads.catalog import CATALOG, GROUPS

    cols = [Col("TEST"), Col("NAME", wrap=True, min_width=16), Col("UNIT"),
            Col("BASELINE", right=True), Col("PASSES", right=True), Col("SECONDS", right=True),
            Col("GROUPS", wrap=True, min_width=10, breakable=False)]
    rows = [[s.id, s.name, s.unit, f"{s.baseline:.1f}" if s.baseline else "-", str(s.passes),
             f"{s.duration:g}", ",".join(s.groups)] for s in CATALOG.values()]
    width = output_width()
    out = [render(cols, rows, width=width)]
    out.append("BASELINE: the index's reference score (George, a SPARCstation 20-61: index 10);"
               " SECONDS: one pass\n")
    out.append(render([Col("GROUP"), Col("TESTS", wrap=True, breakable=False)],
                      [[g, " ".join(ids)] for g, ids in GROUPS.items()], width=width))
    return "\n".join(out)


class _Progress:
    """Progress on stderr between passes only: nothing runs in Python while a pass is timed."""

    def __init__(self, stream: Any = sys.stderr, adaptive: bool = False) -> None:
        self.stream = stream
        self.adaptive = adaptive
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_test = ""
        self._last_line = -1e9

    def __call__(self, e: ProgressEvent) -> None:
        if console.level < console.NORMAL:
            return
        if e.budget_left is not None:
            self._budget(e, e.budget_left)
            return
        eta = int(e.eta_seconds)
        eta_text = f"{eta // 3600}h{eta % 3600 // 60:02d}m" if eta >= 3600 else \
            f"{eta // 60}m{eta % 60:02d}s"
        if self.adaptive:  # adaptive tests stop early: the ETA is an upper bound
            eta_text = "<= " + eta_text
        what = f"[{e.test_number}/{e.total_tests}] {e.test.name} ({e.copies} " \
               f"{'copy' if e.copies == 1 else 'copies'})"
        if self.tty:
            more = "+" if e.pass_index + 1 > e.planned_passes else f"/{e.planned_passes}"
            self.stream.write(f"\r\033[K{what} pass {e.pass_index + 1}{more}  ETA {eta_text}")
            self.stream.flush()
        elif what != self._last_test:
            self._last_test = what
            self.stream.write(f"virtbench: {what}, ETA {eta_text}\n")
            self.stream.flush()

    def _budget(self, e: ProgressEvent, left: float) -> None:
        """Budgeted and adaptive runs interleave tests: one line per pass on a terminal,
        else a line every 30 s, each with the time left."""
        what = (f"pass {e.test_number}: {e.test.name} ({e.copies} "
                f"{'copy' if e.copies == 1 else 'copies'}), "
                f"{format_duration(left)} of the budget left"
                + (" (at most)" if self.adaptive else ""))
        if self.tty:
            self.stream.write(f"\r\033[K{what}")
            self.stream.flush()
        elif time.monotonic() - self._last_line >= 30:
            self._last_line = time.monotonic()
            self.stream.write(f"virtbench: {what}\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        if console.level < console.NORMAL and not text.startswith("warning"):
            return
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"virtbench: {text}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def busy_warning(load: list[float] | None, cpus: int) -> str | None:
    """A warning when other work competes with the benchmark (1-minute load >= half the
    CPUs): its numbers will be low, and the kernel-entry tests suffer most."""
    if not load or load[0] < 0.5 * cpus:
        return None
    return (f"the machine was busy when the run started (load average {load[0]:.2f} on "
            f"{cpus} CPUs): scores will be low; stop other work and run again to compare")


def _make_saver(output: Path | None, db: str | None) -> Callable[[RunResult], None]:
    """Save after every test: the JSON master file (and --output), indexed in the store."""

    def save(doc: RunResult) -> None:
        save_and_record(doc, output=output, db_url=db)

    return save


def run(args: argparse.Namespace) -> int:
    if args.list:
        sys.stdout.write(list_tests())
        return 0
    budget_start = process_started()
    progress = _Progress(adaptive=bool(args.precision))
    specs = select(args.tests)
    cpus = len(os.sched_getaffinity(0))
    copies = select_copies(args.copies, cpus)
    check_copies(copies)  # before any directory is created (pid_max, RLIMIT_NPROC, memory)
    mode: Mode = ("quick" if args.quick else "adaptive" if args.precision
                  else "budget" if args.budget else "standard")
    tmpdir: Path = args.tmpdir or Path(tempfile.gettempdir())
    if not tmpdir.is_dir():
        raise UsageError(f"--tmpdir {tmpdir}: not a directory")
    if not os.access(tmpdir, os.W_OK):
        raise UsageError(f"--tmpdir {tmpdir}: not writable")
    if args.output is not None and not args.output.parent.is_dir():
        raise UsageError(f"--output {args.output}: directory {args.output.parent} does not exist")

    config = SuiteConfig(tests=specs, copies=copies, mode=mode, precision=args.precision,
                         budget=args.budget, budget_start=budget_start, tmpdir=tmpdir)
    check_budget(config)  # before the build: a budget too small is refused at once
    check_disk_space(config)
    profile = get_profile(args.profile)
    compiled: list[str] = []

    def build_progress(text: str) -> None:
        compiled.append(text)
        progress.message(text)

    build_start = time.monotonic()
    build = ensure_built(profile, progress=build_progress)
    config.bin_dir = build.bin_dir
    build_note = None
    if compiled and config.budget_start is not None:
        # a first run compiles the workload programs (once per source and profile): that is
        # setup, not measuring, and would eat a small budget; the budget starts after it
        compile_seconds = time.monotonic() - build_start
        config.budget_start += compile_seconds
        build_note = (f"the budget started after compiling the workload programs "
                      f"({compile_seconds:.0f} s)")

    # a short steal sample: CPU stolen by the hypervisor before the run explains low scores
    env = collect(virtualization=not args.no_detect, test_dir=tmpdir,
                  steal_sample_s=0.0 if args.no_detect else 0.5)
    env.compiler = build.cc
    env.compiler_version = build.cc_version
    env.cflags = list(build.cflags)
    env.workload_hash = build.source_hash
    run_doc = RunResult(profile=profile.name, mode=mode, comparable=mode != "quick",
                        precision=args.precision, budget_seconds=args.budget, environment=env,
                        command=["virtbench", *sys.argv[1:]], labels=dict(args.label))

    if build_note and mode == "budget":
        run_doc.notes.append(build_note)
    busy = busy_warning(env.load_average, cpus)
    if busy:
        progress.message(f"warning: {busy}")
        run_doc.notes.append(busy)

    eta = estimate_seconds(config)
    span = f"{eta / 60:.0f} min" if eta >= 120 else f"{eta:.0f} s"
    progress.message(
        f"{len(specs)} tests x copies {copies}, {mode} mode, profile {profile.name}; "
        + (f"at most {span} (stops when the index is within ±{args.precision * 100:g}%)"
           if mode == "adaptive" else
           f"within {format_duration(args.budget)}" if mode == "budget" else f"about {span}"))
    saver = _make_saver(args.output, args.db)
    executor = LocalExecutor(gate=build.bin_dir / "vbgate")
    runner = SuiteRunner(config, executor, run_doc, save=saver, progress=progress)
    try:
        runner.execute()
    except KeyboardInterrupt:
        progress.done()
        progress.message(f"interrupted: partial result saved ({master_path(run_doc)})")
        return 130
    progress.done()
    if args.json:
        sys.stdout.write(run_doc.to_json())
    else:
        sys.stdout.write(render(run_doc))
    progress.message(f"result saved: {master_path(run_doc)}")
    failed = [t for s in run_doc.sections for t in s.tests if t.status != "ok"]
    for t in failed:
        progress.message(f"{t.name} ({t.copies} copies) failed: {t.error}")
    return 1 if failed else 0
