"""Oracle VM Server for SPARC (Logical Domains): every sun4v system runs on its hypervisor;
the role is the control domain, an I/O (or root) domain, or a guest domain."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, exists, file, listing

LDOMS = Hypervisor(
    name="ldoms",
    title="Oracle VM Server for SPARC (LDoms)",
    virt_what=("ldoms", "ldoms-control", "ldoms-guest", "ldoms-io", "ldoms-root"),
    files=(
        file("/proc/cpuinfo", r"^type\s*:\s*sun4v", 0.8),
        exists("/dev/mdesc", 0.8, note="(the hypervisor's machine description)"),
        # The control domain talks to the service processor through the vlds channels.
        exists("/sys/class/vlds/ctrl", 0.5, kind="role", name="control"),
        exists("/sys/class/vlds/sp", 0.5, kind="role", name="control"),
        # A domain that owns PCIe devices is an I/O (or root) domain; guests have none.
        listing("/sys/bus/pci/devices", r"^[0-9a-f]{4}:", 0.6, kind="role", name="io"),
    ),
    default_role="guest",
)

DEFINITIONS = (LDOMS,)
