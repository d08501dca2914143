"""Options and output helpers shared by the store commands (import, runs, show, export, rm,
db, compare)."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from virtbench.errors import UsageError
from virtbench.safeio import atomic_write, clip, write_error


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", metavar="URL", default=None,
        help="index database URL (default: $VIRTBENCH_DB, else SQLite in the data dir); "
             "e.g. postgresql+psycopg://user@host/db",
    )


def add_label_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                        help=help_text)


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--label {item!r}: expected KEY=VALUE")
        if any(not ch.isprintable() for ch in item):
            # A newline or tab would break every table that lists labels.
            raise UsageError(f"--label {item!r}: control characters are not allowed")
        labels[key] = value.strip()
    return labels


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
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise write_error(path, exc) from None
        return
    atomic_write(Path(os.path.realpath(path)), text)


def info(message: str) -> None:
    sys.stderr.write(f"virtbench: {message}\n")
    sys.stderr.flush()


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                right: Sequence[int] = ()) -> str:
    """Columns padded with spaces; ``right`` lists the column numbers to right-align."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def fmt(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [fmt(headers), fmt(["-" * w for w in widths])]
    lines.extend(fmt(r) for r in rows)
    return "\n".join(lines) + "\n"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                   right: Sequence[int] = ()) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
    lines.extend("| " + " | ".join(esc(c) for c in r) + " |" for r in rows)
    return "\n".join(lines) + "\n"


_CHANGE_STYLES = (("+ ", "bold green"), ("- ", "bold red"), ("+?", "green"), ("-?", "red"),
                  ("~ ", "dim"))


def _style(cell: str) -> str:
    for prefix, style in _CHANGE_STYLES:
        if cell.startswith(prefix):
            return style
    return ""


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                right: Sequence[int] = (), title: str | None = None,
                color_changes: bool = False) -> None:
    """A rich table on a terminal, plain aligned text otherwise (pipes, files, tests).

    ``color_changes``: cells starting ``+ ``/``- ``/``+?``/``-?``/``~ `` (compare's change
    marks) are coloured on a terminal."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_lines=False)
        for i, h in enumerate(headers):
            table.add_column(h, justify="right" if i in right else "left")
        for r in rows:
            table.add_row(*(Text(c, style=_style(c) if color_changes else "") for c in r))
        Console().print(table)
        return
    if title:
        sys.stdout.write(title + "\n")
    sys.stdout.write(plain_table(headers, rows, right))


def fmt_num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"
