"""Smaller hypervisors: bhyve, ACRN, Jailhouse, QNX, Intel EVMM, Unisys s-Par, Apple's
Virtualization framework, LMHS SRE, OpenBSD vmm, User-Mode Linux, Hitachi Virtage."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, dmi, exists, file

BHYVE = Hypervisor(
    name="bhyve",
    title="FreeBSD bhyve",
    systemd=("bhyve",),
    virt_what=("bhyve",),
    cpuid=("bhyve bhyve",),
    dmi=(dmi(r"bhyve", 0.85),),
    acpi_oem=(("BHYVE", None, 0.7),),
    detected=(("bhyve", None, 0.95),),
)

ACRN = Hypervisor(
    name="acrn",
    title="ACRN",
    systemd=("acrn",),
    cpuid=("ACRNACRNACRN",),
    detected=(("acrn", None, 0.95),),
    detected_prefixes=("acrn",),
    booting_contains=("acrn",),
)

JAILHOUSE = Hypervisor(
    name="jailhouse",
    title="Jailhouse",
    cpuid=("Jailhouse",),
    detected=(("jailhouse", None, 0.95),),
)

QNX = Hypervisor(name="qnx", title="QNX hypervisor", systemd=("qnx",), cpuid=("QNXQVMBSQG",))

EVMM = Hypervisor(name="intel-evmm", title="Intel EVMM", cpuid=("EVMMEVMMEVMM",))

SPAR = Hypervisor(name="unisys-spar", title="Unisys s-Par", cpuid=("UnisysSpar64",))

APPLE = Hypervisor(
    name="apple",
    title="Apple Virtualization framework",
    systemd=("apple",),
    cpuid=("Apple VZ",),
    dmi=(dmi(r"^apple virtualization", 0.9),),
)

SRE = Hypervisor(name="sre", title="Lockheed Martin LMHS SRE", systemd=("sre",),
                 cpuid=("SRESRESRESRE",))

OPENBSD_VMM = Hypervisor(
    name="openbsd-vmm",
    title="OpenBSD vmm",
    virt_what=("vmm",),
    cpuid=("OpenBSDVMM58",),
    dmi=(dmi(r"^openbsd$", 0.8),),
)

# User-Mode Linux: the kernel is a process of another Linux (which may itself be a guest).
UML = Hypervisor(
    name="uml",
    title="User-Mode Linux",
    systemd=("uml",),
    virt_what=("uml",),
    files=(file("/proc/cpuinfo", r"^vendor_id\s*:\s*User Mode Linux", 0.95),
           file("/proc/cpuinfo", r"^model name\s*:\s*UML\b", 0.8)),
)

VIRTAGE = Hypervisor(
    name="virtage",
    title="Hitachi Virtage",
    virt_what=("virtage",),
    dmi=(dmi(r"\blpar\b", 0.7, unless_any=r"^(?!.*hitachi)"),),
)

# A hypervisor node in the device tree that no definition recognises (systemd: vm-other).
OTHER = Hypervisor(
    name="unknown",
    title="an unidentified hypervisor",
    systemd=("vm-other",),
    files=(exists("/proc/device-tree/hypervisor", 0.6,
                  note="(a hypervisor node; its kind is not known)"),),
)

DEFINITIONS = (OTHER, BHYVE, ACRN, JAILHOUSE, QNX, EVMM, SPAR, APPLE, SRE, OPENBSD_VMM, UML,
               VIRTAGE)
