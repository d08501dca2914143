"""``--kind vm`` instances: real TCG guests running a workload, an idle guest, a CPU cap."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import proc_stats
from virtbench.experiments.fixedwork import calibrate_sysmix, sysmix_command
from virtbench.experiments.instances import BackendOptions, InstanceRequest, make_backend
from virtbench.vm import initramfs, kernel


def _vm_ready() -> str | None:
    try:
        kernel.find_kernel()
        initramfs.find_busybox()
    except Exception as exc:
        return str(exc)
    return None if shutil.which("qemu-system-x86_64") else "no qemu-system-x86_64"


def _qemu_pids() -> set[int]:
    """QEMU processes descended from this test process (others' guests on a shared machine,
    or a parallel test run, must not count)."""
    parent: dict[int, int] = {}
    qemu = set()
    for pid, comm, fields in proc_stats():
        parent[pid] = int(fields[1])
        if comm.startswith("qemu-system"):
            qemu.add(pid)
    me, mine = os.getpid(), set()
    for pid in qemu:
        seen, p = set(), pid
        while p > 1 and p not in seen:
            if p == me:
                mine.add(pid)
                break
            seen.add(p)
            p = parent.get(p, 0)
    return mine


@pytest.mark.slow
@pytest.mark.skipif(_vm_ready() is not None, reason=f"VM layer not available: {_vm_ready()}")
def test_vm_instances_run_workloads_and_leave_nothing() -> None:
    before = _qemu_pids()
    work = sysmix_command(calibrate_sysmix(0.2), units=100)
    cap = 0.5 if os.geteuid() == 0 else None
    backend = make_backend("vm", BackendOptions(extra={"accel": "tcg", "memory": 128}))
    with backend:
        backend.check(work, cap)
        one = backend.run([InstanceRequest(0, work)], timeout=300)
        assert len(one) == 1 and one[0].loaded
        assert one[0].seconds is not None and one[0].seconds > 0
        assert one[0].metrics["units"] == 100
        assert "guest_user_s" in one[0].metrics
        assert one[0].cpu is not None and one[0].cpu.usage_s > 0  # QEMU's CPU time
        # two guests: one loaded (capped when root), one idle
        two = backend.run([InstanceRequest(0, work, cpus=cap), InstanceRequest(1, None)],
                          timeout=300)
        assert [o.loaded for o in two] == [True, False]
        assert two[1].seconds is None
        assert two[0].seconds is not None and two[0].seconds > 0
        if cap is not None:
            assert two[0].accounting.startswith("qemu cgroup")
            assert two[0].cpu is not None and two[0].cpu.nr_throttled is not None
        desc = backend.describe()
        assert desc["accel"] == "tcg" and desc["kind"] == "vm"
        workdir = backend._vm.dir
        assert len(_qemu_pids() - before) == 2
    assert not workdir.exists()
    assert _qemu_pids() - before == set()
