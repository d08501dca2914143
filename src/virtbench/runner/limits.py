"""How many parallel copies this machine can run (``virtbench run -c N``).

``-c 100000000`` used to start creating work directories (227,000 in 10 s) while the
estimate said "about 2 s". Before anything is created, ``check_copies`` refuses a number of
copies the machine cannot hold at once, bounded by:

- free process ids: ``kernel.pid_max`` minus the tasks that exist now;
- ``RLIMIT_NPROC`` (``ulimit -u``) minus this user's processes (root is exempt);
- the ``pids.max`` of this process's cgroup (cgroup v2), minus ``pids.current``;
- available memory (``MemAvailable``) at ``MEMORY_PER_COPY`` bytes a copy.

Each copy may have ``PROCESSES_PER_COPY`` processes at a time (the shell tests' pipelines).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from virtbench.errors import UsageError

PROCESSES_PER_COPY = 5
"""Processes one copy may have at once: its ``vbgate``, a workload and its children
(``shell8`` runs pipelines of a few processes; ``spawn``/``execl`` a parent and a child)."""
MEMORY_PER_COPY = 4 * 1024 * 1024
"""Bytes a copy costs at least: its process, page tables, kernel stacks, pipe buffers."""


@dataclass(frozen=True)
class Limit:
    copies: int
    reason: str


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _tasks_now() -> int:
    try:
        return sum(1 for name in os.listdir("/proc") if name.isdigit())
    except OSError:
        return 0


def _limits() -> list[Limit]:
    out: list[Limit] = []
    pid_max = _read("/proc/sys/kernel/pid_max")
    if pid_max and pid_max.isdigit():
        free = int(pid_max) - _tasks_now()
        out.append(Limit(max(0, free) // PROCESSES_PER_COPY,
                         f"kernel.pid_max {pid_max}, {_tasks_now()} processes now"))
    soft, _hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and os.geteuid() != 0:
        out.append(Limit(max(0, soft - _tasks_now()) // PROCESSES_PER_COPY,
                         f"RLIMIT_NPROC (ulimit -u) {soft}"))
    cgroup = _read("/proc/self/cgroup")
    if cgroup:
        for line in cgroup.splitlines():
            if line.startswith("0::"):
                base = "/sys/fs/cgroup" + line[3:].rstrip("/")
                pmax, cur = _read(base + "/pids.max"), _read(base + "/pids.current")
                if pmax and pmax.isdigit() and cur and cur.isdigit():
                    out.append(Limit(max(0, int(pmax) - int(cur)) // PROCESSES_PER_COPY,
                                     f"cgroup pids.max {pmax}, {cur} in use"))
    meminfo = _read("/proc/meminfo") or ""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            avail = int(line.split()[1]) * 1024
            out.append(Limit(avail // MEMORY_PER_COPY,
                             f"{avail >> 20} MiB of memory available, at least "
                             f"{MEMORY_PER_COPY >> 20} MiB a copy"))
    return out


def max_copies() -> Limit:
    """The tightest bound on parallel copies here, and why."""
    limits = _limits()
    if not limits:
        return Limit(1 << 20, "no limit could be read")
    return min(limits, key=lambda lim: lim.copies)


def check_copies(copies: Sequence[int]) -> None:
    """A ``UsageError`` naming the bound when any of ``copies`` exceeds what this machine
    can run at once."""
    if not copies:
        return
    want = max(copies)
    lim = max_copies()
    if want > lim.copies:
        raise UsageError(f"-c {want}: this machine can run at most {lim.copies} copies at "
                         f"once ({lim.reason})")
