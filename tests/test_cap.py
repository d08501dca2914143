from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cgroup_helpers import (
    backend_or_reason,
    containers_reason,
    marked_processes,
    run_cli,
    run_main,
    session_dirs,
)
from virtbench import cgroups
from virtbench.errors import EnvironmentUnsupported

needs_quota = pytest.mark.skipif(
    bool(containers_reason()) or backend_or_reason(True)[0] is None,
    reason=containers_reason() or backend_or_reason(True)[1] or "ok")


def no_leftovers(tmp: Path, pid: int) -> None:
    assert session_dirs(pid) == []
    assert marked_processes(pid) == []
    assert list(tmp.iterdir()) == []


@needs_quota
def test_cap_sweep_throttles_more_as_quota_falls(tmp_path: Path) -> None:
    proc = run_cli("cap", "--kind", "container", "--quota", "1.0,0.5,0.05", "--duration",
                   "0.8", "--sys-fraction", "0.4", "--period-us", "20000", "--json",
                   tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["experiment"] == "cap" and doc["status"] == "complete"
    rows = {r["condition"]: r for r in doc["rows"]}
    assert list(rows) == ["host", "quota 1", "quota 0.5", "quota 0.05"]
    host, q1, q05, q005 = rows.values()
    if q1["cpus_used"] < 0.08:
        pytest.skip(f"machine too busy: uncapped, the workload got {q1['cpus_used']} CPU")
    assert host["accounting"] == "rusage" and q05["accounting"].startswith("cgroup v")
    # Throttled time rises as the quota falls; the tightest cap (1 ms per 20 ms period, the
    # kernel's minimum) binds even on a busy machine and throttles most periods.
    assert q005["throttled_s"] > q05["throttled_s"] >= q1["throttled_s"] >= 0
    # How long it is throttled depends on how much CPU it would get uncapped (``share``,
    # measured by the uncapped run just before): in each period it spends its 1 ms at that
    # rate, then waits for the period's end, so about 1 - quota/share of the time (0.95 on an
    # idle machine, 0.6 at share 0.13: seen 0.63 under a load of 50); half of that is asserted
    # (CFS hands out CPU in slices, and the load moves between the two runs).
    share = q1["cpus_used"]
    assert q005["throttled_s"] > 0.5 * (1 - 0.05 / share) * q005["seconds"], (share, q005)
    assert q005["throttled_share"] > 0.5
    # A cap is a ceiling on CPUs used (some slack for period edges and startup).
    for r in (q05, q005):
        assert r["cpus_used"] <= r["quota"] * 1.25 + 0.03
    # (Throughput is not compared: on a machine busy with other work, an uncapped instance
    # may get less CPU than the tightest cap allows.)
    # User/system split: both present, adding up to the cgroup's usage, system share near
    # what was asked of the workload (0.4 of the time inside system calls). The kernel
    # samples the split at timer ticks: a run that got 0.15 CPU for 0.8 s is ~30 ticks, so
    # one row's share is +-0.08 (seen: 0.083 at quota 1 and 0.086 at quota 0.5 under a load
    # of 30, where the idle machine gives ~0.3). The rows run the same workload with the
    # same calibration, so the share is judged on their pooled ticks; each row is checked
    # against the workload's own getrusage split (the same ticks seen from inside: what
    # virtbench reads from the cgroup must agree with it).
    assert q005["cpu_usage_s"] > 0 and q005["p50_ns"] <= q005["p99_ns"]
    rows_cpu = [r for r in (host, q1, q05, q005) if r["cpu_user_s"] is not None]
    pooled = sum(r["cpu_system_s"] for r in rows_cpu) / sum(
        r["cpu_user_s"] + r["cpu_system_s"] for r in rows_cpu)
    assert 0.1 < pooled < 0.75, [(r["cpu_user_s"], r["cpu_system_s"]) for r in rows_cpu]
    for r in (q1, q05):
        assert r["cpu_user_s"] > 0 and r["cpu_system_s"] > 0
        # v1 splits user/system by sampling at timer ticks (kcpustat), the total is exact
        # (scheduler clock): they agree only loosely on a short run. Seen in CI on the nested
        # VM: 0.568 s of ticks against 0.410 s of usage (+39%) at quota 0.5 over 0.8 s, so the
        # check is for the same order of magnitude, not agreement.
        assert 0.4 * r["cpu_usage_s"] <= r["cpu_user_s"] + r["cpu_system_s"] \
            <= 2.0 * r["cpu_usage_s"] + 0.1
        assert 0 < r["system_share"] < 0.75
        assert r["system_share"] == pytest.approx(r["own_system_share"], abs=0.1), r
        assert r["p50_ns"] <= r["p90_ns"] <= r["p99_ns"] <= r["max_ns"]
    assert doc["params"]["calibration"]["sys_per_unit"] > 0
    no_leftovers(tmp_path, proc.pid)


@pytest.mark.parametrize("args,message", [
    (["--quota", "0.5,0"], "--quota values must be > 0 CPUs"),
    (["--quota", "-1"], "--quota values must be > 0 CPUs"),
    (["--quota", "0.001"], ">= 1000 us"),
    (["--sys-fraction", "-0.1"], "--sys-fraction must be between"),
    (["--quota", "x"], "not a list of CPU quotas"),
])
def test_impossible_caps_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    rc, out, err = run_main("cap", "--kind", "container", "--duration", "0.2", *args)
    assert rc == 2, err
    assert out == ""
    errors = [x for x in err.splitlines() if "error" in x]
    assert len(errors) == 1 and message in errors[0], err
    no_leftovers(tmp_path, os.getpid())


def test_v2_quota_on_a_host_without_v2_cpu_is_refused(tmp_path: Path) -> None:
    try:
        cgroups.detect("v2", need_quota=True)
    except EnvironmentUnsupported:
        pass
    else:
        pytest.skip("this host's cgroup v2 has the cpu controller")
    proc = run_cli("cap", "--kind", "container", "--cgroup", "v2", "--duration", "0.2",
                   tmp=tmp_path)
    assert proc.returncode == 3
    errors = [x for x in proc.stderr.splitlines() if "error" in x]
    assert len(errors) == 1 and "cgroup v" in errors[0], proc.stderr
    no_leftovers(tmp_path, proc.pid)
