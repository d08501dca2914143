"""The workload programs (declared once here) and their build for a compiler profile.

:func:`ensure_built` asks :mod:`virtbench.toolchain` (one reading of ``$CC``, one build cache
for every C program virtbench compiles) for every program below with the profile's flags;
the build directory holds the binaries, the data files the programs use at run time and
``buildinfo.json``. ``$CC`` (which may hold arguments, such as ``ccache gcc``) overrides ``cc``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from virtbench import toolchain
from virtbench.toolchain import BUILD_INFO_FILE, NO_CC_MESSAGE, Program, compiler_command
from virtbench.workloads.profiles import Profile

__all__ = [
    "BUILD_INFO_FILE",
    "NO_CC_MESSAGE",
    "PROGRAMS",
    "SOURCE_DIR",
    "BuildInfo",
    "Program",
    "compiler_command",
    "effective_cflags",
    "ensure_built",
    "source_hash",
]

SOURCE_DIR = Path(__file__).resolve().parent / "c"


def _program(name: str, sources: tuple[str, ...], **kw: tuple[str, ...]) -> Program:
    return Program(name, SOURCE_DIR, sources, **kw)


PROGRAMS: dict[str, Program] = {
    p.name: p
    for p in (
        _program("dhry2reg", ("dhry_1.c", "dhry_2.c"), defines=("-DREG=register",)),
        _program("whetstone-double", ("whets.c",), libs=("-lm",)),
        _program("syscall", ("syscall.c",)),
        _program("pipe", ("pipe.c",)),
        _program("context1", ("context1.c",)),
        _program("spawn", ("spawn.c",)),
        _program("execl", ("execl.c",)),
        _program("fstime", ("fstime.c",)),
        _program("looper", ("looper.c",)),
        _program("vbgate", ("vbgate.c",)),  # runner support: start gate, not a test
    )
}

# Non-compiled files the programs use at run time, copied next to the binaries.
DATA_FILES: tuple[str, ...] = ("multi.sh", "tst.sh", "shell-input.txt")


@dataclass(frozen=True)
class BuildInfo:
    bin_dir: Path
    cc: str
    cc_version: str
    cflags: tuple[str, ...]
    profile: str
    source_hash: str

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["bin_dir"] = str(self.bin_dir)
        d["cflags"] = list(self.cflags)
        return d


def source_files() -> list[Path]:
    """Every file the workloads are built from (C sources, headers, scripts, data)."""
    return sorted(p for p in SOURCE_DIR.iterdir() if p.is_file() and not p.name.startswith("."))


def source_hash() -> str:
    """sha256 over the names and contents of all workload sources (recorded with results)."""
    h = hashlib.sha256()
    for path in source_files():
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def effective_cflags(profile: Profile, cc: list[str]) -> tuple[str, ...]:
    """The profile's flags minus ``*=native`` flags this compiler rejects."""
    return tuple(
        f for f in profile.cflags if not f.endswith("=native") or toolchain.flag_works(cc, f)
    )


def ensure_built(
    profile: Profile,
    *,
    cache_root: Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BuildInfo:
    """Compile every workload program for ``profile`` (or reuse the cached build).

    Raises :class:`EnvironmentUnsupported` when there is no C compiler or a program does not
    compile (with the compiler's first error line).
    """
    cc = toolchain.compiler()
    flags = (*effective_cflags(profile, list(cc.argv)), *profile.defines)
    src_hash = source_hash()
    built = toolchain.build(
        list(PROGRAMS.values()),
        flags,
        data_files=[SOURCE_DIR / name for name in DATA_FILES],
        info={"profile": profile.name, "source_hash": src_hash},
        cache_root=cache_root,
        force=force,
        progress=progress,
        what="workload programs",
    )
    return BuildInfo(
        bin_dir=built.dir,
        cc=built.compiler.command,
        cc_version=built.compiler.version,
        cflags=flags,
        profile=profile.name,
        source_hash=src_hash,
    )
