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

from conftest import SRC


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(stat[1]) == pid and stat[0] != "Z":
            kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


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
            copies = [p for p in _children(proc.pid)
                      if Path(f"/proc/{p}/exe").exists()
                      and "dhry" in os.readlink(f"/proc/{p}/exe")]
            time.sleep(0.1)
        assert copies, "no copy of the pass appeared"
        proc.kill()
        proc.wait(timeout=30)
        end = time.monotonic() + 3  # well under the 10 s pass
        while time.monotonic() < end and any(_alive(p) for p in copies):
            time.sleep(0.05)
        assert not any(_alive(p) for p in copies), "a copy outlived its SIGKILLed runner"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in copies:  # only the copies this test saw its own runner start
            if _alive(p):
                os.kill(p, signal.SIGKILL)
