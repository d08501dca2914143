"""Compile the workload programs with the host's C compiler, into a cache.

The cache directory is ``<cache_root>/build/<key>/`` where ``key`` is a sha256 of the
workload sources, the compiler command, its full ``--version`` text, the flags (and, when
``-march=native``-style flags are used, the CPU identity, because such binaries only fit
the CPU they were built on).  A complete build is reused; a build happens in a temporary
directory next to the cache entry and is renamed into place only when every program
compiled, so a half-built directory is never used.  ``$CC`` (which may hold arguments, such
as ``ccache gcc``) overrides ``cc``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from virtbench import paths
from virtbench.errors import EnvironmentUnsupported
from virtbench.workloads.profiles import Profile

SOURCE_DIR = Path(__file__).resolve().parent / "c"
BUILD_INFO_FILE = "buildinfo.json"
NO_CC_MESSAGE = "no C compiler found ({cc}): install it with `apt-get install gcc`"


@dataclass(frozen=True)
class Program:
    """How to build one binary: its C sources (compiled and linked in one cc call, so each
    source stays its own translation unit), extra defines and libraries."""

    name: str
    sources: tuple[str, ...]
    defines: tuple[str, ...] = ()
    libs: tuple[str, ...] = ()


PROGRAMS: dict[str, Program] = {
    p.name: p
    for p in (
        Program("dhry2reg", ("dhry_1.c", "dhry_2.c"), defines=("-DREG=register",)),
        Program("whetstone-double", ("whets.c",), libs=("-lm",)),
        Program("syscall", ("syscall.c",)),
        Program("pipe", ("pipe.c",)),
        Program("context1", ("context1.c",)),
        Program("spawn", ("spawn.c",)),
        Program("execl", ("execl.c",)),
        Program("fstime", ("fstime.c",)),
        Program("looper", ("looper.c",)),
        Program("vbgate", ("vbgate.c",)),  # runner support: start gate, not a test
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
    """sha256 over the names and contents of all workload sources."""
    h = hashlib.sha256()
    for path in source_files():
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def compiler_command() -> list[str]:
    """The C compiler command: ``$CC`` split like a shell would, or ``cc``.

    :class:`EnvironmentUnsupported` when it cannot be found.
    """
    raw = os.environ.get("CC", "").strip() or "cc"
    try:
        cmd = shlex.split(raw)
    except ValueError:
        cmd = []
    if not cmd or shutil.which(cmd[0]) is None:
        raise EnvironmentUnsupported(NO_CC_MESSAGE.format(cc=raw))
    return cmd


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )


def compiler_version(cc: list[str]) -> str:
    """The full ``cc --version`` text."""
    try:
        proc = _run([*cc, "--version"])
    except OSError as exc:
        raise EnvironmentUnsupported(NO_CC_MESSAGE.format(cc=shlex.join(cc))) from exc
    if proc.returncode != 0 or not proc.stdout.strip():
        raise EnvironmentUnsupported(
            f"the C compiler ({shlex.join(cc)}) does not answer --version: "
            f"{_first_error_line(proc.stderr) or 'no output'}"
        )
    return proc.stdout


_FLAG_PROBES: dict[tuple[str, ...], bool] = {}


def _flag_works(cc: list[str], flag: str) -> bool:
    key = (*cc, flag)
    if key not in _FLAG_PROBES:
        with tempfile.TemporaryDirectory(prefix="virtbench-ccprobe-") as tmp:
            src = Path(tmp) / "probe.c"
            src.write_text("int probe(int x) { return x + 1; }\n")
            proc = _run([*cc, flag, "-c", str(src), "-o", str(Path(tmp) / "probe.o")])
            _FLAG_PROBES[key] = proc.returncode == 0
    return _FLAG_PROBES[key]


def effective_cflags(profile: Profile, cc: list[str]) -> tuple[str, ...]:
    """The profile's flags minus ``*=native`` flags this compiler rejects."""
    return tuple(f for f in profile.cflags if not f.endswith("=native") or _flag_works(cc, f))


def _cpu_identity() -> str:
    """What ``-march=native`` depends on: the machine and the CPU's model and flags."""
    parts = [platform.machine()]
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name = line.split(":", 1)[0].strip()
                if name in ("vendor_id", "model name", "flags", "Features", "cpu family", "model"):
                    parts.append(line.strip())
                if line.strip() == "":
                    break  # the first CPU is enough
    except OSError:
        pass
    return "\n".join(parts)


def _build_key(
    cc: list[str], version: str, cflags: tuple[str, ...], defines: tuple[str, ...], src: str
) -> str:
    h = hashlib.sha256()
    for part in (src, shlex.join(cc), version, "\0".join(cflags), "\0".join(defines)):
        h.update(part.encode() + b"\x01")
    if any(f.endswith("=native") for f in cflags):
        h.update(_cpu_identity().encode())
    return h.hexdigest()[:24]


def _first_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[0] if lines else ""


def _compile(
    cc: list[str],
    flags: tuple[str, ...],
    program: Program,
    out_dir: Path,
) -> tuple[Program, subprocess.CompletedProcess[str]]:
    cmd = [
        *cc,
        *flags,
        *program.defines,
        "-I",
        str(SOURCE_DIR),
        *(str(SOURCE_DIR / s) for s in program.sources),
        "-o",
        str(out_dir / program.name),
        *program.libs,
    ]
    return program, _run(cmd, cwd=out_dir)


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
    cc = compiler_command()
    version_text = compiler_version(cc)
    cc_version = version_text.strip().splitlines()[0].strip()
    cflags = effective_cflags(profile, cc)
    flags = (*cflags, *profile.defines)
    src_hash = source_hash()
    key = _build_key(cc, version_text, cflags, profile.defines, src_hash)

    root = (cache_root if cache_root is not None else paths.cache_dir()) / "build"
    bin_dir = root / key
    info = BuildInfo(
        bin_dir=bin_dir,
        cc=shlex.join(cc),
        cc_version=cc_version,
        cflags=flags,
        profile=profile.name,
        source_hash=src_hash,
    )
    if not force and (bin_dir / BUILD_INFO_FILE).is_file():
        return info

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        if progress:
            progress(f"compiling {len(PROGRAMS)} workload programs with {cc_version}")
        workers = max(1, min(len(PROGRAMS), os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda p: _compile(cc, flags, p, tmp), PROGRAMS.values()))
        for program, proc in results:
            if proc.returncode != 0 or not (tmp / program.name).is_file():
                detail = _first_error_line(proc.stderr) or f"exit status {proc.returncode}"
                raise EnvironmentUnsupported(
                    f"compiling workload {program.name!r} with {shlex.join(cc)} failed: {detail}"
                )
            if progress:
                progress(f"compiled {program.name}")
        for name in DATA_FILES:
            shutil.copyfile(SOURCE_DIR / name, tmp / name)
            if name.endswith(".sh"):
                os.chmod(tmp / name, 0o755)
        (tmp / BUILD_INFO_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n")
        _install(tmp, bin_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return info


def _install(tmp: Path, bin_dir: Path) -> None:
    """Move the finished build ``tmp`` to ``bin_dir`` (replacing an old one) atomically."""
    old: Path | None = None
    if bin_dir.exists():
        old = bin_dir.with_name(f".old-{bin_dir.name}-{os.getpid()}")
        os.rename(bin_dir, old)
    try:
        os.rename(tmp, bin_dir)
    except OSError:
        # Another process installed the same build meanwhile: keep theirs.
        if not (bin_dir / BUILD_INFO_FILE).is_file():
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
