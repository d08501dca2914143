"""The programs instances run (fixed-work workloads), built with the host's ``cc``.

``build("sysmix")`` returns the path of a ready binary, compiling it on first use. The
programs are declared once: ``experiments/c/{sysmix,postmark,seqread}.c`` here, and the
suite's own Dhrystone and Whetstone (run with their fixed-work ``-n`` option) in
:data:`virtbench.workloads.build.PROGRAMS`. Binaries come from the one build cache of
:mod:`virtbench.toolchain` (key: sha256 of the sources, the flags and ``cc --version``; a
changed source or compiler builds anew; concurrent and interrupted builds are safe).
``static=True`` links statically (for guests that have no libc, see ``virtbench.vm``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from virtbench import toolchain
from virtbench.errors import UsageError
from virtbench.toolchain import Program
from virtbench.workloads import build as workloads

CFLAGS: tuple[str, ...] = ("-O2", "-std=gnu11", "-Wall")
SOURCE_DIR = Path(__file__).resolve().parent / "c"

PROGRAMS: dict[str, Program] = {
    "sysmix": Program("sysmix", SOURCE_DIR, ("sysmix.c",), libs=("-lm",)),
    "postmark": Program("postmark", SOURCE_DIR, ("postmark.c",)),
    "seqread": Program("seqread", SOURCE_DIR, ("seqread.c",)),
    "dhry2reg": workloads.PROGRAMS["dhry2reg"],
    "whetstone-double": workloads.PROGRAMS["whetstone-double"],
}


def compiler_facts() -> tuple[str, str]:
    """(compiler command, first line of its ``--version``) as the builds use them."""
    cc = toolchain.compiler()
    return cc.command, cc.version


def source_hash(name: str) -> str:
    """sha256 of a program's sources and headers (stored with results for comparability)."""
    h = hashlib.sha256()
    for src in _program(name).inputs():
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    return h.hexdigest()


def _program(name: str) -> Program:
    try:
        return PROGRAMS[name]
    except KeyError:
        raise UsageError(f"unknown program {name!r}") from None


def build(name: str, *, static: bool = False) -> Path:
    """Path of the compiled program ``name`` (compiled on first use)."""
    flags = (*CFLAGS, *(("-static",) if static else ()))
    return toolchain.build_program(_program(name), flags)
