"""Compile the guests' workloads: small C programs linked statically with the host's cc.

Binaries are cached under ``cache_dir()/vm/bin`` keyed by the sha256 of the source, the flags
and ``cc --version``, so a changed compiler or source rebuilds, and nothing rebuilds otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from virtbench.errors import EnvironmentUnsupported
from virtbench.paths import cache_dir

SOURCE_DIR = Path(__file__).parent / "c"
CFLAGS = ("-O2", "-static", "-Wall")


@lru_cache(maxsize=1)
def _cc() -> tuple[str, str]:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise EnvironmentUnsupported("no C compiler (cc) found: install gcc and libc6-dev")
    try:
        version = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise EnvironmentUnsupported(f"{cc} --version failed: {exc}") from None
    return cc, version


def source(name: str) -> Path:
    return SOURCE_DIR / f"{name}.c"


def static_binary(name: str, source_path: Path | None = None) -> Path:
    """Path of the statically linked build of ``vm/c/<name>.c`` (compiled on first use)."""
    src = source_path or source(name)
    cc, version = _cc()
    text = src.read_bytes()
    key = hashlib.sha256(text + b"\0" + " ".join(CFLAGS).encode() + b"\0" + version.encode())
    out_dir = cache_dir() / "vm" / "bin"
    out = out_dir / f"{name}-{key.hexdigest()[:16]}"
    if out.is_file():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    proc = subprocess.run(
        [cc, *CFLAGS, "-o", str(tmp), str(src)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise EnvironmentUnsupported(
            f"cannot build static {name} with {cc}: {first} "
            "(static linking needs libc6-dev's libc.a)"
        )
    os.replace(tmp, out)
    return out
