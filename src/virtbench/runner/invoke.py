"""The suite as its options ask, in this process: for ``virtbench run`` (``cli/run.py``) and
for ``virtbench tune -- run ...``, which runs it A and B in turn in its own process (as it
runs the experiments of the registry, :mod:`virtbench.experiments.invoke`).

:func:`add_options` adds the suite's options to a parser; :func:`prepare` turns the parsed
options into a checked :class:`SuiteInvocation` (``UsageError`` for a bad one, nothing made
yet: no build, no directory, no document); :func:`invoke` builds the workload programs,
records the environment and runs the suite under the one document lifecycle
(:mod:`virtbench.runner.lifecycle`), saving after every test; :func:`finish` says where the
document went and which tests failed. Printing the document (text or JSON) is the caller's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from virtbench import console
from virtbench.errors import UsageError
from virtbench.procfs import start_time
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
from virtbench.units import format_duration, parse_duration
from virtbench.workloads.build import BuildInfo, ensure_built
from virtbench.workloads.catalog import CATALOG, GROUPS, select
from virtbench.workloads.profiles import DEFAULT_PROFILE, PROFILES, Profile, get_profile


# ---- the options -------------------------------------------------------------------------
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


def add_options(p: argparse.ArgumentParser) -> None:
    """The suite's options (``virtbench run``'s, and what ``tune -- run`` checks)."""
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


# ---- checked before anything is made -------------------------------------------------------
@dataclass(frozen=True)
class SuiteInvocation:
    """The suite with its checked configuration and where its document goes."""

    config: SuiteConfig
    """Its ``budget_start`` and ``bin_dir`` are set by each :func:`invoke` (on a copy)."""
    mode: Mode
    profile: Profile
    cpus: int
    detect: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    output: Path | None = None
    db: str | None = None


def prepare(args: argparse.Namespace) -> SuiteInvocation:
    """The invocation the parsed options ask for; ``UsageError`` for a bad one. Checks the
    tests, the copies (pid_max, RLIMIT_NPROC, memory), ``--tmpdir``, ``--output``, the
    budget and the free disk before any directory is created."""
    specs = select(args.tests)
    cpus = len(os.sched_getaffinity(0))
    copies = select_copies(args.copies, cpus)
    check_copies(copies)
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
                         budget=args.budget, tmpdir=tmpdir)
    check_budget(config)  # before the build: a budget too small is refused at once
    check_disk_space(config)
    return SuiteInvocation(config, mode, get_profile(args.profile), cpus, not args.no_detect,
                           dict(args.label), args.output, args.db)


# ---- running it ----------------------------------------------------------------------------
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


def busy_warning(load: list[float] | None, cpus: int) -> str | None:
    """A warning when other work competes with the benchmark (1-minute load >= half the
    CPUs): its numbers will be low, and the kernel-entry tests suffer most."""
    if not load or load[0] < 0.5 * cpus:
        return None
    return (f"the machine was busy when the run started (load average {load[0]:.2f} on "
            f"{cpus} CPUs): scores will be low; stop other work and run again to compare")


class SuiteInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while the suite ran: its partial document is saved and said (a
    ``KeyboardInterrupt`` before it started, while building, is not this)."""


def invoke(inv: SuiteInvocation, progress: Progress, command: list[str],
           budget_start: float | None = None) -> RunResult:
    """Build, record the environment, run the suite; the document once it ends (saved after
    every test). ``budget_start``: ``time.monotonic()`` when the budget started (default:
    now). Ctrl-C or SIGTERM while the suite runs: the partial document is saved and said,
    then :class:`SuiteInterrupted` is raised."""
    from virtbench.store import master_path, save_and_record

    config = replace(inv.config, budget_start=budget_start if budget_start is not None
                     else time.monotonic())
    build, build_note = _build(inv.profile, config, progress)
    run_doc = _document(inv, build, command)
    if build_note and inv.mode == "budget":
        run_doc.notes.append(build_note)
    busy = busy_warning(run_doc.environment.load_average, inv.cpus)
    if busy:
        progress.message(f"warning: {busy}")
        run_doc.notes.append(busy)
    progress.message(_plan_line(config, inv.profile))

    def save(doc: RunResult) -> None:  # after every test: the master file, --output, indexed
        save_and_record(doc, output=inv.output, db_url=inv.db)

    executor = LocalExecutor(gate=build.bin_dir / "vbgate")
    try:
        SuiteRunner(config, executor, run_doc, save=save, progress=progress).execute()
    except KeyboardInterrupt:
        progress.done()
        progress.message(f"interrupted: partial result saved ({master_path(run_doc)})")
        raise SuiteInterrupted from None
    progress.done()
    return run_doc


def _build(profile: Profile, config: SuiteConfig,
           progress: Progress) -> tuple[BuildInfo, str | None]:
    """The workload programs (compiled once per source and profile), and a note when that
    compile moved the budget's start."""
    compiled: list[str] = []

    def build_progress(text: str) -> None:
        compiled.append(text)
        progress.message(text)

    build_start = time.monotonic()
    build = ensure_built(profile, progress=build_progress)
    config.bin_dir = build.bin_dir
    if not compiled or config.budget_start is None:
        return build, None
    # a first run compiles the workload programs: that is setup, not measuring, and would
    # eat a small budget; the budget starts after it
    compile_seconds = time.monotonic() - build_start
    config.budget_start += compile_seconds
    return build, (f"the budget started after compiling the workload programs "
                   f"({compile_seconds:.0f} s)")


def _document(inv: SuiteInvocation, build: BuildInfo, command: list[str]) -> RunResult:
    # a short steal sample: CPU stolen by the hypervisor before the run explains low scores
    env = collect(virtualization=inv.detect, test_dir=inv.config.tmpdir,
                  steal_sample_s=0.5 if inv.detect else 0.0)
    env.compiler = build.cc
    env.compiler_version = build.cc_version
    env.cflags = list(build.cflags)
    env.workload_hash = build.source_hash
    c = inv.config
    return RunResult(profile=inv.profile.name, mode=inv.mode, comparable=inv.mode != "quick",
                     precision=c.precision, budget_seconds=c.budget, environment=env,
                     command=list(command), labels=dict(inv.labels))


def _plan_line(config: SuiteConfig, profile: Profile) -> str:
    eta = estimate_seconds(config)
    span = f"{eta / 60:.0f} min" if eta >= 120 else f"{eta:.0f} s"
    mode = config.mode
    return (f"{len(config.tests)} tests x copies {config.copies}, {mode} mode, profile "
            f"{profile.name}; "
            + (f"at most {span} (stops when the index is within "
               f"±{(config.precision or 0) * 100:g}%)" if mode == "adaptive" else
               f"within {format_duration(config.budget or 0)}" if mode == "budget"
               else f"about {span}"))


def finish(doc: RunResult, progress: Progress) -> int:
    """Say where the document was saved and which tests failed; the command's exit status
    (1 when a test failed)."""
    from virtbench.store import master_path

    progress.message(f"result saved: {master_path(doc)}")
    failed = [t for s in doc.sections for t in s.tests if t.status != "ok"]
    for t in failed:
        progress.message(f"{t.name} ({t.copies} copies) failed: {t.error}")
    return 1 if failed else 0


# ---- progress ------------------------------------------------------------------------------
class Progress:
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
