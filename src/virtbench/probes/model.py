"""The detect report: layers, summary, facts, advice, unreadable sources (JSON schema v1).

``Layer`` and ``DetectReport`` are pydantic dataclasses: validated when built, embedded as
typed data in every result document (``Environment.virtualization``) and published in its
JSON Schema. ``facts`` stays an open mapping (its sections are documented in docs/detect.md);
the figures other commands use are read from it in ONE place, :meth:`DetectReport.key_facts`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, field
from dataclasses import dataclass as plain_dataclass
from typing import Any

from pydantic import ConfigDict, ValidationError
from pydantic.dataclasses import dataclass

DETECT_SCHEMA_VERSION = 1

_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclass(config=_CONFIG)
class Layer:
    """One layer of the stack, e.g. ``hypervisor kvm (firecracker-like)`` or ``container``.

    ``kind``: ``hardware`` (bare metal), ``hypervisor`` or ``container``.
    ``name``: ``bare-metal``, ``unknown``, or a hypervisor definition's name
    (``virtbench.probes.hypervisors.REGISTRY``: ``kvm``, ``qemu-tcg``, ``xen``, ``vmware``,
    ``hyper-v``, ``virtualbox``, ``parallels``, ``bhyve``, ``acrn``, ``zvm``, ``prsm``,
    ``powervm``, ``ldoms``, ``uml``, ...); containers ``docker``, ``podman``, ``lxc``,
    ``systemd-nspawn``, ``openvz``, ``wsl``, ``kubernetes``, ``containerd``, ``crio``,
    ``linux-vserver``, ``illumos-lx``, ``proot``, ``generic``, ...
    ``variant``: xen ``pv``/``hvm``/``pvh``; kvm ``firecracker-like``/``qemu``/
    ``cloud-hypervisor``/``amazon-nitro``/``google``/``kvmtool``/``powerkvm``; qemu-tcg
    ``tcg``; powervm ``shared``/``dedicated``; prsm ``lpar``; wsl ``wsl1``/``wsl2``;
    container ``markers-only`` (markers without PID isolation); or ``None``.
    ``details``: e.g. ``role`` (xen ``dom0``/``domU``, ldoms ``control``/``root``/``io``/``guest``),
    ``cloud`` (also on ``bare-metal``: a cloud's bare-metal instance), ``platform``
    (``nutanix-ahv``, ``rhev``, ``ovirt``...), ``disk``/``net``
    (``pv``/``emulated``/``native``/``unknown``), ``pv_drivers``, ``emulated_devices``,
    ``isolation``.
    """

    kind: str
    name: str
    variant: str | None = None
    confidence: float = 0.0
    evidence: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Layer:
        return cls(
            kind=str(d["kind"]),
            name=str(d["name"]),
            variant=d.get("variant"),
            confidence=float(d.get("confidence", 0.0)),
            evidence=[str(e) for e in d.get("evidence", [])],
            details=dict(d.get("details") or {}),
        )


@dataclass(config=_CONFIG)
class DetectReport:
    layers: list[Layer] = field(default_factory=list)
    summary: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    advice: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    root: str = "/"
    live: bool = True
    duration_s: float = 0.0
    schema_version: int = DETECT_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "root": self.root,
            "live": self.live,
            "summary": self.summary,
            "layers": [layer.to_dict() for layer in self.layers],
            "facts": self.facts,
            "advice": list(self.advice),
            "unreadable": list(self.unreadable),
            "duration_s": self.duration_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectReport:
        """A report from its JSON form. Junk (a list, a string, a layer without a kind, an
        unparsable number...) raises one ``ValueError`` that says what is wrong, never a
        ``KeyError``/``TypeError``/pydantic error from deep inside."""
        if not isinstance(d, Mapping):
            raise ValueError(f"not a detect report: a JSON {type(d).__name__}, not an object")
        try:
            version = int(d.get("schema_version", 1))
        except (TypeError, ValueError):
            raise ValueError("not a detect report: schema_version "
                             f"{d.get('schema_version')!r} is not a number") from None
        if version > DETECT_SCHEMA_VERSION:
            raise ValueError(
                f"detect report schema {version} is newer than this virtbench "
                f"({DETECT_SCHEMA_VERSION}): upgrade virtbench"
            )
        try:
            layers = d.get("layers", [])
            if not isinstance(layers, list) or not all(isinstance(x, Mapping) for x in layers):
                raise TypeError("'layers' must be a list of objects")
            for key in ("facts",):
                if d.get(key) is not None and not isinstance(d.get(key), Mapping):
                    raise TypeError(f"{key!r} must be an object")
            for key in ("advice", "unreadable"):
                if not isinstance(d.get(key, []), list):
                    raise TypeError(f"{key!r} must be a list")
            return cls(
                layers=[Layer.from_dict(dict(x)) for x in layers],
                summary=str(d.get("summary", "")),
                facts=dict(d.get("facts") or {}),
                advice=[str(a) for a in d.get("advice", [])],
                unreadable=[str(u) for u in d.get("unreadable", [])],
                root=str(d.get("root", "/")),
                live=bool(d.get("live", True)),
                duration_s=float(d.get("duration_s", 0.0)),
                schema_version=DETECT_SCHEMA_VERSION,
            )
        except KeyError as exc:
            raise ValueError(f"not a detect report: a layer has no {exc.args[0]!r}") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ())) or "value"
            raise ValueError(f"not a detect report: {where}: {err.get('msg')}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"not a detect report: {first}") from None

    @property
    def hypervisor(self) -> Layer | None:
        return next((x for x in self.layers if x.kind == "hypervisor"), None)

    @property
    def container(self) -> Layer | None:
        return next((x for x in self.layers if x.kind == "container"), None)

    # ---- summaries: what explain, store, fleet and report read -------------------------
    @property
    def hypervisors(self) -> list[Layer]:
        """The hypervisor layers, outermost first."""
        return [x for x in self.layers if x.kind == "hypervisor"]

    @property
    def inner_hypervisor(self) -> Layer | None:
        """The innermost hypervisor: the one whose guest kernel this system runs."""
        hvs = self.hypervisors
        return hvs[-1] if hvs else None

    def headline(self) -> str | None:
        """One line, outermost layer first: the recorded summary (``kvm (firecracker-like
        micro-VM) > container (docker-like markers)``), else one built from the layers."""
        if self.summary.strip():
            return self.summary.strip()
        parts = [f"{x.name} ({x.variant})" if x.variant else x.name for x in self.layers]
        return " > ".join(parts) or None

    def group_key(self) -> str | None:
        """A short key to group hosts by: layer names, the hypervisor's variant kept
        (``kvm(firecracker-like) > docker``)."""
        parts = [x.name + (f"({x.variant})" if x.kind == "hypervisor" and x.variant else "")
                 for x in self.layers]
        return " > ".join(parts) or self.summary.strip() or None

    def emulated_cpu(self) -> bool:
        """True when the CPU is emulated (QEMU TCG): numbers say nothing about hardware."""
        return any(x.name in ("qemu-tcg", "tcg") or x.variant == "tcg"
                   for x in self.hypervisors)

    def key_facts(self) -> KeyFacts:
        """The facts other commands use, read from ``facts`` with their types checked (a
        stored report may come from an older virtbench or a hostile host)."""
        f = self.facts
        smt = _at(f, "cpu", "smt", "active")
        return KeyFacts(
            usable_cpus=_positive(_at(f, "cpu", "usable_cpus")),
            clocksource=_text(_at(f, "clocksource", "current")),
            clocksources_available=_texts(_at(f, "clocksource", "available")),
            steal_percent=_number(_at(f, "steal", "percent")),
            meltdown=_text(_at(f, "mitigations", "vulnerabilities", "meltdown")),
            smt_active=smt if isinstance(smt, bool) else None,
            disk=_text(_at(f, "devices", "disk", "state")),
            disk_emulated=_texts(_at(f, "devices", "disk", "emulated")),
        )


@plain_dataclass(frozen=True)
class KeyFacts:
    """Typed figures from a detect report's ``facts`` (``None``: not recorded)."""

    usable_cpus: float | None = None
    """CPUs this system could use: affinity and cgroup quota (``facts.cpu.usable_cpus``)."""
    clocksource: str | None = None
    clocksources_available: tuple[str, ...] = ()
    steal_percent: float | None = None
    """CPU time stolen by the hypervisor, percent (``facts.steal.percent``)."""
    meltdown: str | None = None
    """The kernel's Meltdown status line (``Mitigation: PTI``, ``Not affected``...)."""
    smt_active: bool | None = None
    disk: str | None = None
    """Disk path: ``pv``, ``emulated``, ``native`` or ``unknown``."""
    disk_emulated: tuple[str, ...] = ()

    @property
    def pti(self) -> bool | None:
        """Kernel page-table isolation in use (every kernel entry pays for it)."""
        if self.meltdown is None:
            return None
        return self.meltdown.startswith("Mitigation") and "PTI" in self.meltdown


def _at(facts: Mapping[str, Any], *path: str) -> Any:
    value: Any = facts
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _positive(v: Any) -> float | None:
    n = _number(v)
    return n if n is not None and n > 0 else None


def _text(v: Any) -> str | None:
    return v.strip() if isinstance(v, str) and v.strip() else None


def _texts(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = v.split()
    if not isinstance(v, list):
        return ()
    return tuple(x.strip() for x in v if isinstance(x, str) and x.strip())
