"""A SIGKILL of ``virtbench run`` takes the copies of the pass in progress with it.

Each copy leads its own process group (so Ctrl-C can kill a copy's whole tree), which a kill
of the runner alone does not reach: before ``vbgate`` set ``PR_SET_PDEATHSIG``, the copy ran
on to the end of its pass (bench/kill_points.py: 8 of 15 SIGKILLs of ``run``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SRC, gone, proc_stats


def _children(pid: int) -> list[int]:
    """Live (not zombie) children of ``pid``."""
    return [kid for kid, _name, fields in proc_stats()
            if int(fields[1]) == pid and fields[0] != "Z"]


def _proc_text(pid: int, what: str) -> str:
    """/proc/PID/exe's target or /proc/PID/<what>'s text; "" once the process is gone (it can
    exit between listing and reading: CI saw FileNotFoundError on /proc/PID/exe)."""
    try:
        if what == "exe":
            return os.readlink(f"/proc/{pid}/exe")
        return Path(f"/proc/{pid}/{what}").read_text()
    except OSError:
        return ""


def _outliving(pids: list[int], wait: float) -> list[int]:
    """Those of ``pids`` still running (not gone, not zombies) after up to ``wait`` s."""
    deadline = time.monotonic() + wait
    return [p for p in pids if not gone(p, wait=max(0.0, deadline - time.monotonic()))]


def test_sigkill_of_run_kills_the_copy_of_the_running_pass(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    # Standard mode: 10 s passes, so a copy outlives the runner by seconds if not killed.
    proc = subprocess.Popen(
        [sys.executable, "-m", "virtbench", "run", "dhry2reg", "-c", "1", "--no-detect",
         "--tmpdir", str(tmp_path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=env, start_new_session=True)
    copies: list[int] = []
    try:
        deadline = time.monotonic() + 120  # the first build compiles the workloads
        while time.monotonic() < deadline and not copies:
            if proc.poll() is not None:
                raise AssertionError(f"run ended early ({proc.returncode})")
            gates = _children(proc.pid)  # vbgate, which runs the copy as its child
            copies = [p for p in gates + [c for g in gates for c in _children(g)]
                      if "dhry" in _proc_text(p, "exe")]
            time.sleep(0.1)
        assert copies, "no copy of the pass appeared"
        proc.kill()
        proc.wait(timeout=30)
        # 3 s: well under the 10 s pass
        assert not _outliving(copies, 3), "a copy outlived its SIGKILLed runner"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in copies:  # only the copies this test saw its own runner start
            if not gone(p, wait=0):
                os.kill(p, signal.SIGKILL)


def _with_cmdline(fragment: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fragment in cmdline and not gone(int(d.name), wait=0):
            found.append(int(d.name))
    return found


RUNNER = """
import sys
from pathlib import Path
from virtbench.runner.executor import LocalExecutor
script = f"sleep {sys.argv[3]} & sleep {sys.argv[3]} & wait"
copy = ["/bin/sh", "-c", script]
if sys.argv[2] != "-":  # the shell workloads' driver: runs the script again and again
    copy = [sys.argv[2], "60", *copy]
LocalExecutor(gate=Path(sys.argv[1])).run_pass([copy], [Path(sys.argv[4])], timeout=120)
"""


@pytest.mark.parametrize("driver", ["-", "looper"], ids=["shell", "looper"])
def test_sigkill_of_the_runner_kills_the_children_of_its_copies(tmp_path: Path,
                                                                 driver: str) -> None:
    """The kernel's parent-death signal is not inherited: with it set on the copy alone, a
    SIGKILLed runner took the copy (here a shell, or looper and its run) but not the copy's
    children (two sleeps, like a shell workload's pipelines), which init adopted and which
    ran to their end. vbgate now kills the copy's whole process group when the runner dies,
    and looper keeps its runs in that group (VBGATE_GROUP)."""
    from virtbench.workloads.build import ensure_built
    from virtbench.workloads.profiles import get_profile

    bin_dir = ensure_built(get_profile("unixbench-6")).bin_dir
    gate = bin_dir / "vbgate"
    program = str(bin_dir / driver) if driver != "-" else "-"
    token = f"{os.getpid() % 1000 + 100}.{time.monotonic_ns() % 10**6:06d}"  # a unique sleep
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(gate), program, token,
                             str(tmp_path)], env=env, start_new_session=True)
    sleeps: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(sleeps) < 2:
            assert proc.poll() is None, f"the runner ended early ({proc.returncode})"
            sleeps = [p for p in _with_cmdline(f"sleep {token}")
                      if _proc_text(p, "comm").strip() == "sleep"]
            time.sleep(0.05)
        assert len(sleeps) == 2, "the copy's children did not start"
        proc.kill()
        proc.wait(timeout=30)
        left = _outliving(sleeps, 5)
        assert not left, f"children of a copy outlived the SIGKILLed runner: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in sleeps:  # only the sleeps with this test's own token
            if not gone(p, wait=0):
                os.kill(p, signal.SIGKILL)
