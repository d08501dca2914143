from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cgroup_helpers import (
    containers_reason,
    marked_processes,
    run_cli,
    run_main,
    session_dirs,
)
from virtbench.cgroups import CpuStats
from virtbench.errors import UsageError
from virtbench.experiments import common, consolidate
from virtbench.experiments.consolidate import Condition, ConsolidateParams, Sample
from virtbench.experiments.instances import (
    BackendOptions,
    InstanceOutcome,
    InstanceRequest,
    WorkloadCommand,
    WorkloadOutput,
    make_backend,
)
from virtbench.results.model import ExperimentResult


def test_plan_has_the_papers_shape() -> None:
    labels = [c.label for c in consolidate.plan(ConsolidateParams(kind="container"))]
    assert labels == ["host", "1", "2 one loaded", "2 all loaded", "3 one loaded",
                      "3 all loaded"]
    only_all = consolidate.plan(ConsolidateParams(kind="process", instances=(1, 3),
                                                  loaded=("all",)))
    assert [(c.label, c.instances, c.loaded) for c in only_all] == [
        ("host", 0, 1), ("1", 1, 1), ("3 all loaded", 3, 3)]


@pytest.mark.parametrize("params,message", [
    (ConsolidateParams(kind="process", instances=()), "--instances"),
    (ConsolidateParams(kind="process", instances=(0,)), "--instances"),
    (ConsolidateParams(kind="process", loaded=("some",)), "--loaded"),
    (ConsolidateParams(kind="process", repeat=0), "--repeat"),
    (ConsolidateParams(kind="container", cpus=0.0), "--cpus"),
])
def test_params_refused(params: ConsolidateParams, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        params.validate()


def outcome(i: int, secs: float | None, user: float = 1.0) -> InstanceOutcome:
    return InstanceOutcome(i, secs is not None, secs, secs or 1.0, {},
                           CpuStats(user + 0.5, user, 0.5, 10, 2, 0.1), "cgroup v1")


def test_analyze_slowdown_fairness_and_accounting() -> None:
    conds = [Condition("host", 0, 1), Condition("2 one loaded", 2, 1),
             Condition("2 all loaded", 2, 2)]
    samples = {
        "host": [Sample([outcome(0, 2.0)], 0.0, 0.0), Sample([outcome(0, 2.2)], 0.1, 0.01)],
        "2 one loaded": [Sample([outcome(0, 2.1), outcome(1, None, user=0.0)], None, None)],
        "2 all loaded": [Sample([outcome(0, 3.0), outcome(1, 6.0)], 0.5, 0.05)],
    }
    rows, summary = consolidate.analyze(conds, samples)
    assert summary["solo_seconds"] == pytest.approx(2.1)
    by = {r["condition"]: r for r in rows}
    assert by["host"]["steal_s"] == pytest.approx(0.05)
    assert by["2 one loaded"]["slowdown"] == pytest.approx(1.0)
    assert by["2 one loaded"]["fairness"] is None  # one loaded instance: nothing to share
    assert by["2 one loaded"]["idle_cpu_s"] == pytest.approx(0.5)
    all2 = by["2 all loaded"]
    assert all2["seconds"] == pytest.approx(4.5)
    assert [p["slowdown"] for p in all2["per_instance"]] == pytest.approx([3 / 2.1, 6 / 2.1],
                                                                          abs=1e-4)
    # Throughputs 1/3 and 1/6: Jain = (1/3+1/6)^2 / (2 * (1/9+1/36)) = 0.9
    assert all2["fairness"] == pytest.approx(0.9)
    assert all2["cpu_user_s"] == pytest.approx(2.0)
    assert all2["nr_throttled"] == 4 and all2["throttled_s"] == pytest.approx(0.2)
    assert common.jain_index([1, 1, 1]) == pytest.approx(1.0)
    assert common.jain_index([1, 0, 0]) == pytest.approx(1 / 3)


def test_cpus_used_is_bounded_when_instances_end_at_different_times() -> None:
    """Three instances on two CPUs, the scheduler unfair: two run alone for 1 s and finish,
    the third waits, then runs alone for 1 s. Per-instance CPU/wall is 1, 1 and 0.5 (3 x the
    mean is 2.5, more than the machine has); CPUs in use over the 2 s span is 3 / 2 = 1.5."""
    def busy(i: int, secs: float, cpu: float) -> InstanceOutcome:
        return InstanceOutcome(i, True, secs, secs, {}, CpuStats(cpu, cpu, 0.0), "cgroup v1")
    conds = [Condition("host", 0, 1), Condition("3 all loaded", 3, 3)]
    samples = {"host": [Sample([busy(0, 1.0, 1.0)], None, None)],
               "3 all loaded": [Sample([busy(0, 1.0, 1.0), busy(1, 1.0, 1.0),
                                        busy(2, 2.0, 1.0)], None, None)]}
    rows, _ = consolidate.analyze(conds, samples)
    three = rows[1]
    assert three["cpu_share"] == pytest.approx(2.5 / 3, abs=1e-3)
    assert three["cpus_used"] == pytest.approx(1.5)
    assert rows[0]["cpus_used"] == pytest.approx(1.0)


def check_no_leftovers(tmp: Path, pid: int) -> None:
    assert session_dirs(pid) == []
    assert marked_processes(pid) == []
    assert list(tmp.iterdir()) == []


def test_process_consolidation_for_real(tmp_path: Path) -> None:
    proc = run_cli("consolidate", "--kind", "process", "--instances", "1,2", "--loaded", "all",
                   "--workload", "sysmix", "--iterations", "600", "--json", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["experiment"] == "consolidate" and doc["status"] == "complete"
    assert [r["condition"] for r in doc["rows"]] == ["host", "1", "2 all loaded"]
    for r in doc["rows"]:
        assert r["seconds"] > 0 and r["accounting"] == "rusage"
        assert r["cpu_user_s"] > 0
        assert r["throttled_s"] is None  # no cgroup for plain processes
    two = doc["rows"][2]
    assert len(two["per_instance"]) == 2
    assert 0.5 <= two["fairness"] <= 1.0
    assert "saved" not in doc["summary"]  # the local path does not travel in the document
    results = Path(os.environ["XDG_DATA_HOME"], "virtbench", "results")
    assert (results / f"{doc['started'][:10]}-{doc['id']}.json").is_file()
    check_no_leftovers(tmp_path, proc.pid)


@pytest.mark.skipif(bool(containers_reason()), reason=containers_reason() or "ok")
def test_container_consolidation_for_real(tmp_path: Path) -> None:
    """1, 3 one loaded, 3 all loaded on this host: idle containers cost nothing, three busy
    ones share two CPUs fairly and use three times the CPU."""
    proc = run_cli("consolidate", "--kind", "container", "--instances", "1,3",
                   "--workload", "sysmix", "--iterations", "900", "--json", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    check_no_leftovers(tmp_path, proc.pid)
    doc = json.loads(proc.stdout)
    by = {r["condition"]: r for r in doc["rows"]}
    assert list(by) == ["host", "1", "3 one loaded", "3 all loaded"]
    assert doc["params"]["backend"]["kind"] == "container"
    assert doc["params"]["backend"]["namespaces"] == ["pid", "mount", "uts", "ipc"]
    one, three = by["1"], by["3 all loaded"]
    assert one["accounting"].startswith("cgroup v")
    # Idle instances really idle: a few ms of CPU at most.
    assert by["3 one loaded"]["idle_cpu_s"] < 0.1
    # The same work three times over: about three times the CPU seconds (cgroup accounting).
    work1 = one["cpu_user_s"] + one["cpu_system_s"]
    work3 = three["cpu_user_s"] + three["cpu_system_s"]
    assert work3 == pytest.approx(3 * work1, rel=0.35)
    # Three instances never get more CPU than the machine has (the per-instance share may:
    # one that finished first had company, the last ran alone)...
    cpus = doc["environment"]["cpus_usable"] or 1
    assert 0 < three["cpus_used"] <= cpus * 1.05
    # ...so on a quiet machine with at most two CPUs they must run slower than one alone.
    if cpus <= 2 and by["host"]["cpu_share"] > 0.9 and one["cpu_share"] > 0.9:
        assert three["seconds"] > 1.3 * one["seconds"]
    assert three["fairness"] > 0.6
    assert len(three["per_instance"]) == 3 and three["steal_share"] is not None
    text = consolidate.render(ExperimentResult.from_dict(doc))
    assert "3 one loaded" in text and "idle, idle" in text and "CPU/wall" in text


@pytest.mark.parametrize("args,message", [
    (["--kind", "process", "--workload", "nosuch"], "unknown workload 'nosuch'"),
    (["--kind", "process", "--cpus", "0.5"], "--cpus needs --kind container"),
    (["--kind", "container", "--cpus", "-1"], "--cpus must be > 0"),
    (["--kind", "process", "--instances", "0,1"], "--instances takes counts"),
    (["--kind", "process", "--sys-fraction", "2"], "--sys-fraction must be between"),
])
def test_impossible_requests_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    rc, out, err = run_main("consolidate", *args, "--iterations", "10")
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    check_no_leftovers(tmp_path, os.getpid())


NS_SCRIPT = ("echo pid=$$; echo host=$(hostname); echo ns=$(readlink /proc/self/ns/pid); "
             "echo ipc=$(readlink /proc/self/ns/ipc); echo net=$(readlink /proc/self/ns/net); "
             "echo procs=$(ls /proc | grep -c '^[0-9]')")


@pytest.mark.skipif(bool(containers_reason()), reason=containers_reason() or "ok")
def test_container_instances_are_really_isolated() -> None:
    """Inside a container instance the workload is PID 1 of a new PID namespace with its own
    /proc (only its own processes) and IPC namespace; a process instance shares the host's."""
    seen: dict[str, str] = {}

    def parse(text: str) -> WorkloadOutput:
        seen[text.split("pid=")[1].split()[0] + "-" + str(len(seen))] = text
        return WorkloadOutput(seconds=0.001)

    cmd = WorkloadCommand("ns", "/bin/sh", ("-c", NS_SCRIPT), parse)
    host_ns = os.readlink("/proc/self/ns/pid")
    with make_backend("container", BackendOptions(net=True)) as b:
        b.check(cmd, None)
        outs = b.run([InstanceRequest(0, cmd), InstanceRequest(1, cmd)], timeout=60)
    assert [o.loaded for o in outs] == [True, True]
    texts = list(seen.values())
    assert len(texts) == 2
    for text in texts:
        kv = dict(line.split("=", 1) for line in text.splitlines())
        assert kv["pid"] == "1"
        assert kv["ns"] != host_ns
        assert kv["ipc"] != os.readlink("/proc/self/ns/ipc")
        assert kv["net"] != os.readlink("/proc/self/ns/net")  # --net
        assert int(kv["procs"]) <= 5  # sh and the subshell, ls, grep it runs
    assert texts[0].split("ns=")[1].split()[0] != texts[1].split("ns=")[1].split()[0]
    seen.clear()
    with make_backend("process") as b:
        b.run([InstanceRequest(0, cmd)], timeout=60)
    kv = dict(line.split("=", 1) for line in next(iter(seen.values())).splitlines())
    assert kv["pid"] != "1" and kv["ns"] == host_ns and int(kv["procs"]) > 10
