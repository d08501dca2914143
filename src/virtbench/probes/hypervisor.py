"""Probes that find the hypervisor: CPUID, cpuinfo, /sys/hypervisor + /proc/xen, DMI, the
kernel log, and the s390/POWER platform files."""

from __future__ import annotations

import re

from virtbench.probes import cpuid as cpuid_mod
from virtbench.probes.base import Clue, Context, LogLine, Probe, ProbeResult, clip, excerpt

# ---------------------------------------------------------------------------------------------
# DMI: used for /sys/class/dmi/id/* and for the kernel's 'DMI: ...' boot line.


def dmi_clues(text: str, evidence: str) -> list[Clue]:
    """Clues from DMI strings (vendor, product, BIOS, chassis asset tag joined by spaces)."""
    t = text.lower()
    out: list[Clue] = []

    def add(kind: str, name: str, weight: float, variant: str | None = None) -> None:
        out.append(Clue(kind, name, clip(evidence), weight, variant))

    if "hvm domu" in t:
        add("hypervisor", "xen", 0.9, "hvm")
        add("role", "domU", 0.6)
    elif re.search(r"\bxen\b", t):
        add("hypervisor", "xen", 0.8, "hvm")
    if "amazon ec2" in t or re.search(r"\bamazon\b", t):
        add("cloud", "amazon", 0.9)
        if "amazon ec2" in t and "xen" not in t:
            add("hypervisor", "kvm", 0.6, "amazon-nitro")
    if "google compute engine" in t or re.search(r"\bgoogle\b", t):
        add("cloud", "google", 0.9)
        add("hypervisor", "kvm", 0.6, "google")
    if "7783-7084-3265-9085-8269-3286-77" in t:
        add("cloud", "azure", 0.95)
    if "oraclecloud" in t:
        add("cloud", "oracle", 0.9)
    if "alibaba cloud" in t:
        add("cloud", "alibaba", 0.9)
        add("hypervisor", "kvm", 0.5)
    if "digitalocean" in t:
        add("cloud", "digitalocean", 0.9)
        add("hypervisor", "kvm", 0.5)
    if "openstack" in t:
        add("cloud", "openstack", 0.6)
    if "microsoft corporation" in t and "virtual machine" in t:
        add("hypervisor", "hyper-v", 0.85)
    if "vmware" in t:
        add("hypervisor", "vmware", 0.85)
    if "innotek" in t or "virtualbox" in t:
        add("hypervisor", "virtualbox", 0.85)
    if "parallels" in t:
        add("hypervisor", "parallels", 0.85)
    if "bhyve" in t:
        add("hypervisor", "bhyve", 0.85)
    if "cloud hypervisor" in t or "cloud-hypervisor" in t:
        add("hypervisor", "kvm", 0.5, "cloud-hypervisor")
    if "firecracker" in t:
        add("hypervisor", "kvm", 0.5, "firecracker-like")
    if re.search(r"\bqemu\b|\bbochs\b|standard pc \((i440fx|q35)", t):
        # QEMU's firmware: KVM-accelerated or pure emulation (decided with the other clues).
        add("hypervisor", "qemu", 0.7, "qemu")
    if re.search(r"\bkvm\b", t):
        add("hypervisor", "kvm", 0.6)
    return out


_DMI_FILES = (
    "sys_vendor",
    "product_name",
    "product_version",
    "board_vendor",
    "board_name",
    "bios_vendor",
    "bios_version",
    "chassis_vendor",
    "chassis_asset_tag",
)


class DmiProbe(Probe):
    name = "dmi"

    def available(self, ctx: Context) -> bool:
        return ctx.root.exists("/sys/class/dmi/id")

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        values: dict[str, str] = {}
        for fname in _DMI_FILES:
            value = ctx.root.read_line(f"/sys/class/dmi/id/{fname}")
            if value:
                values[fname] = value
        if not values:
            return res
        res.facts["dmi"] = values
        # One clue per deciding file keeps the evidence precise.
        for fname, value in values.items():
            for clue in dmi_clues(value, f"/sys/class/dmi/id/{fname}: {value}"):
                res.clues.append(clue)
        if not any(c.kind == "hypervisor" for c in res.clues):
            joined = " ".join(values.values())
            res.clue(
                "not-hypervisor",
                "none",
                f"/sys/class/dmi/id: {joined}",
                0.4,
            )
        return res


# ---------------------------------------------------------------------------------------------


class CpuidProbe(Probe):
    name = "cpuid"

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        root = ctx.root
        if root.live:
            text, why = cpuid_mod.run_helper()
            if text is None:
                res.facts["cpuid"] = {"read": False, "reason": why}
                if cpuid_mod.is_x86():
                    root.note_unreadable("cpuid", why)
                return res
            parsed = cpuid_mod.parse(text, "cpuid")
            src = "cpuid"
        else:
            text = root.read("/cpuid.txt")
            if text is None:
                res.facts["cpuid"] = {"read": False, "reason": "no cpuid.txt in the tree"}
                return res
            parsed = cpuid_mod.parse(text, "cpuid.txt")
            src = "cpuid.txt"
            if not parsed.leaves and not parsed.found and parsed.hypervisor_bit is None:
                root.note_unreadable("/cpuid.txt", "malformed: no CPUID leaf or signature found")
                res.facts["cpuid"] = {"read": False, "reason": "cpuid.txt malformed"}
                return res
        res.facts["cpuid"] = {
            "read": True,
            "source": src,
            "hypervisor_bit": parsed.hypervisor_bit,
            "signatures": [
                {"leaf": f"0x{leaf:08x}", "signature": sig, "name": name}
                for name, sig, leaf in parsed.found
            ],
        }
        names = [n for n, _, _ in parsed.found]
        for name, sig, leaf in parsed.found:
            ev = f"{src}: leaf 0x{leaf:08x} signature {sig!r}"
            if name == "hyper-v" and len(set(names)) > 1:
                # Xen and KVM offer Hyper-V enlightenments at 0x40000000 and their own
                # signature at 0x40000100: the other one is the real hypervisor.
                res.clue("hypervisor", name, ev + " (Hyper-V interface offered)", 0.1)
            elif name == "qemu-tcg":
                res.clue("hypervisor", "qemu-tcg", ev, 0.95, "tcg")
            else:
                res.clue("hypervisor", name, ev, 0.95)
        if parsed.hypervisor_bit is False and not parsed.found:
            res.clue("not-hypervisor", "none", f"{src}: CPUID.1:ECX bit 31 (hypervisor) = 0", 0.8)
        elif parsed.hypervisor_bit and not parsed.found:
            sig = parsed.leaves[0].signature if parsed.leaves else ""
            res.clue(
                "hypervisor",
                "unknown",
                f"{src}: hypervisor bit set, unknown signature {sig!r}",
                0.6,
            )
        return res


class CpuinfoProbe(Probe):
    name = "cpuinfo"

    def available(self, ctx: Context) -> bool:
        return ctx.root.exists("/proc/cpuinfo")

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        blocks = ctx.cpuinfo()
        if not blocks:
            return res
        flags = ctx.cpu_flags()
        first = blocks[0]
        model = first.get("model name") or first.get("cpu model") or first.get("cpu") or ""
        if "hypervisor" in flags:
            res.clue("hypervisor", "unknown", "/proc/cpuinfo: flags include 'hypervisor'", 0.6)
            if "vendor_id" in first and "apic" not in flags and {"fpu", "tsc"} <= flags:
                # Xen hides the local APIC from PV domU kernels (every HVM guest has one).
                ev = "/proc/cpuinfo: 'hypervisor' flag but no 'apic' flag (Xen PV domU)"
                res.clue("hypervisor", "xen", ev, 0.7, "pv")
                res.clue("role", "domU", ev, 0.6)
        elif flags and ("vendor_id" in first):  # x86 with a flags line and no hypervisor bit
            res.clue("not-hypervisor", "none", "/proc/cpuinfo: no 'hypervisor' flag", 0.8)
        if "QEMU Virtual CPU" in model or "Common KVM processor" in model:
            name = "kvm" if "KVM" in model else "qemu"
            res.clue("hypervisor", name, f"/proc/cpuinfo: model name : {model}", 0.5)
        if flags & {"xen", "xen_pv"} or "xen" in first.get("vendor_id", "").lower():
            res.clue("hypervisor", "xen", "/proc/cpuinfo: Xen flag", 0.5)
        return res


class XenSysProbe(Probe):
    """/sys/hypervisor/{type,guest_type,properties} and /proc/xen/capabilities."""

    name = "xen-sys"

    def available(self, ctx: Context) -> bool:
        return ctx.root.exists("/sys/hypervisor") or ctx.root.exists("/proc/xen")

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        root = ctx.root
        htype = root.read_line("/sys/hypervisor/type")
        if htype:
            name = "xen" if htype.lower() == "xen" else htype.lower()
            res.clue("hypervisor", name, f"/sys/hypervisor/type: {htype}", 0.95)
        gtype = root.read_line("/sys/hypervisor/guest_type")
        if gtype:
            g = gtype.strip().upper()
            variant = {"PV": "pv", "HVM": "hvm", "PVH": "pvh"}.get(g)
            if "PVH" in g and variant is None:
                variant = "pvh"
            res.clue(
                "hypervisor", "xen", f"/sys/hypervisor/guest_type: {gtype}", 0.98, variant
            )
        major = root.read_line("/sys/hypervisor/version/major")
        minor = root.read_line("/sys/hypervisor/version/minor")
        extra = root.read_line("/sys/hypervisor/version/extra") or ""
        if major and minor:
            res.facts["xen_version"] = f"{major}.{minor}{extra}"
        caps = root.read("/proc/xen/capabilities")
        if caps is not None:
            if "control_d" in caps:
                res.clue("role", "dom0", "/proc/xen/capabilities: control_d", 0.98)
                res.clue("hypervisor", "xen", "/proc/xen/capabilities: control_d", 0.9)
            elif root.exists("/proc/xen/capabilities"):
                res.clue("role", "domU", "/proc/xen/capabilities: (empty: not control_d)", 0.7)
                res.clue("hypervisor", "xen", "/proc/xen/capabilities: present", 0.7)
        return res


class CmdlineProbe(Probe):
    """Hints in /proc/cmdline (readable by everyone, unlike the kernel log)."""

    name = "cmdline"

    def available(self, ctx: Context) -> bool:
        return ctx.root.exists("/proc/cmdline")

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        line = ctx.root.read_line("/proc/cmdline") or ""
        for rx, kind, name, variant, weight in _CMDLINE_RULES:
            m = rx.search(line)
            if m:
                text = excerpt("/proc/cmdline: ", line, m.start(), m.end(), 160)
                res.clue(kind, name, text, weight, variant)
        # No SMBIOS at all on x86 while sysfs was captured: no firmware, a micro-VM.
        if (
            ctx.root.exists("/sys/class")
            and not ctx.root.exists("/sys/class/dmi/id")
            and ctx.cpu_flags() & {"lm", "sse2"}
        ):
            res.clue("variant", "kvm", "/sys/class/dmi/id: absent (no firmware tables)", 0.3,
                     "firecracker-like")
        return res


class PlatformProbe(Probe):
    """s390 (/proc/sysinfo) and POWER (/proc/device-tree) hypervisors."""

    name = "platform"

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        root = ctx.root
        sysinfo = root.read("/proc/sysinfo")
        if sysinfo:
            for line in sysinfo.splitlines():
                if "Control Program:" in line:
                    ev = f"/proc/sysinfo: {line.strip()}"
                    if "z/VM" in line:
                        res.clue("hypervisor", "zvm", ev, 0.95)
                    elif "KVM" in line:
                        res.clue("hypervisor", "kvm", ev, 0.9)
                    break
            else:
                if "LPAR" in sysinfo:
                    res.clue("not-hypervisor", "none", "/proc/sysinfo: LPAR only", 0.4)
        compat = root.read("/proc/device-tree/hypervisor/compatible")
        if compat:
            c = compat.replace("\x00", " ").strip()
            ev = f"/proc/device-tree/hypervisor/compatible: {c}"
            if "linux,kvm" in c:
                res.clue("hypervisor", "kvm", ev, 0.9)
            elif "xen" in c:
                res.clue("hypervisor", "xen", ev, 0.9)
        if root.exists("/proc/device-tree/ibm,partition-name") and root.exists(
            "/proc/device-tree/hmc-managed?"
        ):
            res.clue(
                "hypervisor",
                "powervm",
                "/proc/device-tree/ibm,partition-name: present (HMC-managed LPAR)",
                0.85,
            )
        return res


# ---------------------------------------------------------------------------------------------
# Kernel log.

_ACPI_OEM = re.compile(r"^ACPI: (?:RSDP|XSDT|RSDT|FACP|DSDT)\b.*?\(v\d+\s+(\S+)")
_OEMS: dict[str, tuple[str, str | None, float]] = {
    "FIRECK": ("kvm", "firecracker-like", 0.5),
    "CLOUDH": ("kvm", "cloud-hypervisor", 0.5),
    "CROSVM": ("kvm", "crosvm", 0.5),
    "BOCHS": ("qemu", "qemu", 0.5),
    "BXPC": ("qemu", "qemu", 0.5),
    "Xen": ("xen", None, 0.7),
    "VBOX": ("virtualbox", None, 0.7),
    "VMWARE": ("vmware", None, 0.7),
    "PTLTD": ("vmware", None, 0.3),
    "VRTUAL": ("hyper-v", None, 0.7),
    "MSFTVM": ("hyper-v", None, 0.7),
    "PRLS": ("parallels", None, 0.7),
    "BHYVE": ("bhyve", None, 0.7),
    "AMAZON": ("kvm", "amazon-nitro", 0.4),
    "Google": ("kvm", "google", 0.4),
}

_HV_DETECTED: dict[str, tuple[str, str | None, float]] = {
    "kvm": ("kvm", None, 0.95),
    "xen pv": ("xen", "pv", 0.95),
    "xen hvm": ("xen", "hvm", 0.6),  # PVH guests print 'Xen HVM' too
    "vmware": ("vmware", None, 0.95),
    "microsoft hyper-v": ("hyper-v", None, 0.95),
    "microsoft hyperv": ("hyper-v", None, 0.95),
    "acrn": ("acrn", None, 0.95),
    "jailhouse": ("jailhouse", None, 0.95),
    "bhyve": ("bhyve", None, 0.95),
}



def _hv_detected(value: str) -> tuple[str, str | None, float]:
    """Map the value of 'Hypervisor detected: X' (tolerating truncated lines)."""
    v = value.strip().lower()
    hit = _HV_DETECTED.get(v)
    if hit:
        return hit
    for prefix, name in (("xen", "xen"), ("kvm", "kvm"), ("vmware", "vmware"),
                         ("microsoft", "hyper-v"), ("hyper", "hyper-v"), ("acrn", "acrn")):
        if v.startswith(prefix):
            return name, None, 0.8
    return (v.split()[0] if v else "unknown"), None, 0.6


# 'Booting kernel on X' is the newer wording of the Xen banner (Linux 6.x).
_BOOTING = re.compile(r"^Booting (?:paravirtualized )?kernel (with PVH extensions )?on (.+?)\s*$")

Rule = tuple[re.Pattern[str], str, str, str | None, float]
# (pattern on the message, clue kind, name, variant, weight)
_RULES: list[Rule] = [
    # 'Xen version: X.Y... (preserve-AD)' is the PV banner; newer kernels print the colon
    # form for PVH too (without preserve-AD); 'Xen version X.Y.' is the HVM/PVH one.
    (re.compile(r"^Xen version: \d+\.\d+.*\(preserve-AD\)"), "hypervisor", "xen", "pv", 0.9),
    (re.compile(r"^Xen version: \d+\.\d+(?!.*preserve-AD)"), "hypervisor", "xen", None, 0.9),
    (re.compile(r"^Xen version \d+\.\d+\."), "hypervisor", "xen", None, 0.9),
    (re.compile(r"^Xen: \[mem 0x|^Xen: [0-9a-f]{8,16} - [0-9a-f]{8,16}"), "hypervisor", "xen",
     "pv", 0.8),
    (re.compile(r"^Xen-provided physical RAM map"), "hypervisor", "xen", "pv", 0.8),
    (re.compile(r"^Xen reported: [\d.]+ MHz processor"), "hypervisor", "xen", "pv", 0.85),
    (re.compile(r"^Linux version \S+xen(U|0)?\b"), "hypervisor", "xen", "pv", 0.5),
    (re.compile(r"multicall\(s\) failed"), "hypervisor", "xen", "pv", 0.6),
    (re.compile(r"Xen HVM callback vector for event delivery is enabled"), "hypervisor", "xen",
     None, 0.8),
    (re.compile(r"^Xen Platform PCI: "), "hypervisor", "xen", "hvm", 0.8),
    (re.compile(r"xen_platform_pci|xen-platform-pci|^platform_pci: "), "hypervisor", "xen",
     "hvm", 0.6),
    (re.compile(r"^xen-vbd: registered block device|^xen-vnif: "),
     "hypervisor", "xen", "hvm", 0.6),  # RHEL 5 xen-pv-drivers (kmod-xenpv) in HVM guests
    (re.compile(r"^xen_mem: Initialising balloon driver"), "hypervisor", "xen", None, 0.7),
    (re.compile(r"Xen virtual console successfully installed"), "hypervisor", "xen", "pv",
     0.6),
    (re.compile(r"the Xen platform PCI driver have been compiled"), "hypervisor", "xen", "hvm",
     0.8),
    (re.compile(r"^ACPI in unprivileged domain disabled"), "hypervisor", "xen", "pv", 0.85),
    (re.compile(r"^ACPI in unprivileged domain disabled"), "role", "domU", None, 0.8),
    # Variant hints: they pick PV/HVM/PVH once Xen is decided, but never decide Xen.
    (re.compile(r"^[Rr]eleased \d+ page(\(s\)|s of unused memory)"), "variant", "xen", "pv",
     0.6),
    (re.compile(r"^PCI: setting up Xen PCI frontend stub|^pcifront "), "variant", "xen", "pv",
     0.6),
    (re.compile(r"^rtc_cmos \S+: (RTC can wake|registered as rtc|setting system clock)"),
     "variant", "xen", "hvm", 0.3),
    (re.compile(r"^i8042: PNP: PS/2 Controller \["), "variant", "xen", "hvm", 0.3),
    # hvmloader's ACPI tables: OEM 'Xen', table id 'HVM' (a PV domU has no ACPI at all).
    (re.compile(r"^ACPI: (?:XSDT|RSDT|FACP|DSDT)\b.*\(v\d+\s+Xen\s+HVM\b"), "hypervisor",
     "xen", "hvm", 0.85),
    # An emulated IDE disk of Xen's QEMU device model: HVM (or PVH never has one).
    (re.compile(r"^ata\d+(\.\d+)?: ATA-\d+: QEMU HARDDISK"), "variant", "xen", "hvm", 0.5),
    (re.compile(r"^xen: PV spinlocks|^xen:balloon|^xen_balloon: |^xen:events|^xen:grant_table|"
                r"^Grant tables using version|^XENBUS|^xenbus"), "hypervisor", "xen", None, 0.7),
    (re.compile(r"(Switched|Switching) to clocksource xen\b|clocksource: xen:"), "hypervisor",
     "xen", None, 0.7),
    (re.compile(r"^xen: registering gsi \d+"), "role", "dom0", None, 0.8),
    # 'xl dmesg' output (the hypervisor's own console) can only be read in dom0.
    (re.compile(r"^\(XEN\) "), "hypervisor", "xen", None, 0.9),
    (re.compile(r"^\(XEN\) "), "role", "dom0", None, 0.7),
    (re.compile(r"^xen_mcelog: /dev/mcelog registered by Xen"), "role", "dom0", None, 0.8),
    (re.compile(r"^xen_acpi_processor: "), "role", "dom0", None, 0.7),
    (re.compile(r"^Xen: Dom0|dom0_mem=|Initializing Xen dom0|xen-pciback|^xen_pciback"), "role",
     "dom0", None, 0.6),
    (re.compile(r"^kvm-clock: |clocksource: kvm-clock:|(Switched|Switching) to clocksource "
                r"kvm-clock"),
     "hypervisor", "kvm", None, 0.8),
    (re.compile(r"^kvm-guest: "), "hypervisor", "kvm", None, 0.85),
    (re.compile(r"^Hyper-V: |^hv_vmbus: |Switched to clocksource hyperv_clocksource"),
     "hypervisor", "hyper-v", None, 0.8),
    (re.compile(r"^vmw_vmci|^VMware vmxnet3|vmware-balloon|^vmw_balloon|Switched to clocksource"
                r" vmware|^vmware: "), "hypervisor", "vmware", None, 0.7),
    (re.compile(r"^vboxguest: |^vboxvideo|VBoxService"), "hypervisor", "virtualbox", None, 0.8),
    (re.compile(r"--firecracker-init|[Ff]irecracker"), "variant", "kvm", "firecracker-like",
     0.4),
    (re.compile(r"virtio_mmio virtio_mmio|virtio-mmio: Registering device"), "variant", "kvm",
     "firecracker-like", 0.3),
    (re.compile(r"\bTCG\b.*(accel|accelerator)|QEMU TCG"), "hypervisor", "qemu-tcg", "tcg", 0.5),
    (re.compile(r"^systemd\[1\]: Detected virtualization ([\w-]+)"), "hypervisor", "", None,
     0.6),
]

_CMDLINE_RULES: list[Rule] = [
    (re.compile(r"--firecracker-init"), "variant", "kvm", "firecracker-like", 0.4),
    (re.compile(r"virtio_mmio\.device="), "variant", "kvm", "firecracker-like", 0.3),
    (re.compile(r"\bxen_nopv\b"), "variant", "xen", "hvm", 0.5),
]

_SYSTEMD_NAMES = {
    "kvm": "kvm", "qemu": "qemu", "xen": "xen", "vmware": "vmware", "microsoft": "hyper-v",
    "oracle": "virtualbox", "parallels": "parallels", "bhyve": "bhyve", "acrn": "acrn",
    "zvm": "zvm", "powervm": "powervm", "amazon": "kvm", "google": "kvm", "xen-dom0": "xen",
}


class KernelLogProbe(Probe):
    name = "kernel-log"

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        source, lines = ctx.kernel_log()
        res.facts["kernel_log"] = {"source": source or None, "lines": len(lines)}
        if ctx.log_skipped:
            res.facts["kernel_log"]["skipped"] = list(ctx.log_skipped)
        if not lines:
            return res
        seen_rules: set[int] = set()
        done: set[str] = set()
        saw_hv_line = False

        def ev(line: LogLine) -> str:
            return f"{source}: {line.raw}"

        for line in lines:
            msg = line.msg
            if "hv-detected" not in done and msg.startswith("Hypervisor detected: "):
                value = msg.split(":", 1)[1].strip()
                name, variant, weight = _hv_detected(value)
                if name == "xen" and variant == "hvm":
                    # Certain about Xen; PVH guests print 'Xen HVM' too, so the type is a hint.
                    res.clue("hypervisor", name, ev(line), 0.95)
                    res.clue("variant", name, ev(line), weight, variant)
                else:
                    res.clue("hypervisor", name, ev(line), weight, variant)
                done.add("hv-detected")
                saw_hv_line = True
                continue
            m = _BOOTING.match(msg)
            if m and "booting" not in done:
                done.add("booting")
                saw_hv_line = True
                self._booting(res, m.group(1) is not None, m.group(2), ev(line))
                continue
            if "dmi" not in done and msg.startswith("DMI: "):
                done.add("dmi")
                res.clues.extend(dmi_clues(msg[5:], ev(line)))
                res.facts["dmi_line"] = msg[5:]
                continue
            if "dmi" not in done and msg.startswith("DMI not present or invalid"):
                done.add("dmi")
                res.facts["dmi_line"] = None
                res.clue("hint", "no-dmi", ev(line), 0.3)
                continue
            m = _ACPI_OEM.match(msg)
            if m and "acpi" not in done:
                oem = m.group(1).rstrip(")")
                hit = _OEMS.get(oem) or _OEMS.get(oem.upper())
                if hit:
                    done.add("acpi")
                    res.clue("hypervisor", hit[0], ev(line), hit[2], hit[1])
                continue
            for i, (rx, kind, name, variant, weight) in enumerate(_RULES):
                if i in seen_rules:
                    continue
                mm = rx.search(msg)
                if not mm:
                    continue
                seen_rules.add(i)
                if not name:  # systemd's own verdict
                    name = _SYSTEMD_NAMES.get(mm.group(1).lower(), mm.group(1).lower())
                    if mm.group(1).lower() == "none":
                        res.clue("not-hypervisor", "none", ev(line), 0.4)
                        break
                # Long lines (the kernel command line) are cut around the deciding part.
                off = line.raw.find(msg) if msg else 0
                off = max(off, 0)
                text = excerpt(f"{source}: ", line.raw, off + mm.start(), off + mm.end())
                res.clue(kind, name, text, weight, variant)
        if not saw_hv_line:
            res.facts["kernel_log"]["hypervisor_line"] = False
        return res

    @staticmethod
    def _booting(res: ProbeResult, pvh_ext: bool, on: str, evidence: str) -> None:
        target = on.strip().lower()
        if target == "bare hardware":
            # Hyper-V and VMware without paravirt ops print this too: a weak clue.
            res.clue("not-hypervisor", "none", evidence, 0.3)
        elif target == "xen":
            res.clue("hypervisor", "xen", evidence, 0.95, "pvh" if pvh_ext else "pv")
        elif target == "xen hvm":
            res.clue("hypervisor", "xen", evidence, 0.95, "hvm")
        elif target == "xen pvh":
            res.clue("hypervisor", "xen", evidence, 0.95, "pvh")
        elif target == "kvm":
            res.clue("hypervisor", "kvm", evidence, 0.95)
        elif "vmware" in target:
            res.clue("hypervisor", "vmware", evidence, 0.9)
        elif "hyper-v" in target or "hyperv" in target:
            res.clue("hypervisor", "hyper-v", evidence, 0.9)
        elif "acrn" in target:
            res.clue("hypervisor", "acrn", evidence, 0.9)
        else:
            res.clue("hypervisor", target.split()[0], evidence, 0.7)


