"""The interface both cgroup backends implement, and what they share.

A ``Cgroup`` is one control group the tool created (one per instance). The backend
(``CgroupV1`` / ``CgroupV2`` hierarchy) knows where groups live and how files are named.
Everything a caller needs:

* ``add(pid)`` / ``procs_files()`` - put a process in (or let a launcher write ``$$`` there
  before it ``exec``\\s, so nothing runs outside the group);
* ``set_cpu_quota(cpus, period_us)`` - CFS bandwidth: ``cpus`` CPUs per period (``None``
  removes the limit);
* ``cpu_stats()`` - usage, user and system seconds, periods, throttled periods and time;
* ``pids()`` / ``kill()`` / ``remove()`` - ``remove`` kills whatever is left and removes the
  directory (or directories, for v1), and is safe to call twice.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from virtbench.errors import EnvironmentUnsupported, UsageError

Version = Literal[1, 2]

MIN_QUOTA_US = 1000
"""The kernel refuses CFS quotas below 1 ms."""


@dataclass(frozen=True)
class CpuStats:
    """CPU accounting of one cgroup since it was created. ``None``: not available."""

    usage_s: float
    user_s: float
    system_s: float
    nr_periods: int | None = None
    nr_throttled: int | None = None
    throttled_s: float | None = None

    def minus(self, before: CpuStats) -> CpuStats:
        def d(a: float | int | None, b: float | int | None) -> float | None:
            return None if a is None or b is None else a - b

        def di(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else a - b

        return CpuStats(
            usage_s=self.usage_s - before.usage_s,
            user_s=self.user_s - before.user_s,
            system_s=self.system_s - before.system_s,
            nr_periods=di(self.nr_periods, before.nr_periods),
            nr_throttled=di(self.nr_throttled, before.nr_throttled),
            throttled_s=d(self.throttled_s, before.throttled_s),
        )


def quota_us(cpus: float, period_us: int) -> int:
    """Microseconds of CPU per period for ``cpus`` CPUs; refuses impossible values."""
    if not cpus > 0:
        raise UsageError(f"CPU quota must be > 0 CPUs (got {cpus:g})")
    if not 1000 <= period_us <= 1_000_000:
        raise UsageError(f"CFS period must be 1000..1000000 us (got {period_us})")
    q = round(cpus * period_us)
    if q < MIN_QUOTA_US:
        raise UsageError(
            f"CPU quota {cpus:g} CPUs is {q} us per {period_us} us period; the kernel needs "
            f">= {MIN_QUOTA_US} us (raise the quota or the period)"
        )
    return q


def read_text(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace")


def read_keyed(path: Path) -> dict[str, int]:
    """A flat keyed file (``key value`` per line), e.g. ``cpu.stat``."""
    out: dict[str, int] = {}
    for line in read_text(path).splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def write_file(path: Path, value: str) -> None:
    """Write one value to a cgroup file; kernel refusals become one clear error."""
    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(value)
    except PermissionError:
        raise EnvironmentUnsupported(
            f"cannot write {path}: permission denied (cgroups need root or a delegated cgroup)"
        ) from None
    except OSError as exc:
        raise EnvironmentUnsupported(
            f"cannot write {value.strip()!r} to {path}: {exc.strerror or exc}"
        ) from None


def read_pids(procs: Path) -> list[int]:
    try:
        text = read_text(procs)
    except FileNotFoundError:
        return []
    return [int(x) for x in text.split() if x.isdigit()]


def kill_all(procs_files: list[Path], *, timeout: float = 10.0) -> None:
    """SIGKILL every process listed until the groups are empty (processes forking while
    we kill them are caught on the next round)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        pids = sorted({p for f in procs_files for p in read_pids(f)})
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise EnvironmentUnsupported(
                f"processes {pids[:5]} would not leave their cgroup after SIGKILL"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def rmdir_retry(path: Path, *, timeout: float = 10.0) -> None:
    """Remove a cgroup directory; EBUSY (a dying task still listed) is retried briefly."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise EnvironmentUnsupported(f"cannot remove cgroup {path}: {exc}") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class Cgroup(ABC):
    """One control group created by a ``CgroupBackend``."""

    name: str

    @abstractmethod
    def dirs(self) -> list[Path]:
        """The directories that make up this group (one per v1 hierarchy; one for v2)."""

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs()]

    def add(self, pid: int) -> None:
        for f in self.procs_files():
            write_file(f, f"{pid}\n")

    def pids(self) -> list[int]:
        return sorted({p for f in self.procs_files() for p in read_pids(f)})

    @abstractmethod
    def set_cpu_quota(self, cpus: float | None, period_us: int = 100_000) -> None: ...

    @abstractmethod
    def cpu_quota(self) -> tuple[int | None, int]:
        """(quota in us per period or ``None`` for no limit, period in us), as set."""

    @abstractmethod
    def cpu_stats(self) -> CpuStats: ...

    def kill(self) -> None:
        kill_all(self.procs_files())

    def remove(self) -> None:
        """Kill what is left and remove the directories; idempotent."""
        if not any(d.exists() for d in self.dirs()):
            return
        self.kill()
        for d in self.dirs():
            rmdir_retry(d)


class CgroupBackend(ABC):
    """A cgroup hierarchy (v1 or v2) where the tool may create groups."""

    version: Version

    @abstractmethod
    def supports_quota(self) -> bool:
        """Whether the cpu controller (CFS bandwidth) is usable here."""

    @abstractmethod
    def quota_unsupported_reason(self) -> str: ...

    @abstractmethod
    def make_parent(self, name: str) -> list[Path]:
        """Create the run's parent directory (or one per hierarchy) and return them."""

    @abstractmethod
    def make_child(self, parents: list[Path], name: str) -> Cgroup: ...

    @abstractmethod
    def parents_root(self) -> list[Path]:
        """Where run parents are created (stale ones are swept there)."""

    @abstractmethod
    def describe(self) -> dict[str, object]:
        """Facts for the result document (version, mount points, controllers)."""

    def release_parents(self, parents: list[Path]) -> None:
        """Undo whatever ``make_parent`` changed outside the parents (v2: subtree control)."""
        return None
