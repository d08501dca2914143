"""The tests of the UnixBench-compatible suite: one :class:`WorkloadSpec` per test.

The one table of per-test facts: the importer, ``explain`` and the reports read names,
short labels and baselines from here. Names, durations, passes and index baselines are
UnixBench's (5.1.3 and 6.0 agree).  Groups:

* ``index``  - the 12 tests of the System Benchmarks Index, in UnixBench's report order
* ``system`` - UnixBench's own "system" group: execl, the three file copies, pipe,
  context1, spawn, syscall and the three shell tests (no Dhrystone or Whetstone: UnixBench
  files those under its arithmetic tests, and ``virtbench run system`` behaves like
  ``./Run system``)
* ``fs``     - the 9 file tests (copy, read and write for three buffer/file sizes)
* ``shell``  - shell1, shell8, shell16
* ``all``    - every test

To add a test: write its program in ``c/`` (and add it to ``build.PROGRAMS``), then
``register()`` one spec here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from virtbench.errors import UsageError

GROUP_NAMES = ("index", "system", "fs", "shell", "all")


def _fmt_seconds(seconds: float) -> str:
    return f"{float(seconds):.6g}"


@dataclass(frozen=True)
class WorkloadSpec:
    id: str
    name: str
    program: str
    unit: str
    timebase: int
    duration: float
    passes: int
    baseline: float | None
    groups: tuple[str, ...]
    needs_tmpdir: bool
    concurrency: int = 1
    # Program arguments after the binary; "{duration}", "{workdir}" and "{bin}" are replaced.
    args: tuple[str, ...] = ("{duration}",)
    # Disk space one copy needs, in KiB (file tests), 0 otherwise.
    disk_kib: int = 0
    # Short label for charts and narrow tables, e.g. "Context switch" (default: the name).
    short: str = ""

    @property
    def label(self) -> str:
        """The short label, else the UnixBench name."""
        return self.short or self.name

    def argv(self, bin_dir: Path, duration: float, workdir: Path) -> list[str]:
        """The command line for ONE copy, to run with ``cwd=workdir`` (private per copy)."""
        if not duration > 0:
            raise UsageError(f"{self.id}: duration must be > 0 seconds, got {duration}")
        values = {
            "{duration}": _fmt_seconds(duration),
            "{workdir}": str(workdir),
            "{bin}": str(bin_dir),
        }
        out = [str(bin_dir / self.program)]
        for arg in self.args:
            for token, value in values.items():
                arg = arg.replace(token, value)
            out.append(arg)
        return out

    def min_free_bytes(self) -> int:
        """Free disk space one copy needs under its work directory (file tests), 0 otherwise."""
        return self.disk_kib * 1024


CATALOG: dict[str, WorkloadSpec] = {}


def register(spec: WorkloadSpec) -> WorkloadSpec:
    """Add ``spec`` to :data:`CATALOG`; a duplicate id (or a group's name) is refused."""
    if spec.id in CATALOG:
        raise ValueError(f"duplicate workload id {spec.id!r}")
    if spec.id in GROUP_NAMES:
        raise ValueError(f"workload id {spec.id!r} is the name of a group")
    unknown = set(spec.groups) - set(GROUP_NAMES)
    if unknown:
        raise ValueError(f"workload {spec.id!r}: unknown groups {sorted(unknown)}")
    if "all" not in spec.groups:
        spec = WorkloadSpec(**{**spec.__dict__, "groups": (*spec.groups, "all")})
    CATALOG[spec.id] = spec
    return spec


def _simple(
    id: str,
    name: str,
    unit: str,
    duration: float,
    passes: int,
    baseline: float,
    groups: tuple[str, ...],
    short: str,
    program: str | None = None,
) -> None:
    register(
        WorkloadSpec(
            id=id,
            name=name,
            short=short,
            program=program or id,
            unit=unit,
            timebase=0 if unit == "MWIPS" else 1,
            duration=duration,
            passes=passes,
            baseline=baseline,
            groups=groups,
            needs_tmpdir=False,
        )
    )


def _file(id: str, mode: str, bufsize: int, maxblocks: int, baseline: float | None) -> None:
    label = {"c": "Copy", "r": "Read", "w": "Write"}[mode]
    size = {1024: "1K", 256: "256", 4096: "4K"}.get(bufsize, str(bufsize))
    register(
        WorkloadSpec(
            id=id,
            name=f"File {label} {bufsize} bufsize {maxblocks} maxblocks",
            short=f"File {label.lower()} {size}",
            program="fstime",
            unit="KBps",
            timebase=0,
            duration=30.0,
            passes=3,
            baseline=baseline,
            groups=(("index", "system") if baseline is not None else ()) + ("fs",),
            needs_tmpdir=True,
            args=(
                f"-{mode}",
                "-b",
                str(bufsize),
                "-m",
                str(maxblocks),
                "-d",
                "{workdir}",
                "{duration}",
            ),
            # copy: source and destination files; read/write: one file; plus 1 MiB slack
            disk_kib=(2 if mode == "c" else 1) * maxblocks + 1024,
        )
    )


def _shell(id: str, concurrency: int, baseline: float | None) -> None:
    register(
        WorkloadSpec(
            id=id,
            name=f"Shell Scripts ({concurrency} concurrent)",
            short=f"Shell {concurrency}",
            program="looper",
            unit="lpm",
            timebase=60,
            duration=60.0,
            passes=3,
            baseline=baseline,
            groups=(("index",) if baseline is not None else ()) + ("system", "shell"),
            needs_tmpdir=False,
            concurrency=concurrency,
            args=("{duration}", "/bin/sh", "{bin}/multi.sh", str(concurrency)),
        )
    )


# The index tests, in UnixBench's report order.
_simple("dhry2reg", "Dhrystone 2 using register variables", "lps", 10.0, 10, 116700.0, ("index",),
        "Dhrystone")
_simple("whetstone-double", "Double-Precision Whetstone", "MWIPS", 10.0, 10, 55.0, ("index",),
        "Whetstone")
_simple("execl", "Execl Throughput", "lps", 30.0, 3, 43.0, ("index", "system"), "Execl")
_file("fstime", "c", 1024, 2000, 3960.0)
_file("fsbuffer", "c", 256, 500, 1655.0)
_file("fsdisk", "c", 4096, 8000, 5800.0)
_simple("pipe", "Pipe Throughput", "lps", 10.0, 10, 12440.0, ("index", "system"), "Pipe")
_simple("context1", "Pipe-based Context Switching", "lps", 10.0, 10, 4000.0, ("index", "system"),
        "Context switch")
_simple("spawn", "Process Creation", "lps", 30.0, 3, 126.0, ("index", "system"),
        "Process creation")
_shell("shell1", 1, 42.4)
_shell("shell8", 8, 6.0)
_simple("syscall", "System Call Overhead", "lps", 10.0, 10, 15000.0, ("index", "system"),
        "Syscall")
# Not in the index.
_file("fstime-w", "w", 1024, 2000, None)
_file("fstime-r", "r", 1024, 2000, None)
_file("fsbuffer-w", "w", 256, 500, None)
_file("fsbuffer-r", "r", 256, 500, None)
_file("fsdisk-w", "w", 4096, 8000, None)
_file("fsdisk-r", "r", 4096, 8000, None)
_shell("shell16", 16, None)

INDEX_TESTS: tuple[str, ...] = tuple(s.id for s in CATALOG.values() if "index" in s.groups)

# UnixBench tests virtbench does not run, by their report names: imported reports keep their
# ids (UnixBench's own).
OTHER_UNIXBENCH_TESTS: dict[str, str] = {
    "Dhrystone 2 without register variables": "dhry2",
    "Arithoh": "arithoh",
    "Arithmetic Test (short)": "short",
    "Arithmetic Test (int)": "int",
    "Arithmetic Test (long)": "long",
    "Arithmetic Test (float)": "float",
    "Arithmetic Test (double)": "double",
    "Dc: sqrt(2) to 99 decimal places": "dc",
    "Recursion Test -- Tower of Hanoi": "hanoi",
    "Recursion Test--Tower of Hanoi": "hanoi",
    "Grep a large file (system's grep)": "grep",
    "Exec System Call Overhead": "sysexec",
    "2D graphics: rectangles": "2d-rects",
    "2D graphics: lines": "2d-lines",
    "2D graphics: circles": "2d-circle",
    "2D graphics: ellipses": "2d-ellipse",
    "2D graphics: polygons": "2d-shapes",
    "2D graphics: aa polygons": "2d-aashapes",
    "2D graphics: complex polygons": "2d-polys",
    "2D graphics: text": "2d-text",
    "2D graphics: images and blits": "2d-blit",
    "2D graphics: windows": "2d-window",
    "3D graphics: gears": "ubgears",
}

# Report name -> test id, for every UnixBench test: the catalog's, then the others.
REPORT_NAMES: dict[str, str] = {
    **{s.name: s.id for s in CATALOG.values()}, **OTHER_UNIXBENCH_TESTS,
}
_BY_FOLDED_NAME = {s.name.lower(): s for s in CATALOG.values()}


def lookup(id_or_name: str) -> WorkloadSpec | None:
    """The catalog's test with this id or UnixBench report name (case and surrounding
    blanks ignored: imported reports vary), or ``None``."""
    key = id_or_name.strip()
    return CATALOG.get(key) or _BY_FOLDED_NAME.get(key.lower())

# The order in which a group's tests run: UnixBench's (./Run runs syscall before the shell
# tests and each file test's write and read variants before its copy), then the rest.
# Reports list tests sorted by name, as UnixBench's do.
_GROUP_ORDER = (
    "dhry2reg", "whetstone-double", "execl",
    "fstime-w", "fstime-r", "fstime",
    "fsbuffer-w", "fsbuffer-r", "fsbuffer",
    "fsdisk-w", "fsdisk-r", "fsdisk",
    "pipe", "context1", "spawn", "syscall", "shell1", "shell8", "shell16",
)  # fmt: skip


def _group(name: str) -> tuple[str, ...]:
    ids = [i for i in _GROUP_ORDER if i in CATALOG and name in CATALOG[i].groups]
    ids += [i for i, s in CATALOG.items() if i not in ids and name in s.groups]
    return tuple(ids)


GROUPS: dict[str, tuple[str, ...]] = {g: _group(g) for g in GROUP_NAMES}


def select(names: Sequence[str]) -> list[WorkloadSpec]:
    """The specs named by ``names`` (test ids and group names, mixed), each once, in order.

    An empty selection means the ``index`` group.  Unknown names raise :class:`UsageError`
    listing the valid ids and groups.
    """
    if isinstance(names, str):
        names = [names]
    wanted = list(names) or ["index"]
    unknown = [n for n in wanted if n not in CATALOG and n not in GROUPS]
    if unknown:
        raise UsageError(
            f"unknown test or group {', '.join(repr(n) for n in unknown)} "
            f"(tests: {', '.join(CATALOG)}; groups: {', '.join(GROUPS)})"
        )
    out: list[WorkloadSpec] = []
    seen: set[str] = set()
    for n in wanted:
        for i in GROUPS.get(n, (n,)):
            if i not in seen:
                seen.add(i)
                out.append(CATALOG[i])
    return out

# Seconds per pass in budgeted mode (``virtbench run --budget``) and in ``--precision``
# mode: for each test, the shortest pass whose score agrees with the standard pass's within
# 1%, as ``bench/pass_length.py`` measures it (method, figures and load in
# docs/statistics.md, "Pass length"). Until it is measured on an idle machine: a fifth of
# the standard pass, twice what issue 15 found biased. A test missing here uses its
# standard pass.
BUDGET_PASS_SECONDS: dict[str, float] = {
    "dhry2reg": 2.0,
    "whetstone-double": 2.0,
    "execl": 6.0,
    "fstime": 6.0,
    "fsbuffer": 6.0,
    "fsdisk": 6.0,
    "pipe": 2.0,
    "context1": 2.0,
    "spawn": 6.0,
    "syscall": 2.0,
    "shell1": 12.0,
    "shell8": 12.0,
}


def budget_pass_seconds(spec: WorkloadSpec) -> float:
    """The pass length of budgeted and ``--precision`` runs (:data:`BUDGET_PASS_SECONDS`)."""
    return min(spec.duration, BUDGET_PASS_SECONDS.get(spec.id, spec.duration))
