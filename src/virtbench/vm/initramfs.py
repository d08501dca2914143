"""Build the guests' initramfs: a cpio (newc) archive written here in Python.

Contents: static busybox (Debian ``busybox-static``) as ``/bin/busybox``, the ``/init`` agent
script below, and any statically linked workloads (``/bin/<name>``). The kernel unpacks it as
its root file system; nothing else is needed in the guest.

``/init`` mounts /proc, /sys, /dev and /tmp, switches the data port (``/dev/ttyS1``, the
second serial port, which the host reads over a unix socket) and the control port
(``/dev/ttyS2``, host to guest only) to raw mode, says ``@@VB READY <boot_id>`` on the data
port and then runs the commands the host sends on the control port, each as one line
``@@VB <id> <md5 of command> <command>``: its output goes to the data port, followed by
``@@VB DONE <id> <exit status>``; a line whose ``md5sum`` does not match is answered
``@@VB NAK <id>`` (the host sends it again), a repeated id is answered with the first run's
status without running it twice, and anything else (noise) is ignored. ``@@VB POWEROFF``
powers it off.

Input and output use two UARTs on purpose: with both directions on one emulated 16550, bytes
the host sent were lost while the guest was transmitting (seen with QEMU 7.2: a command line
lost as many leading bytes as a background job printed at the same time). Even so, bytes sent
to a guest's 16550 were occasionally lost around migrations: hence the checksum.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from collections.abc import Mapping
from pathlib import Path

from virtbench.errors import EnvironmentUnsupported
from virtbench.safeio import atomic_write

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox", "/usr/lib/busybox/busybox")
READY = "@@VB READY"
DONE = "@@VB DONE"
POWEROFF = "@@VB POWEROFF"

INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
exec 3>/dev/ttyS1 4</dev/ttyS2
echo "@@VB READY $(cat /proc/sys/kernel/random/boot_id)" >&3
last=none
lastrc=0
while IFS= read -r line <&4; do
  case "$line" in
    "@@VB POWEROFF") poweroff -f ;;
    "@@VB "*) ;;
    *) continue ;;
  esac
  rest=${line#@@VB }
  id=${rest%% *}
  rest=${rest#* }
  sum=${rest%% *}
  cmd=${rest#* }
  if [ "$id" = "$last" ]; then
    echo "@@VB DONE $id $lastrc" >&3
    continue
  fi
  set -- $(printf %s "$cmd" | md5sum)
  if [ "$1" != "$sum" ]; then
    echo "@@VB NAK $id" >&3
    continue
  fi
  sh -c "$cmd" >&3 2>&1 </dev/null 4<&-
  lastrc=$?
  last=$id
  echo "@@VB DONE $id $lastrc" >&3
done
poweroff -f
"""


def frame(command_id: int, command: str) -> str:
    """The control-port line for ``command`` (see the module docstring)."""
    return f"@@VB {command_id} {hashlib.md5(command.encode()).hexdigest()} {command}"


def is_static_elf(path: Path) -> bool:
    """True if ``path`` is an ELF executable without a program interpreter (statically linked)."""
    try:
        data = path.read_bytes()[:65536]
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return False
    endian = "<" if data[5] == 1 else ">"
    phoff = struct.unpack_from(endian + "Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + 4 > len(data):
            return False
        (p_type,) = struct.unpack_from(endian + "I", data, off)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def find_busybox() -> Path:
    env = os.environ.get("VIRTBENCH_BUSYBOX")
    if env:
        if not Path(env).is_file():
            raise EnvironmentUnsupported(f"$VIRTBENCH_BUSYBOX={env}: no such file")
        if not is_static_elf(Path(env)):
            raise EnvironmentUnsupported(
                f"$VIRTBENCH_BUSYBOX={env} is not a statically linked x86-64 program: the "
                "guest has no libraries (Debian: apt-get install busybox-static)")
        return Path(env)
    names: list[str] = []
    which = shutil.which("busybox")
    names += [*BUSYBOX_CANDIDATES, *([which] if which else [])]
    dynamic: str | None = None
    for name in names:
        path = Path(name)
        if path.is_file():
            if is_static_elf(path):
                return path
            dynamic = name
    if dynamic:
        raise EnvironmentUnsupported(
            f"{dynamic} is dynamically linked and cannot run alone in a guest: install a static "
            "busybox (Debian: apt-get install busybox-static) or set $VIRTBENCH_BUSYBOX"
        )
    raise EnvironmentUnsupported(
        "no busybox found for the guest: install busybox-static (Debian: apt-get install "
        "busybox-static) or set $VIRTBENCH_BUSYBOX to a statically linked busybox"
    )


class CpioWriter:
    """Minimal ``newc`` cpio writer (the format the kernel's initramfs unpacker reads)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", nlink: int = 1) -> None:
        namez = name.encode() + b"\0"
        header = "070701" + "".join(
            f"{v:08X}"
            for v in (self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(namez), 0)
        )
        self._ino += 1
        blob = header.encode() + namez
        blob += b"\0" * (-len(blob) % 4)
        blob += data
        blob += b"\0" * (-len(blob) % 4)
        self._parts.append(blob)

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o755) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        namez = name.encode() + b"\0"
        header = "070701" + "".join(
            f"{v:08X}"
            for v in (self._ino, 0o020600, 0, 0, 1, 0, 0, 0, 0, major, minor, len(namez), 0)
        )
        self._ino += 1
        blob = header.encode() + namez
        blob += b"\0" * (-len(blob) % 4)
        self._parts.append(blob)

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, nlink=1)
        out = b"".join(self._parts)
        return out + b"\0" * (-len(out) % 512)


def build(programs: Mapping[str, Path] | None = None, busybox: Path | None = None) -> bytes:
    """The initramfs as bytes: busybox, ``/init`` and ``programs`` (guest name -> static binary)."""
    bb = busybox or find_busybox()
    w = CpioWriter()
    for d in ("bin", "dev", "proc", "sys", "tmp", "sbin", "usr", "usr/bin", "usr/sbin"):
        w.directory(d)
    w.chardev("dev/console", 5, 1)
    w.chardev("dev/ttyS1", 4, 65)
    w.chardev("dev/ttyS2", 4, 66)
    w.file("bin/busybox", bb.read_bytes())
    w.symlink("bin/sh", "busybox")
    w.file("init", INIT_SCRIPT.encode())
    for name, path in sorted((programs or {}).items()):
        if not is_static_elf(path):
            raise EnvironmentUnsupported(f"{path} is not a static executable: cannot run in guest")
        w.file(f"bin/{name}", path.read_bytes())
    return w.finish()


def write(dest: Path, programs: Mapping[str, Path] | None = None) -> Path:
    """Write the initramfs to ``dest`` (atomically); returns ``dest``."""
    data = build(programs)
    return atomic_write(dest, data)


def digest(programs: Mapping[str, Path] | None = None) -> str:
    h = hashlib.sha256(INIT_SCRIPT.encode())
    for name, path in sorted((programs or {}).items()):
        h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]
