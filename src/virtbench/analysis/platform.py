"""What a result document says about the platform it ran on, beyond the detect report.

A UnixBench report published years ago carries no detect report, but it often carries its
architecture (``Machine:``), kernel release and build date (``OS:``), the run date, the CPU
model and count, the load average when the run started and the samples per test. The explain
rules need these to tell causes apart that the scores alone cannot:

* **Xen PV exists only on x86** (32- and 64-bit), so a slow kernel entry on an ARM or RISC-V
  board is never a paravirtualized kernel;
* **post-2018 kernels** enable Meltdown/Spectre mitigations that make system calls several
  times dearer, most of all in hardware-virtualized guests; a paravirtualized kernel slows
  fork/exec as well (every page-table update is a hypercall), mitigations much less;
* **what the platform can be**: a board-specific kernel (``-sunxi``, ``-rockchip64``, the
  Raspberry Pi ``-v7l+``) or an ARMv6 CPU (no virtualization extensions) is bare metal; a
  ``QEMU Virtual CPU`` is a KVM/QEMU guest and an OpenVZ kernel (``stab``, ``-pve``) a
  container, so neither is a Xen PV guest; a kernel release naming ``xen`` is one;
* **the load at the start** of a run includes UnixBench's own build (``./Run`` compiles
  first): a load that is recent (1-minute average high, 15-minute average low) is that
  build, not other work competing for the CPUs.

Everything here is pure and returns flat ``env.*``/section metrics for the rule table
(``virtbench.analysis.explain``), plus the list of what the document does not say.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from virtbench.results.model import RunResult, Section

Value = float | str | None

X86_64 = ("x86_64", "amd64", "x64")
X86_32 = ("i386", "i486", "i586", "i686", "x86", "i86pc")
_X86_MODEL = ("intel", "amd ", "epyc", "xeon", "opteron", "athlon", "ryzen", "pentium",
              "celeron", "qemu virtual cpu", "common kvm processor", "virtual cpu ")
_ARM_MODEL = ("arm", "cortex", "neoverse", "apple m", "graviton", "ampere")
_RISCV_MODEL = ("riscv", "risc-v", "sifive", "u74", "c910", "sg2042", "rv64")

# Kernel releases built for one board: a guest runs a generic kernel, so these are bare metal.
_BOARD_KERNEL = re.compile(
    r"sunxi|sun\d+i|rockchip|-rk\d|meson|amlogic|-v[678]l?\+|bcm27|raspi|starfive|"
    r"-tegra|imx|odroid|allwinner|rel\d+\.\d+\.\d+\+", re.IGNORECASE)
_GUEST_KERNEL = re.compile(r"-aws\b|-azure\b|-gcp\b|-kvm\b|-virtual\b|cloud-amd64|"
                           r"cloud-arm64|-ec2\b|linode", re.IGNORECASE)
_OPENVZ_KERNEL = re.compile(r"stab\d|-pve\b|\bpve\b", re.IGNORECASE)
_XEN_KERNEL = re.compile(r"xen", re.IGNORECASE)
# XenLinux kernel flavours (before the paravirt-ops kernels of Linux 2.6.37 on): RHEL/CentOS 5
# 'el5xen', Fedora 'fc8xen', OpenVZ '...stab069.6xen', Debian '-xen-686'/'-xen-amd64', SUSE
# '-xen', EC2's 'xenU'. They boot only as Xen PV guests (or dom0, itself a PV guest).
_XENLINUX_KERNEL = re.compile(
    r"(?:[.\d]xen[0u]?$|-xen[0u]?$|-xen-(?:686|amd64|i386|x86_64|pae)$)", re.IGNORECASE)

BUSY_LOAD_PER_CPU = 0.5
"""Load average per usable CPU from which the machine counts as busy (docs/explain.md)."""

_NOT_PV_OS = ("darwin", "cygwin", "windows", "mingw", "msys")

# AMD Zen CPUs (2017 on; Hygon's Dhyana is a Zen licence), also as QEMU names them
# ('AMD EPYC-Milan Processor'). On these fork/exec index as low as 0.24-0.26x Dhrystone on bare
# metal and in KVM guests alike, as under a paravirtualized kernel (docs/explain.md).
ZEN_YEAR = 2017
"""The first AMD Zen CPUs (Ryzen, EPYC) were sold in 2017."""
_ZEN_MODEL = re.compile(r"\b(?:ryzen|epyc|threadripper)\b|\bhygon\b", re.IGNORECASE)

MITIGATION_YEAR = 2018
"""Kernels released from January 2018 (4.15, and the 4.4/4.9/4.14 stable updates of that
month) enable page-table isolation and retpolines by default."""
MITIGATION_KERNEL = (4, 15)


def arch(run: RunResult) -> tuple[str | None, str]:
    """(``x86-64`` | ``x86-32`` | ``x86`` | ``arm`` | ``riscv`` | other | ``None``, where it
    was read)."""
    env = run.environment
    machine = (env.machine or "").strip().lower()
    if machine in X86_64:
        return "x86-64", f"Machine: {env.machine}"
    if machine in X86_32:
        return "x86-32", f"Machine: {env.machine}"
    if machine.startswith(("arm", "aarch64")):
        return "arm", f"Machine: {env.machine}"
    if machine.startswith("riscv"):
        return "riscv", f"Machine: {env.machine}"
    if machine:
        return machine, f"Machine: {env.machine}"
    model = (env.cpu_model or "").lower()
    if model:
        if any(k in model for k in _RISCV_MODEL):
            return "riscv", f"CPU model {env.cpu_model}"
        if any(k in model for k in _ARM_MODEL):
            return "arm", f"CPU model {env.cpu_model}"
        if any(k in model for k in _X86_MODEL):
            return "x86", f"CPU model {env.cpu_model}"
    kernel = env.kernel or ""
    if "x86_64" in kernel or "amd64" in kernel:
        return "x86-64", f"kernel {kernel}"
    if "aarch64" in kernel or "arm64" in kernel:
        return "arm", f"kernel {kernel}"
    if "riscv" in kernel:
        return "riscv", f"kernel {kernel}"
    return None, ""


_XEON_SCALABLE = re.compile(r"(?:Platinum|Gold|Silver|Bronze) (\d)(\d)\d\d")
_CORE_GEN = re.compile(r"Core\(TM\) i\d-(\d{4,5})")


def meltdown(cpu_model: str | None) -> tuple[str, str]:
    """(``affected`` | ``not affected`` | ``unknown``, a sentence) for Meltdown, from the CPU
    model: the CPU generation decides whether page-table isolation (the costly mitigation on
    every kernel entry) is on."""
    model = cpu_model or ""
    low = model.lower()
    if any(k in low for k in ("amd", "epyc", "ryzen", "opteron", "athlon")):
        return "not affected", (f"The CPU ({model}) is an AMD one, not affected by Meltdown: no "
                                "page-table isolation; retpolines and the like cost less.")
    m = _XEON_SCALABLE.search(model)
    if m and "xeon" in low:
        if int(m.group(2)) >= 2:
            return "not affected", (f"The CPU ({model}) is a Xeon Scalable of the second "
                                    "generation or later, not affected by Meltdown.")
        return "affected", (f"The CPU ({model}) is a first-generation Xeon Scalable (Skylake), "
                            "affected by Meltdown: page-table isolation on every kernel entry.")
    m = _CORE_GEN.search(model)
    if m:
        digits = m.group(1)
        gen = int(digits[:2]) if len(digits) == 5 else int(digits[0])
        if gen >= 10:
            return "not affected", f"The CPU ({model}) is not affected by Meltdown."
        return "affected", (f"The CPU ({model}) is affected by Meltdown: page-table isolation "
                            "on every kernel entry.")
    if "intel" in low and "xeon" in low:
        return "affected", (f"The CPU ({model}) is an Intel Xeon from before 2019, affected by "
                            "Meltdown: page-table isolation on every kernel entry.")
    return "unknown", ("The CPU model does not tell whether it is affected by Meltdown."
                       if model else "The document does not name the CPU model.")


def clip_model(model: str) -> str:
    return model if len(model) <= 80 else model[:77] + "..."


def kernel_version(release: str | None) -> tuple[int, int] | None:
    m = re.match(r"(\d{1,2})\.(\d{1,3})", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def run_year(run: RunResult) -> int | None:
    """The year the run was measured, when the document knows it (an imported report whose
    date could not be read has the import time as ``started``, which says nothing)."""
    if any("'started' is the" in n for n in run.notes):
        return None
    m = re.match(r"(\d{4})-", run.started or "")
    return int(m.group(1)) if m else None


def platform(run: RunResult, env_facts: Mapping[str, Value]) -> tuple[str, str, str]:
    """(``guest`` | ``bare-metal`` | ``container`` | ``unknown``, the kind of guest or
    container when known (``kvm``, ``xen``, ``xen-pv``, ``openvz``, ...), the evidence)."""
    hv = env_facts.get("env.hypervisor")
    if isinstance(hv, str) and hv:
        kind = "xen-pv" if hv == "xen" and env_facts.get("env.xen_guest_type") == "pv" else hv
        return "guest", kind, f"virtbench detect: {env_facts.get('env.summary')}"
    report = run.environment.virtualization
    if report is not None:  # the typed detect report: its layers, outermost first
        kinds = {layer.kind: layer for layer in report.layers}
        if "hypervisor" not in kinds and "hardware" in kinds:
            container = kinds.get("container")
            if container is not None:
                return ("container", container.name,
                        f"virtbench detect: {report.headline()} (on bare metal)")
            return "bare-metal", "", f"virtbench detect: {report.headline()}"
    summary = str(env_facts.get("env.summary") or "")
    if env_facts.get("env.detected") == "yes" and summary.lower().startswith("bare"):
        return "bare-metal", "", f"virtbench detect: {summary}"
    env = run.environment
    kernel = env.kernel or ""
    model = env.cpu_model or ""
    machine = (env.machine or "").lower()
    if _XENLINUX_KERNEL.search(kernel.strip()):
        return "guest", "xen-pv", (f"kernel {kernel} is a XenLinux kernel, which boots only as a "
                                   "Xen PV guest")
    if _XEN_KERNEL.search(kernel):
        return "guest", "xen", f"kernel {kernel} is a Xen guest kernel"
    if "qemu virtual cpu" in model.lower() or "common kvm processor" in model.lower():
        return "guest", "kvm", f"CPU model {model!r} is QEMU/KVM's virtual CPU"
    if model.lower().startswith("virtual cpu "):
        return "guest", "kvm", f"CPU model {model!r} is a cloud provider's virtual CPU"
    if _OPENVZ_KERNEL.search(kernel):
        return "container", "openvz", f"kernel {kernel} is an OpenVZ/Proxmox host kernel"
    if machine.startswith("armv6"):
        return "bare-metal", "", "an ARMv6 CPU has no virtualization extensions"
    if _BOARD_KERNEL.search(kernel):
        return "bare-metal", "", f"kernel {kernel} is built for one board"
    if _GUEST_KERNEL.search(kernel):
        return "guest", "", f"kernel {kernel} is a cloud guest kernel"
    return "unknown", "", "the document does not say whether it ran in a virtual machine"


def platform_facts(run: RunResult, env_facts: Mapping[str, Value]) -> dict[str, Value]:
    """``env.*`` metrics about the platform (see the module docstring)."""
    facts: dict[str, Value] = {}
    a, a_src = arch(run)
    facts["env.arch"] = a
    facts["env.arch_source"] = a_src or None
    facts["env.x86"] = ("yes" if a and a.startswith("x86") else "no" if a else "unknown")
    kind, guest_kind, evidence = platform(run, env_facts)
    facts["env.platform"] = kind
    facts["env.guest_kind"] = guest_kind or None
    facts["env.platform_evidence"] = evidence
    facts["env.xen_kernel"] = "pv" if guest_kind == "xen-pv" and evidence.startswith(
        "kernel") else None
    # Can this be a Xen PV guest? Only on x86, only Linux or NetBSD kernels, and not where
    # the platform is another kind.
    os_name = (run.environment.os or "").strip()
    facts["env.os"] = os_name or None
    if os_name.lower().startswith(_NOT_PV_OS):
        facts["env.pv_possible"] = "no"
        facts["env.pv_excluded_by"] = (f"{os_name} never runs as a Xen PV guest (Xen PV guests "
                                       "run Linux or NetBSD kernels)")
    elif facts["env.x86"] == "no":
        facts["env.pv_possible"] = "no"
        facts["env.pv_excluded_by"] = f"{a} ({a_src}): Xen PV exists only on x86"
    elif kind == "bare-metal" or (kind in ("guest", "container") and guest_kind
                                  and not guest_kind.startswith("xen")):
        facts["env.pv_possible"] = "no"
        facts["env.pv_excluded_by"] = evidence
    else:
        facts["env.pv_possible"] = "yes"
    env = run.environment
    year = run_year(run)
    facts.update(_pv_signature(env.cpu_model or "", year, facts["env.pv_possible"] == "yes"))
    facts["env.kernel"] = env.kernel
    kv = kernel_version(env.kernel) if not os_name or "linux" in os_name.lower() else None
    facts["env.run_year"] = float(year) if year else None
    if (year is not None and year >= MITIGATION_YEAR) or (kv is not None
                                                          and kv >= MITIGATION_KERNEL):
        facts["env.mitigation_era"] = "yes"
        facts["env.era_sentence"] = (
            f"The run ({year or 'date unknown'}, kernel {env.kernel or 'unknown'}) is from "
            "after January 2018, when kernels started enabling Meltdown/Spectre mitigations "
            "(page-table isolation, retpolines) that make every system call several times "
            "dearer, most of all in a hardware-virtualized guest.")
    elif year is not None:
        facts["env.mitigation_era"] = "no"
        facts["env.era_sentence"] = (
            f"The run ({year}, kernel {env.kernel or 'unknown'}) predates the 2018 "
            "Meltdown/Spectre mitigations, so they do not explain it.")
    else:
        facts["env.mitigation_era"] = "unknown"
        facts["env.era_sentence"] = (
            "The document carries neither a readable run date nor a kernel version, so "
            "CPU-vulnerability mitigations can be neither ruled in nor out.")
    md, md_sentence = meltdown(env.cpu_model)
    facts["env.meltdown"] = md
    if facts["env.mitigation_era"] != "no":
        facts["env.era_sentence"] = f"{facts['env.era_sentence']} {md_sentence}"
    load = env.load_average
    cpus = env_facts.get("env.usable_cpus")
    if load and len(load) >= 3 and isinstance(cpus, float) and cpus > 0:
        facts["env.load5"] = float(load[1])
        facts["env.load15"] = float(load[2])
        facts["env.load15_per_cpu"] = float(load[2]) / cpus
        l1, l15 = float(load[0]) / cpus, float(load[2]) / cpus
        if l15 >= BUSY_LOAD_PER_CPU:
            facts["env.busy"] = "yes"  # sustained for 15 minutes: other work
        elif l1 >= BUSY_LOAD_PER_CPU and run.source == "imported-unixbench":
            # Recent and transient: UnixBench's ./Run compiles its programs just before the
            # first test, on every CPU it has (a 1-CPU machine shows load ~1 and more).
            facts["env.busy"] = "build"
        elif l1 >= BUSY_LOAD_PER_CPU:
            facts["env.busy"] = "yes"  # a native run is not preceded by a build
        else:
            facts["env.busy"] = "no"
    samples = [t.samples for s in run.sections for t in s.tests
               if t.status == "ok" and t.samples is not None]
    facts["env.samples_max"] = float(max(samples)) if samples else None
    facts.update(_short_run(run, samples))
    return facts


def _pv_signature(model: str, year: int | None, pv_possible: bool) -> dict[str, Value]:
    """Can the scores tell Xen PV apart? The signature needs fork/exec at least as slow as the
    system calls, which AMD Zen CPUs show on any platform; without a CPU model a Zen is ruled
    out only before there were any."""
    if pv_possible and _ZEN_MODEL.search(model):
        return {"env.pv_signature": "unreliable", "env.pv_sentence": (
            f"The CPU ({clip_model(model)}) is an AMD Zen: on Zen, fork/exec index as low as "
            "0.24-0.26x the CPU tests on bare metal and in KVM guests alike, as under a "
            "paravirtualized kernel, so these scores cannot tell Xen PV apart; `virtbench "
            "detect` on the machine can. ")}
    if pv_possible and not model and (year is None or year >= ZEN_YEAR):
        return {"env.pv_signature": "unreliable", "env.pv_sentence": (
            "The document names no CPU model and "
            + (f"is of {year}" if year else "carries no date")
            + f": it may be an AMD Zen (sold since {ZEN_YEAR}), whose fork/exec index as low "
            "as under a paravirtualized kernel on any platform, so these scores cannot tell "
            "Xen PV apart; `virtbench detect` on the machine can. ")}
    return {"env.pv_signature": "usable" if pv_possible else None, "env.pv_sentence": ""}


SHORT_TEST_SECONDS = 18.0
"""UnixBench's short tests run 10 s (Whetstone up to 15 s), its long ones 20-60 s."""
DEFAULT_SAMPLES = {"short": 7, "long": 2}
"""What UnixBench keeps by default: the best 7 of 10 runs of a short test, 2 of 3 of a long
one."""


def _short_run(run: RunResult, samples: list[int]) -> dict[str, Value]:
    """Whether the run kept fewer samples than UnixBench's defaults (``./Run -i N``). An
    imported report is judged test by test from the seconds it printed (a run of only long
    tests has 2 samples by default and is not short); another run when it has at most 2."""
    if run.source != "imported-unixbench":
        short = bool(samples) and max(samples) <= 2
        return {"env.short_run": "yes" if short else "no" if samples else None,
                "env.short_tests": f"at most {max(samples)} per test" if short else None}
    found: list[str] = []
    judged = False
    for sec in run.sections:
        for t in sec.tests:
            if t.status != "ok" or t.samples is None or t.elapsed is None:
                continue
            judged = True
            kind = "short" if t.elapsed < SHORT_TEST_SECONDS else "long"
            if t.samples < DEFAULT_SAMPLES[kind]:
                found.append(f"{t.test} {t.samples} of {DEFAULT_SAMPLES[kind]}")
    if not judged:
        return {"env.short_run": None, "env.short_tests": None}
    names = ", ".join(dict.fromkeys(found[:6]))
    more = f" and {len(found) - 6} more" if len(found) > 6 else ""
    return {"env.short_run": "yes" if found else "no",
            "env.short_tests": (names + more) if found else None}


def _gmean(values: list[float]) -> float | None:
    vals = [v for v in values if v > 0]
    if len(vals) != len(values) or not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def section_extra(section: Section, idx: Mapping[str, float],
                  cpu_index: float | None) -> dict[str, Value]:
    """Per-section metrics the platform rules use: fork/exec and context switching relative
    to the CPU, and the samples behind each score."""
    m: dict[str, Value] = {}
    proc = _gmean([idx[t] for t in ("spawn", "execl") if t in idx]) if all(
        t in idx for t in ("spawn", "execl")) else None
    m["process_ratio"] = proc / cpu_index if proc and cpu_index else None
    m["context_ratio"] = idx["context1"] / cpu_index if "context1" in idx and cpu_index else None
    samples = [t.samples for t in section.tests if t.status == "ok" and t.samples is not None]
    m["samples_max"] = float(max(samples)) if samples else None
    return m


def unknowns(run: RunResult, facts: Mapping[str, Value]) -> tuple[list[str], list[str]]:
    """(what the document says about its platform, what it does not say)."""
    env = run.environment
    known: list[str] = []
    unknown: list[str] = []
    arch_v = facts.get("env.arch")
    (known if arch_v else unknown).append(
        f"architecture {arch_v} ({facts.get('env.arch_source')})" if arch_v else "architecture")
    (known if env.kernel else unknown).append(f"kernel {env.kernel}" if env.kernel else
                                              "kernel version")
    year = facts.get("env.run_year")
    (known if year else unknown).append(f"run date {run.started[:10]}" if year else
                                        "run date")
    (known if env.cpu_model else unknown).append(f"CPU {env.cpu_model}" if env.cpu_model
                                                 else "CPU model")
    (known if env.cpu_count else unknown).append(
        f"{env.cpu_count} CPU{'s' if env.cpu_count != 1 else ''}" if env.cpu_count
        else "CPU count")
    load = env.load_average
    (known if load else unknown).append(
        "load average " + ", ".join(f"{v:g}" for v in load[:3]) + " at the start" if load
        else "load average at the start")
    if facts.get("env.detected") == "yes":
        known.append(f"detect report ({facts.get('env.summary')})")
    else:
        unknown.append("detect report (virtualization layers, clock source, mitigations)")
    samples = [t.samples for s in run.sections for t in s.tests if t.samples is not None]
    (known if samples else unknown).append(
        f"{max(samples)} samples per test at most" if samples else "samples per test")
    return known, unknown
