"""Write the captured-tree fixtures for tests/test_detect_fixtures.py.

Each case is a small tree that mirrors the live paths (proc/..., sys/...) plus dmesg.txt and
cpuid.txt, the same layout ``virtbench snapshot`` produces. The kernel-log lines and sysfs
contents are written by hand after the messages the Linux kernel prints on each platform.

Run from the project root:  python tests/data/detect/build_fixtures.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent

INTEL_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
    "sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology "
    "nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic "
    "movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch "
    "fsgsbase bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap clflushopt "
    "clwb avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves arat md_clear"
)


def cpuinfo(model: str, flags: str, n: int = 2, siblings: int | None = None,
            cores: int | None = None, vendor: str = "GenuineIntel") -> str:
    blocks = []
    for i in range(n):
        blocks.append(
            f"processor\t: {i}\nvendor_id\t: {vendor}\ncpu family\t: 6\nmodel\t\t: 85\n"
            f"model name\t: {model}\nstepping\t: 7\ncpu MHz\t\t: 2394.454\n"
            f"cache size\t: 36608 KB\nphysical id\t: 0\nsiblings\t: {siblings or n}\n"
            f"core id\t\t: {i}\ncpu cores\t: {cores or n}\napicid\t\t: {i}\n"
            f"fpu\t\t: yes\nflags\t\t: {flags}\nbogomips\t: 4788.90\n"
            "clflush size\t: 64\naddress sizes\t: 46 bits physical, 48 bits virtual\n\n"
        )
    return "".join(blocks)


def stat(steal: int = 12) -> str:
    return (
        f"cpu  104523 12 40231 8812345 3411 0 1022 {steal} 0 0\n"
        f"cpu0 52261 6 20115 4406172 1705 0 511 {steal // 2} 0 0\n"
        "intr 1234567\nctxt 7654321\nbtime 1700000000\nprocesses 12345\n"
    )


MEMINFO = (
    "MemTotal:        8147332 kB\nMemFree:         6021344 kB\n"
    "MemAvailable:    7409112 kB\nBuffers:           81224 kB\nSwapTotal:             0 kB\n"
)

VULNS_HOST = {
    "meltdown": "Not affected",
    "spectre_v1": "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
    "spectre_v2": "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling",
    "mds": "Not affected",
    "l1tf": "Not affected",
}


def common(
    cs_current: str,
    cs_available: str,
    *,
    online: str = "0-1",
    mount_dev: str = "202:1",
    fstype: str = "ext4",
    source: str = "/dev/xvda1",
    disk: str = "xvda",
    scheduler: str = "[none] mq-deadline",
    rotational: str = "0",
    thp: str = "always [madvise] never",
    cgroup: str = "0::/\n",
    steal: int = 12,
) -> dict[str, str]:
    files = {
        "proc/stat": stat(steal),
        "proc/meminfo": MEMINFO,
        "proc/self/cgroup": cgroup,
        "proc/1/cgroup": cgroup,
        "proc/self/status": "Name:\tpython3\nPid:\t4242\nNSpid:\t4242\n"
        f"Cpus_allowed_list:\t{online}\n",
        "proc/self/uid_map": "         0          0 4294967295\n",
        "proc/self/mountinfo": (
            f"22 1 {mount_dev} / / rw,relatime shared:1 - {fstype} {source} rw\n"
            "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw\n"
            "24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:3 - sysfs sysfs rw\n"
            "25 22 0:23 / /tmp rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,size=4073668k\n"
        ),
        "sys/devices/system/clocksource/clocksource0/current_clocksource": cs_current + "\n",
        "sys/devices/system/clocksource/clocksource0/available_clocksource": cs_available + "\n",
        "sys/devices/system/cpu/online": online + "\n",
        "sys/devices/system/node/online": "0\n",
        "sys/kernel/mm/transparent_hugepage/enabled": thp + "\n",
        f"sys/block/{disk}/dev": mount_dev.split(":")[0] + ":0\n",
        f"sys/block/{disk}/{disk}1/dev": mount_dev + "\n",
        f"sys/block/{disk}/queue/scheduler": scheduler + "\n",
        f"sys/block/{disk}/queue/rotational": rotational + "\n",
    }
    for name, value in VULNS_HOST.items():
        files[f"sys/devices/system/cpu/vulnerabilities/{name}"] = value + "\n"
    return files


INIT_NS = {
    "proc/self/ns/pid": "pid:[4026531836]",
    "proc/self/ns/user": "user:[4026531837]",
    "proc/self/ns/uts": "uts:[4026531838]",
    "proc/self/ns/ipc": "ipc:[4026531839]",
    "proc/self/ns/cgroup": "cgroup:[4026531835]",
}
CONTAINER_NS = {
    "proc/self/ns/pid": "pid:[4026532291]",
    "proc/self/ns/user": "user:[4026531837]",
    "proc/self/ns/uts": "uts:[4026532289]",
    "proc/self/ns/ipc": "ipc:[4026532290]",
    "proc/self/ns/cgroup": "cgroup:[4026532293]",
}


def bound(bus: str, driver: str, *devices: str) -> dict[str, str]:
    """A driver directory with bound devices (symlinks in sysfs; link targets suffice)."""
    return {f"sys/bus/{bus}/drivers/{driver}/{d}": f"../../../../devices/{d}" for d in devices}


def cpuid(bit: int, *leaves: tuple[int, int, int, int, int]) -> str:
    lines = [f"hypervisor_bit={bit}"]
    for leaf, a, b, c, d in leaves:
        lines.append(f"0x{leaf:08x} eax=0x{a:08x} ebx=0x{b:08x} ecx=0x{c:08x} edx=0x{d:08x}")
    return "\n".join(lines) + "\n"


def sig(text: str) -> tuple[int, int, int]:
    raw = text.encode().ljust(12, b"\0")
    return (int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[4:8], "little"),
            int.from_bytes(raw[8:12], "little"))


def leaf(n: int, maxleaf: int, text: str) -> tuple[int, int, int, int, int]:
    b, c, d = sig(text)
    return (n, maxleaf, b, c, d)


def dmi(vendor: str, product: str, bios_vendor: str, bios_version: str,
        asset: str = "") -> dict[str, str]:
    out = {
        "sys/class/dmi/id/sys_vendor": vendor + "\n",
        "sys/class/dmi/id/product_name": product + "\n",
        "sys/class/dmi/id/bios_vendor": bios_vendor + "\n",
        "sys/class/dmi/id/bios_version": bios_version + "\n",
    }
    if asset:
        out["sys/class/dmi/id/chassis_asset_tag"] = asset + "\n"
    return out


def log(*lines: str) -> str:
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
CASES: dict[str, tuple[dict[str, str], dict[str, str]]] = {}


def case(name: str, files: dict[str, str], links: dict[str, str] | None = None) -> None:
    CASES[name] = (files, links or {})


# -- bare metal ---------------------------------------------------------------------------------
case(
    "bare-metal",
    {
        **common("tsc", "tsc hpet acpi_pm", online="0-3", mount_dev="8:1", source="/dev/sda1",
                 disk="sda", scheduler="none [mq-deadline] kyber bfq", rotational="1"),
        "proc/cpuinfo": cpuinfo("Intel(R) Xeon(R) Silver 4110 CPU @ 2.10GHz",
                                INTEL_FLAGS + " vmx ept vpid", n=4, siblings=4, cores=2),
        "proc/version": "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) "
        "(gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "
        "PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)\n",
        "proc/cmdline": "BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 root=UUID=0b8e5c52 ro quiet\n",
        "proc/1/comm": "systemd\n",
        "sys/devices/system/cpu/smt/control": "on\n",
        "sys/devices/system/cpu/smt/active": "1\n",
        **{f"sys/devices/system/cpu/cpu{i}/cpufreq/scaling_governor": "powersave\n"
           for i in range(4)},
        **dmi("Supermicro", "SYS-1029P-WTR", "American Megatrends Inc.", "3.4"),
        "sys/module/kvm_intel/parameters/nested": "Y\n",
        "cpuid.txt": cpuid(0, (0x40000000, 0x00000016, 0x00000064, 0x00000000, 0x00000000)),
        "dmesg.txt": log(
            "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) "
            "(gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1",
            "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 root=UUID=0b8e5c52"
            " ro quiet",
            "[    0.000000] BIOS-provided physical RAM map:",
            "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009bfff] usable",
            "[    0.000000] DMI: Supermicro SYS-1029P-WTR/X11DDW-L, BIOS 3.4 11/04/2020",
            "[    0.000000] tsc: Detected 2100.000 MHz processor",
            "[    0.000000] ACPI: RSDP 0x00000000000F05B0 000024 (v02 SUPERM)",
            "[    0.000000] ACPI: XSDT 0x000000006B4A50C8 0000D4 (v01 SUPERM SMCI--MB 01072009"
            " AMI  00010013)",
            "[    0.041124] Booting paravirtualized kernel on bare hardware",
            "[    0.318211] clocksource: hpet: mask: 0xffffffff max_cycles: 0xffffffff, "
            "max_idle_ns: 133484882848 ns",
            "[    1.102934] clocksource: Switched to clocksource tsc-early",
            "[    1.520551] ahci 0000:00:17.0: AHCI 0001.0301 32 slots 8 ports 6 Gbps 0xff "
            "impl SATA mode",
            "[    1.611032] igb 0000:03:00.0: Intel(R) Gigabit Ethernet Network Connection",
            "[    2.331290] clocksource: Switched to clocksource tsc",
            "[    3.009212] kvm_intel: Nested Virtualization enabled",
        ),
    },
    {**INIT_NS, **{"sys/bus/pci/drivers/ahci/0000:00:17.0": "../../../../devices/pci0000:00/"
                   "0000:00:17.0"}},
)

# -- KVM with virtio ----------------------------------------------------------------------------
KVM_FLAGS = INTEL_FLAGS + " hypervisor"
case(
    "kvm-virtio",
    {
        **common("kvm-clock", "kvm-clock tsc acpi_pm", mount_dev="252:1", source="/dev/vda1",
                 disk="vda"),
        "proc/cpuinfo": cpuinfo("Intel Xeon Processor (Cascadelake)", KVM_FLAGS),
        "proc/version": "Linux version 5.15.0-97-generic (buildd@lcy02-amd64-102) #107-Ubuntu"
        " SMP Wed Feb 7 13:26:48 UTC 2024\n",
        "proc/cmdline": "BOOT_IMAGE=/vmlinuz-5.15.0-97-generic root=/dev/vda1 ro console=ttyS0\n",
        **dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)", "SeaBIOS", "1.16.2-debian-1.16.2-1"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x40000001, "KVMKVMKVM")),
        **bound("virtio", "virtio_blk", "virtio2"),
        **bound("virtio", "virtio_net", "virtio1"),
        **bound("pci", "virtio-pci", "0000:01:00.0", "0000:04:00.0"),
        "dmesg.txt": log(
            "[    0.000000] Linux version 5.15.0-97-generic (buildd@lcy02-amd64-102) "
            "#107-Ubuntu SMP Wed Feb 7 13:26:48 UTC 2024",
            "[    0.000000] DMI: QEMU Standard PC (Q35 + ICH9, 2009), BIOS "
            "1.16.2-debian-1.16.2-1 04/01/2014",
            "[    0.000000] Hypervisor detected: KVM",
            "[    0.000000] kvm-clock: Using msrs 4b564d01 and 4b564d00",
            "[    0.000001] kvm-clock: using sched offset of 6372893146 cycles",
            "[    0.000004] clocksource: kvm-clock: mask: 0xffffffffffffffff max_cycles: "
            "0x1cd42e4dffb, max_idle_ns: 881590591483 ns",
            "[    0.004817] ACPI: RSDP 0x00000000000F5A50 000014 (v00 BOCHS )",
            "[    0.004832] ACPI: RSDT 0x000000007FFE2313 000038 (v01 BOCHS  BXPC     00000001"
            " BXPC 00000001)",
            "[    0.031107] Booting paravirtualized kernel on KVM",
            "[    0.031955] kvm-guest: PV spinlocks enabled",
            "[    0.411390] clocksource: Switched to clocksource kvm-clock",
            "[    0.823164] virtio_blk virtio2: [vda] 41943040 512-byte logical blocks (21.5 "
            "GB/20.0 GiB)",
            "[    0.851032] virtio_net virtio1 enp1s0: renamed from eth0",
        ),
    },
    {**INIT_NS, "sys/class/net/enp1s0/device/driver": "../../../../bus/virtio/drivers/"
     "virtio_net"},
)

# -- KVM with emulated devices ------------------------------------------------------------------
case(
    "kvm-emulated",
    {
        **common("kvm-clock", "kvm-clock tsc hpet acpi_pm", mount_dev="8:1", source="/dev/sda1",
                 disk="sda", scheduler="noop [deadline] cfq", rotational="1"),
        "proc/cpuinfo": cpuinfo("Intel Core Processor (Haswell, no TSX)", KVM_FLAGS),
        "proc/version": "Linux version 3.10.0-1160.el7.x86_64 (mockbuild@kbuilder.bsys."
        "centos.org) (gcc version 4.8.5 20150623 (Red Hat 4.8.5-44) (GCC) ) #1 SMP\n",
        **dmi("Red Hat", "KVM", "SeaBIOS", "1.11.0-2.el7"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x40000001, "KVMKVMKVM")),
        **bound("pci", "ata_piix", "0000:00:01.1"),
        **bound("pci", "e1000", "0000:00:03.0"),
        "proc/modules": "e1000 137624 0 - Live 0xffffffffc0361000\n"
        "ata_piix 35052 0 - Live 0xffffffffc0278000\nlibata 243133 2 ata_generic,ata_piix, "
        "Live 0xffffffffc0223000\n",
        "dmesg.txt": log(
            "[    0.000000] Linux version 3.10.0-1160.el7.x86_64 (mockbuild@kbuilder.bsys."
            "centos.org) (gcc version 4.8.5 20150623 (Red Hat 4.8.5-44) (GCC) ) #1 SMP",
            "[    0.000000] DMI: Red Hat KVM, BIOS 1.11.0-2.el7 04/01/2014",
            "[    0.000000] Hypervisor detected: KVM",
            "[    0.000000] kvm-clock: Using msrs 4b564d01 and 4b564d00",
            "[    0.000000] kvm-clock: cpu 0, msr 0:7ff99001, primary cpu clock",
            "[    0.000000] Booting paravirtualized kernel on KVM",
            "[    0.000000] KVM setup async PF for cpu 0",
            "[    0.913224] ata_piix 0000:00:01.1: version 2.13",
            "[    0.914201] scsi host0: ata_piix",
            "[    1.084441] ata1.00: ATA-7: QEMU HARDDISK, 2.5+, max UDMA/100",
            "[    1.090112] sd 0:0:0:0: [sda] 41943040 512-byte logical blocks: (21.4 GB/20.0 "
            "GiB)",
            "[    1.204331] e1000: Intel(R) PRO/1000 Network Driver - version 7.3.21-k8-NAPI",
            "[    1.538120] e1000 0000:00:03.0 eth0: (PCI:33MHz:32-bit) 52:54:00:12:34:56",
            "[    1.538131] e1000 0000:00:03.0 eth0: Intel(R) PRO/1000 Network Connection",
        ),
    },
    INIT_NS,
)

# -- QEMU TCG (pure emulation) --------------------------------------------------------------------
case(
    "qemu-tcg",
    {
        **common("hpet", "hpet acpi_pm", online="0", mount_dev="252:1", source="/dev/vda1",
                 disk="vda"),
        "proc/cpuinfo": cpuinfo(
            "QEMU Virtual CPU version 2.5+",
            "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx "
            "fxsr sse sse2 syscall nx lm rep_good nopl cpuid extd_apicid pni cx16 x2apic "
            "hypervisor lahf_lm svm 3dnowprefetch vmmcall",
            n=1,
            vendor="AuthenticAMD",
        ),
        **dmi("QEMU", "Standard PC (i440FX + PIIX, 1996)", "SeaBIOS",
              "rel-1.16.3-0-ga6ed6b701f0a-prebuilt.qemu.org"),
        **bound("virtio", "virtio_blk", "virtio1"),
        **bound("virtio", "virtio_net", "virtio0"),
        "dmesg.txt": log(
            "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 "
            "SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
            "[    0.000000] DMI: QEMU Standard PC (i440FX + PIIX, 1996), BIOS "
            "rel-1.16.3-0-ga6ed6b701f0a-prebuilt.qemu.org 04/01/2014",
            "[    0.000000] tsc: Fast TSC calibration using PIT",
            "[    0.000000] tsc: Detected 1996.104 MHz processor",
            "[    0.004103] ACPI: RSDP 0x00000000000F5290 000014 (v00 BOCHS )",
            "[    0.083221] Booting paravirtualized kernel on bare hardware",
            "[    1.021033] clocksource: Switched to clocksource hpet",
            "[    2.813331] virtio_blk virtio1: [vda] 8388608 512-byte logical blocks (4.29 "
            "GB/4.00 GiB)",
            "[    4.902119] clocksource: timekeeping watchdog on CPU0: Marking clocksource "
            "'tsc-early' as unstable because the skew is too large:",
            "[    4.913201] tsc: Marking TSC unstable due to clocksource watchdog",
        ),
    },
    INIT_NS,
)

# -- Xen PV domU --------------------------------------------------------------------------------
# A PV domU does not see the local APIC, MCE/MCA or ACPI (Xen masks them); dom0 sees APIC.
XEN_PV_DOMU_FLAGS = (
    "fpu de tsc msr pae cx8 sep cmov pat clflush mmx fxsr sse sse2 ss ht syscall nx lm "
    "constant_tsc rep_good nopl nonstop_tsc cpuid pni pclmulqdq ssse3 cx16 sse4_1 sse4_2 "
    "x2apic popcnt aes xsave avx hypervisor lahf_lm"
)
XEN_PV_FLAGS = (
    "fpu de tsc msr pae mce cx8 apic sep mca cmov pat clflush acpi mmx fxsr sse sse2 ss ht "
    "syscall nx lm constant_tsc rep_good nopl nonstop_tsc cpuid pni pclmulqdq ssse3 cx16 "
    "sse4_1 sse4_2 x2apic popcnt aes xsave avx hypervisor lahf_lm"
)
case(
    "xen-pv-domu",
    {
        **common("xen", "xen tsc", online="0"),
        "proc/cpuinfo": cpuinfo("Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz", XEN_PV_DOMU_FLAGS,
                                n=1),
        "proc/version": "Linux version 4.19.0-21-amd64 (debian-kernel@lists.debian.org) "
        "(gcc version 8.3.0 (Debian 8.3.0-6)) #1 SMP Debian 4.19.249-2 (2022-06-30)\n",
        "proc/cmdline": "root=/dev/xvda1 ro elevator=noop console=hvc0\n",
        "proc/xen/capabilities": "",
        "sys/hypervisor/type": "xen\n",
        "sys/hypervisor/guest_type": "PV\n",
        "sys/hypervisor/version/major": "4\n",
        "sys/hypervisor/version/minor": "11\n",
        "sys/hypervisor/version/extra": ".4\n",
        **bound("xen", "vbd", "vbd-51713"),
        **bound("xen", "vif", "vif-0"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x40000005, "XenVMMXenVMM")),
        "dmesg.txt": log(
            "[    0.000000] Linux version 4.19.0-21-amd64 (debian-kernel@lists.debian.org) (gcc "
            "version 8.3.0 (Debian 8.3.0-6)) #1 SMP Debian 4.19.249-2 (2022-06-30)",
            "[    0.000000] Command line: root=/dev/xvda1 ro elevator=noop console=hvc0",
            "[    0.000000] x86/fpu: Supporting XSAVE feature 0x001: 'x87 floating point "
            "registers'",
            "[    0.000000] ACPI in unprivileged domain disabled",
            "[    0.000000] Released 0 page(s)",
            "[    0.000000] BIOS-provided physical RAM map:",
            "[    0.000000] Xen: [mem 0x0000000000000000-0x000000000009ffff] usable",
            "[    0.000000] Xen: [mem 0x00000000000a0000-0x00000000000fffff] reserved",
            "[    0.000000] Xen: [mem 0x0000000000100000-0x000000007fffffff] usable",
            "[    0.000000] NX (Execute Disable) protection: active",
            "[    0.000000] Hypervisor detected: Xen PV",
            "[    0.000000] tsc: Detected 1995.192 MHz processor",
            "[    0.000000] Booting paravirtualized kernel on Xen",
            "[    0.000000] Xen version: 4.11.4 (preserve-AD)",
            "[    0.000000] xen: PV spinlocks enabled",
            "[    0.004000] clocksource: xen: mask: 0xffffffffffffffff max_cycles: "
            "0x1cd42e4dffb, max_idle_ns: 881590591483 ns",
            "[    0.004000] Xen: using vcpuop timer interface",
            "[    0.004000] installing Xen timer for CPU 0",
            "[    0.196012] xen:grant_table: Grant tables using version 1 layout",
            "[    0.196031] Grant table initialized",
            "[    0.252144] xen:balloon: Initialising balloon driver",
            "[    0.283002] clocksource: Switched to clocksource xen",
            "[    0.603211] xen_netfront: Initialising Xen virtual ethernet driver",
            "[    0.681042] blkfront: xvda1: flush diskcache: enabled; persistent grants: "
            "enabled; indirect descriptors: enabled;",
        ),
    },
    INIT_NS,
)

# -- Xen PV domU, old kernel, kernel log only (CentOS 6 /var/log/dmesg: no timestamps) ---------
case(
    "xen-pv-old-dmesg-only",
    {
        "dmesg.txt": log(
            "Initializing cgroup subsys cpuset",
            "Initializing cgroup subsys cpu",
            "Linux version 2.6.32-504.23.4.el6.x86_64 (mockbuild@c6b9.bsys.dev.centos.org) "
            "(gcc version 4.4.7 20120313 (Red Hat 4.4.7-11) (GCC) ) #1 SMP Tue Jun 9 20:57:37 "
            "UTC 2015",
            "Command line: ro root=/dev/mapper/VolGroup-lv_root rd_LVM_LV=VolGroup/lv_root "
            "KEYBOARDTYPE=pc KEYTABLE=jp106 rd_NO_MD rd_NO_DM console=hvc0",
            "KERNEL supported cpus:",
            "  Intel GenuineIntel",
            "  AMD AuthenticAMD",
            "ACPI in unprivileged domain disabled",
            "released 0 pages of unused memory",
            "BIOS-provided physical RAM map:",
            " Xen: 0000000000000000 - 00000000000a0000 (usable)",
            " Xen: 00000000000a0000 - 0000000000100000 (reserved)",
            " Xen: 0000000000100000 - 0000000040000000 (usable)",
            "DMI not present or invalid.",
            "last_pfn = 0x40000 max_arch_pfn = 0x400000000",
            "init_memory_mapping: 0000000000000000-0000000040000000",
            "No NUMA configuration found",
            "Booting paravirtualized kernel on Xen",
            "Xen version: 4.4.2 (preserve-AD)",
            "NR_CPUS:4096 nr_cpumask_bits:1 nr_cpu_ids:1 nr_node_ids:1",
            "Xen: using vcpuop timer interface",
            "installing Xen timer for CPU 0",
            "Detected 1999.999 MHz processor.",
            "xen_balloon: Initialising balloon driver.",
            "Switching to clocksource xen",
            "blkfront: xvda: barrier: enabled",
            " xvda: xvda1 xvda2",
            "Initialising Xen virtual ethernet driver.",
            "EXT4-fs (dm-0): mounted filesystem with ordered data mode. Opts: ",
        ),
    },
)

# -- Xen HVM domU with PV drivers (an AWS HVM instance) -----------------------------------------
XEN_HVM_FLAGS = INTEL_FLAGS + " hypervisor"
case(
    "xen-hvm-pv-drivers",
    {
        **common("xen", "xen tsc hpet acpi_pm"),
        "proc/cpuinfo": cpuinfo("Intel(R) Xeon(R) CPU E5-2676 v3 @ 2.40GHz", XEN_HVM_FLAGS),
        "proc/xen/capabilities": "",
        "sys/hypervisor/type": "xen\n",
        "sys/hypervisor/guest_type": "HVM\n",
        **dmi("Xen", "HVM domU", "Xen", "4.11.amazon"),
        **bound("xen", "vbd", "vbd-51712"),
        **bound("xen", "vif", "vif-0"),
        **bound("pci", "ata_piix", "0000:00:01.1"),
        **bound("pci", "xen-platform-pci", "0000:00:03.0"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x40000005, "XenVMMXenVMM")),
        "dmesg.txt": log(
            "[    0.000000] Linux version 4.14.336-257.562.amzn2.x86_64 (mockbuild@ip-10-0-45-"
            "81) (gcc version 7.3.1 20180712 (Red Hat 7.3.1-17) (GCC)) #1 SMP",
            "[    0.000000] BIOS-provided physical RAM map:",
            "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009dfff] usable",
            "[    0.000000] DMI: Xen HVM domU, BIOS 4.11.amazon 08/24/2006",
            "[    0.000000] Hypervisor detected: Xen HVM",
            "[    0.000000] Xen version 4.11.",
            "[    0.000000] Xen Platform PCI: I/O protocol version 1",
            "[    0.000000] Netfront and the Xen platform PCI driver have been compiled for this"
            " kernel: unplug emulated NICs.",
            "[    0.000000] Blkfront and the Xen platform PCI driver have been compiled for this"
            " kernel: unplug emulated disks.",
            "[    0.000000] You might have to change the root device",
            "[    0.000000] from /dev/hd[a-d] to /dev/xvd[a-d]",
            "[    0.000000] in your root= kernel command line option",
            "[    0.000000] ACPI: RSDP 0x00000000000EA020 000024 (v02 Xen   )",
            "[    0.000000] ACPI: XSDT 0x00000000FC00E2A0 000044 (v01 Xen    HVM      00000000 "
            "HVML 00000000)",
            "[    0.000000] Booting paravirtualized kernel on Xen HVM",
            "[    0.000000] xen: PV spinlocks enabled",
            "[    0.004000] Xen HVM callback vector for event delivery is enabled",
            "[    0.104000] clocksource: xen: mask: 0xffffffffffffffff max_cycles: "
            "0x1cd42e4dffb, max_idle_ns: 881590591483 ns",
            "[    0.521933] xen:grant_table: Grant tables using version 1 layout",
            "[    0.528114] clocksource: Switched to clocksource xen",
            "[    0.980101] ata_piix 0000:00:01.1: version 2.13",
            "[    0.983121] scsi host0: ata_piix",
            "[    1.233017] xen_netfront: Initialising Xen virtual ethernet driver",
            "[    1.301002] blkfront: xvda: flush diskcache: enabled; persistent grants: "
            "disabled; indirect descriptors: enabled;",
        ),
    },
    {**INIT_NS, "sys/class/net/eth0/device/driver": "../../../bus/xen/drivers/vif"},
)

# -- Xen HVM domU without PV drivers (emulated disk and NIC) ------------------------------------
case(
    "xen-hvm-emulated",
    {
        **common("tsc", "tsc hpet acpi_pm", mount_dev="8:1", source="/dev/sda1", disk="sda",
                 scheduler="noop [deadline] cfq", rotational="1"),
        "proc/cpuinfo": cpuinfo("Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz", XEN_HVM_FLAGS,
                                n=1),
        "sys/devices/system/cpu/online": "0\n",
        "proc/self/status": "Name:\tpython3\nPid:\t901\nNSpid:\t901\nCpus_allowed_list:\t0\n",
        **dmi("Xen", "HVM domU", "Xen", "4.4.2"),
        **bound("pci", "ata_piix", "0000:00:01.1"),
        **bound("pci", "8139cp", "0000:00:04.0"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x40000004, "XenVMMXenVMM")),
        "dmesg.txt": log(
            "[    0.000000] Linux version 3.10.0-1160.el7.x86_64 (mockbuild@kbuilder.bsys."
            "centos.org) #1 SMP",
            "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-3.10.0-1160.el7.x86_64 root=/dev/"
            "sda1 ro xen_nopv",
            "[    0.000000] BIOS-provided physical RAM map:",
            "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
            "[    0.000000] DMI: Xen HVM domU, BIOS 4.4.2 06/02/2015",
            "[    0.000000] ACPI: RSDP 00000000000ea020 00024 (v02    Xen)",
            "[    0.000000] ACPI: XSDT 00000000fc00a8c0 00054 (v01    Xen      HVM 00000000 "
            "HVML 00000000)",
            "[    0.000000] Booting paravirtualized kernel on bare hardware",
            "[    0.742103] ata_piix 0000:00:01.1: version 2.13",
            "[    0.743882] scsi host0: ata_piix",
            "[    0.912442] ata1.00: ATA-7: QEMU HARDDISK, 1.0.0, max UDMA/100",
            "[    0.913112] scsi 0:0:0:0: Direct-Access     ATA      QEMU HARDDISK    0    "
            "PQ: 0 ANSI: 5",
            "[    0.951231] 8139cp: 8139cp: 10/100 PCI Ethernet driver v1.3 (Mar 22, 2004)",
            "[    0.953002] 8139cp 0000:00:04.0 eth0: RTL-8139C+ at 0xffffc90000664000, "
            "00:16:3e:5a:1b:2c, IRQ 11",
            "[    1.402311] clocksource: Switched to clocksource tsc",
        ),
    },
    INIT_NS,
)

# -- Xen PVH domU --------------------------------------------------------------------------------
case(
    "xen-pvh",
    {
        **common("xen", "xen tsc"),
        "proc/cpuinfo": cpuinfo("AMD EPYC 7402P 24-Core Processor", XEN_HVM_FLAGS,
                                vendor="AuthenticAMD"),
        "sys/hypervisor/type": "xen\n",
        "sys/hypervisor/guest_type": "PVH\n",
        "proc/xen/capabilities": "",
        **bound("xen", "vbd", "vbd-51712"),
        **bound("xen", "vif", "vif-0"),
        "dmesg.txt": log(
            "[    0.000000] Linux version 5.10.0-23-amd64 (debian-kernel@lists.debian.org) (gcc"
            "-10 (Debian 10.2.1-6) 10.2.1 20210110) #1 SMP Debian 5.10.179-1 (2023-05-12)",
            "[    0.000000] Command line: root=/dev/xvda1 ro console=hvc0",
            "[    0.000000] BIOS-provided physical RAM map:",
            "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000003fffffff] usable",
            "[    0.000000] NX (Execute Disable) protection: active",
            "[    0.000000] DMI not present or invalid.",
            "[    0.000000] Hypervisor detected: Xen HVM",
            "[    0.000000] Xen version 4.14.",
            "[    0.000000] ACPI: RSDP 0x00000000FC009FF0 000024 (v02 Xen   )",
            "[    0.000000] ACPI: XSDT 0x00000000FC009F10 00004C (v01 Xen    HVM      00000000 "
            "HVML 00000000)",
            "[    0.000000] Booting paravirtualized kernel on Xen PVH",
            "[    0.004000] clocksource: xen: mask: 0xffffffffffffffff max_cycles: "
            "0x1cd42e4dffb, max_idle_ns: 881590591483 ns",
            "[    0.020000] Xen: using vcpuop timer interface",
            "[    0.310112] xen:balloon: Initialising balloon driver",
            "[    0.344001] clocksource: Switched to clocksource xen",
            "[    0.722301] xen_netfront: Initialising Xen virtual ethernet driver",
            "[    0.794224] blkfront: xvda: flush diskcache: enabled; persistent grants: "
            "enabled; indirect descriptors: enabled; bounce buffer: enabled",
        ),
    },
    INIT_NS,
)

# -- Xen dom0 (PV) on a Dell server --------------------------------------------------------------
case(
    "xen-dom0",
    {
        **common("xen", "xen tsc hpet acpi_pm", mount_dev="8:1", source="/dev/sda1",
                 disk="sda", scheduler="none [mq-deadline]", rotational="1", online="0-7"),
        "proc/cpuinfo": cpuinfo("Intel(R) Xeon(R) Gold 6126 CPU @ 2.60GHz", XEN_PV_FLAGS,
                                n=8),
        "proc/xen/capabilities": "control_d\n",
        "sys/hypervisor/type": "xen\n",
        "sys/hypervisor/guest_type": "PV\n",
        **dmi("Dell Inc.", "PowerEdge R640", "Dell Inc.", "2.12.2"),
        **bound("pci", "ahci", "0000:00:17.0"),
        "dmesg.txt": log(
            "[    0.000000] Linux version 5.10.0-28-amd64 (debian-kernel@lists.debian.org) #1 "
            "SMP Debian 5.10.209-2 (2024-01-31)",
            "[    0.000000] Command line: placeholder root=UUID=3f9d1b2c ro quiet",
            "[    0.000000] Released 0 page(s)",
            "[    0.000000] BIOS-provided physical RAM map:",
            "[    0.000000] Xen: [mem 0x0000000000000000-0x000000000009afff] usable",
            "[    0.000000] Xen: [mem 0x000000000009b000-0x00000000000fffff] reserved",
            "[    0.000000] Xen: [mem 0x0000000000100000-0x00000000400e0fff] usable",
            "[    0.000000] DMI: Dell Inc. PowerEdge R640/0W23H8, BIOS 2.12.2 07/09/2021",
            "[    0.000000] Hypervisor detected: Xen PV",
            "[    0.000000] ACPI: RSDP 0x00000000000FE320 000024 (v02 DELL  )",
            "[    0.000000] Booting paravirtualized kernel on Xen",
            "[    0.000000] Xen version: 4.14.6 (preserve-AD)",
            "[    0.452015] xen:events: Using FIFO-based ABI",
            "[    0.460121] xen: --> pirq=1 -> irq=1 (gsi=1)",
            "[    1.632541] xen: registering gsi 13 triggering 1 polarity 0",
            "[    2.104311] xen_mcelog: /dev/mcelog registered by Xen",
            "[    2.611212] ahci 0000:00:17.0: AHCI 0001.0301 32 slots 8 ports 6 Gbps 0xff impl "
            "SATA mode",
            "[    5.873211] xen_acpi_processor: Uploading Xen processor PM info",
        ),
    },
    INIT_NS,
)

# -- VMware ---------------------------------------------------------------------------------------
case(
    "vmware",
    {
        **common("tsc", "tsc hpet acpi_pm", mount_dev="8:1", source="/dev/sda1", disk="sda"),
        "proc/cpuinfo": cpuinfo("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", KVM_FLAGS),
        **dmi("VMware, Inc.", "VMware Virtual Platform", "Phoenix Technologies LTD", "6.00"),
        **bound("pci", "vmxnet3", "0000:0b:00.0"),
        **bound("pci", "vmw_pvscsi", "0000:03:00.0"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x40000010, "VMwareVMware")),
        "dmesg.txt": log(
            "[    0.000000] DMI: VMware, Inc. VMware Virtual Platform/440BX Desktop Reference "
            "Platform, BIOS 6.00 11/12/2020",
            "[    0.000000] vmware: hypercall mode: 0x02",
            "[    0.000000] Hypervisor detected: VMware",
            "[    0.000000] vmware: TSC freq read from hypervisor : 2992.968 MHz",
            "[    0.000000] vmware: using clock offset of 7032537584 ns",
            "[    0.000000] ACPI: RSDP 0x00000000000F6A10 000024 (v02 PTLTD )",
            "[    0.029112] Booting paravirtualized kernel on VMware hypervisor",
            "[    1.512003] VMware PVSCSI driver - version 1.0.7.0-k",
            "[    1.512882] vmw_pvscsi: using 64bit dma",
            "[    1.633411] VMware vmxnet3 virtual NIC driver - version 1.6.0.0-k-NAPI",
            "[    1.634001] vmxnet3 0000:0b:00.0: # of Tx queues : 2, # of Rx queues : 2",
        ),
    },
    INIT_NS,
)

# -- Hyper-V (Azure) ------------------------------------------------------------------------------
case(
    "hyper-v",
    {
        **common("hyperv_clocksource_tsc_page", "hyperv_clocksource_tsc_page acpi_pm",
                 mount_dev="8:1", source="/dev/sda1", disk="sda"),
        "proc/cpuinfo": cpuinfo("Intel(R) Xeon(R) Platinum 8272CL CPU @ 2.60GHz", KVM_FLAGS),
        **dmi("Microsoft Corporation", "Virtual Machine", "Microsoft Corporation",
              "Hyper-V UEFI Release v4.1", asset="7783-7084-3265-9085-8269-3286-77"),
        **bound("vmbus", "hv_netvsc", "000d3a6b-4c5d-000d-3a6b-4c5d000d3a6b"),
        **bound("vmbus", "hv_storvsc", "f8b3781a-1e82-4818-a1c3-63d806ec15bb"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x4000000c, "Microsoft Hv")),
        "dmesg.txt": log(
            "[    0.000000] DMI: Microsoft Corporation Virtual Machine/Virtual Machine, BIOS "
            "Hyper-V UEFI Release v4.1 08/23/2024",
            "[    0.000000] Hypervisor detected: Microsoft Hyper-V",
            "[    0.000000] Hyper-V: privilege flags low 0xae7f, high 0x3b8030, hints 0x64e24, "
            "misc 0xbed7b2",
            "[    0.000000] Hyper-V: Host Build 10.0.20348.2527-1-0",
            "[    0.000000] clocksource: hyperv_clocksource_tsc_page: mask: 0xffffffffffffffff "
            "max_cycles: 0x24e6a1710, max_idle_ns: 440795202120 ns",
            "[    0.041221] Booting paravirtualized kernel on Hyper-V",
            "[    1.012331] hv_vmbus: Vmbus version:5.3",
            "[    1.021002] hv_vmbus: registering driver hv_netvsc",
            "[    1.021910] hv_vmbus: registering driver hv_storvsc",
            "[    1.104331] scsi host0: storvsc_host_t",
            "[    2.212113] clocksource: Switched to clocksource hyperv_clocksource_tsc_page",
        ),
    },
    INIT_NS,
)

# -- docker inside KVM ----------------------------------------------------------------------------
DOCKER_ID = "3f4e8c1d2b7a6e5f9c0d1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
_kvm_files, _ = CASES["kvm-virtio"]
case(
    "docker-in-kvm",
    {
        **{k: v for k, v in _kvm_files.items() if not k.startswith("proc/self/")},
        "proc/self/cgroup": f"12:memory:/docker/{DOCKER_ID}\n11:cpu,cpuacct:/docker/"
        f"{DOCKER_ID}\n0::/\n",
        "proc/1/cgroup": f"12:memory:/docker/{DOCKER_ID}\n0::/\n",
        "proc/1/environ": "container=docker\0",
        "proc/1/comm": "bash\n",
        "proc/self/status": "Name:\tpython3\nPid:\t7\nNSpid:\t7\nCpus_allowed_list:\t0-1\n",
        "proc/self/uid_map": "         0          0 4294967295\n",
        "proc/self/mountinfo": (
            "612 540 0:52 / / rw,relatime master:303 - overlay overlay rw,lowerdir=/var/lib/"
            "docker/overlay2/l/ABCD:/var/lib/docker/overlay2/l/EFGH,upperdir=/var/lib/docker/"
            "overlay2/9a1b/diff,workdir=/var/lib/docker/overlay2/9a1b/work\n"
            "613 612 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
        ),
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "150000\n",
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        ".dockerenv": "",
    },
    {**CONTAINER_NS, "sys/class/net/enp1s0/device/driver": "../../../../bus/virtio/drivers/"
     "virtio_net"},
)

# -- LXC on bare metal (no kernel log: dmesg is restricted inside the container) ---------------
case(
    "lxc-bare-metal",
    {
        **common("tsc", "tsc hpet acpi_pm", online="0-7", mount_dev="8:2", source="/dev/sda2",
                 disk="sda"),
        "proc/cpuinfo": cpuinfo("AMD EPYC 7302P 16-Core Processor",
                                INTEL_FLAGS + " svm npt", n=8, vendor="AuthenticAMD"),
        "proc/1/environ": "container=lxc\0",
        "proc/1/comm": "systemd\n",
        "proc/self/status": "Name:\tpython3\nPid:\t311\nNSpid:\t311\nCpus_allowed_list:\t0-3\n",
        "proc/self/cgroup": "0::/\n",
        "proc/self/mountinfo": (
            "1234 1200 8:2 /var/lib/lxc/web1/rootfs / rw,relatime - ext4 /dev/sda2 rw\n"
        ),
        "sys/fs/cgroup/cpu.max": "200000 100000\n",
        "sys/fs/cgroup/memory.max": "2147483648\n",
        "cpuid.txt": cpuid(0),
    },
    CONTAINER_NS,
)

# -- WSL2 -----------------------------------------------------------------------------------------
case(
    "wsl2",
    {
        **common("hyperv_clocksource_tsc_page", "hyperv_clocksource_tsc_page tsc",
                 mount_dev="8:32", source="/dev/sdc", disk="sdc", online="0-11"),
        "proc/cpuinfo": cpuinfo("12th Gen Intel(R) Core(TM) i7-1265U", KVM_FLAGS, n=12),
        "proc/version": "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1) "
        "(gcc (GCC) 11.2.0, GNU ld (GNU Binutils) 2.37) #1 SMP Fri Mar 29 23:14:13 UTC 2024\n",
        "proc/sys/kernel/osrelease": "5.15.153.1-microsoft-standard-WSL2\n",
        "proc/sys/fs/binfmt_misc/WSLInterop": "enabled\ninterpreter /init\n",
        "proc/1/comm": "init\n",
        **bound("vmbus", "hv_netvsc", "c7ed1c72-07a2-4dbc-9c1d-1a7f5d0a1c30"),
        **bound("vmbus", "hv_storvsc", "dff1c2d9-3b4a-4a2e-8a5f-6b9c0e7d1a22"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x4000000b, "Microsoft Hv")),
        "dmesg.txt": log(
            "[    0.000000] Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1)"
            " (gcc (GCC) 11.2.0, GNU ld (GNU Binutils) 2.37) #1 SMP Fri Mar 29 23:14:13 UTC 2024",
            "[    0.000000] Command line: initrd=\\initrd.img WSL_ROOT_INIT=1 panic=-1 nr_cpus=12"
            " hv_utils.timesync_implicit=1 console=hvc0 debug pty.legacy_count=0",
            "[    0.000000] Hypervisor detected: Microsoft Hyper-V",
            "[    0.000000] Hyper-V: privilege flags low 0xae7f, high 0x3b8030, hints 0x9e4e24, "
            "misc 0xe0bed7b2",
            "[    0.000000] Hyper-V: Host Build 10.0.22631.3527-1-0",
            "[    0.000000] DMI not present or invalid.",
            "[    0.049211] Booting paravirtualized kernel on Hyper-V",
            "[    0.412003] hv_vmbus: registering driver hv_netvsc",
            "[    0.431290] hv_vmbus: registering driver hv_storvsc",
        ),
    },
    INIT_NS,
)

# -- Xen HVM with PV drivers, old kernel, kernel log only (CentOS 6: no 'DMI:' line) ---------
case(
    "xen-hvm-old-dmesg-only",
    {
        "dmesg.txt": log(
            "Initializing cgroup subsys cpuset",
            "Linux version 2.6.32-431.el6.x86_64 (mockbuild@c6b8.bsys.dev.centos.org) (gcc "
            "version 4.4.7 20120313 (Red Hat 4.4.7-4) (GCC) ) #1 SMP Fri Nov 22 03:15:09 UTC 2013",
            "Command line: ro root=UUID=9a1c3e22 rd_NO_LUKS rd_NO_MD console=ttyS0",
            "BIOS-provided physical RAM map:",
            " BIOS-e820: 0000000000000000 - 000000000009e000 (usable)",
            " BIOS-e820: 000000000009e000 - 00000000000a0000 (reserved)",
            "DMI 2.4 present.",
            "Hypervisor detected: Xen HVM",
            "Xen version 4.2.",
            "Xen Platform PCI: I/O protocol version 1",
            "Netfront and the Xen platform PCI driver have been compiled for this kernel: "
            "unplug emulated NICs.",
            "Blkfront and the Xen platform PCI driver have been compiled for this kernel: "
            "unplug emulated disks.",
            "You might have to change the root device",
            "from /dev/hd[a-d] to /dev/xvd[a-d]",
            "in your root= kernel command line option",
            "ACPI: RSDP 00000000000ea020 00024 (v02    Xen)",
            "ACPI: XSDT 00000000fc00eaa0 00054 (v01    Xen      HVM 00000000 HVML 00000000)",
            "Booting paravirtualized kernel on bare hardware",
            "Xen HVM callback vector for event delivery is enabled",
            "xen_balloon: Initialising balloon driver.",
            "rtc_cmos 00:01: RTC can wake from S4",
            "rtc_cmos 00:01: rtc core: registered rtc_cmos as rtc0",
            "blkfront: xvda: barrier: enabled",
            " xvda: xvda1",
            "Initialising Xen virtual ethernet driver.",
        ),
    },
)

# -- AWS Nitro (KVM based) -----------------------------------------------------------------------
case(
    "aws-nitro",
    {
        **common("kvm-clock", "kvm-clock tsc acpi_pm", mount_dev="259:1", source="/dev/nvme0n1p1",
                 disk="nvme0n1"),
        "proc/cpuinfo": cpuinfo("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", KVM_FLAGS),
        **dmi("Amazon EC2", "m5.large", "Amazon EC2", "1.0"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x40000001, "KVMKVMKVM")),
        "dmesg.txt": log(
            "[    0.000000] DMI: Amazon EC2 m5.large/, BIOS 1.0 10/16/2017",
            "[    0.000000] Hypervisor detected: KVM",
            "[    0.000000] kvm-clock: Using msrs 4b564d01 and 4b564d00",
            "[    0.000000] ACPI: RSDP 0x00000000000F8F00 000014 (v00 AMAZON)",
            "[    0.041200] Booting paravirtualized kernel on KVM",
            "[    1.203101] ena 0000:00:05.0: Elastic Network Adapter (ENA) v2.8.0g",
            "[    1.301122] nvme nvme0: pci function 0000:00:04.0",
        ),
    },
    INIT_NS,
)

# -- Firecracker without ACPI (virtio-mmio, no firmware) -----------------------------------------
case(
    "firecracker-mmio",
    {
        **common("kvm-clock", "kvm-clock tsc", mount_dev="254:0", source="/dev/vda", disk="vda"),
        "proc/cpuinfo": cpuinfo("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", KVM_FLAGS),
        **bound("virtio", "virtio_blk", "virtio0"),
        **bound("virtio", "virtio_net", "virtio1"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x40000001, "KVMKVMKVM")),
        "dmesg.txt": log(
            "[    0.000000] Command line: console=ttyS0 reboot=k panic=1 pci=off "
            "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 root=/dev/vda",
            "[    0.000000] DMI not present or invalid.",
            "[    0.000000] Hypervisor detected: KVM",
            "[    0.000000] kvm-clock: Using msrs 4b564d01 and 4b564d00",
            "[    0.004000] Booting paravirtualized kernel on KVM",
            "[    0.061201] virtio-mmio: Registering device virtio-mmio.0 at 0xd0000000-0xd0000fff,"
            " IRQ 5.",
            "[    0.081003] virtio_blk virtio0: [vda] 2097152 512-byte logical blocks (1.07 GB/1.00"
            " GiB)",
        ),
    },
    INIT_NS,
)

# -- VirtualBox offering the KVM paravirt interface ----------------------------------------------
case(
    "virtualbox-kvm-paravirt",
    {
        **common("kvm-clock", "kvm-clock tsc acpi_pm", mount_dev="8:1", source="/dev/sda1",
                 disk="sda"),
        "proc/cpuinfo": cpuinfo("Intel(R) Core(TM) i7-10750H CPU @ 2.60GHz", KVM_FLAGS),
        **dmi("innotek GmbH", "VirtualBox", "innotek GmbH", "VirtualBox"),
        **bound("pci", "e1000", "0000:00:03.0"),
        **bound("pci", "ahci", "0000:00:0d.0"),
        "cpuid.txt": cpuid(1, leaf(0x40000000, 0x40000001, "KVMKVMKVM")),
        "dmesg.txt": log(
            "[    0.000000] DMI: innotek GmbH VirtualBox/VirtualBox, BIOS VirtualBox 12/01/2006",
            "[    0.000000] Hypervisor detected: KVM",
            "[    0.000000] ACPI: RSDP 0x00000000000E0000 000024 (v02 VBOX  )",
            "[    0.036002] Booting paravirtualized kernel on KVM",
            "[    2.513004] vboxguest: Successfully loaded version 7.0.14",
        ),
    },
    INIT_NS,
)

# -- rootless podman on KVM -----------------------------------------------------------------------
PODMAN_ID = "8c2f1e0d9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"
case(
    "podman-rootless",
    {
        **{k: v for k, v in _kvm_files.items() if not k.startswith("proc/self/")},
        "run/.containerenv": 'engine="podman-4.9.3"\n',
        "proc/1/comm": "sleep\n",
        "proc/self/cgroup": f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/"
        f"libpod-{PODMAN_ID}.scope/container\n",
        "proc/self/status": "Name:\tpython3\nPid:\t2\nNSpid:\t2\nCpus_allowed_list:\t0-1\n",
        "proc/self/uid_map": "         0       1000          1\n         1     100000      65536\n",
        "proc/self/mountinfo": (
            "700 650 0:61 / / rw,relatime - overlay overlay rw,lowerdir=/home/u/.local/share/"
            "containers/storage/overlay/l/Q2:/home/u/.local/share/containers/storage/overlay/l/"
            "R3,upperdir=/home/u/.local/share/containers/storage/overlay/4f/diff\n"
        ),
    },
    {**CONTAINER_NS, "proc/self/ns/user": "user:[4026532412]"},
)

# -- a Kubernetes pod (containerd) on KVM ----------------------------------------------------------
case(
    "kubernetes-pod",
    {
        **{k: v for k, v in _kvm_files.items() if not k.startswith("proc/self/")},
        "proc/1/comm": "pause\n",
        "proc/self/cgroup": "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-"
        "pod5b1c2d3e_4f5a_6b7c_8d9e_0f1a2b3c4d5e.slice/cri-containerd-"
        f"{DOCKER_ID}.scope\n",
        "proc/self/status": "Name:\tpython3\nPid:\t1\nNSpid:\t1\nCpus_allowed_list:\t0-1\n",
        "proc/self/mountinfo": (
            "1450 1300 0:240 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/"
            "io.containerd.snapshotter.v1.overlayfs/snapshots/91/fs,upperdir=/var/lib/containerd/"
            "io.containerd.snapshotter.v1.overlayfs/snapshots/92/fs\n"
        ),
        "sys/fs/cgroup/cpu.max": "50000 100000\n",
        "sys/fs/cgroup/memory.max": "536870912\n",
        "var/run/secrets/kubernetes.io/serviceaccount/.keep": "",
    },
    CONTAINER_NS,
)

# -- systemd-nspawn on bare metal ---------------------------------------------------------
_bare_files, _ = CASES["bare-metal"]
case(
    "nspawn-bare-metal",
    {
        **{k: v for k, v in _bare_files.items() if not k.startswith(("proc/self/", "dmesg"))},
        "run/systemd/container": "systemd-nspawn\n",
        "proc/1/environ": "container=systemd-nspawn\0",
        "proc/1/comm": "systemd\n",
        "proc/self/cgroup": "0::/\n",
        "proc/self/status": "Name:\tpython3\nPid:\t52\nNSpid:\t52\nCpus_allowed_list:\t0-3\n",
        "proc/self/mountinfo": "401 380 8:1 /var/lib/machines/deb12 / rw,relatime - ext4 "
        "/dev/sda1 rw\n",
    },
    CONTAINER_NS,
)

# -- OpenVZ container -------------------------------------------------------------------
case(
    "openvz",
    {
        **{k: v for k, v in _bare_files.items()
           if not k.startswith(("proc/self/", "dmesg", "sys/"))},
        "proc/vz/veinfo": "  101     2    18   10.0.0.5\n",
        "proc/user_beancounters": "Version: 2.5\n",
        "proc/self/status": "Name:\tpython3\nPid:\t812\nNSpid:\t812\nCpus_allowed_list:\t0-3\n",
        "proc/self/cgroup": "0::/\n",
    },
    CONTAINER_NS,
)

# -- malformed / truncated evidence --------------------------------------------------------------
case(
    "malformed",
    {
        "proc/cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) "
        "Xeon(R) CPU E5-26",  # truncated mid-line, no flags
        "proc/stat": "cpu  garbage here\ncpu0 1 2\n",
        "proc/meminfo": "MemTotal: lots kB\n\x00\x01\x02",
        "proc/self/cgroup": "::::\nnot-a-cgroup-line\n",
        "proc/self/mountinfo": "short line\n",
        "proc/self/status": "Cpus_allowed_list:\t0-x,,7-3\n",
        "sys/hypervisor/type": "",
        "sys/hypervisor/guest_type": "\n",
        "sys/devices/system/clocksource/clocksource0/current_clocksource": "",
        "sys/devices/system/cpu/online": "0-\n",
        "sys/fs/cgroup/cpu.max": "max\n",
        "cpuid.txt": "\x7fELF\x02\x01 this is not cpuid output 0x4000 eax=\n",
        "dmesg.txt": "[    0.000000] Linux version 5.10.0\n\x00\x00\xff\xfe garbage \x1b[31m\n"
        "[    0.000000] Hypervisor detected: Xen H",  # truncated final line
    },
    {"proc/1/environ": "environ", "sys/class/dmi/id/sys_vendor": "sys_vendor"},  # loops
)


def build() -> None:
    for name, (files, links) in CASES.items():
        base = HERE / name
        if base.exists():
            shutil.rmtree(base)
        for rel, content in files.items():
            path = base / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode("utf-8", "surrogateescape"))
        for rel, target in links.items():
            path = base / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, path)
        (base / "README.md").write_text(_readme(name, files, links))


def _readme(name: str, files: dict[str, str], links: dict[str, str]) -> str:
    listed = ", ".join(f"`{rel}`" for rel in sorted(files))
    out = [
        f"# {name}", "",
        "Written by `build_fixtures.py` (the `case(\"" + name + "\", ...)` entry there, whose "
        "comments name the kernel source or documentation each line follows). Where every "
        "file came from: written by hand after what the Linux kernel prints on this platform "
        "(kernel log lines, /proc and /sys contents), after the CPUID signature the hypervisor "
        "documents (`cpuid.txt`, in virtbench's own helper format) and the DMI strings the "
        "platform's firmware sets. None is a capture of a real machine.", "",
        f"Files: {listed}.",
    ]
    if links:
        out += ["", "Symbolic links: " + ", ".join(f"`{k}` -> `{v}`" for k, v in links.items())
                + "."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    build()
    print(f"wrote {len(CASES)} fixture trees under {HERE}")
