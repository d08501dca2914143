"""The local executor with real processes: start gate, timeouts, process-group cleanup."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from virtbench.runner.executor import LocalExecutor, wait_quietly
from virtbench.workloads.build import ensure_built
from virtbench.workloads.profiles import get_profile


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return ensure_built(get_profile("unixbench-6")).bin_dir


def test_gate_holds_copies_until_opened(bin_dir: Path) -> None:
    r, w = os.pipe()
    proc = subprocess.Popen([str(bin_dir / "vbgate"), str(r), "/bin/echo", "through"],
                            pass_fds=(r,), stdout=subprocess.PIPE, text=True)
    os.close(r)
    time.sleep(0.3)
    assert proc.poll() is None  # still waiting behind the gate
    os.close(w)
    out, _ = proc.communicate(timeout=10)
    assert out == "through\n" and proc.returncode == 0


def test_gate_rejects_bad_usage(bin_dir: Path) -> None:
    proc = subprocess.run([str(bin_dir / "vbgate"), "x", "/bin/true"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 2 and "bad file descriptor" in proc.stderr


def test_all_copies_run_behind_the_gate(bin_dir: Path, tmp_path: Path) -> None:
    cwds = []
    for i in range(40):
        d = tmp_path / str(i)
        d.mkdir()
        cwds.append(d)
    ex = LocalExecutor(gate=bin_dir / "vbgate")
    outs = ex.run_pass([["/bin/sh", "-c", "pwd"]] * 40, cwds, timeout=30)
    assert [o.stdout.strip() for o in outs] == [str(d) for d in cwds]
    assert all(o.returncode == 0 for o in outs)
    assert all(not (d / ".vb-stdout").exists() for d in cwds)


def _wakeups() -> int:
    """Voluntary context switches of the calling thread so far (each sleep, each wake)."""
    with open("/proc/thread-self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc/thread-self/status")


def _has_pidfd() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


@pytest.mark.skipif(not _has_pidfd(), reason="needs pidfd_open (Linux >= 5.3)")
def test_harness_sleeps_through_a_pass(tmp_path: Path) -> None:
    """While a 2 s copy runs, the harness thread stays asleep in the kernel: a handful of
    context switches (start, reap), not the ~40 of Popen.wait(timeout)'s 50 ms polling."""
    ex = LocalExecutor()
    before = _wakeups()
    outs = ex.run_pass([["/bin/sleep", "2"]], [tmp_path], timeout=30)
    switches = _wakeups() - before
    assert outs[0].returncode == 0 and 1.9 < outs[0].wall < 5
    assert switches < 15, switches


def test_quiet_wait_times_out_and_reports_it() -> None:
    proc = subprocess.Popen(["/bin/sleep", "30"])
    try:
        t0 = time.monotonic()
        assert wait_quietly(proc, 0.3) is False
        assert 0.25 < time.monotonic() - t0 < 5
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    done = subprocess.Popen(["/bin/true"])
    assert wait_quietly(done, 10) is True and done.returncode == 0


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild-survived"
    script = f"(sleep 3; touch {marker}) & sleep 60"
    t0 = time.monotonic()
    outs = LocalExecutor().run_pass([["/bin/sh", "-c", script]], [tmp_path], timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert outs[0].returncode < 0  # killed
    time.sleep(3.5)
    assert not marker.exists()


def test_missing_program_fails_every_copy(tmp_path: Path) -> None:
    outs = LocalExecutor().run_pass([["/nonexistent/prog"]] * 2, [tmp_path, tmp_path], 5)
    assert [o.returncode for o in outs] == [127, 127]
    assert "cannot start /nonexistent/prog" in outs[0].stderr


def test_copies_lead_their_own_group_in_the_callers_session(bin_dir: Path,
                                                           tmp_path: Path) -> None:
    # UnixBench's copies stay in ./Run's session; a session per copy would put each copy in
    # its own scheduler autogroup and give N copies N CPU shares against other load.
    probe = "import os; print(os.getppid(), os.getpgrp(), os.getsid(0))"
    cwds = [tmp_path / "a", tmp_path / "b"]
    for d in cwds:
        d.mkdir()
    outs = LocalExecutor(gate=bin_dir / "vbgate").run_pass(
        [[sys.executable, "-c", probe]] * 2, cwds, timeout=30)
    ids = [tuple(int(x) for x in o.stdout.split()) for o in outs]
    assert all(o.returncode == 0 for o in outs)
    # killable as a group: vbgate leads it (the copy's parent), the copy runs in it
    assert all(pgid == gate for gate, pgid, _ in ids)
    assert len({pgid for _, pgid, _ in ids}) == 2
    assert all(pgid != os.getpgrp() for _, pgid, _ in ids)
    assert all(sid == os.getsid(0) for _, _, sid in ids)


def test_local_settle_syncs_and_rests_for_the_given_time() -> None:
    import time

    ex = LocalExecutor()
    t0 = time.monotonic()
    ex.settle(0.3)
    rested = time.monotonic() - t0
    assert rested >= 0.3
    t0 = time.monotonic()
    ex.settle(0.0)  # quick mode: nothing at all
    assert time.monotonic() - t0 < rested


def test_a_group_is_signalled_only_while_its_leader_is_unreaped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # killpg after wait() reaped the leader can kill an unrelated group that got the
    # reused pid. Every killpg the executor makes must find its leader still our child,
    # running or a zombie (waitid WNOWAIT sees it; once reaped it raises ChildProcessError).
    import virtbench.runner.executor as ex_mod

    calls: list[tuple[int, bool]] = []
    real_killpg = os.killpg

    def checking_killpg(pgid: int, sig: int) -> None:
        try:
            os.waitid(os.P_PID, pgid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
            unreaped = True
        except ChildProcessError:
            unreaped = False
        calls.append((pgid, unreaped))
        real_killpg(pgid, sig)

    monkeypatch.setattr(ex_mod.os, "killpg", checking_killpg)
    cwds = []
    for i in range(3):
        (tmp_path / str(i)).mkdir()
        cwds.append(tmp_path / str(i))
    marker = tmp_path / "orphan-alive"
    # Each copy leaves a child behind in its group; the pass must kill it.
    script = f"(sleep 2; touch {marker}) & echo done"
    outs = LocalExecutor().run_pass([["/bin/sh", "-c", script]] * 3, cwds, timeout=30)
    assert [o.stdout for o in outs] == ["done\n"] * 3 and all(o.returncode == 0 for o in outs)
    assert len(calls) == 3 and all(unreaped for _, unreaped in calls), calls
    time.sleep(2.5)
    assert not marker.exists()  # the children left in the groups were killed
    # A copy that outlives its timeout: killed (group first, leader unreaped), then reaped.
    calls.clear()
    outs = LocalExecutor().run_pass([["/bin/sleep", "30"]], cwds[:1], timeout=0.3)
    assert outs[0].returncode == -9
    assert calls and all(unreaped for _, unreaped in calls), calls
