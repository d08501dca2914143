"""The one text-table renderer of every CLI table (docs/runs.md "Tables").

Rules:

- **Piped output stays machine-friendly**: when stdout is not a terminal and ``$COLUMNS`` is
  not set, a table is one line per row, columns padded with spaces, nothing wrapped or cut.
- **Tables fit the terminal** (or ``$COLUMNS``): columns marked ``wrap`` (names, notes)
  wrap at spaces (a word longer than the column is broken); the others (ids, numbers, dates)
  are never cut. Their headers may wrap at spaces and after "-" or "/". If the unbreakable
  columns alone are wider
  than the terminal, the lines run over rather than cut a number.
- A non-breaking space (U+00A0) inside a cell keeps its words together (e.g. a confidence
  interval ``[0.998,\\u00a01.010]``); it is printed as a plain space.
- On a terminal (and without ``$NO_COLOR``) headers are bold and a column may colour its cells.

Standard library only: ``virtbench runs`` must start fast (bench/cli_startup.py).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

NBSP = "\u00a0"
SEP = "  "


@dataclass(frozen=True)
class Col:
    """One column: ``right`` aligns numbers; ``wrap`` lets the cells wrap at spaces (names);
    ``min_width`` is how narrow a wrapping column may get, ``breakable=False`` keeps each of
    its words whole (e.g. ``1:1234.5 64:2345.6``: one score a word), ``hyphens=True`` lets
    words wrap after a hyphen (host names, profiles), or after any character of
    ``wrap_after`` (``","``: ``index,system,all``); ``detail=True`` moves
    the column to an indented line under its row when the table does not fit otherwise;
    ``style`` maps a cell to an ANSI SGR code (``"31"``: red) used on a colour terminal."""

    header: str
    right: bool = False
    wrap: bool = False
    min_width: int = 12
    breakable: bool = True
    hyphens: bool = False
    wrap_after: str = "-"
    detail: bool = False
    style: Callable[[str], str] | None = None


Column = Col | str


def _col(c: Column) -> Col:
    return c if isinstance(c, Col) else Col(c)


def output_width(stream: TextIO | None = None) -> int | None:
    """The width to fit: ``$COLUMNS`` when set (a positive number), else the terminal's when
    ``stream`` (stdout by default) is one, else ``None`` (no limit: a pipe or a file)."""
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    stream = sys.stdout if stream is None else stream
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        pass
    return None


def use_color(stream: TextIO | None = None) -> bool:
    stream = sys.stdout if stream is None else stream
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


HEADER_BREAKS = "-/"
"""A header may also wrap after these (``per-`` | ``instance``, ``CPU/`` | ``wall``)."""


def _pieces(word: str, hyphens: bool = True, breaks: str = "-") -> list[str]:
    """Where a word may wrap: after its hyphens (``unixbench-`` | ``5.1.3``), or after any
    character of ``breaks``."""
    if not hyphens:
        return [word]
    b = re.escape(breaks)
    return re.findall(rf"[^{b}]+[{b}]*|[{b}]+", word) or [word]


def _longest_word(text: str, hyphens: bool = False, breaks: str = "-") -> int:
    words = text.split(" ")
    if hyphens:
        words = [p for w in words for p in _pieces(w, breaks=breaks)]
    return max((len(w) for w in words), default=0)


def _wrap(text: str, width: int, breakable: bool, hyphens: bool = False,
          breaks: str = "-") -> list[str]:
    """Greedy wrap at spaces and after hyphens (or ``breaks``); a piece longer than ``width``
    is broken only when ``breakable``."""
    lines: list[str] = []
    cur = ""
    for word in text.split(" "):
        for k, piece in enumerate(_pieces(word, hyphens, breaks)):
            glue = "" if k or not cur else " "
            if len(cur) + len(glue) + len(piece) <= width:
                cur += glue + piece
                continue
            if cur:
                lines.append(cur)
            cur = piece
            while breakable and len(cur) > width:
                lines.append(cur[:width])
                cur = cur[width:]
    lines.append(cur)
    return lines


def _widths(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int,
            sep: int) -> tuple[list[int], bool]:
    """Column widths fitted to ``width`` and whether they fit. The columns shrink in three
    steps: headers of unbreakable columns (ids, numbers) wrap between words; then wrapping
    columns wrap between words; then breakable ones break words, down to min_width.
    Unbreakable cells always keep their full length."""
    natural = [max([len(c.header), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    widths = list(natural)
    head = [_longest_word(c.header, hyphens=True, breaks=HEADER_BREAKS) for c in cols]
    words = [max([1, *(_longest_word(r[i], c.hyphens, c.wrap_after) for r in rows)])
             for i, c in enumerate(cols)]
    steps: list[list[int]] = [[], [], []]
    for i, c in enumerate(cols):
        if not c.wrap:
            steps[0].append(max([head[i], 1, *(len(r[i]) for r in rows)]))
            steps[1].append(steps[0][i])
            steps[2].append(steps[0][i])
            continue
        low = min(natural[i], max(c.min_width, head[i]))
        steps[0].append(natural[i])
        steps[1].append(max(low, min(words[i], natural[i])))
        steps[2].append(low if c.breakable else steps[1][i])
    budget = width - sep * (len(cols) - 1)
    for floor in steps:
        while sum(widths) > budget:
            shrinkable = [i for i in range(len(cols)) if widths[i] > floor[i]]
            if not shrinkable:
                break
            i = max(shrinkable, key=lambda j: widths[j] - floor[j])
            widths[i] -= 1
    # A column whose wrapped cells came out narrower than its width gives the rest back.
    for i, c in enumerate(cols):
        if widths[i] < natural[i]:
            used = [len(ln) for r in rows for ln in _lines(r[i], widths[i], c, False)]
            used += [len(ln) for ln in _lines(c.header, widths[i], c, True)]
            widths[i] = max(used)
    return widths, sum(widths) <= budget


def _layout(cols: Sequence[Col], rows: Sequence[Sequence[str]],
            width: int | None) -> tuple[list[int], list[int], list[int], str]:
    """(shown columns, detail columns, widths of the shown ones, separator): of the layouts
    that fit (all columns two or one space apart; the ``detail`` columns moved to a line under
    their row), the one printing the fewest lines; the last if none fits."""
    everything = list(range(len(cols)))
    if width is None:
        return everything, [], [max([len(cols[i].header), *(len(r[i]) for r in rows)])
                                for i in everything], SEP
    main = [i for i in everything if not cols[i].detail]
    tries = [(everything, 2), (everything, 1)]
    if main != everything:
        tries += [(main, 2), (main, 1)]
    best: tuple[int, list[int], list[int], int] | None = None
    for shown, sep in tries:
        use = [cols[i] for i in shown]
        sub = [[r[i] for i in shown] for r in rows]
        widths, fits = _widths(use, sub, width, sep)
        if not fits:
            continue
        lines = sum(max(len(_lines(cell, w, c, False)) for cell, w, c in
                        zip(r, widths, use, strict=True)) for r in sub)
        lines += len(rows) * (len(everything) - len(shown))  # a detail line per row
        if best is None or lines < best[0]:
            best = (lines, shown, widths, sep)
    if best is None:
        shown, sep = tries[-1]
        widths, _ = _widths([cols[i] for i in shown], [[r[i] for i in shown] for r in rows],
                            width, sep)
        best = (0, shown, widths, sep)
    _, shown, widths, sep = best
    return shown, [i for i in everything if i not in shown], widths, " " * sep


def _lines(text: str, width: int, col: Col, header: bool) -> list[str]:
    if len(text) <= width:
        return [text]
    if header or not col.wrap:
        # Unbreakable cells are never cut (the line runs over); headers wrap between words.
        return [ln for ln in _wrap(text, width, breakable=False, hyphens=header,
                                   breaks=HEADER_BREAKS) if ln] or [text]
    return _wrap(text, width, col.breakable, col.hyphens, col.wrap_after)


def render(columns: Sequence[Column], rows: Sequence[Sequence[str]], *,
           width: int | None = None, title: str | None = None, color: bool = False,
           rule: bool = True) -> str:
    """The table as text. ``width=None``: no limit (one line per row). ``rule``: a line of
    dashes under the headers."""
    cols = [_col(c) for c in columns]
    rows = [[str(c) for c in r] for r in rows]
    for r in rows:
        if len(r) != len(cols):
            raise ValueError(f"row has {len(r)} cells, table has {len(cols)} columns")
    shown, details, widths, sep = _layout(cols, rows, width)
    out: list[str] = []
    if title:
        out.append(f"\033[1m{title}\033[0m" if color else title)

    def emit(cells: Sequence[str], header: bool) -> None:
        use = [cols[i] for i in shown]
        split = [_lines(cells[i], w, c, header) for i, w, c in zip(shown, widths, use,
                                                                   strict=True)]
        for k in range(max(len(s) for s in split)):
            parts = []
            for s, w, c, i in zip(split, widths, use, shown, strict=True):
                text = s[k] if k < len(s) else ""
                pad = text.rjust(w) if c.right else text.ljust(w)
                if color and text:
                    code = "1" if header else (c.style(cells[i]) if c.style else "")
                    if code:
                        pad = pad.replace(text, f"\033[{code}m{text}\033[0m", 1)
                parts.append(pad)
            out.append(sep.join(parts).rstrip().replace(NBSP, " "))
        if header:
            return
        for i in details:
            if cells[i] and cells[i] != "-":
                indent = "    "
                for ln in _wrap(f"{cols[i].header.lower()}: {cells[i]}",
                                max(10, (width or 80) - len(indent)), breakable=True):
                    out.append((indent + ln).rstrip().replace(NBSP, " "))

    emit([c.header for c in cols], header=True)
    if rule:
        out.append(sep.join("-" * w for w in widths))
    for r in rows:
        emit(r, header=False)
    return "\n".join(out) + "\n"


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *,
                title: str | None = None, stream: TextIO | None = None,
                rule: bool = True) -> None:
    """Render for ``stream`` (stdout): fitted to its width, coloured on a terminal."""
    stream = sys.stdout if stream is None else stream
    stream.write(render(columns, rows, width=output_width(stream), title=title,
                        color=use_color(stream), rule=rule))


def markdown(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> str:
    """The same table as GitHub Markdown (numbers right-aligned)."""
    cols = [_col(c) for c in columns]

    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace(NBSP, " ")

    lines = ["| " + " | ".join(esc(c.header) for c in cols) + " |",
             "|" + "|".join("---:" if c.right else "---" for c in cols) + "|"]
    lines.extend("| " + " | ".join(esc(str(x)) for x in r) + " |" for r in rows)
    return "\n".join(lines) + "\n"
