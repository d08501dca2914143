"""Turn clues into layers (outermost first), each with a confidence and its deciding evidence."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from virtbench.probes import hypervisors
from virtbench.probes.base import Clue
from virtbench.probes.model import Layer

MAX_EVIDENCE_LINES = 8

# Variant names as shown in summaries (from the hypervisor definitions).
VARIANT_TEXT = hypervisors.variant_texts()

# Unreadable sources that weaken each kind of verdict.
_HV_SOURCES = ("/dev/kmsg", "/dmesg.txt", "cpuid", "/cpuid.txt", "/sys/class/dmi",
               "/sys/hypervisor", "/proc/xen", "/proc/cpuinfo")
_CT_SOURCES = ("/proc/1/environ", "/proc/1/cgroup", "/proc/self/", "/run/", "/.dockerenv")


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


def _scores(clues: list[Clue]) -> tuple[dict[str, list[Clue]], dict[str, float]]:
    by_name: dict[str, list[Clue]] = defaultdict(list)
    for c in clues:
        if c.kind == "hypervisor":
            by_name[c.name].append(c)
    return by_name, {n: combine([c.weight for c in cs]) for n, cs in by_name.items()}


def _fold_qemu(by_name: dict[str, list[Clue]], score: dict[str, float],
               facts: dict[str, Any], clues: list[Clue]) -> None:
    """QEMU's firmware is KVM's when KVM is seen, else pure emulation (TCG)."""
    qemu = score.pop("qemu", 0.0)
    if not qemu:
        return
    accel = [c for c in clues if c.kind == "hint" and c.name == "kvm-accel"]
    if accel and score.get("kvm", 0.0) < 0.5:
        # A CPU feature QEMU offers only under KVM: QEMU's devices are KVM's.
        by_name["kvm"].extend(Clue("hypervisor", "kvm", c.evidence, c.weight) for c in accel)
        score["kvm"] = combine([score.get("kvm", 0.0), qemu, *(c.weight for c in accel)])
    if score.get("kvm", 0.0) >= 0.5:
        by_name["kvm"].extend(by_name["qemu"])
    elif not any(score.get(n, 0.0) >= 0.5 for n in score if n != "qemu-tcg"):
        # QEMU firmware but no KVM anywhere: pure emulation. Stronger when CPUID was read.
        extra = 0.3 if (facts.get("cpuid") or {}).get("read") else 0.0
        score["qemu-tcg"] = combine([score.get("qemu-tcg", 0.0), qemu, extra])
        by_name["qemu-tcg"].extend(by_name["qemu"])


def _fold_without_cpu_bit(by_name: dict[str, list[Clue]], score: dict[str, float],
                          facts: dict[str, Any]) -> None:
    """A platform known by firmware strings it shares with a hypervisor that always sets the
    CPUID hypervisor bit: when the CPU says no hypervisor, the strings mean the other one."""
    if (facts.get("cpuid") or {}).get("hypervisor_bit") is not False:
        return
    for d in hypervisors.REGISTRY:
        if d.without_cpu_bit and d.name in score:
            score[d.without_cpu_bit] = combine([score.get(d.without_cpu_bit, 0.0),
                                                score.pop(d.name)])
            by_name[d.without_cpu_bit].extend(by_name.pop(d.name))


def _fold_offers(by_name: dict[str, list[Clue]], score: dict[str, float]) -> dict[str, str]:
    """Hypervisors offer other hypervisors' paravirtual interfaces (VirtualBox offers KVM's
    and Hyper-V's, Xen and KVM offer Hyper-V's): the firmware-named one is the real one."""
    interface_of: dict[str, str] = {}
    for real, offered in hypervisors.offers():
        if score.get(real, 0.0) >= 0.8:
            for other in offered:
                if other in score and other != real:
                    score.pop(other)
                    interface_of[other] = real
                    by_name[real].extend(by_name[other])
    return interface_of


def _no_hypervisor(clues: list[Clue], by_name: dict[str, list[Clue]], unknown: float,
                   best: tuple[str, float] | None, factor: float, missing: list[str]) -> Layer:
    """Bare metal (or an unidentified hypervisor when only the CPUID bit says so)."""
    details: dict[str, Any] = {"unreadable_sources": missing} if missing else {}
    if unknown >= 0.5:
        return Layer("hypervisor", "unknown", None, _conf(unknown * factor),
                     _evidence(by_name["unknown"]), details)
    neg = [c for c in clues if c.kind == "not-hypervisor"]
    conf = combine([c.weight for c in neg]) if neg else 0.5
    # Clues that were too weak to decide still count against bare metal.
    if best is not None:
        conf *= 1.0 - best[1]
    extra: list[str] = []
    clouds = [c for c in clues if c.kind == "cloud"]
    if clouds:  # a bare-metal instance of a cloud (AWS *.metal, Alibaba ECS bare metal)
        top = max(clouds, key=lambda c: c.weight)
        details["cloud"] = top.name
        extra.append(top.evidence)
    evidence = _evidence(neg) or ["no hypervisor signature in any readable source"]
    return Layer("hardware", "bare-metal", None, _conf(conf * factor),
                 evidence + [e for e in extra if e not in evidence], details)


def _variant(best: str, chosen: list[Clue], hints: list[Clue],
             interface_of: dict[str, str]) -> str | None:
    variants: dict[str, list[float]] = defaultdict(list)
    for c in chosen + hints:
        if c.variant:
            variants[c.variant].append(c.weight)
    variant = (
        max(variants, key=lambda v: (max(variants[v]), sum(variants[v]))) if variants else None
    )
    if best == "qemu-tcg":
        variant = "tcg"
    offering = sorted(o for o, r in interface_of.items() if r == best)
    if offering and best in ("virtualbox", "parallels"):
        variant = f"{offering[0]}-paravirt"
    return variant


def _tcg_evidence(chosen: list[Clue], facts: dict[str, Any], cpuid_names: set[Any]) -> None:
    log = facts.get("kernel_log") or {}
    if log.get("source") and log.get("hypervisor_line") is False:
        chosen.append(Clue("hypervisor", "qemu-tcg", f"{log['source']}: no 'Hypervisor "
                           "detected' line: the kernel found no KVM (or other) hypervisor", 0.9))
    cpuid = facts.get("cpuid") or {}
    if cpuid.get("read") and not cpuid_names:
        chosen.append(Clue("hypervisor", "qemu-tcg", f"{cpuid.get('source')}: no KVM "
                           "signature in the hypervisor leaves", 0.9))


def _own_evidence(best: str, variant: str | None, chosen: list[Clue],
                  hints: list[Clue]) -> list[Clue]:
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
    return evidence_clues


def _role_and_cloud(best: str, clues: list[Clue], details: dict[str, Any]) -> list[Clue]:
    extra: list[Clue] = []
    role_scores: dict[str, list[Clue]] = defaultdict(list)
    for c in clues:  # a role clue names its hypervisor in 'variant' (older probes: Xen)
        if c.kind == "role" and (c.variant or "xen") == best:
            role_scores[c.name].append(c)
    if role_scores:
        role = max(role_scores, key=lambda r: combine([c.weight for c in role_scores[r]]))
        if role == "dom0" or combine([c.weight for c in role_scores[role]]) >= 0.6:
            details["role"] = role
            extra.extend(sorted(role_scores[role], key=lambda c: -c.weight)[:3])
    defn = hypervisors.get(best)
    if "role" not in details and defn is not None and defn.default_role:
        details["role"] = defn.default_role
        extra.append(Clue("role", defn.default_role, f"role: {defn.default_role} (no "
                          "evidence of another role)", 0.0))
    for kind in ("cloud", "platform"):
        named = [c for c in clues if c.kind == kind]
        if named:
            top = max(named, key=lambda c: c.weight)
            details[kind] = top.name
            extra.append(top)
    return extra


def _device_details(facts: dict[str, Any], details: dict[str, Any],
                    pv_only: bool) -> list[Clue]:
    """Disk and network: paravirtual, emulated or unknown (``pv_only``: a guest type that
    has nothing but paravirtual devices, such as Xen PV)."""
    dev = facts.get("devices") or {}
    if not dev:
        return []
    details["disk"] = (dev.get("disk") or {}).get("state")
    details["net"] = (dev.get("net") or {}).get("state")
    if pv_only:
        for cat in ("disk", "net"):
            if details[cat] == "unknown":
                details[cat] = "pv"
    details["pv_drivers"] = sorted(
        set((dev.get("disk") or {}).get("pv", []) + (dev.get("net") or {}).get("pv", []))
    )
    # Emulated devices count only where no PV driver serves that category (Xen HVM guests
    # keep ata_piix for the CD-ROM after the disks were unplugged).
    details["emulated_devices"] = sorted(
        {
            drv
            for cat in ("disk", "net")
            if (dev.get(cat) or {}).get("state") == "emulated"
            for drv in (dev.get(cat) or {}).get("emulated", [])
        }
    )
    devs_ev = dev.get("evidence") or {}
    return [Clue("device", drv, line, 0.0)
            for drv in details["pv_drivers"][:2] + details["emulated_devices"][:2]
            for line in devs_ev.get(drv, [])[:1]]


def _hints(best: str, clues: list[Clue], facts: dict[str, Any]) -> list[Clue]:
    hints = [c for c in clues if c.kind == "variant" and c.name == best]
    d = hypervisors.get(best)
    if d is not None and d.variant_hints is not None:
        hints.extend(Clue(*t) for t in d.variant_hints(clues, facts))
    return hints


def _hypervisor_layer(clues: list[Clue], facts: dict[str, Any], unreadable: list[str]) -> Layer:
    by_name, score = _scores(clues)
    unknown = score.pop("unknown", 0.0)
    cpuid_names = {s.get("name") for s in (facts.get("cpuid") or {}).get("signatures", [])}
    _fold_qemu(by_name, score, facts, clues)
    _fold_without_cpu_bit(by_name, score, facts)
    interface_of = _fold_offers(by_name, score)
    named = {n: s for n, s in score.items() if n != "none"}
    best = max(named, key=lambda n: named[n]) if named else None
    factor, missing = _penalty(unreadable, _HV_SOURCES)
    neg = combine([c.weight for c in clues if c.kind == "not-hypervisor"])
    if best is not None and neg >= 0.8 and max(c.weight for c in by_name[best]) < 0.7:
        # Only hints (a cloud vendor's DMI strings) against the CPU's own word: bare metal,
        # e.g. an AWS or Alibaba bare-metal instance.
        return _no_hypervisor(clues, by_name, unknown, None, factor, missing)
    if best is None or named[best] < 0.5:
        top = (best, named[best]) if best is not None else None
        return _no_hypervisor(clues, by_name, unknown, top, factor, missing)
    chosen = by_name[best]
    conf = combine([named[best], 0.5 * unknown]) * factor
    # Competing hypervisors lower confidence (e.g. DMI says one thing, CPUID another).
    rivals = [s for n, s in named.items() if n != best and s >= 0.5]
    if rivals:
        conf *= 1.0 - 0.5 * max(rivals)
    if best == "qemu-tcg" and "kvm" not in cpuid_names and not cpuid_names:
        conf *= 0.9
    hints = _hints(best, clues, facts)
    variant = _variant(best, chosen, hints, interface_of)
    if best == "qemu-tcg":
        _tcg_evidence(chosen, facts, cpuid_names)
    details: dict[str, Any] = {}
    evidence_clues = _own_evidence(best, variant, chosen, hints)
    extra_clues = _role_and_cloud(best, clues, details)  # role, cloud, devices: always shown
    defn = hypervisors.get(best)
    extra_clues += _device_details(facts, details,
                                   bool(defn and variant in defn.pv_only_variants
                                        and details.get("role") != "dom0"))
    if missing:
        details["unreadable_sources"] = missing
    own = _evidence(evidence_clues, 7)
    return Layer(kind="hypervisor", name=best, variant=variant, confidence=_conf(conf),
                 evidence=own + [e for e in _evidence(extra_clues, 7) if e not in own],
                 details=details)


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
        return f"bare metal (cloud: {d['cloud']})" if d.get("cloud") else "bare metal"
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
    if d.get("role") and layer.name != "xen":
        parts.append(f"role: {d['role']}")
    if d.get("cloud"):
        parts.append(f"cloud: {d['cloud']}")
    if d.get("platform"):
        parts.append(f"platform: {d['platform']}")
    if layer.name == "unknown":
        name = "unidentified hypervisor"
    return f"{name} ({', '.join(parts)})" if parts else name


def summarize(layers: list[Layer]) -> str:
    return " > ".join(describe(layer) for layer in layers)


def _definition_advice(layer: Layer) -> list[str]:
    """A hypervisor's own advice: for its variant, its emulated devices, always, its role."""
    d = layer.details
    defn = hypervisors.get(layer.name)
    given = defn.advice if defn else ()
    out = [text for cond, text in given if cond == f"variant={layer.variant}"]
    emu = d.get("emulated_devices") or []
    if emu and "emulated" in (d.get("disk"), d.get("net")):
        pv_name = (defn.pv_advice if defn else None) or "the hypervisor's paravirtual drivers"
        out.append(f"Emulated devices in use ({', '.join(emu)}): every I/O traps into the "
                   f"device model. Switch to {pv_name}.")
    out += [text for cond, text in given if cond == ""]
    out += [text for cond, text in given if cond == f"role={d.get('role')}"]
    return out


def layer_advice(layers: list[Layer], facts: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for layer in layers:
        if layer.kind == "hypervisor":
            out += _definition_advice(layer)
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
