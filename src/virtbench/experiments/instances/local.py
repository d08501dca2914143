"""Instances on this host: plain processes, or containers (namespaces + a cgroup each).

Launch of one instance (both kinds)::

    /bin/sh -c 'read -r go && [ "$go" = go ] && exec "$@"' vb-instance [unshare ...] PROG ARGS

The shell is spawned in its own session, with stdin the read end of a private "go" pipe
and stdout/stderr anonymous memory files (``memfd``: nothing on disk to clean up). While
it waits for ``go`` the tool moves it into the instance's cgroup (containers), so
everything it becomes runs inside; then all instances get ``go`` at once. If the tool dies
before that, the pipe closes, ``read`` sees end-of-file and the shell exits without running
anything. An idle instance runs ``cat`` on the same pipe: resident, blocked, using no CPU,
and gone as soon as the tool closes the pipe (or dies).

Containers add ``unshare --pid --fork --kill-child --mount-proc --uts --ipc [--net]``: the
workload is PID 1 of its own PID namespace with its own /proc, hostname and IPC objects,
and its cgroup holds its CPU quota and accounting.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from virtbench import cgroups
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

GATE = 'read -r go && [ "$go" = go ] && exec "$@"'
MARKER_ENV = "VIRTBENCH_INSTANCE"
"""Every instance process carries ``VIRTBENCH_INSTANCE=<tool pid>.<token>-<index>`` in its
environment, so leftovers can be found (tests look for it)."""


@dataclass
class _Launch:
    req: InstanceRequest
    pid: int
    go_w: int | None
    out_fd: int
    err_fd: int
    cgroup: Cgroup | None = None
    scratch: Path | None = None
    status: int | None = None
    rusage: Any = None
    ended: float | None = None
    extra_fds: list[int] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return self.req.workload is not None


def _read_memfd(fd: int, limit: int = 1 << 20) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        b = os.read(fd, 65536)
        if not b:
            break
        chunks.append(b)
        total += len(b)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class LocalBackend(InstanceBackend):
    """Shared machinery of the process and container kinds."""

    kind: ClassVar[str] = "local"
    uses_cgroups: ClassVar[bool] = False

    def __init__(self, options: BackendOptions) -> None:
        super().__init__(options)
        self.token = os.urandom(4).hex()
        self._session: CgroupSession | None = None
        self._backend: cgroups.CgroupBackend | None = None
        self._live: list[_Launch] = []
        self._lock = threading.Lock()
        self._timed_out = False

    # ---- what the subclasses decide -----------------------------------------------------
    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    def check(self, workload: WorkloadCommand | None, cpus: float | None) -> None:
        if workload is not None and not workload.program.startswith("/"):
            programs.build(workload.program)
        if shutil.which("sh") is None:
            raise EnvironmentUnsupported("no /bin/sh to start instances with")

    # ---- cgroups -------------------------------------------------------------------------
    def _cgroups(self, need_quota: bool) -> CgroupSession:
        if self._session is None:
            self._backend = cgroups.detect(self.options.cgroup, need_quota=need_quota)
            session = CgroupSession(self._backend)
            session.open()
            self._session = session
        elif need_quota and self._backend is not None and not self._backend.supports_quota():
            raise EnvironmentUnsupported(
                f"no CPU quota possible: {self._backend.quota_unsupported_reason()}")
        return self._session

    def cgroup_info(self) -> dict[str, Any] | None:
        return self._backend.describe() if self._backend is not None else None

    # ---- one condition -------------------------------------------------------------------
    def run(self, requests: Sequence[InstanceRequest], *, timeout: float) -> list[
            InstanceOutcome]:
        if not requests:
            return []
        if any(r.cpus is not None for r in requests) and not self.uses_cgroups:
            raise UsageError(f"a CPU quota needs --kind container or vm, not {self.kind}")
        session = None
        if self.uses_cgroups:
            session = self._cgroups(any(r.cpus is not None for r in requests))
        commands = {r.index: self._command(r) for r in requests}
        self._timed_out = False
        watchdog = threading.Timer(timeout, self._on_timeout)
        watchdog.daemon = True
        launches: list[_Launch] = []
        try:
            for req in requests:
                with signals_deferred():
                    launch = self._spawn(req, commands[req.index], session)
                    launches.append(launch)
                    with self._lock:
                        self._live.append(launch)
            # Started with SIGINT/SIGTERM blocked, the watchdog thread inherits the mask, so
            # those signals always land in the main thread (where deferral works).
            with signals_deferred():
                watchdog.start()
            start = time.monotonic()
            for launch in launches:
                assert launch.go_w is not None
                os.write(launch.go_w, b"go\n")
            for launch in launches:
                if launch.loaded:
                    self._reap(launch)
            for launch in launches:
                if not launch.loaded:
                    self._close_go(launch)  # the idle instance's cat sees end-of-file
                    self._reap(launch)
            if self._timed_out:
                raise InstanceFailed(
                    f"instances did not finish within {timeout:g} s (killed)")
            return [self._outcome(launch, start) for launch in launches]
        finally:
            watchdog.cancel()
            with signals_deferred():
                for launch in launches:
                    self._cleanup(launch)

    def _command(self, req: InstanceRequest) -> list[str]:
        if req.workload is None:
            return [shutil.which("cat") or "/bin/cat"]
        program = req.workload.program
        binary = program if program.startswith("/") else str(programs.build(program))
        return [binary, *req.workload.args]

    def _spawn(self, req: InstanceRequest, command: list[str],
               session: CgroupSession | None) -> _Launch:
        cg: Cgroup | None = None
        scratch: Path | None = None
        if session is not None:
            cg = session.create(f"instance-{req.index}")
            if req.cpus is not None:
                cg.set_cpu_quota(req.cpus, req.period_us)
        if req.workload is not None and req.workload.needs_dir:
            scratch = Path(tempfile.mkdtemp(prefix=f"virtbench-inst{req.index}-",
                                            dir=self.options.workdir))
            command = [a.replace("{dir}", str(scratch)) for a in command]
        go_r, go_w = os.pipe()
        out_fd = os.memfd_create(f"vb-out-{req.index}", os.MFD_CLOEXEC)
        err_fd = os.memfd_create(f"vb-err-{req.index}", os.MFD_CLOEXEC)
        sh = shutil.which("sh") or "/bin/sh"
        argv = [sh, "-c", GATE, "vb-instance", *self.wrap(command)]
        env = dict(os.environ)
        env[MARKER_ENV] = f"{os.getpid()}.{self.token}-{req.index}"
        try:
            pid = os.posix_spawn(
                sh, argv, env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, go_r, 0),
                    (os.POSIX_SPAWN_DUP2, out_fd, 1),
                    (os.POSIX_SPAWN_DUP2, err_fd, 2),
                ],
                setsid=True,
                setsigmask=(),
                setsigdef=(signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT),
            )
        except OSError as exc:
            os.close(go_w)
            os.close(out_fd)
            os.close(err_fd)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            raise EnvironmentUnsupported(f"cannot start an instance: {exc}") from None
        finally:
            os.close(go_r)
        launch = _Launch(req, pid, go_w, out_fd, err_fd, cg, scratch)
        if cg is not None:
            try:
                cg.add(pid)
            except BaseException:
                self._cleanup(launch)
                raise
        return launch

    def _on_timeout(self) -> None:
        self._timed_out = True
        with self._lock:
            live = list(self._live)
        for launch in live:
            self._kill(launch)

    def _kill(self, launch: _Launch) -> None:
        if launch.status is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(launch.pid, signal.SIGKILL)
        if launch.cgroup is not None:
            with contextlib.suppress(EnvironmentUnsupported, OSError):
                launch.cgroup.kill()

    def _reap(self, launch: _Launch) -> None:
        if launch.status is not None:
            return
        _, status, rusage = os.wait4(launch.pid, 0)
        launch.status, launch.rusage, launch.ended = status, rusage, time.monotonic()

    @staticmethod
    def _close_go(launch: _Launch) -> None:
        if launch.go_w is not None:
            os.close(launch.go_w)
            launch.go_w = None

    def _cleanup(self, launch: _Launch) -> None:
        """Kill, reap, close, remove: never raises for what is already gone."""
        self._close_go(launch)
        self._kill(launch)
        if launch.status is None:
            with contextlib.suppress(ChildProcessError):
                self._reap(launch)
        for fd in (launch.out_fd, launch.err_fd, *launch.extra_fds):
            with contextlib.suppress(OSError):
                os.close(fd)
        launch.out_fd = launch.err_fd = -1
        launch.extra_fds = []
        if launch.cgroup is not None and self._session is not None:
            self._session.remove(launch.cgroup)
            launch.cgroup = None
        if launch.scratch is not None:
            shutil.rmtree(launch.scratch, ignore_errors=True)
            launch.scratch = None
        with self._lock:
            if launch in self._live:
                self._live.remove(launch)

    def _outcome(self, launch: _Launch, start: float) -> InstanceOutcome:
        assert launch.status is not None and launch.ended is not None
        wall = launch.ended - start
        cpu, accounting = self._cpu(launch)
        if not launch.loaded:
            return InstanceOutcome(launch.req.index, False, None, wall, {}, cpu, accounting)
        workload = launch.req.workload
        assert workload is not None
        out = _read_memfd(launch.out_fd)
        err = _read_memfd(launch.err_fd).strip()
        if launch.status != 0:
            detail = f": {err.splitlines()[-1]}" if err else ""
            raise InstanceFailed(f"instance {launch.req.index} ({workload.name}) failed "
                                 f"({_status_text(launch.status)}){detail}")
        try:
            result: WorkloadOutput = workload.parse(out)
        except (ValueError, KeyError, IndexError) as exc:
            raise InstanceFailed(
                f"instance {launch.req.index} ({workload.name}): unreadable output "
                f"({exc}): {out.strip()[:200]!r}") from None
        return InstanceOutcome(launch.req.index, True, result.seconds, wall, result.metrics,
                               cpu, accounting)

    def _cpu(self, launch: _Launch) -> tuple[CpuStats | None, str]:
        ru = launch.rusage
        if ru is None:
            return None, ""
        return CpuStats(usage_s=ru.ru_utime + ru.ru_stime, user_s=ru.ru_utime,
                        system_s=ru.ru_stime), "rusage"

    def close(self) -> None:
        with signals_deferred():
            with self._lock:
                live = list(self._live)
            for launch in live:
                self._cleanup(launch)
            if self._session is not None:
                session, self._session = self._session, None
                session.close()

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        info = self.cgroup_info()
        if info is not None:
            d["cgroup"] = info
        return d


class ProcessBackend(LocalBackend):
    """Instances are plain processes on the host (no isolation, no cgroup)."""

    kind: ClassVar[str] = "process"


class ContainerBackend(LocalBackend):
    """Instances are containers: PID/mount/UTS/IPC (and optionally network) namespaces via
    util-linux ``unshare``, plus one cgroup each for quota and accounting."""

    kind: ClassVar[str] = "container"
    uses_cgroups: ClassVar[bool] = True

    def namespaces(self) -> list[str]:
        return ["pid", "mount", "uts", "ipc", *(["net"] if self.options.net else [])]

    def wrap(self, argv: list[str]) -> list[str]:
        unshare = shutil.which("unshare") or "unshare"
        flags = ["--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--ipc"]
        if self.options.net:
            flags.append("--net")
        return [unshare, *flags, "--", *argv]

    def check(self, workload: WorkloadCommand | None, cpus: float | None) -> None:
        super().check(workload, cpus)
        if shutil.which("unshare") is None:
            raise EnvironmentUnsupported("containers need util-linux unshare: "
                                         "apt-get install util-linux")
        if os.geteuid() != 0:
            raise EnvironmentUnsupported("containers need root (namespaces and cgroups)")
        self._cgroups(cpus is not None)

    def _cpu(self, launch: _Launch) -> tuple[CpuStats | None, str]:
        if launch.cgroup is None or self._backend is None:
            return super()._cpu(launch)
        return launch.cgroup.cpu_stats(), f"cgroup v{self._backend.version}"

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["namespaces"] = self.namespaces()
        return d
