"""The one lifecycle of a result document, for the suite and every experiment.

A document is created ``running`` and saved at once; it is saved again after every step;
when the work ends it gets its final status and its end time and is saved a last time:

* the work returned: ``complete``, or ``partial`` when the work says some part failed
  (:attr:`Outcome.status`);
* Ctrl-C, SIGTERM or SIGHUP (turned into ``KeyboardInterrupt`` here): ``interrupted``;
* any other exception: ``failed``.

The exception is re-raised after the last save; a failing last save never hides it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Literal, TypeVar

from virtbench.results.model import ExperimentResult, RunResult, utc_now

Document = RunResult | ExperimentResult
D = TypeVar("D", RunResult, ExperimentResult)
INTERRUPT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@dataclass
class Outcome:
    """What the work says about its end; ``status = "partial"`` when some part failed."""

    status: Literal["complete", "partial"] = "complete"


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP behave like Ctrl-C inside the block (so every ``finally`` runs);
    the previous handlers come back after it. Only the main thread can install handlers:
    elsewhere the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise_interrupt) for s in INTERRUPT_SIGNALS}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def lifecycle(doc: D, save: Callable[[D], object],
              on_end: Callable[[], None] | None = None) -> Iterator[Outcome]:
    """Own ``doc`` from its creation to its final status (see the module docstring).

    ``save(doc)`` is called now, by the work after each step, and at the end; ``on_end``
    runs before the last save (figures that cover the whole run: wall time, summary)."""
    outcome = Outcome()
    with interrupt_signals():
        save(doc)
        failing = True
        try:
            yield outcome
            doc.status = outcome.status
            failing = False
        except KeyboardInterrupt:
            doc.status = "interrupted"
            raise
        except BaseException:
            doc.status = "failed"
            raise
        finally:
            doc.finished = utc_now()
            if on_end is not None:
                on_end()
            if failing:  # the error in flight is the one to report
                with contextlib.suppress(Exception):
                    save(doc)
            else:
                save(doc)
