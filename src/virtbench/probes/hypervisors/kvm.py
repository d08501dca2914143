"""KVM (with QEMU, firecracker, cloud-hypervisor, crosvm, kvmtool and the clouds built on
it), QEMU's firmware, and QEMU without KVM (TCG, pure emulation)."""

from __future__ import annotations

from virtbench.probes.hypervisors.definition import Hypervisor, dmi, file, log

KVM = Hypervisor(
    name="kvm",
    title="KVM",
    systemd=("kvm", "amazon", "google"),
    virt_what=("kvm", "lkvm", "aws", "google_cloud", "alibaba_cloud"),
    cpuid=("KVMKVMKVM", "Linux KVM Hv"),
    dmi=(
        dmi(r"amazon ec2|\bamazon\b", 0.9, kind="cloud", name="amazon"),
        dmi(r"amazon ec2", 0.6, "amazon-nitro", unless=r"xen"),
        dmi(r"google compute engine|\bgoogle\b", 0.9, kind="cloud", name="google"),
        dmi(r"google compute engine|\bgoogle\b", 0.6, "google"),
        dmi(r"oraclecloud", 0.9, kind="cloud", name="oracle"),
        dmi(r"alibaba cloud", 0.9, kind="cloud", name="alibaba"),
        dmi(r"alibaba cloud", 0.5),
        dmi(r"digitalocean", 0.9, kind="cloud", name="digitalocean"),
        dmi(r"digitalocean", 0.5),
        dmi(r"openstack", 0.6, kind="cloud", name="openstack"),
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
        file("/proc/sysinfo", r"Control Program:.*KVM", 0.9),
    ),
    clocksources=("kvm-clock",),
    pv_family="virtio",
    offers=("hyper-v",),
    variants=(("firecracker-like", "firecracker-like micro-VM"),
              ("cloud-hypervisor", "cloud-hypervisor"), ("crosvm", "crosvm"),
              ("amazon-nitro", "AWS Nitro"), ("google", "Google Compute Engine"),
              ("qemu", "qemu")),
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
