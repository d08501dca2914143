"""Options and output helpers shared by the store commands (import, runs, show, export, rm,
db, compare)."""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from virtbench.errors import UsageError
from virtbench.results.labels import parse_labels as parse_labels
from virtbench.safeio import atomic_write, clip, write_error
from virtbench.table import Col, markdown, render
from virtbench.table import print_table as table_print


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", metavar="URL", default=None,
        help="index database URL (default: $VIRTBENCH_DB, else SQLite in the data dir); "
             "e.g. postgresql+psycopg://user@host/db",
    )


def add_label_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                        help=help_text)




def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False, default=str) + "\n")


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to the user's ``-o`` file: atomically (``safeio.atomic_write``: a
    temporary file created exclusively next to it, fsync, rename) for a regular file, so a
    failure leaves the old content and no temporary file; directly for a device or FIFO
    (``/dev/stdout``, a pipe), which a rename would replace by a plain file. A symlink the
    user named is followed (its target is written, the link stays). Any OSError is one
    ``UsageError`` line naming the file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise write_error(path, exc) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"{clip(path)}: cannot write: is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        try:
            fd = _open_nonregular(path, mode)
            with open(fd, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise write_error(path, exc) from None
        return
    atomic_write(Path(os.path.realpath(path)), text)


FIFO_READER_WAIT = 10.0
"""Seconds ``-o FIFO`` waits for a process to open the FIFO for reading."""


def _open_nonregular(path: Path, mode: int) -> int:
    """Open a device or FIFO for writing. A FIFO nobody reads would block ``open`` forever:
    wait up to ``FIFO_READER_WAIT`` seconds for a reader, then say so."""
    if not stat.S_ISFIFO(mode):
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
    deadline = time.monotonic() + FIFO_READER_WAIT
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if time.monotonic() >= deadline:
                raise UsageError(f"{clip(path)}: cannot write: no process reads this FIFO "
                                 f"(waited {FIFO_READER_WAIT:.0f} s)") from None
            time.sleep(0.1)
            continue
        os.set_blocking(fd, True)
        return fd


def info(message: str) -> None:
    """A progress line on stderr; silent with ``-q`` (virtbench.console)."""
    from virtbench import console

    console.info(message)


def _columns(headers: Sequence[str], right: Sequence[int],
             style: Callable[[str], str] | None = None,
             wrap: Sequence[int] = ()) -> list[Col]:
    right_set, wrap_set = set(right), set(wrap)
    return [Col(h, right=i in right_set, wrap=i in wrap_set,
                style=None if i in right_set else style) for i, h in enumerate(headers)]


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                right: Sequence[int] = ()) -> str:
    """Columns padded with spaces, one line per row (``virtbench.table.render``)."""
    return render(_columns(headers, right), rows)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                   right: Sequence[int] = ()) -> str:
    return markdown(_columns(headers, right), rows)


_CHANGE_STYLES = (("+ ", "1;32"), ("- ", "1;31"), ("+?", "32"), ("-?", "31"), ("~ ", "2"))


def change_style(cell: str) -> str:
    """compare's change marks (``+ ``/``- ``/``+?``/``-?``/``~ ``) as colours."""
    for prefix, style in _CHANGE_STYLES:
        if cell.startswith(prefix):
            return style
    return ""


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                right: Sequence[int] = (), title: str | None = None,
                color_changes: bool = False, wrap: Sequence[int] = ()) -> None:
    """Print with the one table renderer (``virtbench.table``): fitted to the terminal or
    ``$COLUMNS`` (``wrap`` lists the columns that may wrap; the others are never cut), plain
    one-line rows in a pipe. ``color_changes``: compare's change marks are coloured."""
    table_print(_columns(headers, right, change_style if color_changes else None, wrap), rows,
                title=title)


def fmt_num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"
