"""Microsoft Hyper-V (and Azure, which runs it), and Virtual PC before it."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, PvDriver, dmi, log, pci

HYPERV = Hypervisor(
    name="hyper-v",
    title="Microsoft Hyper-V",
    systemd=("microsoft",),
    virt_what=("hyperv",),
    cpuid=("Microsoft Hv",),
    dmi=(
        dmi(r"7783-7084-3265-9085-8269-3286-77", 0.95, kind="cloud", name="azure"),
        dmi(r"microsoft corporation.*virtual machine", 0.85),
        # The same two strings in separate files (sys_vendor, product_name), and the
        # firmware's 'Hyper-V UEFI Release' version.
        dmi(r"^virtual machine$", 0.85, unless_any=r"^(?!.*microsoft corporation)"),
        dmi(r"^hyper-v", 0.85),
    ),
    acpi_oem=(("VRTUAL", None, 0.7), ("MSFTVM", None, 0.7)),
    detected=(("microsoft hyper-v", None, 0.95), ("microsoft hyperv", None, 0.95)),
    detected_prefixes=("microsoft", "hyper"),
    booting_contains=("hyper-v", "hyperv"),
    log=(log(r"^Hyper-V: |^hv_vmbus: |Switched to clocksource hyperv_clocksource", 0.8),),
    pci=(pci(r"^1414:5353$", 0.85),),  # Hyper-V's synthetic VGA (generation 1 guests)
    clocksources=("hyperv_clocksource_tsc_page", "hyperv_clocksource_msr"),
    pv_family="hyper-v",
    pv_drivers=(
        PvDriver("hv_netvsc", "net", (),
                 (r"^hv_netvsc|hv_vmbus: registering driver hv_netvsc",)),
        PvDriver("hv_storvsc", "disk", (), (r"^hv_storvsc|hv_vmbus: registering driver "
                                           r"hv_storvsc|^scsi host\d+: storvsc",)),
    ),
    pv_advice="hv_netvsc/hv_storvsc (synthetic devices instead of legacy ones)",
    without_cpu_bit="virtualpc",
)

# Microsoft Virtual PC / Virtual Server: Hyper-V's firmware strings ('Microsoft Corporation',
# 'Virtual Machine') on a CPU that shows no hypervisor (virt-what's 'virtualpc' fact). It has
# no rule of its own: Hyper-V's clues go to it when CPUID says no hypervisor.
VIRTUALPC = Hypervisor(
    name="virtualpc",
    title="Microsoft Virtual PC",
    virt_what=("virtualpc",),
)

DEFINITIONS = (HYPERV, VIRTUALPC)
