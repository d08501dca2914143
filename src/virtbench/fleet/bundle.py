"""What is shipped to a target: virtbench as a wheel built here, and (``--deps ship``) the
wheels of its runtime dependencies for the target's platform, packed into one tar.

- The virtbench wheel is built with ``pip wheel --no-deps`` from this source tree (a copy of
  it, so the tree is not touched), or re-packed from the installed distribution when
  virtbench was installed from a wheel. Cached under ``cache_dir()/fleet/wheels/`` by
  version and a hash of the sources, so an unchanged tree is built once.
- ``--deps index`` (default): the target's pip installs the dependencies from its own index
  (PyPI, or whatever its pip.conf / environment names: a mirror, a proxy).
- ``--deps ship``: for targets without an index, ``pip download`` fetches binary wheels for
  each target's Python version and platform (manylinux/musllinux tag from its libc) into a
  cached wheelhouse on the controller; the target installs with ``--no-index``.

Controller-only dependencies (Ansible) are never installed on targets.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from virtbench import __version__, paths
from virtbench.errors import EnvironmentUnsupported
from virtbench.safeio import replacing

CONTROLLER_ONLY = frozenset({"ansible-core", "ansible-runner", "ansible"})
"""Dependencies only the controller needs: not installed on targets."""

_EXCLUDE_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


def project_root() -> Path | None:
    """The source tree virtbench runs from (``pyproject.toml`` naming virtbench), if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        pp = parent / "pyproject.toml"
        if pp.is_file() and (parent / "src" / "virtbench").is_dir():
            try:
                text = pp.read_text(encoding="utf-8")
            except OSError:
                return None
            return parent if 'name = "virtbench"' in text else None
    return None


def _tree_files(root: Path) -> list[Path]:
    files = [root / "pyproject.toml"]
    if (root / "README.md").is_file():
        files.append(root / "README.md")
    for dirpath, dirnames, filenames in os.walk(root / "src" / "virtbench"):
        dirnames[:] = sorted(d for d in dirnames if d not in _EXCLUDE_DIRS
                             and not d.endswith(".egg-info"))
        for f in sorted(filenames):
            if not f.endswith((".pyc", ".pyo", ".swp")):
                files.append(Path(dirpath) / f)
    return files


def source_hash(root: Path) -> str:
    h = hashlib.sha256()
    for f in _tree_files(root):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def wheel_cache() -> Path:
    return paths.cache_dir() / "fleet" / "wheels"


def build_wheel() -> Path:
    """The virtbench wheel for targets (built once per version + source hash)."""
    root = project_root()
    if root is None:
        return _repack_installed()
    key = f"{__version__}-{source_hash(root)}"
    out = wheel_cache() / key
    existing = sorted(out.glob("virtbench-*.whl"))
    if existing:
        return existing[0]
    with tempfile.TemporaryDirectory(prefix="vb-wheel-") as tmp:
        src = Path(tmp) / "src-copy"
        for f in _tree_files(root):
            dest = src / f.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        wdir = Path(tmp) / "dist"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
             "-q", "-w", str(wdir), str(src)],
            capture_output=True, text=True, check=False,
        )
        wheels = sorted(wdir.glob("virtbench-*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise EnvironmentUnsupported(
                "cannot build the virtbench wheel to ship (pip wheel failed: "
                + " / ".join(tail) + ")"
            )
        out.mkdir(parents=True, exist_ok=True)
        final = out / wheels[0].name
        with replacing(final) as tmp_wheel:
            shutil.copy2(wheels[0], tmp_wheel)
        _prune(wheel_cache(), "*", keep=6)
        return final


def _repack_installed() -> Path:
    """Rebuild a wheel from the installed distribution's files (virtbench was installed from
    a wheel, so there is no source tree to build from)."""
    try:
        dist = metadata.distribution("virtbench")
    except metadata.PackageNotFoundError:
        raise EnvironmentUnsupported(
            "cannot find virtbench's sources or installed distribution to ship"
        ) from None
    files = [f for f in (dist.files or []) if ".." not in f.parts
             and not str(f).endswith((".pyc",))
             and f.name not in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")]
    h = hashlib.sha256()
    for f in sorted(files, key=str):
        h.update(str(f).encode() + b"\0" + Path(str(dist.locate_file(f))).read_bytes())
    version = dist.version
    out = wheel_cache() / f"{version}-{h.hexdigest()[:16]}"
    name = f"virtbench-{version}-py3-none-any.whl"
    final = out / name
    if final.exists():
        return final
    out.mkdir(parents=True, exist_ok=True)
    info = f"virtbench-{version}.dist-info"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with replacing(final) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(files, key=str):
            data = Path(str(dist.locate_file(f))).read_bytes()
            arc = str(f)
            zf.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            writer.writerow([arc, f"sha256={digest.decode()}", str(len(data))])
        writer.writerow([f"{info}/RECORD", "", ""])
        zf.writestr(f"{info}/RECORD", record.getvalue())
    return final


def wheel_requirements(wheel: Path) -> list[str]:
    """The runtime requirements a target needs: the wheel's ``Requires-Dist`` without extras
    and without controller-only packages."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta_name).decode()
    reqs = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.split(":", 1)[1].strip()
        if "extra ==" in req.replace('"', "").replace("'", ""):
            continue
        name = req.split(";")[0]
        for sep in "<>=!~[ (":
            name = name.split(sep)[0]
        if name.strip().lower().replace("_", "-") in CONTROLLER_ONLY:
            continue
        reqs.append(req)
    return reqs


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
    """One tar to copy to targets of one kind: the virtbench wheel, a pip wheel (targets need
    neither pip nor ensurepip: the venv is made ``--without-pip`` and pip runs from its
    wheel), plus the dependency wheels with ``--deps ship``."""

    path: Path
    wheel_name: str
    pip_name: str
    requirements: tuple[str, ...]
    shipped_deps: bool
    key: str


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
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=out.parent if out.parent.exists()
                                else _mkdir(out.parent)))
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


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def pip_wheel() -> Path:
    """A pip wheel (pure Python) that runs on every supported target Python."""
    d = _cached_download("pip|3.11", ["--no-deps", "--python-version", "3.11", "pip"],
                         "a pip wheel to ship")
    return sorted(d.glob("pip-*.whl"))[-1]


def dependency_wheels(reqs: list[str], python_version: str, platform: list[str]) -> list[Path]:
    """Binary wheels of ``reqs`` (and their dependencies) for a target platform."""
    if not reqs:
        return []
    args = ["--python-version", python_version, "--implementation", "cp"]
    for tag in [*platform, "any"]:
        args += ["--platform", tag]
    key = f"deps|{python_version}|{','.join(platform)}|{'|'.join(sorted(reqs))}"
    d = _cached_download(key, [*args, *reqs],
                         f"wheels for Python {python_version} ({platform[0]}) (--deps ship)")
    return sorted(d.glob("*.whl"))


def make_bundle(wheel: Path, *, python_version: str | None = None,
                platform: list[str] | None = None) -> Bundle:
    """The tar for targets of one Python version and platform (``--deps ship``), or for
    every target (dependencies from the targets' index). Cached by content."""
    reqs = wheel_requirements(wheel)
    pip = pip_wheel()
    ship = python_version is not None and platform is not None
    deps: list[Path] = []
    if ship:
        assert python_version is not None and platform is not None
        deps = [d for d in dependency_wheels(reqs, python_version, platform)
                if not d.name.startswith(("virtbench-", "pip-"))]
    h = hashlib.sha256(wheel.read_bytes())
    for f in [pip, *deps]:
        h.update(f.name.encode() + b"\0" + str(f.stat().st_size).encode())
    key = h.hexdigest()[:16]
    out = paths.cache_dir() / "fleet" / "bundles" / f"{key}.tar"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with replacing(out) as tmp_tar, tarfile.open(tmp_tar, "w") as tf:
            for f in [wheel, pip, *deps]:
                tf.add(f, arcname=f.name)
        _prune(out.parent, "*.tar", keep=6)
    return Bundle(out, wheel.name, pip.name, tuple(reqs), ship, key)


def _prune(directory: Path, pattern: str, keep: int) -> None:
    """Remove all but the ``keep`` most recently used entries (bundles are large)."""
    entries = sorted(directory.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
