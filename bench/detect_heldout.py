"""virtbench detect on captured system trees that are NOT in this repository (held-out set).

The trees are other projects' test inputs, read from local git mirrors of those projects
(``git`` object store, no work tree needed): util-linux's ``lscpu`` dumps
(``tests/ts/lscpu/dumps/``) and hwloc's Linux topology captures (``tests/hwloc/linux/``), each
a real machine's ``/proc`` and ``/sys`` (whatever the capturing tool kept); and single captured
files assembled into trees: percona-toolkit's pt-summary samples (kernel logs, /proc/cpuinfo,
dmidecode), facter's, GLPI Agent's and insights-core's dmidecode outputs, Ansible's
/proc/cpuinfo files, New Relic's /proc/self/cgroup and /proc/self/mountinfo captures and the
Azure Linux agent's /proc/self/cgroup files.
A dmidecode output is transcribed field for field into the ``/sys/class/dmi/id`` files the
kernel shows (values unchanged); every other file is used as it is. Every tree is pinned to a
commit, extracted into a temporary directory (regular files, directories and links inside the
tree only: the extraction ``virtbench detect --root ARCHIVE`` uses) and given to ``detect``.
The expected answer of each tree is written below with the evidence it rests on (the capturing
project's notes, ``lscpu``'s expected output, the tree's own files), decided without looking
at virtbench's answer.

Trees detect was fixed on are copied verbatim into ``tests/data/detect-captured/`` (with
their provenance) and tested there; the bench marks them ``*`` and counts them apart: the
held-out figure is over the others only.

A tree is right when the innermost hypervisor is one of the accepted names (``bare-metal``:
no hypervisor layer at all; ``*``: any, for a container-only capture), the container is the
expected one (or none is claimed), and the PV/HVM type, the role, the cloud and the platform
name match where the tree shows them. Trees of platforms that neither virt-what nor
systemd-detect-virt know (the PS3's hypervisor) are printed but not scored.

    M=/work/.mirror; PYTHONPATH=src python bench/detect_heldout.py \\
        $M/util-linux+util-linux/repo $M/open-mpi+hwloc/repo $M/percona+percona-toolkit/repo \\
        $M/puppetlabs+facter/repo $M/glpi-project+glpi-agent/repo $M/ansible+ansible/repo \\
        $M/RedHatInsights+insights-core/repo $M/newrelic+newrelic-python-agent/repo \\
        $M/Azure+WALinuxAgent/repo

A mirror is recognised by the ``owner+name`` in its path, or by ``--repo owner/name=PATH``;
trees of mirrors not given are skipped. Prints one line per tree (platform, expected, got,
mark), then per-platform and total scores.
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from virtbench.probes import detect  # noqa: E402
from virtbench.probes.snapshot import _safe_extract  # noqa: E402

CAPTURED = ROOT / "tests" / "data" / "detect-captured"
UL = "util-linux/util-linux"
HW = "open-mpi/hwloc"
BARE = "bare-metal"


@dataclass(frozen=True)
class Tree:
    repo: str
    path: str
    commit: str
    platform: str
    hypervisor: frozenset[str]
    why: str
    variant: frozenset[str] = frozenset()
    role: frozenset[str] = frozenset()
    scored: bool = True
    # Trees assembled from single captured files: (file in the repository, path in the tree);
    # a tree path ending in ``sys/class/dmi/id`` takes a ``dmidecode`` output, transcribed
    # field for field into the files the kernel shows there (values unchanged).
    files: tuple[tuple[str, str], ...] = ()
    container: frozenset[str] = frozenset()  # expected container layer; empty: none claimed
    label: str = ""
    cloud: frozenset[str] = frozenset()  # expected cloud name (any layer's details), if set
    platform_name: frozenset[str] = frozenset()  # expected platform name (rhev, ovirt ...)

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return self.path.rsplit("/", 1)[-1].removesuffix(".tar.gz").removesuffix(".tar.bz2")

    @property
    def in_repo(self) -> bool:
        """Copied into tests/data/detect-captured (detect was fixed on it): not held out."""
        return (CAPTURED / (self.label or self.path.rsplit("/", 1)[-1])).exists()


def _split(s: str) -> frozenset[str]:
    return frozenset(s.split("|")) if s else frozenset()


def _t(repo: str, path: str, commit: str, platform: str, hv: str, why: str,
       variant: str = "", role: str = "", scored: bool = True) -> Tree:
    return Tree(repo, path, commit, platform, _split(hv), why, _split(variant), _split(role),
                scored)


ANY = "*"  # identity not scored (a container-only capture says nothing of the machine)


def _f(repo: str, label: str, commit: str, platform: str, hv: str, why: str,
       files: dict[str, str], variant: str = "", role: str = "", container: str = "",
       cloud: str = "", platform_name: str = "") -> Tree:
    """A tree assembled from single captured files (``files``: repository path -> tree path;
    ``path.py#NAME``: the string constant NAME of a Python test file, taken as it is)."""
    first = next(iter(files))
    return Tree(repo, first, commit, platform, _split(hv), why, _split(variant), _split(role),
                files=tuple(files.items()), container=_split(container), label=label,
                cloud=_split(cloud), platform_name=_split(platform_name))


_UL_OLD = "e299cfc4a1ec01519aa5b6c7d4f62b102e9b18d1"  # the last commit with the 2012 dumps
_UL_NEW = "753844af33cd3359c17f5654dd807e2a77871fad"  # the newest stored commit
_UL_DIR = "87f8158be42dc7363ace90c5ab5c725cd0b885f8"  # the uncompressed 2011 Xen dumps
_D = "tests/ts/lscpu/dumps/"
_H = "tests/hwloc/linux/"

_X86_BARE = "x86 bare metal"
_BARE_WHY = "no 'hypervisor' CPU flag, physical vendor/board"

TREES: tuple[Tree, ...] = (
    # ---- util-linux lscpu dumps --------------------------------------------------------
    _t(UL, _D + "x86_64-el5xen.tar.gz", _UL_OLD, "Xen PV", "xen",
       "lscpu expected 'Hypervisor vendor: Xen, Virtualization type: para'; empty "
       "/proc/xen/capabilities (not dom0), no PCI devices", variant="pv", role="domU"),
    _t(UL, _D + "i386-xenpara", _UL_DIR, "Xen PV", "xen",
       "dump named 'xenpara'; empty /proc/xen/capabilities (not dom0), no PCI devices",
       variant="pv", role="domU"),
    _t(UL, _D + "x86_64-xenfull", _UL_DIR, "Xen HVM", "xen",
       "dump named 'xenfull'; PCI 5853:0001 (Xen platform device), 8086:1237 i440FX, "
       "10ec:8139: Xen's device model", variant="hvm"),
    _t(UL, _D + "vbox-win.tar.gz", _UL_NEW, "VirtualBox", "virtualbox",
       "commit 0f0c5588: 'openSUSE-13.1 guest in VirtualBox-4.3.10'; PCI 80ee:cafe, 80ee:beef"),
    _t(UL, _D + "s390-kvm.tar.gz", _UL_NEW, "s390x KVM", "kvm",
       "sysinfo 'VM00 Control Program: KVM/Linux'"),
    _t(UL, _D + "s390-nested-virt.tar.gz", _UL_NEW, "s390x KVM", "kvm",
       "sysinfo VM00 'KVM/Linux' (the guest's own hypervisor), VM01 'z/VM 6.4.0'; lscpu "
       "expected 'Hypervisor: KVM/Linux'"),
    _t(UL, _D + "s390-lpar.tar.gz", _UL_NEW, "s390x LPAR", "prsm",
       "sysinfo has an LPAR level and no VM level; lscpu expected 'Hypervisor: PR/SM'"),
    _t(UL, _D + "s390-lpar-drawer.tar.gz", _UL_NEW, "s390x LPAR", "prsm",
       "sysinfo has an LPAR level and no VM level; lscpu expected 'Hypervisor: PR/SM'"),
    _t(UL, _D + "s390-zvm.tar.gz", _UL_NEW, "s390x z/VM", "zvm",
       "sysinfo 'VM00 Control Program: z/VM 6.1.0'"),
    _t(UL, _D + "ppc64-POWER7.tar.gz", _UL_NEW, "POWER LPAR", "powervm",
       "cpuinfo 'platform: pSeries', machine 'CHRP IBM,8233-E8B' (not 'emulated by qemu')"),
    _t(UL, _D + "ppc64-POWER7-64cpu.tar.gz", _UL_NEW, "POWER LPAR", "powervm",
       "'platform: pSeries', device-tree 'ibm,partition-name'; lscpu expected 'pHyp, para'"),
    _t(UL, _D + "ppc-qemu.tar.gz", _UL_NEW, "QEMU (ppc32)", "qemu-tcg|kvm",
       "PowerMac G3 with PCI 1234:1111 (QEMU VGA) and 1af4 virtio: QEMU; TCG or KVM-PR "
       "cannot be told apart from these files"),
    _t(UL, _D + "loongarch-kvm_on_loongson_3c6000.tar.gz", _UL_NEW, "LoongArch KVM", "kvm",
       "dump named 'kvm_on_loongson'; PCI 1af4 virtio, 1b36 QEMU devices"),
    _t(UL, _D + "sparc64-UltraSparc-T1.tar.gz", _UL_OLD, "SPARC sun4v (LDoms)", "ldoms",
       "'type: sun4v', 'MMU Type: Hypervisor (sun4v)'; owns PCIe bridges (1166:0103/0104) and "
       "the disks and NICs: the control (factory default) or a root domain",
       role="control|root"),
    _t(UL, _D + "sparc64.tar.gz", _UL_NEW, "SPARC sun4u bare metal", BARE,
       "'type: sun4u' (UltraSPARC II): no hypervisor exists on sun4u"),
    _t(UL, _D + "vmware_fpe.tar.gz", _UL_NEW, _X86_BARE, BARE,
       "svm flag, no 'hypervisor' flag, physical AMD/ATI, Marvell and Intel 82576 PCI devices"),
    *(_t(UL, _D + n + ".tar.gz", c, _X86_BARE, BARE, _BARE_WHY) for n, c in (
        ("i386-amdshanghai", _UL_OLD), ("i386-dellpe700", _UL_OLD),
        ("i386-intels5000phb", _UL_OLD), ("x86_64-64cpu", _UL_NEW),
        ("x86_64-64cpu-linux6.2", _UL_NEW), ("x86_64-dell_e4310", _UL_NEW),
        ("x86_64-dell_poweredge1950", _UL_OLD), ("x86_64-dell_poweredgeR610", _UL_OLD),
        ("x86_64-dellr710", _UL_OLD), ("x86_64-epyc_7451", _UL_NEW),
        ("x86_64-hpdl585", _UL_OLD), ("x86_64-ibme326m", _UL_OLD),
        ("x86_64-necem14", _UL_OLD))),
    *(_t(UL, _D + n + ".tar.gz", _UL_OLD, "ia64 bare metal", BARE, "Itanium server")
      for n in ("ia64-512cpus", "ia64-hpmatterhorn", "ia64-hprx1620", "ia64-pg0")),
    *(_t(UL, _D + n + ".tar.gz", _UL_NEW, "ARM bare metal", BARE, "SoC, no hypervisor node")
      for n in ("arm-A510-A710-A715-X3", "armv7")),
    *(_t(UL, _D + n + ".tar.gz", _UL_NEW, "RISC-V/LoongArch bare metal", BARE,
         "board named in the dump, physical PCI devices")
      for n in ("rv64-linux", "rv64-milkvpioneer", "rv64-visionfive2",
                "loongarch-loongson_3a5000_hv")),
    # ---- hwloc Linux captures ----------------------------------------------------------
    _t(HW, _H + "2pa-pcidomain32bits.tar.bz2", "5984a7f655b2a000c57b0d42311145521618636f",
       "x86 KVM", "kvm", "DMI 'Apache Software Foundation' / 'CloudStack KVM Hypervisor', "
       "'hypervisor' flag"),
    *(_t(HW, _H + n + ".tar.bz2", c, "x86 QEMU", "kvm|qemu-tcg",
         "DMI 'QEMU' 'Standard PC (i440FX + PIIX, 1996)', 'QEMU Virtual CPU version 2.5+'; "
         "KVM or TCG cannot be told apart from these files")
      for n, c in (("fakecpuid1f-64intel64-2p4d2n2c2t", "9ccfefe1d3d777d378e7ab547ceab41c8d06b3ff"),
                   ("fakeheteromemtiers", "526cdf1b7fc87f1f4a3b1e14d675139d65342681"),
                   ("fakememinitiators-1npc+1npc", "cf159165ff706ad54d92e3bf02fc099542584861"))),
    _t(HW, _H + "256ppc-8n8s4t.tar.bz2", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb",
       "POWER LPAR", "powervm", "'platform: pSeries', 'CHRP IBM,9179-MHB' (POWER7 780)"),
    _t(HW, _H + "32ppc-4n4c2c.tar.bz2", "44a7d69affa2d9983d0b8bced694bdbe3b79ab3d",
       "POWER LPAR", "powervm", "'platform: pSeries', 'CHRP IBM,9125-F2A' (POWER6 575)"),
    _t(HW, _H + "4ppc-4c.tar.bz2", "44a7d69affa2d9983d0b8bced694bdbe3b79ab3d",
       "POWER blade", "bare-metal|powervm",
       "'CHRP IBM,8844-AC1' (JS21 blade, PPC970MP); an old kernel without a 'platform' line: "
       "native or under IVM cannot be told apart"),
    _t(HW, _H + "nvidiagpunumanodes.tar.bz2", "cf4a652fde50009c8c2a48fd06ce8017ad6480ff",
       "POWER bare metal", BARE, "'platform: PowerNV' (OPAL firmware, no hypervisor)"),
    _t(HW, _H + "4qs22-2s2t.tar.bz2", "44a7d69affa2d9983d0b8bced694bdbe3b79ab3d",
       "POWER bare metal", BARE, "'platform: Cell', 'CHRP IBM,0793-41G' (QS22 blade)"),
    _t(HW, _H + "2ps3-2t.tar.bz2", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb",
       "PS3 (lv1 hypervisor)", "ps3", "'platform: PS3': Linux runs under Sony's lv1 "
       "hypervisor, a platform neither virt-what nor systemd-detect-virt knows", scored=False),
    _t(HW, _H + "20s390-2g6s4c.tar.bz2", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb",
       "s390x LPAR", "prsm", "cpuinfo 'version = 00' (a CPU id stored by the machine, not "
       "by a VM: z/VM and KVM store version FF), no sysinfo"),
    _t(HW, _H + "2s390-2c.tar.bz2", "d66768c32d16cdbf5b62a7e0f0d069250ed8a72d",
       "s390x z/VM or KVM", "zvm|kvm", "cpuinfo 'version = FF' (a virtual machine's CPU id), "
       "no sysinfo to say which"),
    *(_t(HW, _H + n + ".tar.bz2", c, "ARM bare metal", BARE, "physical board (DMI or none)")
      for n, c in (("128arm-2pa2n8cluster4co", "32511f3e754567433d0a08ed2571e443f7fd06a1"),
                   ("2arm-2c", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
                   ("nvidia-dgx-gb10", "93e22d5597f607475f7882cf7e81bf754588203d"))),
    *(_t(HW, _H + n + ".tar.bz2", c, "ia64/alpha bare metal", BARE, "Itanium/Alpha server")
      for n, c in (("128ia64-17n4s2c", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
                   ("16ia64-8n2s", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
                   ("256ia64-64n2s2c", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
                   ("8ia64-2s2c2t", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
                   ("1alpha", "be110ff8a8da270e25e8153b8e20398f5191ddbf"))),
    *(_t(HW, _H + n + ".tar.bz2", c, _X86_BARE, BARE, _BARE_WHY) for n, c in (
        ("16amd64-4n4c-cgroup-distance-merge", "6c6bbc8d7b723e11551a669635df2af4b1f53ce6"),
        ("16amd64-8n2c", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("16amd64-8n2c-cpusets", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("16em64t-2m4c2t", "43bf9a639d4170095238ae1782044df7704e4ed1"),
        ("16em64t-4s2c2t", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("16em64t-4s2c2t-offlines", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("16em64t-4s2ca2c-cpusetreorder", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("20em64t-hybrid-1p6c2t+2ca4co1t", "33d96ff29c49a3f8b7c6b615d56721384522807a"),
        ("24em64t-2n6c2t+2mic.olddriver", "d4cbbe035f912eed3b2f57dd9aaf109c2459659c"),
        ("28em64t-2s2n7c-buggycoresiblings", "5a38247611e8c2af141088d4fa370a95ed210445"),
        ("2i386-2c-nohugepage", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("2i386-2t-hugepagesizecount", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("32amd64-4s2n4c-cgroup", "6c6bbc8d7b723e11551a669635df2af4b1f53ce6"),
        ("32amd64-4s2n4c-cgroup2", "dbb8ded3c5df4110937d722467612463a93c027a"),
        ("32em64t-2n8c+1mic", "d6fda2d87f980ac57ae61a00865eb487f6eea8dc"),
        ("32em64t-2n8c+dax+nvme+mic+dimms", "9ce01f32c226651c28897d4fd642815fa352f44f"),
        ("32intel64-2p8co2t+8ve", "e17cb9634e5c0fa149a512a7176c800867469a5e"),
        ("40intel64-2g2n4c+pci", "d6fda2d87f980ac57ae61a00865eb487f6eea8dc"),
        ("40intel64-2g2n4c+pcilocality", "9ce01f32c226651c28897d4fd642815fa352f44f"),
        ("40intel64-4n10c+pci-conflicts", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("48amd64-4d2n6c-sparse", "d6fda2d87f980ac57ae61a00865eb487f6eea8dc"),
        ("48amd64-4pa2n6c-sparse", "9ce01f32c226651c28897d4fd642815fa352f44f"),
        ("4em64t-2c2t-ignore-reorder", "d66768c32d16cdbf5b62a7e0f0d069250ed8a72d"),
        ("64amd64-4s2n4ca2co", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("64intel64-fakeKNL-A2A-cache", "02139ddc71ff2a0a8f241275db9ff4b686ab024a"),
        ("64intel64-fakeKNL-SNC4-hybrid", "02139ddc71ff2a0a8f241275db9ff4b686ab024a"),
        ("8amd64-4n2c", "d66768c32d16cdbf5b62a7e0f0d069250ed8a72d"),
        ("8em64t-2s2ca2c", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("8em64t-2s2ca2c-buggynuma", "adabd1a2fb5f20c5910cb147dc7c7f61eb6511cb"),
        ("8em64t-2s4c-asymcaches", "9ce01f32c226651c28897d4fd642815fa352f44f"),
        ("8em64t-2s4c-heterogeneous", "d6fda2d87f980ac57ae61a00865eb487f6eea8dc"),
        ("8em64t-4c2t", "d66768c32d16cdbf5b62a7e0f0d069250ed8a72d"),
        ("96em64t-4n4d3ca2co", "d6fda2d87f980ac57ae61a00865eb487f6eea8dc"),
        ("96em64t-4no4pa3ca2co", "9ce01f32c226651c28897d4fd642815fa352f44f"),
        ("fakememinitiators-1np2c+1npp+gi", "4bb528829f9a122217ae9f032de78483bb11da0f"),
        ("fakepcilocalities", "e2db8b40db73d03643aa64d4b54dc0191b8bb3d0"),
        ("memorysidecaches", "669022c798eaaffff49badd3d1933fdbbf96e1ec"),
        ("offline-cpu0-node0", "03bddd0037c62116d6171e4bf1fb72c48a57d825"))),
)


_PT = "percona/percona-toolkit"
_PT_C = "8d0f14c1800a06c12f8967a5564015d16c40609d"  # the newest stored commit (2024-03-26)
_PS = "t/pt-summary/samples/"
_FA = "puppetlabs/facter"
_FA_C = "c22260225d420e72240c2b77725794041dcade6a"  # the newest stored commit (2025-10-17)
_FS = "spec/fixtures/"
_DMI = "sys/class/dmi/id"


def _pt_linux(n: str, dmi: bool = True) -> dict[str, str]:
    d = f"{_PS}Linux/{n}/"
    files = {d + "dmesg_file": "dmesg.txt", d + "proc_cpuinfo_copy": "proc/cpuinfo"}
    if dmi:
        files[d + "dmidecode"] = _DMI
    return files


# Single captured files of other projects' tests, assembled into trees: percona-toolkit's
# pt-summary samples (a customer's or developer's dmesg, /proc/cpuinfo and dmidecode, with
# pt-summary's own verdict in the sample's "summary" file or in its tests) and facter's
# fixtures (dmidecode of a VMware and a VirtualBox guest, a container's /proc/1/cgroup and
# /proc/1/environ).
FILE_TREES: tuple[Tree, ...] = (
    _f(_PT, "pt-dmesg-006", _PT_C, "Xen PV (kernel log only)", "xen",
       "kernel 2.6.21.7-2.fc8xen; memory map from Xen ('Xen: 0000000000000000 - 00000003c0800000 "
       "(usable)'), 'PCI: setting up Xen PCI frontend stub', 'XENBUS: Device with no driver: "
       "device/vif/0', console xvc0: a PV guest; frontends only: domU; pt-summary's test "
       "expects 'Xen'", {_PS + "dmesg-006.txt": "dmesg.txt"}, variant="pv", role="domU"),
    _f(_PT, "pt-linux-002", _PT_C, "x86 QEMU", "qemu-tcg|kvm",
       "'DMI: Bochs Bochs', ACPI tables BOCHS/BXPC, 'QEMU Virtual CPU version 0.14.1', QEMU "
       "HARDDISK; summary 'virt QEmu'; no hypervisor flag, no kvm-clock: KVM or TCG cannot be "
       "told apart (Linux/003 has the same log: not counted twice)", _pt_linux("002", dmi=False)),
    _f(_PT, "pt-linux-005", _PT_C, "VirtualBox", "virtualbox",
       "dmidecode and 'DMI: innotek GmbH VirtualBox/VirtualBox', ACPI VBOX tables; 'Hypervisor "
       "detected: KVM' and kvm-clock are VirtualBox's KVM interface (pt-summary says 'KVM')",
       _pt_linux("005")),
    *(_f(_PT, f"pt-linux-{n}", _PT_C, "x86 bare metal (log, cpuinfo, DMI)", BARE,
         f"'Booting paravirtualized kernel on bare hardware', {who}, no 'hypervisor' flag; "
         "summary 'No virtualization detected'", _pt_linux(n))
      for n, who in (("001", "DMI Quanta UW3"), ("006", "DMI Dell XPS 13 7390"),
                     ("007", "DMI Dell PowerEdge R520"))),
    *(_f(_PT, f"pt-dmesg-00{i}", _PT_C, "x86 bare metal (kernel log only)", BARE, why,
         {f"{_PS}dmesg-00{i}.txt": "dmesg.txt"})
      for i, why in (("1", "Dell PERC virtual disks, 'Booting paravirtualized kernel on bare "
                           "hardware'; pt-summary's test expects no virtualization"),
                     ("2", "'Booting paravirtualized kernel on bare hardware', AMI BMC virtual "
                           "keyboard; pt-summary's test expects none"),
                     ("3", "Debian 2.6.18 on a server with a RAID controller (several boots); "
                           "pt-summary's test expects none"),
                     ("4", "CentOS 5 on a server (Adaptec SGPIO, PepperC remote media); "
                           "pt-summary's test expects none"),
                     ("5", "CentOS 5 on a server (AMI BMC virtual keyboard); pt-summary's test "
                           "expects none"))),
    *(_f(_PT, f"pt-dmidecode-00{i}", _PT_C, "x86 bare metal (DMI only)", BARE,
         f"dmidecode: {who}", {f"{_PS}dmidecode-00{i}.txt": _DMI})
      for i, who in (("1", "ASUSTeK UL30A laptop"), ("2", "Dell PowerEdge 2950"),
                     ("3", "Sun Fire X4170"), ("4", "Dell PowerEdge R610"),
                     ("5", "Supermicro X8DTN"))),
    _f(_FA, "facter-dmi-vmware", _FA_C, "VMware (DMI only)", "vmware",
       "dmidecode 'VMware, Inc.' 'VMware Virtual Platform', serial 'VMware-42 1a ...', board "
       "'440BX Desktop Reference Platform'", {_FS + "dmi_decode_vmware": _DMI}),
    _f(_FA, "facter-dmi-virtualbox", _FA_C, "VirtualBox (DMI only)", "virtualbox",
       "dmidecode 'innotek GmbH' 'VirtualBox', board 'Oracle Corporation' 'VirtualBox'",
       {_FS + "dmi_decode_virtualbox": _DMI}),
    _f(_FA, "facter-docker-cgroup", _FA_C, "docker (cgroup only)", ANY,
       "/proc/1/cgroup: '/docker/ee6e3c05...' in every hierarchy", {_FS + "docker_cgroup":
                                                                     "proc/1/cgroup"},
       container="docker"),
    _f(_FA, "facter-podman-environ", _FA_C, "podman (environ only)", ANY,
       "/proc/1/environ: 'container=podman'", {_FS + "proc_environ_podman": "proc/1/environ"},
       container="podman"),
    _f(_FA, "facter-host-cgroup", _FA_C, "no container (cgroup only)", ANY,
       "/proc/1/cgroup: '/init.scope' (systemd's own cgroup: the host's init)",
       {_FS + "cgroup_file": "proc/1/cgroup"}),
)

_GA = "glpi-project/glpi-agent"
_GA_C = "77f7cdda24aa6d14ba8800f6bb71a18b98f4526d"  # the newest stored commit (2024-10-18)
_GD = "resources/generic/dmidecode/"
_GC = "resources/linux/proc/cpuinfo/"

# GLPI Agent's (FusionInventory's successor) inventory samples: dmidecode outputs and
# /proc/cpuinfo of users' machines (VMware, Hyper-V and KVM guests, servers and laptops).
GLPI_TREES: tuple[Tree, ...] = (
    *(_f(_GA, f"glpi-{n}", _GA_C, "VMware (cpuinfo, DMI)", "vmware",
         "dmidecode 'VMware, Inc.' 'VMware Virtual Platform', serial 'VMware-...', board "
         "'440BX Desktop Reference Platform'; cpuinfo 'hypervisor' flag",
         {_GD + n: _DMI, _GC + n: "proc/cpuinfo"})
      for n in ("rhel-6.2-vmware-2vcpus", "rhel-6.3-esx-1vcpu")),
    *(_f(_GA, f"glpi-{n}", _GA_C, "VMware (DMI only)", "vmware",
         "dmidecode 'VMware, Inc.' 'VMware Virtual Platform', serial 'VMware-...'",
         {_GD + n: _DMI}) for n in ("vmware", "vmware-esx")),
    _f(_GA, "glpi-windows-hyperV", _GA_C, "Hyper-V (DMI only)", "hyper-v",
       "dmidecode 'Microsoft Corporation' 'Virtual Machine' version 7.0, BIOS 'American "
       "Megatrends Inc.' '090004' (Hyper-V generation 1 firmware; Virtual PC's is 080002); "
       "GLPI names the sample 'windows-hyperV'", {_GD + "windows-hyperV": _DMI}),
    _f(_GA, "glpi-windows-hyperV-2019", _GA_C, "Hyper-V (DMI only)", "hyper-v",
       "dmidecode 'Microsoft Corporation' 'Virtual Machine', BIOS 'Hyper-V UEFI Release v4.0' "
       "(generation 2)", {_GD + "windows-hyperV-2019": _DMI}),
    _f(_GA, "glpi-windows-2003R2-Hotfix", _GA_C, "KVM (DMI only)", "kvm",
       "dmidecode 'Red Hat' 'KVM' 'RHEL 6.5.0 PC', BIOS 'Seabios 0.5.1': RHEL's qemu-kvm",
       {_GD + "windows-2003R2-Hotfix": _DMI}),
    _f(_GA, "glpi-surface-go-2", _GA_C, "x86 bare metal (DMI only)", BARE,
       "dmidecode 'Microsoft Corporation' 'Surface Go 2' (a Microsoft DMI that is not a VM)",
       {_GD + "surface-go-2": _DMI}),
    *(_f(_GA, f"glpi-{n}", _GA_C, "x86 bare metal (cpuinfo, DMI)", BARE,
         f"dmidecode {who}; no 'hypervisor' flag", {_GD + n: _DMI, _GC + n: "proc/cpuinfo"})
      for n, who in (("rhel-5.6", "Dell PowerEdge R710"),
                     ("oracle-server-6.7-oda", "Oracle Server X5-2"))),
    *(_f(_GA, f"glpi-{n}", _GA_C, "x86 bare metal (DMI only)", BARE, f"dmidecode: {who}",
         {_GD + n: _DMI})
      for n, who in (("S5000VSA", "Intel MP Server"), ("dell-fx160", "Dell OptiPlex FX160"),
                     ("dell-fx170", "Dell OptiPlex FX170"), ("dell-r620", "Dell PowerEdge R620"),
                     ("dell-r630", "Dell PowerEdge R630"), ("dell-r640", "Dell PowerEdge R640"),
                     ("dell-r720", "Dell PowerEdge R720xd"), ("hp-dl180", "HP ProLiant DL180 G6"),
                     ("hp-dl360-gen7", "HP ProLiant DL360 G7"),
                     ("hp-dl360-gen8", "HP ProLiant DL360p Gen8"),
                     ("hp-proLiant-DL120-G6", "HP ProLiant DL120 G6"),
                     ("lenovo-thinkpad", "Lenovo ThinkPad 1298A8G"),
                     ("linux-2.6", "Dell Latitude D610"), ("oracle-server-x5-2", "Oracle X5-2"),
                     ("sun-x2200-m2", "Sun Fire X2200 M2"),
                     ("freebsd-8.1", "HP Pavilion dv6"), ("openbsd-4.5", "Dell PowerEdge 1600SC"),
                     ("windows", "Toshiba Satellite 2410"),
                     ("windows-xp", "Dell Precision M4400"))),
)

_AN = "ansible/ansible"
_AN_C = "c9ac477e53a99e95781f333eec3329a935c1bf95"  # the newest stored commit (2024-10-24)
_AC = "test/units/module_utils/facts/fixtures/cpuinfo/"


def _an(n: str, platform: str, hv: str, why: str) -> Tree:
    return _f(_AN, f"ansible-{n.removesuffix('-cpuinfo')}", _AN_C, platform, hv, why,
              {_AC + n: "proc/cpuinfo"})


# Ansible's /proc/cpuinfo fixtures (users' machines; cpuinfo only).
ANSIBLE_TREES: tuple[Tree, ...] = (
    _an("ppc64-power7-rhel7-8cpu-cpuinfo", "POWER LPAR (cpuinfo only)", "powervm",
        "'platform : pSeries', 'machine : CHRP IBM,8231-E2B' (a real model, not 'emulated by "
        "qemu')"),
    _an("ppc64le-power8-24cpu-cpuinfo", "POWER LPAR (cpuinfo only)", "powervm",
        "'platform : pSeries', 'machine : CHRP IBM,8247-21L' (not 'emulated by qemu')"),
    _an("s390x-z13-2cpu-cpuinfo", "s390x z/VM or KVM (cpuinfo only)", "zvm|kvm",
        "'version = FF' (a virtual machine's CPU id), no sysinfo"),
    _an("s390x-z14-64cpu-cpuinfo", "s390x LPAR (cpuinfo only)", "prsm",
        "'version = 00' (a CPU id stored by the machine: an LPAR)"),
    _an("sparc-t5-debian-ldom-24vcpu", "SPARC sun4v (LDoms)", "ldoms",
        "'type : sun4v' (UltraSparc T5): always an LDoms domain; its role is not in cpuinfo"),
    *(_an(n, "bare metal (cpuinfo only)", BARE, why) for n, why in (
        ("x86_64-4cpu-cpuinfo", "AMD Opteron 2216 with 'svm', no 'hypervisor' flag"),
        ("x86_64-8cpu-cpuinfo", "Core i7-4800MQ laptop CPU with 'aperfmperf', 'dts', 'tm', no "
                                "'hypervisor' flag"),
        ("armv6-rev7-1cpu-cpuinfo", "'Hardware : BCM2835' (Raspberry Pi)"),
        ("armv7-rev4-4cpu-cpuinfo", "'Hardware : BCM2835' (Raspberry Pi 2/3)"),
        ("armv7-rev3-8cpu-cpuinfo", "'Hardware : ODROID-XU4'"),
        ("aarch64-4cpu-cpuinfo", "'Hardware : sun50iw1p1' (Allwinner A64 board)"))),
)

_IN = "RedHatInsights/insights-core"
_IN_C = "43cbb25ff29f6ae9b4315aa2fc085d8fa6ee4783"  # the newest stored commit (2026-08-04)
_IV = "insights/tests/combiners/test_virt_what.py#"
_ICP = "insights/tests/combiners/test_cloud_provider.py#"

# insights-core's dmidecode samples (sosreport/Insights archives of customers' machines, kept
# as string constants of its tests). The ones its authors visibly doctored to test an edge
# case (DMIDECODE_GOOGLE: a Google BIOS on an Amazon Xen 'HVM domU'; DMIDECODE_AZURE_ASSET_TAG:
# Azure's asset tag on an oVirt node; DMIDECODE_AWS_UUID; DMIDECODE_BOGUS_OVIRT) are not used.
INSIGHTS_TREES: tuple[Tree, ...] = (
    _f(_IN, "insights-dmidecode-aws", _IN_C, "AWS Xen HVM (DMI only)", "xen",
       "dmidecode 'Xen' 'HVM domU', BIOS 'Xen' '4.2.amazon', UUID 'EC2F58AF-...': an EC2 Xen "
       "HVM instance (domU by the product name)", {_IV + "DMIDECODE_AWS": _DMI},
       variant="hvm", role="domU", cloud="amazon"),
    _f(_IN, "insights-dmidecode-vmware", _IN_C, "VMware (DMI only)", "vmware",
       "dmidecode 'VMware, Inc.' 'VMware Virtual Platform'", {_IV + "DMIDECODE_V": _DMI}),
    _f(_IN, "insights-dmidecode-rhev", _IN_C, "KVM (DMI only)", "kvm",
       "dmidecode 'Red Hat' 'RHEV Hypervisor', SeaBIOS, chassis 'RHEL 7.2.0 PC (i440FX + "
       "PIIX, 1996)'", {_IV + "DMIDECODE_KVM": _DMI}, platform_name="rhev"),
    _f(_IN, "insights-dmidecode-ovirt", _IN_C, "KVM (DMI only)", "kvm",
       "dmidecode 'oVirt' 'oVirt Node', SeaBIOS", {_IV + "DMIDECODE_OVIRT": _DMI},
       platform_name="ovirt"),
    _f(_IN, "insights-dmidecode-alibaba", _IN_C, "Alibaba Cloud KVM (DMI only)", "kvm",
       "dmidecode 'Alibaba Cloud' 'Alibaba Cloud ECS', SeaBIOS, 'pc-i440fx-2.1' (UUID "
       "anonymised by insights-core)", {_ICP + "DMIDECODE_ALIBABA": _DMI}, cloud="alibaba"),
    _f(_IN, "insights-dmidecode-hp", _IN_C, "x86 bare metal (DMI only)", BARE,
       "dmidecode 'HP' 'ProLiant DL380p Gen8'", {_IV + "DMIDECODE": _DMI}),
)

_NR = "newrelic/newrelic-python-agent"
_NR_C = "e3c9c1d035a5889d70ef6ce1bb90379b70040c4d"  # the newest stored commit (2026-08-20)
_NR1 = "tests/cross_agent/fixtures/docker_container_id/"
_NR2 = "tests/cross_agent/fixtures/docker_container_id_v2/"


def _nr(d: str, n: str, rel: str, platform: str, container: str, why: str) -> Tree:
    return _f(_NR, f"newrelic-{n}", _NR_C, platform, ANY, why, {d + n + ".txt": rel},
              container=container)


# New Relic's cross-agent test cases (shared by its agents): /proc/self/cgroup (cgroup v1) and
# /proc/self/mountinfo (cgroup v2) read in containers and on hosts. The hand-made cases
# (docker-custom-prefix, docker-too-long, invalid-*, empty) are not used.
NEWRELIC_TREES: tuple[Tree, ...] = (
    *(_nr(_NR1, n, "proc/self/cgroup", "docker (cgroup only)", "docker",
          f"/proc/self/cgroup of Docker {v}: '{p}<64 hex>' paths")
      for n, v, p in (("docker-0.9.1", "0.9.1", "/docker/"), ("docker-1.0.0", "1.0.0", "/docker/"),
                      ("docker-1.1.2-native-driver-fs", "1.1.2", "/docker/"),
                      ("docker-1.1.2-native-driver-systemd", "1.1.2 (systemd cgroups)",
                       "/system.slice/docker-"),
                      ("docker-1.3", "1.3", "/docker/"))),
    _nr(_NR1, "docker-1.1.2-lxc-driver", "proc/self/cgroup", "docker (cgroup only)", "docker|lxc",
        "Docker 1.1.2 with its LXC execution driver: '/lxc/<64 hex>' (an LXC container that "
        "Docker made: either name is right)"),
    _nr(_NR1, "heroku", "proc/self/cgroup", "lxc (cgroup only)", "lxc",
        "a Heroku dyno: one hierarchy at '/lxc/<uuid>' (Heroku's LXC containers)"),
    _nr(_NR1, "ubuntu-14.04-lxc-container", "proc/self/cgroup", "lxc (cgroup only)", "lxc",
        "Ubuntu 14.04 LXC container 'p1': '/lxc/p1' in every hierarchy"),
    *(_nr(_NR1, n, "proc/self/cgroup", "no container (cgroup only)", "", why)
      for n, why in (("ubuntu-14.04-no-container", "a login session's cgroup "
                                                   "'/user/1000.user/2.session' (a host)"),
                     ("ubuntu-14.10-no-container", "every hierarchy at '/' (a host)"))),
    _nr(_NR2, "docker-20.10.16", "proc/self/mountinfo", "docker (mountinfo only)", "docker",
        "/proc/self/mountinfo of Docker 20.10.16: / is overlay on /var/lib/docker/overlay2, "
        "/etc/hostname from /docker/containers/<64 hex>/"),
    _nr(_NR2, "docker-24.0.2", "proc/self/mountinfo", "docker (mountinfo only)", "docker",
        "/proc/self/mountinfo of Docker 24.0.2 without the root mount line: /etc/hostname, "
        "/etc/hosts, /etc/resolv.conf from /docker/containers/<64 hex>/"),
)

_WA = "Azure/WALinuxAgent"
_WA_C = "a976115fd7254f4f9f54cc33528f0817b07b7976"  # the newest stored commit (2025-11-19)
_WD = "tests/data/cgroups/"

# The Azure Linux agent's own /proc/self/cgroup on Azure VMs (cgroup v1, v2, its azure.slice):
# a service of a host, not a container (the "Sample.Extension" files are made up: not used).
WALA_TREES: tuple[Tree, ...] = tuple(
    _f(_WA, f"walinuxagent-{n.replace('/', '-')}", _WA_C, "no container (cgroup only)", ANY,
       f"/proc/self/cgroup of the walinuxagent service: {why}", {_WD + n: "proc/self/cgroup"})
    for n, why in (("v1/proc_self_cgroup", "'/system.slice/walinuxagent.service' (cgroup v1)"),
                   ("v2/proc_self_cgroup", "'0::/system.slice/walinuxagent.service' (v2)"),
                   ("proc_self_cgroup_azure_slice", "'/azure.slice/walinuxagent.service'")))

_DMI_FIELDS = {
    "BIOS Information": {"Vendor": "bios_vendor", "Version": "bios_version",
                         "Release Date": "bios_date"},
    "System Information": {"Manufacturer": "sys_vendor", "Product Name": "product_name",
                           "Version": "product_version", "Family": "product_family"},
    "Base Board Information": {"Manufacturer": "board_vendor", "Product Name": "board_name",
                               "Version": "board_version"},
    "Chassis Information": {"Manufacturer": "chassis_vendor", "Version": "chassis_version",
                            "Asset Tag": "chassis_asset_tag"},
}


def dmidecode_to_sysfs(text: str) -> dict[str, str]:
    """The /sys/class/dmi/id files a ``dmidecode`` output shows (first structure of a type)."""
    out: dict[str, str] = {}
    section: dict[str, str] | None = None
    indent = 0
    for line in text.splitlines():
        body = line.lstrip()
        depth = len(line) - len(body)
        if not body.strip():
            section = None
        elif depth == 0:
            section = _DMI_FIELDS.get(body.strip())
            indent = 0
        elif section is not None and ":" in body and (not indent or depth == indent):
            indent = depth  # the section's own fields, not nested lists
            key, _, value = body.partition(":")
            name = section.get(key.strip())
            if name and name not in out:
                out[name] = value.strip()
    return out


ALL_TREES = (TREES + FILE_TREES + GLPI_TREES + ANSIBLE_TREES + INSIGHTS_TREES
             + NEWRELIC_TREES + WALA_TREES)


def _git(mirror: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", f"--git-dir={mirror}", *args], capture_output=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace").strip().splitlines()[-1]
                           if proc.stderr.strip() else f"git {args[0]} failed")
    return proc.stdout


def _py_constant(source: bytes, name: str) -> str:
    """The module-level string constant ``name`` of a Python file (parsed, never run)."""
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    raise RuntimeError(f"no string constant {name}")


def extract(mirror: Path, tree: Tree, dest: Path) -> Path:
    """The tree's files under ``dest``; returns the directory that holds ``proc``."""
    if tree.files:
        for src, rel in tree.files:
            path, _, const = src.partition("#")
            data = _git(mirror, "show", f"{tree.commit}:{path}")
            if const:
                data = _py_constant(data, const).encode()
            if rel == _DMI:
                values = dmidecode_to_sysfs(data.decode(errors="replace"))
                if not values:
                    raise RuntimeError(f"no DMI structure in {src}")
                for name, value in values.items():
                    (dest / _DMI).mkdir(parents=True, exist_ok=True)
                    (dest / _DMI / name).write_text(value + "\n")
            else:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                (dest / rel).write_bytes(data)
        return dest
    if tree.path.endswith((".tar.gz", ".tar.bz2")):
        data = _git(mirror, "show", f"{tree.commit}:{tree.path}")
    else:
        data = _git(mirror, "archive", "--format=tar", tree.commit, tree.path)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        _safe_extract(tf, dest)  # files, directories, in-tree links only (any Python 3.11)
    found = sorted(p.parent.parent for p in dest.rglob("proc/cpuinfo")
                   if "fsroot" not in p.parts[:-3] or p.parent.parent.name == "fsroot")
    if not found:
        raise RuntimeError("no proc/cpuinfo in the tree")
    return min(found, key=lambda p: len(p.parts))


def judge(tree: Tree, root: Path) -> tuple[str, str, list[str]]:
    """(got, summary, what is wrong) for one extracted tree."""
    report = detect(root)
    hv = report.inner_hypervisor
    got = hv.name if hv is not None else BARE
    wrong: list[str] = []
    if got not in tree.hypervisor and ANY not in tree.hypervisor:
        wrong.append(f"identity {got}")
    ct = report.container.name if report.container is not None else None
    if (ct not in tree.container) if tree.container else ct is not None:
        wrong.append(f"container {ct}")
    if tree.variant and (hv is None or hv.variant not in tree.variant):
        wrong.append(f"type {hv.variant if hv else None}")
    role = hv.details.get("role") if hv is not None else None
    if tree.role and role not in tree.role:
        wrong.append(f"role {role}")
    found = {key: next((str(lay.details[key]) for lay in report.layers
                        if lay.details.get(key)), None) for key in ("cloud", "platform")}
    for key, want in (("cloud", tree.cloud), ("platform", tree.platform_name)):
        if want and found[key] not in want:
            wrong.append(f"{key} {found[key]}")
    parts = [got] + ([hv.variant] if hv and hv.variant and tree.variant else []) + (
        [f"role={role}"] if tree.role else []) + ([f"> {ct}"] if ct else []) + [
        f"{k}={found[k]}" for k, w in (("cloud", tree.cloud), ("platform", tree.platform_name))
        if w]
    return " ".join(str(p) for p in parts), report.summary, wrong


def _mirrors(args: argparse.Namespace) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for spec in args.repo or []:
        name, _, path = spec.partition("=")
        out[name] = Path(path)
    for m in args.mirrors:
        for part in m.resolve().parts:
            if "+" in part:
                out.setdefault(part.replace("+", "/", 1), m)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mirrors", nargs="*", type=Path, help="git directories of the mirrors")
    ap.add_argument("--repo", action="append", metavar="OWNER/NAME=PATH")
    ap.add_argument("--verbose", "-v", action="store_true", help="print the evidence notes")
    args = ap.parse_args()
    mirrors = _mirrors(args)
    if not mirrors:
        repos = sorted({t.repo for t in ALL_TREES})
        print("detect_heldout: give the mirrors of " + ", ".join(repos)
              + " (e.g. fetch github:util-linux/util-linux)", file=sys.stderr)
        return 2
    # platform -> [held-out right, held-out trees, in-repo right, in-repo trees]
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    bare = [0, 0]
    total = [0, 0, 0, 0]
    print(f"{'tree':40} {'platform':32} {'expected':26} {'got':26} mark  "
          "('*': now in tests/data/detect-captured, not held out)")
    for tree in ALL_TREES:
        mirror = mirrors.get(tree.repo)
        if mirror is None:
            continue
        with tempfile.TemporaryDirectory(prefix="vb-heldout-") as tmp:
            try:
                got, summary, wrong = judge(tree, extract(mirror, tree, Path(tmp)))
            except Exception as exc:  # a tree that cannot be read is a failure, said once
                got, summary, wrong = "(error)", "", [f"{type(exc).__name__}: {exc}"]
        expected = "|".join(sorted(tree.hypervisor))
        for what, key in ((tree.variant, ""), (tree.role, "role="), (tree.container, "> "),
                          (tree.cloud, "cloud="), (tree.platform_name, "platform=")):
            if what:
                expected += " " + key + "|".join(sorted(what))
        mark = ("ok" if not wrong else "WRONG: " + ", ".join(wrong)) if tree.scored else \
            "(not scored)"
        star = "*" if tree.in_repo else " "
        print(f"{star}{tree.name[:39]:39} {tree.platform[:32]:32} {expected[:26]:26} "
              f"{got[:26]:26} {mark}")
        if args.verbose:
            print(f"    {tree.repo} {tree.commit[:12]} {tree.path}\n    evidence: {tree.why}"
                  f"\n    virtbench: {summary}")
        if not tree.scored:
            continue
        ok = int(not wrong)
        at = 2 if tree.in_repo else 0
        per[tree.platform][at] += ok
        per[tree.platform][at + 1] += 1
        total[at] += ok
        total[at + 1] += 1
        if BARE in tree.hypervisor and len(tree.hypervisor) == 1:
            bare[0] += int(not any(w.startswith(("identity", "container")) for w in wrong))
            bare[1] += 1
    if not total[1] + total[3]:
        print("no tree found in the mirrors given", file=sys.stderr)
        return 2
    print(f"\n{'per platform':34} {'held out':>9} {'in repo':>9}   (right / trees)")
    for platform, (ok, n, rok, rn) in sorted(per.items()):
        held = f"{ok} / {n}" if n else "-"
        repo = f"{rok} / {rn}" if rn else "-"
        print(f"  {platform:32} {held:>9} {repo:>9}")
    print(f"\nbare metal without a hypervisor claimed: {bare[0]} / {bare[1]}")

    def pct(ok: int, n: int) -> str:
        return f"{ok} / {n} = {100.0 * ok / n:.1f}%" if n else "0 / 0"

    print(f"held-out trees right (not in the repository): {pct(total[0], total[1])}")
    print(f"trees now in tests/data/detect-captured right: {pct(total[2], total[3])}")
    print(f"all trees right: {pct(total[0] + total[2], total[1] + total[3])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
