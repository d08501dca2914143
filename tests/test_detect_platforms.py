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
