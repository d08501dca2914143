"""KVM (with QEMU, firecracker, cloud-hypervisor, crosvm, kvmtool and the clouds built on
it), QEMU's firmware, and QEMU without KVM (TCG, pure emulation)."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import (
    Hypervisor,
    PvDriver,
    dmi,
    file,
    listing,
    log,
    pci,
)

KVM = Hypervisor(
    name="kvm",
    title="KVM",
    systemd=("kvm", "amazon", "google"),
    virt_what=("kvm", "lkvm", "aws", "google_cloud", "alibaba_cloud", "ibm_power-kvm",
               "ibm_systemz-kvm", "nutanix_ahv", "ovirt", "rhev", "redhat"),
    cpuid=("KVMKVMKVM", "Linux KVM Hv", "LKVMLKVMLKVM"),
    cpuid_variants=(("LKVMLKVMLKVM", "kvmtool"),),
    dmi=(
        dmi(r"amazon ec2|\bamazon\b", 0.9, kind="cloud", name="amazon"),
        # An AWS bare-metal instance ('i3.metal', 'c5.metal-...') has the same vendor.
        dmi(r"amazon ec2", 0.6, "amazon-nitro", unless=r"xen", unless_any=r"\.metal\b"),
        # 'Google' alone is also a Chromebook's vendor: only with 'Google Compute Engine'.
        dmi(r"\bgoogle\b", 0.9, kind="cloud", name="google",
            unless_any=r"^(?!.*google compute engine)"),
        dmi(r"\bgoogle\b", 0.6, "google", unless_any=r"^(?!.*google compute engine)"),
        dmi(r"oraclecloud", 0.9, kind="cloud", name="oracle"),
        dmi(r"alibaba cloud", 0.9, kind="cloud", name="alibaba"),
        dmi(r"alibaba cloud", 0.5),
        dmi(r"digitalocean", 0.9, kind="cloud", name="digitalocean"),
        dmi(r"digitalocean", 0.5),
        dmi(r"openstack", 0.6, kind="cloud", name="openstack"),
        dmi(r"openstack", 0.5),
        dmi(r"^upcloud", 0.9, kind="cloud", name="upcloud"),
        dmi(r"^upcloud", 0.5),
        dmi(r"^nutanix", 0.9, kind="platform", name="nutanix-ahv"),
        dmi(r"^nutanix|^ahv$", 0.6),
        dmi(r"^ovirt", 0.9, kind="platform", name="ovirt"),
        dmi(r"^ovirt", 0.6),
        dmi(r"^rhev hypervisor", 0.9, kind="platform", name="rhev"),
        dmi(r"^rhev hypervisor", 0.6),
        dmi(r"^red hat$", 0.8, kind="platform", name="redhat"),
        dmi(r"^kubevirt", 0.9, kind="platform", name="kubevirt"),
        dmi(r"^kubevirt", 0.6),
        dmi(r"cloud hypervisor|cloud-hypervisor", 0.5, "cloud-hypervisor"),
        dmi(r"firecracker", 0.5, "firecracker-like"),
        dmi(r"\bkvm\b", 0.6),
    ),
    acpi_oem=(("FIRECK", "firecracker-like", 0.5), ("CLOUDH", "cloud-hypervisor", 0.5),
              ("CROSVM", "crosvm", 0.5), ("AMAZON", "amazon-nitro", 0.4),
              ("Google", "google", 0.4)),
    detected=(("kvm", None, 0.95),),
    detected_prefixes=("kvm",),
    booting=(("kvm", None, 0.95),),
    log=(
        log(r"^kvm-clock: |clocksource: kvm-clock:|(Switched|Switching) to clocksource "
            r"kvm-clock", 0.8),
        log(r"^kvm-guest: ", 0.85),
        # arm64: the KVM vendor hypercalls (Linux 5.16+), and KVM's stolen-time interface.
        log(r"^smccc: KVM: hypervisor services detected", 0.9),
        log(r"^arm-pv: using stolen time PV", 0.6),
        log(r"--firecracker-init|[Ff]irecracker", 0.4, "firecracker-like", kind="variant"),
        log(r"virtio_mmio virtio_mmio|virtio-mmio: Registering device", 0.3, "firecracker-like",
            kind="variant"),
    ),
    cmdline=(
        log(r"--firecracker-init", 0.4, "firecracker-like", kind="variant"),
        log(r"virtio_mmio\.device=", 0.3, "firecracker-like", kind="variant"),
    ),
    files=(
        file("/proc/device-tree/hypervisor/compatible", r"linux,kvm", 0.9),
        file("/proc/sysinfo", r"^VM00 Control Program:.*KVM", 0.95),
        # kvmtool's arm64 board (QEMU's 'virt' board says 'linux,dummy-virt' too, but always
        # has a fw-cfg node at this address).
        file("/proc/device-tree/compatible", r"linux,dummy-virt", 0.6, "kvmtool",
             unless_path="/proc/device-tree/fw-cfg@9020000"),
        # A QEMU pseries guest on POWER: KVM (PowerKVM) in practice. When the device tree
        # was captured, its 'hypervisor' node decides instead (absent under TCG).
        file("/proc/cpuinfo", r"^(model|machine)\s*:.*emulated by qemu", 0.6, "powerkvm",
             unless_path="/proc/device-tree/compatible"),
        # LoongArch: QEMU offers the binary-translation extension (LBT) only with KVM (TCG
        # does not emulate it). Bare-metal Loongson CPUs have LBT too, so this only tells
        # KVM from TCG once QEMU is seen (a 'kvm-accel' hint, see classify._fold_qemu).
        file("/proc/cpuinfo", r"^Features\s*:.*\blbt_(x86|arm|mips)\b", 0.6, kind="hint",
             name="kvm-accel"),
    ),
    clocksources=("kvm-clock",),
    # virtio is KVM's family here; other hypervisors offer virtio devices too (bhyve, Apple's
    # framework, firecracker...), so virtio alone proves no hypervisor (see pv_families).
    pv_family="virtio",
    pv_drivers=(
        PvDriver("virtio_blk", "disk", (), (r"^virtio_blk virtio\d+|^virtio-blk",),
                 r"^vd[a-z]+$"),
        PvDriver("virtio_scsi", "disk", (), (r"^virtio_scsi|^scsi host\d+: Virtio SCSI",)),
        PvDriver("virtio_net", "net", (), (r"^virtio_net virtio\d+|^virtio-net",)),
    ),
    offers=("hyper-v",),
    variants=(("firecracker-like", "firecracker-like micro-VM"),
              ("cloud-hypervisor", "cloud-hypervisor"), ("crosvm", "crosvm"),
              ("amazon-nitro", "AWS Nitro"), ("google", "Google Compute Engine"),
              ("qemu", "qemu"), ("kvmtool", "kvmtool"), ("powerkvm", "PowerKVM (pSeries)")),
    pv_advice="virtio-blk/virtio-net (or virtio-scsi) in the VM definition",
)

# QEMU's firmware and device model: KVM-accelerated or pure emulation (TCG), decided with the
# other clues (see classify).
QEMU = Hypervisor(
    name="qemu",
    title="QEMU firmware",
    systemd=("qemu", "bochs"),
    dmi=(dmi(r"\bqemu\b|\bbochs\b|standard pc \((i440fx|q35)", 0.7, "qemu"),),
    acpi_oem=(("BOCHS", "qemu", 0.5), ("BXPC", "qemu", 0.5)),
    files=(
        # arm64 'virt' board: the firmware configuration device; POWER 'pseries' machine.
        listing("/proc/device-tree", r"^fw-cfg", 0.8, "qemu"),
        file("/proc/device-tree/compatible", r"qemu,pseries", 0.7, "powerkvm"),
        file("/proc/cpuinfo", r"^(model|machine)\s*:.*emulated by qemu", 0.7, "powerkvm"),
    ),
    pci=(
        # Red Hat's QEMU-only vendor id (PCIe root ports, xhci, pvpanic...) and the Bochs/QEMU
        # standard VGA. Virtio alone (1af4) is weaker: DPUs expose virtio functions to hosts.
        pci(r"^1b36:", 0.6, "qemu"),
        pci(r"^1234:1111$", 0.6, "qemu"),
        pci(r"^1af4:", 0.4, "qemu"),
    ),
)

QEMU_TCG = Hypervisor(
    name="qemu-tcg",
    title="QEMU TCG (pure emulation)",
    virt_what=("qemu",),
    cpuid=("TCGTCGTCGTCG",),
    cpuid_variants=(("TCGTCGTCGTCG", "tcg"),),
    log=(log(r"\bTCG\b.*(accel|accelerator)|QEMU TCG", 0.5, "tcg"),),
    variants=(("tcg", "pure emulation"),),
    advice=(
        ("",
         "QEMU TCG (pure emulation): CPU-bound scores are 10-50x below the hardware and "
         "say nothing about the host CPU. Run with KVM (-accel kvm) for real numbers."),
    ),
)

DEFINITIONS = (KVM, QEMU, QEMU_TCG)
