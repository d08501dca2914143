"""Xen: PV, HVM and PVH guests, dom0 and domU."""

from __future__ import annotations

from typing import Any

from virtbench.probes.hypervisors.definition import (
    ClueTuple,
    Hypervisor,
    PvDriver,
    dmi,
    exists,
    file,
    log,
    pci,
)


def _variant_hints(clues: list[Any], facts: dict[str, Any]) -> list[ClueTuple]:
    """The guest type from indirect signs, for logs that lost their first lines."""
    out: list[ClueTuple] = []
    dev = facts.get("devices") or {}
    emulated = sorted(
        {d for cat in ("disk", "net") for d in (dev.get(cat) or {}).get("emulated", [])}
    )
    if emulated:
        # Only HVM guests have emulated hardware (PV and PVH have none).
        ev = (dev.get("evidence") or {}).get(emulated[0], ["emulated device"])[0]
        out.append(("variant", "xen", ev, 0.5, "hvm"))
    no_dmi = [c for c in clues if c.kind == "hint" and c.name == "no-dmi"]
    acpi_xen = [
        c for c in clues if c.kind == "hypervisor" and c.name == "xen" and "ACPI:" in c.evidence
    ]
    if no_dmi and acpi_xen:
        # ACPI tables from Xen but no SMBIOS firmware: a PVH guest (HVM has DMI, PV no ACPI).
        out.append(("variant", "xen", no_dmi[0].evidence, 0.4, "pvh"))
    apic = [c for c in clues if c.kind == "hint" and c.name == "apic"]
    if apic and facts.get("dmi"):
        # A local APIC (PV guests have none) and SMBIOS firmware (PVH has none): HVM.
        out.append(("variant", "xen", apic[0].evidence, 0.45, "hvm"))
    cpuid = facts.get("cpuid") or {}
    names = {s.get("name") for s in cpuid.get("signatures", [])}
    if cpuid.get("read") and "xen" not in names:
        # HVM and PVH guests run CPUID in a trapping container: Xen's leaf is always there.
        # A PV guest executes CPUID natively (no faulting) and sees the hardware's answer.
        bit = cpuid.get("hypervisor_bit")
        what = "hypervisor bit 0" if bit is False else "no Xen leaf"
        out.append(("variant", "xen", f"{cpuid.get('source')}: {what} while Xen is present: "
                    "CPUID is not intercepted (a PV guest)", 0.7, "pv"))
    return out


XEN = Hypervisor(
    name="xen",
    title="Xen",
    systemd=("xen", "xen-dom0"),
    virt_what=("xen", "xen-dom0", "xen-domU", "xen-hvm"),
    cpuid=("XenVMMXenVMM",),
    dmi=(
        dmi(r"hvm domu", 0.9, "hvm"),
        dmi(r"hvm domu", 0.6, kind="role", name="domU"),
        dmi(r"\bxen\b", 0.8, "hvm", unless=r"hvm domu"),
    ),
    acpi_oem=(("Xen", None, 0.7),),
    detected=(("xen pv", "pv", 0.95), ("xen hvm", "hvm", 0.6)),
    detected_prefixes=("xen",),
    booting=(("xen", "pv", 0.95), ("with pvh extensions on xen", "pvh", 0.95),
             ("xen hvm", "hvm", 0.95), ("xen pvh", "pvh", 0.95)),
    log=(
        # 'Xen version: X.Y... (preserve-AD)' is the PV banner; newer kernels print the colon
        # form for PVH too (without preserve-AD); 'Xen version X.Y.' is the HVM/PVH one.
        log(r"^Xen version: \d+\.\d+.*\(preserve-AD\)", 0.9, "pv"),
        log(r"^Xen version: \d+\.\d+(?!.*preserve-AD)", 0.9),
        log(r"^Xen version \d+\.\d+\.", 0.9),
        log(r"^Xen \d+\.\d+ support found", 0.9),  # arm and arm64 guests
        log(r"^Xen: \[mem 0x|^Xen: [0-9a-f]{8,16} - [0-9a-f]{8,16}", 0.8, "pv"),
        log(r"^Xen-provided physical RAM map", 0.8, "pv"),
        log(r"^Xen reported: [\d.]+ MHz processor", 0.85, "pv"),
        log(r"^Linux version \S+xen(U|0)?\b", 0.5, "pv"),
        log(r"multicall\(s\) failed", 0.6, "pv"),
        log(r"Xen HVM callback vector for event delivery is enabled", 0.8),
        log(r"^Xen Platform PCI: ", 0.8, "hvm"),
        log(r"xen_platform_pci|xen-platform-pci|^platform_pci: ", 0.6, "hvm"),
        # RHEL 5 xen-pv-drivers (kmod-xenpv) in HVM guests
        log(r"^xen-vbd: registered block device|^xen-vnif: ", 0.6, "hvm"),
        log(r"^xen_mem: Initialising balloon driver", 0.7),
        log(r"Xen virtual console successfully installed", 0.6, "pv"),
        log(r"the Xen platform PCI driver have been compiled", 0.8, "hvm"),
        log(r"^ACPI in unprivileged domain disabled", 0.85, "pv"),
        log(r"^ACPI in unprivileged domain disabled", 0.8, kind="role", name="domU"),
        # Variant hints: they pick PV/HVM/PVH once Xen is decided, but never decide Xen.
        log(r"^[Rr]eleased \d+ page(\(s\)|s of unused memory)", 0.6, "pv", kind="variant"),
        log(r"^PCI: setting up Xen PCI frontend stub|^pcifront ", 0.6, "pv", kind="variant"),
        # Printed only by a PV domain without PCI hardware access: pvops returns early for the
        # initial domain, 2.6.18 'xenlinux' when real PCI access (dom0's) was found first.
        log(r"^PCI: setting up Xen PCI frontend stub", 0.7, kind="role", name="domU"),
        log(r"^rtc_cmos \S+: (RTC can wake|registered as rtc|setting system clock)", 0.3, "hvm",
            kind="variant"),
        log(r"^i8042: PNP: PS/2 Controller \[", 0.3, "hvm", kind="variant"),
        # hvmloader's ACPI tables: OEM 'Xen', table id 'HVM' (a PV domU has no ACPI at all).
        log(r"^ACPI: (?:XSDT|RSDT|FACP|DSDT)\b.*\(v\d+\s+Xen\s+HVM\b", 0.85, "hvm"),
        # An emulated IDE disk of Xen's QEMU device model: HVM (or PVH never has one).
        log(r"^ata\d+(\.\d+)?: ATA-\d+: QEMU HARDDISK", 0.5, "hvm", kind="variant"),
        log(r"^xen: PV spinlocks|^xen:balloon|^xen_balloon: |^xen:events|^xen:grant_table|"
            r"^Grant tables using version|^XENBUS|^xenbus", 0.7),
        log(r"(Switched|Switching) to clocksource xen\b|clocksource: xen:", 0.7),
        log(r"^xen: registering gsi \d+", 0.8, kind="role", name="dom0"),
        # 'xl dmesg' output (the hypervisor's own console) can only be read in dom0.
        log(r"^\(XEN\) ", 0.9),
        log(r"^\(XEN\) ", 0.7, kind="role", name="dom0"),
        log(r"^xen_mcelog: /dev/mcelog registered by Xen", 0.8, kind="role", name="dom0"),
        log(r"^xen_acpi_processor: ", 0.7, kind="role", name="dom0"),
        log(r"^Xen: Dom0|dom0_mem=|Initializing Xen dom0|xen-pciback|^xen_pciback", 0.6,
            kind="role", name="dom0"),
    ),
    cmdline=(log(r"\bxen_nopv\b", 0.5, "hvm", kind="variant"),),
    files=(
        file("/proc/device-tree/hypervisor/compatible", r"xen", 0.9,
             unless=r"linux,kvm"),
        # 2.6.18 'xenlinux' kernels (RHEL/CentOS 5 '-xen', SUSE '-xen') boot only as PV.
        file("/proc/version", r"^Linux version \S+[-.]?xen(U|0)?\b", 0.6, "pv", kind="variant"),
        exists("/proc/xen", 0.6, note="(Xen's guest interface)"),
        # The feature bits Xen gives this domain (hex, no 0x): XENFEAT_dom0 is bit 11 (the
        # hardware domain), read without xenfs mounted (systemd reads it first too).
        file("/sys/hypervisor/properties/features", r"^(?:0x)?[0-9a-fA-F]*[89a-fA-F]"
             r"[0-9a-fA-F]{2}\s*$", 0.9, kind="role", name="dom0"),
        file("/sys/hypervisor/properties/features", r"^(?:0x)?[0-9a-fA-F]*[0-7]"
             r"[0-9a-fA-F]{2}\s*$", 0.6, kind="role", name="domU"),
        # The xenbus bus registers only on Xen (any guest type, any kernel).
        exists("/sys/bus/xen", 0.8, note="(xenbus: registered only on Xen)"),
        # ia64 has no CPUID leaf: a xenbus without /proc/xen (which every ia64 PV kernel
        # has) is the PV-on-HVM drivers of an HVM guest (virt-what's rule too).
        file("/proc/cpuinfo", r"^arch\s*:\s*IA-64", 0.6, "hvm", kind="variant",
             unless_path="/proc/xen"),
    ),
    pci=(
        # The Xen platform PCI device (5853:0001) exists only in HVM guests' device model.
        pci(r"^5853:", 0.9, "hvm"),
        # A listed but empty PCI bus: PV (or PVH); every HVM guest has the emulated chipset.
        pci(r"^none$", 0.6, "pv", kind="variant"),
    ),
    clocksources=("xen",),
    pv_family="xen",
    pv_drivers=(
        PvDriver(
            "xen-blkfront", "disk", ("vbd", "xen_blkfront", "xen-blkfront"),
            (r"^blkfront: xvd|^blkfront: .*barrier|^xen-blkfront|^xen_blkfront|^xen-vbd: "
             r"registered block device",
             # Linux 2.6.18-xen (RHEL/CentOS 5 PV guests): the older wording; major 202: xvd.
             r"^blkif_init: reqs=|^Registering block device major 202\b|^xvd[a-z]+: xvd",
             # xenbus found the guest's virtual disk before its frontend driver loaded.
             r"^XENBUS: Device with no driver: device/vbd/",
             r"Blkfront and the Xen platform PCI driver have been compiled for this kernel: "
             r"unplug emulated disks"),
            r"^xvd[a-z]+$"),
        PvDriver(
            "xen-netfront", "net", ("vif", "xen_netfront", "xen-netfront"),
            (r"^netfront: Initialising virtual ethernet driver",
             r"^XENBUS: Device with no driver: device/vif/",
             r"Initialising Xen virtual ethernet driver|^xen_netfront|^xen-netfront|^xen-vnif",
             r"Netfront and the Xen platform PCI driver have been compiled for this kernel: "
             r"unplug emulated NICs")),
    ),
    offers=("hyper-v",),
    variants=(("pv", "pv"), ("hvm", "hvm"), ("pvh", "pvh")),
    pv_advice="xen-blkfront/xen-netfront (a kernel with CONFIG_XEN_PVHVM; do not boot with "
              "xen_emul_unplug=never)",
    advice=(
        ("variant=pv",
         "Xen PV guest: system calls, page-table updates and context switches go through "
         "the hypervisor, so kernel-entry tests (System Call, Pipe, Context Switching, "
         "Process Creation, Execl) run several times slower than on HVM/PVH on the same "
         "CPU while CPU-bound tests are equal. Convert the guest to PVH or HVM with PV "
         "drivers if you can."),
        ("role=dom0",
         "Xen dom0: this kernel is a PV (or PVH) guest too, and it serves the other "
         "guests' I/O backends; results include that background work."),
    ),
    variant_hints=_variant_hints,
    pv_only_variants=("pv", "pvh"),
)


DEFINITIONS = (XEN,)
