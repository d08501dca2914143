"""cgroup v1: one directory per hierarchy (``cpu`` and ``cpuacct``, separate or co-mounted).

Files used: ``cpu.cfs_period_us`` / ``cpu.cfs_quota_us`` (quota, ``-1`` = none), ``cpu.stat``
(``nr_periods``, ``nr_throttled``, ``throttled_time`` in ns), ``cpuacct.usage`` (ns) and
``cpuacct.usage_user`` / ``cpuacct.usage_sys`` (ns; older kernels: ``cpuacct.stat`` in clock
ticks).
"""

from __future__ import annotations

import os
from pathlib import Path

from virtbench.cgroups.base import (
    Cgroup,
    CgroupBackend,
    CpuStats,
    Version,
    quota_us,
    read_keyed,
    read_text,
    write_file,
)
from virtbench.errors import EnvironmentUnsupported


class CgroupV1(Cgroup):
    def __init__(self, name: str, cpu_dir: Path, cpuacct_dir: Path) -> None:
        self.name = name
        self.cpu_dir = cpu_dir
        self.cpuacct_dir = cpuacct_dir

    def dirs(self) -> list[Path]:
        return [self.cpu_dir] if self.cpu_dir == self.cpuacct_dir else [
            self.cpu_dir, self.cpuacct_dir]

    def set_cpu_quota(self, cpus: float | None, period_us: int = 100_000) -> None:
        if cpus is None:
            write_file(self.cpu_dir / "cpu.cfs_quota_us", "-1\n")
            return
        q = quota_us(cpus, period_us)
        # Lower the quota first so period and quota are never an invalid pair on the way.
        write_file(self.cpu_dir / "cpu.cfs_quota_us", "-1\n")
        write_file(self.cpu_dir / "cpu.cfs_period_us", f"{period_us}\n")
        write_file(self.cpu_dir / "cpu.cfs_quota_us", f"{q}\n")

    def cpu_quota(self) -> tuple[int | None, int]:
        """(quota us or None, period us) as the kernel holds them."""
        q = int(read_text(self.cpu_dir / "cpu.cfs_quota_us").strip())
        p = int(read_text(self.cpu_dir / "cpu.cfs_period_us").strip())
        return (None if q < 0 else q), p

    def cpu_stats(self) -> CpuStats:
        acct = self.cpuacct_dir
        usage = int(read_text(acct / "cpuacct.usage").strip()) / 1e9
        if (acct / "cpuacct.usage_user").exists():
            user = int(read_text(acct / "cpuacct.usage_user").strip()) / 1e9
            system = int(read_text(acct / "cpuacct.usage_sys").strip()) / 1e9
        else:
            ticks = read_keyed(acct / "cpuacct.stat")
            hz = os.sysconf("SC_CLK_TCK")
            user = ticks.get("user", 0) / hz
            system = ticks.get("system", 0) / hz
        stat = read_keyed(self.cpu_dir / "cpu.stat")
        throttled_ns = stat.get("throttled_time")
        return CpuStats(
            usage_s=usage,
            user_s=user,
            system_s=system,
            nr_periods=stat.get("nr_periods"),
            nr_throttled=stat.get("nr_throttled"),
            throttled_s=None if throttled_ns is None else throttled_ns / 1e9,
        )


class V1Backend(CgroupBackend):
    """Groups go under our own cgroup in the ``cpu`` and ``cpuacct`` hierarchies."""

    version: Version = 1

    def __init__(self, cpu_base: Path, cpuacct_base: Path) -> None:
        self.cpu_base = cpu_base
        self.cpuacct_base = cpuacct_base

    def supports_quota(self) -> bool:
        return (self.cpu_base / "cpu.cfs_quota_us").exists()

    def quota_unsupported_reason(self) -> str:
        return (f"the cgroup v1 cpu hierarchy at {self.cpu_base} has no cpu.cfs_quota_us "
                "(kernel without CFS bandwidth control)")

    def parents_root(self) -> list[Path]:
        return [self.cpu_base] if self.cpu_base == self.cpuacct_base else [
            self.cpu_base, self.cpuacct_base]

    def make_parent(self, name: str) -> list[Path]:
        made: list[Path] = []
        try:
            for root in self.parents_root():
                d = root / name
                d.mkdir()
                made.append(d)
        except PermissionError:
            for d in reversed(made):
                d.rmdir()
            raise EnvironmentUnsupported(
                f"cannot create a cgroup under {self.cpu_base}: permission denied "
                "(run as root, or delegate a cgroup to this user)") from None
        except OSError as exc:
            for d in reversed(made):
                d.rmdir()
            raise EnvironmentUnsupported(f"cannot create a cgroup: {exc}") from None
        return made

    def make_child(self, parents: list[Path], name: str) -> Cgroup:
        made: list[Path] = []
        try:
            for p in parents:
                d = p / name
                d.mkdir()
                made.append(d)
        except OSError as exc:
            for d in reversed(made):
                d.rmdir()
            raise EnvironmentUnsupported(f"cannot create cgroup {name}: {exc}") from None
        cpu_dir = made[0]
        acct_dir = made[-1]
        return CgroupV1(name, cpu_dir, acct_dir)

    def describe(self) -> dict[str, object]:
        return {
            "version": 1,
            "cpu": str(self.cpu_base),
            "cpuacct": str(self.cpuacct_base),
            "quota": self.supports_quota(),
        }
