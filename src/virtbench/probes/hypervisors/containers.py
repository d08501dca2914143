"""Containers known by a file rather than by the container manager's markers: Linux-VServer
guests (a VxID in /proc/self/status) and illumos LX branded zones (the BrandZ kernel)."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, file

VSERVER = Hypervisor(
    name="linux-vserver",
    title="Linux-VServer",
    kind="container",
    virt_what=("linux_vserver", "linux_vserver-guest"),
    # VxID 0 is the host itself.
    files=(file("/proc/self/status", r"^VxID:\s*[1-9]\d*", 0.9, kind="container"),),
)

ILLUMOS_LX = Hypervisor(
    name="illumos-lx",
    title="illumos LX branded zone",
    kind="container",
    virt_what=("illumos-lx",),
    files=(file("/proc/version", r"BrandZ virtual linux", 0.95, kind="container"),),
)

DEFINITIONS = (VSERVER, ILLUMOS_LX)
