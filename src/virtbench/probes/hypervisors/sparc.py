"""Oracle VM Server for SPARC (Logical Domains): every sun4v system runs on its hypervisor;
the role is the control domain, an I/O (or root) domain, or a guest domain."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, exists, file, pci

LDOMS = Hypervisor(
    name="ldoms",
    title="Oracle VM Server for SPARC (LDoms)",
    virt_what=("ldoms", "ldoms-control", "ldoms-guest", "ldoms-io", "ldoms-root"),
    files=(
        file("/proc/cpuinfo", r"^type\s*:\s*sun4v", 0.8),
        exists("/dev/mdesc", 0.8, note="(the hypervisor's machine description)"),
        # The control domain talks to the service processor through the vlds channels.
        exists("/sys/class/vlds/ctrl", 0.6, kind="role", name="control"),
        exists("/sys/class/vlds/sp", 0.6, kind="role", name="control"),
    ),
    pci=(
        # A domain with PCIe endpoint devices (direct I/O, SR-IOV functions) is an I/O
        # domain; guests have none. One that also lists PCI bridges owns a root complex and
        # its fabric: a root domain (virt-what's 'ldoms-root', also an I/O domain). The
        # control domain (its vlds channels) is a root domain too and wins.
        pci(r"^[0-9a-f]{4}:", 0.6, kind="role", name="io"),
        pci(r"^bridge$", 0.75, kind="role", name="root"),
    ),
    default_role="guest",
)

DEFINITIONS = (LDOMS,)
