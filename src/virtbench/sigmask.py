"""Holding Ctrl-C, SIGTERM and SIGHUP while something must not be cut short (starting a
program, a cleanup, a restore), and helper threads that never take them. A leaf module:
``toolchain`` (its compile pool) and ``childproc`` (starting programs) both use it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

HELD = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
"""What the CLI turns into ``KeyboardInterrupt`` (SIGHUP: a closed terminal)."""


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP during a start, a cleanup or a restore: a Ctrl-C must not
    cut it short. Pending signals are delivered when the block ends. The one holder of
    these signals in virtbench (the lifecycle's final save, cgroup creation and removal,
    starting programs, removing work directories). In a helper thread it holds them for
    that thread only, which changes nothing: helpers never take them (:func:`start_thread`)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def start_thread(thread: threading.Thread) -> None:
    """Start a helper thread that never takes SIGINT/SIGTERM/SIGHUP (it inherits the mask
    they are held with while it starts): the kernel gives a process's signal to any thread
    that does not block it, and taken by a helper, a Ctrl-C neither wakes the main thread
    from a blocking wait (delayed until it wakes) nor respects the main thread's deferral.
    Threads of a pool: submit the work inside :func:`signals_deferred`."""
    with signals_deferred():
        thread.start()
