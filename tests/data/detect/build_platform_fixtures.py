"""Write the platform fixtures that virt-what's test data does not cover (one tree each, with a
README.md saying where every file came from).

They are written by hand after the platform's public documentation, the kernel source that
prints each file, and the evidence systemd-detect-virt (src/basic/virt.c) and virt-what
read; where a real capture exists (virt-what's tests, trees under tests/data/detect/virt-what-*)
it is reused and the change is stated. None is a capture of the platform itself unless its
README says so.

    python tests/data/detect/build_platform_fixtures.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent

ARM_CPUINFO = (HERE / "virt-what-aws-kvm-arm" / "proc" / "cpuinfo").read_text()
X86_BAREMETAL_CPUINFO = (HERE / "bare-metal" / "proc" / "cpuinfo").read_text()
X86_VM_CPUINFO = (HERE / "kvm-virtio" / "proc" / "cpuinfo").read_text()
ZVM_SYSINFO = (HERE / "virt-what-zvm" / "proc" / "sysinfo").read_text()
ZVM_CPUINFO = (HERE / "virt-what-zvm" / "proc" / "cpuinfo").read_text()
LPAR_SYSINFO = "".join(line for line in ZVM_SYSINFO.splitlines(keepends=True)
                       if not line.startswith("VM0"))
KVM_ON_Z_SYSINFO = LPAR_SYSINFO.rstrip("\n") + "\n\n" + (
    "VM00 Name:            guest01\n"
    "VM00 Control Program: KVM/Linux\n"
    "VM00 Adjustment:      1000\n"
    "VM00 CPUs Total:      2\n"
    "VM00 CPUs Configured: 2\n"
    "VM00 CPUs Standby:    0\n"
    "VM00 CPUs Reserved:   0\n"
)

SUN4V_CPUINFO = (
    "cpu\t\t: UltraSparc T5 (Niagara5)\n"
    "fpu\t\t: UltraSparc T5 integrated FPU\n"
    "pmu\t\t: niagara5\n"
    "prom\t\t: OBP 4.38.5 2016/06/08 10:29\n"
    "type\t\t: sun4v\n"
    "ncpus probed\t: 16\n"
    "ncpus active\t: 16\n"
    "D$ parity tl1\t: 0\n"
    "I$ parity tl1\t: 0\n"
    "cpucaps\t\t: flush,stbar,swap,muldiv,v9,blkinit,n2,mul32,div32,v8plus,popc,vis,vis2,"
    "ASIBlkInit,fmaf,vis3,hpc,ima,pause,cbcond,aes,des,kasumi,camellia,md5,sha1,sha256,"
    "sha512,mpmul,montmul,montsqr,crc32c\n"
    "Cpu0ClkTck\t: 00000000e0ec0d00\n"
    "MMU Type\t: Hypervisor (sun4v)\n"
    "MMU PGSZs\t: 8K,64K,4MB,256MB,2GB,16GB\n"
    "State:\nCPU0:\t\tonline\n"
)

UML_CPUINFO = (
    "processor\t: 0\n"
    "vendor_id\t: User Mode Linux\n"
    "model name\t: UML\n"
    "mode\t\t: skas\n"
    "host\t\t: Linux host1 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64\n"
    "fpu\t\t: yes\n"
    "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 "
    "clflush mmx fxsr sse sse2 ss ht syscall nx lm constant_tsc\n"
    "cache_alignment\t: 64\n"
    "bogomips\t: 4788.90\n\n"
)


def cpuid_sig(sig: str, bit: int = 1) -> str:
    raw = sig.encode().ljust(12, b"\0")
    b, c, d = (int.from_bytes(raw[i:i + 4], "little") for i in (0, 4, 8))
    return (f"hypervisor_bit={bit}\n"
            f"0x40000000 eax=0x40000001 ebx=0x{b:08x} ecx=0x{c:08x} edx=0x{d:08x}\n")


NO_HV_CPUID = "hypervisor_bit=0\n"
X86_METAL_NOTE = ("`proc/cpuinfo`: the x86 bare-metal fixture's (`bare-metal/`, no `hypervisor` "
                  "flag); `cpuid.txt`: the CPUID.1:ECX hypervisor bit clear, as on any "
                  "bare-metal x86 CPU.")

CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "s390x-lpar": (
        {"proc/cpuinfo": ZVM_CPUINFO, "proc/sysinfo": LPAR_SYSINFO},
        ["`proc/cpuinfo`: virt-what's `tests/zvm/proc/cpuinfo` (a real s390x capture).",
         "`proc/sysinfo`: virt-what's `tests/zvm/proc/sysinfo` without its `VM00 ...` lines: "
         "the kernel (arch/s390/kernel/sysinfo.c) prints the `VMnn` block only when a "
         "guest-level control program (z/VM, KVM) runs the system; what remains is the "
         "machine and LPAR (PR/SM) part, which is what an LPAR shows."]),
    "s390x-kvm": (
        {"proc/cpuinfo": ZVM_CPUINFO, "proc/sysinfo": KVM_ON_Z_SYSINFO},
        ["`proc/cpuinfo`: virt-what's `tests/zvm/proc/cpuinfo` (a real s390x capture).",
         "`proc/sysinfo`: the LPAR part of virt-what's `tests/zvm/proc/sysinfo` plus a `VM00` "
         "block naming `KVM/Linux` as the control program, the string KVM on IBM Z reports "
         "(virt-what greps `VM.*Control Program.*KVM/Linux`; systemd reads the "
         "`VM00 Control Program` field)."]),
    "arm64-vmware": (
        {"proc/cpuinfo": ARM_CPUINFO, "proc/device-tree/hypervisor/compatible": "vmware\0"},
        ["`proc/cpuinfo`: virt-what's `tests/aws-kvm-arm/proc/cpuinfo` (a real arm64 capture, "
         "Neoverse-N1); the CPU does not tell the hypervisor.",
         "`proc/device-tree/hypervisor/compatible`: `vmware` (NUL-terminated, as device-tree "
         "properties are): the node VMware's arm64 hypervisor puts in the guest's device "
         "tree; systemd (detect_vm_device_tree) and virt-what read it."]),
    "arm64-qemu-kvm": (
        {"proc/cpuinfo": ARM_CPUINFO,
         "proc/device-tree/compatible": "linux,dummy-virt\0",
         "proc/device-tree/fw-cfg@9020000/compatible": "qemu,fw-cfg-mmio\0",
         "dmesg.txt": "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x413fd0c1]\n"
                      "[    0.000000] Linux version 6.1.0-18-arm64 (debian-kernel@lists.debian"
                      ".org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP Debian 6.1.76-1\n"
                      "[    0.000000] Machine model: linux,dummy-virt\n"
                      "[    0.000000] psci: PSCIv1.1 detected in firmware.\n"
                      "[    0.000000] smccc: KVM: hypervisor services detected (0x00000000 "
                      "0x00000000 0x00000000 0x00000003)\n"},
        ["`proc/cpuinfo`: virt-what's `tests/aws-kvm-arm/proc/cpuinfo` (arm64 capture).",
         "`proc/device-tree/compatible` and `fw-cfg@9020000/compatible`: the values QEMU's "
         "arm `virt` board writes (hw/arm/virt.c: board `linux,dummy-virt`, fw-cfg node "
         "`qemu,fw-cfg-mmio` at 0x9020000; the same as virt-what's `tests/qemu-arm`).",
         "`dmesg.txt`: written after the lines Linux 6.1 prints on arm64 (arch/arm64 "
         "`Booting Linux on physical CPU`, the `Machine model:` line of the device tree, "
         "drivers/firmware/psci, and drivers/firmware/smccc/kvm_guest.c's `KVM: hypervisor "
         "services detected`, printed only when KVM answers the vendor hypercall)."]),
    "apple-virtualization": (
        {"proc/cpuinfo": ARM_CPUINFO,
         "sys/class/dmi/id/sys_vendor": "Apple Inc.\n",
         "sys/class/dmi/id/product_name": "Apple Virtualization Generic Platform\n",
         "sys/class/dmi/id/bios_vendor": "Apple Inc.\n"},
        ["`proc/cpuinfo`: virt-what's `tests/aws-kvm-arm/proc/cpuinfo` (arm64 capture).",
         "`sys/class/dmi/id/*`: a product name beginning `Apple Virtualization`, the DMI "
         "prefix systemd's dmi_vendor_table maps to `apple` (Virtualization.framework "
         "guests); vendor `Apple Inc.`. Not a capture."]),
    "illumos-lx-zone": (
        {"proc/version": "Linux version 4.4 BrandZ virtual linux x86_64\n",
         "proc/1/environ": "container=zone\0",
         "proc/cpuinfo": X86_BAREMETAL_CPUINFO},
        ["`proc/version`: `Linux version 4.4 BrandZ virtual linux x86_64`, the string the "
         "illumos lx brand's procfs emulation prints (virt-what's `illumos-lx` test greps "
         "`BrandZ virtual linux`).",
         "`proc/1/environ`: `container=zone` (NUL-separated), as the lx brand's init gets it "
         "(virt-what checks it too).",
         "`proc/cpuinfo`: the bare-metal fixture's: a zone sees the host's CPUs."]),
    "uml": (
        {"proc/cpuinfo": UML_CPUINFO},
        ["`proc/cpuinfo`: written after arch/um/kernel/um_arch.c show_cpuinfo (`vendor_id : "
         "User Mode Linux`, `model name : UML`, `mode : skas`, `host : <uname of the host>`), "
         "the lines systemd (detect_vm_uml) and virt-what (`UML`) read."]),
    "acrn": (
        {"cpuid.txt": cpuid_sig("ACRNACRNACRN"),
         "dmesg.txt": "[    0.000000] Hypervisor detected: ACRN\n",
         "proc/cpuinfo": X86_VM_CPUINFO},
        ["`cpuid.txt`: leaf 0x40000000 with `ACRNACRNACRN`, ACRN's signature (systemd's "
         "vm_table, projectacrn.org documentation); hypervisor bit set.",
         "`dmesg.txt`: `Hypervisor detected: ACRN`, printed by arch/x86/kernel/cpu/acrn.c.",
         "`proc/cpuinfo`: the kvm-virtio fixture's (a guest CPU with the `hypervisor` flag)."]),
    "qnx": (
        {"cpuid.txt": cpuid_sig("QNXQVMBSQG"), "proc/cpuinfo": X86_VM_CPUINFO},
        ["`cpuid.txt`: leaf 0x40000000 with `QNXQVMBSQG`, the QNX hypervisor's signature in "
         "systemd's vm_table.", "`proc/cpuinfo`: the kvm-virtio fixture's."]),
    "lmhs-sre": (
        {"cpuid.txt": cpuid_sig("SRESRESRESRE"), "proc/cpuinfo": X86_VM_CPUINFO},
        ["`cpuid.txt`: leaf 0x40000000 with `SRESRESRESRE`, Lockheed Martin LMHS SRE's "
         "signature (systemd pull request #25594, vm_table).",
         "`proc/cpuinfo`: the kvm-virtio fixture's."]),
    "alibaba-ecs-bare-metal": (
        {"cpuid.txt": NO_HV_CPUID, "proc/cpuinfo": X86_BAREMETAL_CPUINFO,
         "sys/class/dmi/id/sys_vendor": "Alibaba Cloud\n",
         "sys/class/dmi/id/product_name": "Alibaba Cloud ECS\n",
         "sys/class/dmi/id/bios_vendor": "Alibaba Cloud\n"},
        ["`sys/class/dmi/id/*`: vendor `Alibaba Cloud`, product `Alibaba Cloud ECS`: the same "
         "strings on ECS virtual machines and ECS Bare Metal (EBM) instances (virt-what greps "
         "`Manufacturer: Alibaba` for both and asks the metadata service for `ebm`).",
         X86_METAL_NOTE]),
    "alibaba-ecs-kvm": (
        {"cpuid.txt": cpuid_sig("KVMKVMKVM"), "proc/cpuinfo": X86_VM_CPUINFO,
         "sys/class/dmi/id/sys_vendor": "Alibaba Cloud\n",
         "sys/class/dmi/id/product_name": "Alibaba Cloud ECS\n",
         "sys/class/dmi/id/bios_vendor": "SeaBIOS\n"},
        ["`sys/class/dmi/id/*`: as `alibaba-ecs-bare-metal` (BIOS SeaBIOS).",
         "`cpuid.txt`: KVM's signature `KVMKVMKVM`; `proc/cpuinfo`: the kvm-virtio fixture's."]),
    "aws-ec2-metal": (
        {"cpuid.txt": NO_HV_CPUID, "proc/cpuinfo": X86_BAREMETAL_CPUINFO,
         "sys/class/dmi/id/sys_vendor": "Amazon EC2\n",
         "sys/class/dmi/id/product_name": "i3.metal\n",
         "sys/class/dmi/id/bios_vendor": "Amazon EC2\n",
         "sys/class/dmi/id/bios_version": "1.0\n",
         "dmesg.txt": "[    0.000000] DMI: Amazon EC2 i3.metal/Not Specified, BIOS 1.0 "
                      "10/16/2017\n"},
        ["`sys/class/dmi/id/*`: vendor `Amazon EC2`, product `i3.metal`, BIOS `Amazon EC2` "
         "1.0: the values in virt-what's `tests/aws-baremetal-x86` dmidecode output (a real "
         "i3.metal); `dmesg.txt`: the kernel's `DMI:` line for those values.",
         X86_METAL_NOTE]),
    "upcloud": (
        {"cpuid.txt": cpuid_sig("KVMKVMKVM"), "proc/cpuinfo": X86_VM_CPUINFO,
         "sys/class/dmi/id/sys_vendor": "UpCloud\n",
         "sys/class/dmi/id/product_name": "Cloud Server\n",
         "sys/class/dmi/id/bios_vendor": "SeaBIOS\n"},
        ["`sys/class/dmi/id/*`: vendor `UpCloud`, product `Cloud Server` (UpCloud's KVM "
         "servers). Not a capture.", "`cpuid.txt`: `KVMKVMKVM`; `proc/cpuinfo`: kvm-virtio's."]),
    "ovirt": (
        {"cpuid.txt": cpuid_sig("KVMKVMKVM"), "proc/cpuinfo": X86_VM_CPUINFO,
         "sys/class/dmi/id/sys_vendor": "oVirt\n",
         "sys/class/dmi/id/product_name": "oVirt Node\n",
         "sys/class/dmi/id/bios_vendor": "SeaBIOS\n"},
        ["`sys/class/dmi/id/*`: vendor `oVirt`, product `oVirt Node`, the SMBIOS strings "
         "oVirt (VDSM) gives its guests (virt-what's `ovirt` fact greps `Manufacturer: "
         "oVirt`). Not a capture.", "`cpuid.txt`: `KVMKVMKVM`; `proc/cpuinfo`: kvm-virtio's."]),
    "ldoms-control": (
        {"proc/cpuinfo": SUN4V_CPUINFO, "dev/mdesc": "", "sys/class/vlds/ctrl/dev": "",
         "sys/class/vlds/sp/dev": "",
         "sys/bus/pci/devices/0000:00:00.0/vendor": "0x108e\n"},
        ["`proc/cpuinfo`: written after arch/sparc/kernel/cpu.c and setup_64.c "
         "(`type : sun4v`, `MMU Type : Hypervisor (sun4v)`), SPARC T5 values.",
         "`dev/mdesc`: an empty stand-in for the machine-description device (virt-what's "
         "`tests/ldoms` has the same empty file).",
         "`sys/class/vlds/ctrl`, `sys/class/vlds/sp`: the domain-services channels only the "
         "control domain has (virt-what's `ldoms-control` test).",
         "`sys/bus/pci/devices/0000:00:00.0`: a PCIe root complex owned by this domain."]),
    "ldoms-io": (
        {"proc/cpuinfo": SUN4V_CPUINFO, "dev/mdesc": "",
         "sys/bus/pci/devices/0001:00:00.0/vendor": "0x108e\n"},
        ["As `ldoms-control`, without the `vlds` control channels: a domain that has a PCIe "
         "endpoint (a direct-I/O device or an SR-IOV virtual function) and no PCI bridge: "
         "an I/O domain (virt-what's `ldoms-io` without `ldoms-root`)."]),
    "ldoms-root": (
        {"proc/cpuinfo": SUN4V_CPUINFO, "dev/mdesc": "",
         "sys/bus/pci/devices/0002:00:01.0/vendor": "0x10b5\n",
         "sys/bus/pci/devices/0002:00:01.0/device": "0x8714\n",
         "sys/bus/pci/devices/0002:00:01.0/class": "0x060400\n",
         "sys/bus/pci/devices/0002:02:00.0/vendor": "0x8086\n",
         "sys/bus/pci/devices/0002:02:00.0/device": "0x10c9\n",
         "sys/bus/pci/devices/0002:02:00.0/class": "0x020000\n"},
        ["As `ldoms-io`, plus a PCI-to-PCI bridge (class `0x060400`, a PLX PCIe switch port "
         "`10b5:8714` as in SPARC T-series I/O fabrics) in front of an Intel 82576 NIC: the "
         "domain owns a PCIe root complex and its fabric, a root domain (virt-what prints "
         "`ldoms-root` and `ldoms-io` when the machine description lists a `pciex` "
         "iodevice). Not a capture."]),
    "linux-vserver-host": (
        {"proc/self/status": (HERE / "virt-what-linux-vserver" / "proc" / "self" / "status")
         .read_text().replace("VxID: 41639", "VxID: 0").replace("NxID: 41639", "NxID: 0"),
         "proc/cpuinfo": X86_BAREMETAL_CPUINFO},
        ["`proc/self/status`: virt-what's `tests/linux-vserver/proc/self/status` with `VxID` "
         "and `NxID` set to 0: context 0 is the VServer host (virt-what prints "
         "`linux_vserver-host` for `VxID: 0`).", "`proc/cpuinfo`: the bare-metal fixture's."]),
    "xen-pv-2.6.18-no-log": (
        {"proc/xen/capabilities": "",
         "proc/version": "Linux version 2.6.18-419.el5xen (mockbuild@x86-041.build.eng.bos."
                         "redhat.com) (gcc version 4.1.2 20080704 (Red Hat 4.1.2-55)) #1 SMP "
                         "Wed Feb 22 22:40:57 EST 2017\n",
         "sys/hypervisor/type": "xen\n",
         "sys/hypervisor/version/major": "3\n", "sys/hypervisor/version/minor": "4\n",
         "sys/hypervisor/version/extra": ".3-0.1\n",
         "cpuid.txt": NO_HV_CPUID,
         "proc/cpuinfo": (HERE / "virt-what-rhel5-xen-domU-pv" / "proc" / "cpuinfo").read_text()},
        ["`proc/cpuinfo`: virt-what's `tests/rhel5-xen-domU-pv/proc/cpuinfo` (a real RHEL 5 "
         "PV guest).",
         "`proc/xen/capabilities`: empty, as in that capture (not `control_d`: a domU).",
         "`sys/hypervisor/*`: `xen` and the version files, as in virt-what's "
         "`tests/rhel5-xen-domU-pv` (no `guest_type`: added in Linux 4.x).",
         "`proc/version`: a RHEL 5 `-xen` kernel banner (the `el5xen` kernel boots only PV).",
         "`cpuid.txt`: hypervisor bit clear and no hypervisor leaf: a PV guest executes CPUID "
         "natively, so it sees the hardware's answer. No kernel log."]),
    "xen-pv-xenbus-no-driver": (
        {"proc/xen/capabilities": "",
         "sys/hypervisor/type": "xen\n",
         "dmesg.txt": "Linux version 2.6.18-419.el5xen (mockbuild@x86-041.build.eng.bos.redhat"
                      ".com) (gcc version 4.1.2 20080704 (Red Hat 4.1.2-55)) #1 SMP\n"
                      "XENBUS: Device with no driver: device/vbd/51712\n"
                      "XENBUS: Device with no driver: device/vif/0\n"},
        ["`dmesg.txt`: a 2.6.18-xen kernel banner and the lines xenbus prints "
         "(drivers/xen/xenbus/xenbus_probe.c, `Device with no driver: %s`) for the virtual "
         "block device 51712 (xvda) and network interface 0 before their frontends load.",
         "`proc/xen/capabilities`, `sys/hypervisor/type`: as `xen-pv-2.6.18-no-log`."]),
    "proot": (
        {"proc/self/status": "Name:\tcat\nState:\tR (running)\nTgid:\t4242\nPid:\t4242\n"
                             "PPid:\t4241\nTracerPid:\t4200\n",
         "proc/4200/comm": "proot\n", "proc/cpuinfo": X86_BAREMETAL_CPUINFO},
        ["`proc/self/status`: a process traced by PID 4200; `proc/4200/comm`: `proot`. proot "
         "runs programs under ptrace without namespaces; systemd reports `proot` when the "
         "tracer's comm starts with `proot`.", "`proc/cpuinfo`: the bare-metal fixture's."]),
    "virtualpc": (
        {"sys/class/dmi/id/sys_vendor": "Microsoft Corporation\n",
         "sys/class/dmi/id/product_name": "Virtual Machine\n",
         "sys/class/dmi/id/bios_vendor": "American Megatrends Inc.\n",
         "cpuid.txt": NO_HV_CPUID, "proc/cpuinfo": X86_BAREMETAL_CPUINFO},
        ["`sys/class/dmi/id/*`: `Microsoft Corporation` / `Virtual Machine` with an AMI BIOS, "
         "the SMBIOS strings Virtual PC and Virtual Server give their guests, the same as "
         "Hyper-V's (virt-what's `virtualpc` rule: these two strings and no `Microsoft Hv` "
         "CPUID signature). Not a capture.",
         "`cpuid.txt`: the CPUID.1:ECX hypervisor bit clear: Virtual PC predates the bit, "
         "Hyper-V always sets it; `proc/cpuinfo`: the bare-metal fixture's (no `hypervisor` "
         "flag)."]),
    "hitachi-virtage": (
        {"sys/class/dmi/id/sys_vendor": "HITACHI\n",
         "sys/class/dmi/id/product_name": "BladeSymphony E51A2 LPAR\n",
         "proc/cpuinfo": X86_BAREMETAL_CPUINFO},
        ["`sys/class/dmi/id/*`: manufacturer `HITACHI` and a product name ending in `LPAR`: "
         "what virt-what's `virtage` rule greps in dmidecode (`Manufacturer.*HITACHI`, "
         "`Product.* LPAR`) for a logical partition of Hitachi's Virtage; the model name is "
         "made up. Not a capture.", "`proc/cpuinfo`: the bare-metal fixture's."]),
    "bochs": (
        {"sys/class/dmi/id/sys_vendor": "Bochs\n",
         "sys/class/dmi/id/product_name": "Bochs\n",
         "sys/class/dmi/id/bios_vendor": "Bochs\n",
         "proc/cpuinfo": X86_VM_CPUINFO},
        ["`sys/class/dmi/id/*`: `Bochs`, the SMBIOS vendor of the Bochs BIOS (and of QEMU's "
         "SeaBIOS builds before QEMU named itself); systemd's dmi_vendor_table maps it to "
         "`bochs`. No CPUID dump and no log: nothing says whether KVM runs it, so virtbench "
         "says QEMU without KVM. Not a capture.",
         "`proc/cpuinfo`: the KVM fixture's (a `hypervisor` flag)."]),
    "rkt-container": (
        {"proc/1/environ": "container=rkt\0", "proc/cpuinfo": X86_BAREMETAL_CPUINFO,
         "cpuid.txt": NO_HV_CPUID},
        ["`proc/1/environ`: `container=rkt`, the variable rkt's stage1 sets for the pod's "
         "init (systemd's container table: `rkt`). Not a capture.", X86_METAL_NOTE]),
    "pouch-container": (
        {"proc/1/environ": "container=pouch\0", "proc/cpuinfo": X86_BAREMETAL_CPUINFO,
         "cpuid.txt": NO_HV_CPUID},
        ["`proc/1/environ`: `container=pouch`, the variable Alibaba's PouchContainer sets "
         "(systemd's container table: `pouch`). Not a capture.", X86_METAL_NOTE]),
    "lxc-libvirt": (
        {"proc/1/environ": "container=lxc-libvirt\0", "run/systemd/container": "lxc-libvirt\n",
         "proc/cpuinfo": X86_BAREMETAL_CPUINFO, "cpuid.txt": NO_HV_CPUID},
        ["`proc/1/environ`: `container=lxc-libvirt`, the variable libvirt's LXC driver sets "
         "for the container's init (src/lxc/lxc_container.c); `run/systemd/container`: what "
         "systemd as that init writes from it. Not a capture.", X86_METAL_NOTE]),
}


def main() -> int:
    for name, (files, notes) in CASES.items():
        dest = HERE / name
        if dest.exists():
            shutil.rmtree(dest)
        for rel, text in files.items():
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        readme = [f"# {name}", "", "Written by build_platform_fixtures.py. Where each file "
                  "came from:", ""] + [f"- {n}" for n in notes] + [""]
        (dest / "README.md").write_text("\n".join(readme))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
