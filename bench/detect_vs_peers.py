"""virtbench detect side by side with virt-what and systemd-detect-virt.

On this machine all three run live. On every captured tree under tests/data/detect/ (or the
trees given as arguments) virt-what runs with its test-root option: the tree is copied and
given the three stand-in programs virt-what's own test suite uses (``sbin/dmidecode`` printing
the tree's DMI values, ``sbin/virt-what-cpuid-helper`` printing its CPUID signature,
``sbin/uname`` printing its architecture). systemd-detect-virt has no such option (and reads
CPUID from the live CPU), so it applies to this machine only.

Each row: the tree, virtbench's summary, virt-what's facts, systemd's id, and a mark:
``ok`` when virt-what's facts name the same hypervisor (or none) and container as virtbench,
``DIFF`` when they do not, ``DIFF:type`` when they name another guest type or role (Xen
``xen-hvm``/``xen-domU``, POWER LPAR mode, LDoms role), ``-`` when virt-what is missing.
Each disagreement is then printed with who is right, judged once from the tree's evidence
(``JUDGED`` below), the evidence line, and ``STALE``/``UNEXPLAINED`` when that judgement no
longer holds or is missing.

    PYTHONPATH=src python bench/detect_vs_peers.py [TREE ...]

virt-what comes from Debian (``apt-get install virt-what``); without it the virt-what column
says so and the script still prints virtbench's answers.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from virtbench.probes import cpuid as cpuid_mod  # noqa: E402
from virtbench.probes import detect  # noqa: E402
from virtbench.probes import hypervisors as hv  # noqa: E402
from virtbench.probes.model import DetectReport  # noqa: E402

DATA = ROOT / "tests" / "data" / "detect"

# virt-what facts that name a cloud, a platform or a family, not the hypervisor itself.
NOT_A_LAYER = {"aws", "google_cloud", "alibaba_cloud", "alibaba_cloud-ebm", "nutanix_ahv",
               "ovirt", "rhev", "redhat", "ibm_systemz", "xen-dom0", "xen-domU", "xen-hvm",
               "linux_vserver", "linux_vserver-host", "ldoms-control", "ldoms-guest",
               "ldoms-io", "ldoms-root", "virt"}
CONTAINERS = {"docker": "docker", "podman": "podman", "lxc": "lxc", "openvz": "openvz",
              "linux_vserver-guest": "linux-vserver", "illumos-lx": "illumos-lx"}

_DMI_SECTIONS = (
    ("BIOS Information", (("Vendor", "bios_vendor"), ("Version", "bios_version"))),
    ("System Information", (("Manufacturer", "sys_vendor"), ("Product Name", "product_name"),
                            ("Version", "product_version"))),
    ("Base Board Information", (("Manufacturer", "board_vendor"), ("Product Name", "board_name"))),
    ("Chassis Information", (("Manufacturer", "chassis_vendor"),
                             ("Asset Tag", "chassis_asset_tag"))),
)


def _fact_names() -> dict[str, str]:
    out: dict[str, str] = {}
    for d in hv.REGISTRY:
        for fact in d.virt_what:
            if fact not in NOT_A_LAYER:
                out.setdefault(fact, d.name)
    return out


def _arch(tree: Path) -> str:
    given = tree / "arch.txt"
    if given.is_file():
        return given.read_text().strip()
    cpuinfo = (tree / "proc" / "cpuinfo").read_text(errors="replace") if (
        tree / "proc" / "cpuinfo").is_file() else ""
    for needle, arch in (("IBM/S390", "s390x"), ("sun4v", "sparc64"), ("pSeries", "ppc64le"),
                         ("PowerNV", "ppc64le"), ("CPU implementer", "aarch64")):
        if needle in cpuinfo:
            return arch
    return "x86_64"


def _dmidecode(tree: Path) -> str | None:
    base = tree / "sys" / "class" / "dmi" / "id"
    if not base.is_dir():
        return None
    out = []
    for section, keys in _DMI_SECTIONS:
        out.append(section)
        for label, fname in keys:
            f = base / fname
            if f.is_file():
                out.append(f"\t{label}: {f.read_text(errors='replace').strip()}")
        out.append("")
    return "\n".join(out) + "\n"


def _signature(tree: Path) -> str:
    f = tree / "cpuid.txt"
    if not f.is_file():
        return ""
    parsed = cpuid_mod.parse(f.read_text(errors="replace"), "cpuid.txt")
    return parsed.found[-1][1] if parsed.found else ""


def _stub(path: Path, output: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if output is None:
        path.write_text("#!/bin/sh -\nexit 1\n")
    else:
        path.write_text("#!/bin/sh -\ncat <<'EOF'\n" + output.rstrip("\n") + "\nEOF\n")
    path.chmod(0o755)


def virt_what(tree: Path | None) -> str:
    exe = shutil.which("virt-what") or ("/usr/sbin/virt-what"
                                        if Path("/usr/sbin/virt-what").exists() else None)
    if exe is None:
        return "(not installed: apt-get install virt-what)"
    if tree is None:
        proc = subprocess.run([exe], capture_output=True, text=True, timeout=60, check=False)
        return " ".join(proc.stdout.split()) or "(nothing)"
    with tempfile.TemporaryDirectory(prefix="vw-root-") as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(tree, root, symlinks=True)
        _stub(root / "sbin" / "dmidecode", _dmidecode(tree))
        _stub(root / "sbin" / "virt-what-cpuid-helper", _signature(tree))
        _stub(root / "sbin" / "uname", _arch(tree))
        proc = subprocess.run([exe, f"--test-root={root}"], capture_output=True, text=True,
                              timeout=60, check=False)
    return " ".join(proc.stdout.split()) or "(nothing)"


def systemd_detect_virt() -> str:
    exe = shutil.which("systemd-detect-virt")
    if exe is None:
        return "(not installed)"
    answers = []
    for opt in ("--vm", "--container"):
        proc = subprocess.run([exe, opt], capture_output=True, text=True, timeout=30,
                              check=False)
        answers.append(proc.stdout.strip() or "?")
    return f"vm={answers[0]} container={answers[1]}"


# virt-what facts that state a guest type or role: (detail, value) virtbench should agree on.
DETAIL_FACTS = {
    "xen-hvm": ("variant", "hvm"), "xen-domU": ("variant", "pv"), "xen-dom0": ("role", "dom0"),
    "ibm_power-lpar_shared": ("variant", "shared"),
    "ibm_power-lpar_dedicated": ("variant", "dedicated"),
    "ldoms-control": ("role", "control"), "ldoms-guest": ("role", "guest"),
    "ldoms-io": ("role", "io"),
}


# Every disagreement on the fixtures, judged once from the tree's evidence: (who is right,
# why, a piece of the evidence line in virtbench's report that shows it). The bench checks the
# evidence is still in the report (``STALE`` if not) and marks a new disagreement
# ``UNEXPLAINED``: a new one must be judged and written here, or virtbench fixed.
NO_RULE = "virt-what 1.25 has no rule for this platform (systemd-detect-virt knows it)"
NO_LOG = "virt-what reads no kernel log; the tree has nothing else"
JUDGED: dict[str, tuple[str, str, str]] = {
    "acrn": ("virtbench", NO_RULE, "ACRNACRNACRN"),
    "apple-virtualization": ("virtbench", NO_RULE, "Apple Virtualization"),
    "lmhs-sre": ("virtbench", NO_RULE, "SRESRESRESRE"),
    "qnx": ("virtbench", NO_RULE, "QNXQVMBSQG"),
    "bochs": ("virtbench", "virt-what 1.25 reads QEMU from DMI 'Manufacturer: QEMU' only; the "
              "Bochs firmware's vendor is a VM's (systemd: 'bochs'); without CPUID or a log "
              "KVM is not seen, hence QEMU without KVM", "Bochs"),
    "xen-hvm-old-dmesg-only": ("virtbench", NO_LOG, "Hypervisor detected: Xen HVM"),
    "xen-pv-old-dmesg-only": ("virtbench", NO_LOG, "Booting paravirtualized kernel on Xen"),
    "arm64-qemu-kvm": ("virtbench", "virt-what names QEMU from the arm fw-cfg node without "
                       "asking whether KVM runs it; the kernel got an answer from KVM's "
                       "vendor hypercall", "smccc: KVM: hypervisor services detected"),
    "virt-what-alibaba-cloud-arm": ("virtbench", "Debian's virt-what 1.25 predates the "
                                    "upstream rule: upstream's own test expects 'alibaba_cloud "
                                    "kvm' for this tree (DMI: an ECS VM, QEMU machine type "
                                    "virt-rhel7.6.0)", "Alibaba Cloud ECS"),
    "virt-what-aws-kvm-arm": ("virtbench", "virt-what names no hypervisor for AWS on ARM (its "
                              "own test expects only 'aws'); a1.medium is a Nitro (KVM) "
                              "instance, not a *.metal one", "Amazon EC2"),
    "xen-pv-domu": ("virtbench", "virt-what says HVM whenever user-space CPUID shows Xen's "
                    "leaf; PV guests see it too under CPUID faulting. The kernel's "
                    "own word is PV", "guest_type: PV"),
    "xen-pvh": ("virtbench", "virt-what has no PVH: it says 'xen-domU' (PV) for any domU with "
                "/proc/xen; the kernel says PVH", "guest_type: PVH"),
    "ldoms-io": ("virtbench", "virt-what tells I/O and root domains only with Oracle's "
                 "mdprop.py, absent from the tree, else says 'guest'; a guest domain has no "
                 "PCI device", "/sys/bus/pci/devices: "),
    "ldoms-root": ("virtbench", "as ldoms-io; PCI bridges mean the domain owns a root "
                   "complex (virt-what: 'ldoms-root')", "PCI bridges"),
}


def judgement(tree: str, report: DetectReport) -> str:
    """Who is right about one disagreement, and whether the evidence is still there."""
    if tree not in JUDGED:
        return "UNEXPLAINED: judge it from the tree and add it to JUDGED (or fix virtbench)"
    who, why, needle = JUDGED[tree]
    lines = [e for layer in report.layers for e in layer.evidence]
    seen = next((e for e in lines if needle in e), None)
    if seen is None:
        return f"STALE: {who} was right ({why}), but '{needle}' is no longer in the evidence"
    return f"{who} is right: {why}. Evidence: {seen[:110]}"


def verdict(report: DetectReport, facts: str) -> str:
    """``ok``, ``DIFF`` (hypervisor or container), ``DIFF:type`` (guest type or role)."""
    if facts.startswith("("):
        return "-" if facts != "(nothing)" else verdict(report, "")
    names = _fact_names()
    said = facts.split()
    hv_said = {names[f] for f in said if f in names and f not in CONTAINERS}
    ct_said = {CONTAINERS[f] for f in said if f in CONTAINERS}
    hyp = report.hypervisor
    ours_hv = hyp.name if hyp else None
    ours_ct = report.container.name if report.container else None
    hv_ok = (ours_hv in hv_said) if hv_said else ours_hv is None
    # A container virt-what cannot know (kubernetes, nspawn, proot) is not a disagreement.
    ct_ok = (ours_ct in ct_said) if ct_said else ours_ct not in CONTAINERS.values()
    if not (hv_ok and ct_ok):
        return "DIFF"
    for fact in said:
        if fact in DETAIL_FACTS and hyp is not None:
            key, value = DETAIL_FACTS[fact]
            ours = hyp.variant if key == "variant" else hyp.details.get("role")
            if key == "variant" and hyp.details.get("role") == "dom0":
                continue  # virt-what prints no type for dom0
            if ours != value:
                return "DIFF:type"
    return "ok"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="*", type=Path)
    args = ap.parse_args()
    trees = args.trees or sorted(p for p in DATA.iterdir() if p.is_dir()
                                 and not p.name.startswith(("malformed",)))
    live = detect("/")
    vw = virt_what(None)
    print(f"{'tree':34} {'mark':9} {'virtbench':58} {'virt-what':28} systemd-detect-virt")
    print(f"{'(this machine)':34} {verdict(live, vw):9} {live.summary[:58]:58} {vw:28} "
          f"{systemd_detect_virt()}")
    counts = {"ok": 0, "DIFF": 0, "DIFF:type": 0, "-": 0}
    judged: list[tuple[str, str, str]] = []
    for tree in trees:
        report = detect(tree)
        vw = virt_what(tree)
        mark = verdict(report, vw)
        counts[mark] += 1
        print(f"{tree.name[:34]:34} {mark:9} {report.summary[:58]:58} {vw:28} (live only)")
        if mark.startswith("DIFF"):
            judged.append((tree.name, mark, judgement(tree.name, report)))
    print(f"\n{len(trees)} trees: {counts['ok']} agree with virt-what, {counts['DIFF']} name "
          f"another layer, {counts['DIFF:type']} another guest type or role, {counts['-']} "
          "without a virt-what answer")
    if judged:
        print("\nThe disagreements, judged from each tree's evidence:")
        for name, mark, text in judged:
            print(f"  {name} ({mark}): {text}")
        tally: dict[str, int] = {}
        for _, _, text in judged:
            key = text.split(":")[0] if text.startswith(("UNEXPLAINED", "STALE")) else \
                text.split(" is right")[0] + " right"
            tally[key] = tally.get(key, 0) + 1
        print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
