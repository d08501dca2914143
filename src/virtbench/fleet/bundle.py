"""What is shipped to a target: the lean target bundle, named by its content hash.

A target only measures: it runs workloads (built there from their C sources), the runner,
the probes and writes a result document (pydantic models). So the bundle holds

- ``lib/virtbench/``: virtbench's package without what only the controller runs
  (:data:`CONTROLLER_ONLY_PARTS`: the fleet itself, the web dashboard, the report templates,
  the UnixBench importers), copied from the package virtbench runs from (a source tree or an
  installed wheel alike), without byte code;
- ``lib/``: the wheels of :data:`TARGET_REQUIREMENTS` (pydantic and what it needs, with
  pydantic-core built for the target's Python version and platform), unpacked; ``pip
  download --only-binary`` fetches them once per kind of target through the controller's
  own pip configuration (a mirror, a proxy) and caches them.

Nothing else: no SQLAlchemy (a target keeps no index: ``VIRTBENCH_FLEET_TARGET`` tells
``save_and_record`` so), no plotly, no Ansible, no rich, no numpy or scipy.

The bundle is a ``tar.gz`` of that tree. Its **content hash** (:func:`tree_hash`, the same
code the target runs, :mod:`virtbench.fleet.target_tool`) names it: the target keeps it in
``<remote base>/bundles/<host>/<hash>/`` across fleet runs, and a fleet run ships it only
when the tree there does not hash to the expected value (absent, stale, or tampered with).
Targets run it with ``PYTHONPATH=<hash>/lib python3 -S -m virtbench``: no venv, no pip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import virtbench
from virtbench import __version__, paths
from virtbench.errors import EnvironmentUnsupported
from virtbench.fleet.target_tool import tree_hash as _tree_hash
from virtbench.safeio import replacing

TARGET_REQUIREMENTS: tuple[str, ...] = ("pydantic>=2.5",)
"""What a target needs besides virtbench's own code (the result model)."""

CONTROLLER_ONLY_PARTS: tuple[str, ...] = (
    "fleet", "serve", "importers", "report/templates", "report/html.py",
)
"""Parts of the virtbench package (relative paths) that only the controller runs."""

ON_TARGET_ANYWAY: tuple[str, ...] = ("fleet/__init__.py", "fleet/command.py")
"""Exceptions: the CLI's parser (``virtbench --help`` on a target) imports them."""

MAX_BUNDLE_BYTES = 10_000_000
"""The budget of a target bundle (tests/test_fleet_bundle.py holds it)."""

_EXCLUDE_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_FORMAT = "1"
"""Bumped when the bundle's layout changes (part of the controller's cache key)."""


def package_dir() -> Path:
    return Path(virtbench.__file__).resolve().parent


def target_files(pkg: Path | None = None) -> list[tuple[Path, str]]:
    """(source file, path in the bundle) of virtbench's code a target runs."""
    pkg = pkg or package_dir()
    skip = {pkg / part for part in CONTROLLER_ONLY_PARTS}
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(pkg):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if n not in _EXCLUDE_DIRS
                             and not n.endswith(".egg-info"))
        for f in sorted(filenames):
            path = d / f
            rel = str(path.relative_to(pkg))
            skipped = any(path == s or s in path.parents for s in skip)
            if (skipped and rel not in ON_TARGET_ANYWAY) or path.is_symlink() \
                    or f.endswith((".pyc", ".pyo", ".swp", "~")):
                continue
            out.append((path, "lib/virtbench/" + rel))
    return out


def _source_key(files: list[tuple[Path, str]]) -> str:
    h = hashlib.sha256(f"{_FORMAT}|{__version__}".encode())
    for src, arc in files:
        h.update(arc.encode() + b"\0" + src.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def tree_hash(root: Path) -> str:
    """The content hash of an unpacked bundle (what the target checks)."""
    found = _tree_hash(str(root))
    if found is None:
        raise EnvironmentUnsupported(f"{root}: not a plain tree of files and directories")
    return found


def platform_tags(machine: str, libc: str) -> list[str]:
    """pip ``--platform`` tags a target accepts, from ``uname -m`` and its libc
    (``glibc 2.36`` or ``musl 1.2``)."""
    kind, _, version = libc.partition(" ")
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        major, minor = (2, 17) if kind == "glibc" else (1, 1)
    if kind == "musl":
        return [f"musllinux_{major}_{m}_{machine}" for m in range(minor, -1, -1)]
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]
    tags.append(f"manylinux2014_{machine}")
    if machine in ("x86_64", "i686"):
        tags += [f"manylinux2010_{machine}", f"manylinux1_{machine}"]
    return tags


@dataclass(frozen=True)
class Bundle:
    """One tar.gz for the targets of one Python version and platform."""

    path: Path
    """The tar.gz on the controller."""
    hash: str
    """Content hash of the unpacked tree (sha256, hex): its name on the target."""
    size: int
    """Bytes of the tar.gz: what is shipped to a host that does not have it."""
    python_version: str
    platform: str

    @property
    def key(self) -> str:
        return self.hash[:16]


def _pip_download(dest: Path, args: list[str], what: str) -> None:
    env = dict(os.environ)
    env.setdefault("PIP_CACHE_DIR", str(paths.cache_dir() / "fleet" / "pip-cache"))
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
           "--only-binary=:all:", "-d", str(dest), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        errs = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln] or \
            proc.stderr.strip().splitlines()[-2:]
        raise EnvironmentUnsupported(f"cannot download {what}: {' / '.join(errs)[:300]}")


def _cached_download(key_text: str, args: list[str], what: str) -> Path:
    """A directory of wheels ``pip download`` fetched once for ``key_text``."""
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    out = paths.cache_dir() / "fleet" / "downloads" / key
    if (out / ".complete").exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=out.parent))
    try:
        _pip_download(tmp, args, what)
        (tmp / ".complete").touch()
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def dependency_wheels(python_version: str, platform: list[str],
                      reqs: tuple[str, ...] = TARGET_REQUIREMENTS) -> list[Path]:
    """Binary wheels of ``reqs`` (and their dependencies) for a target platform."""
    args = ["--python-version", python_version, "--implementation", "cp"]
    for tag in [*platform, "any"]:
        args += ["--platform", tag]
    key = f"deps|{python_version}|{','.join(platform)}|{'|'.join(sorted(reqs))}"
    d = _cached_download(key, [*args, *reqs],
                         f"wheels for Python {python_version} ({platform[0]})")
    return sorted(d.glob("*.whl"))


def _unpack_wheel(wheel: Path, lib: Path) -> None:
    """A wheel's files into ``lib`` (what pip does for a pure ``purelib``/``platlib`` wheel,
    without scripts, which a target does not need)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = name.split("/")
            if name.startswith("/") or ".." in parts or info.is_dir():
                continue
            if parts[0].endswith(".data"):
                continue  # scripts/headers/data: nothing a target imports
            dest = lib / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            mode = (info.external_attr >> 16) & 0o777
            dest.chmod(0o755 if mode & 0o111 else 0o644)


def _add_tree(tf: tarfile.TarFile, root: Path) -> None:
    """Every entry of ``root``, sorted, with neutral owners and times (a reproducible tar)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            path = Path(dirpath) / name
            info = tf.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isreg():
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                with open(path, "rb") as f:
                    tf.addfile(info, f)
            else:
                info.mode = 0o755
                tf.addfile(info)


def build(python_version: str, platform: list[str]) -> Bundle:
    """The bundle for targets with this Python (``3.11``) and these platform tags (cached on
    the controller by the sources and the dependency wheels)."""
    files = target_files()
    wheels = dependency_wheels(python_version, platform)
    h = hashlib.sha256(_source_key(files).encode())
    for w in wheels:
        h.update(w.name.encode() + b"\0" + hashlib.sha256(w.read_bytes()).digest())
    key = h.hexdigest()[:24]
    out_dir = paths.cache_dir() / "fleet" / "bundles" / key
    tar_path = out_dir / "bundle.tar.gz"
    hash_file = out_dir / "hash"
    if tar_path.is_file() and hash_file.is_file():
        content = hash_file.read_text(encoding="ascii").strip()
        if len(content) == 64:
            return Bundle(tar_path, content, tar_path.stat().st_size, python_version,
                          platform[0])
    with tempfile.TemporaryDirectory(prefix="vb-bundle-") as tmp:
        tree = Path(tmp) / "tree"
        lib = tree / "lib"
        for src, arc in files:
            dest = tree / arc
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            dest.chmod(0o755 if os.access(src, os.X_OK) and src.suffix == ".sh" else 0o644)
        for w in wheels:
            _unpack_wheel(w, lib)
        for d in tree.rglob("*"):
            if d.is_dir():
                d.chmod(0o755)
        content = tree_hash(tree)
        out_dir.mkdir(parents=True, exist_ok=True)
        with replacing(tar_path) as tmp_tar, \
                tarfile.open(tmp_tar, "w:gz", compresslevel=9, format=tarfile.PAX_FORMAT) as tf:
            _add_tree(tf, tree)
        with replacing(hash_file) as tmp_hash:
            tmp_hash.write_text(content + "\n", encoding="ascii")
    _prune(out_dir.parent, keep=6)
    return Bundle(tar_path, content, tar_path.stat().st_size, python_version, platform[0])


def _prune(directory: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently built bundles."""
    entries = sorted((p for p in directory.iterdir() if p.is_dir()),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)
