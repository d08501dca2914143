"""Interrupt the real CLI at many points: nothing may be left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cgroup_helpers import (
    Finished,
    backend_or_reason,
    cli_argv,
    cli_env,
    containers_reason,
    marked_processes,
    session_dirs,
)

pytestmark = pytest.mark.skipif(
    bool(containers_reason()) or backend_or_reason(True)[0] is None,
    reason=containers_reason() or backend_or_reason(True)[1] or "ok")

CONSOLIDATE = ("consolidate", "--kind", "container", "--instances", "1,2,3",
               "--workload", "sysmix", "--iterations", "2500", "--cpus", "1.5")
PROCESSES = ("consolidate", "--kind", "process", "--instances", "3", "--loaded", "all",
             "--workload", "integer", "--iterations", "60000000")
CAP = ("cap", "--kind", "container", "--quota", "1,0.3", "--duration", "1")


def interrupt(args: tuple[str, ...], delay: float, sig: int, tmp: Path,
              data: Path) -> Finished:
    env = cli_env(tmp)
    env["XDG_DATA_HOME"] = str(data)
    proc = subprocess.Popen(cli_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the experiment has started (imports are done)
    time.sleep(delay)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    done = Finished(proc.args, proc.returncode, out, first + err)
    done.pid = proc.pid
    return done


@pytest.mark.slow
@pytest.mark.parametrize("args,delay,sig", [
    (CONSOLIDATE, 0.0, signal.SIGINT),   # the host baseline starting
    (CONSOLIDATE, 0.5, signal.SIGINT),   # baseline or first container
    (CONSOLIDATE, 1.8, signal.SIGINT),   # several containers running
    (PROCESSES, 1.0, signal.SIGTERM),    # plain processes (own sessions) running
    (CAP, 0.0, signal.SIGINT),           # calibrating
    (CAP, 1.5, signal.SIGTERM),          # inside a capped, throttled container
])
def test_interrupt_leaves_nothing(tmp_path: Path, args: tuple[str, ...], delay: float,
                                  sig: int) -> None:
    tmp, data = tmp_path / "tmp", tmp_path / "data"
    tmp.mkdir()
    result = interrupt(args, delay, sig, tmp, data)
    if result.returncode == 0:
        pytest.skip(f"finished before the signal at {delay} s (machine is fast)")
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "virtbench: interrupted"
    assert "Traceback" not in result.stderr
    assert session_dirs(result.pid) == []
    assert marked_processes(result.pid) == []
    assert list(tmp.iterdir()) == []
    # What was measured before the interrupt is kept, marked as interrupted.
    for doc_path in (data / "virtbench" / "results").glob("*.json"):
        assert json.loads(doc_path.read_text())["status"] == "interrupted"
