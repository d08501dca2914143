"""``virtbench io seqread``: one sequential read of a large file, with the page cache out of
the way, as a fixed-work workload.

Steps: write a file of ``size`` bytes (``fsync``-ed, timed and reported too), make the page
cache forget it, time one sequential read in ``block``-byte reads (C program
``c/seqread.c``), remove the file. How the cache is kept out (``--cache``):

* ``drop``: ``sync`` then ``echo 1 > /proc/sys/vm/drop_caches`` (root only; drops the
  clean page cache of the whole machine);
* ``fadvise``: ``posix_fadvise(POSIX_FADV_DONTNEED)`` on the file (any user; the file was
  fsync-ed, so its pages are clean and can be dropped);
* ``direct``: read with ``O_DIRECT`` (bypasses the cache; reads go to the device);
* ``none``: read it as it is (usually straight from the cache just written: a memory read);
* ``auto`` (default): ``drop`` when root and ``drop_caches`` is writable, else ``direct``,
  else ``fadvise`` when the file system refuses ``O_DIRECT``.

Whatever the method, ``mincore(2)`` counts the file's pages in the cache just before and
after the read, so the result says whether the read came from the cache.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
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
from virtbench.units import format_size as _h
from virtbench.units import parse_size

PROGRAM = "seqread"
MiB = 1024 * 1024
GiB = 1024 * MiB
MIN_DEFAULT_SIZE = 256 * MiB
CACHE_METHODS = ("auto", "drop", "fadvise", "direct", "none")
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


@dataclass(frozen=True)
class SeqreadParams:
    size: int | None = None
    """Bytes; ``None``: twice the RAM, capped by the free space minus a margin."""
    block: int = MiB
    cache: str = "auto"

    def validate(self) -> None:
        if self.size is not None and self.size <= 0:
            raise UsageError("--size must be positive")
        if self.block < 512 or self.block > GiB:
            raise UsageError("--block must be between 512 bytes and 1 GiB")
        if self.cache not in CACHE_METHODS:
            raise UsageError(f"--cache must be one of {', '.join(CACHE_METHODS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def memory_bytes(meminfo: Path = Path("/proc/meminfo")) -> int:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    raise EnvironmentUnsupported("cannot read MemTotal from /proc/meminfo: pass --size")


def margin_bytes(fs_size: int) -> int:
    """Free space seqread always leaves: 1 GiB or 5% of the file system, the larger."""
    return max(GiB, fs_size // 20)


def plan_size(params: SeqreadParams, location: Path) -> tuple[int, list[str]]:
    """The file size to use (a multiple of the block) and notes about how it was chosen.
    ``UsageError`` when the disk is too small."""
    st = os.statvfs(location)
    free = st.f_bavail * st.f_frsize
    usable = free - margin_bytes(st.f_blocks * st.f_frsize)
    notes: list[str] = []
    if params.size is not None:
        size = params.size - params.size % params.block
        if size <= 0:
            raise UsageError("--size must be at least one --block")
        if size > usable:
            raise UsageError(
                f"not enough free space in {location} for a {_h(size)} file: {_h(free)} free, "
                f"and seqread keeps {_h(margin_bytes(st.f_blocks * st.f_frsize))} free; "
                "pass a smaller --size or another --dir")
        return size, notes
    ram = memory_bytes()
    want = 2 * ram
    size = min(want, usable)
    size -= size % params.block
    if size < want and size < MIN_DEFAULT_SIZE:
        raise UsageError(
            f"not enough free space in {location} for seqread: {_h(free)} free, "
            f"{_h(margin_bytes(st.f_blocks * st.f_frsize))} kept as margin, at least "
            f"{_h(MIN_DEFAULT_SIZE)} needed; pass --size or another --dir")
    if size < want:
        notes.append(f"file capped at {_h(size)} by free space (2x RAM would be {_h(want)}); "
                     "the page cache is dropped/bypassed, so the read is still cold")
    return size, notes


@dataclass(frozen=True)
class SeqreadResult:
    bytes_read: int
    seconds_read: float
    bytes_written: int
    seconds_write: float
    cache_method: str
    """What was done: ``drop_caches``, ``fadvise``, ``direct`` or ``none``."""
    pages_total: int
    pages_resident_before: int
    pages_resident_after: int
    in_memory: bool = False
    """The file system keeps files in memory (tmpfs): every read is a memory read."""

    @property
    def resident_before(self) -> float:
        return self.pages_resident_before / self.pages_total if self.pages_total else 0.0

    @property
    def from_cache(self) -> bool:
        """Whether the read was served by the page cache (most pages resident, not O_DIRECT)."""
        if self.in_memory:
            return True
        return self.cache_method != "direct" and self.resident_before >= 0.5

    @property
    def read_mib_per_second(self) -> float:
        return self.bytes_read / MiB / self.seconds_read if self.seconds_read > 0 else 0.0

    @property
    def write_mib_per_second(self) -> float:
        return self.bytes_written / MiB / self.seconds_write if self.seconds_write > 0 else 0.0

    @property
    def cache_state(self) -> str:
        pct = 100 * self.resident_before
        if self.in_memory:
            return "the file system keeps files in memory: read from memory whatever the method"
        if self.cache_method == "direct":
            return f"O_DIRECT: page cache bypassed ({pct:.0f}% of the file was cached)"
        where = "from the page cache" if self.from_cache else "from the device"
        return f"{pct:.1f}% of the file cached before the read: read {where}"

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out.update(read_mib_per_second=self.read_mib_per_second,
                   write_mib_per_second=self.write_mib_per_second,
                   resident_before=self.resident_before,
                   from_cache=self.from_cache, cache_state=self.cache_state)
        return out


def parse(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            values[key] = value
    if values.get("program") != "virtbench-seqread":
        raise ValueError("not virtbench seqread output")
    return values


def binary() -> Path:
    return programs.build(PROGRAM)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return run_program(argv)


def _fail(what: str, proc: subprocess.CompletedProcess[str]) -> EnvironmentUnsupported:
    lines = proc.stderr.strip().splitlines()
    return EnvironmentUnsupported(f"seqread {what} failed (exit {proc.returncode}): "
                                  f"{lines[-1] if lines else 'no message'}")


def drop_caches(path: Path = DROP_CACHES) -> bool:
    """``sync; echo 1 > drop_caches``; ``False`` when not permitted."""
    if os.geteuid() != 0:
        return False
    os.sync()
    try:
        path.write_text("1\n")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def temp_file(location: Path) -> Iterator[Path]:
    """A new empty file under ``location``, always removed (signals held around creation
    and removal so none falls in between)."""
    path: Path | None = None
    try:
        with signals_deferred():
            # registered before it exists: removed by the next virtbench if this one is killed
            path = new_workdir("virtbench-seqread-", location, file=True)
        yield path
    finally:
        if path is not None:
            remove_workdir(path)


def run_once(params: SeqreadParams, location: Path, size: int, bin_path: Path,
             notes: list[str] | None = None, in_memory: bool = False) -> SeqreadResult:
    """Write, uncache, read, remove: one measurement of ``size`` bytes."""
    notes = notes if notes is not None else []
    with temp_file(location) as f:
        proc = _run([str(bin_path), "write", str(f), str(size), str(params.block)])
        if proc.returncode != 0:
            raise _fail("write", proc)
        written = parse(proc.stdout)
        method = params.cache
        if method in ("auto", "drop"):
            if drop_caches():
                method = "drop_caches"
            elif params.cache == "drop":
                raise EnvironmentUnsupported(
                    "--cache drop needs root and a writable /proc/sys/vm/drop_caches; "
                    "use --cache direct or fadvise")
            else:
                method = "direct"
        mode = {"drop_caches": "buffered", "none": "buffered"}.get(method, method)
        proc = _run([str(bin_path), "read", str(f), str(params.block), mode])
        if proc.returncode == 3 and mode == "direct":
            if params.cache == "direct":
                raise EnvironmentUnsupported(f"the file system of {location} refuses O_DIRECT;"
                                             " use --cache fadvise or drop")
            note = f"{location} refuses O_DIRECT: used posix_fadvise(DONTNEED) instead"
            if note not in notes:
                notes.append(note)
            method = mode = "fadvise"
            proc = _run([str(bin_path), "read", str(f), str(params.block), mode])
        if proc.returncode != 0:
            raise _fail("read", proc)
        read = parse(proc.stdout)
    return SeqreadResult(
        bytes_read=int(read["bytes_read"]), seconds_read=float(read["seconds_read"]),
        bytes_written=int(written["bytes_written"]),
        seconds_write=float(written["seconds_write"]), cache_method=method,
        pages_total=int(read["pages_total"]),
        pages_resident_before=int(read["pages_resident_before"]),
        pages_resident_after=int(read["pages_resident_after"]), in_memory=in_memory)


def workload_output(text: str) -> Any:
    """Parse ``seqread run`` for the instance backends: seconds of the timed read, metrics
    with the read/write rates and the cache residency before the read."""
    from virtbench.experiments.instances import WorkloadOutput  # late: avoids a cycle

    kv = parse(text)
    if kv.get("direct") == "unsupported":
        raise ValueError("seqread: the file system refuses O_DIRECT")
    seconds = float(kv["seconds_read"])
    total = int(kv["pages_total"])
    metrics = {
        "bytes_read": float(kv["bytes_read"]),
        "read_mib_per_second": int(kv["bytes_read"]) / MiB / seconds if seconds > 0 else 0.0,
        "write_mib_per_second": (int(kv["bytes_written"]) / MiB / float(kv["seconds_write"])
                                 if float(kv["seconds_write"]) > 0 else 0.0),
        "resident_before": int(kv["pages_resident_before"]) / total if total else 0.0,
    }
    return WorkloadOutput(seconds=seconds, metrics=metrics)


def workload_command(size: int, block: int = MiB, cache: str = "fadvise") -> Any:
    """seqread as a fixed-work instance workload: write ``size`` bytes in the instance's
    scratch directory, drop them from the cache without root (``fadvise``) or bypass it
    (``direct``), time the read, remove the file. Seconds are the read's."""
    from virtbench.experiments.instances import WorkloadCommand  # late: avoids a cycle

    if cache not in ("fadvise", "direct", "buffered"):
        raise UsageError("seqread instances keep the cache out with fadvise or direct")
    size -= size % block
    if size <= 0:
        raise UsageError("seqread size must be at least one block")
    return WorkloadCommand(name="seqread", program=PROGRAM,
                           args=("run", "{dir}/seqread.dat", str(size), str(block), cache),
                           parse=workload_output, needs_dir=True)


MAIN_METRIC = ("read_mib_per_second", "MiB/s", False)


@dataclass(frozen=True)
class SeqreadExperiment(SoloExperiment[SeqreadParams]):
    """``virtbench io seqread``: the read's settings, where the file goes, how many runs."""

    workload: SeqreadParams = SeqreadParams()


class SeqreadRow(Row):
    run: int
    condition: str
    bytes_read: int
    seconds_read: float
    read_mib_per_second: float
    write_mib_per_second: float
    cache_method: str
    from_cache: bool


class SeqreadSummary(Summary):
    runs: int
    median: dict[str, float]
    cache_method: str
    from_cache: bool


def run(exp: SeqreadExperiment, ctx: Context) -> None:
    exp.validate()
    params = exp.workload
    base = exp.base()
    if not base.is_dir():
        raise UsageError(f"--dir {base}: not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"--dir {base}: not writable")
    size, notes = plan_size(params, base)
    bin_path = binary()
    facts = location_facts(base)
    in_memory = facts.get("fstype") in MEMORY_FILESYSTEMS
    if in_memory:
        notes.append(f"{base} is on {facts['fstype']}: the file lives in memory, so the "
                     "read measures memory bandwidth, not a disk")
    ctx.summarize = _summarize
    doc = ctx.open({**params.to_dict(), "size_used": size, "repeat": exp.repeat,
                    "location": facts, "program_sha256": programs.source_hash(PROGRAM)},
                   notes=notes)
    doc.labels.setdefault("condition", "solo")
    stamp_program(doc, PROGRAM)

    def on_run(i: int, r: SeqreadResult) -> None:
        ctx.say(f"seqread run {i}/{exp.repeat}: {r.read_mib_per_second:.0f} MiB/s "
                f"({r.cache_state})")

    run_solo_repeats(
        ctx, exp.repeat,
        lambda: run_once(params, base, size, bin_path, doc.notes, in_memory=in_memory),
        on_run)


def _summarize(doc: ExperimentResult) -> None:
    keys = ("read_mib_per_second", "write_mib_per_second", "seconds_read", "resident_before")
    medians = {k: statistics.median(float(r[k]) for r in doc.rows) for k in keys}
    name, unit, lower = MAIN_METRIC
    doc.summary = {
        "runs": len(doc.rows),
        "median": medians,
        "cache_method": doc.rows[-1]["cache_method"],
        "from_cache": any(bool(r["from_cache"]) for r in doc.rows),
        "main_metric": MainMetric(name, medians[name], unit, lower).to_dict(),
    }


# ---- the command: options, text, report view ------------------------------------------------
def _bytes_arg(text: str) -> int:
    try:
        return parse_size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_options(sr: argparse.ArgumentParser) -> None:
    sr.add_argument("--size", type=_bytes_arg,
                    help="file size (bytes, or with k/m/g); default 2x RAM capped by free space")
    sr.add_argument("--block", type=_bytes_arg, default=MiB,
                    help="read/write size (default 1m)")
    sr.add_argument("--cache", choices=CACHE_METHODS, default="auto",
                    help="how to keep the page cache out (default auto: drop when root, "
                    "else O_DIRECT)")
    sr.add_argument("--dir", type=Path, help="where the file goes (default: the temp dir)")
    sr.add_argument("--repeat", type=int_arg, default=1, help="runs (default 1)")


def params_from_args(args: argparse.Namespace) -> SeqreadExperiment:
    return SeqreadExperiment(SeqreadParams(size=args.size, block=args.block, cache=args.cache),
                             args.dir, args.repeat)


def render(doc: ExperimentResult) -> str:
    size = doc.params["size_used"]
    title = (f"Sequential read in {where(doc)}: {size / MiB:,.0f} MiB file, "
             f"{doc.params['block']:,}-byte blocks")
    keys = [
        ("read_mib_per_second", "read MiB/s"),
        ("seconds_read", "read time (s)"),
        ("write_mib_per_second", "write MiB/s (with fsync)"),
        ("cache_method", "cache method"),
        ("resident_before", "cached before read"),
        ("from_cache", "read from cache"),
    ]
    text = runs_table(title, doc.rows, keys, doc.summary.get("median"))
    states = dict.fromkeys(str(r["cache_state"]) for r in doc.rows)
    return text + "".join(f"cache: {s}\n" for s in states) + \
        "".join(f"note: {n}\n" for n in doc.notes)


VIEW = ExperimentView(
    title="Sequential read",
    columns=("run", "condition", "bytes_read", "seconds_read", "read_mib_per_second",
             "cache_state"),
    charts=(Chart("Sequential read throughput", x="run", y=("read_mib_per_second",),
                  y_title="MiB/s"),),
    summary_keys=("runs", "median.read_mib_per_second", "cache_method", "from_cache",
                  "main_metric"),
)

SPEC = ExperimentSpec(
    name="seqread", command=("io", "seqread"),
    help="sequential read of a large file, page cache out",
    description="Write a file (default 2x RAM, capped by free space minus a margin), drop it "
    "from the page cache, time one sequential read.",
    params=SeqreadExperiment, row=SeqreadRow, summary=SeqreadSummary,
    main_metric="median read MiB/s",
    add_options=add_options, params_from_args=params_from_args, run=run, render=render,
    view=VIEW, docs="io.md",
    examples=(
        "virtbench io seqread --size 256m",
        "virtbench io seqread --size 64m --cache direct --repeat 2",
    ),
)
