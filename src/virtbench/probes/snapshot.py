"""Capture the evidence files ``virtbench detect`` reads into a tar.gz, with no secrets.

The archive mirrors the live paths (``proc/...``, ``sys/...``) plus ``dmesg.txt`` (the kernel
log), ``cpuid.txt`` (the CPUID hypervisor leaves), ``devkvm.txt`` (whether /dev/kvm works) and
``snapshot.json`` (what was captured). Extract it and run ``virtbench detect --root DIR``, or
pass the archive itself to ``--root``.

What is never captured: environment variables other than ``container=`` of PID 1, command
lines of processes, keys, tokens, the Kubernetes service-account files (only that the directory
exists), DMI serial numbers and UUIDs, MAC addresses, and the hostname (replaced by
``<hostname>`` everywhere unless ``include_hostname``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from virtbench import __version__
from virtbench.probes import cpuid as cpuid_mod
from virtbench.probes import hypervisors as hv
from virtbench.probes.base import Context, Root, read_kmsg
from virtbench.probes.facts import NestingProbe

SNAPSHOT_FORMAT = 1

FILES = [
    "/proc/cpuinfo",
    "/proc/stat",
    "/proc/meminfo",
    "/proc/version",
    "/proc/cmdline",
    "/proc/modules",
    "/proc/sys/kernel/osrelease",
    "/proc/sysinfo",
    "/proc/xen/capabilities",
    "/proc/self/cgroup",
    "/proc/self/mountinfo",
    "/proc/self/uid_map",
    "/proc/1/cgroup",
    "/proc/1/comm",
    "/proc/device-tree/hypervisor/compatible",
    "/sys/hypervisor/type",
    "/sys/hypervisor/guest_type",
    "/sys/hypervisor/version/major",
    "/sys/hypervisor/version/minor",
    "/sys/hypervisor/version/extra",
    "/sys/hypervisor/properties/capabilities",
    "/sys/hypervisor/properties/features",
    "/sys/devices/system/clocksource/clocksource0/current_clocksource",
    "/sys/devices/system/clocksource/clocksource0/available_clocksource",
    "/sys/devices/system/cpu/online",
    "/sys/devices/system/cpu/possible",
    "/sys/devices/system/cpu/smt/control",
    "/sys/devices/system/cpu/smt/active",
    "/sys/devices/system/node/online",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/sys/kernel/mm/transparent_hugepage/defrag",
    "/sys/module/kvm_intel/parameters/nested",
    "/sys/module/kvm_amd/parameters/nested",
    "/run/systemd/container",
    "/run/host/container-manager",
    "/sys/firmware/dmi/entries/0-0/raw",  # SMBIOS BIOS information (its VM bit)
]
DMI = [
    "sys_vendor", "product_name", "product_version", "product_family", "board_vendor",
    "board_name", "bios_vendor", "bios_version", "bios_date", "chassis_vendor",
    "chassis_type", "chassis_asset_tag",
]  # never *_serial or product_uuid
MARKERS = [  # captured as "exists" only (an empty file or directory)
    "/.dockerenv",
    "/proc/vz",
    "/proc/bc",
    "/proc/sys/fs/binfmt_misc/WSLInterop",
    "/proc/device-tree/ibm,partition-name",
    "/proc/device-tree/hmc-managed?",
]
MARKER_DIRS = [
    "/var/run/secrets/kubernetes.io/serviceaccount",
    "/run/secrets/kubernetes.io/serviceaccount",
]
STATUS_KEYS = ("Name", "Pid", "NSpid", "Cpus_allowed_list", "Mems_allowed_list", "Seccomp",
               "TracerPid", "VxID", "NxID")
BUSES = ("pci", "virtio", "xen", "vmbus", "platform")
CGROUP_FILES = ("cpu.max", "memory.max", "cpuset.cpus.effective", "cpu.cfs_quota_us",
                "cpu.cfs_period_us", "memory.limit_in_bytes")


class _Writer:
    def __init__(self, tar: tarfile.TarFile, scrub: list[str]) -> None:
        self.tar = tar
        self.scrub = [s for s in scrub if s and len(s) >= 2]
        self.names: list[str] = []
        self.mtime = int(time.time())

    def _info(self, name: str) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name.lstrip("/"))
        info.mtime = self.mtime
        info.uname = info.gname = "root"
        return info

    def file(self, name: str, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        for word in self.scrub:
            # Whole names only; a short name must not eat 'vm' out of 'vm.swappiness'.
            tail = rb"(?![\w-])" if len(word) >= 4 else rb"(?![\w.-])"
            data = re.sub(rb"(?<![\w.-])" + re.escape(word.encode()) + tail, b"<hostname>", data)
        info = self._info(name)
        info.size = len(data)
        info.mode = 0o644
        self.tar.addfile(info, io.BytesIO(data))
        self.names.append(info.name)

    def directory(self, name: str) -> None:
        info = self._info(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        self.tar.addfile(info)
        self.names.append(info.name + "/")

    def link(self, name: str, target: str) -> None:
        info = self._info(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        info.mode = 0o777
        self.tar.addfile(info)
        self.names.append(info.name)


def _own_cgroup_files(root: Root) -> Iterator[str]:
    seen: set[str] = set()
    for line in root.lines("/proc/self/cgroup"):
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        path = parts[2].strip().rstrip("/")
        bases = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] if parts[1] == "" else [
            f"/sys/fs/cgroup/{parts[1]}", f"/sys/fs/cgroup/{parts[1].split(',')[0]}"
        ]
        for base in bases:
            for d in (f"{base}{path}", base):
                for fname in CGROUP_FILES:
                    rel = f"{d}/{fname}"
                    if rel not in seen:
                        seen.add(rel)
                        yield rel


def capture(out: Path | str, *, include_hostname: bool = False) -> dict[str, Any]:
    """Write the snapshot archive to ``out``; return its manifest."""
    root = Root("/")
    out = Path(out)
    scrub: list[str] = []
    if not include_hostname:
        names = {socket.gethostname(), socket.gethostname().split(".")[0]}
        names.add(root.read_line("/proc/sys/kernel/hostname") or "")
        scrub = sorted((n for n in names if n and n not in ("localhost", "(none)")), key=len,
                       reverse=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".tar.gz", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            w = _Writer(tar, scrub)
            manifest = _write_all(root, w, include_hostname)
            w.file("snapshot.json", json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return manifest


_SECRET_LINE = re.compile(rb"^.*(serial|uuid).*$\n?", re.I | re.M)


def _write_platform_files(root: Root, w: _Writer) -> None:
    """Every file, marker and directory listing a hypervisor definition reads (the device
    tree, lparcfg, /dev/mdesc, ...): capturing follows the definitions. Lines naming serial
    numbers or UUIDs (lparcfg's serial_number) are left out."""
    done = set(w.names)
    for _, rule in hv.rules("files"):
        for rel in filter(None, (rule.path, rule.unless_path)):
            name = rel.lstrip("/")
            if name in done or name + "/" in done or rel in ("/proc/self/status",):
                continue
            if not rule.listing:
                done.add(name)
            if rule.listing and rel == rule.path:
                for entry in (e for e in root.listdir(rel) if rule.rx.search(e)):
                    path = f"{rel}/{entry}"
                    w.directory(path) if root.is_dir(path) else w.file(path, b"")
            elif root.is_dir(rel):
                w.directory(rel)
            elif rule.exists or rel != rule.path:
                if root.exists(rel):
                    w.file(rel, b"")
            else:
                data = root.read_bytes(rel, 1024 * 1024)
                if data is not None:
                    w.file(rel, _SECRET_LINE.sub(b"", data))
    if hv.rules("pci"):  # what the PCI probe reads: ids and classes, nothing else
        base = "/sys/bus/pci/devices"
        for dev in root.listdir(base):
            for leaf in ("vendor", "device", "class"):
                data = root.read_bytes(f"{base}/{dev}/{leaf}", 64)
                if data is not None:
                    w.file(f"{base}/{dev}/{leaf}", data)
        data = root.read_bytes("/proc/bus/pci/devices", 1024 * 1024)
        if data is not None:
            w.file("/proc/bus/pci/devices", data)


def _write_all(root: Root, w: _Writer, include_hostname: bool) -> dict[str, Any]:
    for rel in FILES:
        data = root.read_bytes(rel)
        if data is not None:
            w.file(rel, data)
    _write_platform_files(root, w)
    for name in DMI:
        rel = f"/sys/class/dmi/id/{name}"
        data = root.read_bytes(rel)
        if data is not None:
            w.file(rel, data)
    for rel in MARKERS:
        if root.exists(rel):
            if root.is_dir(rel):
                w.directory(rel)
            else:
                w.file(rel, b"")
    for rel in MARKER_DIRS:
        if root.exists(rel):
            w.directory(rel)
    _write_identity(root, w)
    _write_sysfs(root, w)
    _write_live(root, w)
    return {
        "format": SNAPSHOT_FORMAT,
        "virtbench": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": os.uname().release,
        "hostname_included": include_hostname,
        "files": len(w.names),
        "unreadable": list(root.unreadable),
    }




def _write_identity(root: Root, w: _Writer) -> None:
    """Container markers of PID 1 and this process (filtered: no other environment)."""
    env = root.read_bytes("/proc/1/environ")
    if env is not None:
        keep = [item for item in env.split(b"\0") if item.startswith(b"container=")]
        w.file("/proc/1/environ", b"".join(k + b"\0" for k in keep))
    cenv = root.read("/run/.containerenv")
    if cenv is not None:
        engine = [ln for ln in cenv.splitlines() if ln.startswith("engine=")]
        w.file("/run/.containerenv", "\n".join(engine) + ("\n" if engine else ""))
    status = root.read("/proc/self/status") or ""
    kept = [ln for ln in status.splitlines() if ln.split(":", 1)[0] in STATUS_KEYS]
    if os.sched_getaffinity(0):
        from virtbench.probes.facts import format_cpulist

        kept = [ln for ln in kept if not ln.startswith("Cpus_allowed_list")]
        kept.append(f"Cpus_allowed_list:\t{format_cpulist(sorted(os.sched_getaffinity(0)))}")
    w.file("/proc/self/status", "\n".join(kept) + "\n")
    tracer = next((ln.split(":", 1)[1].strip() for ln in kept if ln.startswith("TracerPid:")),
                  "0")
    if tracer.isdigit() and tracer != "0":  # proot: the tracer's name only
        comm = root.read_bytes(f"/proc/{tracer}/comm", 256)
        if comm is not None:
            w.file(f"/proc/{tracer}/comm", comm)
    for ns in ("pid", "user", "uts", "ipc", "cgroup", "net", "mnt"):
        target = root.readlink(f"/proc/self/ns/{ns}")
        if target:
            w.link(f"/proc/self/ns/{ns}", target)


def _write_sysfs(root: Root, w: _Writer) -> None:
    """Vulnerabilities, governors, bound drivers, block devices, the own cgroup's limits."""
    vdir = "/sys/devices/system/cpu/vulnerabilities"
    for name in root.listdir(vdir):
        data = root.read_bytes(f"{vdir}/{name}")
        if data is not None:
            w.file(f"{vdir}/{name}", data)
    for cpu in range(4096):
        rel = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"
        if not root.exists(f"/sys/devices/system/cpu/cpu{cpu}"):
            break
        data = root.read_bytes(rel)
        if data is not None:
            w.file(rel, data)
    for bus in BUSES:
        base = f"/sys/bus/{bus}/drivers"
        for drv in root.listdir(base):
            for entry in root.listdir(f"{base}/{drv}"):
                if entry in ("bind", "unbind", "uevent", "module", "new_id", "remove_id"):
                    continue
                if root.readlink(f"{base}/{drv}/{entry}"):
                    w.file(f"{base}/{drv}/{entry}", b"")
    for ifname in root.listdir("/sys/class/net"):
        link = root.readlink(f"/sys/class/net/{ifname}/device/driver")
        if link:
            drv = link.rstrip("/").rsplit("/", 1)[-1]
            w.link(f"/sys/class/net/{ifname}/device/driver", f"../../../../bus/x/drivers/{drv}")
    for disk in root.listdir("/sys/block"):
        for leaf in ("dev", "queue/scheduler", "queue/rotational", "device/vendor",
                     "device/model"):
            data = root.read_bytes(f"/sys/block/{disk}/{leaf}")
            if data is not None:
                w.file(f"/sys/block/{disk}/{leaf}", data)
        for part in root.listdir(f"/sys/block/{disk}"):
            if part.startswith(disk):
                data = root.read_bytes(f"/sys/block/{disk}/{part}/dev")
                if data is not None:
                    w.file(f"/sys/block/{disk}/{part}/dev", data)
    for rel in _own_cgroup_files(root):
        data = root.read_bytes(rel)
        if data is not None:
            w.file(rel, data)


def _write_live(root: Root, w: _Writer) -> None:
    """Live-only evidence, turned into files: kernel log, CPUID leaves, /dev/kvm."""
    kmsg = read_kmsg()
    if isinstance(kmsg, str):
        from virtbench.probes.base import parse_log

        w.file("dmesg.txt", "\n".join(line.raw for line in parse_log(kmsg)) + "\n")
    else:
        root.note_unreadable("/dev/kmsg", kmsg[1])
    text, why = cpuid_mod.run_helper()
    if text is not None:
        w.file("cpuid.txt", text)
    elif cpuid_mod.is_x86():
        root.note_unreadable("cpuid", why)
    nest = NestingProbe().collect(Context(root)).facts["nesting"]
    api = f" api={nest['kvm_api']}" if nest.get("kvm_api") is not None else ""
    w.file("devkvm.txt", f"{str(nest['dev_kvm']).replace(' ', '-')}{api}\n")

@contextlib.contextmanager
def opened_root(path: Path | str) -> Iterator[Path]:
    """A directory to analyse: ``path`` itself, or a temporary extraction of an archive."""
    p = Path(path)
    if p.is_dir():
        yield p
        return
    if not (p.is_file() and tarfile.is_tarfile(p)):
        raise FileNotFoundError(f"{path}: neither a directory nor a snapshot archive")
    with tempfile.TemporaryDirectory(prefix="virtbench-snapshot-") as tmp:
        try:
            with tarfile.open(p) as tar:
                _safe_extract(tar, Path(tmp))
        except (OSError, EOFError, zlib.error) as exc:
            # A full disk, a quota, a truncated archive: one clear line, not a traceback (the
            # temporary directory goes with the 'with').
            why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise tarfile.TarError(f"{path}: cannot extract into {Path(tmp).parent}: "
                                   f"{why}") from None
        yield Path(tmp)


def _safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract regular files, directories and in-tree symlinks only (any Python 3.11)."""
    base = dest.resolve()
    for member in tar.getmembers():
        name = member.name.lstrip("./") if member.name.startswith("./") else member.name
        target = (base / name).resolve()
        if name.startswith("/") or ".." in Path(name).parts or not str(target).startswith(
            str(base)
        ):
            raise tarfile.TarError(f"unsafe path in archive: {member.name!r}")
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif member.isfile():
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            if src is None:
                continue
            with src, open(target, "wb") as out:
                while chunk := src.read(1 << 16):
                    out.write(chunk)
        elif member.issym():
            link = member.linkname
            resolved = (target.parent / link).resolve()
            if link.startswith("/") or not str(resolved).startswith(str(base)):
                continue  # a link out of the tree is dropped, not followed
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(link, target)
        # devices, fifos and hard links are never part of a snapshot: skipped
