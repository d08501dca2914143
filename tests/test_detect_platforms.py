"""detect on one captured tree per platform that virt-what and systemd-detect-virt know.

Trees: tests/data/detect/virt-what-* (virt-what's own captures, converted by
import_virt_what.py) and the hand-written ones of build_platform_fixtures.py; each has a
README.md with the provenance of every file. Checked: the identity of each layer, the variant,
the role, the cloud / platform name, and that bare metal claims no hypervisor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from virtbench.probes import detect
from virtbench.probes import hypervisors as hv

DATA = Path(__file__).resolve().parent / "data" / "detect"

BARE = ("hardware", "bare-metal", None)

# case -> (layers as (kind, name, variant), outermost first; details of the first layer
#          that must match: role / cloud / platform / disk / net)
EXPECTED: dict[str, tuple[list[tuple[str, str, str | None]], dict[str, Any]]] = {
    # -- virt-what's captures ----------------------------------------------------------------
    "virt-what-aws-baremetal-x86": ([BARE], {"cloud": "amazon"}),
    "virt-what-aws-kvm-arm": ([("hypervisor", "kvm", "amazon-nitro")], {"cloud": "amazon"}),
    "virt-what-aws-kvm-x86": ([("hypervisor", "kvm", "amazon-nitro")], {"cloud": "amazon"}),
    "virt-what-aws-xen-x86": ([("hypervisor", "xen", "hvm")], {"cloud": "amazon",
                                                              "role": "domU"}),
    "virt-what-baremetal": ([BARE], {}),
    "virt-what-bhyve": ([("hypervisor", "bhyve", None)], {}),
    "virt-what-docker": ([BARE, ("container", "docker", None)], {}),
    "virt-what-esx4.1": ([("hypervisor", "vmware", None)], {}),
    "virt-what-hyperv": ([("hypervisor", "hyper-v", None)], {}),
    "virt-what-kvm": ([("hypervisor", "kvm", "qemu")], {}),
    "virt-what-kvm-explicit-cpu": ([("hypervisor", "kvm", "qemu")], {}),
    "virt-what-ldoms": ([("hypervisor", "ldoms", None)], {"role": "guest"}),
    "virt-what-linux-vserver": ([BARE, ("container", "linux-vserver", None)], {}),
    "virt-what-lkvm": ([("hypervisor", "kvm", "kvmtool")], {}),
    "virt-what-lkvm-arm": ([("hypervisor", "kvm", "kvmtool")], {}),
    "virt-what-lx86": ([("hypervisor", "powervm-lx86", None)], {}),
    "virt-what-lxc": ([BARE, ("container", "lxc", None)], {}),
    "virt-what-nutanix-ahv": ([("hypervisor", "kvm", None)], {"platform": "nutanix-ahv"}),
    "virt-what-parallels-desktop": ([("hypervisor", "parallels", "kvm-paravirt")], {}),
    "virt-what-podman": ([BARE, ("container", "podman", None)], {}),
    "virt-what-ppc64-baremetal": ([BARE], {}),
    "virt-what-ppc64-kvm": ([("hypervisor", "kvm", "powerkvm")], {}),
    "virt-what-ppc64-lpar-dedicated": ([("hypervisor", "powervm", "dedicated")], {}),
    "virt-what-ppc64-lpar-shared": ([("hypervisor", "powervm", "shared")], {}),
    "virt-what-qemu": ([("hypervisor", "qemu-tcg", "tcg")], {}),
    "virt-what-qemu-arm": ([("hypervisor", "qemu-tcg", "tcg")], {}),
    "virt-what-qemu-smbios": ([("hypervisor", "qemu-tcg", "tcg")], {}),
    "virt-what-qemu-smbios-kvm": ([("hypervisor", "kvm", "qemu")], {}),
    "virt-what-rhel5-xen-dom0": ([("hypervisor", "xen", "pv")], {"role": "dom0"}),
    "virt-what-rhel5-xen-domU-hvm": ([("hypervisor", "xen", "hvm")], {"role": "domU"}),
    "virt-what-rhel5-xen-domU-hvm-ia64": ([("hypervisor", "xen", "hvm")], {}),
    "virt-what-rhel5-xen-domU-pv": ([("hypervisor", "xen", "pv")], {"role": "domU"}),
    "virt-what-rhev": ([("hypervisor", "kvm", None)], {"platform": "rhev"}),
    "virt-what-vmm": ([("hypervisor", "openbsd-vmm", None)], {}),
    "virt-what-xen-arm": ([("hypervisor", "xen", None)], {}),
    "virt-what-zvm": ([("hypervisor", "zvm", None)], {}),
    # virt-what 2023 (zdyxry/virt-what mirror): trees 1.20 did not have
    "virt-what-alibaba-cloud-arm": ([("hypervisor", "kvm", None)], {"cloud": "alibaba"}),
    "virt-what-alibaba-cloud-x86": ([("hypervisor", "kvm", None)], {"cloud": "alibaba"}),
    "virt-what-crio": ([BARE, ("container", "crio", None)], {}),
    "virt-what-esx-arm": ([("hypervisor", "vmware", None)], {}),
    "virt-what-google-cloud": ([("hypervisor", "kvm", "google")], {"cloud": "google"}),
    "virt-what-illumos-lx": ([BARE, ("container", "illumos-lx", None)], {}),
    "virt-what-oci": ([BARE, ("container", "generic", None)], {}),
    "virt-what-upcloud": ([("hypervisor", "kvm", "qemu")], {"cloud": "upcloud"}),
    # -- written after documentation and sources (build_platform_fixtures.py) --------------
    "s390x-lpar": ([("hypervisor", "prsm", "lpar")], {}),
    "s390x-kvm": ([("hypervisor", "kvm", None)], {}),
    "arm64-vmware": ([("hypervisor", "vmware", None)], {}),
    "arm64-qemu-kvm": ([("hypervisor", "kvm", "qemu")], {}),
    "apple-virtualization": ([("hypervisor", "apple", None)], {}),
    "illumos-lx-zone": ([BARE, ("container", "illumos-lx", None)], {}),
    "uml": ([("hypervisor", "uml", None)], {}),
    "acrn": ([("hypervisor", "acrn", None)], {}),
    "qnx": ([("hypervisor", "qnx", None)], {}),
    "lmhs-sre": ([("hypervisor", "sre", None)], {}),
    "alibaba-ecs-bare-metal": ([BARE], {"cloud": "alibaba"}),
    "alibaba-ecs-kvm": ([("hypervisor", "kvm", None)], {"cloud": "alibaba"}),
    "aws-ec2-metal": ([BARE], {"cloud": "amazon"}),
    "upcloud": ([("hypervisor", "kvm", None)], {"cloud": "upcloud"}),
    "ovirt": ([("hypervisor", "kvm", None)], {"platform": "ovirt"}),
    "ldoms-control": ([("hypervisor", "ldoms", None)], {"role": "control"}),
    "ldoms-io": ([("hypervisor", "ldoms", None)], {"role": "io"}),
    "ldoms-root": ([("hypervisor", "ldoms", None)], {"role": "root"}),
    "linux-vserver-host": ([BARE], {}),
    "xen-pv-2.6.18-no-log": ([("hypervisor", "xen", "pv")],
                             {"role": "domU", "disk": "pv", "net": "pv"}),
    "xen-pv-xenbus-no-driver": ([("hypervisor", "xen", "pv")],
                                {"role": "domU", "disk": "pv", "net": "pv"}),
    "proot": ([BARE, ("container", "proot", None)], {}),
    "virtualpc": ([("hypervisor", "virtualpc", None)], {}),
    "hitachi-virtage": ([("hypervisor", "virtage", None)], {}),
    "bochs": ([("hypervisor", "qemu-tcg", "tcg")], {}),
    "rkt-container": ([BARE, ("container", "rkt", None)], {}),
    "pouch-container": ([BARE, ("container", "pouch", None)], {}),
    "lxc-libvirt": ([BARE, ("container", "lxc", None)], {}),
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_platform(case: str) -> None:
    layers, details = EXPECTED[case]
    report = detect(DATA / case)
    got = [(la.kind, la.name, la.variant) for la in report.layers]
    assert got == layers, (case, report.summary, report.layers[0].evidence)
    first = report.layers[0]
    for key, value in details.items():
        assert first.details.get(key) == value, (case, key, first.details)
    if first.kind == "hardware":
        assert report.hypervisor is None
    else:
        # Decided by evidence from this tree, and confident about it.
        assert first.evidence and first.confidence >= 0.5, (case, first)
    assert not [u for u in report.unreadable if u.startswith("probe ")], report.unreadable


@pytest.mark.parametrize("case", sorted(p.name for p in DATA.iterdir() if p.is_dir()))
def test_every_fixture_says_where_its_files_came_from(case: str) -> None:
    readme = (DATA / case / "README.md").read_text()
    assert "came from" in readme or "Copied verbatim" in readme


# `systemd-detect-virt --list` (systemd 252), every id but the generic ones.
SYSTEMD_IDS = [
    "kvm", "amazon", "qemu", "bochs", "xen", "uml", "vmware", "oracle", "microsoft", "zvm",
    "parallels", "bhyve", "qnx", "acrn", "powervm", "apple", "sre", "google", "systemd-nspawn",
    "lxc-libvirt", "lxc", "openvz", "docker", "podman", "rkt", "wsl", "proot", "pouch",
]


def test_every_systemd_id_has_a_definition_or_container_name() -> None:
    from virtbench.probes.container import _ENV_NAMES

    names = hv.systemd_names()
    containers = set(_ENV_NAMES) | {"openvz", "proot", "wsl"}
    missing = [i for i in SYSTEMD_IDS if i not in names and i not in containers]
    assert not missing


def test_one_definition_holds_a_hypervisor() -> None:
    """Adding a hypervisor is one definition: every table the probes use comes from them."""
    from virtbench.probes import cpuid

    assert set(cpuid.SIGNATURES.values()) <= {d.name for d in hv.REGISTRY}
    assert cpuid.lookup("OpenBSDVMM58") == "openbsd-vmm"
    assert cpuid.variant_of("LKVMLKVMLKVM") == "kvmtool"
    assert hv.systemd_names()["microsoft"] == "hyper-v"
    assert len({d.name for d in hv.REGISTRY}) == len(hv.REGISTRY)
    # The paravirtual drivers (names, log lines, block device names) too.
    from virtbench.probes import devices

    pv = {k: (d.name, d.family) for k, d in devices.DRIVERS.items() if d.pv}
    assert pv == {k: (drv.name, fam) for fam, drv in hv.pv_drivers()
                  for k in (drv.name, *drv.keys)}
    assert pv["vbd"] == ("xen-blkfront", "xen") and pv["hv_netvsc"] == ("hv_netvsc", "hyper-v")
    logged = {name for _, name in devices._LOG_RULES}
    assert {drv.name for _, drv in hv.pv_drivers()} <= logged


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # A Chromebook's firmware says 'Google' too: not Google Compute Engine.
        ({"sys/class/dmi/id/sys_vendor": "Google\n", "sys/class/dmi/id/product_name": "Eve\n",
          "cpuid.txt": "hypervisor_bit=0\n"}, ("bare-metal", None, None)),
        # An owner's asset tag naming a hypervisor does not make one.
        ({"sys/class/dmi/id/sys_vendor": "Supermicro\n",
          "sys/class/dmi/id/chassis_asset_tag": "vmware-host-07\n",
          "cpuid.txt": "hypervisor_bit=0\n"}, ("bare-metal", None, None)),
        # Hyper-V from DMI files alone (no CPUID, no log).
        ({"sys/class/dmi/id/sys_vendor": "Microsoft Corporation\n",
          "sys/class/dmi/id/product_name": "Virtual Machine\n"}, ("hyper-v", None, None)),
        ({"sys/class/dmi/id/sys_vendor": "Google\n",
          "sys/class/dmi/id/product_name": "Google Compute Engine\n",
          "cpuid.txt": "hypervisor_bit=0\n"}, ("bare-metal", None, "google")),  # GCE metal
    ],
)
def test_dmi_strings_that_must_not_decide(
    tmp_path: Path, files: dict[str, str], expected: tuple[str, str | None, str | None]
) -> None:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    layer = detect(tmp_path).layers[0]
    assert (layer.name, layer.variant, layer.details.get("cloud")) == expected, layer


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_xen_hvm_from_apic_and_firmware(tmp_path: Path) -> None:
    """No guest_type, no log, no Xen DMI: a local APIC and SMBIOS firmware mean HVM."""
    cpuinfo = (DATA / "kvm-virtio" / "proc" / "cpuinfo").read_text()
    layer = detect(_tree(tmp_path, {
        "sys/hypervisor/type": "xen\n", "proc/cpuinfo": cpuinfo,
        "sys/class/dmi/id/sys_vendor": "Dell Inc.\n",
        "cpuid.txt": "hypervisor_id = \"XenVMMXenVMM\"\n"})).layers[0]
    assert (layer.name, layer.variant) == ("xen", "hvm"), layer


def test_a_vmware_workstation_host_is_bare_metal(tmp_path: Path) -> None:
    cpuinfo = (DATA / "bare-metal" / "proc" / "cpuinfo").read_text()
    report = detect(_tree(tmp_path, {
        "proc/cpuinfo": cpuinfo, "cpuid.txt": "hypervisor_bit=0\n",
        "dmesg.txt": "[   12.000000] vmw_vmci: Initialized host personality\n"
                     "[   12.100000] vboxdrv: Found 8 processor cores\n"}))
    assert report.layers[0].kind == "hardware", report.layers[0]


def test_xen_on_arm_from_the_log(tmp_path: Path) -> None:
    layer = detect(_tree(tmp_path, {
        "dmesg.txt": "[    0.000000] Xen 4.17 support found\n"})).layers[0]
    assert layer.name == "xen", layer


def test_an_unknown_device_tree_hypervisor(tmp_path: Path) -> None:
    layer = detect(_tree(tmp_path, {
        "proc/device-tree/hypervisor/compatible": "acme,hv\0"})).layers[0]
    assert (layer.kind, layer.name) == ("hypervisor", "unknown"), layer


# Each id of `systemd-detect-virt --list` from the source systemd reads for it (src/basic/
# virt.c: CPUID, the DMI vendor table, /sys/hypervisor, the device tree, /proc/sysinfo,
# cpuinfo, the SMBIOS VM bit, container markers): (files, expected layer names).
_NO_HV = {"cpuid.txt": "hypervisor_bit=0\n"}


def _leaf(sig: str) -> str:
    regs = [int.from_bytes(sig.encode().ljust(12, b"\0")[i:i + 4], "little") for i in (0, 4, 8)]
    return ("hypervisor_bit=1\n0x40000000 eax=0x40000001 "
            f"ebx=0x{regs[0]:08x} ecx=0x{regs[1]:08x} edx=0x{regs[2]:08x}\n")


SYSTEMD_TREES: dict[str, tuple[dict[str, str | bytes], list[str]]] = {
    "none": (_NO_HV, ["bare-metal"]),
    "kvm": ({"cpuid.txt": _leaf("KVMKVMKVM")}, ["kvm"]),
    "amazon": ({"sys/class/dmi/id/sys_vendor": "Amazon EC2\n",
                "sys/class/dmi/id/product_name": "m5.large\n"}, ["kvm"]),
    "qemu": ({"cpuid.txt": _leaf("TCGTCGTCGTCG")}, ["qemu-tcg"]),
    "bochs": ({"sys/class/dmi/id/sys_vendor": "Bochs\n"}, ["qemu-tcg"]),
    "xen": ({"proc/xen/capabilities": "\n"}, ["xen"]),
    "uml": ({"proc/cpuinfo": "processor\t: 0\nvendor_id\t: User Mode Linux\n"}, ["uml"]),
    "vmware": ({"sys/class/dmi/id/product_name": "VMware Virtual Platform\n"}, ["vmware"]),
    "oracle": ({"sys/class/dmi/id/sys_vendor": "innotek GmbH\n",
                "sys/class/dmi/id/product_name": "VirtualBox\n"}, ["virtualbox"]),
    "microsoft": ({"cpuid.txt": _leaf("Microsoft Hv")}, ["hyper-v"]),
    "zvm": ({"proc/sysinfo": "VM00 Control Program: z/VM    7.2.0\n"}, ["zvm"]),
    "parallels": ({"sys/class/dmi/id/sys_vendor": "Parallels Software International Inc.\n"},
                  ["parallels"]),
    "bhyve": ({"cpuid.txt": _leaf("bhyve bhyve ")}, ["bhyve"]),
    "qnx": ({"cpuid.txt": _leaf("QNXQVMBSQG")}, ["qnx"]),
    "acrn": ({"cpuid.txt": _leaf("ACRNACRNACRN")}, ["acrn"]),
    "powervm": ({"proc/device-tree/ibm,partition-name": "lpar1\0",
                 "proc/device-tree/hmc-managed?": ""}, ["powervm"]),
    "apple": ({"sys/class/dmi/id/product_name": "Apple Virtualization Generic Platform\n"},
              ["apple"]),
    "sre": ({"cpuid.txt": _leaf("SRESRESRESRE")}, ["sre"]),
    "google": ({"sys/class/dmi/id/product_name": "Google Compute Engine\n"}, ["kvm"]),
    "vm-other": ({"cpuid.txt": _leaf("AcmeHVAcmeHV")}, ["unknown"]),
    "systemd-nspawn": ({"run/host/container-manager": "systemd-nspawn\n", **_NO_HV},
                       ["bare-metal", "systemd-nspawn"]),
    "lxc-libvirt": ({"proc/1/environ": b"container=lxc-libvirt\0", **_NO_HV},
                    ["bare-metal", "lxc"]),
    "lxc": ({"proc/1/environ": b"container=lxc\0", **_NO_HV}, ["bare-metal", "lxc"]),
    "openvz": ({"proc/vz/veinfo": "", **_NO_HV}, ["bare-metal", "openvz"]),
    "docker": ({".dockerenv": "", **_NO_HV}, ["bare-metal", "docker"]),
    "podman": ({"run/.containerenv": "engine=\"podman-4.3.1\"\n", **_NO_HV},
               ["bare-metal", "podman"]),
    "rkt": ({"run/systemd/container": "rkt\n", **_NO_HV}, ["bare-metal", "rkt"]),
    "wsl": ({"proc/sys/kernel/osrelease": "4.4.0-19041-Microsoft\n", **_NO_HV},
            ["bare-metal", "wsl"]),
    "proot": ({"proc/self/status": "Name:\tsh\nTracerPid:\t42\n", "proc/42/comm": "proot\n",
               **_NO_HV}, ["bare-metal", "proot"]),
    "pouch": ({"proc/1/environ": b"container=pouch\0", **_NO_HV}, ["bare-metal", "pouch"]),
    "container-other": ({"proc/1/environ": b"container=acme-runtime\0", **_NO_HV},
                        ["bare-metal", "acme-runtime"]),
}


@pytest.mark.parametrize("sid", sorted(SYSTEMD_TREES))
def test_every_systemd_id_is_detected(tmp_path: Path, sid: str) -> None:
    files, expected = SYSTEMD_TREES[sid]
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    report = detect(tmp_path)
    assert [la.name for la in report.layers] == expected, (sid, report.summary)


def test_the_systemd_trees_cover_this_machines_list() -> None:
    """Every id the installed systemd-detect-virt knows has a tree above (the static list
    is systemd 252's; a newer systemd's new ids fail this test until they are covered)."""
    import shutil
    import subprocess

    ids = set(SYSTEMD_IDS) | {"none", "vm-other", "container-other"}
    exe = shutil.which("systemd-detect-virt")
    if exe is not None:
        out = subprocess.run([exe, "--list"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
        ids |= set(out.split())
    assert ids - set(SYSTEMD_TREES) == set()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # XENFEAT_dom0 (bit 11) in the features Xen gives the domain: dom0 without xenfs.
        ({"sys/hypervisor/type": "xen\n", "sys/hypervisor/properties/features": "00000801\n"},
         ("xen", "dom0")),
        # A XenServer domU's features (systemd issue 8844): bit 11 clear.
        ({"sys/hypervisor/type": "xen\n", "sys/hypervisor/properties/features": "00002705\n"},
         ("xen", "domU")),
        # The SMBIOS VM bit with no other clue: a VM of an unknown kind (systemd's vm-other).
        ({"sys/firmware/dmi/entries/0-0/raw": bytes([0, 24] + [0] * 17 + [0x10] + [0] * 4)},
         ("unknown", None)),
        ({"sys/firmware/dmi/entries/0-0/raw": bytes([0, 24] + [0] * 22), **_NO_HV},
         ("bare-metal", None)),
        ({"sys/class/dmi/id/bios_vendor": "VMW\n"}, ("vmware", None)),
        # Virtual PC: Hyper-V's firmware strings, but the CPU shows no hypervisor.
        ({"sys/class/dmi/id/sys_vendor": "Microsoft Corporation\n",
          "sys/class/dmi/id/product_name": "Virtual Machine\n", **_NO_HV}, ("virtualpc", None)),
        ({"sys/class/dmi/id/sys_vendor": "Microsoft Corporation\n",
          "sys/class/dmi/id/product_name": "Virtual Machine\n",
          "cpuid.txt": _leaf("Microsoft Hv")}, ("hyper-v", None)),
        # A name read from a file is a layer name only if it looks like one.
        ({"sys/hypervisor/type": "zz\x1b[31mred\n"}, ("unknown", None)),
    ],
)
def test_sources_systemd_and_virt_what_read(
    tmp_path: Path, files: dict[str, str | bytes], expected: tuple[str, str | None]
) -> None:
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    layer = detect(tmp_path).layers[0]
    assert (layer.name, layer.details.get("role")) == expected, layer


# Every fact of virt-what's manual (virt-what.pod, 2023) -> a tree and what virtbench must say
# there: (tree, layer name, variant / role / cloud / platform of that layer).
VIRT_WHAT_FACTS: dict[str, tuple[str, str, dict[str, str]]] = {
    "alibaba_cloud": ("virt-what-alibaba-cloud-x86", "kvm", {"cloud": "alibaba"}),
    "alibaba_cloud-ebm": ("alibaba-ecs-bare-metal", "bare-metal", {"cloud": "alibaba"}),
    "aws": ("virt-what-aws-kvm-x86", "kvm", {"cloud": "amazon"}),
    "bhyve": ("virt-what-bhyve", "bhyve", {}),
    "crio": ("virt-what-crio", "crio", {}),
    "docker": ("virt-what-docker", "docker", {}),
    "google_cloud": ("virt-what-google-cloud", "kvm", {"cloud": "google"}),
    "hyperv": ("virt-what-hyperv", "hyper-v", {}),
    "ibm_power-kvm": ("virt-what-ppc64-kvm", "kvm", {"variant": "powerkvm"}),
    "ibm_power-lpar_shared": ("virt-what-ppc64-lpar-shared", "powervm", {"variant": "shared"}),
    "ibm_power-lpar_dedicated": ("virt-what-ppc64-lpar-dedicated", "powervm",
                                 {"variant": "dedicated"}),
    "ibm_systemz": ("virt-what-zvm", "zvm", {}),
    "ibm_systemz-lpar": ("s390x-lpar", "prsm", {"variant": "lpar"}),
    "ibm_systemz-zvm": ("virt-what-zvm", "zvm", {}),
    "ibm_systemz-kvm": ("s390x-kvm", "kvm", {}),
    "illumos-lx": ("virt-what-illumos-lx", "illumos-lx", {}),
    "ldoms": ("virt-what-ldoms", "ldoms", {}),
    "ldoms-control": ("ldoms-control", "ldoms", {"role": "control"}),
    "ldoms-guest": ("virt-what-ldoms", "ldoms", {"role": "guest"}),
    "ldoms-io": ("ldoms-io", "ldoms", {"role": "io"}),
    "ldoms-root": ("ldoms-root", "ldoms", {"role": "root"}),
    "linux_vserver": ("virt-what-linux-vserver", "linux-vserver", {}),
    "linux_vserver-guest": ("virt-what-linux-vserver", "linux-vserver", {}),
    "linux_vserver-host": ("linux-vserver-host", "bare-metal", {}),
    "lxc": ("virt-what-lxc", "lxc", {}),
    "kvm": ("virt-what-kvm", "kvm", {}),
    "lkvm": ("virt-what-lkvm", "kvm", {"variant": "kvmtool"}),
    "nutanix_ahv": ("virt-what-nutanix-ahv", "kvm", {"platform": "nutanix-ahv"}),
    "oci": ("virt-what-oci", "generic", {}),
    "openvz": ("openvz", "openvz", {}),
    "ovirt": ("ovirt", "kvm", {"platform": "ovirt"}),
    "parallels": ("virt-what-parallels-desktop", "parallels", {}),
    "podman": ("virt-what-podman", "podman", {}),
    "powervm_lx86": ("virt-what-lx86", "powervm-lx86", {}),
    "qemu": ("virt-what-qemu", "qemu-tcg", {}),
    "rhev": ("virt-what-rhev", "kvm", {"platform": "rhev"}),
    "redhat": ("kvm-emulated", "kvm", {"platform": "redhat"}),
    "uml": ("uml", "uml", {}),
    "upcloud": ("virt-what-upcloud", "kvm", {"cloud": "upcloud"}),
    "virtage": ("hitachi-virtage", "virtage", {}),
    "virtualbox": ("virtualbox-kvm-paravirt", "virtualbox", {}),
    "virtualpc": ("virtualpc", "virtualpc", {}),
    "vmm": ("virt-what-vmm", "openbsd-vmm", {}),
    "vmware": ("virt-what-esx4.1", "vmware", {}),
    "xen": ("virt-what-rhel5-xen-domU-pv", "xen", {}),
    "xen-dom0": ("virt-what-rhel5-xen-dom0", "xen", {"role": "dom0"}),
    "xen-domU": ("virt-what-rhel5-xen-domU-pv", "xen", {"role": "domU", "variant": "pv"}),
    "xen-hvm": ("virt-what-rhel5-xen-domU-hvm", "xen", {"variant": "hvm"}),
}
# 'virt' (some hypervisor, kind unknown) is systemd's vm-other tree above; 'ibm_systemz-direct'
# is virt-what's guess for an s390 sysinfo with neither LPAR nor VM lines ("unlikely to be
# correct", its source says): no such machine is documented.
VIRT_WHAT_ELSEWHERE = {"virt", "ibm_systemz-direct"}


@pytest.mark.parametrize("fact", sorted(VIRT_WHAT_FACTS))
def test_every_virt_what_fact_is_detected(fact: str) -> None:
    tree, name, want = VIRT_WHAT_FACTS[fact]
    report = detect(DATA / tree)
    layer = next((la for la in report.layers if la.name == name), None)
    assert layer is not None, (fact, report.summary)
    got = {k: (layer.variant if k == "variant" else layer.details.get(k)) for k in want}
    assert got == want, (fact, report.summary)


def test_the_virt_what_facts_cover_its_manual_and_this_machines_script() -> None:
    import re
    import shutil

    manual = {  # virt-what.pod (2023), every '=item B<fact>'
        "alibaba_cloud", "alibaba_cloud-ebm", "aws", "bhyve", "crio", "docker", "google_cloud",
        "hyperv", "ibm_power-kvm", "ibm_power-lpar_shared", "ibm_power-lpar_dedicated",
        "ibm_systemz", "ibm_systemz-direct", "ibm_systemz-lpar", "ibm_systemz-zvm",
        "ibm_systemz-kvm", "illumos-lx", "ldoms", "ldoms-control", "ldoms-guest", "ldoms-io",
        "ldoms-root", "linux_vserver", "linux_vserver-guest", "linux_vserver-host", "lxc",
        "kvm", "lkvm", "nutanix_ahv", "oci", "openvz", "ovirt", "parallels", "podman",
        "powervm_lx86", "qemu", "rhev", "redhat", "uml", "upcloud", "virt", "virtage",
        "virtualbox", "virtualpc", "vmm", "vmware", "xen", "xen-dom0", "xen-domU", "xen-hvm",
    }
    script = shutil.which("virt-what") or ("/usr/sbin/virt-what" if Path(
        "/usr/sbin/virt-what").is_file() else None)
    if script is not None:
        manual |= set(re.findall(r'^\s*echo "?([a-z][A-Za-z0-9_-]+)"?\s*$',
                                 Path(script).read_text(errors="replace"), re.M))
    assert manual - set(VIRT_WHAT_FACTS) - VIRT_WHAT_ELSEWHERE == set()
