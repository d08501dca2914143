"""The C toolchain: one reading of ``$CC`` and one build cache for every program virtbench
compiles (the suite's workloads, the experiments' programs, the VM guests' static programs
and the CPUID helper).

``$CC`` is split like a shell would (``CC="ccache gcc"``, ``CC="'/opt/my cc/gcc' -m64"``) and
checked: a malformed value or a compiler that is not there is one clear
:class:`EnvironmentUnsupported` line. Each package declares its programs once
(:class:`Program`: name, source directory, sources, defines, libraries) and asks
:func:`build` for them.

A build is a directory ``<cache>/build/<key>/`` holding the binaries (and any data files),
where ``key`` is the sha256 of every input (program sources, the headers next to them, data
files), the flags, the compiler command and its full ``--version`` text (and, with
``-march=native``-style flags, the CPU identity: such binaries fit only the CPU they were
built on). A complete build is reused. A build happens in a directory created exclusively
next to the cache entry (``.tmp-<pid>-*``) and is renamed into place only when every program
compiled, so a half-built entry is never visible; Ctrl-C and SIGTERM (which the CLI turns
into Ctrl-C) remove it, and the next build removes the ones a SIGKILL left behind. When the
cache directory is not writable (a read-only home, another user's cache), the build goes to
a private temporary directory removed when the process exits.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from virtbench import paths, sigmask
from virtbench.errors import EnvironmentUnsupported

NO_CC_MESSAGE = "no C compiler found ({cc}): install it with `apt-get install gcc`"
BUILD_INFO_FILE = "buildinfo.json"
COMPILE_TIMEOUT_S = 300.0
STALE_AFTER_S = 24 * 3600.0
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


@dataclass(frozen=True)
class Program:
    """How to build one binary: its C sources in ``source_dir`` (each compiled to its own
    object, then linked), extra defines and libraries."""

    name: str
    source_dir: Path
    sources: tuple[str, ...]
    defines: tuple[str, ...] = ()
    libs: tuple[str, ...] = ()

    def source_paths(self) -> list[Path]:
        return [self.source_dir / s for s in self.sources]

    def inputs(self) -> list[Path]:
        """Every file the binary depends on: its sources and the headers next to them."""
        headers = sorted(self.source_dir.glob("*.h"))
        return [*self.source_paths(), *(h for h in headers if h.name not in self.sources)]


@dataclass(frozen=True)
class Compiler:
    """The compiler command (``$CC`` split, or ``cc``) and its full ``--version`` text."""

    argv: tuple[str, ...]
    version_text: str

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    @property
    def version(self) -> str:
        """The first line of ``--version`` (what results record)."""
        return self.version_text.strip().splitlines()[0].strip()


@dataclass(frozen=True)
class Build:
    """A complete build in the cache: ``dir / <program name>`` are the binaries."""

    dir: Path
    compiler: Compiler
    flags: tuple[str, ...]

    def path(self, name: str) -> Path:
        return self.dir / name


def compiler_command() -> list[str]:
    """``$CC`` split like a shell would, or ``["cc"]``; checked.

    :class:`EnvironmentUnsupported` (one line) when the value is malformed or its program
    cannot be found.
    """
    raw = os.environ.get("CC", "").strip() or "cc"
    try:
        cmd = shlex.split(raw)
    except ValueError as exc:
        raise EnvironmentUnsupported(f"CC={raw!r} is not a valid command: {exc}") from None
    if not cmd:
        raise EnvironmentUnsupported(f"CC={raw!r} is not a valid command: it is empty")
    if shutil.which(cmd[0]) is None:
        raise EnvironmentUnsupported(NO_CC_MESSAGE.format(cc=raw))
    return cmd


_VERSIONS: dict[tuple[str, ...], str] = {}


def compiler_version(cc: Sequence[str]) -> str:
    """The full ``cc --version`` text (asked once per process and command)."""
    key = tuple(cc)
    if key not in _VERSIONS:
        try:
            proc = _run([*cc, "--version"], timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise EnvironmentUnsupported(NO_CC_MESSAGE.format(cc=shlex.join(cc))) from exc
        if proc.returncode != 0 or not proc.stdout.strip():
            raise EnvironmentUnsupported(
                f"the C compiler ({shlex.join(cc)}) does not answer --version: "
                f"{first_error_line(proc.stderr) or 'no output'}"
            )
        _VERSIONS[key] = proc.stdout
    return _VERSIONS[key]


def compiler() -> Compiler:
    """The compiler every build uses (``$CC`` read anew at each call)."""
    cmd = compiler_command()
    return Compiler(tuple(cmd), compiler_version(cmd))


def _run(
    cmd: list[str], cwd: Path | None = None, timeout: float = COMPILE_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        timeout=timeout,
    )


def first_error_line(stderr: str) -> str:
    """The compiler's first line that says ``error`` (else its first line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\berror\b", line, re.IGNORECASE):
            return line
    return lines[0] if lines else ""


_FLAG_PROBES: dict[tuple[str, ...], bool] = {}


def flag_works(cc: Sequence[str], flag: str) -> bool:
    """Whether ``cc`` accepts ``flag`` (compiles a one-line file with it; remembered).

    The source comes on stdin and the assembly goes to stdout: a probe makes no file, so a
    kill during it leaves nothing (bench/kill_points.py found a temporary probe directory
    left by a SIGKILL)."""
    key = (*cc, flag)
    if key not in _FLAG_PROBES:
        try:
            proc = subprocess.run(
                [*cc, flag, "-x", "c", "-S", "-o", "-", "-"],
                input="int probe(int x) { return x + 1; }\n",
                capture_output=True, text=True, errors="replace", check=False, timeout=60)
            _FLAG_PROBES[key] = proc.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _FLAG_PROBES[key] = False
    return _FLAG_PROBES[key]


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


def build_key(
    programs: Sequence[Program],
    flags: Sequence[str],
    cc: Compiler,
    data_files: Sequence[Path] = (),
) -> str:
    """sha256 of everything a build depends on (see the module's docstring)."""
    h = hashlib.sha256()

    def part(data: bytes) -> None:
        h.update(len(data).to_bytes(8, "little") + data)

    part(cc.command.encode())
    part(cc.version_text.encode())
    part("\0".join(flags).encode())
    for prog in sorted(programs, key=lambda p: p.name):
        part(prog.name.encode())
        part("\0".join((*prog.sources, "|", *prog.defines, "|", *prog.libs)).encode())
        for path in prog.inputs():
            part(path.name.encode())
            part(path.read_bytes())
    for path in sorted(data_files, key=lambda p: p.name):
        part(path.name.encode())
        part(path.read_bytes())
    if any(f.endswith("=native") for f in flags):
        part(_cpu_identity().encode())
    return h.hexdigest()[:24]


def _compile(cc: Compiler, flags: Sequence[str], prog: Program, out_dir: Path) -> str | None:
    """Compile ``prog`` into ``out_dir``; the compiler's first error line on failure.

    Each source is compiled to an object (``cc -c``), then the objects are linked: a
    compiler wrapper such as ccache caches compilations only, never a call that compiles
    and links at once. The objects go to a directory of their own, removed afterwards."""
    obj_dir = out_dir / f".obj-{prog.name}"
    try:
        obj_dir.mkdir()
        objects: list[str] = []
        for i, src in enumerate(prog.source_paths()):
            obj = obj_dir / f"{i}-{src.stem}.o"
            error = _cc(cc, [*flags, *prog.defines, "-I", str(prog.source_dir), "-c", str(src),
                             "-o", str(obj)], obj, out_dir)
            if error is not None:
                return error
            objects.append(str(obj))
        binary = out_dir / prog.name
        return _cc(cc, [*flags, *objects, "-o", str(binary), *prog.libs], binary, out_dir)
    finally:
        shutil.rmtree(obj_dir, ignore_errors=True)


def _cc(cc: Compiler, args: list[str], product: Path, cwd: Path) -> str | None:
    """One compiler call that must make ``product``; its first error line on failure."""
    try:
        proc = _run([*cc.argv, *args], cwd=cwd)
    except subprocess.TimeoutExpired:
        return f"no result after {COMPILE_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return str(exc)
    if proc.returncode != 0 or not product.is_file():
        return first_error_line(proc.stderr) or f"exit status {proc.returncode}"
    return None


def _pid_of(name: str) -> int | None:
    parts = name.split("-")
    if len(parts) >= 3 and parts[1].isdigit():
        return int(parts[1])
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


def sweep(root: Path) -> None:
    """Remove the temporary entries a killed build left in ``root`` (its process is gone,
    or the entry is over a day old)."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not entry.name.startswith((_TMP_PREFIX, _OLD_PREFIX)):
            continue
        pid = _pid_of(entry.name)
        try:
            old = now - entry.lstat().st_mtime > STALE_AFTER_S
        except OSError:
            continue
        if (pid is not None and pid != os.getpid() and not _alive(pid)) or old:
            shutil.rmtree(entry, ignore_errors=True)


_PRIVATE_ROOT: list[Path] = []


def _private_root() -> Path:
    """A per-process cache (removed at exit) for when the real one is not writable."""
    if not _PRIVATE_ROOT:
        tmp = Path(tempfile.mkdtemp(prefix="virtbench-build-"))
        atexit.register(shutil.rmtree, tmp, True)
        _PRIVATE_ROOT.append(tmp)
    return _PRIVATE_ROOT[0]


def build(
    programs: Sequence[Program],
    flags: Sequence[str],
    *,
    data_files: Sequence[Path] = (),
    info: Mapping[str, object] | None = None,
    cache_root: Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    what: str = "programs",
) -> Build:
    """The build of ``programs`` with ``flags`` (compiled now, or reused from the cache).

    ``data_files`` are copied next to the binaries (scripts keep their exec bit); ``info``
    is added to ``buildinfo.json``. :class:`EnvironmentUnsupported` when there is no
    compiler or a program does not compile (with the compiler's first error line).
    """
    cc = compiler()
    flags = tuple(flags)
    key = build_key(programs, flags, cc, data_files)
    root = (cache_root if cache_root is not None else paths.cache_dir()) / "build"
    result = Build(dir=root / key, compiler=cc, flags=flags)
    try:
        if not force and (result.dir / BUILD_INFO_FILE).is_file():
            return result
        root.mkdir(parents=True, exist_ok=True)
        sweep(root)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=root))
    except OSError as exc:
        if cache_root is not None:
            raise EnvironmentUnsupported(f"cannot write the build cache {root}: {exc}") from None
        return build(programs, flags, data_files=data_files, info=info,
                     cache_root=_private_root(), force=force, progress=progress, what=what)
    try:
        _build_into(tmp, programs, flags, cc, progress, what)
        for path in data_files:
            shutil.copyfile(path, tmp / path.name)
            if path.suffix == ".sh":
                os.chmod(tmp / path.name, 0o755)
        record = {
            "cc": cc.command,
            "cc_version": cc.version,
            "flags": list(flags),
            "programs": sorted(p.name for p in programs),
            **(info or {}),
        }
        (tmp / BUILD_INFO_FILE).write_text(json.dumps(record, indent=2) + "\n")
        _install(tmp, result.dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _build_into(
    out_dir: Path,
    programs: Sequence[Program],
    flags: tuple[str, ...],
    cc: Compiler,
    progress: Callable[[str], None] | None,
    what: str,
) -> None:
    if progress:
        progress(f"compiling {len(programs)} {what} with {cc.version}")
    workers = max(1, min(len(programs), os.cpu_count() or 1))
    if workers == 1:
        errors = [_compile(cc, flags, p, out_dir) for p in programs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            with sigmask.signals_deferred():  # workers block Ctrl-C: it goes to this thread
                results = pool.map(lambda p: _compile(cc, flags, p, out_dir), programs)
            errors = list(results)
    for prog, error in zip(programs, errors, strict=True):
        if error is not None:
            hint = " (static linking needs libc6-dev's libc.a)" if "-static" in flags else ""
            raise EnvironmentUnsupported(
                f"compiling {prog.name!r} with {cc.command} failed{hint}: {error}"
            )
        if progress:
            progress(f"compiled {prog.name}")


def _install(tmp: Path, dest: Path) -> None:
    """Move the finished build ``tmp`` to ``dest`` (replacing an old one) atomically."""
    old: Path | None = None
    if dest.exists():
        old = dest.with_name(f"{_OLD_PREFIX}{os.getpid()}-{dest.name}")
        try:
            os.rename(dest, old)
        except FileNotFoundError:
            old = None  # another process replaced it meanwhile
    try:
        os.rename(tmp, dest)
    except OSError:
        # Another process installed the same build meanwhile: keep theirs.
        if not (dest / BUILD_INFO_FILE).is_file():
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def build_program(
    prog: Program, flags: Sequence[str], *, cache_root: Path | None = None
) -> Path:
    """Path of the binary of one program (compiled on first use)."""
    return build([prog], flags, cache_root=cache_root, what="program").path(prog.name)
