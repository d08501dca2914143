"""The store lock: one ``fcntl.flock`` on ``data_dir()/store.lock`` around every
read-modify-write of master documents and their index rows.

Without it, 8 concurrent re-imports of one report with different ``--label``s each read the
master file, add their label and write it back: the last writer wins, labels are lost, and
the index (written in another order) disagrees with the file (docs/reliability.md).

The lock is re-entrant within a process (a nested ``store_lock()`` does not deadlock on its
own ``flock``), and released by the kernel if the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from virtbench import paths
from virtbench.errors import UsageError
from virtbench.safeio import clip

_local = threading.RLock()
_depth = 0
_fd: int | None = None


@contextlib.contextmanager
def store_lock() -> Iterator[None]:
    """Hold the store lock (blocking until other virtbench processes release it)."""
    global _depth, _fd
    with _local:
        if _depth == 0:
            path = paths.data_dir() / "store.lock"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                raise UsageError(f"{clip(path)}: cannot open the store lock: "
                                 f"{exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            _fd = fd
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0 and _fd is not None:
                fd, _fd = _fd, None
                os.close(fd)  # closing the only descriptor releases the flock
