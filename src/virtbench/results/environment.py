"""Collect the environment a result was measured in (host facts + virtualization layers)."""

from __future__ import annotations

import os
import platform
import socket
import sys
from pathlib import Path

from virtbench import __version__
from virtbench.probes.model import DetectReport
from virtbench.results.model import Environment


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _os_release() -> str | None:
    text = _read("/etc/os-release")
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def _cpu_model() -> str | None:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Processor", "cpu model", "cpu"):
            return value.strip()
    return platform.processor() or None


def _memory_bytes() -> int | None:
    text = _read("/proc/meminfo") or ""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            return int(parts[1]) * 1024
    return None


def _uptime() -> str | None:
    text = _read("/proc/uptime")
    if not text:
        return None
    try:
        secs = int(float(text.split()[0]))
    except (ValueError, IndexError):
        return None
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    return f"{days}d {hours:02d}:{rem // 60:02d}"


def detect_virtualization(test_dir: Path | None = None,
                          steal_sample_s: float = 0.0) -> tuple[DetectReport | None, str | None]:
    """The ``virtbench detect`` report, or ``None`` and why detection failed."""
    from virtbench.probes import detect

    try:
        report = detect("/", steal_sample_s=steal_sample_s,
                        test_dir=str(test_dir) if test_dir else None)
    except Exception as exc:  # detection must never break a measurement
        return None, f"detection failed: {exc}"
    return report, None


def collect(*, virtualization: bool = True, test_dir: Path | None = None,
            steal_sample_s: float = 0.0) -> Environment:
    """Host facts; with ``virtualization``, the ``virtbench detect`` report too (facts about
    ``test_dir``, the directory file tests write to, and a steal sample when asked)."""
    uname = os.uname()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    report, error = (detect_virtualization(test_dir, steal_sample_s) if virtualization
                     else (None, None))
    return Environment(
        hostname=socket.gethostname(),
        os=f"GNU/Linux -- {_os_release() or uname.sysname}",
        kernel=uname.release,
        kernel_version=uname.version,
        machine=uname.machine,
        cpu_model=_cpu_model(),
        cpu_count=os.cpu_count(),
        cpus_usable=len(os.sched_getaffinity(0)),
        memory_bytes=_memory_bytes(),
        tool_version=__version__,
        python_version=sys.version.split()[0],
        load_average=[round(x, 2) for x in load] if load else None,
        uptime=_uptime(),
        virtualization=report,
        virtualization_error=error,
    )
