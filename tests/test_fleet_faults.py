"""How a fleet run names its faulty hosts: a full disk by what the target said, slow hosts by
their Ansible task time against the fleet's median (unit level; the namespace testbed runs
the real thing in test_fleet_testbed.py and bench/fleet_scale.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from virtbench.fleet.display import Display, host_detail
from virtbench.fleet.engine import Engine, TaskResult
from virtbench.fleet.state import FleetState, HostState


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
                    hosts={n: HostState(name=n, status="fetched", ssh_seconds=s)
                           for n, s in secs.items()})
    st.save()
    return st


def test_slow_hosts_are_named_against_the_fleet_median(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    secs = {f"h{i}": 4.0 + i * 0.1 for i in range(9)} | {"s1": 40.0, "s2": 12.0, "x": 0.0}
    st = _state(tmp_path, monkeypatch, secs)
    engine = Engine(st, Display(st, io.StringIO()))
    assert engine.name_slow_hosts() == ["s1"]  # s2: 2.7x the median, not 3x
    s1 = st.hosts["s1"]
    assert s1.slow == "slow: its SSH tasks took 40.0 s, 8.9x the fleet median (4.5 s)"
    assert host_detail(s1).endswith(s1.slow)
    assert all(st.hosts[n].slow is None for n in secs if n != "s1")
    # saved: fleet status and resume see it
    assert FleetState.load(st.id).hosts["s1"].slow == s1.slow
    # a median of near-zero times does not make everyone slow: the margin
    st2 = _state(tmp_path / "b", monkeypatch, {"a": 0.1, "b": 0.1, "c": 0.1, "d": 4.0})
    assert Engine(st2, Display(st2, io.StringIO())).name_slow_hosts() == []
