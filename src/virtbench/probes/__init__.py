"""Environment probes: what this server runs on, layer by layer, with evidence.

Public API (used by ``virtbench detect`` and embedded into every result document)::

    detect(root="/", *, steal_sample_s=0.0, test_dir=None) -> DetectReport

Every probe reads paths relative to ``root`` so a captured tree (``virtbench snapshot``) or a
fixture can be analysed like the live system. Probes run in ``REGISTRY`` order; each one has
``available()``, ``collect()`` and ``advice()``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from virtbench.probes.base import Clue, Context, Probe, Root
from virtbench.probes.classify import classify, layer_advice, summarize
from virtbench.probes.container import ContainerProbe
from virtbench.probes.devices import DevicesProbe
from virtbench.probes.facts import (
    ClockProbe,
    CpuProbe,
    MemoryProbe,
    MitigationsProbe,
    NestingProbe,
    StealProbe,
    StorageProbe,
)
from virtbench.probes.hypervisor import (
    CmdlineProbe,
    CpuidProbe,
    CpuinfoProbe,
    DmiProbe,
    KernelLogProbe,
    PciProbe,
    PlatformProbe,
    XenSysProbe,
)
from virtbench.probes.migration import MigrationProbe
from virtbench.probes.model import DETECT_SCHEMA_VERSION, DetectReport, Layer

__all__ = [
    "DETECT_SCHEMA_VERSION",
    "REGISTRY",
    "DetectReport",
    "Layer",
    "Probe",
    "detect",
]

# The one ordered registry. Layer probes first (they feed classification), then facts.
REGISTRY: tuple[Probe, ...] = (
    CpuidProbe(),
    CpuinfoProbe(),
    XenSysProbe(),
    DmiProbe(),
    PlatformProbe(),
    PciProbe(),
    CmdlineProbe(),
    KernelLogProbe(),
    DevicesProbe(),
    ContainerProbe(),
    NestingProbe(),
    ClockProbe(),
    CpuProbe(),
    MemoryProbe(),
    MitigationsProbe(),
    StorageProbe(),
    StealProbe(),
    MigrationProbe(),
)


def detect(
    root: Path | str = "/",
    *,
    steal_sample_s: float = 0.0,
    test_dir: str | None = None,
) -> DetectReport:
    """Detect the layers this system runs on, and the facts that matter for performance.

    ``root``: ``/`` for the live system, or a captured tree (DIR/proc, DIR/sys, DIR/dmesg.txt,
    DIR/cpuid.txt). ``steal_sample_s``: sample CPU steal over this many seconds (live only).
    ``test_dir``: the directory file tests will use (default: the current directory).
    Never raises for bad or missing evidence: that lowers confidence and is listed in
    ``unreadable``.
    """
    started = time.perf_counter()
    r = Root(_tree_root(Path(root)))
    if not r.path.is_dir():
        raise FileNotFoundError(f"detect root {str(root)!r} is not a directory")
    ctx = Context(r, steal_sample_s=steal_sample_s, test_dir=test_dir)
    clues: list[Clue] = []
    facts: dict[str, Any] = {}
    probe_errors: list[str] = []
    ran: list[Probe] = []
    for probe in REGISTRY:
        try:
            if not probe.available(ctx):
                continue
            result = probe.collect(ctx)
        except Exception as exc:  # a broken file must never break detection
            probe_errors.append(f"probe {probe.name}: {type(exc).__name__}: {exc}")
            continue
        ran.append(probe)
        clues.extend(result.clues)
        facts.update(result.facts)
    unreadable = _captured_unreadable(r) + list(r.unreadable) + probe_errors
    layers = classify(clues, facts, unreadable)
    _native_devices(layers, facts)
    advice = layer_advice(layers, facts)
    for probe in ran:
        try:
            for line in probe.advice(facts):
                if line not in advice:
                    advice.append(line)
        except Exception as exc:
            unreadable.append(f"probe {probe.name} advice: {type(exc).__name__}: {exc}")
    facts["probes"] = [p.name for p in ran]
    return DetectReport(
        layers=layers,
        summary=summarize(layers),
        facts=facts,
        advice=advice,
        unreadable=unreadable,
        root=str(root),
        live=r.live,
        duration_s=round(time.perf_counter() - started, 3),
    )


def _native_devices(layers: list[Layer], facts: dict[str, Any]) -> None:
    """On bare metal and in Xen dom0 the 'emulated-type' drivers drive real hardware."""
    hv = layers[0]
    if hv.kind == "hardware" or hv.details.get("role") == "dom0":
        for cat in ("disk", "net"):
            d = (facts.get("devices") or {}).get(cat)
            if d and d.get("state") == "emulated":
                d["state"] = "native"
                d["native"] = d.pop("emulated")
                d["emulated"] = []
        if hv.kind == "hypervisor":
            hv.details["emulated_devices"] = []
            for cat in ("disk", "net"):
                if hv.details.get(cat) == "emulated":
                    hv.details[cat] = "native"


def _captured_unreadable(root: Root) -> list[str]:
    """What ``virtbench snapshot`` could not read when it captured this tree."""
    if root.live:
        return []
    text = root.read("/snapshot.json")
    if not text:
        return []
    try:
        doc = json.loads(text)
    except ValueError:
        root.note_unreadable("/snapshot.json", "malformed JSON")
        return []
    items = doc.get("unreadable") if isinstance(doc, dict) else None
    return [f"{u} (at capture)" for u in items if isinstance(u, str)] if isinstance(
        items, list) else []


_TREE_MARKERS = ("proc", "sys", "dmesg.txt", "cpuid.txt", "snapshot.json")


def _tree_root(path: Path) -> Path:
    """``path``, or its single subdirectory when an archive was unpacked with a top folder."""
    try:
        if path.resolve() == Path("/") or any((path / m).exists() for m in _TREE_MARKERS):
            return path
        subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return path
    if len(subdirs) == 1 and any((subdirs[0] / m).exists() for m in _TREE_MARKERS):
        return subdirs[0]
    return path
