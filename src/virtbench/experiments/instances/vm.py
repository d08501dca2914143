"""Instances as QEMU guests (``--kind vm``): one guest per instance, the workload inside.

Each guest boots the host kernel with virtbench's initramfs (docs/vm.md) holding the
workload's program, built statically (``programs.build(name, static=True)``). Guests are
booted once and kept across conditions (a condition with fewer instances stops the extra
ones, one with more boots new ones), so exactly ``len(requests)`` guests exist while a
condition runs. An idle instance is a booted guest whose agent waits for a command.

A condition: every loaded guest gets its command at once (over its control port); each runs
``head -1 /proc/stat; PROGRAM ARGS; head -1 /proc/stat`` and the workload's own output gives
its seconds. CPU figures are the hypervisor's view: each QEMU process sits in its own cgroup
(``--cgroup``), whose quota is the instance's CPU cap and whose accounting (user/system time,
throttling) is the outcome's ``cpu``; without cgroups (not root) ``/proc/<qemu pid>/stat``
gives user/system time. The guest's own view (``/proc/stat`` deltas) is in the metrics
``guest_user_s``, ``guest_system_s``, ``guest_steal_s``.

``BackendOptions.extra``: ``vcpus`` (1), ``memory`` (MB, 128), ``kernel`` (path), ``accel``
(``auto``/``kvm``/``tcg``), ``pin`` (host CPUs; guest *i*'s vCPUs go to ``pin[i % len]``),
``boot_timeout`` (s, 180).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from virtbench import cgroups, childproc
from virtbench.cgroups import Cgroup, CgroupSession, CpuStats
from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.experiments import programs
from virtbench.experiments.instances import (
    BackendOptions,
    InstanceBackend,
    InstanceFailed,
    InstanceOutcome,
    InstanceRequest,
    WorkloadCommand,
    WorkloadOutput,
)
from virtbench.sigmask import signals_deferred

USER_HZ = os.sysconf("SC_CLK_TCK")


def _proc_stat_cpu(line: str) -> tuple[float, float, float] | None:
    """(user, system, steal) seconds from a ``cpu`` line of /proc/stat (guest USER_HZ=100)."""
    f = line.split()
    if len(f) < 9 or f[0] != "cpu":
        return None
    v = [int(x) for x in f[1:9]]
    hz = 100.0
    return (v[0] + v[1]) / hz, (v[2] + v[5] + v[6]) / hz, v[7] / hz


def _qemu_times(pid: int) -> tuple[float, float] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[11]) / USER_HZ, int(fields[12]) / USER_HZ


class _Instance:
    def __init__(self, guest: Any, cgroup: Cgroup | None) -> None:
        self.guest = guest
        self.cgroup = cgroup


class VMBackend(InstanceBackend):
    kind: ClassVar[str] = "vm"

    def __init__(self, options: BackendOptions) -> None:
        super().__init__(options)
        from virtbench.vm.qemu import VMSession

        extra = options.extra or {}
        self.vcpus = int(extra.get("vcpus") or 1)
        self.memory = int(extra.get("memory") or 128)
        self.kernel_arg = extra.get("kernel")
        self.accel_arg = str(extra.get("accel") or "auto")
        pin = extra.get("pin")
        self.pin: list[int] | None = [int(c) for c in pin] if pin else None
        self.boot_timeout = float(extra.get("boot_timeout") or 180)
        if self.vcpus < 1 or self.memory < 64:
            raise UsageError("vm instances need --vcpus >= 1 and --memory >= 64 (MB)")
        self._session_cls = VMSession
        self._vm: Any = None
        self._instances: list[_Instance] = []
        self._programs: dict[str, Path] = {}
        self._initrd: Path | None = None
        self._initrd_programs: frozenset[str] = frozenset()
        self._kernel: Path | None = None
        self._accel: Any = None
        self._cg_session: CgroupSession | None = None
        self._cg_backend: cgroups.CgroupBackend | None = None
        self._generation = 0

    # ---- preparation ---------------------------------------------------------------------
    def _prepare(self) -> None:
        from virtbench.vm import accel as accel_mod
        from virtbench.vm import kernel as kernel_mod
        from virtbench.vm.initramfs import find_busybox
        from virtbench.vm.qemu import find_qemu

        if self._kernel is None:
            find_qemu()
            find_busybox()
            self._kernel = kernel_mod.find_kernel(self.kernel_arg)
            self._accel = accel_mod.choose(self._kernel, self.accel_arg)
        if self._vm is None:
            self._vm = self._session_cls(prefix="virtbench-vminst-")

    def check(self, workload: WorkloadCommand | None, cpus: float | None) -> None:
        self._prepare()
        if workload is not None and workload.program not in self._programs:
            self._programs[workload.program] = programs.build(workload.program, static=True)
        if cpus is not None:
            self._cgroups(True)

    def _cgroups(self, need_quota: bool) -> CgroupSession | None:
        if self._cg_session is None:
            if os.geteuid() != 0:
                if need_quota:
                    raise EnvironmentUnsupported("capping a VM's QEMU process needs root "
                                                 "(cgroups)")
                return None
            try:
                self._cg_backend = cgroups.detect(self.options.cgroup, need_quota=need_quota)
            except EnvironmentUnsupported:
                if need_quota:
                    raise
                return None
            session = CgroupSession(self._cg_backend)
            session.open()
            self._cg_session = session
        elif need_quota and self._cg_backend is not None \
                and not self._cg_backend.supports_quota():
            raise EnvironmentUnsupported(
                f"no CPU quota possible: {self._cg_backend.quota_unsupported_reason()}")
        return self._cg_session

    def _ensure_initrd(self) -> Path:
        from virtbench.vm import initramfs

        wanted = frozenset(self._programs)
        if self._initrd is None or wanted != self._initrd_programs:
            # a new program: guests booted with the old initramfs cannot run it
            self._stop_instances(0)
            self._generation += 1
            path = self._vm.dir / f"initrd-{self._generation}"
            initramfs.write(path, dict(self._programs))
            self._initrd, self._initrd_programs = path, wanted
        return self._initrd

    def _boot(self, count: int) -> None:
        from virtbench.vm.qemu import GuestConfig

        initrd = self._ensure_initrd()
        assert self._kernel is not None and self._accel is not None
        session = self._cgroups(False)
        new = []
        while len(self._instances) < count:
            i = len(self._instances)
            pin = [self.pin[i % len(self.pin)]] if self.pin else None
            config = GuestConfig(kernel=self._kernel, initrd=initrd, accel=self._accel.accel,
                                 vcpus=self.vcpus, memory_mb=self.memory, pin=pin)
            with signals_deferred():
                guest = self._vm.start(config, name=f"inst{i}-g{self._generation}")
                cg = None
                if session is not None and guest.proc is not None:
                    cg = session.create(f"vm-{i}-{self._generation}")
                    cg.add(guest.proc.pid)
                inst = _Instance(guest, cg)
                self._instances.append(inst)
            new.append(inst)
        for inst in new:  # boot them in parallel, then wait for each
            inst.guest.wait_ready(self.boot_timeout)

    def _stop_instances(self, keep: int) -> None:
        with signals_deferred():
            while len(self._instances) > keep:
                inst = self._instances.pop()
                with contextlib.suppress(Exception):
                    inst.guest.stop()
                if inst.cgroup is not None and self._cg_session is not None:
                    with contextlib.suppress(Exception):
                        self._cg_session.remove(inst.cgroup)

    # ---- one condition -------------------------------------------------------------------
    def run(self, requests: Sequence[InstanceRequest], *, timeout: float) -> list[
            InstanceOutcome]:
        if not requests:
            return []
        self._prepare()
        for req in requests:
            if req.workload is not None and req.workload.program not in self._programs:
                self._programs[req.workload.program] = programs.build(req.workload.program,
                                                                      static=True)
        if any(r.cpus is not None for r in requests):
            self._cgroups(True)
        self._ensure_initrd()
        self._stop_instances(len(requests))
        self._boot(len(requests))
        for inst, req in zip(self._instances, requests, strict=True):
            if inst.cgroup is not None:
                inst.cgroup.set_cpu_quota(req.cpus, req.period_us)
        before = [self._cpu_now(inst) for inst in self._instances]
        # all loaded guests get their command at once; then wait for each
        pending = []
        t0 = time.monotonic()
        for inst, req in zip(self._instances, requests, strict=True):
            if req.workload is None:
                continue
            pending.append((inst, req, self._guest_command(req)))
        results: dict[int, tuple[int, list[str], float]] = {}
        from concurrent.futures import ThreadPoolExecutor

        def one(item: tuple[_Instance, InstanceRequest, str]) -> tuple[int, list[str], float]:
            inst, _req, cmd = item
            rc, out = inst.guest.run(cmd, timeout)
            return rc, out, time.monotonic()

        if pending:
            with ThreadPoolExecutor(max_workers=len(pending)) as pool:
                with childproc.signals_deferred():  # workers block Ctrl-C (childproc)
                    futures = {req.index: pool.submit(one, item)
                               for item in pending for req in [item[1]]}
                for index, fut in futures.items():
                    try:
                        results[index] = fut.result()
                    except Exception as exc:
                        raise InstanceFailed(f"vm instance {index}: {exc}") from None
        end = time.monotonic()
        outcomes = []
        for inst, req, cpu0 in zip(self._instances, requests, before, strict=True):
            cpu1 = self._cpu_now(inst)
            cpu = cpu1[0].minus(cpu0[0]) if cpu1[0] and cpu0[0] else None
            if req.workload is None:
                outcomes.append(InstanceOutcome(req.index, False, None, end - t0, {}, cpu,
                                                cpu1[1]))
                continue
            rc, out, ended = results[req.index]
            outcomes.append(self._outcome(req, rc, out, ended - t0, cpu, cpu1[1]))
        return outcomes

    def _guest_command(self, req: InstanceRequest) -> str:
        w = req.workload
        assert w is not None
        wdir = f"/tmp/vb-{req.index}"
        args = " ".join(_quote(a.replace("{dir}", wdir)) for a in w.args)
        prep = f"rm -rf {wdir}; mkdir -p {wdir} && cd {wdir} && " if w.needs_dir else ""
        return (f"head -1 /proc/stat; {prep}/bin/{w.program} {args}; rc=$?; "
                f"head -1 /proc/stat; exit $rc")

    def _outcome(self, req: InstanceRequest, rc: int, out: list[str], wall: float,
                 cpu: CpuStats | None, accounting: str) -> InstanceOutcome:
        w = req.workload
        assert w is not None
        stats = [s for s in (_proc_stat_cpu(ln) for ln in out if ln.startswith("cpu ")) if s]
        body = "\n".join(ln for ln in out if not ln.startswith("cpu ")) + "\n"
        if rc != 0:
            tail = body.strip().splitlines()[-1:] or ["no output"]
            raise InstanceFailed(f"vm instance {req.index} ({w.name}) failed (exit status "
                                 f"{rc}): {tail[0][:200]}")
        try:
            result: WorkloadOutput = w.parse(body)
        except (ValueError, KeyError, IndexError) as exc:
            raise InstanceFailed(f"vm instance {req.index} ({w.name}): unreadable output "
                                 f"({exc}): {body.strip()[:200]!r}") from None
        metrics = dict(result.metrics)
        if len(stats) >= 2:
            (u0, s0, st0), (u1, s1, st1) = stats[0], stats[-1]
            metrics.update(guest_user_s=round(u1 - u0, 3), guest_system_s=round(s1 - s0, 3),
                           guest_steal_s=round(st1 - st0, 3))
        return InstanceOutcome(req.index, True, result.seconds, wall, metrics, cpu, accounting)

    def _cpu_now(self, inst: _Instance) -> tuple[CpuStats | None, str]:
        if inst.cgroup is not None and self._cg_backend is not None:
            return inst.cgroup.cpu_stats(), f"qemu cgroup v{self._cg_backend.version}"
        proc = inst.guest.proc
        times = _qemu_times(proc.pid) if proc is not None else None
        if times is None:
            return None, ""
        return CpuStats(usage_s=times[0] + times[1], user_s=times[0], system_s=times[1]), \
            "qemu /proc/pid/stat"

    # ---- teardown ------------------------------------------------------------------------
    def close(self) -> None:
        with signals_deferred():
            self._stop_instances(0)
            if self._vm is not None:
                vm, self._vm = self._vm, None
                vm.close()
            if self._cg_session is not None:
                session, self._cg_session = self._cg_session, None
                session.close()

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "vcpus": self.vcpus, "memory_mb": self.memory,
                             "pin": self.pin}
        if self._kernel is not None:
            d["kernel"] = str(self._kernel)
        if self._accel is not None:
            d["accel"] = self._accel.accel
            d["accel_reason"] = self._accel.reason
        if self._cg_backend is not None:
            d["cgroup"] = self._cg_backend.describe()
        return d


def _quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_./=:,+%@" for c in arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"
