"""Choose the accelerator: KVM only when a guest actually boots under it, else TCG.

``/dev/kvm`` opening is not enough: nested or restricted hosts expose it while a guest kernel
fails (QEMU aborts setting an MSR, or the guest hangs early in boot). So the probe boots the
real guest (kernel + a minimal initramfs) under KVM with a short timeout and waits for the
agent's ``READY`` line. The verdict, with its reason, is cached per host boot (keyed by
``/proc/sys/kernel/random/boot_id``, the kernel and the QEMU binary) in
``cache_dir()/vm/accel.json``; ``--accel kvm|tcg`` or ``$VIRTBENCH_ACCEL`` override it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.paths import cache_dir
from virtbench.safeio import atomic_write
from virtbench.vm import initramfs
from virtbench.vm.qemu import GuestConfig, GuestError, VMSession, find_qemu

ACCEL_ENV = "VIRTBENCH_ACCEL"
PROBE_TIMEOUT = 15.0


@dataclass
class AccelChoice:
    accel: str
    """``kvm`` or ``tcg``: what the guests will use."""
    reason: str
    """Why, in one line (``KVM boots guests (0.8 s)``, ``/dev/kvm: Permission denied``...)."""
    kvm_boot_seconds: float | None = None
    probed: bool = False
    """True if a KVM guest was actually booted for this decision (or a cached probe)."""

    def label(self) -> str:
        return "KVM" if self.accel == "kvm" else "TCG (software emulation, no KVM)"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def kvm_device_status() -> str | None:
    """``None`` if /dev/kvm can be opened read-write, else why not."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return "no /dev/kvm (KVM module not loaded, or no hardware virtualization exposed)"
    except OSError as exc:
        return f"/dev/kvm: {exc.strerror}"
    os.close(fd)
    return None


def _cache_key(kernel: Path, qemu: Path) -> str:
    st = kernel.stat()
    return f"{_boot_id()}|{kernel.resolve()}|{st.st_size}|{st.st_mtime_ns}|{qemu}"


def probe_kvm(kernel: Path, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str, float | None]:
    """Boot a minimal guest under KVM; (boots?, reason, seconds to READY)."""
    with VMSession(prefix="virtbench-kvmprobe-") as s:
        rd = initramfs.write(s.dir / "initrd")
        t0 = time.monotonic()
        try:
            g = s.start(GuestConfig(kernel=kernel, initrd=rd, accel="kvm"), name="kvmprobe")
            g.wait_ready(timeout)
        except GuestError as exc:
            msg = str(exc).removeprefix("kvmprobe: ")
            if "did not boot" in msg:
                msg = f"a KVM guest did not finish booting within {timeout:.0f} s"
            return False, f"/dev/kvm opens but {msg}", None
        secs = time.monotonic() - t0
        return True, f"a KVM guest booted in {secs:.1f} s", secs


def choose(kernel: Path, requested: str | None = None, use_cache: bool = True) -> AccelChoice:
    """The accelerator for guests of ``kernel``; ``requested`` is ``auto``, ``kvm`` or ``tcg``."""
    req = (requested or os.environ.get(ACCEL_ENV) or "auto").lower()
    if req not in ("auto", "kvm", "tcg"):
        raise UsageError(f"--accel must be auto, kvm or tcg, not {req!r}")
    if req == "tcg":
        return AccelChoice("tcg", "TCG requested")
    device = kvm_device_status()
    if device is not None:
        if req == "kvm":
            raise EnvironmentUnsupported(f"--accel kvm: {device}")
        return AccelChoice("tcg", device)
    qemu = find_qemu()
    key = _cache_key(kernel, qemu)
    path = cache_dir() / "vm" / "accel.json"
    cached: dict[str, dict[str, object]] = {}
    if use_cache:
        with contextlib.suppress(OSError, ValueError):
            cached = json.loads(path.read_text())
        hit = cached.get(key)
        if isinstance(hit, dict):
            with contextlib.suppress(TypeError):
                choice = AccelChoice(**hit)  # type: ignore[arg-type]
                return _apply_request(choice, req)
    ok, reason, secs = probe_kvm(kernel)
    choice = AccelChoice("kvm" if ok else "tcg", reason, secs, probed=True)
    with contextlib.suppress(OSError, UsageError):  # a cache: not writing it costs time only
        cached = {k: v for k, v in cached.items() if k.startswith(_boot_id())}
        cached[key] = asdict(choice)
        atomic_write(path, json.dumps(cached, indent=1))
    return _apply_request(choice, req)


def _apply_request(choice: AccelChoice, req: str) -> AccelChoice:
    if req == "kvm" and choice.accel != "kvm":
        raise EnvironmentUnsupported(f"--accel kvm: {choice.reason}; use --accel tcg")
    return choice
