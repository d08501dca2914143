"""A Ctrl-C is never lost: one that Python swallows is delivered again.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when the signal
handler runs. Where that is a finalizer, a weakref callback (the import system's module
locks use one: ``Exception ignored in: <function _get_module_lock.<locals>.cb>``) or an
at-fork hook, the exception is "unraisable": Python prints it and carries on, and the
command ran to its end as if no Ctrl-C had been pressed (seen once in 60 SIGINTs at
startup). While :class:`Redeliver` is active, such a ``KeyboardInterrupt`` is not printed;
a helper thread sends the signal again to the main thread 10 ms later, where it arrives
outside the callback (held, like any other, while signals are deferred).
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from types import TracebackType
from typing import Any

RESEND_AFTER = 0.01
"""Seconds: the main thread holds the interpreter lock for up to 5 ms at a time."""


class Redeliver:
    """Context manager (main thread): a swallowed ``KeyboardInterrupt`` is raised again."""

    def __init__(self) -> None:
        self.swallowed = 0
        """How many times a ``KeyboardInterrupt`` was swallowed (and sent again)."""
        self._lock = threading.Lock()
        self._active = False
        self._main = threading.get_ident()
        self._previous: Any = sys.unraisablehook

    def __enter__(self) -> Redeliver:
        self._main = threading.get_ident()
        self._previous = sys.unraisablehook
        self._active = True
        sys.unraisablehook = self._hook
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._active = False
        if sys.unraisablehook == self._hook:
            sys.unraisablehook = self._previous

    def _hook(self, unraisable: Any) -> None:
        exc_type = getattr(unraisable, "exc_type", None)
        if isinstance(exc_type, type) and issubclass(exc_type, KeyboardInterrupt):
            self.swallowed += 1
            # Not from here: this runs inside the callback that swallowed it, and a signal
            # handled here would be swallowed again. Not threading.Thread.start() either: it
            # waits for the thread, whose signal would then land in this hook.
            _thread.start_new_thread(self._resend, ())
            return
        self._previous(unraisable)

    def _resend(self) -> None:
        time.sleep(RESEND_AFTER)  # the hook and the callback have returned by then
        with self._lock:
            if not self._active:
                return
            for sig in (signal.SIGINT, signal.SIGTERM):  # whichever raises KeyboardInterrupt
                if callable(signal.getsignal(sig)):
                    signal.pthread_kill(self._main, sig)
                    return
