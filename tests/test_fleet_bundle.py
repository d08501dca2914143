"""The lean target bundle (virtbench.fleet.bundle): at most 10 MB, nothing the controller
alone needs, and enough for a target: unpacked by the target tool in a fresh directory, a
real python3 with no site directories and no project venv runs `detect` and a tiny `run`
from it. Its content hash is checked on the target: a tampered tree is not used."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from virtbench.fleet import bundle, scripts, target_tool

FORBIDDEN = ("sqlalchemy", "numpy", "scipy", "ansible", "ansible_runner", "rich", "plotly",
             "jinja2", "psycopg", "starlette", "uvicorn", "pip")


def _target_python() -> str:
    """A real python3 of this machine outside any venv (the Debian one when there is one)."""
    for cand in ("/usr/bin/python3", getattr(sys, "_base_executable", ""), sys.executable):
        if cand and Path(cand).exists():
            out = subprocess.run([cand, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                                 capture_output=True, text=True, check=False)
            if out.stdout.strip() == "True":
                return cand
    pytest.skip("no Python >= 3.11 outside the venv")


def _platform(python: str) -> tuple[str, list[str]]:
    out = subprocess.run([python, "-c", "import platform, sys; "
                          "print('%d.%d' % sys.version_info[:2]); print(platform.machine()); "
                          "print(' '.join(platform.libc_ver()))"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    libc = out[2].replace("glibc ", "glibc ").strip() or "glibc 2.17"
    return out[0], bundle.platform_tags(out[1], libc)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[bundle.Bundle, str]:
    cache = os.environ.get("VIRTBENCH_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", cache)
    try:
        python = _target_python()
        version, tags = _platform(python)
        return bundle.build(version, tags), python
    finally:
        mp.undo()


def _paths(base: Path) -> scripts.RemotePaths:
    return scripts.RemotePaths(base=str(base), host_dir=str(base / "h1"),
                               run_dir=str(base / "h1" / "run-1"))


def _start(p: scripts.RemotePaths, python: str, h: str, argv: list[str], out: str,
           install: bool = False, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    """The launch playbook's shell on a target: check the bundle and start the command
    detached; ``install``: the ship playbook's ``script`` task, which runs its executable
    with the shipped tar (here at ``p.bundle_tar``) as the argument."""
    if install:
        cmd = f"{scripts.ship(p, python, h, argv, out, timeout=400)} " \
              f"{shlex.quote(p.bundle_tar(h))}"
    else:
        cmd = scripts.start(p, python, h, argv, out, timeout=400)
    return subprocess.run(["/bin/sh", "-c", cmd],
                          capture_output=True, text=True, check=False, env=env, timeout=120)


def _wait_rc(p: scripts.RemotePaths, timeout: float = 400) -> str:
    rc = Path(p.run_dir) / "rc"
    deadline = time.monotonic() + timeout
    while not rc.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return rc.read_text().strip()


def _install(b: bundle.Bundle, python: str, base: Path) -> Path:
    """What the launch playbook does on a target: nothing cached, so copy the tar, unpack
    it with the tool (and start a harmless command); then the next start needs nothing."""
    p = _paths(base)
    first = _start(p, python, b.hash, ["--version"], "stdout.log")
    assert first.returncode == 0 and "vb-ready=0" in first.stdout  # nothing cached yet
    assert "launched" not in first.stdout
    shutil.copyfile(b.path, p.bundle_tar(b.hash))
    inst = _start(p, python, b.hash, ["--version"], "stdout.log", install=True)
    assert inst.returncode == 0 and f"vb-installed={b.hash}" in inst.stdout, inst.stdout
    assert "vb-launched=" in inst.stdout and _wait_rc(p) == "0"
    again = _start(p, python, b.hash, ["--version"], "stdout.log")
    assert "vb-ready=1" in again.stdout and "vb-launched=" in again.stdout  # ships nothing
    assert _wait_rc(p) == "0"
    return Path(p.bundle_dir(b.hash))


@pytest.mark.slow
def test_bundle_is_small_and_holds_only_what_a_target_runs(
        built: tuple[bundle.Bundle, str]) -> None:
    b, _python = built
    assert b.size <= bundle.MAX_BUNDLE_BYTES, f"bundle is {b.size / 1e6:.1f} MB"
    assert b.path.stat().st_size == b.size and len(b.hash) == 64
    with tarfile.open(b.path) as tf:
        names = tf.getnames()
    top = {n.split("/")[1] for n in names if n.startswith("lib/") and n.count("/") >= 1}
    assert {"virtbench", "pydantic", "pydantic_core"} <= top
    for mod in FORBIDDEN:
        assert mod not in top, f"{mod} is shipped to targets"
    # the controller-only parts of virtbench stay home; workloads' C sources go
    assert not any(n.startswith("lib/virtbench/serve/") for n in names)
    assert sorted(n for n in names if n.startswith("lib/virtbench/fleet/")) == [
        "lib/virtbench/fleet/__init__.py", "lib/virtbench/fleet/command.py"]  # for the parser
    assert any(n.startswith("lib/virtbench/workloads/c/") and n.endswith(".c") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_target_runs_detect_and_a_tiny_run_from_the_bundle_alone(
        built: tuple[bundle.Bundle, str], tmp_path: Path) -> None:
    b, python = built
    root = _install(b, python, tmp_path / "target")
    p = _paths(tmp_path / "target")
    # a clean environment: no PYTHONPATH but the bundle's (set by the launch snippet), no
    # project venv, no site directories
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "target"), "LANG": "C.UTF-8"}
    for argv, out in ((["--help"], "help.txt"), (["--version"], "version.txt"),
                      (["detect", "--json"], "document.json"),
                      (["run", "--quick", "-c", "1", "dhry2reg", "--output",
                        f"{p.run_dir}/run.json"], "stdout.log")):
        started = _start(p, python, b.hash, argv, out, env=env)
        assert "vb-launched=" in started.stdout, started.stdout + started.stderr
        rc = _wait_rc(p)
        err = Path(p.run_dir, "stderr.log").read_text()
        assert rc == "0", err
        assert "Traceback" not in err and "not indexed" not in err, err
    assert "fleet" in Path(p.run_dir, "help.txt").read_text()  # every command is listed
    report = json.loads(Path(p.run_dir, "document.json").read_text())
    assert report["layers"] is not None and "summary" in report
    doc = json.loads(Path(p.run_dir, "run.json").read_text())
    tests = [t for s in doc["sections"] for t in s["tests"]]
    assert [t["test"] for t in tests] == ["dhry2reg"] and tests[0]["score"] > 0
    # nothing was written into the bundle (no byte code, no build): it still verifies
    assert target_tool.tree_hash(str(root)) == b.hash


@pytest.mark.slow
def test_a_tampered_cached_bundle_is_removed_and_shipped_again(
        built: tuple[bundle.Bundle, str], tmp_path: Path) -> None:
    b, python = built
    base = tmp_path / "target"
    root = _install(b, python, base)
    p = _paths(base)

    def ready() -> bool:
        out = _start(p, python, b.hash, ["--version"], "stdout.log").stdout
        return "vb-ready=1" in out

    main = root / "lib" / "virtbench" / "__main__.py"
    for tamper in (lambda: main.write_text(main.read_text() + "\nimport os\n"),
                   lambda: (root / "lib" / "extra.py").write_text("x = 1\n"),
                   lambda: (root / "lib" / "link").symlink_to("/etc/passwd"),
                   lambda: main.chmod(0o755)):
        shutil.rmtree(root, ignore_errors=True)
        assert _install(b, python, base) == root
        tamper()
        assert not ready() and not root.exists()  # removed: the next launch ships it again
    # a bundle damaged in transit is refused and nothing is left half-unpacked
    shutil.copyfile(b.path, p.bundle_tar(b.hash))
    with open(p.bundle_tar(b.hash), "r+b") as f:
        f.seek(b.size // 2)
        f.write(b"\0" * 4096)
    inst = _start(p, python, b.hash, ["--version"], "stdout.log", install=True)
    assert inst.returncode != 0 and "vb-installed" not in inst.stdout
    assert "does not match its hash" in inst.stdout or "cannot unpack" in inst.stdout
    assert "vb-launched" not in inst.stdout
    assert not root.exists() and sorted(Path(p.bundles).iterdir()) == []


def _ship_stdin(p: scripts.RemotePaths, python: str, b: bundle.Bundle, tar_in: Path,
                uid: str) -> subprocess.CompletedProcess[str]:
    """What a ship through the host's SSH master runs there: the tar on stdin."""
    cmd = scripts.as_user(uid, scripts.ship_stdin(p, python, b.hash, ["--version"],
                                                  "stdout.log", timeout=400))
    with open(tar_in, "rb") as f:
        return subprocess.run(["/bin/sh", "-c", cmd], stdin=f, capture_output=True,
                              text=True, check=False, timeout=120)


@pytest.mark.slow
def test_a_bundle_sent_on_stdin_is_received_unpacked_and_started(
        built: tuple[bundle.Bundle, str], tmp_path: Path) -> None:
    from virtbench.fleet.engine import TaskResult

    b, python = built
    p = _paths(tmp_path / "target")
    me = str(os.getuid())
    done = _ship_stdin(p, python, b, b.path, me)
    facts = scripts.parse_facts(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert facts["received"] == [str(b.size)] and facts["installed"] == [b.hash]
    assert "launched" in facts and _wait_rc(p) == "0"
    assert sorted(x.name for x in Path(p.bundles).iterdir()) == [b.hash]  # the tar is gone
    assert target_tool.tree_hash(p.bundle_dir(b.hash)) == b.hash
    # as another user than Ansible's tasks (the inventory's become): nothing read, nothing
    # written; the controller leaves the host to Ansible
    shutil.rmtree(p.bundles)
    other = _ship_stdin(p, python, b, b.path, str(os.getuid() + 1))
    assert other.returncode == 0
    assert scripts.parse_facts(other.stdout) == {"direct-skipped": ["1"]}
    assert not Path(p.bundles).exists()
    # a full disk (the tar's place is /dev/full here) is named, and no tar is left behind
    Path(p.bundles).mkdir(parents=True)
    Path(p.bundle_tar(b.hash)).symlink_to("/dev/full")
    full = _ship_stdin(p, python, b, b.path, me)
    assert full.returncode == 1 and "vb-launched" not in full.stdout
    assert not Path(p.bundle_tar(b.hash)).is_symlink()
    msg = TaskResult("failed", {"stdout": full.stdout, "stderr": full.stderr,
                                "rc": full.returncode}).message()
    assert msg.startswith("disk full on the target: ") and "No space left on device" in msg
    # a tar damaged in transit is refused
    bad = tmp_path / "bad.tar.gz"
    data = bytearray(b.path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 4096] = bytes(4096)
    bad.write_bytes(bytes(data))
    refused = _ship_stdin(p, python, b, bad, me)
    assert refused.returncode == 1 and "vb-launched" not in refused.stdout
    assert "does not match its hash" in refused.stdout or "cannot unpack" in refused.stdout
    assert sorted(Path(p.bundles).iterdir()) == []


def test_unsafe_tar_members_are_refused(tmp_path: Path) -> None:
    import io

    for name, kind in (("../evil", tarfile.REGTYPE), ("/abs", tarfile.REGTYPE),
                       ("lib/link", tarfile.SYMTYPE)):
        tar = tmp_path / "b.tar.gz"
        with tarfile.open(tar, "w:gz") as tf:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            info.size = 0
            tf.addfile(info, io.BytesIO(b""))
        root = tmp_path / "bundles" / "abc"
        proc = subprocess.run([sys.executable, "-I", "-S", "-c",
                               Path(target_tool.__file__).read_text(), "install", str(tar),
                               str(root), "0" * 64], capture_output=True, text=True, check=False)
        assert proc.returncode == 1 and "cannot unpack" in proc.stdout, proc.stdout
        assert not root.exists() and not (tmp_path / "evil").exists()


def test_target_requirements_match_the_projects_pydantic_requirement() -> None:
    import tomllib

    from tests.conftest import ROOT

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [d for d in deps if d.startswith("pydantic")] == list(bundle.TARGET_REQUIREMENTS)
