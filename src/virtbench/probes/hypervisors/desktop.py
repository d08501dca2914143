"""Desktop hypervisors: Oracle VirtualBox and Parallels (each offers KVM's and Hyper-V's
paravirtual interfaces, which do not make it KVM or Hyper-V)."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, dmi, log, pci

VIRTUALBOX = Hypervisor(
    name="virtualbox",
    title="Oracle VirtualBox",
    systemd=("oracle",),
    virt_what=("virtualbox",),
    cpuid=("VBoxVBoxVBox",),
    dmi=(dmi(r"innotek|virtualbox", 0.85),),
    acpi_oem=(("VBOX", None, 0.7),),
    log=(log(r"^vboxguest: |^vboxvideo|VBoxService", 0.8),),
    pci=(pci(r"^80ee:(cafe|beef)$", 0.9),),  # VirtualBox Guest Service, VirtualBox VGA
    offers=("kvm", "hyper-v"),
)

PARALLELS = Hypervisor(
    name="parallels",
    title="Parallels",
    systemd=("parallels",),
    virt_what=("parallels",),
    cpuid=("prl hyperv", "lrpepyh  vr"),
    dmi=(dmi(r"parallels", 0.85),),
    acpi_oem=(("PRLS", None, 0.7),),
    pci=(pci(r"^1ab8:", 0.85),),  # Parallels' virtual devices
    offers=("kvm", "hyper-v"),
)

DEFINITIONS = (VIRTUALBOX, PARALLELS)
