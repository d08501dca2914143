"""The detect report: layers, summary, facts, advice, unreadable sources (JSON schema v1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DETECT_SCHEMA_VERSION = 1


@dataclass
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
    ``details``: e.g. ``role`` (xen ``dom0``/``domU``, ldoms ``control``/``io``/``guest``),
    ``cloud`` (also on ``bare-metal``: a cloud's bare-metal instance), ``platform``
    (``nutanix-ahv``, ``rhev``, ``ovirt``...), ``disk``/``net``
    (``pv``/``emulated``/``native``/``unknown``), ``pv_drivers``, ``emulated_devices``,
    ``isolation``.
    """

    kind: str
    name: str
    variant: str | None
    confidence: float
    evidence: list[str]
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


@dataclass
class DetectReport:
    layers: list[Layer]
    summary: str
    facts: dict[str, Any]
    advice: list[str]
    unreadable: list[str]
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
        version = int(d.get("schema_version", 1))
        if version > DETECT_SCHEMA_VERSION:
            raise ValueError(
                f"detect report schema {version} is newer than this virtbench "
                f"({DETECT_SCHEMA_VERSION}): upgrade virtbench"
            )
        return cls(
            layers=[Layer.from_dict(x) for x in d.get("layers", [])],
            summary=str(d.get("summary", "")),
            facts=dict(d.get("facts") or {}),
            advice=[str(a) for a in d.get("advice", [])],
            unreadable=[str(u) for u in d.get("unreadable", [])],
            root=str(d.get("root", "/")),
            live=bool(d.get("live", True)),
            duration_s=float(d.get("duration_s", 0.0)),
            schema_version=DETECT_SCHEMA_VERSION,
        )

    @property
    def hypervisor(self) -> Layer | None:
        return next((x for x in self.layers if x.kind == "hypervisor"), None)

    @property
    def container(self) -> Layer | None:
        return next((x for x in self.layers if x.kind == "container"), None)
