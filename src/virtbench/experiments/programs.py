"""Compile the programs instances run (fixed-work workloads) with the host's ``cc``.

``build("sysmix")`` returns the path of a ready binary, compiling it on first use. The
programs are ``experiments/c/sysmix.c`` and the suite's own Dhrystone and Whetstone
(``workloads/c``, run with their fixed-work ``-n`` option). Binaries
are cached under ``virtbench.paths.cache_dir()/experiments/<key>/``, where the key is the
sha256 of the sources, the flags and ``cc --version``: a changed source or compiler builds
anew. ``static=True`` links statically (for guests that have no libc, see ``virtbench.vm``).
Compilation writes to a temporary name and renames, so concurrent builds are safe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from virtbench import paths
from virtbench.errors import EnvironmentUnsupported, UsageError

CFLAGS: tuple[str, ...] = ("-O2", "-std=gnu11", "-Wall")


@dataclass(frozen=True)
class Program:
    name: str
    sources: tuple[str, ...]
    """File names under ``virtbench/<package>/c/``."""
    libs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    package: str = "experiments"

    def source_paths(self) -> list[Path]:
        """The C sources (for builders of other kinds, e.g. static guest binaries)."""
        base = Path(str(resources.files(f"virtbench.{self.package}") / "c"))
        return [base / s for s in self.sources]


PROGRAMS: dict[str, Program] = {
    "sysmix": Program("sysmix", ("sysmix.c",), ("-lm",)),
    "postmark": Program("postmark", ("postmark.c",)),
    "seqread": Program("seqread", ("seqread.c",)),
    "dhry2reg": Program("dhry2reg", ("dhry_1.c", "dhry_2.c"), defines=("-DREG=register",),
                        package="workloads"),
    "whetstone-double": Program("whetstone-double", ("whets.c",), ("-lm",),
                                package="workloads"),
}


def _cc() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise EnvironmentUnsupported("no C compiler found (cc): install gcc")
    return cc


def _cc_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False,
                             timeout=30)
    except OSError as exc:
        raise EnvironmentUnsupported(f"cannot run the C compiler {cc}: {exc}") from None
    return out.stdout.splitlines()[0] if out.stdout else cc


def compiler_facts() -> tuple[str, str]:
    """(compiler command, first line of its ``--version``) as the builds use them."""
    cc = _cc()
    return cc, _cc_version(cc)


def source_hash(name: str) -> str:
    """sha256 of a program's sources (stored with results for comparability)."""
    prog = _program(name)
    h = hashlib.sha256()
    for src in prog.source_paths():
        h.update(src.name.encode() + b"\0" + src.read_bytes())
        for header in sorted(src.parent.glob("*.h")):
            h.update(header.name.encode() + b"\0" + header.read_bytes())
    return h.hexdigest()


def _program(name: str) -> Program:
    try:
        return PROGRAMS[name]
    except KeyError:
        raise UsageError(f"unknown program {name!r}") from None


def build(name: str, *, static: bool = False) -> Path:
    """Path of the compiled program ``name`` (compiled on first use)."""
    prog = _program(name)
    cc = _cc()
    flags = [*CFLAGS, *prog.defines, *(("-static",) if static else ())]
    h = hashlib.sha256()
    h.update(source_hash(name).encode())
    h.update(" ".join(flags + list(prog.libs)).encode())
    h.update(_cc_version(cc).encode())
    key = h.hexdigest()[:16]
    out_dir = paths.cache_dir() / "experiments" / key
    binary = out_dir / name
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.{os.getpid()}.tmp"
    cmd = [cc, *flags, "-o", str(tmp), *(str(p) for p in prog.source_paths()), *prog.libs]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["no output"])[0]
            hint = " (static linking needs libc6-dev's libc.a)" if static else ""
            raise EnvironmentUnsupported(f"cannot compile {name} with {cc}{hint}: {first}")
        os.replace(tmp, binary)
    finally:
        tmp.unlink(missing_ok=True)
    return binary
