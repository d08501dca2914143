"""Which disk and network drivers are in use: paravirtual (virtio, Xen blkfront/netfront,
vmxnet3/pvscsi, Hyper-V netvsc/storvsc) or emulated hardware (ata_piix, 8139cp, e1000...).

Evidence: drivers with bound devices under /sys/bus/*/drivers, /sys/class/net/*/device/driver,
block device names (xvd*, vd*, hd*), /proc/modules and the kernel log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from virtbench.probes import hypervisors
from virtbench.probes.base import Context, Probe, ProbeResult, clip


@dataclass(frozen=True)
class Driver:
    name: str  # canonical name shown to users
    category: str  # disk | net
    pv: bool  # paravirtual (True) or emulated hardware (False)
    family: str  # virtio | xen | vmware | hyper-v | emulated


_D = Driver
# Emulated hardware (real hardware on bare metal: only meaningful inside a VM). The
# paravirtual drivers are in the hypervisor definitions (``pv_drivers``).
_EMULATED: dict[str, Driver] = {
    "ata_piix": _D("ata_piix", "disk", False, "emulated"),
    "pata_oldpiix": _D("ata_piix", "disk", False, "emulated"),
    "ahci": _D("ahci", "disk", False, "emulated"),
    "mptspi": _D("mptspi", "disk", False, "emulated"),
    "mptsas": _D("mptsas", "disk", False, "emulated"),
    "buslogic": _D("BusLogic", "disk", False, "emulated"),
    "megasas": _D("megasas", "disk", False, "emulated"),
    "8139cp": _D("8139cp", "net", False, "emulated"),
    "8139too": _D("8139too", "net", False, "emulated"),
    "e1000": _D("e1000", "net", False, "emulated"),
    "e1000e": _D("e1000e", "net", False, "emulated"),
    "pcnet32": _D("pcnet32", "net", False, "emulated"),
    "ne2k-pci": _D("ne2k-pci", "net", False, "emulated"),
    "ne2k_pci": _D("ne2k-pci", "net", False, "emulated"),
    "tulip": _D("tulip", "net", False, "emulated"),
    "de2104x": _D("tulip", "net", False, "emulated"),
}
DRIVERS: dict[str, Driver] = {
    key: _D(drv.name, drv.category, True, family)
    for family, drv in hypervisors.pv_drivers()
    for key in (drv.name, *drv.keys)
} | _EMULATED

_BUSES = ("pci", "virtio", "xen", "vmbus", "xen-backend")
_NOT_DEVICES = {"bind", "unbind", "uevent", "module", "new_id", "remove_id"}

# Kernel log messages that show a driver at work (pattern, driver key): the paravirtual
# drivers' from the definitions, then emulated hardware's.
_LOG_RULES: list[tuple[re.Pattern[str], str]] = [
    *((re.compile(rx), drv.name) for _, drv in hypervisors.pv_drivers() for rx in drv.log),
    (re.compile(r"^ata_piix |^scsi host\d+: ata_piix|^ata\d+(\.\d+)?: ATA-\d+: (QEMU|VBOX) "
                r"HARDDISK"), "ata_piix"),
    # Older kernels: '8139cp: 10/100 PCI Ethernet driver v1.3', 'eth0: RTL-8139C+ at ...',
    # '8139too Fast Ethernet driver 0.9.28', 'Intel(R) PRO/1000 Network Driver - version ...'.
    (re.compile(r"^8139cp[: ]|^\S+: RTL-8139C\+ at "), "8139cp"),
    (re.compile(r"^8139too[: ]"), "8139too"),
    (re.compile(r"^e1000: Intel\(R\) PRO/1000|^e1000 \d{4}:|^Intel\(R\) PRO/1000 Network "
                r"Driver"), "e1000"),
    (re.compile(r"^e1000e \d{4}:"), "e1000e"),
    (re.compile(r"^pcnet32"), "pcnet32"),
    (re.compile(r"^mptspi|^mptbase: ioc\d+: Initiating"), "mptspi"),
    (re.compile(r"^tulip\d|^de2104x"), "tulip"),
]

_BLOCK_NAMES: list[tuple[re.Pattern[str], str]] = [
    *((re.compile(drv.block), drv.name) for _, drv in hypervisors.pv_drivers() if drv.block),
    (re.compile(r"^hd[a-z]$"), "ata_piix"),
]


def _evidence_rank(line: str) -> int:
    if line.startswith("/sys/bus/") or line.startswith("/sys/class/net/"):
        return 0
    if line.startswith("/sys/block/"):
        return 2
    if line.startswith("/proc/modules"):
        return 4
    return 3 if "unplug emulated" in line else 1


class DevicesProbe(Probe):
    name = "devices"

    def collect(self, ctx: Context) -> ProbeResult:
        root = ctx.root
        res = ProbeResult()
        found: dict[str, list[str]] = {}  # canonical driver -> evidence lines

        def add(key: str, evidence: str) -> None:
            drv = DRIVERS.get(key)
            if drv is None:
                return
            lst = found.setdefault(drv.name, [])
            if len(lst) < 4:
                lst.append(clip(evidence))

        for bus in _BUSES:
            base = f"/sys/bus/{bus}/drivers"
            if not root.exists(base):
                continue
            for drv in root.listdir(base):
                if drv not in DRIVERS:
                    continue
                bound = [e for e in root.listdir(f"{base}/{drv}") if e not in _NOT_DEVICES]
                if bound:
                    add(drv, f"{base}/{drv}: bound to {', '.join(bound[:4])}")
        for ifname in root.listdir("/sys/class/net"):
            link = root.readlink(f"/sys/class/net/{ifname}/device/driver")
            if link:
                drv = link.rstrip("/").rsplit("/", 1)[-1]
                add(drv, f"/sys/class/net/{ifname}/device/driver -> {drv}")
        for dev in root.listdir("/sys/block"):
            for rx, key in _BLOCK_NAMES:
                if rx.match(dev):
                    add(key, f"/sys/block/{dev}: block device name")
        for modline in root.lines("/proc/modules"):
            mod = modline.split(" ", 1)[0]
            if mod in DRIVERS:
                add(mod, f"/proc/modules: {mod} loaded")
        source, lines = ctx.kernel_log()
        pending = list(_LOG_RULES)
        for line in lines:
            if not pending:
                break
            for item in pending:
                if item[0].search(line.msg):
                    add(item[1], f"{source}: {line.raw}")
                    pending.remove(item)
                    break

        # Best evidence first: a bound device, then the driver at work in the log, then
        # notices (Xen's 'unplug emulated disks'), then loaded modules.
        for lines_ in found.values():
            lines_.sort(key=_evidence_rank)
            del lines_[2:]
        summary: dict[str, Any] = {}
        for category in ("disk", "net"):
            pv = sorted({d.name for d in DRIVERS.values() if d.category == category and d.pv}
                        & found.keys())
            emu = sorted(
                {d.name for d in DRIVERS.values() if d.category == category and not d.pv}
                & found.keys()
            )
            state = "pv" if pv else "emulated" if emu else "unknown"
            summary[category] = {"state": state, "pv": pv, "emulated": emu}
        summary["evidence"] = found
        families = sorted({d.family for d in DRIVERS.values() if d.name in found and d.pv})
        summary["pv_families"] = families
        res.facts["devices"] = summary
        # PV drivers of one hypervisor family are evidence for that hypervisor.
        for fam, hv in hypervisors.pv_families().items():
            names = [d.name for d in DRIVERS.values() if d.family == fam and d.name in found]
            if names:
                first = found[sorted(names)[0]][0]
                res.clue("hypervisor", hv, first, 0.6)
        return res

    def advice(self, facts: dict[str, Any]) -> list[str]:
        # Advice about devices depends on the layer; see classify.layer_advice().
        return []
