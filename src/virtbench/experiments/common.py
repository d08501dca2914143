"""Helpers experiments share: repeated solo runs, saving, facts about a directory, tables."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from virtbench import childproc, paths
from virtbench.childproc import signals_deferred as signals_deferred
from virtbench.errors import UsageError
from virtbench.results.model import ExperimentResult

if TYPE_CHECKING:
    from virtbench.experiments.spec import Context


def stamp_program(doc: ExperimentResult, name: str) -> None:
    """Record how the experiment's C program was built (results say if they compare)."""
    from virtbench.experiments import programs

    cc, version = programs.compiler_facts()
    doc.environment.compiler = cc
    doc.environment.compiler_version = version
    doc.environment.cflags = list(programs.CFLAGS)
    doc.environment.workload_hash = programs.source_hash(name)


class _Figures(Protocol):
    def figures(self) -> dict[str, Any]: ...


_R = TypeVar("_R", bound=_Figures)


def run_solo_repeats(ctx: Context, repeat: int, run_one: Callable[[], _R],
                     on_run: Callable[[int, _R], None] | None = None) -> None:
    """Run a solo experiment ``repeat`` times, one row per run (summarized and saved after
    each by the context)."""
    for i in range(repeat):
        result = run_one()
        ctx.add_row({"run": i + 1, "condition": "solo", **result.figures()})
        if on_run:
            on_run(i + 1, result)


class _Validated(Protocol):
    def validate(self) -> None: ...


W = TypeVar("W", bound=_Validated)


@dataclass(frozen=True)
class SoloExperiment(Generic[W]):
    """The params of an experiment that runs one workload alone on the host, ``repeat``
    times, in a directory (``io postmark``, ``io seqread``). A subclass gives ``workload``
    its default."""

    workload: W
    location: Path | None = None
    """Default: the temp directory."""
    repeat: int = 1

    def validate(self) -> None:
        self.workload.validate()
        if self.repeat < 1:
            raise UsageError("--repeat must be at least 1")

    def base(self) -> Path:
        """Where the work goes: ``location`` or the temp directory, resolved."""
        return (self.location if self.location is not None
                else Path(tempfile.gettempdir())).resolve()


def save(doc: ExperimentResult) -> Path:
    """Save the document as the master JSON and index it (``virtbench.store`` when present,
    else the JSON file alone under ``paths.results_dir()``). Returns the JSON path."""
    try:
        store = importlib.import_module("virtbench.store")
    except ImportError:
        store = None
    save_and_record = getattr(store, "save_and_record", None) if store else None
    if save_and_record is not None:
        path: Path = save_and_record(doc)
        return path
    day = doc.started[:10] if len(doc.started) >= 10 else datetime.now(UTC).strftime("%Y-%m-%d")
    return doc.save(paths.results_dir() / f"{day}-{doc.id}.json")


def run_program(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run an experiment's C program to its end, its output captured; it dies with
    virtbench (``PR_SET_PDEATHSIG``, SIGTERM) and is killed if virtbench is interrupted.
    Started by :func:`virtbench.childproc.popen`: no Python runs in the child, and a
    Ctrl-C during the start is delivered once the program's pid is known."""
    proc: subprocess.Popen[str] | None = None
    try:
        proc = childproc.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, errors="replace")
        out, err = proc.communicate()
    finally:
        # Ctrl-C held: a second one (a re-delivered one, cli/_interrupt.py) must not cut the
        # wait short, or the caller would remove the program's directory while it still runs
        with signals_deferred():
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def progress(message: str) -> None:
    """A progress line on stderr (stdout stays clean for ``--json``); silent with ``-q``."""
    from virtbench import console

    console.info(message)


@dataclass(frozen=True)
class MountInfo:
    mount_point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        digits = field[i + 1:i + 4]
        if field[i] == "\\" and len(digits) == 3 and digits.isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_of(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> MountInfo | None:
    """The mount holding ``path`` (longest matching mount point), or ``None``."""
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    target = os.path.realpath(path)
    best: MountInfo | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 2:
            continue
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = MountInfo(point, rfields[0], _unescape(rfields[1]))
    return best


def location_facts(path: Path) -> dict[str, Any]:
    """Where an I/O experiment ran: directory, file system type, device, free space."""
    facts: dict[str, Any] = {"directory": str(path)}
    mount = mount_of(path)
    if mount is not None:
        facts.update(mount_point=mount.mount_point, fstype=mount.fstype, device=mount.source)
    try:
        st = os.statvfs(path)
        facts["free_bytes"] = st.f_bavail * st.f_frsize
        facts["size_bytes"] = st.f_blocks * st.f_frsize
    except OSError:
        pass
    return facts


MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})


# ---- consolidation and caps ------------------------------------------------------------
@dataclass(frozen=True)
class CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat, in seconds."""

    busy: float
    idle: float
    steal: float

    @property
    def total(self) -> float:
        return self.busy + self.idle + self.steal


def read_cpu_times(stat: Path = Path("/proc/stat")) -> CpuTimes | None:
    try:
        text = stat.read_text(encoding="ascii")
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            v = [int(x) for x in parts[1:]] + [0] * 10
            user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
            # guest and guest_nice are already included in user and nice.
            return CpuTimes(busy=(user + nice + system + irq + softirq) / hz,
                            idle=(idle + iowait) / hz, steal=steal / hz)
    return None


def steal_between(before: CpuTimes | None, after: CpuTimes | None) -> tuple[
        float | None, float | None]:
    """(steal seconds, steal as a share of all CPU time) between two readings."""
    if before is None or after is None:
        return None, None
    steal = after.steal - before.steal
    total = after.total - before.total
    return round(steal, 3), (round(steal / total, 4) if total > 0 else None)


def jain_index(values: Sequence[float]) -> float | None:
    """Jain's fairness index: 1 when all equal, 1/n when one gets everything."""
    if len(values) < 2:
        return None
    s = math.fsum(values)
    sq = math.fsum(v * v for v in values)
    return (s * s) / (len(values) * sq) if sq > 0 else None


def mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def rnd(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def fmt(value: float | None, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An experiment's table (virtbench.table): the first column (the condition) left-aligned
    and wrapping, the numbers right-aligned and never cut; fitted to the terminal, one line
    per row in a pipe."""
    from virtbench.table import Col, output_width, render

    cols = [Col(h, right=i > 0, wrap=True, min_width=10 if i == 0 else 4,
                breakable=i == 0) for i, h in enumerate(headers)]
    return render(cols, rows, width=output_width(), rule=False)


def outcome_dicts(outcomes: Sequence[Any]) -> list[dict[str, Any]]:
    return [o.to_dict() for o in outcomes]


# ---- run-by-run tables (io postmark, io seqread) -------------------------------------------
def fmt_value(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def runs_table(title: str, rows: list[dict[str, Any]], keys: list[tuple[str, str]],
               summary: dict[str, float] | None) -> str:
    """One column per run (and the median when there are several), one line per figure."""
    headers = ["", *(f"run {r['run']}" for r in rows)]
    if summary is not None and len(rows) > 1:
        headers.append("median")
    lines = [[label, *(fmt_value(r.get(k)) for r in rows)] for k, label in keys]
    if summary is not None and len(rows) > 1:
        for line, (k, _) in zip(lines, keys, strict=True):
            line.append(fmt_value(summary.get(k, "")))
    from virtbench.table import Col, output_width, render

    cols = [Col(h, right=i > 0, wrap=i == 0, min_width=12) for i, h in enumerate(headers)]
    return title + "\n" + render(cols, lines, width=output_width(), rule=False)


def where(doc: ExperimentResult) -> str:
    """``directory (fstype on device)`` of an I/O experiment."""
    loc = doc.params.get("location", {})
    return f"{loc.get('directory')} ({loc.get('fstype', '?')} on {loc.get('device', '?')})"


def int_arg(text: str) -> int:
    """argparse type: an integer, with a clear message."""
    import argparse

    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
