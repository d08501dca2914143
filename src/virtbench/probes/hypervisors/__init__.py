"""The registry of hypervisor definitions, and the lookup tables the probes derive from it.

One module per family; each exports ``DEFINITIONS``. Order matters only where two
definitions could claim the same text (the first wins in lookups)."""

from __future__ import annotations

from functools import cache

from virtbench.probes.hypervisors import (
    containers,
    desktop,
    hyperv,
    ibm,
    kvm,
    others,
    sparc,
    vmware,
    xen,
)
from virtbench.probes.hypervisors.definition import Hypervisor, PvDriver, Rule

__all__ = ["REGISTRY", "Hypervisor", "PvDriver", "Rule", "by_name", "get", "meaning"]

REGISTRY: tuple[Hypervisor, ...] = (
    *xen.DEFINITIONS,
    *kvm.DEFINITIONS,
    *vmware.DEFINITIONS,
    *hyperv.DEFINITIONS,
    *desktop.DEFINITIONS,
    *others.DEFINITIONS,
    *ibm.DEFINITIONS,
    *sparc.DEFINITIONS,
    *containers.DEFINITIONS,
)


def meaning(d: Hypervisor, rule: Rule) -> tuple[str, str, float, str | None]:
    """(kind, name, weight, variant) of a clue from ``rule`` of ``d``. A role clue carries
    its hypervisor in the variant field (a role belongs to one hypervisor)."""
    variant = d.name if rule.kind == "role" else rule.variant
    return rule.kind, rule.name or d.name, rule.weight, variant


@cache
def by_name() -> dict[str, Hypervisor]:
    return {d.name: d for d in REGISTRY}


def get(name: str) -> Hypervisor | None:
    return by_name().get(name)


@cache
def cpuid_signatures() -> dict[str, tuple[str, str | None]]:
    """CPUID signature -> (hypervisor name, variant)."""
    out: dict[str, tuple[str, str | None]] = {}
    for d in REGISTRY:
        variants = dict(d.cpuid_variants)
        for sig in d.cpuid:
            out.setdefault(sig, (d.name, variants.get(sig)))
    return out


@cache
def systemd_names() -> dict[str, str]:
    """systemd-detect-virt id -> hypervisor name."""
    return {sid: d.name for d in REGISTRY for sid in d.systemd}


@cache
def acpi_oems() -> dict[str, tuple[str, str | None, float]]:
    return {oem: (d.name, v, w) for d in REGISTRY for oem, v, w in d.acpi_oem}


@cache
def detected_values() -> dict[str, tuple[str, str | None, float]]:
    return {val: (d.name, v, w) for d in REGISTRY for val, v, w in d.detected}


@cache
def detected_prefixes() -> tuple[tuple[str, str], ...]:
    return tuple((p, d.name) for d in REGISTRY for p in d.detected_prefixes)


@cache
def booting_targets() -> dict[str, tuple[str, str | None, float]]:
    return {t: (d.name, v, w) for d in REGISTRY for t, v, w in d.booting}


@cache
def rules(source: str) -> tuple[tuple[Hypervisor, Rule], ...]:
    """Every (definition, rule) of one source: ``dmi``, ``log``, ``cmdline``, ``files`` or
    ``pci``."""
    return tuple((d, r) for d in REGISTRY for r in getattr(d, source))


@cache
def clocksources() -> tuple[tuple[str, str], ...]:
    return tuple((cs, d.name) for d in REGISTRY for cs in d.clocksources)


@cache
def pv_families() -> dict[str, str]:
    """Family of paravirtual drivers -> the hypervisor they prove (virtio proves none)."""
    return {d.pv_family: d.name for d in REGISTRY if d.pv_family and d.pv_family != "virtio"}


@cache
def offers() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(real hypervisor, interfaces it may offer), those offering most first."""
    with_offers = [d for d in REGISTRY if d.offers]
    ordered = sorted(with_offers, key=lambda d: -len(d.offers))
    return tuple((d.name, d.offers) for d in ordered)


@cache
def variant_texts() -> dict[str, str]:
    return {v: text for d in REGISTRY for v, text in d.variants}


@cache
def pv_drivers() -> tuple[tuple[str, PvDriver], ...]:
    """(family, driver) of every definition's paravirtual drivers; the family is the
    definition's ``pv_family`` (virtio for KVM's)."""
    return tuple((d.pv_family or d.name, drv) for d in REGISTRY for drv in d.pv_drivers)
