"""The VM layer: kernel discovery, initramfs format, accelerator choice, a real TCG boot."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import gone
from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.vm import accel, initramfs, kernel
from virtbench.vm.qemu import GuestConfig, VMSession


def _fake_kernel(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(0x300)
    data[0x202:0x206] = b"HdrS"
    path.write_bytes(bytes(data))
    return path


def test_find_kernel_prefers_newest_version(tmp_path: Path) -> None:
    _fake_kernel(tmp_path / "boot/vmlinuz-5.10.0-9-amd64")
    _fake_kernel(tmp_path / "boot/vmlinuz-6.1.0-12-amd64")
    _fake_kernel(tmp_path / "boot/vmlinuz-6.1.0-9-amd64")
    found = kernel.find_kernel(root=tmp_path)
    assert found.name == "vmlinuz-6.1.0-12-amd64"


def test_find_kernel_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kernel.KERNEL_ENV, raising=False)
    (tmp_path / "boot").mkdir()
    with pytest.raises(EnvironmentUnsupported, match="linux-image-amd64"):
        kernel.find_kernel(root=tmp_path)
    not_kernel = tmp_path / "x"
    not_kernel.write_bytes(b"\0" * 1024)
    with pytest.raises(UsageError, match="HdrS"):
        kernel.find_kernel(not_kernel)
    with pytest.raises(UsageError, match="no such file"):
        kernel.find_kernel(tmp_path / "missing")


def test_static_elf_detection() -> None:
    assert not initramfs.is_static_elf(Path(sys.executable).resolve())
    assert not initramfs.is_static_elf(Path(__file__))


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio tool not installed")
def test_initramfs_is_valid_newc(tmp_path: Path) -> None:
    bb = tmp_path / "busybox"
    bb.write_bytes(b"not really busybox\n")
    data = initramfs.build(busybox=bb)
    listing = subprocess.run(
        ["cpio", "-t", "--quiet"], input=data, capture_output=True, check=True
    ).stdout.decode().split()
    for name in ("init", "bin/busybox", "bin/sh", "dev/console", "dev/ttyS1"):
        assert name in listing
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet", "--no-absolute-filenames"], input=data, cwd=out,
                   check=True, capture_output=True)
    assert (out / "bin/busybox").read_bytes() == bb.read_bytes()
    assert (out / "init").read_text() == initramfs.INIT_SCRIPT
    assert (out / "bin/sh").is_symlink()


def test_accel_tcg_requested_and_bad_value() -> None:
    assert accel.choose(Path("/nonexistent"), "tcg").accel == "tcg"
    with pytest.raises(UsageError):
        accel.choose(Path("/nonexistent"), "xen")


def _vm_ready() -> str | None:
    try:
        kernel.find_kernel()
        initramfs.find_busybox()
    except Exception as exc:
        return str(exc)
    return None if shutil.which("qemu-system-x86_64") else "no qemu-system-x86_64"


@pytest.mark.slow
@pytest.mark.skipif(_vm_ready() is not None, reason=f"VM layer not available: {_vm_ready()}")
def test_real_tcg_guest_boots_runs_and_cleans_up() -> None:
    with VMSession() as s:
        rd = initramfs.write(s.dir / "initrd")
        g = s.start(GuestConfig(kernel.find_kernel(), rd, accel="tcg", memory_mb=96), "t0")
        boot_id = g.wait_ready(90)
        assert len(boot_id) == 36
        rc, out = g.run("grep -c ^processor /proc/cpuinfo; exit 3", 30)
        assert rc == 3 and out == ["1"]
        pid = g.proc.pid if g.proc else -1
        workdir = s.dir
    assert not workdir.exists()
    assert gone(pid, wait=0)  # the session reaped it
