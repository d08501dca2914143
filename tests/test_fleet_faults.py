"""How a fleet run names its faulty hosts: a full disk by what the target said, slow hosts by
their Ansible task time against the fleet's median (unit level; the namespace testbed runs
the real thing in test_fleet_testbed.py and bench/fleet_scale.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SRC, run_cli

from virtbench.fleet.display import Display, host_detail
from virtbench.fleet.engine import Engine, TaskResult
from virtbench.fleet.state import FleetState, HostState
from virtbench.fleet.testbed import Faults, NamespaceFleet, namespaces_available


def test_a_full_disk_is_named_whatever_the_task_printed_first() -> None:
    # the copy module's answer on a target whose home is a full tmpfs (as Ansible gave it)
    res = {"msg": "Task failed: failed to transfer file to /c/b.tar /h/.ansible/tmp/x/.source"
                  ".tar:\n\ndd: error writing '/h/.ansible/tmp/x/.source.tar': No space left "
                  "on device\n1+0 records in\n0+0 records out"}
    msg = TaskResult("failed", res).message()
    assert msg == ("disk full on the target: dd: error writing '/h/.ansible/tmp/x/.source.tar'"
                   ": No space left on device")
    quota = TaskResult("failed", {"stderr": "tar: x: Cannot write: Disk quota exceeded",
                                  "rc": 2}).message()
    assert quota.startswith("disk quota exceeded on the target: tar: x: Cannot write")
    # other failures keep their first line
    assert TaskResult("failed", {"msg": "Task failed: boom\nmore"}).message() == "boom"


def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           secs: dict[str, float]) -> FleetState:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    st = FleetState(id="20261204-000000-abcd", command=["detect"], inventory="x,",
                    hosts={n: HostState(name=n, status="fetched", ssh_seconds=s, document="d")
                           for n, s in secs.items()})
    st.save()
    return st


def test_slow_hosts_are_named_against_the_fleet_median(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """By their quickest task (their latency), not their total: after a resume, restarted
    hosts did more tasks than re-attached ones."""
    totals = {"a": 11.0, "b": 12.0, "c": 64.0, "d": 13.0, "e": 9.0}
    st = _state(tmp_path, monkeypatch, totals)
    for name, quickest in {"a": 0.3, "b": 0.4, "c": 0.5, "d": 2.4}.items():
        st.hosts[name].ssh_fastest = quickest
    st.hosts["f"] = HostState(name="f", status="failed", ssh_seconds=9.0, ssh_fastest=3.0)
    engine = Engine(st, Display(st, io.StringIO()))
    assert engine.name_slow_hosts() == ["d"]  # c: long total, quick answers; f: no poll
    d = st.hosts["d"]
    assert d.slow == "slow to answer: its quickest SSH task took 2.4 s, the fleet median 0.5 s"
    assert host_detail(d).endswith(d.slow)
    assert FleetState.load(st.id).hosts["d"].slow == d.slow  # saved
    # the margin: near-zero latencies do not make the slowest of them slow
    st2 = _state(tmp_path / "b", monkeypatch, {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0})
    for name, quickest in {"a": 0.05, "b": 0.05, "c": 0.06, "d": 0.9}.items():
        st2.hosts[name].ssh_fastest = quickest
    assert Engine(st2, Display(st2, io.StringIO())).name_slow_hosts() == []


def test_fleet_scale_refuses_a_size_too_small_for_its_faults_in_one_line() -> None:
    """At 3 hosts the default rates round up to 4 faulty hosts: one line and exit 2, before
    any testbed is made (it ended in the testbed's ValueError traceback)."""
    bench = Path(__file__).parent.parent / "bench" / "fleet_scale.py"
    proc = subprocess.run([sys.executable, str(bench), "--sizes", "10", "3"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
    assert proc.stderr == (
        "fleet_scale: --sizes 3: 3 hosts cannot hold 4 faulty ones (1 dead, 1 dying, 1 slow, "
        "1 full: each rate rounds up to at least one host); use --sizes 4 or more, lower "
        "rates (--dead, --dying, --slow, --full) or --no-faults\n")


# ---- the real thing, small: a namespace testbed with one host of each fault ------------------
TREES = Path(__file__).parent / "data" / "detect"


@pytest.fixture(scope="module")
def nsfleet() -> Iterator[NamespaceFleet]:
    if os.getuid() != 0 or namespaces_available() is not None:
        pytest.skip(f"needs network namespaces ({namespaces_available()})")
    f = NamespaceFleet(Path(f"/tmp/vbff-{os.getpid()}"), 6,
                       roots=[TREES / "kvm-virtio", TREES / "aws-nitro", TREES / "hyper-v"],
                       faults=Faults(dead=1, dying=1, slow=1, full=1, die_delay=1.0))
    with f:
        yield f


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cache = os.environ.get("VIRTBENCH_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    return {"XDG_DATA_HOME": str(tmp_path_factory.mktemp("fleet-data")),
            "XDG_CACHE_HOME": cache}


def fault(f: NamespaceFleet, kind: str | None) -> list[str]:
    return [h.name for h in f.hosts if h.fault == kind]


def check_outcome(f: NamespaceFleet, hosts: dict[str, Any]) -> None:
    """Every live host fetched; every faulty one named with its reason."""
    for name in [*fault(f, None), *fault(f, "slow")]:
        assert hosts[name]["status"] == "fetched", (name, hosts[name])
    (dead,) = fault(f, "dead")
    assert hosts[dead]["status"] == "failed"
    assert "unreachable" in hosts[dead]["reason"] and "No route to host" in hosts[dead]["reason"]
    (dying,) = fault(f, "dying")
    assert hosts[dying]["status"] == "failed" and "unreachable" in hosts[dying]["reason"]
    (full,) = fault(f, "full")
    assert hosts[full]["status"] == "failed"
    assert "disk full on the target" in hosts[full]["reason"], hosts[full]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_detect_on_a_faulty_fleet_names_every_fault(nsfleet: NamespaceFleet,
                                                    data: dict[str, str]) -> None:
    t0 = time.monotonic()
    proc = run_cli("fleet", "run", "-i", str(nsfleet.inventory), "--poll-interval", "1",
                   "--json", "--", "detect", "--root", str(nsfleet.root_mount), env=data,
                   timeout=600)
    assert proc.returncode == 1, proc.stderr
    hosts = json.loads(proc.stdout)["hosts"]
    check_outcome(nsfleet, hosts)
    # each host analysed its own tree: the same layers as detect --root of that tree here
    for name in [*fault(nsfleet, None), *fault(nsfleet, "slow")]:
        tree = nsfleet.host(name).root
        assert tree is not None
        local = json.loads(run_cli("detect", "--root", str(tree), "--json",
                                   check=True).stdout)
        fetched = json.loads(Path(hosts[name]["document"]).read_text())
        assert [la["name"] for la in fetched["layers"]] == \
            [la["name"] for la in local["layers"]], name
    # the slow host (each of its SSH sessions starts late) is named, and only it. It had at
    # least three sessions (preflight, ship, the poll that collected: one session each now
    # that the ship and the polls go through its SSH master, no longer four for the ship)
    (slow,) = fault(nsfleet, "slow")
    healthy = max(hosts[h]["ssh_seconds"] for h in fault(nsfleet, None))
    assert hosts[slow]["ssh_seconds"] > healthy + 2 * nsfleet.faults.slow_login, hosts
    assert [h for h in hosts if hosts[h]["slow"]] == [slow], hosts
    assert hosts[slow]["slow"].startswith("slow to answer: its quickest SSH task took")
    assert f"{slow}: {hosts[slow]['slow']}" in proc.stderr
    sys.stderr.write(f"faulty fleet detect: {time.monotonic() - t0:.1f}s\n")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_controller_killed_then_resume_loses_nothing(nsfleet: NamespaceFleet,
                                                     data: dict[str, str]) -> None:
    """SIGKILL of the controller while the live hosts run: `fleet resume` collects them
    (each imported once) and names the faulty ones."""
    nsfleet.rearm()
    env = {**os.environ, **data, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "virtbench", "fleet", "run", "-i", str(nsfleet.inventory),
         "--poll-interval", "1", "--json", "--", "detect", "--root", str(nsfleet.root_mount)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    root = Path(data["XDG_DATA_HOME"]) / "virtbench" / "fleet"
    before = {p.name for p in root.iterdir()}
    healthy = fault(nsfleet, None)
    deadline = time.monotonic() + 400
    run_id = None
    while time.monotonic() < deadline and proc.poll() is None:
        new = [p for p in root.iterdir() if p.name not in before]
        if new:
            run_id = new[0].name
            with contextlib.suppress(OSError, ValueError):
                st = json.loads((new[0] / "state.json").read_text())
                if any(st["hosts"][h]["status"] == "running" for h in healthy):
                    break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1]
    proc.kill()
    proc.communicate()
    assert run_id is not None
    status = run_cli("fleet", "status", run_id, env=data, check=True)
    assert "stopped" in status.stdout  # the controller is gone
    res = run_cli("fleet", "resume", run_id, "--poll-interval", "1", "--json", env=data,
                  timeout=600)
    assert res.returncode == 1, res.stderr
    hosts = json.loads(res.stdout)["hosts"]
    check_outcome(nsfleet, hosts)
    for name in [*healthy, *fault(nsfleet, "slow")]:
        assert len(hosts[name]["run_ids"]) == 1 and hosts[name]["attempts"] == 1, hosts[name]
    # re-attached and restarted hosts did different work: no healthy host is called slow
    assert not [h for h in healthy if hosts[h]["slow"]], hosts
