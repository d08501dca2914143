"""virtbench detect on captured trees: one per class, asserting layers and deciding evidence.

The trees under tests/data/detect/ are written by tests/data/detect/build_fixtures.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from virtbench.probes import DetectReport, detect

DATA = Path(__file__).resolve().parent / "data" / "detect"

# case -> ([(kind, name, variant), ...] outermost first, summary, evidence substrings
#          that must appear in the layer evidence (per layer index))
EXPECTED: dict[str, tuple[list[tuple[str, str, str | None]], str, dict[int, list[str]]]] = {
    "bare-metal": (
        [("hardware", "bare-metal", None)],
        "bare metal",
        {0: ["cpuid.txt: CPUID.1:ECX bit 31 (hypervisor) = 0",
             "/proc/cpuinfo: no 'hypervisor' flag"]},
    ),
    "kvm-virtio": (
        [("hypervisor", "kvm", "qemu")],
        "kvm (qemu, PV drivers: virtio_blk, virtio_net)",
        {0: ["cpuid.txt: leaf 0x40000000 signature 'KVMKVMKVM'",
             "dmesg.txt: [    0.000000] Hypervisor detected: KVM",
             "/sys/bus/virtio/drivers/virtio_blk: bound to virtio2"]},
    ),
    "kvm-emulated": (
        [("hypervisor", "kvm", None)],
        "kvm (emulated devices: ata_piix, e1000, platform: redhat)",
        {0: ["dmesg.txt: [    0.000000] Hypervisor detected: KVM",
             "/sys/bus/pci/drivers/ata_piix: bound to 0000:00:01.1",
             "/sys/bus/pci/drivers/e1000: bound to 0000:00:03.0"]},
    ),
    "qemu-tcg": (
        [("hypervisor", "qemu-tcg", "tcg")],
        "qemu-tcg (pure emulation)",
        {0: ["/sys/class/dmi/id/sys_vendor: QEMU",
             "dmesg.txt: [    0.000000] DMI: QEMU Standard PC (i440FX + PIIX, 1996)"]},
    ),
    "xen-pv-domu": (
        [("hypervisor", "xen", "pv")],
        "xen (pv)",
        {0: ["/sys/hypervisor/guest_type: PV",
             "dmesg.txt: [    0.000000] Booting paravirtualized kernel on Xen",
             "dmesg.txt: [    0.000000] Hypervisor detected: Xen PV"]},
    ),
    "xen-pv-old-dmesg-only": (
        [("hypervisor", "xen", "pv")],
        "xen (pv)",
        {0: ["dmesg.txt: Booting paravirtualized kernel on Xen",
             "dmesg.txt: Xen version: 4.4.2 (preserve-AD)"]},
    ),
    "xen-hvm-pv-drivers": (
        [("hypervisor", "xen", "hvm")],
        "xen (hvm, PV drivers: xen-blkfront, xen-netfront, cloud: amazon)",
        {0: ["/sys/hypervisor/guest_type: HVM",
             "dmesg.txt: [    0.000000] Booting paravirtualized kernel on Xen HVM",
             "/sys/bus/xen/drivers/vbd: bound to vbd-51712",
             "/sys/class/dmi/id/bios_version: 4.11.amazon"]},
    ),
    "xen-hvm-emulated": (
        [("hypervisor", "xen", "hvm")],
        "xen (hvm, emulated devices: 8139cp, ata_piix)",
        {0: ["/sys/class/dmi/id/product_name: HVM domU",
             "dmesg.txt: [    0.000000] DMI: Xen HVM domU, BIOS 4.4.2 06/02/2015",
             "/sys/bus/pci/drivers/8139cp: bound to 0000:00:04.0"]},
    ),
    "xen-pvh": (
        [("hypervisor", "xen", "pvh")],
        "xen (pvh, PV drivers: xen-blkfront, xen-netfront)",
        {0: ["/sys/hypervisor/guest_type: PVH",
             "dmesg.txt: [    0.000000] Booting paravirtualized kernel on Xen PVH"]},
    ),
    "xen-dom0": (
        [("hypervisor", "xen", "pv")],
        "xen dom0 (pv)",
        {0: ["/proc/xen/capabilities: control_d",
             "/sys/hypervisor/guest_type: PV",
             "dmesg.txt: [    2.104311] xen_mcelog: /dev/mcelog registered by Xen"]},
    ),
    "vmware": (
        [("hypervisor", "vmware", None)],
        "vmware (PV drivers: vmw_pvscsi, vmxnet3)",
        {0: ["cpuid.txt: leaf 0x40000000 signature 'VMwareVMware'",
             "dmesg.txt: [    0.000000] Hypervisor detected: VMware"]},
    ),
    "hyper-v": (
        [("hypervisor", "hyper-v", None)],
        "hyper-v (PV drivers: hv_netvsc, hv_storvsc, cloud: azure)",
        {0: ["cpuid.txt: leaf 0x40000000 signature 'Microsoft Hv'",
             "dmesg.txt: [    0.000000] Hypervisor detected: Microsoft Hyper-V"]},
    ),
    "docker-in-kvm": (
        [("hypervisor", "kvm", "qemu"), ("container", "docker", None)],
        "kvm (qemu, PV drivers: virtio_blk, virtio_net) > container (docker)",
        {0: ["cpuid.txt: leaf 0x40000000 signature 'KVMKVMKVM'"],
         1: ["/proc/1/environ: container=docker", "/.dockerenv: present"]},
    ),
    "lxc-bare-metal": (
        [("hardware", "bare-metal", None), ("container", "lxc", None)],
        "bare metal > container (lxc)",
        {0: ["/proc/cpuinfo: no 'hypervisor' flag"],
         1: ["/proc/1/environ: container=lxc"]},
    ),
    "wsl2": (
        [("hypervisor", "hyper-v", None), ("container", "wsl", "wsl2")],
        "hyper-v (PV drivers: hv_netvsc, hv_storvsc) > wsl (wsl2)",
        {0: ["dmesg.txt: [    0.000000] Hypervisor detected: Microsoft Hyper-V"],
         1: ["/proc/sys/kernel/osrelease: 5.15.153.1-microsoft-standard-WSL2"]},
    ),
    "xen-hvm-old-dmesg-only": (
        [("hypervisor", "xen", "hvm")],
        "xen (hvm, PV drivers: xen-blkfront, xen-netfront)",
        {0: ["dmesg.txt: Hypervisor detected: Xen HVM",
             "dmesg.txt: Xen Platform PCI: I/O protocol version 1",
             "dmesg.txt: blkfront: xvda: barrier: enabled"]},
    ),
    "aws-nitro": (
        [("hypervisor", "kvm", "amazon-nitro")],
        "kvm (AWS Nitro, cloud: amazon)",
        {0: ["/sys/class/dmi/id/sys_vendor: Amazon EC2"]},
    ),
    "firecracker-mmio": (
        [("hypervisor", "kvm", "firecracker-like")],
        "kvm (firecracker-like micro-VM)",
        {0: ["dmesg.txt: [    0.061201] virtio-mmio: Registering device virtio-mmio.0"]},
    ),
    "virtualbox-kvm-paravirt": (
        [("hypervisor", "virtualbox", "kvm-paravirt")],
        "virtualbox (kvm-paravirt, emulated devices: ahci, e1000)",
        {0: ["/sys/class/dmi/id/product_name: VirtualBox",
             "cpuid.txt: leaf 0x40000000 signature 'KVMKVMKVM'"]},
    ),
    "podman-rootless": (
        [("hypervisor", "kvm", "qemu"), ("container", "podman", None)],
        "kvm (qemu, PV drivers: virtio_blk, virtio_net) > container (podman)",
        {1: ['/run/.containerenv: present (engine="podman)']},
    ),
    "kubernetes-pod": (
        [("hypervisor", "kvm", "qemu"), ("container", "kubernetes", None)],
        "kvm (qemu, PV drivers: virtio_blk, virtio_net) > container (kubernetes pod, "
        "containerd)",
        {1: ["/proc/self/cgroup: 0::/kubepods.slice/",
             "/var/run/secrets/kubernetes.io/serviceaccount: present"]},
    ),
    "nspawn-bare-metal": (
        [("hardware", "bare-metal", None), ("container", "systemd-nspawn", None)],
        "bare metal > container (systemd-nspawn)",
        {1: ["/run/systemd/container: systemd-nspawn"]},
    ),
    "openvz": (
        [("hardware", "bare-metal", None), ("container", "openvz", None)],
        "bare metal > container (openvz)",
        {1: ["/proc/vz: present, /proc/bc: absent"]},
    ),
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_fixture_layers_and_evidence(case: str) -> None:
    layers, summary, evidence = EXPECTED[case]
    report = detect(DATA / case)
    got = [(la.kind, la.name, la.variant) for la in report.layers]
    assert got == layers, report.to_dict()["layers"]
    assert report.summary == summary
    assert not report.live
    for idx, needles in evidence.items():
        lines = report.layers[idx].evidence
        for needle in needles:
            assert any(needle in line for line in lines), (needle, lines)
    for layer in report.layers:
        assert 0.6 <= layer.confidence <= 0.99, (layer.name, layer.confidence)


def test_report_round_trips_through_json() -> None:
    report = detect(DATA / "xen-hvm-pv-drivers")
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["schema_version"] == 1
    again = DetectReport.from_dict(doc)
    assert again.to_dict() == report.to_dict()
    assert again.hypervisor is not None and again.hypervisor.details["role"] == "domU"


def test_newer_schema_is_refused() -> None:
    doc = detect(DATA / "kvm-virtio").to_dict()
    doc["schema_version"] = 99
    with pytest.raises(ValueError, match="newer"):
        DetectReport.from_dict(doc)


def test_malformed_files_do_not_crash_and_lower_confidence() -> None:
    report = detect(DATA / "malformed")
    # The truncated 'Hypervisor detected: Xen H' line still says Xen, weakly.
    assert report.layers[0].name == "xen"
    assert report.layers[0].confidence < 0.8
    joined = "\n".join(report.unreadable)
    assert "/proc/1/environ: Too many levels of symbolic links" in joined
    assert "/sys/class/dmi/id/sys_vendor" in joined
    assert "/cpuid.txt: malformed" in joined
    assert report.facts["steal"]["since_boot_pct"] is None
    assert report.facts["memory"]["total_kib"] is None
    assert report.facts["cpu"]["affinity"] is None  # "0-x,,7-3": nothing valid


def test_unreadable_kernel_log_lowers_confidence(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(DATA / "xen-pv-domu", tree, symlinks=True)
    full = detect(tree).layers[0].confidence
    (tree / "dmesg.txt").unlink()
    (tree / "dmesg.txt").symlink_to("dmesg.txt")  # ELOOP: exists but cannot be read
    report = detect(tree)
    assert report.layers[0].name == "xen" and report.layers[0].variant == "pv"
    assert report.layers[0].confidence < full
    assert any(u.startswith("/dmesg.txt") for u in report.unreadable)


def test_dmesg_only_syslog_format(tmp_path: Path) -> None:
    """A kern.log style capture (syslog prefixes) is read like dmesg output."""
    src = (DATA / "xen-hvm-pv-drivers" / "dmesg.txt").read_text()
    lines = [f"Nov 22 00:00:01 web1 kernel: {line}" for line in src.splitlines()]
    (tmp_path / "dmesg.txt").write_text("\n".join(lines) + "\n")
    report = detect(tmp_path)
    assert [(la.name, la.variant) for la in report.layers] == [("xen", "hvm")]
    assert report.layers[0].details["pv_drivers"] == ["xen-blkfront", "xen-netfront"]


def test_facts_from_fixture() -> None:
    facts = detect(DATA / "docker-in-kvm").facts
    assert facts["clocksource"]["current"] == "kvm-clock"
    assert facts["cpu"]["cgroup_quota_cpus"] == 1.5
    assert facts["cpu"]["usable_cpus"] == 1.5
    assert facts["isolation"]["pid"] == "separate"
    bare = detect(DATA / "bare-metal")
    assert bare.facts["cpu"]["governor"] == "powersave"
    assert bare.facts["nesting"]["cpu_flag"] == "vmx"
    assert bare.facts["storage"]["device"] == "sda"
    assert bare.facts["storage"]["rotational"] is True
    assert any("governor is powersave" in a for a in bare.advice)
    tcg = detect(DATA / "qemu-tcg")
    assert any("Clock source is hpet" in a for a in tcg.advice)
    assert any("QEMU TCG" in a for a in tcg.advice)
    lxc = detect(DATA / "lxc-bare-metal")
    assert lxc.facts["cpu"]["cgroup_quota_cpus"] == 2.0
    assert lxc.facts["memory"]["cgroup_limit_bytes"] == 2 * 2**30
    pv = detect(DATA / "xen-pv-domu")
    assert any("Xen PV guest" in a for a in pv.advice)
    emu = detect(DATA / "xen-hvm-emulated")
    assert any("xen-blkfront/xen-netfront" in a for a in emu.advice)


def test_cpuid_parser_formats() -> None:
    from virtbench.probes.cpuid import parse

    tool = (
        "CPU 0:\n   0x40000000 0x00: eax=0x40000005 ebx=0x566e6558 ecx=0x65584d4d "
        "edx=0x4d4d566e\n"
    )
    assert [n for n, _, _ in parse(tool, "t").found] == ["xen"]
    assert [n for n, _, _ in parse('hypervisor_id = "VMwareVMware"', "t").found] == ["vmware"]
    viridian = (
        "hypervisor_bit=1\n"
        "0x40000000 eax=0x40000005 ebx=0x7263694d ecx=0x666f736f edx=0x76482074\n"
        "0x40000100 eax=0x40000105 ebx=0x566e6558 ecx=0x65584d4d edx=0x4d4d566e\n"
    )
    assert [n for n, _, _ in parse(viridian, "t").found] == ["hyper-v", "xen"]


def test_xen_with_viridian_is_xen(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    shutil.copytree(DATA / "xen-hvm-pv-drivers", tree, symlinks=True)
    (tree / "cpuid.txt").write_text(
        "hypervisor_bit=1\n"
        "0x40000000 eax=0x40000005 ebx=0x7263694d ecx=0x666f736f edx=0x76482074\n"
        "0x40000100 eax=0x40000105 ebx=0x566e6558 ecx=0x65584d4d edx=0x4d4d566e\n"
    )
    report = detect(tree)
    assert report.layers[0].name == "xen"
    assert report.layers[0].confidence >= 0.9


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # journalctl -k -o short-monotonic, Linux 6.x banner wording
        (["[    0.000000] web1 kernel: Booting kernel on Xen",
          "[    0.000000] web1 kernel: Xen version: 4.17.4-pre (preserve-AD)"], ("xen", "pv")),
        (["[    0.755301] kernel: Booting kernel on Xen PVH",
          "[    0.755301] kernel: Xen version: 4.17.4-pre"], ("xen", "pvh")),
        # dmesg -T and dmesg -x
        (["[Sun Nov 22 00:00:00 2026] Hypervisor detected: Xen HVM",
          "[Sun Nov 22 00:00:00 2026] Booting paravirtualized kernel on Xen HVM"], ("xen", "hvm")),
        (["kern  :info  : [    0.000000] Booting paravirtualized kernel with PVH extensions on "
          "Xen"], ("xen", "pvh")),
        # an older HVM kernel: 'Hypervisor detected: Xen' and the platform PCI lines only
        (["[    0.000000] DMI: Xen HVM domU, BIOS 4.5.1 12/22/2016",
          "[    0.000000] Hypervisor detected: Xen",
          "[    0.000000] Xen version 4.5.",
          "[    0.000000] Xen Platform PCI: I/O protocol version 1"], ("xen", "hvm")),
        # a log that lost its first lines: PV from 'Released 0 page(s)' and pcifront
        (["[    0.000000] Released 0 page(s)",
          "[    0.412000] PCI: setting up Xen PCI frontend stub",
          "[    1.120000] xen:balloon: Initialising balloon driver"], ("xen", "pv")),
    ],
)
def test_kernel_log_formats(tmp_path: Path, lines: list[str], expected: tuple[str, str]) -> None:
    (tmp_path / "dmesg.txt").write_text("\n".join(lines) + "\n")
    layer = detect(tmp_path).layers[0]
    assert (layer.name, layer.variant) == expected, layer
    assert layer.evidence and all(e.startswith("dmesg.txt: ") for e in layer.evidence)


def test_cgroup_v2_tightest_ancestor_quota_and_limit(tmp_path: Path) -> None:
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "cgroup").write_text("0::/outer/inner\n")
    outer = tmp_path / "sys" / "fs" / "cgroup" / "outer"
    (outer / "inner").mkdir(parents=True)
    (outer / "cpu.max").write_text("50000 100000\n")  # 0.5 CPU on the parent
    (outer / "inner" / "cpu.max").write_text("max 100000\n")
    (outer / "memory.max").write_text("max\n")
    (outer / "inner" / "memory.max").write_text("1073741824\n")
    facts = detect(tmp_path).facts
    assert facts["cpu"]["cgroup_quota_cpus"] == 0.5
    assert facts["cpu"]["cgroup_quota_source"] == "/sys/fs/cgroup/outer/cpu.max"
    assert facts["memory"]["cgroup_limit_bytes"] == 2**30


def test_overlay_test_dir_gets_advice() -> None:
    report = detect(DATA / "docker-in-kvm")
    assert report.facts["storage"]["fs_type"] == "overlay"
    assert any("copy-up" in a for a in report.advice)


def test_xl_dmesg_means_dom0(tmp_path: Path) -> None:
    (tmp_path / "dmesg.txt").write_text(
        "(XEN) Xen version 4.17.4-pre (Debian 4.17.3+10-g091466ba55-1) gcc (Debian 12.2.0-14)\n"
        "(XEN) Command line: placeholder dom0_mem=4096M,max:4096M\n"
    )
    layer = detect(tmp_path).layers[0]
    assert layer.name == "xen" and layer.details.get("role") == "dom0"


def test_pv_domu_cpu_flags_without_apic(tmp_path: Path) -> None:
    flags = (DATA / "xen-pv-domu" / "proc" / "cpuinfo").read_text()
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(flags)
    layer = detect(tmp_path).layers[0]
    assert (layer.name, layer.variant) == ("xen", "pv")
    assert any("no 'apic' flag" in e for e in layer.evidence)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzzed_trees_never_crash(tmp_path: Path, seed: int) -> None:
    """Truncated files, binary junk and empty files: detection and rendering still work."""
    import random

    from virtbench.probes.render import render

    rng = random.Random(seed)
    junk = [b"\x00", b"\xff\xfe", b"\n\n", b"[", b"]", b":", b"0x", b"=", b"\x1b[31m"]
    for case in sorted(p.name for p in DATA.iterdir() if p.is_dir()):
        tree = tmp_path / case
        shutil.copytree(DATA / case, tree, symlinks=True)
        for path in sorted(tree.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            cut = rng.randint(0, len(data)) if data else 0
            noise = b"".join(rng.choice(junk) for _ in range(rng.randint(0, 4)))
            path.write_bytes(data[:cut] + noise)
        report = detect(tree)
        assert report.layers and report.summary
        # A probe that raised is a bug, even though detect() contains it.
        assert not [u for u in report.unreadable if u.startswith("probe ")], (case, report)
        json.dumps(report.to_dict())
        assert render(report)


def test_tree_with_a_top_folder_and_other_log_names(tmp_path: Path) -> None:
    inner = tmp_path / "capture-web1"
    shutil.copytree(DATA / "xen-pv-old-dmesg-only", inner)
    (inner / "dmesg.txt").rename(inner / "kern.log")
    (inner / "proc").mkdir()  # marks the tree
    report = detect(tmp_path)
    assert (report.layers[0].name, report.layers[0].variant) == ("xen", "pv")
    assert report.layers[0].evidence[0].startswith("kern.log: ")


def test_rhel5_xenlinux_pv_log(tmp_path: Path) -> None:
    """A 2.6.18 xenlinux PV kernel has no pv_ops banner: e820 from Xen and 'Xen reported'."""
    (tmp_path / "dmesg.txt").write_text(
        "Linux version 2.6.18-419.el5xen (mockbuild@x86-041.build.eng.bos.redhat.com)\n"
        "BIOS-provided physical RAM map:\n"
        " Xen: 0000000000000000 - 0000000040800000 (usable)\n"
        "Xen reported: 2394.502 MHz processor.\n"
        "xen_mem: Initialising balloon driver.\n"
        "Xen virtual console successfully installed as xvc0\n"
        "Registering block device major 202\n"
        " xvda: xvda1 xvda2\n"
    )
    layer = detect(tmp_path).layers[0]
    assert (layer.name, layer.variant) == ("xen", "pv")
    assert "dmesg.txt: Xen reported: 2394.502 MHz processor." in layer.evidence


def _kvm_leaf(sig: str) -> str:
    raw = sig.encode().ljust(12, b"\0")
    b, c, d = (int.from_bytes(raw[i:i + 4], "little") for i in (0, 4, 8))
    return (
        f"hypervisor_bit=1\n0x40000000 eax=0x40000001 ebx=0x{b:08x} ecx=0x{c:08x} "
        f"edx=0x{d:08x}\n"
    )


@pytest.mark.parametrize(
    ("files", "expected", "needle"),
    [
        ({"proc/sysinfo": "Manufacturer: IBM\nVM00 Name: LINUX01\n"
          "VM00 Control Program: z/VM    7.2.0\n"}, ("zvm", None, None),
         "/proc/sysinfo: VM00 Control Program: z/VM"),
        ({"proc/sysinfo": "VM00 Control Program: KVM/Linux\n"}, ("kvm", None, None),
         "KVM/Linux"),
        ({"proc/device-tree/ibm,partition-name": "lpar1\0", "proc/device-tree/hmc-managed?": ""},
         ("powervm", None, None), "HMC-managed LPAR"),
        ({"cpuid.txt": _kvm_leaf("bhyve bhyve ")}, ("bhyve", None, None), "'bhyve bhyve'"),
        ({"cpuid.txt": _kvm_leaf(" lrpepyh  vr")}, ("parallels", None, None), "lrpepyh"),
        ({"dmesg.txt": "[    0.000000] Hypervisor detected: ACRN\n"}, ("acrn", None, None),
         "Hypervisor detected: ACRN"),
        ({"sys/class/dmi/id/sys_vendor": "Google\n",
          "sys/class/dmi/id/product_name": "Google Compute Engine\n",
          "dmesg.txt": "[    0.000000] Hypervisor detected: KVM\n"},
         ("kvm", "google", "google"), "/sys/class/dmi/id/product_name: Google Compute Engine"),
        ({"sys/class/dmi/id/sys_vendor": "QEMU\n",
          "sys/class/dmi/id/chassis_asset_tag": "OracleCloud.com\n",
          "cpuid.txt": _kvm_leaf("KVMKVMKVM")},
         ("kvm", "qemu", "oracle"), "/sys/class/dmi/id/chassis_asset_tag: OracleCloud.com"),
    ],
)
def test_small_trees_for_other_platforms(
    tmp_path: Path, files: dict[str, str], expected: tuple[str, str | None, str | None],
    needle: str,
) -> None:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    layer = detect(tmp_path).layers[0]
    assert (layer.name, layer.variant, layer.details.get("cloud")) == expected, layer
    assert any(needle in e for e in layer.evidence), layer.evidence
