"""Facts a live-migration check needs (``virtbench migrate-check``, docs/migrate-check.md).

``facts["migration"]``::

    cpu:       vendor, family, model, stepping, model_name, flags (sorted), level (x86-64-vN)
    memory:    total_kib, available_kib
    hugepages: size_kib, total, free, reserved (from /proc/meminfo)
    mounts:    [{mountpoint, fstype, source, network}] (block-device and network file systems)
    qemu:      {version, machines} (live system only: ``qemu-system-x86_64`` if installed)
    arch:      uname machine (live) or from cpuinfo flags (``lm`` -> x86_64)

Every value is read relative to the probe root, so a snapshot (``virtbench snapshot``, which
captures /proc/cpuinfo, /proc/meminfo and /proc/self/mountinfo) yields the same facts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from virtbench import paths
from virtbench.probes.base import Context, Probe, ProbeResult

# The x86-64 micro-architecture levels (x86-64 psABI), in /proc/cpuinfo flag names.
X86_64_LEVELS: dict[str, frozenset[str]] = {
    "x86-64-v1": frozenset({"cmov", "cx8", "fpu", "fxsr", "mmx", "syscall", "sse", "sse2", "lm"}),
    "x86-64-v2": frozenset({"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}),
    "x86-64-v3": frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe",
                            "xsave"}),
    "x86-64-v4": frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
}

NETWORK_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph",
    "cephfs", "9p", "lustre", "gpfs", "beegfs", "fuse.sshfs", "virtiofs",
})
"""File systems served over the network: the same export can be mounted by several hosts."""
CLUSTER_FS = frozenset({"ocfs2", "gfs2"})
"""Cluster file systems on shared block storage (iSCSI/FC LUNs), also mountable by many hosts."""
_PSEUDO = frozenset({
    "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs", "securityfs",
    "pstore", "bpf", "configfs", "fusectl", "hugetlbfs", "autofs", "binfmt_misc", "rpc_pipefs",
    "nsfs", "devtmpfs", "efivarfs", "selinuxfs",
})


def x86_64_level(flags: set[str] | frozenset[str]) -> str | None:
    """The highest x86-64 level all of whose flags are in ``flags`` (``None``: not even v1)."""
    best = None
    needed: set[str] = set()
    for level, extra in X86_64_LEVELS.items():
        needed |= extra
        if needed <= flags:
            best = level
        else:
            break
    return best


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[dict[str, Any]]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 2:
            continue
        mounts.append({"mountpoint": _unescape(lf[4]), "fstype": rf[0], "source": _unescape(rf[1])})
    return mounts


def parse_mounts(text: str) -> list[dict[str, Any]]:
    mounts = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 3:
            mounts.append(
                {"mountpoint": _unescape(f[1]), "fstype": f[2], "source": _unescape(f[0])}
            )
    return mounts


def is_shared_fs(fstype: str) -> bool:
    return fstype in NETWORK_FS or fstype in CLUSTER_FS


class MigrationProbe(Probe):
    name = "migration"

    def collect(self, ctx: Context) -> ProbeResult:
        root = ctx.root
        res = ProbeResult()
        blocks = ctx.cpuinfo()
        first = blocks[0] if blocks else {}
        flags = set(first.get("flags", "").split())

        def num(key: str) -> int | None:
            v = first.get(key, "").strip()
            return int(v) if v.isdigit() else None

        meminfo: dict[str, int] = {}
        for line in root.lines("/proc/meminfo"):
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                meminfo[key.strip()] = int(parts[0])
        text = root.read("/proc/self/mountinfo")
        raw = parse_mountinfo(text) if text else parse_mounts(root.read("/proc/mounts") or "")
        mounts = [
            {**m, "network": is_shared_fs(m["fstype"])}
            for m in raw
            if m["fstype"] not in _PSEUDO
        ]
        fact: dict[str, Any] = {
            "cpu": {
                "vendor": first.get("vendor_id"),
                "family": num("cpu family"),
                "model": num("model"),
                "stepping": num("stepping"),
                "model_name": first.get("model name"),
                "flags": sorted(flags),
                "level": x86_64_level(flags),
            },
            "memory": {"total_kib": meminfo.get("MemTotal"),
                       "available_kib": meminfo.get("MemAvailable")},
            "hugepages": {
                "size_kib": meminfo.get("Hugepagesize"),
                "total": meminfo.get("HugePages_Total"),
                "free": meminfo.get("HugePages_Free"),
                "reserved": meminfo.get("HugePages_Rsvd"),
            },
            "mounts": mounts,
            "arch": os.uname().machine if root.live else ("x86_64" if "lm" in flags else None),
            "qemu": _qemu() if root.live else None,
        }
        res.facts["migration"] = fact
        return res


def _qemu() -> dict[str, Any] | None:
    """QEMU's version and machine types, cached per binary (size, mtime): asking QEMU costs
    two process starts (0.1-0.7 s on a loaded host) and detect() runs for every result."""
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        return None
    cache: Path | None = None
    try:
        st = os.stat(qemu)
        key = hashlib.sha256(
            f"{os.path.realpath(qemu)}:{st.st_size}:{st.st_mtime_ns}".encode()
        ).hexdigest()[:16]
        cache = paths.cache_dir() / "detect" / f"qemu-{key}.json"
        cached = json.loads(cache.read_text())
        if isinstance(cached, dict) and cached.get("binary") == qemu:
            return cached
    except (OSError, ValueError):
        pass
    out = _ask_qemu(qemu)
    if cache is not None and out.get("version"):
        from virtbench.errors import UsageError
        from virtbench.safeio import atomic_write

        with contextlib.suppress(UsageError):  # a cache: not writing it costs time only
            atomic_write(cache, json.dumps(out))
    return out


def _ask_qemu(qemu: str) -> dict[str, Any]:
    out: dict[str, Any] = {"binary": qemu, "version": None, "machines": []}
    try:
        v = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=10)
        m = re.search(r"version (\d+\.\d+(?:\.\d+)?)", v.stdout)
        out["version"] = m.group(1) if m else None
        mh = subprocess.run([qemu, "-machine", "help"], capture_output=True, text=True,
                            timeout=10)
        out["machines"] = sorted(
            line.split()[0] for line in mh.stdout.splitlines()[1:] if line.strip()
        )
    except (OSError, subprocess.SubprocessError):
        pass
    return out
