"""Probes that find the hypervisor: CPUID, cpuinfo, /sys/hypervisor + /proc/xen, DMI, the
kernel log, and the s390/POWER platform files."""

from __future__ import annotations

import os
import re

from virtbench.probes import cpuid as cpuid_mod
from virtbench.probes import hypervisors as hv
from virtbench.probes.base import Clue, Context, LogLine, Probe, ProbeResult, clip, excerpt

# ---------------------------------------------------------------------------------------------
# DMI: used for /sys/class/dmi/id/* and for the kernel's 'DMI: ...' boot line.


def dmi_clues(text: str, evidence: str, everything: str = "") -> list[Clue]:
    """Clues from one DMI string (or the kernel's 'DMI:' line); ``everything`` is all DMI
    strings together (for rules that another string cancels, e.g. an AWS '*.metal')."""
    out: list[Clue] = []
    for d, rule in hv.rules("dmi"):
        if rule.match(text, everything or text):
            kind, name, weight, variant = hv.meaning(d, rule)
            out.append(Clue(kind, name, clip(evidence), weight, variant))
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


# The SMBIOS BIOS Information structure (type 0) as the firmware gave it (readable by root).
SMBIOS_BIOS = "/sys/firmware/dmi/entries/0-0/raw"


def smbios_vm_bit(ctx: Context, res: ProbeResult) -> None:
    """Bit 4 of the BIOS characteristics extension byte 2 (offset 0x13 of the type 0
    structure, SMBIOS 2.4+): the firmware says this is a virtual machine. Unset proves
    nothing (SeaBIOS leaves it clear under QEMU)."""
    root = ctx.root
    if root.live and not os.access(root.p(SMBIOS_BIOS), os.R_OK):
        return  # root only: not a source an unprivileged run should list as missing
    data = root.read_bytes(SMBIOS_BIOS, 4096)
    if data is None or len(data) < 20 or data[1] < 20:
        return  # a structure too short to have the byte (its length is byte 1)
    if data[19] & 0x10:
        res.clue("hypervisor", "unknown", f"{SMBIOS_BIOS}: BIOS characteristics extension "
                 "byte 2 bit 4 set (the firmware says: a virtual machine)", 0.6)


class DmiProbe(Probe):
    name = "dmi"

    def available(self, ctx: Context) -> bool:
        return ctx.root.exists("/sys/class/dmi/id") or ctx.root.exists(SMBIOS_BIOS)

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        smbios_vm_bit(ctx, res)
        values: dict[str, str] = {}
        for fname in _DMI_FILES:
            value = ctx.root.read_line(f"/sys/class/dmi/id/{fname}")
            if value:
                values[fname] = value
        if not values:
            return res
        res.facts["dmi"] = values
        # One clue per deciding file keeps the evidence precise.
        joined = " ".join(values.values())
        for fname, value in values.items():
            for clue in dmi_clues(value, f"/sys/class/dmi/id/{fname}: {value}", joined):
                if fname == "chassis_asset_tag" and clue.kind != "cloud":
                    continue  # set by the owner: only clouds' own tags count
                res.clues.append(clue)
        if not any(c.kind == "hypervisor" for c in res.clues):
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
            if (not parsed.leaves and not parsed.found and parsed.hypervisor_bit is None
                    and not parsed.no_signature):
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
            else:
                res.clue("hypervisor", name, ev, 0.95, cpuid_mod.variant_of(sig))
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
            if "apic" not in flags and {"fpu", "tsc"} <= flags:
                # Old Xen PV kernels print no 'hypervisor' flag either; no local APIC is PV's
                # mark (a variant hint: it never decides Xen).
                res.clue("variant", "xen", "/proc/cpuinfo: no 'apic' flag (a Xen PV guest "
                         "if Xen is present)", 0.6, "pv")
        if "vendor_id" in first and "apic" in flags:
            res.clue("hint", "apic", "/proc/cpuinfo: 'apic' flag (a local APIC: not a Xen PV "
                     "guest)", 0.0)
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
        for d, rule in hv.rules("cmdline"):
            m = rule.match(line)
            if m:
                text = excerpt("/proc/cmdline: ", line, m.start(), m.end(), 160)
                kind, name, weight, variant = hv.meaning(d, rule)
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
    """Files that name a platform: the device tree, /proc/sysinfo (s390), lparcfg (POWER),
    cpuinfo, /proc/version... (the ``files`` rules of every hypervisor definition)."""

    name = "platform"

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        texts: dict[str, str | None] = {}
        for d, rule in hv.rules("files"):
            if rule.unless_path and ctx.root.exists(rule.unless_path):
                continue
            found = self._match(ctx, rule, texts)
            if found is not None:
                kind, name, weight, variant = hv.meaning(d, rule)
                res.clue(kind, name, f"{rule.path}: {found}", weight, variant)
        return res

    @staticmethod
    def _match(ctx: Context, rule: hv.Rule, texts: dict[str, str | None]) -> str | None:
        """What of ``rule.path`` matched (shown as evidence), or ``None``."""
        root = ctx.root
        if rule.exists:
            note = rule.pattern.replace("\\", "")
            return f"present {note}".strip() if root.exists(rule.path) else None
        if rule.listing:
            names = [n for n in root.listdir(rule.path) if rule.rx.search(n)]
            return f"contains {', '.join(names[:3])}" if names else None
        if rule.path not in texts:
            raw = root.read(rule.path, 1024 * 1024)
            texts[rule.path] = raw.replace("\x00", " ") if raw is not None else None
        text = texts[rule.path]
        m = rule.match(text) if text else None
        if m is None or text is None:
            return None
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        return text[start: end if end >= 0 else None].strip()


class PciProbe(Probe):
    """PCI vendor:device ids (/sys/bus/pci/devices, /proc/bus/pci/devices): the virtual
    devices a hypervisor's device model has (the ``pci`` rules of every definition)."""

    name = "pci"

    def available(self, ctx: Context) -> bool:
        return ctx.root.exists("/sys/bus/pci/devices") or ctx.root.exists("/proc/bus/pci/devices")

    def collect(self, ctx: Context) -> ProbeResult:
        res = ProbeResult()
        ids, bridges, source = self._devices(ctx)
        if source is None:
            return res
        words = sorted(ids) + (["bridge"] if bridges else []) + ([] if ids else ["none"])
        res.facts["pci"] = {"source": source, "ids": sorted(ids)[:64],
                            "bridges": sorted(bridges)[:8]}
        for d, rule in hv.rules("pci"):
            hits = [w for w in words if rule.match(w)]
            if not hits:
                continue
            if hits == ["none"]:
                what = "no device listed"
            elif hits == ["bridge"]:
                what = "PCI bridges " + ", ".join(sorted(bridges)[:3])
            else:
                what = ", ".join(hits[:3]) + (f" (+{len(hits) - 3} more)" if len(hits) > 3 else "")
            kind, name, weight, variant = hv.meaning(d, rule)
            res.clue(kind, name, f"{source}: {what}", weight, variant)
        return res

    @staticmethod
    def _devices(ctx: Context) -> tuple[set[str], set[str], str | None]:
        """(vendor:device ids, bridges, the source read) or no source."""
        root = ctx.root
        ids: set[str] = set()
        bridges: set[str] = set()
        if root.exists("/sys/bus/pci/devices"):
            for name in root.listdir("/sys/bus/pci/devices"):
                base = f"/sys/bus/pci/devices/{name}"
                vendor = (root.read_line(f"{base}/vendor") or "").lower().removeprefix("0x")
                device = (root.read_line(f"{base}/device") or "").lower().removeprefix("0x")
                cls = (root.read_line(f"{base}/class") or "").lower().removeprefix("0x")
                if len(vendor) == 4:
                    ids.add(f"{vendor}:{device}" if len(device) == 4 else f"{vendor}:????")
                if cls.startswith("0604"):  # a PCI-to-PCI bridge (a root port, a switch)
                    bridges.add(f"{name} (class {cls})")
            return ids, bridges, "/sys/bus/pci/devices"
        text = root.read("/proc/bus/pci/devices")
        if text is None:
            return ids, bridges, None
        buses: set[str] = set()
        for line in text.splitlines():
            fields = line.split("\t")
            if len(fields) < 3 or len(fields[1]) != 8:
                continue
            ids.add(f"{fields[1][:4].lower()}:{fields[1][4:].lower()}")
            buses.add(fields[0][:2])
            if fields[-1].strip() == "pcieport":
                bridges.add(f"{fields[0]} (pcieport)")
        if len(buses) > 1:
            # Devices behind more than one bus number: bridges this system enumerated.
            bridges.add(f"buses {', '.join(sorted(buses)[:4])}")
        return ids, bridges, "/proc/bus/pci/devices"


# ---------------------------------------------------------------------------------------------
# Kernel log.

_ACPI_OEM = re.compile(r"^ACPI: (?:RSDP|XSDT|RSDT|FACP|DSDT)\b.*?\(v\d+\s+(\S+)")
_SYSTEMD = re.compile(r"^systemd\[1\]: Detected virtualization ([\w-]+)")


def _hv_detected(value: str) -> tuple[str, str | None, float]:
    """Map the value of 'Hypervisor detected: X' (tolerating truncated lines)."""
    v = value.strip().lower()
    hit = hv.detected_values().get(v)
    if hit:
        return hit
    for prefix, name in hv.detected_prefixes():
        if v.startswith(prefix):
            return name, None, 0.8
    return (v.split()[0] if v else "unknown"), None, 0.6


# 'Booting kernel on X' is the newer wording of the Xen banner (Linux 6.x).
_BOOTING = re.compile(r"^Booting (?:paravirtualized )?kernel (with PVH extensions )?on (.+?)\s*$")


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
        done: set[str] = set()
        seen_rules: set[int] = set()
        for line in lines:
            if not self._banner(res, line, f"{source}: {line.raw}", done):
                self._rules(res, line, source, seen_rules)
        if not done & {"hv-detected", "booting"}:
            res.facts["kernel_log"]["hypervisor_line"] = False
        return res

    def _banner(self, res: ProbeResult, line: LogLine, ev: str, done: set[str]) -> bool:
        """The one-per-boot lines: 'Hypervisor detected', 'Booting ... on', DMI, ACPI OEM."""
        msg = line.msg
        if "hv-detected" not in done and msg.startswith("Hypervisor detected: "):
            name, variant, weight = _hv_detected(msg.split(":", 1)[1])
            if variant and weight < 0.9:
                # Certain about the hypervisor, the type is a hint (PVH guests print 'Xen HVM').
                res.clue("hypervisor", name, ev, 0.95)
                res.clue("variant", name, ev, weight, variant)
            else:
                res.clue("hypervisor", name, ev, weight, variant)
            done.add("hv-detected")
            return True
        m = _BOOTING.match(msg)
        if m and "booting" not in done:
            done.add("booting")
            target = m.group(2).strip().lower()
            self._booting(res, f"with pvh extensions on {target}" if m.group(1) else target, ev)
            return True
        if "dmi" not in done and msg.startswith("DMI: "):
            done.add("dmi")
            res.clues.extend(dmi_clues(msg[5:], ev))
            res.facts["dmi_line"] = msg[5:]
            return True
        if "dmi" not in done and msg.startswith("DMI not present or invalid"):
            done.add("dmi")
            res.facts["dmi_line"] = None
            res.clue("hint", "no-dmi", ev, 0.3)
            return True
        m = _ACPI_OEM.match(msg)
        if m and "acpi" not in done:
            oem = m.group(1).rstrip(")")
            hit = hv.acpi_oems().get(oem) or hv.acpi_oems().get(oem.upper())
            if hit:
                done.add("acpi")
                res.clue("hypervisor", hit[0], ev, hit[2], hit[1])
            return True
        return False

    @staticmethod
    def _rules(res: ProbeResult, line: LogLine, source: str, seen: set[int]) -> None:
        """Every definition's log rules (each fires once), then systemd's own verdict."""
        msg = line.msg
        off = max(line.raw.find(msg) if msg else 0, 0)
        for i, (d, rule) in enumerate(hv.rules("log")):
            if i in seen:
                continue
            mm = rule.match(msg)
            if mm:
                seen.add(i)
                # Long lines (the kernel command line) are cut around the deciding part.
                text = excerpt(f"{source}: ", line.raw, off + mm.start(), off + mm.end())
                kind, name, weight, variant = hv.meaning(d, rule)
                res.clue(kind, name, text, weight, variant)
        if -1 not in seen and (mm := _SYSTEMD.search(msg)):
            seen.add(-1)
            sid = mm.group(1).lower()
            if sid == "none":
                res.clue("not-hypervisor", "none", f"{source}: {line.raw}", 0.4)
                return
            text = excerpt(f"{source}: ", line.raw, off + mm.start(), off + mm.end())
            res.clue("hypervisor", hv.systemd_names().get(sid, sid), text, 0.6)

    @staticmethod
    def _booting(res: ProbeResult, target: str, evidence: str) -> None:
        if target == "bare hardware":
            # Hyper-V and VMware without paravirt ops print this too: a weak clue.
            res.clue("not-hypervisor", "none", evidence, 0.3)
            return
        hit = hv.booting_targets().get(target)
        target = target.removeprefix("with pvh extensions on ")
        if hit:
            res.clue("hypervisor", hit[0], evidence, hit[2], hit[1])
            return
        for d in hv.REGISTRY:
            if any(part in target for part in d.booting_contains):
                res.clue("hypervisor", d.name, evidence, 0.9)
                return
        res.clue("hypervisor", target.split()[0] if target.split() else "unknown", evidence, 0.7)
