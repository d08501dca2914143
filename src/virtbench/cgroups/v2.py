"""cgroup v2 (unified hierarchy): one directory per group.

Files used: ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``), ``cpu.stat``
(``usage_usec``, ``user_usec``, ``system_usec`` always; ``nr_periods``, ``nr_throttled``,
``throttled_usec`` with the cpu controller), ``cgroup.kill`` (Linux >= 5.14) and
``cgroup.subtree_control`` (``+cpu`` so children get ``cpu.max``).

Without the cpu controller (a hybrid host whose cpu controller is bound to v1, as on the
development machine) the hierarchy still accounts CPU time per group, so groups work for
accounting; quotas are refused with a clear error.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from virtbench.cgroups.base import (
    Cgroup,
    CgroupBackend,
    CpuStats,
    Version,
    kill_all,
    quota_us,
    read_keyed,
    read_text,
    write_file,
)
from virtbench.errors import EnvironmentUnsupported


def controllers(path: Path, file: str = "cgroup.controllers") -> set[str]:
    try:
        return set(read_text(path / file).split())
    except OSError:
        return set()


class CgroupV2(Cgroup):
    def __init__(self, name: str, path: Path, quota_ok: bool) -> None:
        self.name = name
        self.path = path
        self.quota_ok = quota_ok

    def dirs(self) -> list[Path]:
        return [self.path]

    def set_cpu_quota(self, cpus: float | None, period_us: int = 100_000) -> None:
        if not self.quota_ok:
            raise EnvironmentUnsupported(
                "cgroup v2 has no cpu controller here, so no CPU quota (it is bound to "
                "cgroup v1 on this host): use --cgroup v1 or auto")
        if cpus is None:
            write_file(self.path / "cpu.max", f"max {period_us}\n")
            return
        write_file(self.path / "cpu.max", f"{quota_us(cpus, period_us)} {period_us}\n")

    def cpu_quota(self) -> tuple[int | None, int]:
        q, p = read_text(self.path / "cpu.max").split()
        return (None if q == "max" else int(q)), int(p)

    def cpu_stats(self) -> CpuStats:
        stat = read_keyed(self.path / "cpu.stat")
        throttled = stat.get("throttled_usec")
        return CpuStats(
            usage_s=stat.get("usage_usec", 0) / 1e6,
            user_s=stat.get("user_usec", 0) / 1e6,
            system_s=stat.get("system_usec", 0) / 1e6,
            nr_periods=stat.get("nr_periods"),
            nr_throttled=stat.get("nr_throttled"),
            throttled_s=None if throttled is None else throttled / 1e6,
        )

    def kill(self) -> None:
        kill_file = self.path / "cgroup.kill"
        if kill_file.exists() and self.pids():
            # On failure, fall back to signalling each process.
            with contextlib.suppress(EnvironmentUnsupported):
                write_file(kill_file, "1\n")
        kill_all(self.procs_files())


class V2Backend(CgroupBackend):
    """Groups go under ``base`` (our own cgroup, or the hierarchy root when our own cgroup
    holds processes and so cannot hand the cpu controller to children)."""

    version: Version = 2

    def __init__(self, mount: Path, base: Path) -> None:
        self.mount = mount
        self.base = base
        self._enabled_on_base = False

    def supports_quota(self) -> bool:
        return "cpu" in controllers(self.base)

    def quota_unsupported_reason(self) -> str:
        bound = "" if "cpu" in controllers(self.mount) else (
            " (the cpu controller is bound to cgroup v1 on this host: use --cgroup v1 or auto)")
        return f"cgroup v2 at {self.base} offers no cpu controller{bound}"

    def parents_root(self) -> list[Path]:
        return [self.base]

    def make_parent(self, name: str) -> list[Path]:
        quota = self.supports_quota()
        if quota and "cpu" not in controllers(self.base, "cgroup.subtree_control"):
            write_file(self.base / "cgroup.subtree_control", "+cpu\n")
            self._enabled_on_base = True
        parent = self.base / name
        try:
            parent.mkdir()
        except PermissionError:
            self.release_parents([])
            raise EnvironmentUnsupported(
                f"cannot create a cgroup under {self.base}: permission denied "
                "(run as root, or delegate a cgroup to this user)") from None
        except OSError as exc:
            self.release_parents([])
            raise EnvironmentUnsupported(f"cannot create a cgroup: {exc}") from None
        if quota:
            try:
                write_file(parent / "cgroup.subtree_control", "+cpu\n")
            except EnvironmentUnsupported:
                parent.rmdir()
                self.release_parents([])
                raise
        return [parent]

    def make_child(self, parents: list[Path], name: str) -> Cgroup:
        d = parents[0] / name
        try:
            d.mkdir()
        except OSError as exc:
            raise EnvironmentUnsupported(f"cannot create cgroup {name}: {exc}") from None
        return CgroupV2(name, d, "cpu" in controllers(parents[0], "cgroup.subtree_control"))

    def release_parents(self, parents: list[Path]) -> None:
        if not self._enabled_on_base:
            return
        # Give the controller back only if nobody else created groups under base since.
        others = [p for p in self.base.iterdir() if p.is_dir() and p not in parents]
        if not others:
            with contextlib.suppress(EnvironmentUnsupported):
                write_file(self.base / "cgroup.subtree_control", "-cpu\n")
        self._enabled_on_base = False

    def describe(self) -> dict[str, object]:
        return {
            "version": 2,
            "mount": str(self.mount),
            "base": str(self.base),
            "controllers": sorted(controllers(self.base)),
            "quota": self.supports_quota(),
        }
