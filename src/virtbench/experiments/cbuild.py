"""Compile one experiment C program into the shared compile cache.

The cache key follows the suite's build (:mod:`virtbench.workloads.build`): sha256 of the
source, the compiler command, its full ``--version`` text and the flags. A binary is
compiled into a temporary file and renamed into place, so a half-written binary is never
run. ``$CC`` overrides ``cc``.

The compiler command and its version text come from :mod:`virtbench.workloads.build`, so
the suite and the experiments agree on which compiler they use.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from virtbench import paths
from virtbench.errors import EnvironmentUnsupported
from virtbench.workloads.build import compiler_command, compiler_version

SOURCE_DIR = Path(__file__).resolve().parent / "c"
DEFAULT_FLAGS: tuple[str, ...] = ("-O2", "-Wall")


def build_key(source: bytes, cc: Sequence[str], version: str, flags: Sequence[str]) -> str:
    h = hashlib.sha256()
    for part in (source, shlex.join(cc).encode(), version.encode(), "\0".join(flags).encode()):
        h.update(part + b"\x01")
    return h.hexdigest()[:24]


def source_hash(name: str) -> str:
    """sha256 of one experiment program's source (recorded in results)."""
    return hashlib.sha256((SOURCE_DIR / f"{name}.c").read_bytes()).hexdigest()


def ensure_program(name: str, flags: Sequence[str] = DEFAULT_FLAGS) -> Path:
    """The path of the compiled program ``c/<name>.c``, compiling it on first use."""
    src = SOURCE_DIR / f"{name}.c"
    source = src.read_bytes()
    cc = compiler_command()
    key = build_key(source, cc, compiler_version(list(cc)), flags)
    out_dir = paths.cache_dir() / "experiments" / key
    binary = out_dir / name
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        proc = subprocess.run([*cc, *flags, str(src), "-o", str(tmp)], capture_output=True,
                              text=True, errors="replace", stdin=subprocess.DEVNULL,
                              check=False)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
            detail = (lines or proc.stderr.splitlines() or [f"exit {proc.returncode}"])[0]
            raise EnvironmentUnsupported(f"compiling {src.name} failed: {detail.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, binary)
    finally:
        tmp.unlink(missing_ok=True)
    return binary
