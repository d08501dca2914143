"""Shared by the cgroup/consolidate/cap tests: what this machine can do, leftovers, the CLI."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from virtbench import cgroups
from virtbench.errors import VirtbenchError

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# Only our commands: the test does not depend on other commands being importable.
CLI = ("import sys, virtbench.cli as c; c.COMMAND_MODULES = ('consolidate', 'cap'); "
       "raise SystemExit(c.main(sys.argv[1:]))")


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI, *args]


def cli_env(tmp: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return env


class Finished(subprocess.CompletedProcess[str]):
    pid: int = 0


def run_cli(*args: str, timeout: float = 300, tmp: Path | None = None) -> Finished:
    """Run our commands as a user would; ``.pid`` is the tool's process id, so checks for
    leftovers can ignore other people's concurrent runs on a shared machine."""
    with subprocess.Popen(cli_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=cli_env(tmp)) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    done = Finished(proc.args, proc.returncode, out, err)
    done.pid = proc.pid
    return done


@functools.cache
def backend_or_reason(need_quota: bool = False) -> tuple[cgroups.CgroupBackend | None, str]:
    if os.geteuid() != 0:
        return None, "needs root"
    try:
        b = cgroups.detect("auto", need_quota=need_quota)
        s = cgroups.CgroupSession(b)
        s.open()
        s.close()
    except VirtbenchError as exc:
        return None, f"cgroups not usable here: {exc}"
    return b, ""


@functools.cache
def containers_reason() -> str:
    """Empty when containers (unshare with pid/mount/uts/ipc namespaces) work here."""
    b, why = backend_or_reason(False)
    if b is None:
        return why
    if shutil.which("unshare") is None:
        return "no unshare"
    proc = subprocess.run(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc",
                           "--uts", "--ipc", "--", "true"], capture_output=True, timeout=30,
                          check=False)
    return "" if proc.returncode == 0 else f"unshare fails: {proc.stderr.decode()[:100]}"


def session_dirs(pid: int | None = None) -> list[Path]:
    """The virtbench session directories (of the tool process ``pid``, or of anyone) in
    every hierarchy we might use."""
    found: list[Path] = []
    m = cgroups.find_mounts()
    roots = {*m.v1.values()}
    if m.v2_mount is not None:
        roots.add(m.v2_mount)
        if m.v2_own is not None:
            roots.add(m.v2_own)
    for root in roots:
        try:
            found += [p for p in root.iterdir() if cgroups.SESSION_RE.match(p.name) and (
                pid is None or p.name.split(".")[1] == str(pid))]
        except OSError:
            continue
    return found


def marked_processes(pid: int | None = None) -> list[int]:
    """Processes started as instances by the tool process ``pid`` (or by anyone): they carry
    VIRTBENCH_INSTANCE=<tool pid>.<token>-<index> in their environment."""
    tag = b"VIRTBENCH_INSTANCE=" + (f"{pid}." .encode() if pid is not None else b"")
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if tag in env:
            pids.append(int(d.name))
    return pids


def run_main(*args: str) -> tuple[int, str, str]:
    """Our commands in this process (fast, for errors that stop before anything runs):
    (exit status, stdout, stderr). The SIGTERM handler main() installs is restored."""
    import contextlib
    import io
    import signal

    import virtbench.cli as cli

    out, err = io.StringIO(), io.StringIO()
    handler = signal.getsignal(signal.SIGTERM)
    saved = cli.COMMAND_MODULES
    cli.COMMAND_MODULES = ("consolidate", "cap")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(list(args))
            except SystemExit as exc:
                rc = int(exc.code or 0)
    finally:
        cli.COMMAND_MODULES = saved
        signal.signal(signal.SIGTERM, handler)
    return rc, out.getvalue(), err.getvalue()
