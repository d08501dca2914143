from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cgroup_helpers import SRC, backend_or_reason, session_dirs
from conftest import gone
from virtbench import cgroups
from virtbench.cgroups import V1Backend, V2Backend
from virtbench.errors import EnvironmentUnsupported, UsageError

HYBRID_MOUNTINFO = """\
25 30 0:23 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu
28 25 0:26 / /sys/fs/cgroup/cpuacct rw shared:12 - cgroup cgroup rw,cpuacct
29 25 0:27 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory
"""
HYBRID_CGROUP = "4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n"

COMOUNT_MOUNTINFO = """\
27 25 0:25 /docker/c0ffee /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
"""
COMOUNT_CGROUP = "3:cpu,cpuacct:/docker/c0ffee/inner\n"

V2ONLY_MOUNTINFO = "35 24 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
V2ONLY_CGROUP = "0::/user.slice/user-1000.slice/session-3.scope\n"


def proc_tree(tmp: Path, mountinfo: str, cgroup: str) -> Path:
    (tmp / "self").mkdir(parents=True)
    (tmp / "self" / "mountinfo").write_text(mountinfo)
    (tmp / "self" / "cgroup").write_text(cgroup)
    return tmp


def test_mounts_hybrid_host(tmp_path: Path) -> None:
    m = cgroups.find_mounts(proc_tree(tmp_path, HYBRID_MOUNTINFO, HYBRID_CGROUP))
    assert m.v1["cpu"] == Path("/sys/fs/cgroup/cpu")
    assert m.v1["cpuacct"] == Path("/sys/fs/cgroup/cpuacct")
    assert m.v1["memory"] == Path("/sys/fs/cgroup/memory/process_api/abc")
    assert m.v2_mount == Path("/sys/fs/cgroup/unified")
    assert m.v2_own == Path("/sys/fs/cgroup/unified")


def test_mounts_comounted_with_namespace_root(tmp_path: Path) -> None:
    m = cgroups.find_mounts(proc_tree(tmp_path, COMOUNT_MOUNTINFO, COMOUNT_CGROUP))
    # The mount's root is /docker/c0ffee: our cgroup /docker/c0ffee/inner is at .../inner.
    assert m.v1["cpu"] == m.v1["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct/inner")
    assert m.v2_mount is None


def test_mounts_v2_only(tmp_path: Path) -> None:
    m = cgroups.find_mounts(proc_tree(tmp_path, V2ONLY_MOUNTINFO, V2ONLY_CGROUP))
    assert m.v1 == {}
    assert m.v2_mount == Path("/sys/fs/cgroup")
    assert m.v2_own == Path("/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope")


def test_detect_refuses_what_is_missing(tmp_path: Path) -> None:
    proc = proc_tree(tmp_path / "p", V2ONLY_MOUNTINFO, V2ONLY_CGROUP)
    with pytest.raises(EnvironmentUnsupported, match="v1 cpu/cpuacct hierarchies are not"):
        cgroups.detect("v1", proc=proc)
    with pytest.raises(UsageError, match="unknown cgroup version"):
        cgroups.detect("v3", proc=proc)
    hybrid = proc_tree(tmp_path / "h", COMOUNT_MOUNTINFO, COMOUNT_CGROUP)
    with pytest.raises(EnvironmentUnsupported, match="no cgroup v2 hierarchy"):
        cgroups.detect("v2", proc=hybrid)
    b = cgroups.detect("auto", proc=hybrid)
    assert isinstance(b, V1Backend) and b.cpu_base == b.cpuacct_base


def fake_v2(tmp: Path, *, root_controllers: str = "cpu io memory pids") -> Path:
    """A directory laid out like a cgroup2 mount (regular files stand in for kernel files)."""
    root = tmp / "cgroup2"
    root.mkdir()
    (root / "cgroup.controllers").write_text(root_controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_v2_backend_on_fixture(tmp_path: Path) -> None:
    """Documented limit: the development host's v2 hierarchy has no cpu controller (it is
    bound to v1), so the v2 quota path is checked against a directory fixture."""
    root = fake_v2(tmp_path)
    b = V2Backend(root, root)
    assert b.supports_quota()
    parents = b.make_parent("virtbench.1.ab")
    assert (root / "cgroup.subtree_control").read_text() == "+cpu\n"
    assert (parents[0] / "cgroup.subtree_control").read_text() == "+cpu\n"
    (parents[0] / "cgroup.subtree_control").write_text("cpu\n")  # as the kernel shows it
    cg = b.make_child(parents, "instance-0")
    cg.set_cpu_quota(0.5)
    assert (cg.dirs()[0] / "cpu.max").read_text() == "50000 100000\n"
    cg.set_cpu_quota(0.25, period_us=20000)
    assert (cg.dirs()[0] / "cpu.max").read_text() == "5000 20000\n"
    cg.set_cpu_quota(None)
    assert (cg.dirs()[0] / "cpu.max").read_text() == "max 100000\n"
    with pytest.raises(UsageError, match="> 0 CPUs"):
        cg.set_cpu_quota(0)
    with pytest.raises(UsageError, match=">= 1000 us"):
        cg.set_cpu_quota(0.005)
    (cg.dirs()[0] / "cpu.stat").write_text(
        "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 30\n"
        "nr_throttled 12\nthrottled_usec 450000\n")
    st = cg.cpu_stats()
    assert (st.usage_s, st.user_s, st.system_s) == (3.0, 2.0, 1.0)
    assert (st.nr_periods, st.nr_throttled, st.throttled_s) == (30, 12, 0.45)
    b.release_parents(parents)  # we enabled the controller and nobody else uses it: undo
    assert (root / "cgroup.subtree_control").read_text() == "-cpu\n"
    b2 = V2Backend(root, root)
    (root / "cgroup.subtree_control").write_text("")
    p2 = b2.make_parent("virtbench.1.ef")
    (root / "someone-else").mkdir()
    b2.release_parents(p2)  # another group appeared under base: leave the controller on
    assert (root / "cgroup.subtree_control").read_text() == "+cpu\n"


def test_v2_without_cpu_controller_refuses_quota(tmp_path: Path) -> None:
    root = fake_v2(tmp_path, root_controllers="hugetlb")
    b = V2Backend(root, root)
    assert not b.supports_quota()
    assert "bound to cgroup v1" in b.quota_unsupported_reason()
    parents = b.make_parent("virtbench.1.cd")
    cg = b.make_child(parents, "i")
    with pytest.raises(EnvironmentUnsupported, match="no cpu controller"):
        cg.set_cpu_quota(0.5)


class Busy:
    """A busy loop in a child process that starts only when released (so all of it runs in
    the cgroup it was put in first) and reports the CPU time (the scheduler's exact clock,
    not ticks) and the wall time of its loop. It runs until ``wall_s`` of wall time or
    ``cpu_s`` of CPU time, whichever comes first."""

    def __init__(self, wall_s: float, cpu_s: float = 1e9) -> None:
        code = ("import sys, time\n"
                "sys.stdin.readline()\n"
                "c0, t0 = time.process_time(), time.monotonic()\n"
                f"while time.monotonic() < t0 + {wall_s} and time.process_time() < c0 + {cpu_s}:"
                " pass\n"
                "print(time.process_time() - c0, time.monotonic() - t0)\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.close()

    def finish(self) -> tuple[float, float]:
        """(CPU seconds, wall seconds) of the loop."""
        assert self.proc.stdout is not None
        with self.proc.stdout:
            out = self.proc.stdout.read()
        assert self.proc.wait(timeout=120) == 0
        cpu, wall = (float(x) for x in out.split())
        return cpu, wall


real = pytest.mark.skipif(backend_or_reason(True)[0] is None,
                          reason=backend_or_reason(True)[1] or "ok")


@real
def test_real_quota_throttles_and_accounts() -> None:
    """A 0.05-CPU cap (1 ms per 20 ms period, the kernel's minimum quota) on a busy loop,
    next to the same loop uncapped, at the same time: the uncapped loop measures how much CPU
    a busy process gets on this machine right now (other people's load), which is what
    decides how hard the cap can bind."""
    quota = 0.05
    backend = cgroups.detect("auto", need_quota=True)
    with cgroups.CgroupSession(backend) as s:
        cg = s.create("instance-0")
        cg.set_cpu_quota(quota, period_us=20000)
        assert cg.cpu_quota() == (1000, 20000)
        capped, free = Busy(0.8), Busy(0.8)  # ``free`` stays in the test's own group
        cg.add(capped.pid)
        assert capped.pid in cg.pids()
        released = time.monotonic()
        capped.release()
        free.release()
        capped_cpu, wall = capped.finish()
        lived = time.monotonic() - released  # the loop, and the interpreter's exit after it
        free_cpu, free_wall = free.finish()
        st = cg.cpu_stats()
        dirs = cg.dirs()
        assert all(d.is_dir() for d in dirs)
    assert not any(d.exists() for d in dirs)
    assert not any(p.exists() for p in s.parents)
    # Accounting, whatever the load: the group's usage is the loop's CPU time (plus the
    # interpreter's exit), never more than the cap allows.
    assert capped_cpu - 0.002 <= st.usage_s <= quota * wall * 1.3 + 0.02
    # Throttled time is bounded by how long the process ran in the group after its release,
    # not by its loop alone: its exit is capped too (CI: 0.829 s throttled, loop 0.814 s).
    assert st.throttled_s is not None and 0 < st.throttled_s <= lived
    assert st.nr_throttled is not None and st.nr_periods is not None
    # The user/system split is sampled at timer ticks, not clocked: a 1 ms burst per period is
    # charged a whole tick whenever a tick lands in it, and the burst starts right at the
    # period timer, so the sum can exceed the usage several times (CI saw 0.164 s against
    # 0.044 s). It cannot exceed one tick per period on top of the usage (a burst shorter
    # than a tick spans at most one tick; 10 ms is the coarsest tick, HZ=100).
    assert st.user_s >= 0 and st.system_s >= 0
    assert st.user_s + st.system_s <= st.usage_s + (st.nr_periods + 1) * 0.010 + 0.02, st
    share = free_cpu / free_wall
    if share < 2 * quota:
        pytest.skip(f"machine too busy to judge a {quota} CPU cap: uncapped, a busy loop got "
                    f"{share:.3f} CPU (accounting checked)")
    # A busy process gets ``share`` of a CPU here: the cap binds. Within each period the loop
    # spends its 1 ms at that rate (quota / share of the period), then is throttled to the
    # period's end; so it is throttled in most periods, for about 1 - quota/share of the wall
    # time (half of that asserted: CFS hands out CPU in slices, not as a fluid). An idle
    # machine gives 0.95 of the wall time; a load of 8 on 2 CPUs (share 0.25), 0.8. Seen
    # under a load of 25 (share 0.13): throttled 33 of 37 periods, but for only 0.055 s of
    # 0.73 s under a 0.1 cap, which is why the bound follows the measured share.
    assert st.usage_s >= 0.5 * quota * wall  # the cap is what limits it: it got its quota
    assert st.nr_throttled >= max(5, st.nr_periods // 2), st
    assert st.throttled_s > 0.5 * (1 - quota / share) * wall, (st, share, wall)


@pytest.mark.skipif(backend_or_reason(False)[0] is None, reason=backend_or_reason(False)[1]
                    or "ok")
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_real_session_removes_everything(version: str) -> None:
    try:
        backend = cgroups.detect(version)
        session = cgroups.CgroupSession(backend).open()
    except EnvironmentUnsupported as exc:
        pytest.skip(f"cgroup {version} not usable here: {exc}")
    try:
        groups = [session.create(f"instance-{i}") for i in range(2)]
        sleeper = subprocess.Popen(["sleep", "60"])
        groups[0].add(sleeper.pid)
        # 0.1 s of CPU (however long a busy machine takes to give it, up to 20 s): 25 timer
        # ticks at HZ=250, so the tick-sampled user time cannot be 0 by bad luck.
        busy = Busy(20, cpu_s=0.1)
        groups[1].add(busy.pid)
        busy.release()
        cpu, _ = busy.finish()
        st = groups[1].cpu_stats()
        assert cpu >= 0.1 and st.usage_s >= cpu - 0.002 and st.user_s > 0.0
    finally:
        session.close()
    # The sleeper was killed so its group could go; every directory is gone.
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert not any(d.exists() for g in groups for d in g.dirs())
    assert not [p for p in session_dirs() if p.name == session.name]


@pytest.mark.skipif(backend_or_reason(False)[0] is None, reason=backend_or_reason(False)[1]
                    or "ok")
def test_session_left_by_kill_9_is_swept() -> None:
    code = (
        "import subprocess, sys, time\n"
        "from virtbench import cgroups\n"
        "s = cgroups.CgroupSession(cgroups.detect('auto')).open()\n"
        "cg = s.create('instance-0')\n"
        "p = subprocess.Popen(['sleep', '120'])\n"
        "cg.add(p.pid)\n"
        "print(s.name, p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stdout is not None
    name, sleeper = proc.stdout.readline().split()
    proc.kill()
    proc.wait()
    proc.stdout.close()
    assert [p for p in session_dirs() if p.name == name]  # left behind by kill -9
    removed = cgroups.sweep_stale(cgroups.detect("auto"))
    assert any(p.name == name for p in removed)
    assert not [p for p in session_dirs() if p.name == name]
    assert gone(sleeper)  # killed with its group


def test_detect_v2_only_host_picks_a_base_that_can_delegate_cpu(tmp_path: Path) -> None:
    """On a v2-only host the groups go under our own cgroup when it already hands ``cpu`` to
    children, else under the root (our own cgroup holds processes: "no internal processes")."""
    root = fake_v2(tmp_path)
    own = root / "user.slice" / "session-3.scope"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    mountinfo = f"35 24 0:30 / {root} rw - cgroup2 cgroup2 rw,nsdelegate\n"
    proc = proc_tree(tmp_path / "proc", mountinfo, "0::/user.slice/session-3.scope\n")
    b = cgroups.detect("auto", need_quota=True, proc=proc)
    assert isinstance(b, V2Backend) and b.base == root
    (own / "cgroup.subtree_control").write_text("cpu\n")
    b = cgroups.detect("auto", need_quota=True, proc=proc)
    assert isinstance(b, V2Backend) and b.base == own
    with pytest.raises(EnvironmentUnsupported, match="v1 cpu/cpuacct"):
        cgroups.detect("v1", proc=proc)


@pytest.mark.skipif(backend_or_reason(False)[0] is None, reason=backend_or_reason(False)[1]
                    or "ok")
def test_any_command_sweeps_the_cgroups_of_a_run_killed_before_its_document(
        tmp_path: Path) -> None:
    """cap calibrates in a cgroup before it opens its document: a SIGKILL then left the
    cgroups, and the next command swept cgroups only after marking a document abandoned
    (kill points: cap, SIGKILL at 2 s). Every command now sweeps dead runs' cgroups."""
    code = (
        "import os\n"
        "from virtbench import cgroups\n"
        "s = cgroups.CgroupSession(cgroups.detect('auto')).open()\n"
        "s.create('instance-0')\n"
        "print(s.name, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(SRC), XDG_DATA_HOME=str(tmp_path / "data"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=False, timeout=60)
    assert proc.returncode == -9, proc.stderr
    name = proc.stdout.strip()
    assert [p for p in session_dirs() if p.name == name]  # left behind, no document
    after = subprocess.run([sys.executable, "-m", "virtbench", "runs"], capture_output=True,
                           text=True, env=env, check=False, timeout=120)
    assert after.returncode == 0, after.stderr
    # (a virtbench running meanwhile may have swept it first: "removed the cgroup" is then
    # in its stderr, not ours)
    assert not [p for p in session_dirs() if p.name == name], after.stderr
