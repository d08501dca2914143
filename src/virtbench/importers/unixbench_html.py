"""UnixBench's HTML report (``results/HOST-DATE-NN.html``, written beside the text report and
published as often) turned into the text layout the text importer reads.

The HTML holds the same numbers in tables: the system information (``System:``, ``OS:``,
``Machine:``, ``Language:``, one row per CPU, ``Uptime:``), then per section a heading
``Benchmark Run: N CPUs; M parallel processes``, a ``Time: HH:MM:SS - HH:MM:SS`` line and a
table of ``Test | Score | Unit | Time | Iters. | Baseline | Index`` rows ending with the
``... Index Score:`` row. The date is in the page title (``Benchmark of HOST / OS on DATE``).
Everything is read with the standard library's tokenizing HTML parser (linear in the input);
no markup is executed or fetched.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_RUN = re.compile(r"Benchmark Run:[ \t]*(\d{1,7})[ \t]+CPUs?;[ \t]*(\d{1,7})[ \t]+parallel")
_TIME = re.compile(r"Time:[ \t]*(\d{1,2}:\d{2}:\d{2}[ \t]*-[ \t]*\d{1,2}:\d{2}:\d{2})")


def looks_like_html_report(text: str) -> bool:
    head = text[:65536].lower()
    return "<table" in head and ("benchmark run:" in head or "byte unix benchmarks" in head) \
        and ("<html" in head or "<p>" in head or "<tr" in head)


class _Blocks(HTMLParser):
    """The page as a flat list of blocks in document order: ``("row", [cells])`` for table
    rows, ``("text", text)`` for headings, paragraphs and the title."""

    _BLOCK = frozenset({"title", "h1", "h2", "h3", "h4", "h5", "p", "div", "li"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "tr":
            self._flush_text()
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "br":
            (self._cell if self._cell is not None else self._text).append("\n")
        elif tag in self._BLOCK and self._row is None:
            self._flush_text()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._cell is not None:
                self._row.append("".join(self._cell).strip())
                self._cell = None
            self.blocks.append(("row", self._row))
            self._row = None
        elif tag in self._BLOCK and self._row is None:
            self._flush_text()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        (self._cell if self._cell is not None else self._text).append(data)

    def _flush_text(self) -> None:
        text = " ".join("".join(self._text).split())
        if text:
            self.blocks.append(("text", [text]))
        self._text = []

    def close(self) -> None:
        super().close()
        self._flush_text()


def html_to_text(html: str) -> str:
    """The UnixBench text layout of an HTML report (what the text importer reads)."""
    parser = _Blocks()
    parser.feed(html)
    parser.close()
    out: list[str] = []
    date = ""
    pending_run: tuple[str, str] | None = None
    rows: list[list[str]] = []
    category = "System Benchmarks"
    for kind, payload in parser.blocks:
        if kind == "text":
            text = payload[0]
            if text.startswith("Benchmark of ") and " on " in text and not date:
                date = text.rsplit(" on ", 1)[1].strip()
            if "BYTE UNIX Benchmarks" in text and not out:
                out += ["=" * 72, "   " + text, ""]
            m = _RUN.search(text)
            if m:
                pending_run = (m.group(1), m.group(2))
                continue
            t = _TIME.search(text)
            if t and pending_run is not None:
                cpus, copies = pending_run
                plural = "copy" if copies == "1" else "copies"
                out += ["-" * 72, f"Benchmark Run: {date} {t.group(1)}",
                        f"{cpus} CPU{'s' if cpus != '1' else ''} in system; running {copies} "
                        f"parallel {plural} of tests", ""]
                pending_run = None
                rows = []
                continue
            if text.endswith("Benchmarks") and len(text) < 80:
                category = text  # the heading of the section's table
            continue
        cells = payload
        if not cells:
            continue
        first = cells[0].rstrip(":")
        if first in ("System", "OS", "Machine", "Language", "Graphics") and len(cells) >= 2:
            value = cells[1]
            if first == "Machine":
                parts = [p.strip() for p in value.split(":", 1)]
                value = parts[0] + (f" ({parts[1]})" if len(parts) > 1 and parts[1] else "")
            out.append(f"   {first}: {value}")
        elif first in ("CPUs", "CPU") and len(cells) >= 3:
            out += _cpu_lines(cells[1], cells[2])
        elif len(cells) == 2 and cells[0].endswith(":") and cells[0][:-1].isdigit():
            out += _cpu_lines(cells[0], cells[1])
        elif first == "Uptime" and len(cells) >= 2:
            out += ["   " + cells[1], ""]
        elif len(cells) >= 7 and cells[0] != "Test":
            name, score, unit, secs, iters, base, index = cells[:7]
            out.append(f"{name}  {score} {unit}   ({secs}, {iters} samples)")
            rows.append([name, base, score, index])
        elif len(cells) >= 2 and "Index Score" in cells[0]:
            out += ["", f"{category} Index Values               BASELINE       RESULT    INDEX"]
            out += [f"{n}  {b}  {r}  {i}" for n, b, r, i in rows if b and i]
            label = cells[0].rstrip(":").strip()
            out += ["========", f"{label}  {cells[-1]}", ""]
            rows = []
    return "\n".join(out) + "\n"


def _cpu_lines(number: str, text: str) -> list[str]:
    model, _, flags = text.partition("\n")
    lines = [f"   CPU {number.rstrip(':')}: {model.strip()}"]
    if flags.strip():
        lines.append("          " + " ".join(flags.split()))
    return lines


# ---- any other web page: a blog post or forum thread saved as HTML -------------------------
_PAGE_MARKERS = ("<!doctype html", "<html", "<body")


def looks_like_html_page(text: str) -> bool:
    """Whether ``text`` is a web page (a blog post or forum thread saved as HTML) rather than
    text: it declares itself (``<!DOCTYPE html>``, ``<html>``, ``<body>``) or breaks its lines
    with ``<br>`` tags. Markdown with a few inline tags (``<details>``, ``<picture>``) is
    text."""
    head = text[:65536].lower()
    return any(m in head for m in _PAGE_MARKERS) or head.count("<br") >= 5


class _PageText(HTMLParser):
    """The text of a page as a browser lays it out in lines: block elements and ``<br>``
    end a line, table cells are separated by blanks, scripts and styles are dropped,
    character references decoded; text inside ``<pre>`` is kept as it is."""

    _BREAK = frozenset({"br", "p", "div", "pre", "tr", "li", "ul", "ol", "table", "h1", "h2",
                        "h3", "h4", "h5", "h6", "section", "article", "header", "footer",
                        "blockquote", "dt", "dd", "hr", "title", "code"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        elif tag in self._BREAK:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append("  ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BREAK and tag != "br":
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def page_to_text(html: str) -> str:
    """The text of a web page, one line per line as a reader sees it (what the text importer
    reads)."""
    parser = _PageText()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)
