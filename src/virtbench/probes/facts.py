"""Performance-relevant facts, each with advice that tells the user what to do."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import time
from typing import Any

from virtbench.probes import hypervisors
from virtbench.probes.base import Context, Probe, ProbeResult


def parse_cpulist(text: str | None) -> list[int]:
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11]; malformed parts are skipped."""
    cpus: list[int] = []
    for part in (text or "").strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if hi else a
        except ValueError:
            continue
        if 0 <= a <= b and b - a < 65536:
            cpus.extend(range(a, b + 1))
    return cpus


def format_cpulist(cpus: list[int]) -> str:
    out: list[str] = []
    s = sorted(set(cpus))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        out.append(str(s[i]) if i == j else f"{s[i]}-{s[j]}")
        i = j + 1
    return ",".join(out)


# ---------------------------------------------------------------------------------------------


def _v2_dirs(path: str) -> list[str]:
    """cgroup v2 directories from ``path`` up to the root (unified mount points included)."""
    parts = [p for p in path.strip().strip("/").split("/") if p and p not in (".", "..")]
    out: list[str] = []
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        for i in range(len(parts), -1, -1):
            d = base + "".join(f"/{p}" for p in parts[:i])
            if d not in out:
                out.append(d)
    return out


class ClockProbe(Probe):
    name = "clocksource"
    _base = "/sys/devices/system/clocksource/clocksource0"

    def available(self, ctx: Context) -> bool:
        return ctx.root.exists(self._base)

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        current = ctx.root.read_line(f"{self._base}/current_clocksource")
        available = (ctx.root.read_line(f"{self._base}/available_clocksource") or "").split()
        flags = ctx.cpu_flags()
        res.facts["clocksource"] = {
            "current": current,
            "available": available,
            "tsc_invariant": bool({"constant_tsc", "nonstop_tsc"} <= flags) if flags else None,
        }
        # Paravirtual clocks register only when the kernel found their hypervisor: readable
        # by everyone, so this still answers when the kernel log is restricted.
        ev = f"{self._base}/available_clocksource: {' '.join(available)}"
        for cs, hv in hypervisors.clocksources():
            if cs in available:
                res.clue("hypervisor", hv, ev, 0.85)
                break
        return res

    def advice(self, facts: dict[str, Any]) -> list[str]:
        cs = facts.get("clocksource") or {}
        cur = cs.get("current")
        avail = cs.get("available") or []
        out: list[str] = []
        if cur in ("hpet", "acpi_pm", "pit", "jiffies"):
            better = next((c for c in ("tsc", "kvm-clock", "xen", "hyperv_clocksource_tsc_page")
                           if c in avail), None)
            tip = (
                f"; '{better}' is available: echo {better} > "
                "/sys/devices/system/clocksource/clocksource0/current_clocksource"
                if better
                else ""
            )
            out.append(
                f"Clock source is {cur}: every gettimeofday()/clock_gettime() traps to the "
                f"kernel or hypervisor, so time-heavy workloads are slow{tip}."
            )
        elif cur == "xen" and "tsc" in avail and cs.get("tsc_invariant"):
            out.append(
                "Clock source is xen (pvclock); the TSC is invariant and available: "
                "'echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource' "
                "makes time calls cheaper (check the TSC is stable across migrations first)."
            )
        return out


class StealProbe(Probe):
    """CPU steal time from /proc/stat: since boot, and over a short live window if asked."""

    name = "steal"

    @staticmethod
    def _cpu_line(text: str | None) -> list[int] | None:
        for line in (text or "").splitlines():
            if line.startswith("cpu "):
                try:
                    return [int(x) for x in line.split()[1:]]
                except ValueError:
                    return None
        return None

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        first = self._cpu_line(ctx.root.read("/proc/stat"))
        fact: dict[str, Any] = {
            "percent": None,  # the best figure: the sample if taken, else since boot
            "since_boot_pct": None,
            "sample_pct": None,
            "sample_s": None,
        }
        if first and len(first) >= 8:
            total = sum(first[:8])
            fact["since_boot_pct"] = round(100.0 * first[7] / total, 2) if total else None
        if first and ctx.root.live and ctx.steal_sample_s > 0:
            time.sleep(ctx.steal_sample_s)
            with open("/proc/stat") as fh:
                second = self._cpu_line(fh.read())
            if second and len(second) >= 8:
                delta = [b - a for a, b in zip(first[:8], second[:8], strict=True)]
                total = sum(delta)
                fact["sample_pct"] = round(100.0 * delta[7] / total, 2) if total > 0 else 0.0
                fact["sample_s"] = ctx.steal_sample_s
        fact["percent"] = (
            fact["sample_pct"] if fact["sample_pct"] is not None else fact["since_boot_pct"]
        )
        res.facts["steal"] = fact
        return res

    def advice(self, facts: dict[str, Any]) -> list[str]:
        st = facts.get("steal") or {}
        pct = st.get("sample_pct")
        label = f"over {st.get('sample_s')} s" if pct is not None else "since boot"
        if pct is None:
            pct = st.get("since_boot_pct")
        if pct is not None and pct >= 2.0:
            return [
                f"CPU steal is {pct:.1f}% ({label}): the hypervisor runs other guests on these "
                "CPUs; results will vary. Repeat runs, compare medians, or use dedicated vCPUs."
            ]
        return []


class CpuProbe(Probe):
    """Model, count, the CPUs this process may use (affinity + cgroup quota), governor, SMT,
    NUMA."""

    name = "cpu"

    def collect(self, ctx: Context) -> ProbeResult:
        root = ctx.root
        res = ProbeResult()
        blocks = ctx.cpuinfo()
        first = blocks[0] if blocks else {}
        online = root.read_line("/sys/devices/system/cpu/online")
        online_cpus = parse_cpulist(online)
        fact: dict[str, Any] = {
            "model": first.get("model name") or first.get("cpu model") or first.get("cpu"),
            "vendor": first.get("vendor_id"),
            "logical_cpus": len(blocks) or len(online_cpus) or None,
            "online": online,
        }
        # Affinity: the live syscall, or Cpus_allowed_list of the captured process.
        allowed: list[int] = []
        if root.live:
            allowed = sorted(os.sched_getaffinity(0))
        else:
            m = re.search(
                r"^Cpus_allowed_list:\s*(\S+)", root.read("/proc/self/status") or "", re.M
            )
            allowed = parse_cpulist(m.group(1)) if m else []
        fact["affinity"] = format_cpulist(allowed) if allowed else None
        fact["affinity_cpus"] = len(allowed) or None
        quota = self._cgroup_quota(ctx)
        fact.update(quota)
        usable: float | None = float(len(allowed)) if allowed else fact["logical_cpus"]
        if usable is not None and fact["logical_cpus"]:
            usable = min(usable, float(fact["logical_cpus"]))
        if usable is not None and quota.get("cgroup_quota_cpus"):
            usable = min(usable, quota["cgroup_quota_cpus"])
        fact["usable_cpus"] = usable
        govs = sorted(
            {
                g
                for cpu in online_cpus[:256]
                if (g := root.read_line(
                    f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"))
            }
        )
        fact["governor"] = ",".join(govs) if govs else None
        smt_ctl = root.read_line("/sys/devices/system/cpu/smt/control")
        smt_active = root.read_line("/sys/devices/system/cpu/smt/active")
        siblings, cores = first.get("siblings"), first.get("cpu cores")
        tpc: int | None = None
        try:
            if siblings and cores:
                tpc = max(1, int(siblings) // max(1, int(cores)))
        except ValueError:
            tpc = None
        fact["smt"] = {"control": smt_ctl, "active": smt_active == "1" if smt_active else None,
                       "threads_per_core": tpc}
        nodes = parse_cpulist(root.read_line("/sys/devices/system/node/online"))
        fact["numa_nodes"] = len(nodes) or None
        res.facts["cpu"] = fact
        return res

    @staticmethod
    def _cgroup_quota(ctx: Context) -> dict[str, Any]:
        root = ctx.root
        out: dict[str, Any] = {"cgroup_quota_cpus": None, "cgroup_cpuset": None}
        for line in root.lines("/proc/self/cgroup"):
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            _, ctrls, path = parts
            path = path.strip() or "/"
            ctrl_set = set(ctrls.split(","))
            if ctrls == "":  # cgroup v2: the tightest cpu.max on the way up to the root
                for base in _v2_dirs(path):
                    text = root.read_line(f"{base}/cpu.max")
                    q, _, period = (text or "max").partition(" ")
                    if q == "max":
                        continue
                    try:
                        cpus = round(int(q) / int(period or 100000), 2)
                    except (ValueError, ZeroDivisionError):
                        continue
                    if out["cgroup_quota_cpus"] is None or cpus < out["cgroup_quota_cpus"]:
                        out["cgroup_quota_cpus"] = cpus
                        out["cgroup_quota_source"] = f"{base}/cpu.max"
                cs = root.read_line(f"/sys/fs/cgroup{path.rstrip('/')}/cpuset.cpus.effective")
                if cs:
                    out["cgroup_cpuset"] = cs
            elif "cpu" in ctrl_set:
                # Inside a container the own cgroup is usually mounted at the controller root.
                cpu_base = next(
                    (
                        b
                        for b in (
                            f"/sys/fs/cgroup/{ctrls}{path.rstrip('/')}",
                            f"/sys/fs/cgroup/cpu{path.rstrip('/')}",
                            f"/sys/fs/cgroup/{ctrls}",
                            "/sys/fs/cgroup/cpu",
                        )
                        if root.exists(f"{b}/cpu.cfs_quota_us")
                    ),
                    None,
                )
                if cpu_base is None:
                    continue
                quota_us = root.read_line(f"{cpu_base}/cpu.cfs_quota_us")
                per = root.read_line(f"{cpu_base}/cpu.cfs_period_us")
                try:
                    if quota_us and per and int(quota_us) > 0:
                        out["cgroup_quota_cpus"] = round(int(quota_us) / int(per), 2)
                        out["cgroup_quota_source"] = f"{cpu_base}/cpu.cfs_quota_us"
                except ValueError:
                    pass
        return out

    def advice(self, facts: dict[str, Any]) -> list[str]:
        cpu = facts.get("cpu") or {}
        out: list[str] = []
        logical = cpu.get("logical_cpus")
        usable = cpu.get("usable_cpus")
        if logical and usable and usable < logical:
            why = []
            if cpu.get("cgroup_quota_cpus"):
                why.append(f"cgroup quota {cpu['cgroup_quota_cpus']} CPUs")
            if cpu.get("affinity_cpus") and cpu["affinity_cpus"] < logical:
                why.append(f"affinity {cpu['affinity']}")
            out.append(
                f"This process may use {usable:g} of {logical} CPUs ({', '.join(why)}): run "
                f"multi-copy tests with {int(usable) or 1} copies, not {logical}."
            )
        gov = cpu.get("governor") or ""
        if any(g in gov for g in ("powersave", "ondemand", "conservative", "schedutil")):
            out.append(
                f"CPU frequency governor is {gov}: the first seconds of a test run at low clock. "
                "For stable numbers: cpupower frequency-set -g performance (restore afterwards)."
            )
        smt = cpu.get("smt") or {}
        if smt.get("active") and (cpu.get("logical_cpus") or 0) > 1:
            out.append(
                "SMT is on: two copies on sibling threads share one core; parallel results "
                "do not scale like cores."
            )
        if (cpu.get("numa_nodes") or 1) > 1:
            out.append(
                f"{cpu['numa_nodes']} NUMA nodes: pin memory-heavy tests with numactl for "
                "repeatable results."
            )
        return out


class MemoryProbe(Probe):
    name = "memory"

    def collect(self, ctx: Context) -> ProbeResult:
        root = ctx.root
        res = ProbeResult()
        info: dict[str, int] = {}
        for line in root.lines("/proc/meminfo"):
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                info[key.strip()] = int(parts[0])
        fact: dict[str, Any] = {
            "total_kib": info.get("MemTotal"),
            "available_kib": info.get("MemAvailable"),
            "swap_total_kib": info.get("SwapTotal"),
        }
        thp = root.read_line("/sys/kernel/mm/transparent_hugepage/enabled")
        m = re.search(r"\[(\w+)\]", thp or "")
        fact["thp"] = m.group(1) if m else thp
        limit: int | None = None
        for line in root.lines("/proc/self/cgroup"):
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            path = parts[2].strip().rstrip("/")
            if parts[1] == "":
                cands = [f"{d}/memory.max" for d in _v2_dirs(path)]
            elif "memory" in parts[1].split(","):
                cands = [
                    f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes",
                    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                ]
            else:
                continue
            for cand in cands:
                text = root.read_line(cand)
                if text and text.isdigit() and int(text) < (1 << 60):
                    limit = int(text) if limit is None else min(limit, int(text))
        fact["cgroup_limit_bytes"] = limit
        res.facts["memory"] = fact
        return res

    def advice(self, facts: dict[str, Any]) -> list[str]:
        mem = facts.get("memory") or {}
        out: list[str] = []
        if mem.get("thp") == "always":
            out.append(
                "Transparent huge pages are 'always': khugepaged compaction can add latency "
                "spikes; 'madvise' is the usual server setting."
            )
        total = mem.get("total_kib")
        lim = mem.get("cgroup_limit_bytes")
        if lim and total and lim < total * 1024:
            out.append(
                f"A cgroup limits memory to {lim / 2**30:.1f} GiB (host has "
                f"{total / 2**20:.1f} GiB): size file and memory tests below that."
            )
        return out


class MitigationsProbe(Probe):
    name = "mitigations"
    _base = "/sys/devices/system/cpu/vulnerabilities"

    def collect(self, ctx: Context) -> ProbeResult:
        root = ctx.root
        res = ProbeResult()
        vulns: dict[str, str] = {}
        for name in root.listdir(self._base):
            value = root.read_line(f"{self._base}/{name}")
            if value is not None:
                vulns[name] = value
        cmdline = root.read_line("/proc/cmdline") or ""
        opts = [o for o in cmdline.split() if o.startswith(("mitigations=", "pti=", "nopti",
                                                              "spectre_v2=", "retbleed="))]
        mitigated = sorted(k for k, v in vulns.items() if v.startswith("Mitigation"))
        vulnerable = sorted(k for k, v in vulns.items() if v.startswith("Vulnerable"))
        res.facts["mitigations"] = {
            "cmdline": opts,
            "mitigated": mitigated,
            "vulnerable": vulnerable,
            "vulnerabilities": vulns,
        }
        return res

    def advice(self, facts: dict[str, Any]) -> list[str]:
        mit = facts.get("mitigations") or {}
        costly = [m for m in ("meltdown", "retbleed", "spec_rstack_overflow", "mds",
                              "spectre_v2") if m in (mit.get("mitigated") or [])]
        if costly:
            return [
                "CPU vulnerability mitigations are active (" + ", ".join(costly) + "): they "
                "make system calls and context switches slower; compare only with hosts that "
                "have the same mitigations."
            ]
        return []


_DEVICE_KINDS = (
    ("vd", "virtio-blk"), ("xvd", "xen-blkfront"), ("nvme", "nvme"), ("sd", "scsi/sata"),
    ("hd", "ide (emulated)"), ("mmcblk", "mmc"), ("loop", "loop file"), ("zram", "zram (RAM)"),
    ("md", "md raid"), ("dm-", "device-mapper"), ("rbd", "ceph rbd"), ("nbd", "nbd"),
)


def _device_kind(disk: str) -> str | None:
    for prefix, kind in _DEVICE_KINDS:
        if disk.startswith(prefix):
            return kind
    return None


class StorageProbe(Probe):
    """File system, block device, I/O scheduler and rotational flag of the file-test dir."""

    name = "storage"

    def collect(self, ctx: Context) -> ProbeResult:
        root = ctx.root
        res = ProbeResult()
        target = ctx.test_dir or (os.getcwd() if root.live else "/")
        best: list[str] | None = None
        for line in root.lines("/proc/self/mountinfo"):
            f = line.split()
            if len(f) < 7 or "-" not in f:
                continue
            mnt = f[4].replace("\\040", " ")
            if (target == mnt or target.startswith(mnt.rstrip("/") + "/") or mnt == "/") and (
                best is None or len(mnt) > len(best[4])
            ):
                best = f
        fact: dict[str, Any] = {"path": target}
        if best:
            sep = best.index("-")
            fact.update(
                mount_point=best[4],
                fs_type=best[sep + 1] if len(best) > sep + 1 else None,
                source=best[sep + 2] if len(best) > sep + 2 else None,
                dev=best[2],
            )
            fact["tmpfs"] = fact["fs_type"] in ("tmpfs", "ramfs")
            block = self._block_for(ctx, best[2])
            if block:
                disk = block
                q = f"/sys/block/{disk}/queue"
                sched = root.read_line(f"{q}/scheduler")
                m = re.search(r"\[([\w-]+)\]", sched or "")
                rot = root.read_line(f"{q}/rotational")
                fact.update(
                    device=disk,
                    device_kind=_device_kind(disk),
                    scheduler=m.group(1) if m else sched,
                    rotational=(rot == "1") if rot in ("0", "1") else None,
                )
        res.facts["storage"] = fact
        return res

    @staticmethod
    def _block_for(ctx: Context, majmin: str) -> str | None:
        root = ctx.root
        for disk in root.listdir("/sys/block"):
            if root.read_line(f"/sys/block/{disk}/dev") == majmin:
                return disk
            for part in root.listdir(f"/sys/block/{disk}"):
                if part.startswith(disk) and root.read_line(
                    f"/sys/block/{disk}/{part}/dev"
                ) == majmin:
                    return disk
        return None

    def advice(self, facts: dict[str, Any]) -> list[str]:
        st = facts.get("storage") or {}
        out: list[str] = []
        if st.get("tmpfs"):
            out.append(
                f"{st.get('path')} is on {st.get('fs_type')}: file tests there measure memory, "
                "not disk. Use --dir on a disk-backed file system."
            )
        if st.get("fs_type") in ("overlay", "aufs", "fuse-overlayfs"):
            out.append(
                f"{st.get('path')} is on {st.get('fs_type')} (a container's writable layer): "
                "file tests include copy-up costs. Mount a volume and use --dir on it."
            )
        if st.get("device_kind") in ("zram (RAM)", "loop file"):
            out.append(
                f"{st.get('path')} is on {st.get('device')} ({st.get('device_kind')}): file "
                "tests do not measure a disk."
            )
        if st.get("rotational") and st.get("scheduler") == "none":
            out.append(
                f"{st.get('device')} is rotational with scheduler 'none': mq-deadline or bfq "
                "usually serves spinning disks better."
            )
        return out


_KVM_GET_API_VERSION = 0xAE00


class NestingProbe(Probe):
    """Hardware virtualization exposed to this system (vmx/svm, /dev/kvm usable)."""

    name = "nesting"

    def collect(self, ctx: Context) -> ProbeResult:
        root = ctx.root
        res = ProbeResult()
        flags = ctx.cpu_flags()
        hw = "vmx" if "vmx" in flags else "svm" if "svm" in flags else None
        fact: dict[str, Any] = {
            "cpu_flag": hw,
            "cpu_flags_known": bool(flags),
            "dev_kvm": "absent",
            "kvm_api": None,
        }
        if root.live:
            if os.path.exists("/dev/kvm"):
                try:
                    fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
                except OSError as exc:
                    fact["dev_kvm"] = (
                        "no permission" if exc.errno in (errno.EACCES, errno.EPERM)
                        else f"unusable ({exc.strerror})"
                    )
                else:
                    try:
                        fact["kvm_api"] = fcntl.ioctl(fd, _KVM_GET_API_VERSION)
                        fact["dev_kvm"] = "usable"
                    except OSError as exc:
                        fact["dev_kvm"] = f"unusable ({exc.strerror})"
                    finally:
                        os.close(fd)
        else:
            text = root.read_line("/devkvm.txt")
            if text:
                fact["dev_kvm"] = text.split()[0]
                m = re.search(r"api=(\d+)", text)
                fact["kvm_api"] = int(m.group(1)) if m else None
            elif root.exists("/dev/kvm"):
                fact["dev_kvm"] = "present"
        for mod in ("kvm_intel", "kvm_amd"):
            val = root.read_line(f"/sys/module/{mod}/parameters/nested")
            if val is not None:
                fact["nested_param"] = f"{mod}.nested={val}"
        _, lines = ctx.kernel_log()
        for line in lines:
            if line.msg.startswith("kvm-pvm: loaded"):
                fact["kvm_backend"] = "kvm-pvm (software paravirtual nesting, no vmx/svm needed)"
                break
        res.facts["nesting"] = fact
        return res

    def advice(self, facts: dict[str, Any]) -> list[str]:
        n = facts.get("nesting") or {}
        if n.get("dev_kvm") == "usable":
            return []
        if n.get("cpu_flags_known") and n.get("cpu_flag") is None:
            return [
                "No hardware virtualization is exposed here (no vmx/svm, /dev/kvm "
                f"{n.get('dev_kvm')}): VM experiments will use QEMU TCG (pure emulation, "
                "10-50x slower); enable nested virtualization on the host for KVM."
            ]
        return []
