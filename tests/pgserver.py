"""A throwaway PostgreSQL server for tests: initdb into a temp dir, pg_ctl start on a free
loopback port, stop and delete at the end. No system service needed (CI runs it as root, so
the server runs as the ``postgres`` user, or ``nobody``, through ``runuser``).

Without PostgreSQL binaries the tests that need it are skipped, except under ``CI=true``,
where that is a failure (setup-dev.sh installs Debian's ``postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return found[-1]
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_user(cmd: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.fail("running as root and neither a 'postgres' nor a 'nobody' user exists")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries not found (scripts/setup-dev.sh installs them)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("psycopg 3 is not installed (a runtime dependency)")
    user = _server_user()
    base = Path(tempfile.mkdtemp(prefix="vb-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if user:
        info = pwd.getpwnam(user)
        for p in (base, sock):
            os.chown(p, info.pw_uid, info.pw_gid)
        base.chmod(0o755)
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        subprocess.run(
            _as_user([initdb, "-D", str(data), "-A", "trust", "-U", "vb", "-E", "UTF8",
                      "--no-sync", "--locale=C"], user),
            check=True, capture_output=True, env=env, timeout=120, cwd=base,
        )
        port = _start(pg_ctl, data, base, sock, user, env)
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text(errors="replace") if (base / "log").exists() else ""
        _stop(pg_ctl, data, base, user, env)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr!r} {log[-2000:]}")
    except BaseException:  # pytest-timeout or Ctrl-C while it starts: stop what started
        _stop(pg_ctl, data, base, user, env)
        raise
    try:
        yield f"postgresql+psycopg://vb@127.0.0.1:{port}/postgres"
    finally:
        from virtbench.store import dispose_engines

        dispose_engines()
        _stop(pg_ctl, data, base, user, env)


def _start(pg_ctl: str, data: Path, base: Path, sock: Path, user: str | None,
           env: dict[str, str]) -> int:
    """Start the server on a free loopback port; its port.

    The port is free when chosen, but the server binds it only while it starts: another
    process (every test here that listens takes an ephemeral port) may take it in between.
    The server then exits with "Address already in use" in its log, and only then is another
    port tried; any other failure is raised."""
    log = base / "log"
    for attempt in range(5):
        port = _free_port()
        opts = (f"-p {port} -c listen_addresses=127.0.0.1 -k {sock} -c fsync=off "
                "-c full_page_writes=off -c synchronous_commit=off -c max_connections=40")
        proc = subprocess.run(
            _as_user([pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w",
                      "-t", "120", "start"], user),
            capture_output=True, env=env, timeout=150, cwd=base, check=False,
        )
        if proc.returncode == 0:
            return port
        taken = log.exists() and "Address already in use" in log.read_text(errors="replace")
        if not taken or attempt == 4 or (data / "postmaster.pid").exists():
            raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout,
                                                proc.stderr)
        log.unlink()
    raise AssertionError("unreachable")


def _stop(pg_ctl: str, data: Path, base: Path, user: str | None, env: dict[str, str]) -> None:
    """Stop the server if it runs (also half-started), then remove its directory."""
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                                user), capture_output=True, env=env, timeout=60, check=False,
                       cwd=base)
        for _ in range(50):
            if not (data / "postmaster.pid").exists():
                break
            time.sleep(0.1)
    shutil.rmtree(base, ignore_errors=True)
