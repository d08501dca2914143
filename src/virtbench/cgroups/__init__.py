"""Control groups written directly: v1 and v2 backends behind one interface.

Use::

    backend = cgroups.detect("auto", need_quota=True)    # or "v1" / "v2"
    with cgroups.CgroupSession(backend) as session:
        cg = session.create("instance-0")
        cg.set_cpu_quota(0.5)                             # CPUs
        cg.add(pid)  # or let the child write $$ to cg.procs_files() before exec
        ...
        stats = cg.cpu_stats()                            # usage/user/system/throttling
    # leaving the block kills what is left in the groups and removes every directory

Detection (``detect``): the v2 backend when the unified hierarchy offers the cpu controller
(a v2-only host); else v1 when ``cpu`` and ``cpuacct`` hierarchies are mounted (this project's
development host: v1 controllers plus a cgroup2 mount at ``/sys/fs/cgroup/unified`` whose
controllers are bound to v1); else v2 for accounting only (quotas refused).

Every session's parent directory is named ``virtbench.<pid>.<token>``: a session left
behind by a killed process (``kill -9``) is swept by the next session (its processes are
killed and its directories removed), and ``sweep_stale()`` does that on demand.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from virtbench.cgroups.base import (
    Cgroup,
    CgroupBackend,
    CpuStats,
    kill_all,
    quota_us,
    rmdir_retry,
)
from virtbench.cgroups.v1 import CgroupV1, V1Backend
from virtbench.cgroups.v2 import CgroupV2, V2Backend, controllers
from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.sigmask import signals_deferred

__all__ = [
    "Cgroup",
    "CgroupBackend",
    "CgroupSession",
    "CgroupV1",
    "CgroupV2",
    "CpuStats",
    "Mounts",
    "V1Backend",
    "V2Backend",
    "detect",
    "find_mounts",
    "quota_us",
    "sweep_stale",
]

SESSION_RE = re.compile(r"^virtbench\.(\d+)\.[0-9a-f]+$")


@dataclass(frozen=True)
class Mounts:
    """Where the hierarchies are mounted and where this process sits in them."""

    v1: dict[str, Path]
    """Controller name -> directory of our own cgroup in that controller's hierarchy."""
    v2_mount: Path | None
    v2_own: Path | None
    """Our own cgroup's directory in the unified hierarchy."""


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _join(mount: Path, root: str, cgpath: str) -> Path:
    if root != "/" and (cgpath == root or cgpath.startswith(root + "/")):
        cgpath = cgpath[len(root):]
    elif root != "/":
        cgpath = "/"
    return mount / cgpath.lstrip("/") if cgpath.strip("/") else mount


def find_mounts(proc: Path = Path("/proc")) -> Mounts:
    """Read ``<proc>/self/mountinfo`` and ``<proc>/self/cgroup`` (injectable for tests)."""
    try:
        mountinfo = (proc / "self" / "mountinfo").read_text(encoding="utf-8")
        own = (proc / "self" / "cgroup").read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvironmentUnsupported(f"cannot read the cgroup mounts: {exc}") from None
    paths_v1: dict[str, str] = {}
    path_v2: str | None = None
    for line in own.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            path_v2 = parts[2]
        for ctrl in parts[1].split(","):
            if ctrl:
                paths_v1[ctrl] = parts[2]
    v1: dict[str, Path] = {}
    v2_mount: Path | None = None
    v2_root = "/"
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 3:
            continue
        root, mnt, fstype, superopts = _unescape(lf[3]), Path(_unescape(lf[4])), rf[0], rf[2]
        if fstype == "cgroup2" and v2_mount is None:
            v2_mount, v2_root = mnt, root
        elif fstype == "cgroup":
            for opt in superopts.split(","):
                if opt in paths_v1 and opt not in v1:
                    v1[opt] = _join(mnt, root, paths_v1[opt])
    v2_own = _join(v2_mount, v2_root, path_v2) if v2_mount and path_v2 is not None else None
    return Mounts(v1=v1, v2_mount=v2_mount, v2_own=v2_own)


def _v2_backend(m: Mounts) -> V2Backend:
    assert m.v2_mount is not None
    own = m.v2_own or m.v2_mount
    if "cpu" not in controllers(m.v2_mount):
        return V2Backend(m.v2_mount, own)  # accounting only: our own cgroup is fine
    if own == m.v2_mount or "cpu" in controllers(own, "cgroup.subtree_control"):
        return V2Backend(m.v2_mount, own)
    # Our own cgroup holds processes (at least us), so it cannot enable the cpu controller
    # for children ("no internal processes"); the root cgroup is exempt.
    return V2Backend(m.v2_mount, m.v2_mount)


def detect(version: str = "auto", *, need_quota: bool = False,
           proc: Path = Path("/proc")) -> CgroupBackend:
    """The backend to use: ``version`` is ``auto``, ``v1`` or ``v2``."""
    if version not in ("auto", "v1", "v2"):
        raise UsageError(f"unknown cgroup version {version!r} (auto, v1, v2)")
    m = find_mounts(proc)
    v1_ok = "cpu" in m.v1 and "cpuacct" in m.v1
    v2_cpu = m.v2_mount is not None and "cpu" in controllers(m.v2_mount)
    backend: CgroupBackend
    if version == "v1":
        if not v1_ok:
            raise EnvironmentUnsupported(
                "cgroup v1 cpu/cpuacct hierarchies are not mounted here"
                + (" (this host uses cgroup v2: use --cgroup v2 or auto)" if m.v2_mount else ""))
        backend = V1Backend(m.v1["cpu"], m.v1["cpuacct"])
    elif version == "v2":
        if m.v2_mount is None:
            raise EnvironmentUnsupported(
                "no cgroup v2 hierarchy is mounted here (use --cgroup v1 or auto)")
        backend = _v2_backend(m)
    elif v2_cpu:
        backend = _v2_backend(m)
    elif v1_ok:
        backend = V1Backend(m.v1["cpu"], m.v1["cpuacct"])
    elif m.v2_mount is not None:
        backend = _v2_backend(m)
    else:
        raise EnvironmentUnsupported("no cgroup hierarchy with CPU accounting is mounted")
    if need_quota and not backend.supports_quota():
        raise EnvironmentUnsupported(f"no CPU quota possible: {backend.quota_unsupported_reason()}")
    return backend


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_tree(top: Path) -> None:
    """Kill everything in a cgroup subtree, then remove it bottom-up."""
    dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    for d in [*dirs, top]:
        kill_all([d / "cgroup.procs"])
        rmdir_retry(d)


def sweep_stale(backend: CgroupBackend) -> list[Path]:
    """Remove sessions whose process is gone (left by ``kill -9``); returns what was removed."""
    removed: list[Path] = []
    for root in backend.parents_root():
        try:
            entries = list(root.iterdir())
        except OSError:
            continue
        for d in entries:
            m = SESSION_RE.match(d.name)
            if m and d.is_dir() and int(m.group(1)) != os.getpid() and not _pid_alive(
                    int(m.group(1))):
                _remove_tree(d)
                removed.append(d)
    return removed


class CgroupSession:
    """The groups of one run, under one parent; closing removes all of them."""

    def __init__(self, backend: CgroupBackend) -> None:
        self.backend = backend
        self.name = f"virtbench.{os.getpid()}.{secrets.token_hex(4)}"
        self.parents: list[Path] = []
        self.groups: list[Cgroup] = []

    def open(self) -> CgroupSession:
        with signals_deferred():
            sweep_stale(self.backend)
            self.parents = self.backend.make_parent(self.name)
        return self

    def create(self, name: str) -> Cgroup:
        if not self.parents:
            raise RuntimeError("CgroupSession.create before open")
        with signals_deferred():
            cg = self.backend.make_child(self.parents, name)
            self.groups.append(cg)
        return cg

    def remove(self, cg: Cgroup) -> None:
        with signals_deferred():
            cg.remove()
            if cg in self.groups:
                self.groups.remove(cg)

    def close(self) -> None:
        with signals_deferred():
            errors: list[str] = []
            for cg in reversed(self.groups):
                try:
                    cg.remove()
                except EnvironmentUnsupported as exc:
                    errors.append(str(exc))
            self.groups.clear()
            for p in self.parents:
                try:
                    _remove_tree(p)
                except EnvironmentUnsupported as exc:
                    errors.append(str(exc))
            self.backend.release_parents(self.parents)
            self.parents = []
            if errors:
                raise EnvironmentUnsupported("cleanup incomplete: " + "; ".join(errors))

    def __enter__(self) -> CgroupSession:
        return self.open()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
