"""Saving result documents: the master JSON file, then the index.

Kept apart from ``virtbench.store.store`` so that importing ``save_and_record`` (every
command that measures does) does not import SQLAlchemy until a document is actually saved.
"""

from __future__ import annotations

import os
from pathlib import Path

from virtbench.errors import VirtbenchError
from virtbench.results.model import ExperimentResult, RunResult
from virtbench.sigmask import signals_deferred
from virtbench.store.master import master_path, warn

__all__ = ["master_path", "save_and_record", "warn"]

Document = RunResult | ExperimentResult


_WARNED: set[str] = set()

FLEET_TARGET_ENV = "VIRTBENCH_FLEET_TARGET"
"""Set to 1 by ``virtbench fleet`` for the command it runs on a target: save the document,
index nothing."""


def _short(exc: BaseException) -> str:
    try:
        from virtbench.store.store import _short as short
    except ImportError:  # SQLAlchemy missing: say what failed
        return f"{type(exc).__name__}: {exc}"[:300]
    return short(exc)


def save_and_record(doc: Document, *, output: Path | None = None,
                    db_url: str | None = None) -> Path:
    """Write the master JSON (and a copy at ``output``), then index it.

    Cheap and idempotent: call it after every test or step. A database problem is a
    warning on stderr (once per problem per process); the JSON is always written first.
    """
    from virtbench.store.lock import store_lock

    path = master_path(doc)
    with store_lock():  # the file and its index row change together (see store.lock)
        doc.save(path)
        if output is not None and output.resolve() != path.resolve():
            doc.save(output)
        if os.environ.get(FLEET_TARGET_ENV) == "1":
            # a fleet target keeps no index (its lean bundle has no SQLAlchemy): the
            # controller indexes the document it fetches
            return path
        try:
            from virtbench.store.store import open_store

            # Ctrl-C held for the index write (milliseconds): interrupted inside its commit
            # or while its connection went back to the pool, it left SQLite's write lock held
            # in this process, and the interrupted run's final save then waited out the 30 s
            # busy timeout (CI: a Ctrl-C of `io postmark` took 30.1 s to end, twice).
            with signals_deferred():
                open_store(db_url).record(doc, path)
        except Exception as exc:  # the document is safe; the index can be rebuilt later
            message = str(exc) if isinstance(exc, VirtbenchError) else _short(exc)
            if message not in _WARNED:
                _WARNED.add(message)
                warn(f"run {doc.id} saved to {path} but not indexed ({message}); "
                     "`virtbench db rebuild` will index it later")
    return path
