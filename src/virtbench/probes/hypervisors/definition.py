"""What one hypervisor (or platform) looks like, in every source detect reads.

A :class:`Hypervisor` holds all the knowledge about one platform: its CPUID signatures, DMI
strings, ACPI OEM ids, kernel-log lines, command-line options, files (device tree,
/proc/sysinfo, lparcfg, cpuinfo...), PCI vendor:device ids, paravirtual clock and drivers,
systemd-detect-virt and virt-what names, the clouds that run it, what it offers of other
hypervisors, and advice.
Adding a hypervisor is adding one definition to one module of this package (and its line in
``REGISTRY``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# A clue: (kind, name, evidence, weight, variant); kept as a plain tuple here so this module
# does not depend on the probes.
ClueTuple = tuple[str, str, str, float, str | None]


@dataclass(frozen=True)
class Rule:
    """A pattern in one source and what a match means.

    ``kind``: ``hypervisor`` (the default), ``variant`` (picks the variant once the hypervisor
    is decided, never decides it), ``role``, ``cloud``, ``platform``, ``container``,
    ``not-hypervisor`` or ``hint``. ``name``: the role, cloud, platform or container name
    (default: the definition's name). ``unless``: a pattern on the same text that cancels the
    rule; ``unless_any``: one on all the strings of the source together (all DMI strings).
    ``path``: for file rules, the file (a live path; ``exists`` rules match when it exists);
    ``unless_path``: a path whose existence cancels the rule.
    """

    pattern: str
    weight: float
    variant: str | None = None
    kind: str = "hypervisor"
    name: str = ""
    unless: str = ""
    unless_any: str = ""
    path: str = ""
    unless_path: str = ""
    exists: bool = False
    listing: bool = False
    flags: int = 0
    rx: re.Pattern[str] = field(init=False, repr=False, compare=False)
    unless_rx: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    unless_any_rx: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rx", re.compile(self.pattern, self.flags))
        object.__setattr__(self, "unless_rx",
                           re.compile(self.unless, self.flags) if self.unless else None)
        object.__setattr__(self, "unless_any_rx",
                           re.compile(self.unless_any, self.flags) if self.unless_any else None)

    def match(self, text: str, everything: str = "") -> re.Match[str] | None:
        m = self.rx.search(text)
        if m is None:
            return None
        if self.unless_rx is not None and self.unless_rx.search(text):
            return None
        if self.unless_any_rx is not None and self.unless_any_rx.search(everything or text):
            return None
        return m


def dmi(pattern: str, weight: float, variant: str | None = None, **kw: Any) -> Rule:
    """A DMI rule: case-insensitive, on one DMI string (or the kernel's 'DMI:' line)."""
    return Rule(pattern, weight, variant, flags=re.I, **kw)


def log(pattern: str, weight: float, variant: str | None = None, **kw: Any) -> Rule:
    """A kernel-log rule: on the message (timestamps and syslog prefixes removed)."""
    return Rule(pattern, weight, variant, **kw)


def file(path: str, pattern: str, weight: float, variant: str | None = None,
         **kw: Any) -> Rule:
    """A file rule: ``pattern`` searched line by line (multi-line mode) in ``path``."""
    return Rule(pattern, weight, variant, path=path, flags=re.M | kw.pop("flags", 0), **kw)


def pci(pattern: str, weight: float, variant: str | None = None, **kw: Any) -> Rule:
    """A PCI rule, on each device's ``vvvv:dddd`` (vendor:device, lower case) from
    /sys/bus/pci/devices and /proc/bus/pci/devices, and on the words ``bridge`` (a PCI bridge
    is listed: this system owns the PCI fabric) and ``none`` (the listing is there and
    empty)."""
    return Rule(pattern, weight, variant, flags=re.I, **kw)


def listing(path: str, pattern: str, weight: float, variant: str | None = None,
            **kw: Any) -> Rule:
    """A rule on the names in directory ``path`` (e.g. a 'fw-cfg@...' device-tree node)."""
    return Rule(pattern, weight, variant, path=path, listing=True, **kw)


def exists(path: str, weight: float, variant: str | None = None, note: str = "",
           **kw: Any) -> Rule:
    """A rule that matches when ``path`` exists (``note`` is added to the evidence)."""
    return Rule(re.escape(note), weight, variant, path=path, exists=True, **kw)


@dataclass(frozen=True)
class PvDriver:
    """A paravirtual disk or network driver of one hypervisor family.

    ``name``: the name shown (``xen-blkfront``); ``category``: ``disk`` or ``net``; ``keys``:
    the names it goes by in /sys/bus/*/drivers, /sys/class/net/*/device/driver and
    /proc/modules (``name`` included); ``log``: patterns of kernel-log lines that show it at
    work (or the hypervisor's own bus finding its device), each giving one evidence line;
    ``block``: the names of the block devices it creates."""

    name: str
    category: str
    keys: tuple[str, ...] = ()
    log: tuple[str, ...] = ()
    block: str = ""


@dataclass(frozen=True)
class Hypervisor:
    """Everything detect knows about one hypervisor or platform (see the module docstring).

    ``name`` is the layer name in reports. ``detected``: values of the kernel's
    ``Hypervisor detected: X`` line (lower case) as (value, variant, weight); a variant with
    a weight under 0.9 is only a hint (the hypervisor itself is then certain).
    ``booting``: the X of ``Booting paravirtualized kernel on X`` (lower case, exact), with
    ``booting_contains`` matched as substrings. ``systemd``/``virt_what``: the names those
    tools print for this platform (the bench compares them). ``advice``: (condition, text) where the
    condition is ``""`` (always), ``variant=V`` or ``role=R``.
    """

    name: str
    title: str
    kind: str = "hypervisor"
    systemd: tuple[str, ...] = ()
    virt_what: tuple[str, ...] = ()
    cpuid: tuple[str, ...] = ()
    cpuid_variants: tuple[tuple[str, str], ...] = ()
    dmi: tuple[Rule, ...] = ()
    acpi_oem: tuple[tuple[str, str | None, float], ...] = ()
    detected: tuple[tuple[str, str | None, float], ...] = ()
    detected_prefixes: tuple[str, ...] = ()
    booting: tuple[tuple[str, str | None, float], ...] = ()
    booting_contains: tuple[str, ...] = ()
    log: tuple[Rule, ...] = ()
    cmdline: tuple[Rule, ...] = ()
    files: tuple[Rule, ...] = ()
    pci: tuple[Rule, ...] = ()
    clocksources: tuple[str, ...] = ()
    pv_family: str | None = None
    pv_drivers: tuple[PvDriver, ...] = ()
    offers: tuple[str, ...] = ()
    variants: tuple[tuple[str, str], ...] = ()
    pv_advice: str | None = None
    advice: tuple[tuple[str, str], ...] = ()
    # The role when no role clue was found (LDoms: a guest domain unless control-domain
    # evidence), and the variants whose devices are paravirtual by definition (Xen PV).
    default_role: str | None = None
    pv_only_variants: tuple[str, ...] = ()
    # The platform this one's clues mean when the CPU itself says no hypervisor (CPUID.1:ECX
    # bit 31 = 0): Hyper-V always sets the bit, Virtual PC (same firmware strings) predates it.
    without_cpu_bit: str | None = None
    # Extra variant hints computed from all clues and facts: (clues, facts) -> clues.
    variant_hints: Callable[[list[Any], dict[str, Any]], list[ClueTuple]] | None = None
