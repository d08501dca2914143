"""Postmark 1.5 as a fixed-work workload and as the ``virtbench io postmark`` experiment.

The timed work is the C program ``c/postmark.c`` (see its header for the semantics and the
deliberate differences from NetApp's Postmark 1.5). This module builds it, runs it in a
fresh directory that is always removed, and parses its ``key=value`` output.

Python API for other experiments (``consolidate --workload postmark``)::

    bin_path = postmark.binary()
    with postmark.workdir(location) as wd:
        proc = subprocess.run(postmark.command(params, wd, bin_path), capture_output=True,
                              text=True)
    result = postmark.parse(proc.stdout)          # PostmarkResult
    result.seconds_total, result.transactions_per_second, ...

or simply ``postmark.run_once(params, location)``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.experiments import programs
from virtbench.experiments.common import (
    MEMORY_FILESYSTEMS,
    SoloExperiment,
    int_arg,
    location_facts,
    run_program,
    run_solo_repeats,
    runs_table,
    signals_deferred,
    stamp_program,
    where,
)
from virtbench.experiments.metric import MainMetric
from virtbench.experiments.spec import (
    Chart,
    Context,
    ExperimentSpec,
    ExperimentView,
    Row,
    Summary,
)
from virtbench.results.model import ExperimentResult
from virtbench.runner.lifecycle import new_workdir, remove_workdir
from virtbench.units import parse_size

PROGRAM = "postmark"
MiB = 1024 * 1024


@dataclass(frozen=True)
class PostmarkParams:
    """Postmark's settings. The defaults are Postmark 1.5's except ``files`` and
    ``transactions`` (1.5: 500 and 500, which finish in a fraction of a second here; see
    ``PRESETS``). Sizes are drawn uniformly from ``[size_min, size_max)`` as in 1.5."""

    files: int = 1000
    size_min: int = 500
    size_max: int = 10000
    transactions: int = 20000
    subdirs: int = 0
    read_block: int = 512
    write_block: int = 512
    bias_read: int = 5
    """Chance out of 10 that a transaction reads rather than appends; -1 disables both."""
    bias_create: int = 5
    """Chance out of 10 that a transaction creates rather than deletes; -1 disables both."""
    buffered: bool = True
    seed: int = 42

    def validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise UsageError(msg)

        need(self.files >= 1, "--files must be at least 1")
        need(self.size_min >= 1, "--size minimum must be at least 1 byte")
        need(self.size_max >= self.size_min, "--size MIN:MAX needs MAX >= MIN")
        need(self.size_max <= 1 << 30, "--size maximum is 1 GiB")
        need(self.transactions >= 0, "--transactions must be >= 0")
        need(self.subdirs >= 0, "--subdirs must be >= 0")
        need(self.read_block >= 1 and self.write_block >= 1, "block sizes must be >= 1 byte")
        need(-1 <= self.bias_read <= 10, "--bias-read must be -1 (off) or 0..10")
        need(-1 <= self.bias_create <= 10, "--bias-create must be -1 (off) or 0..10")
        need(0 <= self.seed <= 0xFFFFFFFF, "--seed must be in 0..4294967295")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, PostmarkParams] = {
    # virtbench's default: Postmark 1.5's settings with a pool and a transaction count that
    # take a few seconds on a current machine.
    "default": PostmarkParams(),
    # Postmark 1.5's own defaults (500 files, 500 transactions).
    "postmark": PostmarkParams(files=500, transactions=500),
    # The consolidation study's setting: 30000 files of 1..100000 bytes. It does not state
    # the transaction count; 50000 is virtbench's choice.
    "paper": PostmarkParams(files=30000, size_min=1, size_max=100000, transactions=50000),
}


def parse_size_range(text: str) -> tuple[int, int]:
    """``MIN:MAX`` in bytes (suffixes k, m, g: KiB, MiB, GiB) → (min, max)."""
    lo, sep, hi = text.partition(":")
    if not sep:
        raise UsageError(f"--size wants MIN:MAX in bytes, e.g. 500:10000 (got {text!r})")
    return parse_size(lo, "--size"), parse_size(hi, "--size")


@dataclass(frozen=True)
class PostmarkResult:
    """What one run did and how long it took. Rates follow Postmark 1.5's report: files
    created/deleted and data per second are over the total time; transactions, reads,
    appends and the creates/deletes mixed with transactions are over the transaction phase.
    """

    status: str
    seconds_total: float
    seconds_create: float
    seconds_transactions: float
    seconds_delete: float
    transactions: int
    files_initial: int
    files_created: int
    files_read: int
    files_appended: int
    files_deleted: int
    files_deleted_alone: int
    bytes_read: int
    bytes_written: int
    user_seconds: float
    system_seconds: float

    # ---- derived ---------------------------------------------------------------------------
    @property
    def files_created_mixed(self) -> int:
        return self.files_created - self.files_initial

    @property
    def files_deleted_mixed(self) -> int:
        return self.files_deleted - self.files_deleted_alone

    def figures(self) -> dict[str, float | int | str]:
        """Every count and rate, flat (one experiment row)."""
        def per(n: float, s: float) -> float:
            return n / s if s > 0 else 0.0

        tot, tx = self.seconds_total, self.seconds_transactions
        out: dict[str, float | int | str] = {f.name: getattr(self, f.name) for f in fields(self)}
        out.update(
            files_created_mixed=self.files_created_mixed,
            files_deleted_mixed=self.files_deleted_mixed,
            transactions_per_second=per(self.transactions, tx),
            created_per_second=per(self.files_created, tot),
            created_alone_per_second=per(self.files_initial, self.seconds_create),
            created_mixed_per_second=per(self.files_created_mixed, tx),
            read_per_second=per(self.files_read, tx),
            appended_per_second=per(self.files_appended, tx),
            deleted_per_second=per(self.files_deleted, tot),
            deleted_alone_per_second=per(self.files_deleted_alone, self.seconds_delete),
            deleted_mixed_per_second=per(self.files_deleted_mixed, tx),
            read_bytes_per_second=per(self.bytes_read, tot),
            written_bytes_per_second=per(self.bytes_written, tot),
        )
        return out

    @property
    def transactions_per_second(self) -> float:
        return self.transactions / self.seconds_transactions if self.seconds_transactions else 0.0


_INT_FIELDS = {f.name for f in fields(PostmarkResult) if f.type in ("int", int)}
_FLOAT_FIELDS = {f.name for f in fields(PostmarkResult) if f.type in ("float", float)}


def parse(text: str) -> PostmarkResult:
    """Parse the program's ``key=value`` output; ``ValueError`` if it is not complete."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            values[key] = value
    if values.get("program") != "virtbench-postmark":
        raise ValueError("not virtbench postmark output")
    kwargs: dict[str, Any] = {"status": values.get("status", "")}
    for name in _INT_FIELDS:
        if name not in values:
            raise ValueError(f"postmark output lacks {name}")
        kwargs[name] = int(values[name])
    for name in _FLOAT_FIELDS:
        if name not in values:
            raise ValueError(f"postmark output lacks {name}")
        kwargs[name] = float(values[name])
    return PostmarkResult(**kwargs)


def binary() -> Path:
    """The compiled program (built into the compile cache on first use; see
    :mod:`virtbench.experiments.programs`)."""
    return programs.build(PROGRAM)


def command(params: PostmarkParams, workdir: Path, bin_path: Path) -> list[str]:
    """The argv that runs ``params`` in ``workdir`` (an existing, empty directory)."""
    return [
        str(bin_path),
        "--dir", str(workdir),
        "--files", str(params.files),
        "--min", str(params.size_min),
        "--max", str(params.size_max),
        "--transactions", str(params.transactions),
        "--subdirs", str(params.subdirs),
        "--read-block", str(params.read_block),
        "--write-block", str(params.write_block),
        "--bias-read", str(params.bias_read),
        "--bias-create", str(params.bias_create),
        "--buffered", "1" if params.buffered else "0",
        "--seed", str(params.seed),
    ]


def workload_output(text: str) -> Any:
    """Parse for the instance backends: a ``WorkloadOutput`` whose seconds are Postmark's
    total time and whose metrics are every numeric figure of :meth:`PostmarkResult.figures`."""
    from virtbench.experiments.instances import WorkloadOutput  # late: avoids an import cycle

    r = parse(text)
    if r.status != "ok":
        raise ValueError(f"postmark: {r.status} after {r.transactions} transactions")
    metrics = {k: float(v) for k, v in r.figures().items() if isinstance(v, (int, float))}
    return WorkloadOutput(seconds=r.seconds_total, metrics=metrics)


def workload_command(params: PostmarkParams) -> Any:
    """Postmark as a fixed-work instance workload (``consolidate --workload postmark``): a
    ``WorkloadCommand`` running in the instance's own scratch directory (``{dir}``)."""
    from virtbench.experiments.instances import WorkloadCommand  # late: avoids a cycle

    params.validate()
    argv = command(params, Path("{dir}"), Path(PROGRAM))
    return WorkloadCommand(name="postmark", program=PROGRAM, args=tuple(argv[1:]),
                           parse=workload_output, needs_dir=True)


def required_space(params: PostmarkParams) -> tuple[int, int]:
    """(bytes, inodes) a run may need at its peak: every slot of the pool (2 × files)
    holding a file that appends grew to the maximum size is the bound; we ask for the pool
    at the maximum size, which the default biases never exceed in practice."""
    return params.files * params.size_max, 2 * params.files + params.subdirs + 16


def check_location(params: PostmarkParams, location: Path) -> None:
    if not location.is_dir():
        raise UsageError(f"--dir {location}: not a directory")
    if not os.access(location, os.W_OK | os.X_OK):
        raise UsageError(f"--dir {location}: not writable")
    need_bytes, need_inodes = required_space(params)
    st = os.statvfs(location)
    free = st.f_bavail * st.f_frsize
    margin = 64 * MiB
    if free < need_bytes + margin:
        raise UsageError(
            f"not enough free space in {location}: postmark may need {need_bytes / MiB:.0f} MiB "
            f"(files x max size) plus a 64 MiB margin, {free / MiB:.0f} MiB free; use --dir "
            "elsewhere or fewer/smaller files")
    if st.f_files and st.f_favail < need_inodes:
        raise UsageError(f"not enough free inodes in {location}: need {need_inodes}, "
                         f"{st.f_favail} free")


@contextlib.contextmanager
def workdir(location: Path | None = None) -> Iterator[Path]:
    """A fresh directory under ``location`` (default: the temp dir), always removed — a
    signal cannot fall between its creation and the cleanup, nor cut the cleanup short."""
    base = location if location is not None else Path(tempfile.gettempdir())
    path: Path | None = None
    try:
        with signals_deferred():
            # registered before it exists: removed by the next virtbench if this one is killed
            path = new_workdir("virtbench-postmark-", base)
        yield path
    finally:
        if path is not None:
            remove_workdir(path)


def run_once(params: PostmarkParams, location: Path | None = None,
             bin_path: Path | None = None) -> PostmarkResult:
    """Run Postmark once in a fresh directory under ``location``; raise on failure."""
    params.validate()
    base = location if location is not None else Path(tempfile.gettempdir())
    check_location(params, base)
    exe = bin_path if bin_path is not None else binary()
    with workdir(base) as wd:
        proc = run_program(command(params, wd, exe))
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()
        raise EnvironmentUnsupported(
            f"postmark failed (exit {proc.returncode}): {detail[-1] if detail else 'no message'}")
    result = parse(proc.stdout)
    if result.status == "out-of-files":
        raise UsageError(
            f"postmark ran out of files after {result.transactions} of {params.transactions} "
            "transactions: raise --files or --bias-create, or lower --transactions")
    return result


MAIN_METRIC = ("transactions_per_second", "tx/s", False)


@dataclass(frozen=True)
class PostmarkExperiment(SoloExperiment[PostmarkParams]):
    """``virtbench io postmark``: Postmark's settings, where the files go, how many runs."""

    workload: PostmarkParams = PostmarkParams()


class PostmarkRow(Row):
    run: int
    condition: str
    status: str
    seconds_total: float
    seconds_transactions: float
    transactions: int
    transactions_per_second: float
    read_bytes_per_second: float
    written_bytes_per_second: float


class PostmarkSummary(Summary):
    runs: int
    median: dict[str, float]


def run(exp: PostmarkExperiment, ctx: Context) -> None:
    """``repeat`` runs on the host (the solo baseline), one row each; the summary holds the
    medians and the main metric (transactions per second)."""
    exp.validate()
    params = exp.workload
    base = exp.base()
    check_location(params, base)
    bin_path = binary()
    facts = location_facts(base)
    ctx.say(f"postmark: {params.files} files of {params.size_min}..{params.size_max - 1} "
            f"bytes, {params.transactions} transactions, seed {params.seed}")
    notes = []
    if facts.get("fstype") in MEMORY_FILESYSTEMS:
        notes.append(f"{base} is on {facts['fstype']}: files live in memory, this measures "
                     "the kernel's file system code, not a disk")
    notes.append("postmark alone: the run on the host is the solo baseline")
    ctx.summarize = _summarize
    doc = ctx.open({**params.to_dict(), "repeat": exp.repeat, "location": facts,
                    "program_sha256": programs.source_hash(PROGRAM)}, notes=notes)
    doc.labels.setdefault("condition", "solo")
    stamp_program(doc, PROGRAM)

    def on_run(i: int, r: PostmarkResult) -> None:
        ctx.say(f"postmark run {i}/{exp.repeat}: {r.seconds_total:.2f} s, "
                f"{r.transactions_per_second:.0f} transactions/s")

    run_solo_repeats(ctx, exp.repeat, lambda: run_once(params, base, bin_path), on_run)


def _summarize(doc: ExperimentResult) -> None:
    keys = [k for k, v in doc.rows[0].items() if isinstance(v, (int, float)) and k != "run"]
    medians = {k: statistics.median(float(r[k]) for r in doc.rows) for k in keys}
    name, unit, lower = MAIN_METRIC
    doc.summary = {
        "runs": len(doc.rows),
        "median": medians,
        "main_metric": MainMetric(name, medians[name], unit, lower).to_dict(),
    }


def with_overrides(base: PostmarkParams, **changes: Any) -> PostmarkParams:
    """``base`` with the given fields replaced (``None`` values are ignored)."""
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


# ---- NetApp/Debian Postmark, for comparison ----------------------------------------------
def reference_script(params: PostmarkParams, report: str = "verbose") -> str:
    """The commands that make NetApp's Postmark (Debian's ``postmark``) run ``params`` in
    its working directory, fed on its standard input."""
    lines = [
        f"set number {params.files}",
        f"set size {params.size_min} {params.size_max}",
        f"set transactions {params.transactions}",
        f"set read {params.read_block}",
        f"set write {params.write_block}",
        f"set bias read {params.bias_read}",
        f"set bias create {params.bias_create}",
        f"set buffering {'true' if params.buffered else 'false'}",
        f"set seed {params.seed}",
        f"set report {report}",
    ]
    if params.subdirs > 0:  # Postmark refuses 0; it uses subdirectories only when > 1
        lines.append(f"set subdirectories {params.subdirs}")
    return "\n".join([*lines, "run", "quit", ""])


def parse_reference_report(text: str) -> dict[str, int]:
    """Counts from Postmark's verbose report (its times have 1 s resolution, so only the
    counts are taken: created, read, appended, deleted, creation/deletion alone, mixed)."""
    import re

    patterns = {
        "seconds_total": r"(\d+) seconds total",
        "seconds_transactions": r"(\d+) seconds of transactions",
        "files_created": r"(\d+) created \(",
        "files_initial": r"Creation alone: (\d+) files",
        "files_read": r"(\d+) read \(",
        "files_appended": r"(\d+) appended \(",
        "files_deleted": r"(\d+) deleted \(",
        "files_deleted_alone": r"Deletion alone: (\d+) files",
    }
    out: dict[str, int] = {}
    for key, pat in patterns.items():
        m = re.search(pat, text)
        if m is None:
            raise ValueError(f"Postmark report lacks {key}")
        out[key] = int(m.group(1))
    return out


# ---- the command: options, text, report view ------------------------------------------------
def _bytes_arg(text: str) -> int:
    try:
        return parse_size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_options(pm: argparse.ArgumentParser) -> None:
    pm.add_argument("--preset", choices=sorted(PRESETS), default="default",
                    help="starting settings; the options below override them")
    pm.add_argument("--files", type=int_arg, help="initial pool of files (default 1000)")
    pm.add_argument("--size", metavar="MIN:MAX",
                    help="file sizes in bytes, uniform in [MIN, MAX) (default 500:10000)")
    pm.add_argument("--transactions", type=int_arg, help="transactions (default 20000)")
    pm.add_argument("--subdirs", type=int_arg, help="spread files over N subdirectories (0)")
    pm.add_argument("--read-block", type=_bytes_arg, help="read block size in bytes (512)")
    pm.add_argument("--write-block", type=_bytes_arg, help="write block size in bytes (512)")
    pm.add_argument("--bias-read", type=int_arg,
                    help="chance out of 10 of read over append; -1 disables (5)")
    pm.add_argument("--bias-create", type=int_arg,
                    help="chance out of 10 of create over delete; -1 disables (5)")
    pm.add_argument("--unbuffered", action="store_true",
                    help="use read(2)/write(2) instead of C stdio buffered I/O")
    pm.add_argument("--seed", type=int_arg, help="random seed (42); same seed, same operations")
    pm.add_argument("--dir", type=Path, help="where the files go (default: the temp dir)")
    pm.add_argument("--repeat", type=int_arg, default=1, help="runs (default 1)")


def params_from_args(args: argparse.Namespace) -> PostmarkExperiment:
    size_min = size_max = None
    if args.size is not None:
        size_min, size_max = parse_size_range(args.size)
    params = with_overrides(
        PRESETS[args.preset], files=args.files, size_min=size_min, size_max=size_max,
        transactions=args.transactions, subdirs=args.subdirs, read_block=args.read_block,
        write_block=args.write_block, bias_read=args.bias_read,
        bias_create=args.bias_create, seed=args.seed,
        buffered=False if args.unbuffered else None)
    exp = PostmarkExperiment(params, args.dir, args.repeat)
    exp.validate()
    return exp


_TABLE_KEYS = [
    ("seconds_total", "total time (s)"),
    ("seconds_transactions", "transaction time (s)"),
    ("transactions_per_second", "transactions/s"),
    ("files_created", "files created"),
    ("created_per_second", "  per second"),
    ("files_initial", "  creation alone"),
    ("created_alone_per_second", "    per second"),
    ("files_created_mixed", "  mixed with transactions"),
    ("files_read", "files read"),
    ("read_per_second", "  per second"),
    ("files_appended", "files appended"),
    ("appended_per_second", "  per second"),
    ("files_deleted", "files deleted"),
    ("deleted_per_second", "  per second"),
    ("files_deleted_alone", "  deletion alone"),
    ("deleted_alone_per_second", "    per second"),
    ("files_deleted_mixed", "  mixed with transactions"),
    ("bytes_read", "bytes read"),
    ("read_bytes_per_second", "  per second"),
    ("bytes_written", "bytes written"),
    ("written_bytes_per_second", "  per second"),
    ("user_seconds", "user CPU (s)"),
    ("system_seconds", "system CPU (s)"),
]


def render(doc: ExperimentResult) -> str:
    p = doc.params
    title = (f"Postmark in {where(doc)}: {p['files']} files of {p['size_min']}.."
             f"{p['size_max'] - 1} bytes, {p['transactions']} transactions, seed {p['seed']}")
    text = runs_table(title, doc.rows, _TABLE_KEYS, doc.summary.get("median"))
    return text + "".join(f"note: {n}\n" for n in doc.notes)


VIEW = ExperimentView(
    title="Postmark",
    columns=("run", "condition", "transactions", "seconds_total",
             "transactions_per_second", "read_bytes_per_second",
             "written_bytes_per_second"),
    charts=(Chart("Transactions per second", x="run", y=("transactions_per_second",),
                  y_title="transactions/s"),),
    summary_keys=("runs", "median.seconds_total", "median.transactions_per_second",
                  "median.read_bytes_per_second", "median.written_bytes_per_second",
                  "main_metric"),
)

SPEC = ExperimentSpec(
    name="postmark", command=("io", "postmark"),
    help="Postmark 1.5 small-file transactions",
    description="Postmark 1.5 small-file transactions (C, seeded, reproducible). Defaults: "
    "Postmark 1.5's, with 1000 files and 20000 transactions; --preset postmark gives 1.5's "
    "own 500/500, --preset paper 30000 files of 1..100000 bytes.",
    params=PostmarkExperiment, row=PostmarkRow, summary=PostmarkSummary,
    main_metric="median transactions per second",
    add_options=add_options, params_from_args=params_from_args, run=run, render=render,
    view=VIEW, docs="io.md",
    examples=(
        "virtbench io postmark --files 500 --transactions 5000",
        "virtbench io postmark --preset postmark --repeat 2 --dir /dev/shm --json",
    ),
)
