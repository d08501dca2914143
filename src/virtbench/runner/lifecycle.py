"""The one lifecycle of a result document, for the suite and every experiment.

A document is created ``running`` and saved at once; it is saved again after every step;
when the work ends it gets its final status and its end time and is saved a last time:

* the work returned: ``complete``, or ``partial`` when the work says some part failed
  (:attr:`Outcome.status`);
* Ctrl-C, SIGTERM or SIGHUP (turned into ``KeyboardInterrupt`` here): ``interrupted``;
* any other exception: ``failed``.

The exception is re-raised after the last save; a failing last save never hides it.

While it runs, the document records its owner (this process: host, pid, boot id, start
time) and a marker ``<data dir>/running/<id>.json`` says so, with the work directories the
run registers (:func:`track`). A run killed without a word (SIGKILL, power loss) leaves the
marker: the next virtbench command finds its owner gone, marks the document ``abandoned`` and
removes the directories (:mod:`virtbench.experiments.sweep`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal, TypeVar

from virtbench import paths
from virtbench.procfs import boot_id, start_time
from virtbench.results.model import ExperimentResult, Owner, RunResult, utc_now
from virtbench.sigmask import signals_deferred

Document = RunResult | ExperimentResult
D = TypeVar("D", RunResult, ExperimentResult)
INTERRUPT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def current_owner() -> Owner:
    pid = os.getpid()
    return Owner(hostname=socket.gethostname(), pid=pid, boot_id=boot_id(),
                 start_time=start_time(pid))


def owner_alive(owner: Owner) -> bool:
    """Whether the process that owns a document may still be running. Another host's
    documents are never judged (a shared home directory)."""
    if owner.hostname is not None and owner.hostname != socket.gethostname():
        return True
    if owner.boot_id is not None and owner.boot_id != boot_id():
        return False
    now = start_time(owner.pid)
    return now is not None and (owner.start_time is None or now == owner.start_time)


def running_dir() -> Path:
    return paths.data_dir() / "running"


_ACTIVE: list[tuple[Document, Path]] = []


def _write_marker(doc: Document, marker: Path) -> None:
    """Write the marker through a temporary file, with Ctrl-C held: a Ctrl-C between the
    write and the rename left ``.<id>.json.<pid>.tmp`` behind (kill points: run)."""
    assert doc.owner is not None
    text = json.dumps({"id": doc.id, "type": doc.type, "started": doc.started,
                       "owner": doc.owner.model_dump(mode="json")})
    with signals_deferred(), contextlib.suppress(OSError):
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, marker)


def track(path: Path, *, journal: bool = False) -> None:
    """Register a work directory (or file) of the running document(s): removed by the sweep
    if the run is killed without a word. ``journal=True``: a restore journal of kernel
    settings (:mod:`virtbench.experiments.sysctl`), replayed by the sweep instead."""
    for doc, marker in _ACTIVE:
        owned = _owned_list(doc, journal)
        if owned is not None and str(path) not in owned:
            owned.append(str(path))
            _write_marker(doc, marker)


def new_workdir(prefix: str, base: Path | str | None = None, *, file: bool = False) -> Path:
    """A fresh directory (or empty file) ``<base>/<prefix><random>``, registered with the
    running document(s) *before* it is made: a SIGKILL between ``mkdtemp`` and ``track``
    left a directory nobody had registered (bench/kill_points.py, tests/test_sweep.py).
    Made exclusively (mode 0700/0600, no link followed), like ``mkdtemp``/``mkstemp``."""
    root = Path(base) if base is not None else Path(tempfile.gettempdir())
    for _ in range(100):
        path = root / f"{prefix}{secrets.token_hex(5)}"
        track(path)
        try:
            if file:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 0o600))
            else:
                path.mkdir(mode=0o700)
        except FileExistsError:
            untrack(path)
            continue
        except BaseException:
            # A Ctrl-C can land after the directory (or file) was made and before it is
            # returned: no caller can remove it then, so remove it here before forgetting it.
            with contextlib.suppress(OSError):
                if file:
                    path.unlink()
                else:
                    path.rmdir()
            untrack(path)
            raise
        return path
    raise FileExistsError(f"{root}: no free name for {prefix}*")


def untrack(path: Path, *, journal: bool = False) -> None:
    """The run removed ``path`` itself (or replayed the journal)."""
    for doc, marker in _ACTIVE:
        owned = _owned_list(doc, journal)
        if owned is not None and str(path) in owned:
            owned.remove(str(path))
            _write_marker(doc, marker)


def remove_workdir(path: Path) -> bool:
    """Remove a work directory (or file) of a run, with Ctrl-C held so that it is never cut
    in half, and forget it (:func:`untrack`) only once it is gone; ``False`` if it could not
    be removed (it stays registered: removed when the document ends, or by the sweep). A
    link is removed, never followed. A program stopped a moment ago (postmark, or a dead
    run's child dying of its parent-death signal) may still be finishing a file creation:
    ``rmtree`` then meets a file made after its listing (ENOTEMPTY, seen under load), so it
    tries again for about a second."""
    with signals_deferred():
        for attempt in range(6):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
            if not os.path.lexists(path):
                untrack(path)
                return True
            time.sleep(0.05 * 2**attempt)
        return False


def _owned_list(doc: Document, journal: bool) -> list[str] | None:
    if doc.owner is None:
        return None
    return doc.owner.journals if journal else doc.owner.workdirs


@contextlib.contextmanager
def _owned(doc: Document) -> Iterator[list[bool]]:
    """Record the owner and write the marker; remove the marker once the caller says the
    final document is saved (``ended[0] = True``). Otherwise it stays for the sweep."""
    doc.owner = current_owner()
    marker = running_dir() / f"{doc.id}.json"
    _write_marker(doc, marker)
    _ACTIVE.append((doc, marker))
    ended = [False]
    try:
        yield ended
    finally:
        with signals_deferred():  # a second Ctrl-C must not skip the removals
            _ACTIVE.remove((doc, marker))
            if _remove_leftovers(doc) and ended[0]:
                with contextlib.suppress(OSError):
                    marker.unlink()


def _remove_leftovers(doc: Document) -> bool:
    """At the document's end, its work directories that a cleanup missed (cut short, or a
    path nobody removed) are removed, except those a still-running outer document also
    owns (tune's experiment). ``False`` if one could not be: the marker then stays and the
    sweep tries again."""
    if doc.owner is None:
        return True
    others = {p for d, _ in _ACTIVE for p in (_owned_list(d, False) or [])}
    for p in [p for p in doc.owner.workdirs if p not in others]:
        if remove_workdir(Path(p)):
            doc.owner.workdirs.remove(p)
    return not [p for p in doc.owner.workdirs if p not in others]


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
    with interrupt_signals(), _owned(doc) as ended:
        failing = True
        try:
            save(doc)
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
            with signals_deferred():
                _end(doc, save, on_end, failing, ended)


def _end(doc: D, save: Callable[[D], object], on_end: Callable[[], None] | None,
         failing: bool, ended: list[bool]) -> None:
    doc.finished = utc_now()
    if on_end is not None:
        on_end()
    if failing:  # the error in flight is the one to report
        with contextlib.suppress(Exception):
            save(doc)
            ended[0] = True
    else:
        save(doc)
        ended[0] = True
