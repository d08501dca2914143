"""Turn clues into layers (outermost first), each with a confidence and its deciding evidence."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from virtbench.probes.base import Clue
from virtbench.probes.model import Layer

MAX_EVIDENCE_LINES = 8

VARIANT_TEXT = {
    "firecracker-like": "firecracker-like micro-VM",
    "cloud-hypervisor": "cloud-hypervisor",
    "crosvm": "crosvm",
    "amazon-nitro": "AWS Nitro",
    "google": "Google Compute Engine",
    "qemu": "qemu",
    "tcg": "pure emulation",
    "pv": "pv",
    "hvm": "hvm",
    "pvh": "pvh",
}

# Unreadable sources that weaken each kind of verdict.
_HV_SOURCES = ("/dev/kmsg", "/dmesg.txt", "cpuid", "/cpuid.txt", "/sys/class/dmi",
               "/sys/hypervisor", "/proc/xen", "/proc/cpuinfo")
_CT_SOURCES = ("/proc/1/environ", "/proc/1/cgroup", "/proc/self/", "/run/", "/.dockerenv")


# (real hypervisor, interfaces it may offer), most specific first.
_OFFERS: list[tuple[str, tuple[str, ...]]] = [
    ("virtualbox", ("kvm", "hyper-v")),
    ("parallels", ("kvm", "hyper-v")),
    ("xen", ("hyper-v",)),
    ("kvm", ("hyper-v",)),
]


def combine(weights: list[float]) -> float:
    p = 1.0
    for w in weights:
        p *= 1.0 - max(0.0, min(1.0, w))
    return 1.0 - p


_SAME_SOURCE = {  # entries that describe one missing source count once
    "/dev/kmsg": "kernel log", "/dmesg.txt": "kernel log", "/var/log/": "kernel log",
    "cpuid": "cpuid", "/cpuid.txt": "cpuid",
}


def _penalty(unreadable: list[str], prefixes: tuple[str, ...]) -> tuple[float, list[str]]:
    hits = [u for u in unreadable if u.startswith(prefixes)]
    groups = {
        next((g for pre, g in _SAME_SOURCE.items() if u.startswith(pre)), u.split(":", 1)[0])
        for u in hits
    }
    return 0.9 ** len(groups), hits


def _evidence(clues: list[Clue], limit: int = MAX_EVIDENCE_LINES) -> list[str]:
    out: list[str] = []
    for c in sorted(clues, key=lambda c: -c.weight):
        if c.evidence not in out:
            out.append(c.evidence)
        if len(out) >= limit:
            break
    return out


def _conf(x: float) -> float:
    return round(max(0.05, min(0.99, x)), 2)


def classify(
    clues: list[Clue], facts: dict[str, Any], unreadable: list[str]
) -> list[Layer]:
    layers = [_hypervisor_layer(clues, facts, unreadable)]
    ct = _container_layer(clues, facts, unreadable)
    if ct is not None:
        layers.append(ct)
    return layers


def _hypervisor_layer(clues: list[Clue], facts: dict[str, Any], unreadable: list[str]) -> Layer:
    hv = [c for c in clues if c.kind == "hypervisor"]
    by_name: dict[str, list[Clue]] = defaultdict(list)
    for c in hv:
        by_name[c.name].append(c)
    score = {n: combine([c.weight for c in cs]) for n, cs in by_name.items()}
    unknown = score.pop("unknown", 0.0)
    qemu = score.pop("qemu", 0.0)
    cpuid_names = {
        s.get("name") for s in (facts.get("cpuid") or {}).get("signatures", [])
    }
    if qemu:
        if score.get("kvm", 0.0) >= 0.5:
            by_name["kvm"].extend(by_name["qemu"])
        elif not any(score.get(n, 0.0) >= 0.5 for n in score if n != "qemu-tcg"):
            # QEMU firmware but no KVM anywhere: pure emulation. Stronger when CPUID was read.
            extra = 0.3 if (facts.get("cpuid") or {}).get("read") else 0.0
            score["qemu-tcg"] = combine([score.get("qemu-tcg", 0.0), qemu, extra])
            by_name["qemu-tcg"].extend(by_name["qemu"])
    # Hypervisors offer other hypervisors' paravirtual interfaces (VirtualBox offers KVM's and
    # Hyper-V's, Xen and KVM offer Hyper-V's): the firmware-named one is the real one.
    interface_of: dict[str, str] = {}
    for real, offered in _OFFERS:
        if score.get(real, 0.0) >= 0.8:
            for other in offered:
                if other in score and other != real:
                    score.pop(other)
                    interface_of[other] = real
                    by_name[real].extend(by_name[other])
    named = {n: s for n, s in score.items() if n != "none"}
    best = max(named, key=lambda n: named[n]) if named else None
    factor, missing = _penalty(unreadable, _HV_SOURCES)

    if best is None or named[best] < 0.5:
        if unknown >= 0.5:
            return Layer(
                kind="hypervisor",
                name="unknown",
                variant=None,
                confidence=_conf(unknown * factor),
                evidence=_evidence(by_name["unknown"]),
                details={"unreadable_sources": missing} if missing else {},
            )
        neg = [c for c in clues if c.kind == "not-hypervisor"]
        conf = combine([c.weight for c in neg]) if neg else 0.5
        # Clues that were too weak to decide still count against bare metal.
        if best is not None:
            conf *= 1.0 - named[best]
        return Layer(
            kind="hardware",
            name="bare-metal",
            variant=None,
            confidence=_conf(conf * factor),
            evidence=_evidence(neg) or ["no hypervisor signature in any readable source"],
            details={"unreadable_sources": missing} if missing else {},
        )

    chosen = by_name[best]
    conf = combine([named[best], 0.5 * unknown]) * factor
    # Competing hypervisors lower confidence (e.g. DMI says one thing, CPUID another).
    rivals = [s for n, s in named.items() if n != best and s >= 0.5]
    if rivals:
        conf *= 1.0 - 0.5 * max(rivals)
    if best == "qemu-tcg" and "kvm" not in cpuid_names and not cpuid_names:
        conf *= 0.9
    hints = [c for c in clues if c.kind == "variant" and c.name == best]
    if best == "xen":
        hints.extend(_xen_variant_hints(clues, facts))
    variants: dict[str, list[float]] = defaultdict(list)
    for c in chosen + hints:
        if c.variant:
            variants[c.variant].append(c.weight)
    variant = (
        max(variants, key=lambda v: (max(variants[v]), sum(variants[v]))) if variants else None
    )
    if best == "qemu-tcg":
        variant = "tcg"
        log = facts.get("kernel_log") or {}
        if log.get("source") and log.get("hypervisor_line") is False:
            chosen.append(Clue("hypervisor", best, f"{log['source']}: no 'Hypervisor detected' "
                               "line: the kernel found no KVM (or other) hypervisor", 0.9))
        cpuid = facts.get("cpuid") or {}
        if cpuid.get("read") and not cpuid_names:
            chosen.append(Clue("hypervisor", best, f"{cpuid.get('source')}: no KVM signature "
                               "in the hypervisor leaves", 0.9))
    offering = sorted(o for o, r in interface_of.items() if r == best)
    if offering and best in ("virtualbox", "parallels"):
        variant = f"{offering[0]}-paravirt"
    details: dict[str, Any] = {}
    evidence_clues = [
        c for c in chosen
        if c.name == best and (c.variant in (None, variant) or c.variant == "qemu")
    ]
    evidence_clues += [c for c in hints if c.variant == variant]
    # Lines of an interface this hypervisor offers (KVM's CPUID leaf under VirtualBox) or of
    # QEMU's firmware under KVM come after its own.
    folded = [c for c in chosen if c.name != best]
    if folded:
        own = _evidence(evidence_clues, 5)
        evidence_clues = [Clue(c.kind, c.name, c.evidence, 2.0 - i / 100) for i, c in
                          enumerate(sorted(evidence_clues, key=lambda c: -c.weight))
                          if c.evidence in own]
        evidence_clues += [Clue(c.kind, c.name, c.evidence, min(c.weight, 0.99))
                           for c in folded]
    extra_clues: list[Clue] = []  # role, cloud and device lines: always shown
    # Role (Xen dom0/domU) and cloud.
    roles = [c for c in clues if c.kind == "role"]
    if best == "xen" and roles:
        role_scores: dict[str, list[Clue]] = defaultdict(list)
        for c in roles:
            role_scores[c.name].append(c)
        role = max(role_scores, key=lambda r: combine([c.weight for c in role_scores[r]]))
        if role == "dom0" or combine([c.weight for c in role_scores[role]]) >= 0.6:
            details["role"] = role
            extra_clues.extend(sorted(role_scores[role], key=lambda c: -c.weight)[:3])
    clouds = [c for c in clues if c.kind == "cloud"]
    if clouds:
        top = max(clouds, key=lambda c: c.weight)
        details["cloud"] = top.name
        extra_clues.append(top)
    dev = facts.get("devices") or {}
    if dev:
        details["disk"] = (dev.get("disk") or {}).get("state")
        details["net"] = (dev.get("net") or {}).get("state")
        details["pv_drivers"] = sorted(
            set((dev.get("disk") or {}).get("pv", []) + (dev.get("net") or {}).get("pv", []))
        )
        # Emulated devices count only where no PV driver serves that category (Xen HVM
        # guests keep ata_piix for the CD-ROM after the disks were unplugged).
        details["emulated_devices"] = sorted(
            {
                drv
                for cat in ("disk", "net")
                if (dev.get(cat) or {}).get("state") == "emulated"
                for drv in (dev.get(cat) or {}).get("emulated", [])
            }
        )
        devs_ev = dev.get("evidence") or {}
        for drv in details["pv_drivers"][:2] + details["emulated_devices"][:2]:
            for line in devs_ev.get(drv, [])[:1]:
                extra_clues.append(Clue("device", drv, line, 0.0))
    if missing:
        details["unreadable_sources"] = missing
    return Layer(
        kind="hypervisor",
        name=best,
        variant=variant,
        confidence=_conf(conf),
        evidence=_evidence(evidence_clues, 7)
        + [e for e in _evidence(extra_clues, 7) if e not in _evidence(evidence_clues, 7)],
        details=details,
    )


def _xen_variant_hints(clues: list[Clue], facts: dict[str, Any]) -> list[Clue]:
    """Xen guest type from indirect signs, for logs that lost their first lines."""
    out: list[Clue] = []
    dev = facts.get("devices") or {}
    emulated = sorted(
        {d for cat in ("disk", "net") for d in (dev.get(cat) or {}).get("emulated", [])}
    )
    if emulated:
        # Only HVM guests have emulated hardware (PV and PVH have none).
        ev = (dev.get("evidence") or {}).get(emulated[0], ["emulated device"])[0]
        out.append(Clue("variant", "xen", ev, 0.5, "hvm"))
    no_dmi = [c for c in clues if c.kind == "hint" and c.name == "no-dmi"]
    acpi_xen = [
        c for c in clues if c.kind == "hypervisor" and c.name == "xen" and "ACPI:" in c.evidence
    ]
    if no_dmi and acpi_xen:
        # ACPI tables from Xen but no SMBIOS firmware: a PVH guest (HVM has DMI, PV no ACPI).
        out.append(Clue("variant", "xen", no_dmi[0].evidence, 0.4, "pvh"))
    return out


def _container_layer(
    clues: list[Clue], facts: dict[str, Any], unreadable: list[str]
) -> Layer | None:
    ct = [c for c in clues if c.kind == "container"]
    if not ct:
        return None
    total = combine([c.weight for c in ct])
    if total < 0.5:
        return None
    by_name: dict[str, list[Clue]] = defaultdict(list)
    for c in ct:
        by_name[c.name].append(c)
    score = {n: combine([c.weight for c in cs]) for n, cs in by_name.items()}
    specific = {n: s for n, s in score.items() if n != "generic"}
    details: dict[str, Any] = {}
    variant: str | None = None
    if "kubernetes" in specific:
        name = "kubernetes"
        runtimes = [n for n in ("docker", "containerd", "podman") if n in specific]
        if runtimes:
            details["runtime"] = max(runtimes, key=lambda n: specific[n])
    elif specific:
        name = max(specific, key=lambda n: specific[n])
    else:
        name = "generic"
    if name == "wsl":
        vs = [c.variant for c in by_name["wsl"] if c.variant]
        variant = vs[0] if vs else None
    iso = facts.get("isolation") or {}
    details["isolation"] = iso
    conf = total
    extra: list[Clue] = []
    if iso.get("pid") == "initial" and name not in ("wsl", "openvz"):
        variant = "markers-only"
        conf *= 0.75
        pid1 = iso.get("pid1")
        shown = f" (PID 1 is {pid1})" if pid1 else ""
        extra.append(
            Clue(
                "container",
                name,
                f"/proc/self/ns/pid: the initial PID namespace{shown}: no PID isolation",
                0.01,
            )
        )
    factor, missing = _penalty(unreadable, _CT_SOURCES)
    if missing:
        details["unreadable_sources"] = missing
    return Layer(
        kind="container",
        name=name,
        variant=variant,
        confidence=_conf(conf * factor),
        evidence=_evidence(ct, MAX_EVIDENCE_LINES - 1) + [c.evidence for c in extra],
        details=details,
    )


def describe(layer: Layer) -> str:
    """One summary fragment, e.g. 'kvm (firecracker-like micro-VM)'."""
    d = layer.details
    if layer.kind == "hardware":
        return "bare metal"
    if layer.kind == "container":
        if layer.name == "wsl":
            return f"wsl ({layer.variant})" if layer.variant else "wsl"
        label = "kubernetes pod" if layer.name == "kubernetes" else layer.name
        if d.get("runtime"):
            label += f", {d['runtime']}"
        if layer.variant == "markers-only":
            return f"container ({label}-like markers)"
        return f"container ({label})"
    parts: list[str] = []
    name = layer.name
    if layer.name == "xen" and d.get("role") == "dom0":
        name = "xen dom0"
    if layer.variant:
        parts.append(VARIANT_TEXT.get(layer.variant, layer.variant))
    if layer.name != "qemu-tcg":
        pv = d.get("pv_drivers") or []
        emu = d.get("emulated_devices") or []
        disk, net = d.get("disk"), d.get("net")
        if layer.name == "xen" and layer.variant == "pv":
            pass  # PV guests have nothing but PV devices
        elif "emulated" in (disk, net):
            parts.append("emulated devices: " + ", ".join(emu))
        elif pv and (layer.name != "kvm" or layer.variant != "firecracker-like"):
            parts.append("PV drivers: " + ", ".join(pv))
    if d.get("cloud"):
        parts.append(f"cloud: {d['cloud']}")
    if layer.name == "unknown":
        name = "unidentified hypervisor"
    return f"{name} ({', '.join(parts)})" if parts else name


def summarize(layers: list[Layer]) -> str:
    return " > ".join(describe(layer) for layer in layers)


def layer_advice(layers: list[Layer], facts: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for layer in layers:
        d = layer.details
        emu = d.get("emulated_devices") or []
        if layer.kind == "hypervisor" and layer.name == "xen" and layer.variant == "pv":
            out.append(
                "Xen PV guest: system calls, page-table updates and context switches go through "
                "the hypervisor, so kernel-entry tests (System Call, Pipe, Context Switching, "
                "Process Creation, Execl) run several times slower than on HVM/PVH on the same "
                "CPU while CPU-bound tests are equal. Convert the guest to PVH or HVM with PV "
                "drivers if you can."
            )
        if layer.kind == "hypervisor" and emu and "emulated" in (d.get("disk"), d.get("net")):
            pv_name = {
                "xen": "xen-blkfront/xen-netfront (a kernel with CONFIG_XEN_PVHVM; do not boot "
                "with xen_emul_unplug=never)",
                "kvm": "virtio-blk/virtio-net (or virtio-scsi) in the VM definition",
                "vmware": "vmxnet3 and pvscsi (VMware Tools / open-vm-tools)",
                "hyper-v": "hv_netvsc/hv_storvsc (synthetic devices instead of legacy ones)",
            }.get(layer.name, "the hypervisor's paravirtual drivers")
            out.append(
                f"Emulated devices in use ({', '.join(emu)}): every I/O traps into the device "
                f"model. Switch to {pv_name}."
            )
        if layer.kind == "hypervisor" and layer.name == "qemu-tcg":
            out.append(
                "QEMU TCG (pure emulation): CPU-bound scores are 10-50x below the hardware and "
                "say nothing about the host CPU. Run with KVM (-accel kvm) for real numbers."
            )
        if layer.kind == "hypervisor" and d.get("role") == "dom0":
            out.append(
                "Xen dom0: this kernel is a PV (or PVH) guest too, and it serves the other "
                "guests' I/O backends; results include that background work."
            )
        if layer.kind == "container" and layer.variant == "markers-only":
            out.append(
                "Container markers are present but this process shares the initial PID "
                "namespace: expect the VM's performance; only cgroup limits (see cpu/memory "
                "facts) can differ."
            )
        if layer.kind == "hardware" and layer.confidence < 0.6:
            out.append(
                "No hypervisor was found, but evidence was thin (see 'unreadable'); run as a "
                "user who can read the kernel log for a firmer answer."
            )
    return out
