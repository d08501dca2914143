"""Container markers: docker, podman, lxc, systemd-nspawn, openvz, wsl, kubernetes, generic.

Evidence: /.dockerenv, /run/.containerenv, /run/host/container-manager,
/run/systemd/container, the ``container=`` key of
/proc/1/environ, cgroup paths (/proc/self/cgroup, /proc/1/cgroup), the root mount
(/proc/self/mountinfo), /proc/vz, /proc/version and osrelease (WSL), and whether this process
shares the initial PID / user namespace (namespace inode numbers are fixed for the initial
namespaces, so this works without privileges).
"""

from __future__ import annotations

import re
from typing import Any

from virtbench.probes.base import Context, Probe, ProbeResult

# Inode numbers of the initial namespaces (include/linux/proc_ns.h).
INIT_NS = {
    "ipc": 0xEFFFFFFF,
    "uts": 0xEFFFFFFE,
    "user": 0xEFFFFFFD,
    "pid": 0xEFFFFFFC,
    "cgroup": 0xEFFFFFFB,
    "time": 0xEFFFFFFA,
}

_CGROUP_RULES: list[tuple[re.Pattern[str], str, float]] = [
    (re.compile(r"/kubepods"), "kubernetes", 0.85),
    (re.compile(r"/docker[/-][0-9a-f]{12,64}"), "docker", 0.85),
    (re.compile(r"/libpod-[0-9a-f]{12,64}|/libpod_parent"), "podman", 0.85),
    (re.compile(r"/lxc\.payload[./]|/lxc/[^/]+"), "lxc", 0.85),
    (re.compile(r"/machine\.slice/(machine|systemd-nspawn)[-@]"), "systemd-nspawn", 0.6),
    (re.compile(r"/(containerd|cri-containerd|crio)[-/:][0-9a-f]{12,64}"), "containerd", 0.8),
    (re.compile(r"/actions_job/[0-9a-f]{12,64}"), "docker", 0.7),
    (re.compile(r"/[0-9a-f]{32}(?:[0-9a-f]{32})?$"), "generic", 0.3),
]

# Files a container engine bind-mounts into every container it starts, and the per-container
# directory they come from (the mount's root within its filesystem: /var/lib/docker/containers
# shows as /docker/containers when /var/lib is a file system of its own).
_ENGINE_BIND_TARGETS = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"})
_ENGINE_BIND_SOURCES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/docker/containers/[0-9a-f]{64}/"), "docker"),
    (re.compile(r"/overlay-containers/[0-9a-f]{64}/userdata/"), "podman"),
    (re.compile(r"/kubelet/pods/[0-9a-f-]{36}/etc-hosts$"), "kubernetes"),
]

_ENV_NAMES = {
    "docker": "docker",
    "podman": "podman",
    "lxc": "lxc",
    "lxc-libvirt": "lxc",
    "systemd-nspawn": "systemd-nspawn",
    "oci": "generic",
    "wsl": "wsl",
    "rkt": "rkt",
    "pouch": "pouch",
    "zone": "illumos-lx",  # the lx brand's init: a Linux userland in an illumos zone
}


def _ns_inode(link: str | None) -> int | None:
    if not link:
        return None
    m = re.search(r"\[(\d+)\]", link)
    return int(m.group(1)) if m else None


class ContainerProbe(Probe):
    name = "container"

    def collect(self, ctx: Context) -> ProbeResult:
        root = ctx.root
        res = ProbeResult()
        if root.exists("/.dockerenv"):
            res.clue("container", "docker", "/.dockerenv: present", 0.7)
        if root.exists("/run/.containerenv"):
            text = root.read("/run/.containerenv") or ""
            engine = re.search(r'engine="?([a-z]+)', text)
            name = "podman" if not engine or "podman" in engine.group(1) else engine.group(1)
            shown = f" ({engine.group(0)})" if engine else ""
            res.clue("container", name, f"/run/.containerenv: present{shown}", 0.85)
        # The manager's name: /run/host/container-manager (the manager writes it; systemd
        # reads it first), /run/systemd/container (systemd as PID 1 writes its $container).
        for rel in ("/run/host/container-manager", "/run/systemd/container"):
            marker = root.read_line(rel)
            if marker:
                name = _ENV_NAMES.get(marker.lower(), marker.lower())
                res.clue("container", name, f"{rel}: {marker}", 0.85)
        environ = root.read_bytes("/proc/1/environ")
        if environ is not None:
            for item in environ.split(b"\0"):
                if item.startswith(b"container="):
                    value = item.split(b"=", 1)[1].decode("utf-8", "replace")
                    name = _ENV_NAMES.get(value.lower(), value.lower() or "generic")
                    res.clue("container", name, f"/proc/1/environ: container={value}", 0.9)
        for rel in ("/proc/1/cgroup", "/proc/self/cgroup"):
            for line in root.lines(rel):
                path = line.split(":", 2)[-1]
                for rx, name, weight in _CGROUP_RULES:
                    if rx.search(path):
                        res.clue("container", name, f"{rel}: {line}", weight)
                        break
        self._mountinfo(ctx, res)
        if root.exists("/proc/vz") and not root.exists("/proc/bc"):
            res.clue("container", "openvz", "/proc/vz: present, /proc/bc: absent", 0.9)
        if root.exists("/var/run/secrets/kubernetes.io/serviceaccount") or root.exists(
            "/run/secrets/kubernetes.io/serviceaccount"
        ):
            res.clue(
                "container",
                "kubernetes",
                "/var/run/secrets/kubernetes.io/serviceaccount: present",
                0.8,
            )
        for rel in ("/proc/sys/kernel/osrelease", "/proc/version"):
            text = root.read_line(rel) or ""
            if "microsoft" in text.lower() or "wsl" in text.lower():
                variant = "wsl2" if re.search(r"WSL2|microsoft-standard", text, re.I) else "wsl1"
                res.clue("container", "wsl", f"{rel}: {text}", 0.95, variant)
                break
        self._proot(ctx, res)
        if root.exists("/proc/sys/fs/binfmt_misc/WSLInterop"):
            res.clue("container", "wsl", "/proc/sys/fs/binfmt_misc/WSLInterop: present", 0.8)
        self._namespaces(ctx, res)
        return res

    @staticmethod
    def _mountinfo(ctx: Context, res: ProbeResult) -> None:
        lines = ctx.root.lines("/proc/self/mountinfo")
        ContainerProbe._engine_binds(lines, res)
        for line in lines:
            fields = line.split()
            if len(fields) < 5 or fields[4] != "/":
                continue
            try:
                sep = fields.index("-")
            except ValueError:
                continue
            fstype = fields[sep + 1] if len(fields) > sep + 1 else ""
            rest = " ".join(fields[sep + 1 :])
            rest = f"{fields[3]} {rest}" if fields[3] != "/" else rest
            ev = f"/proc/self/mountinfo: / is {rest[:160]}"
            if "/var/lib/docker/" in rest:
                res.clue("container", "docker", ev, 0.8)
            elif "/var/lib/containers/storage" in rest:
                res.clue("container", "podman", ev, 0.8)
            elif "/var/lib/containerd/" in rest:
                res.clue("container", "containerd", ev, 0.7)
            elif "/var/lib/lxc/" in rest or "/var/lib/lxd/" in rest:
                res.clue("container", "lxc", ev, 0.7)
            elif fstype in ("overlay", "aufs", "fuse-overlayfs"):
                res.clue("container", "generic", ev, 0.4)
            ctx.facts.setdefault("root_fs", fstype)
            break

    @staticmethod
    def _engine_binds(lines: list[str], res: ProbeResult) -> None:
        """/etc/hostname, /etc/hosts, /etc/resolv.conf bind-mounted from a container engine's
        per-container directory (seen even when the root mount line is not in the capture)."""
        seen: set[str] = set()
        for line in lines:
            fields = line.split()
            if len(fields) < 5 or fields[4] not in _ENGINE_BIND_TARGETS:
                continue
            for rx, name in _ENGINE_BIND_SOURCES:
                if name not in seen and rx.search(fields[3]):
                    seen.add(name)
                    res.clue("container", name,
                             f"/proc/self/mountinfo: {fields[4]} from {fields[3][:160]}", 0.8)

    @staticmethod
    def _proot(ctx: Context, res: ProbeResult) -> None:
        """proot runs programs under ptrace, without namespaces: our tracer is 'proot'."""
        m = re.search(r"^TracerPid:\s*(\d+)", ctx.root.read("/proc/self/status") or "", re.M)
        if m and m.group(1) != "0":
            comm = ctx.root.read_line(f"/proc/{m.group(1)}/comm") or ""
            if comm.startswith("proot"):
                res.clue("container", "proot",
                         f"/proc/self/status: TracerPid: {m.group(1)} (/proc/{m.group(1)}/comm: "
                         f"{comm})", 0.9)

    @staticmethod
    def _namespaces(ctx: Context, res: ProbeResult) -> None:
        root = ctx.root
        isolation: dict[str, Any] = {}
        for ns in ("pid", "user", "cgroup", "uts", "ipc"):
            ino = _ns_inode(root.readlink(f"/proc/self/ns/{ns}"))
            if ino is not None:
                isolation[ns] = "initial" if ino == INIT_NS[ns] else "separate"
        status = root.read("/proc/self/status") or ""
        m = re.search(r"^NSpid:\s*(.+)$", status, re.M)
        if m and len(m.group(1).split()) > 1:
            isolation["pid"] = "separate"
            res.clue(
                "container", "generic", f"/proc/self/status: NSpid: {m.group(1).strip()}", 0.5
            )
        uid_map = root.read_line("/proc/self/uid_map")
        if uid_map and uid_map.split() != ["0", "0", "4294967295"]:
            isolation["user"] = "separate"
        if isolation.get("pid") == "separate" and not m:
            res.clue(
                "container",
                "generic",
                "/proc/self/ns/pid: not the initial PID namespace",
                0.5,
            )
        comm = root.read_line("/proc/1/comm")
        if comm:
            isolation["pid1"] = comm
        ctx.facts["isolation"] = isolation
        res.facts["isolation"] = isolation
