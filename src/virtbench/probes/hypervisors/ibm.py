"""IBM: z/VM and KVM on IBM Z (/proc/sysinfo), PowerVM LPARs (device tree)."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, exists, file

ZVM = Hypervisor(
    name="zvm",
    title="IBM z/VM",
    systemd=("zvm",),
    virt_what=("ibm_systemz-zvm",),
    files=(
        file("/proc/sysinfo", r"Control Program:.*z/VM", 0.95),
        file("/proc/sysinfo", r"LPAR", 0.4, kind="not-hypervisor", name="none",
             unless=r"Control Program:"),
    ),
)

POWERVM = Hypervisor(
    name="powervm",
    title="IBM PowerVM",
    systemd=("powervm",),
    files=(exists("/proc/device-tree/hmc-managed?", 0.85, note="(HMC-managed LPAR)"),),
)

DEFINITIONS = (ZVM, POWERVM)
