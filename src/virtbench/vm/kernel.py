"""Find a Linux kernel image to boot guests with.

Order: an explicit path (``--kernel``), ``$VIRTBENCH_KERNEL``, then the host's installed
kernels (``/boot/vmlinuz-*``, ``/usr/lib/modules/*/vmlinuz``), newest version first. On a
Debian host without one (a container often has an empty ``/boot``), installing the
``linux-image-amd64`` package puts a kernel in ``/boot``; it never needs to be the running one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from virtbench.errors import EnvironmentUnsupported, UsageError

KERNEL_ENV = "VIRTBENCH_KERNEL"
HINT = (
    "pass --kernel PATH (a bzImage/vmlinuz for x86-64), set $VIRTBENCH_KERNEL, or install "
    "one (Debian: apt-get install linux-image-amd64)"
)


def _version_key(path: Path) -> tuple[int | str, ...]:
    parts = re.split(r"[.\-+_]", path.name.removeprefix("vmlinuz-"))
    key: list[int | str] = []
    for p in parts:
        key.append(int(p) if p.isdigit() else -1)
    return tuple(key)


def _looks_like_kernel(path: Path) -> bool:
    """An x86 boot image carries the ``HdrS`` magic at offset 0x202."""
    try:
        with path.open("rb") as f:
            f.seek(0x202)
            return f.read(4) == b"HdrS"
    except OSError:
        return False


def candidates(root: Path = Path("/")) -> list[Path]:
    """Installed kernels, newest first (readable or not)."""
    found: list[Path] = []
    boot = root / "boot"
    if boot.is_dir():
        found += sorted(boot.glob("vmlinuz-*"), key=_version_key, reverse=True)
        if (boot / "vmlinuz").exists():
            found.append(boot / "vmlinuz")
    for moddir in (root / "usr/lib/modules", root / "lib/modules"):
        if moddir.is_dir():
            found += sorted(
                (p / "vmlinuz" for p in moddir.iterdir() if (p / "vmlinuz").is_file()),
                key=lambda p: _version_key(Path(p.parent.name)),
                reverse=True,
            )
    seen: set[Path] = set()
    unique = []
    for p in found:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            unique.append(p)
    return unique


def find_kernel(explicit: str | os.PathLike[str] | None = None, root: Path = Path("/")) -> Path:
    """The kernel to boot, or one clear error saying what to do."""
    given = explicit or os.environ.get(KERNEL_ENV)
    if given:
        path = Path(given)
        if not path.is_file():
            raise UsageError(f"kernel {path}: no such file")
        if not os.access(path, os.R_OK):
            raise UsageError(f"kernel {path}: not readable by this user")
        if not _looks_like_kernel(path):
            raise UsageError(f"kernel {path}: not an x86 Linux boot image (no HdrS header)")
        return path
    unreadable: list[Path] = []
    for path in candidates(root):
        if not os.access(path, os.R_OK):
            unreadable.append(path)
            continue
        if _looks_like_kernel(path):
            return path
    if unreadable:
        raise EnvironmentUnsupported(
            f"kernel {unreadable[0]} is not readable by this user (Ubuntu keeps /boot/vmlinuz-* "
            f"0600): run as root, copy it somewhere readable and pass --kernel, or {HINT}"
        )
    raise EnvironmentUnsupported(f"no guest kernel found in /boot: {HINT}")
