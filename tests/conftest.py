from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from virtbench.cgroups import CgroupBackend

# The session's one throwaway PostgreSQL (tests/pgserver.py), registered here: a test module
# that imports the fixture itself registers a fixture of its own, i.e. another server (there
# were four, all running until the session ended).
from pgserver import postgres_url  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
SHARED = ROOT.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"

# CLI tables fit $COLUMNS when it is set (virtbench.table); tests that check widths set it.
os.environ.pop("COLUMNS", None)

# The tests that press Ctrl-C on a program they started (SIGINT to a virtbench, a testbed)
# need it to take the signal. A pytest started in the background by a non-interactive shell
# (`pytest ... &` in a script) ignores SIGINT, and its children inherited that: each such
# test then failed, waiting for an exit that never came. A handled signal is reset to its
# default action by exec, so the children take it again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# One lock per machine (not per session: /run/lock is shared by every checkout and user) for
# the tests that change machine-wide kernel settings (the real vm.dirty_ratio and friends).
# Two pytest sessions running them at once read each other's temporary values as "the
# original" and fail (seen: `assert '34' == '27'` in test_tune), or leave the machine changed.
SYSCTLS_LOCK = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
SYSCTLS_LOCK = SYSCTLS_LOCK / "virtbench-tests-sysctls.lock"


@contextlib.contextmanager
def machine_sysctls_lock(wait_s: float = 240) -> Iterator[None]:
    """Hold the machine-wide lock of the tests that change real sysctls: another pytest
    session (another checkout, another engineer) waits rather than interleaves. flock(2) is
    released by the kernel when the holder dies, so a killed session never blocks the next.
    Polls, so pytest-timeout can still interrupt a wait."""
    fd = os.open(SYSCTLS_LOCK, os.O_RDONLY | os.O_CREAT, 0o644)  # any user may lock it
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"another test session held {SYSCTLS_LOCK} for over {wait_s:g} s "
                        "(tests that change real sysctls run one at a time per machine)"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock


@pytest.fixture
def machine_sysctls() -> Iterator[None]:
    """For a test that changes the machine's real sysctls: see machine_sysctls_lock."""
    with machine_sysctls_lock():
        yield


@pytest.fixture(autouse=True)
def _isolated_xdg(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the user's real data dir; share one compile cache across the session."""
    data = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    cache = os.environ.get("VIRTBENCH_TEST_CACHE")
    if cache is None:
        cache = str(tmp_path_factory.getbasetemp() / "xdg-cache")
        os.environ["VIRTBENCH_TEST_CACHE"] = cache
    monkeypatch.setenv("XDG_CACHE_HOME", cache)


@functools.cache
def _cgroup_backend() -> CgroupBackend | None:
    """The cgroup backend, found once per session; None without a hierarchy with CPU
    accounting (nothing to sweep then)."""
    from virtbench import cgroups

    try:
        return cgroups.detect()
    except Exception:
        return None


@pytest.fixture(autouse=True)
def _no_leftovers_of_killed_runs() -> None:
    """Start every test without what killed runs left machine-wide: the cgroups of dead runs
    and the SSH master connections of killed fleet commands (``~/.ansible/cp/vb-*``).

    Every virtbench command removes them first and says so on stderr, one line each. A test
    that kills a run or a fleet controller with SIGKILL (several do, at a moment that varies
    with the load, so the leftover is there or not), or another session on a shared machine,
    put those lines into the stderr of whichever test ran the next command, and a test
    checking for one clear error line, or for the ``serving`` line first, failed (seen:
    test_consolidate, test_postmark, test_seqread, test_serve). Only what the command's own
    sweep removes goes: cgroups whose owner process is gone, masters of controllers gone."""
    from virtbench import cgroups

    backend = _cgroup_backend()
    if backend is not None:
        cgroups.sweep_stale(backend)
    try:
        from virtbench.fleet.ansible import sweep_masters
    except ImportError:  # no [fleet] extra: no fleet command ran
        return
    sweep_masters(lambda _message: None)


def wait_for(cond: Callable[[], object], what: object, timeout: float = 180,
             step: float = 0.01, unless_failed: subprocess.Popen[str] | None = None) -> None:
    """Poll ``cond`` until it is true; after ``timeout`` s fail, naming ``what`` (a string,
    or a callable giving one, to describe the state when it failed). If it fails,
    ``unless_failed`` (the process being watched) is killed first."""
    deadline = time.monotonic() + timeout
    try:
        while not cond():
            if time.monotonic() > deadline:
                detail = what() if callable(what) else what
                raise AssertionError(f"timed out after {timeout} s waiting for {detail}")
            time.sleep(step)
    except BaseException:
        if unless_failed is not None and unless_failed.poll() is None:
            unless_failed.kill()
            unless_failed.communicate()
        raise


def _threads_stopped(pid: int, allow_in_kernel: bool) -> bool:
    """Every thread of ``pid`` is stopped (or gone). ``allow_in_kernel``: a thread in
    uninterruptible sleep counts too (it stops as soon as its system call returns: a vfork
    parent waits so until its stopped child execs)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return True
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] not in ("tTZXD" if allow_in_kernel else "tTZX"):
            return False
    return True


@contextlib.contextmanager
def stopped_when(proc: subprocess.Popen[str], cond: Callable[[], bool], what: str,
                 timeout: float = 180) -> Iterator[None]:
    """Wait until ``cond()`` holds while ``proc`` (the leader of its own process group)
    is stopped, and keep it stopped inside the block. Checking a running process, then
    signalling it, races: what was checked may be over by the time the signal lands (a B run
    seen, then ended, under load). So each time ``cond()`` holds, the group is stopped
    (SIGSTOP), and ``cond()`` checked again on the frozen state; a signal sent inside the
    block is acted on, once the group continues (SIGCONT on leaving), from exactly the state
    that was checked (SIGKILL acts at once, stopped or not)."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            wait_for(cond, what, timeout=max(deadline - time.monotonic(), 0),
                     unless_failed=proc)
            os.killpg(proc.pid, signal.SIGSTOP)
            lenient = time.monotonic() + 5
            wait_for(lambda t=lenient: _threads_stopped(proc.pid, time.monotonic() > t),
                     f"process {proc.pid} to stop", timeout=60)
            if cond():
                break
            os.killpg(proc.pid, signal.SIGCONT)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)


def signal_and_wait(proc: subprocess.Popen[str], sig: int | None, timeout: float = 90) -> str:
    """Send ``sig`` to ``proc`` (``None``: it was sent already), wait for it to end, return
    its stderr; a process still running when this fails is killed."""
    try:
        if sig is not None:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return str(err)


def gone(pid: int, wait: float = 30.0) -> bool:
    """Whether process ``pid`` is gone or a zombie, waiting up to ``wait`` s for it: a killed
    process still has to be scheduled to exit, which takes long on a loaded machine."""
    deadline = time.monotonic() + wait
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def proc_stats() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, command name, the fields after it: state, ppid, pgrp, ...) of every live process,
    from ``/proc/<pid>/stat`` (the name may hold spaces and parentheses: split after the last
    ')'); a process that ends while it is read is skipped."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            yield int(d.name), stat[stat.index("(") + 1:stat.rindex(")")], \
                stat[stat.rindex(")") + 2:].split()


def run_cli(
    *args: str, timeout: float = 300, check: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``virtbench`` as a user would (a real process), from this source tree."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(SRC) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "virtbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"virtbench {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
