"""The guests' workloads: small C programs in ``vm/c/`` linked statically with the host's cc.

Declared once here and built by the one build cache of :mod:`virtbench.toolchain` (key: the
sha256 of the source, the flags and ``cc --version``), so a changed compiler or source
rebuilds, and nothing rebuilds otherwise.
"""

from __future__ import annotations

from pathlib import Path

from virtbench import toolchain
from virtbench.errors import UsageError
from virtbench.toolchain import Program

SOURCE_DIR = Path(__file__).resolve().parent / "c"
CFLAGS = ("-O2", "-static", "-Wall")

PROGRAMS: dict[str, Program] = {
    "vmload": Program("vmload", SOURCE_DIR, ("vmload.c",)),
}


def static_binary(name: str) -> Path:
    """Path of the statically linked build of the guest program ``name``."""
    try:
        prog = PROGRAMS[name]
    except KeyError:
        raise UsageError(f"unknown guest program {name!r}") from None
    return toolchain.build_program(prog, CFLAGS)
