"""The VM layer: QEMU guests booted from a host kernel and an initramfs virtbench builds.

- ``kernel``: find a guest kernel (``--kernel``, ``$VIRTBENCH_KERNEL``, ``/boot/vmlinuz-*``).
- ``initramfs``: cpio (newc) archive with static busybox, the ``/init`` agent, workloads.
- ``build``: compile ``vm/c/*.c`` workloads statically with the host's cc (cached).
- ``accel``: KVM only if a guest really boots under it (probed, cached per host boot), else TCG.
- ``qemu``: ``Guest`` (one QEMU process, QMP, serial data port) and ``VMSession`` (cleanup).
- ``migration``: live migration between two QEMU processes, measured.

See docs/vm.md.
"""

from __future__ import annotations

from virtbench.vm.accel import AccelChoice, choose
from virtbench.vm.kernel import find_kernel
from virtbench.vm.qemu import Guest, GuestConfig, GuestError, VMSession, find_qemu, session

__all__ = [
    "AccelChoice",
    "Guest",
    "GuestConfig",
    "GuestError",
    "VMSession",
    "choose",
    "find_kernel",
    "find_qemu",
    "session",
]
