"""Executors run one pass: N copies of a workload started together, then waited for.

``LocalExecutor`` forks real processes and sleeps in the kernel until they end (one
``poll`` on each copy's pidfd, see :func:`wait_quietly`), so Python does nothing while a
workload is being timed. Each copy leads a process group of its own so
that on Ctrl-C / SIGTERM the whole tree of every copy is killed, but stays in the caller's
session, as UnixBench's copies stay in the session of ``./Run``: with the kernel's session
autogroups (``kernel.sched_autogroup_enabled``, on by default in Debian), a new session per
copy would give N copies N shares of the CPU against other sessions' load instead of one,
and inflate multi-copy scores on a machine that is not idle. ``FakeExecutor`` returns
scripted outcomes so the scheduler, statistics and reports can be tested without timing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class CopyOutcome:
    """What one copy left behind: its stdout (the COUNT line), exit status and wall time."""

    stdout: str
    stderr: str
    returncode: int
    wall: float
    """Seconds from the executor starting the copy to reaping it."""


class _StartFailed(Exception):
    pass


class Executor(Protocol):
    def run_pass(
        self, argvs: Sequence[Sequence[str]], cwds: Sequence[Path], timeout: float
    ) -> list[CopyOutcome]: ...

    def settle(self, seconds: float) -> None:
        """Before a pass: flush dirty data and let the machine come to rest for ``seconds``."""
        ...


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group ``proc`` leads, only while the leader is not reaped: a
    process's id (the group's id) stays reserved while it runs or is a zombie; once reaped
    it can be reused within seconds by an unrelated process group (fork-heavy workloads
    cycle through a 32,768-pid space), which ``killpg`` would then kill."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class LocalExecutor:
    """Runs the copies as real processes on this host."""

    def __init__(self, env: dict[str, str] | None = None, gate: Path | None = None) -> None:
        """``gate``: the ``vbgate`` program; with it, copies wait behind a pipe until all of
        them have been started, then begin together."""
        self.env = env
        self.gate = gate

    def settle(self, seconds: float) -> None:
        """UnixBench's ``sync; sleep 1; sync; sleep 2`` before every pass, scaled to
        ``seconds`` (3 s in standard mode): the previous pass's dirty pages are written out
        and the machine is quiet when the pass starts, so no pass pays for another's I/O."""
        if seconds <= 0:
            return
        os.sync()
        time.sleep(seconds / 3)
        os.sync()
        time.sleep(seconds * 2 / 3)

    def run_pass(
        self, argvs: Sequence[Sequence[str]], cwds: Sequence[Path], timeout: float
    ) -> list[CopyOutcome]:
        try:
            return self._run_pass(argvs, cwds, timeout)
        except _StartFailed as exc:
            return [CopyOutcome("", f"{exc}\n", 127, 0.0) for _ in argvs]

    def _run_pass(
        self, argvs: Sequence[Sequence[str]], cwds: Sequence[Path], timeout: float
    ) -> list[CopyOutcome]:
        procs: list[subprocess.Popen[bytes]] = []
        starts: list[float] = []
        walls: list[float] = []
        gate_r, gate_w = os.pipe() if self.gate is not None else (-1, -1)
        try:
            for argv, cwd in zip(argvs, cwds, strict=True):
                if self.gate is not None:
                    argv = [str(self.gate), str(gate_r), *argv]
                out = open(cwd / ".vb-stdout", "wb")  # noqa: SIM115 - closed below
                err = open(cwd / ".vb-stderr", "wb")  # noqa: SIM115
                try:
                    starts.append(time.monotonic())
                    procs.append(
                        subprocess.Popen(
                            list(argv), cwd=cwd, stdout=out, stderr=err,
                            stdin=subprocess.DEVNULL, process_group=0, env=self.env,
                            pass_fds=(gate_r,) if self.gate is not None else (),
                        )
                    )
                except OSError as exc:
                    # cannot start the program at all: every copy fails the same way
                    raise _StartFailed(f"cannot start {argv[0]}: {exc.strerror}") from None
                finally:
                    out.close()
                    err.close()
            if self.gate is not None:  # open the gate: every copy starts now
                os.close(gate_w)
                gate_w = -1
                now = time.monotonic()
                starts = [now] * len(starts)
            deadline = time.monotonic() + timeout
            for i, proc in enumerate(procs):
                remaining = max(0.1, deadline - time.monotonic())
                # Ended, not reaped: its group stays ours to kill below (see _kill_group).
                if not wait_ended(proc, remaining):
                    _kill_group(proc)
                walls.append(time.monotonic() - starts[i])
        except BaseException:
            for proc in procs:
                _kill_group(proc)
            for proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            raise
        finally:
            for fd in (gate_r, gate_w):
                if fd >= 0:
                    os.close(fd)
            # Children of copies (shell scripts' pipelines) must not outlive the pass: kill
            # each group while its leader is unreaped, then reap the leaders.
            for proc in procs:
                _kill_group(proc)
            for proc in procs:
                if proc.returncode is None:
                    proc.wait()
        outcomes = []
        for proc, cwd, wall in zip(procs, cwds, walls, strict=True):
            outcomes.append(
                CopyOutcome(
                    stdout=_read_and_remove(cwd / ".vb-stdout"),
                    stderr=_read_and_remove(cwd / ".vb-stderr"),
                    returncode=proc.returncode,
                    wall=wall,
                )
            )
        return outcomes


def wait_quietly(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``proc`` to end, asleep in the kernel the whole
    time; True when it ended (and is reaped), False on timeout.

    ``Popen.wait(timeout=...)`` polls: it wakes every 50 ms to try ``waitpid(WNOHANG)``,
    20 wake-ups a second on a CPU the timed copies are using. The process's pidfd
    (Linux >= 5.3) becomes readable when it ends, so one ``poll`` covers the whole pass. An
    older kernel falls back to polling ``waitid``."""
    if not wait_ended(proc, timeout):
        return False
    proc.wait()  # it has ended: this reaps it at once
    return True


def wait_ended(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Like ``wait_quietly`` but without reaping ``proc``: it stays a zombie, so its pid
    (and the id of the process group it leads) cannot be reused until ``proc.wait()``."""
    if proc.returncode is not None:
        return True
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG):
                    return True
            except ChildProcessError:  # reaped by someone else
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        # PEP 475: a signal that does not raise resumes the poll with the time left.
        ready = poller.poll(max(0, int(timeout * 1000)))
    finally:
        os.close(fd)
    return bool(ready)


def _read_and_remove(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    path.unlink(missing_ok=True)
    return text


class FakeExecutor:
    """Scripted executor for tests: ``script(argv, copy_index, pass_index)`` -> outcome."""

    def __init__(self, script: Callable[[Sequence[str], int, int], CopyOutcome]) -> None:
        self.script = script
        self.calls: list[list[list[str]]] = []
        self.settles: list[float] = []

    def settle(self, seconds: float) -> None:
        self.settles.append(seconds)  # recorded, not slept: tests need no real time

    def run_pass(
        self, argvs: Sequence[Sequence[str]], cwds: Sequence[Path], timeout: float
    ) -> list[CopyOutcome]:
        pass_index = len(self.calls)
        self.calls.append([list(a) for a in argvs])
        return [self.script(argv, i, pass_index) for i, argv in enumerate(argvs)]
