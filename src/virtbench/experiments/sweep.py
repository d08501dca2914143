"""The sweep on start: what a killed virtbench left behind, cleaned by the next command.

Every virtbench command calls :func:`sweep` before it runs. It costs a directory listing and
a ``stat`` when nothing was left (the usual case). It finds:

* markers in ``<data dir>/running/`` whose owner is gone (see
  :mod:`virtbench.runner.lifecycle`): the sysctl journals they own (a tune's) are replayed,
  their work directories (the experiment a tune ran in its process included) are removed,
  their document (still ``running``) is marked ``abandoned`` and indexed again, and cgroup
  sessions of dead processes are removed;
* a tune journal no marker owns whose tune process is gone: the settings it journaled are
  restored;
* temporary files of a write that was killed between its create and its rename
  (``safeio.atomic_write``: ``.<name>.<pid>-<random>.tmp`` of a dead pid) in the results
  directory, the data directory and ``running/``.

Each finding is one line on stderr. A problem while cleaning is a warning, never an error:
the command the user asked for still runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from virtbench import paths

MARKER_MAX_BYTES = 1 << 20


def _say(message: str) -> None:
    from virtbench import console

    console.warn(message)


def sweep(say: Callable[[str], None] = _say) -> list[str]:
    """Clean what dead runs left; returns the ids of the documents marked abandoned."""
    abandoned: list[str] = []
    running = paths.data_dir() / "running"
    try:
        markers = sorted(p for p in running.iterdir() if p.suffix == ".json")
    except OSError:
        markers = []
    for marker in markers:
        with contextlib.suppress(OSError, ValueError):
            found = _sweep_marker(marker, say)
            if found:
                abandoned.append(found)
    _sweep_marker_temps(running)
    for d in (paths.results_dir(), paths.data_dir(), running):
        _sweep_write_temps(d)
    # Always, not only after an abandoned document: a run killed before it opened its
    # document (cap calibrates in a cgroup first) left its cgroups, and no marker said so.
    _sweep_cgroups(say)
    _sweep_journal(say)
    return abandoned


def _sweep_marker_temps(running: Path) -> None:
    """Remove ``.<id>.json.<pid>.tmp``: a marker being written when its process was killed."""
    from virtbench.toolchain import _alive

    try:
        entries = list(running.iterdir())
    except OSError:
        return
    for p in entries:
        parts = p.name.rsplit(".", 2)
        if (p.name.startswith(".") and len(parts) == 3 and parts[2] == "tmp"
                and parts[1].isdigit() and not _alive(int(parts[1]))):
            with contextlib.suppress(OSError):
                p.unlink()


def _sweep_write_temps(directory: Path) -> None:
    """Remove ``atomic_write`` temporaries whose writer is gone (one listing; names only)."""
    from virtbench.safeio import write_temp_pid
    from virtbench.toolchain import _alive

    try:
        with os.scandir(directory) as it:
            names = [e.name for e in it if e.name.startswith(".") and e.name.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        pid = write_temp_pid(name)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):
                (directory / name).unlink()


def _read_marker(marker: Path) -> dict[str, Any] | None:
    fd = os.open(marker, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if not os.path.isfile(marker):
            return None
        data = json.loads(f.read(MARKER_MAX_BYTES))
    return data if isinstance(data, dict) else None


def _sweep_marker(marker: Path, say: Callable[[str], None]) -> str | None:
    from pydantic import ValidationError

    from virtbench.results.model import Owner
    from virtbench.runner.lifecycle import owner_alive

    data = _read_marker(marker)
    try:
        owner = Owner.model_validate(data.get("owner") if data else None)
    except ValidationError:
        marker.unlink()  # not ours to understand: a marker is only a hint
        return None
    if owner_alive(owner):
        return None
    assert data is not None
    for journal in owner.journals:  # settings first: they outlast any file
        _sweep_journal(say, Path(journal))
    removed = [d for d in owner.workdirs if _remove_workdir(Path(d))]
    doc_id = str(data.get("id", ""))
    marked = _mark_abandoned(doc_id, str(data.get("started", "")), owner.pid)
    marker.unlink()
    what = f"document {doc_id} marked abandoned" if marked else f"run {doc_id} had ended"
    say(f"a virtbench run (pid {owner.pid}) was killed: {what}"
        + (f", removed {', '.join(removed)}" if removed else ""))
    return doc_id if marked else None


def _remove_workdir(path: Path) -> bool:
    """Remove a work directory a dead run registered: only virtbench's own temporary names
    (``virtbench-...``), never a link."""
    if not path.name.startswith("virtbench-") or path.is_symlink() or not path.exists():
        return False
    from virtbench.runner.lifecycle import remove_workdir

    return remove_workdir(path)


def _mark_abandoned(doc_id: str, started: str, pid: int) -> bool:
    from virtbench.results.model import load_any, utc_now
    from virtbench.store import save_and_record
    from virtbench.store.files import master_path

    path = paths.results_dir() / f"{started[:10]}-{doc_id}.json"
    if not doc_id or not path.is_file():
        return False
    doc = load_any(path)
    if doc.status != "running" or master_path(doc) != path:
        return False
    doc.status = "abandoned"
    doc.finished = doc.finished or utc_now()
    doc.notes.append(f"abandoned: its process (pid {pid}) ended without finishing it "
                     "(killed); found by the next virtbench command")
    save_and_record(doc)
    return True


def _sweep_cgroups(say: Callable[[str], None]) -> None:
    try:
        from virtbench import cgroups

        backend = cgroups.detect()
        removed = cgroups.sweep_stale(backend)
    except Exception:  # no cgroups here: nothing to sweep
        return
    for d in removed:
        say(f"removed the cgroup {d} of a killed run")


def _sweep_journal(say: Callable[[str], None], journal: Path | None = None) -> None:
    """Replay a tune journal whose tune is gone: one its dead owner's marker names, or the
    default one (a tune killed before its marker named it, or an older virtbench's)."""
    journal = journal or paths.data_dir() / "tune-journal.json"
    if not journal.is_file():
        return
    from virtbench.errors import VirtbenchError
    from virtbench.experiments import sysctl

    try:
        doc, outcomes = sysctl.restore_journal(journal)
    except VirtbenchError as exc:
        if "still running" not in str(exc):
            say(f"a killed tune run left settings changed: {exc}")
        return
    if doc is None:
        return
    done = ", ".join(f"{o.key}={o.now}" for o in outcomes if o.ok)
    bad = [o for o in outcomes if not o.ok]
    say(f"a killed tune run (pid {doc.get('pid')}) left settings changed: restored {done}"
        + (f"; NOT restored: {', '.join(o.key for o in bad)} (run `virtbench tune --restore`)"
           if bad else ""))
