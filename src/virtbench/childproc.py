"""Programs virtbench starts and waits for, tied to its life, with no Python in the child.

:func:`popen` starts a program behind ``vbexec`` (``c/vbexec.c``): the kernel signals the
program when virtbench dies, even by ``kill -9`` (``PR_SET_PDEATHSIG``), and a Ctrl-C or a
SIGTERM is held while it starts, so virtbench always knows the pid of what it started and
stops it. Python's ``preexec_fn`` did that in the child between fork and exec; that made
CPython fork instead of vfork and run the interpreter's at-fork hooks, where a Ctrl-C is
swallowed (``Exception ignored in ... _releaseLock``), and a Ctrl-C reaching the child while
it ran Python became ``SubprocessError: Exception occurred in preexec_fn`` in virtbench. The
``subprocess`` options that need no Python in the child (``process_group``, ``pass_fds``,
``start_new_session``) pass through; only the parent-death signal needs the wrapper.

Without a C compiler (``vbexec`` cannot be built: a QEMU-only use), the program is started
directly, without the parent-death signal, and virtbench says so once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from virtbench.errors import EnvironmentUnsupported
from virtbench.sigmask import HELD as HELD
from virtbench.sigmask import signals_deferred as signals_deferred
from virtbench.sigmask import start_thread as start_thread

PROGRAM_NAME = "vbexec"
SOURCE_DIR = Path(__file__).resolve().parent / "c"
CFLAGS: tuple[str, ...] = ("-O2", "-Wall")

_WRAPPER: list[Path] = []
_WARNED: list[str] = []


def wrapper() -> Path | None:
    """The ``vbexec`` binary (built on first use, from the one build cache), or ``None``
    when it cannot be built here."""
    if _WRAPPER and _WRAPPER[0].is_file():
        return _WRAPPER[0]
    from virtbench import toolchain

    try:
        path = toolchain.build_program(
            toolchain.Program(PROGRAM_NAME, SOURCE_DIR, (f"{PROGRAM_NAME}.c",)), CFLAGS)
    except EnvironmentUnsupported as exc:
        if not _WARNED:
            from virtbench import console

            _WARNED.append(str(exc))
            console.warn(f"cannot build {PROGRAM_NAME} ({exc}): the programs virtbench starts "
                         "are not stopped if virtbench is killed outright")
        return None
    _WRAPPER[:] = [path]
    return path


def popen(argv: Sequence[str], *, death_signal: int = signal.SIGTERM,
          **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, **kwargs)`` for a program that gets ``death_signal`` when
    virtbench dies. A Ctrl-C or SIGTERM that arrives while it starts is delivered once it
    has started, as ``KeyboardInterrupt`` from here: the program is then stopped (its
    ``death_signal``, SIGKILL after 10 s) before this returns. ``kwargs`` may not hold
    ``preexec_fn`` (the point of this module)."""
    if "preexec_fn" in kwargs:
        raise TypeError("popen() runs no Python in the child: no preexec_fn")
    exe = wrapper()
    if exe is None:  # held signals would stay blocked in the program: start it plainly
        return subprocess.Popen(list(argv), **kwargs)
    cmd = [str(exe), str(os.getpid()), str(int(death_signal)), *argv]
    proc: subprocess.Popen[Any] | None = None
    try:
        with signals_deferred():
            proc = subprocess.Popen(cmd, **kwargs)
    except BaseException:
        if proc is not None:  # the held signal, delivered just after the start
            stop(proc, death_signal)
        raise
    return proc


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Send ``sig`` to a started program unless it has ended, wait up to ``grace`` seconds,
    then SIGKILL it; it is reaped when this returns."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
