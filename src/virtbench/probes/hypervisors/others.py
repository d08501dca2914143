"""Smaller hypervisors: bhyve, ACRN, Jailhouse, QNX, Intel EVMM, Unisys s-Par."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, dmi

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

DEFINITIONS = (BHYVE, ACRN, JAILHOUSE, QNX, EVMM, SPAR)
