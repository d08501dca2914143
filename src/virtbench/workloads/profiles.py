"""Compiler profiles: which flags and defines build the workload programs.

``unixbench-6`` mirrors byte-unixbench 6.0 (``-O3 -ffast-math -march=native``, raw getpid
syscall, Whetstone timed on the wall clock); ``unixbench-5.1.3`` mirrors 5.1.3 (``-O2
-fomit-frame-pointer -fforce-addr -ffast-math``, ``getpid()`` through libc, Whetstone timed
on user CPU time).  Flags the host compiler rejects (``-march=native`` on some targets) are
dropped by :func:`virtbench.workloads.build.ensure_built`, which records the flags actually
used.
"""

from __future__ import annotations

from dataclasses import dataclass

from virtbench.errors import UsageError


@dataclass(frozen=True)
class Profile:
    name: str
    cflags: tuple[str, ...]
    defines: tuple[str, ...]


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="unixbench-6",
            cflags=(
                "-O3",
                "-ffast-math",
                "-march=native",
                "-mtune=native",
                "-Wall",
                "-pedantic",
            ),
            defines=("-DVB_RAW_GETPID=1", "-DVB_WHET_WALLCLOCK=1"),
        ),
        Profile(
            name="unixbench-5.1.3",
            cflags=("-O2", "-fomit-frame-pointer", "-fforce-addr", "-ffast-math", "-Wall"),
            defines=("-DVB_RAW_GETPID=0", "-DVB_WHET_WALLCLOCK=0"),
        ),
    )
}

DEFAULT_PROFILE = "unixbench-6"


def get_profile(name: str) -> Profile:
    """The profile called ``name``; :class:`UsageError` listing the valid names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        valid = ", ".join(sorted(PROFILES))
        raise UsageError(f"unknown profile {name!r} (valid: {valid})") from None
