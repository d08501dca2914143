"""VMware (ESXi, Workstation, Fusion), on x86 and ARM."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, PvDriver, dmi, file, log, pci

VMWARE = Hypervisor(
    name="vmware",
    title="VMware",
    systemd=("vmware",),
    virt_what=("vmware",),
    cpuid=("VMwareVMware",),
    # 'VMW' starts the firmware's strings on some releases (systemd's DMI table has it too).
    dmi=(dmi(r"vmware", 0.85), dmi(r"^vmw(\d|\b)", 0.7)),
    acpi_oem=(("VMWARE", None, 0.7), ("PTLTD", None, 0.3)),
    detected=(("vmware", None, 0.95),),
    detected_prefixes=("vmware",),
    booting_contains=("vmware",),
    # Guest-side lines only: a VMware Workstation host loads vmw_vmci too (host personality).
    log=(log(r"^vmw_vmci \S+: Found VMCI PCI device|^VMware vmxnet3|vmware-balloon|"
             r"^vmw_balloon|Switched to clocksource vmware|^vmware: ", 0.7),),
    files=(file("/proc/device-tree/hypervisor/compatible", r"vmware", 0.9),),
    # SVGA II, VMCI, vmxnet3, pvscsi, the virtual PCI bridges: VMware's own vendor id.
    pci=(pci(r"^15ad:", 0.85),),
    pv_family="vmware",
    pv_drivers=(PvDriver("vmxnet3", "net", (), (r"^vmxnet3 |^VMware vmxnet3",)),
                PvDriver("vmw_pvscsi", "disk", (), (r"^vmw_pvscsi|^VMware PVSCSI",))),
    pv_advice="vmxnet3 and pvscsi (VMware Tools / open-vm-tools)",
)

DEFINITIONS = (VMWARE,)
