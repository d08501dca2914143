"""IBM: z/VM, KVM and PR/SM LPARs on IBM Z (/proc/sysinfo); PowerVM LPARs (shared or
dedicated processors), PowerVM Lx86, and bare-metal POWER (OPAL) on POWER."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, exists, file

ZVM = Hypervisor(
    name="zvm",
    title="IBM z/VM",
    systemd=("zvm",),
    virt_what=("ibm_systemz-zvm",),
    files=(
        # VM00 is this guest's own hypervisor; VM01... are the levels below it (KVM in z/VM).
        file("/proc/sysinfo", r"^VM00 Control Program:.*z/VM", 0.95),
        # Without /proc/sysinfo: CPU version code FF is stored by a virtual machine (z/VM, or
        # KVM; LPARs store 00). z/VM, the older and common one, is named.
        file("/proc/cpuinfo", r"^processor \d+: version = FF,", 0.6,
             unless_path="/proc/sysinfo"),
    ),
)

# An LPAR of IBM Z's PR/SM firmware hypervisor, with nothing in between (systemd says 'none').
PRSM = Hypervisor(
    name="prsm",
    title="IBM Z PR/SM",
    virt_what=("ibm_systemz-lpar",),
    files=(
        file("/proc/sysinfo", r"^LPAR (Number|Name):", 0.9, "lpar", unless=r"Control Program:"),
        # Without /proc/sysinfo: version code 00 is stored by the machine (an LPAR), not a VM.
        file("/proc/cpuinfo", r"^processor \d+: version = 00,", 0.6, "lpar",
             unless_path="/proc/sysinfo"),
    ),
    variants=(("lpar", "LPAR"),),
)

_QEMU = r"emulated by qemu"
POWERVM = Hypervisor(
    name="powervm",
    title="IBM PowerVM",
    systemd=("powervm",),
    virt_what=("ibm_power-lpar_shared", "ibm_power-lpar_dedicated"),
    files=(
        exists("/proc/device-tree/hmc-managed?", 0.85, note="(HMC-managed LPAR)",
               unless_path="/proc/device-tree/chosen/qemu,graphic-width"),
        file("/proc/cpuinfo", r"^platform\s*:\s*pSeries", 0.7, unless=_QEMU),
        file("/proc/ppc64/lparcfg", r"^shared_processor_mode=1", 0.9, "shared", unless=_QEMU),
        file("/proc/ppc64/lparcfg", r"^shared_processor_mode=0", 0.9, "dedicated",
             unless=_QEMU),
        # Bare-metal POWER: OPAL firmware, no partition hypervisor.
        file("/proc/cpuinfo", r"^platform\s*:\s*PowerNV", 0.8, kind="not-hypervisor",
             name="none"),
    ),
    variants=(("shared", "shared processors LPAR"), ("dedicated", "dedicated processors LPAR")),
)

LX86 = Hypervisor(
    name="powervm-lx86",
    title="IBM PowerVM Lx86 (x86 Linux binaries translated on POWER)",
    virt_what=("powervm_lx86",),
    files=(file("/proc/cpuinfo", r"^vendor_id\s*:.*PowerVM Lx86", 0.95),),
)

DEFINITIONS = (ZVM, PRSM, POWERVM, LX86)
