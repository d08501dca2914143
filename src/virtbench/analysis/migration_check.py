"""Can a guest live-migrate from host SOURCE to host TARGET? One table of rules, each with its
rationale (docs/migrate-check.md lists the same table; ``RULES`` is the single source).

Inputs are *host facts* (``HostFacts``) read defensively from a ``virtbench detect --json``
report, a snapshot (analysed with ``virtbench.probes.detect``), a stored run or experiment
(its ``environment.virtualization``), or any JSON file shaped like one of those. A fact that
is missing makes its rule ``unknown`` (said so, never guessed); it does not change the verdict.

Verdicts: ``compatible``; ``compatible with a CPU baseline`` (the guest must run with a CPU
model both hosts implement, named in the result); ``not compatible`` (with the reasons).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from virtbench.probes.migration import X86_64_LEVELS, is_shared_fs, x86_64_level

OK, BASELINE, FAIL, UNKNOWN, SKIP = "ok", "baseline", "fail", "unknown", "skip"
COMPATIBLE = "compatible"
COMPATIBLE_BASELINE = "compatible with a CPU baseline"
NOT_COMPATIBLE = "not compatible"

# Flags that describe the CPU's instruction set as a guest sees it (a guest may use any of
# them once it saw them at boot). Host-only flags (power management, topology, "hypervisor",
# bug workarounds, constant_tsc...) do not matter to a running guest and are ignored.
GUEST_ISA_FLAGS: frozenset[str] = frozenset().union(*X86_64_LEVELS.values()) | frozenset({
    "aes", "pclmulqdq", "sha_ni", "rdrand", "rdseed", "adx", "clflushopt", "clwb", "xsaveopt",
    "xsavec", "xsaves", "fsgsbase", "erms", "fsrm", "invpcid", "pku", "ospke", "rtm", "hle",
    "mpx", "vaes", "vpclmulqdq", "gfni", "avx512ifma", "avx512vbmi", "avx512vbmi2",
    "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "avx512_bf16", "avx512_fp16",
    "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "sse4a", "misalignsse", "3dnowprefetch",
    "xop", "fma4", "tbm", "clzero", "rdpid", "rdtscp", "movdiri", "movdir64b", "serialize",
    "waitpkg", "cldemote", "umip", "smep", "smap", "nx", "pdpe1gb", "x2apic", "tsc_adjust",
    "f16c", "md_clear", "ibpb", "ibrs", "stibp", "ssbd", "arch_capabilities",
})


@dataclass
class HostFacts:
    """What migrate-check knows about one host (``None``: not known)."""

    label: str
    cpu_vendor: str | None = None
    cpu_family: int | None = None
    cpu_model: int | None = None
    cpu_model_name: str | None = None
    cpu_flags: set[str] | None = None
    arch: str | None = None
    hypervisor: str | None = None
    """The virtualization platform this host runs guests with: ``xen``, ``kvm`` ... """
    hypervisor_version: str | None = None
    role: str | None = None
    memory_available_kib: int | None = None
    memory_total_kib: int | None = None
    hugepage_size_kib: int | None = None
    hugepages_free: int | None = None
    hugepages_total: int | None = None
    mounts: list[dict[str, Any]] | None = None
    qemu_version: str | None = None
    qemu_machines: list[str] | None = None
    missing: list[str] = field(default_factory=list)
    """Keys the source document lacked (reported so the user knows what to capture)."""

    def mount_for(self, path: str) -> dict[str, Any] | None:
        """The mount holding ``path`` (longest mount point that is a prefix)."""
        if not self.mounts:
            return None
        path = posixpath.normpath(path)
        best: dict[str, Any] | None = None
        for m in self.mounts:
            mp = str(m.get("mountpoint", ""))
            inside = path == mp or path.startswith(mp.rstrip("/") + "/") or mp == "/"
            if inside and (best is None or len(mp) >= len(str(best.get("mountpoint", "")))):
                best = m
        return best


@dataclass
class GuestSpec:
    """What the guest needs (from the command line; each is optional)."""

    disk: str | None = None
    """Path of the guest's disk image on the source host."""
    memory_mb: int | None = None
    hugepages: bool = False
    machine: str | None = None
    """QEMU machine type the guest runs with, e.g. ``pc-i440fx-7.2``."""
    cpu_passthrough: bool = False
    """The guest runs with the host CPU passed through (``-cpu host``): needs identical CPUs."""
    block_migration: bool = False
    """Accept a local disk if it is copied during migration (QEMU drive-mirror / block
    migration). XenServer 5.6 could not; QEMU/KVM can."""


@dataclass
class RuleResult:
    rule: str
    status: str
    message: str
    rationale: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Rule:
    id: str
    checks: str
    rationale: str
    fn: Callable[[HostFacts, HostFacts, GuestSpec], tuple[str, str]]


# ---- the rules -----------------------------------------------------------------------------
def _arch(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    if not s.arch or not t.arch:
        return UNKNOWN, "architecture not known for both hosts"
    if s.arch != t.arch:
        return FAIL, f"architecture differs: {s.arch} -> {t.arch}"
    return OK, f"both {s.arch}"


def _vendor(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    if not s.cpu_vendor or not t.cpu_vendor:
        return UNKNOWN, "CPU vendor not known for both hosts (needs /proc/cpuinfo vendor_id)"
    if s.cpu_vendor != t.cpu_vendor:
        return FAIL, f"CPU vendor differs: {s.cpu_vendor} -> {t.cpu_vendor}"
    return OK, f"both {s.cpu_vendor}"


def _family_model(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    if None in (s.cpu_family, s.cpu_model, t.cpu_family, t.cpu_model):
        return UNKNOWN, "CPU family/model not known for both hosts"
    a, b = f"family {s.cpu_family} model {s.cpu_model}", f"family {t.cpu_family} model " \
        f"{t.cpu_model}"
    if a == b:
        return OK, f"same CPU ({a})"
    if g.cpu_passthrough:
        return FAIL, f"CPU differs ({a} -> {b}) and the guest passes the host CPU through"
    return BASELINE, f"CPU differs ({a} -> {b}): the guest needs a CPU model both implement, " \
        "not host passthrough"


def _flags(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    if not s.cpu_flags or not t.cpu_flags:
        return UNKNOWN, "CPU flags not known for both hosts (needs /proc/cpuinfo flags)"
    missing = sorted((s.cpu_flags - t.cpu_flags) & GUEST_ISA_FLAGS)
    if not missing:
        return OK, "the target has every instruction-set flag the source has"
    base = common_baseline(s.cpu_flags, t.cpu_flags)
    if base is None:
        return FAIL, (f"target lacks {', '.join(missing)} and no common x86-64 level exists")
    return BASELINE, (f"target lacks {', '.join(missing)}: start the guest with the common "
                      f"baseline {base} (e.g. {EXAMPLE_MODELS.get(base, base)}) so it never "
                      "sees them")


def _hv_type(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    if not s.hypervisor or not t.hypervisor:
        return UNKNOWN, "hypervisor of the hosts not known"
    if s.hypervisor != t.hypervisor:
        return FAIL, f"hypervisor differs: {s.hypervisor} -> {t.hypervisor}"
    return OK, f"both {s.hypervisor}"


def _version_tuple(v: str) -> tuple[int, ...]:
    parts = []
    for p in v.replace("-", ".").split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _hv_version(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    hv = s.hypervisor if s.hypervisor == t.hypervisor else None
    if hv is None:
        return SKIP, "hypervisors differ or are unknown (see hypervisor-type)"
    sv, tv = s.hypervisor_version, t.hypervisor_version
    if hv == "kvm":
        sv, tv = sv or s.qemu_version, tv or t.qemu_version
    if not sv or not tv:
        return UNKNOWN, f"{hv} version not known for both hosts"
    if hv == "xen":
        if sv != tv:
            return FAIL, f"Xen versions differ: {sv} -> {tv} (a pool needs one version)"
        return OK, f"both Xen {sv}"
    if _version_tuple(tv) < _version_tuple(sv):
        return FAIL, f"target QEMU {tv} is older than source {sv}: migration only goes forward"
    if sv != tv:
        return OK, f"QEMU {sv} -> {tv} (forward migration, same machine type required)"
    return OK, f"both {hv} {sv}"


def _storage(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    if not g.disk:
        return SKIP, "no --disk given: shared storage not checked"
    sm, tm = s.mount_for(g.disk), t.mount_for(g.disk)
    if sm is None or tm is None:
        return UNKNOWN, f"mounts not known for both hosts, cannot place {g.disk}"
    desc = f"{g.disk} is on {sm['source']} ({sm['fstype']}) -> {tm['source']} ({tm['fstype']})"
    shared = (is_shared_fs(str(sm["fstype"])) and is_shared_fs(str(tm["fstype"]))
              and sm["source"] == tm["source"])
    if shared:
        return OK, f"shared storage: {desc}"
    if g.block_migration:
        return OK, f"not shared ({desc}): the disk will be copied (block migration)"
    return FAIL, (f"not on shared storage: {desc}; put the disk on storage both hosts mount "
                  "from the same server/export (NFS, iSCSI), or use --block-migration")


GUEST_OVERHEAD_MB = 64


def _memory(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    if not g.memory_mb:
        return SKIP, "no --guest-memory given: headroom not checked"
    if t.memory_available_kib is None:
        return UNKNOWN, "target's available memory not known (needs /proc/meminfo)"
    need = (g.memory_mb + GUEST_OVERHEAD_MB) * 1024
    have = t.memory_available_kib
    if have < need:
        return FAIL, (f"target has {have // 1024} MB available, the guest needs "
                      f"{g.memory_mb} MB + {GUEST_OVERHEAD_MB} MB overhead")
    return OK, f"target has {have // 1024} MB available for {g.memory_mb} MB (+overhead)"


def _hugepages(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    if not g.hugepages:
        if s.hugepages_total and not t.hugepages_total:
            return OK, ("the source reserves huge pages, the target none: fine unless the "
                        "guest is backed by them (--hugepages)")
        return SKIP, "guest not backed by huge pages"
    if t.hugepages_free is None or t.hugepage_size_kib is None:
        return UNKNOWN, "target's huge pages not known (needs /proc/meminfo HugePages_*)"
    if s.hugepage_size_kib and s.hugepage_size_kib != t.hugepage_size_kib:
        return FAIL, (f"huge page size differs: {s.hugepage_size_kib} KiB -> "
                      f"{t.hugepage_size_kib} KiB")
    need = (g.memory_mb or 0) * 1024 // t.hugepage_size_kib if g.memory_mb else 1
    if t.hugepages_free < need:
        return FAIL, (f"target has {t.hugepages_free} free huge pages of "
                      f"{t.hugepage_size_kib} KiB, the guest needs {need}")
    return OK, f"target has {t.hugepages_free} free huge pages (needs {need})"


def _machine(s: HostFacts, t: HostFacts, g: GuestSpec) -> tuple[str, str]:
    if not g.machine:
        return SKIP, "no --machine given"
    if not t.qemu_machines:
        return UNKNOWN, "target's QEMU machine types not known"
    if g.machine not in t.qemu_machines:
        return FAIL, f"target QEMU {t.qemu_version or ''} has no machine type {g.machine}"
    return OK, f"target QEMU supports {g.machine}"


RULES: tuple[Rule, ...] = (
    Rule("architecture", "both hosts have the same CPU architecture",
         "a guest's memory and CPU state are architecture-specific: nothing can translate them "
         "during a live move", _arch),
    Rule("cpu-vendor", "same CPU vendor (GenuineIntel / AuthenticAMD)",
         "XenServer 5.6: hosts in a pool need the same CPU (condition 1). The vendor string, "
         "vendor-specific instructions and MSRs cannot change under a running guest; QEMU and "
         "libvirt do not support cross-vendor live migration", _vendor),
    Rule("cpu-family-model", "same CPU family and model, else a named CPU model",
         "XenServer 5.6 needed identical CPUs without its paid CPU masking; QEMU's host "
         "passthrough (-cpu host) is only migratable between identical hosts. Different "
         "generations work when the guest uses a CPU model both implement", _family_model),
    Rule("cpu-flags", "every instruction-set flag of the source exists on the target",
         "a guest checks CPUID once at boot and then uses what it saw (AVX2, AES...): on a "
         "target without the instruction it faults. A common baseline (x86-64-v2/v3/v4) "
         "hides the difference (Intel FlexMigration, AMD-V Extended Migration, VMware EVC, "
         "libvirt cpu-baseline)", _flags),
    Rule("hypervisor-type", "same hypervisor on both hosts",
         "the migration stream is the hypervisor's own format: Xen cannot receive a KVM guest",
         _hv_type),
    Rule("hypervisor-version", "Xen: equal versions; QEMU/KVM: target not older",
         "XenServer 5.6 and 5.6 FP1 could not share a pool (condition 4: same version). QEMU "
         "accepts streams from older versions with the same machine type, never from newer "
         "ones", _hv_version),
    Rule("shared-storage", "the guest disk is on storage both hosts mount from one export",
         "XenServer 5.6 migrated only guests whose disks were on shared storage (NFS or iSCSI, "
         "condition 2); otherwise the disk must be copied too (QEMU drive-mirror/block "
         "migration), which moves the whole disk", _storage),
    Rule("memory-headroom", "the target has the guest's memory available",
         "the target must allocate all guest RAM (plus QEMU overhead) before the switch-over; "
         "short of it the migration fails or the target swaps", _memory),
    Rule("hugepages", "a guest backed by huge pages finds enough free ones of the same size",
         "a hugetlbfs-backed guest cannot start on the target without free huge pages of its "
         "page size", _hugepages),
    Rule("machine-type", "the target QEMU knows the guest's machine type",
         "QEMU migrates only between identical machine types (pc-i440fx-X.Y): the target must "
         "offer the source's", _machine),
)


def check(source: HostFacts, target: HostFacts, guest: GuestSpec) -> dict[str, Any]:
    results = []
    for rule in RULES:
        status, message = rule.fn(source, target, guest)
        results.append(RuleResult(rule.id, status, message, rule.rationale))
    statuses = {r.status for r in results}
    if FAIL in statuses:
        verdict = NOT_COMPATIBLE
    elif BASELINE in statuses:
        verdict = COMPATIBLE_BASELINE
    else:
        verdict = COMPATIBLE
    baseline = None
    if source.cpu_flags and target.cpu_flags:
        baseline = common_baseline(source.cpu_flags, target.cpu_flags)
    missing = sorted((source.cpu_flags or set()) - (target.cpu_flags or set()) & GUEST_ISA_FLAGS)
    return {
        "verdict": verdict,
        "source": source.label,
        "target": target.label,
        "reasons": [r.message for r in results if r.status in (FAIL, BASELINE)],
        "baseline": baseline if verdict == COMPATIBLE_BASELINE else None,
        "common_level": baseline,
        "missing_flags": missing,
        "rules": [r.to_dict() for r in results],
        "unknown": [r.rule for r in results if r.status == UNKNOWN],
        "missing_facts": {"source": source.missing, "target": target.missing},
    }


EXAMPLE_MODELS = {
    "x86-64-v2": "QEMU -cpu Nehalem / Opteron_G3 class",
    "x86-64-v3": "QEMU -cpu Haswell-noTSX / EPYC class",
    "x86-64-v4": "QEMU -cpu Skylake-Server-noTSX-IBRS / EPYC-Genoa class",
    "x86-64-v1": "QEMU -cpu qemu64",
}


def common_baseline(a: set[str], b: set[str]) -> str | None:
    return x86_64_level(a & b)


# ---- reading facts from documents --------------------------------------------------------
def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    return None


def facts_from_detect(report: dict[str, Any], label: str) -> HostFacts:
    """Host facts from a ``virtbench detect --json`` report (schema 1), read defensively."""
    raw_facts = report.get("facts")
    facts: dict[str, Any] = raw_facts if isinstance(raw_facts, dict) else {}
    mig = _get(facts, "migration") or {}
    h = HostFacts(label=label)
    cpu = _get(mig, "cpu") or {}
    h.cpu_vendor = cpu.get("vendor") or _get(facts, "cpu", "vendor")
    h.cpu_family = _int(cpu.get("family"))
    h.cpu_model = _int(cpu.get("model"))
    h.cpu_model_name = cpu.get("model_name") or _get(facts, "cpu", "model")
    flags = cpu.get("flags")
    h.cpu_flags = {str(f) for f in flags} if isinstance(flags, list) and flags else None
    h.arch = mig.get("arch") if isinstance(mig.get("arch"), str) else None
    mem = _get(mig, "memory") or _get(facts, "memory") or {}
    h.memory_available_kib = _int(mem.get("available_kib"))
    h.memory_total_kib = _int(mem.get("total_kib"))
    hp = _get(mig, "hugepages") or {}
    h.hugepage_size_kib = _int(hp.get("size_kib"))
    h.hugepages_free = _int(hp.get("free"))
    h.hugepages_total = _int(hp.get("total"))
    mounts = mig.get("mounts")
    h.mounts = [m for m in mounts if isinstance(m, dict)] if isinstance(mounts, list) else None
    qemu = _get(mig, "qemu") or {}
    h.qemu_version = qemu.get("version") if isinstance(qemu.get("version"), str) else None
    machines = qemu.get("machines")
    h.qemu_machines = [str(m) for m in machines] if isinstance(machines, list) and machines \
        else None
    h.hypervisor, h.hypervisor_version, h.role = _platform(report, facts, h)
    for key, value in (
        ("facts.migration.cpu.flags", h.cpu_flags), ("facts.migration.cpu.family", h.cpu_family),
        ("facts.migration.cpu.model", h.cpu_model), ("facts.migration.mounts", h.mounts),
        ("facts.migration.memory.available_kib", h.memory_available_kib),
        ("facts.migration.hugepages", h.hugepage_size_kib),
        ("cpu vendor (facts.cpu.vendor)", h.cpu_vendor),
        ("hypervisor (layers / facts.nesting.dev_kvm)", h.hypervisor),
    ):
        if value is None:
            h.missing.append(key)
    return h


def _platform(report: dict[str, Any], facts: dict[str, Any], h: HostFacts
              ) -> tuple[str | None, str | None, str | None]:
    """The platform this host runs *guests* with: a Xen dom0 runs Xen guests; a host whose
    /dev/kvm works runs KVM guests (QEMU version as its version)."""
    raw_layers = report.get("layers")
    layers: list[Any] = raw_layers if isinstance(raw_layers, list) else []
    xen_version = facts.get("xen_version") if isinstance(facts.get("xen_version"), str) else None
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        raw_details = layer.get("details")
        details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
        if layer.get("name") == "xen" and details.get("role") == "dom0":
            return "xen", xen_version, "dom0"
    if _get(facts, "nesting", "dev_kvm") in ("usable", "ok", "present", True):
        return "kvm", h.qemu_version, "kvm-host"
    explicit = report.get("hypervisor")  # a hand-written host description
    if isinstance(explicit, dict):
        return explicit.get("type"), explicit.get("version"), explicit.get("role")
    if xen_version:
        return "xen", xen_version, None
    return None, None, None
