"""Read UnixBench text reports (5.1.x and 6.0 layouts) into ``RunResult`` documents.

A report is a header (banner ``BYTE UNIX Benchmarks (Version V)``, ``System:``, ``OS:``,
``Machine:``, ``Language:``, ``CPU n:`` lines and the uptime line) followed by one section per
number of parallel copies::

    ------------------------------------------------------------------------
    Benchmark Run: <strftime %a %b %d %Y> HH:MM:SS - HH:MM:SS
    N CPUs in system; running M parallel copies of tests

    <name>  <score> <unit> (<seconds> s, <samples> samples)      one line per test
    ...
    System Benchmarks Index Values   BASELINE  RESULT  INDEX     or "... Partial Index"
    <name>  <baseline> <result> <index>
                                                       ========
    System Benchmarks Index Score                      <score>   maybe "(Partial Only)"

What the importer does (docs/import.md):

* every number is read; each index is recomputed from the score and the baseline and the
  System Benchmarks Index Score from those, then compared with the reported values: a
  difference beyond what the report's rounding to 0.1 explains is written to ``notes``;
* dates are read whatever the locale (``月  8月 17 2015``); a date that cannot be read is
  noted and the import time is used instead;
* the run id is derived from the report text (sha256), so importing a file again updates the
  same run rather than adding a copy;
* ``profile`` is ``unixbench-<version>`` from the banner (``unixbench-6`` for 6.x,
  ``unixbench-5.1.3`` for 5.1.3), ``imported`` when there is no banner;
* anything malformed is one ``UsageError`` naming the file and line.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import quopri
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from virtbench.analysis.stats import geometric_mean
from virtbench.errors import UsageError
from virtbench.importers.unixbench_html import (
    html_to_text,
    looks_like_html_page,
    looks_like_html_report,
    page_to_text,
)
from virtbench.results.model import Environment, RunResult, Section, TestResult, utc_now
from virtbench.workloads.catalog import CATALOG, INDEX_TESTS, REPORT_NAMES

# ---- facts about UnixBench's reports ---------------------------------------------------------
# Report name -> test id (UnixBench's own test names): the catalog's table.
TEST_IDS: dict[str, str] = REPORT_NAMES

# The System Benchmarks Index: its 12 tests and their published baselines (one table: the
# suite's catalog).
INDEX_BASELINES: dict[str, float] = {
    t: b for t in INDEX_TESTS if (b := CATALOG[t].baseline) is not None
}

SYSTEM_CATEGORY = "System Benchmarks"

# Month names in the locales UnixBench reports are commonly produced in (strftime %b),
# lower-cased, without trailing dots. Numeric months ("8月", "8월") are handled separately.
_MONTHS: dict[str, int] = {}


def _add_months(rows: tuple[str, ...]) -> None:
    """Row N (from 1) names month N; a name keeps the first meaning it was given."""
    for num, names in enumerate(rows, start=1):
        for name in names.split():
            _MONTHS.setdefault(name, num)


_add_months(
    (
        "jan january janv janvier ene enero gen gennaio jän jänner januar sty styczeń jaan",
        "feb february févr février fév febr februar febrero feb febbraio lut luty fev",
        "mar march mars märz mär marzo mrt maart mar mär março",
        "apr april avr avril abr abril aprile kwi kwiecień",
        "may mai mayo mag maggio mei maj",
        "jun june juin junio giu giugno juni cze czerwiec",
        "jul july juil juillet julio lug luglio juli lip lipiec",
        "aug august août aoû ago agosto augustus sie sierpień",
        "sep sept september septembre septiembre set settembre wrz wrzesień setembro",
        "oct october octobre oct octubre ott ottobre okt oktober paź październik out outubro",
        "nov november novembre noviembre lis listopad",
        "dec december déc décembre dic diciembre dez dezember dicembre gru grudzień",
    ),
)
# Russian, Ukrainian, Czech, Finnish, Turkish, Greek, Hungarian and Romanian abbreviations
# (glibc's %b), after the ones above so that no earlier meaning changes.
_add_months(
    (
        "янв января січ led leden tammi tammik oca ιαν ian",
        "фев февраля лют úno únor helmi helmik şub φεβ febr",
        "мар марта бер bře březen maalis maalisk μαρ márc",
        "апр апреля кві dub duben huhti huhtik nis απρ ápr",
        "мая май тра kvě květen touko toukok μαΐ μαι máj mai",
        "июн июня чер čen červen kesä kesäk haz ιουν jún iun",
        "июл июля лип čec červenec heinä heinäk tem ιουλ júl iul",
        "авг августа сер srp srpen elo elok ağu αυγ",
        "сен сентября вер zář září syys syysk eyl σεπ szept",
        "окт октября жов říj říjen loka lokak eki οκτ",
        "ноя ноября лис listopad marras marrask kas νοε",
        "дек декабря гру pro prosinec joulu jouluk ara δεκ",
    ),
)

# ---- bounds ----------------------------------------------------------------------------------
MAX_BYTES = 64 * 1024 * 1024
"""Largest file read (a report with its console log is a few hundred KiB)."""
MAX_PAGE = 8 * 1024 * 1024
"""Characters of a web page (HTML) read: a blog post is far smaller, and the tokenizer costs
up to about 1.2 us per character of hostile markup (bench/import_linear.py)."""
MAX_LINES = 200_000
"""Lines read per file; the rest is ignored (and said so)."""
MAX_LINE = 4096
"""Longest line read; a longer line is skipped with a note (a report line is < 120)."""
QUOTE = 200
"""Characters of input quoted in a message, at most."""
MAX_SKIP_NOTES = 40
"""Notes about single lines (skipped, annotated) per report; beyond, one line counts the
rest."""
MAX_SECTIONS = 64
"""Sections per report (UnixBench prints one per copies count: usually 2)."""
MAX_REPORTS = 256
"""Reports per file; the lines of any further ones stay with the last."""

# Sane ranges for the numbers of a report (UnixBench's own values sit well inside them): a
# number outside its range makes its line unreadable (skipped with a note naming the line).
RANGES: dict[str, tuple[float, float]] = {
    "score": (0.0, 1e13),
    "seconds": (0.0, 1e6),
    "baseline": (1e-3, 1e9),
    "index": (0.0, 1e13),
    "bogomips": (0.0, 1e9),
    "load": (0.0, 1e6),
}
MIN_POSITIVE = 1e-6
"""Smallest positive number accepted (UnixBench prints 0.1 at the least)."""
MAX_COUNT = 1_000_000
"""Largest CPU, copies or samples count accepted."""


def quote(text: str, limit: int = QUOTE) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"... ({len(text) - limit} more characters)"


# ---- line patterns ---------------------------------------------------------------------------
# Every pattern below is applied to one line of at most MAX_LINE characters and is linear in
# it: no two adjacent quantifiers can match the same characters, and free text is split with
# str methods, not with lazy wildcards.
_NUM = r"[-+]?(?:\d{1,15}(?:\.\d{0,15})?|\.\d{1,15})(?:[eE][-+]?\d{1,4})?"
RE_NUMBER = re.compile(_NUM)
RE_BANNER = re.compile(r"BYTE UNIX Benchmarks \(Version[ \t]+([^)\s]{1,40})[ \t]*\)")
RE_CPUS = re.compile(
    r"(?P<cpus>\d{1,12}|\?)[ \t]+CPUs?[ \t]+in[ \t]+system;[ \t]+running[ \t]+(?P<copies>\d{1,12})"
    r"[ \t]+parallel[ \t]+cop(?:y|ies)[ \t]+of[ \t]+tests"
)
# '?' for seconds and samples: virtbench's own report of a result whose line was not
# published (read from an index table alone).
RE_TAIL = re.compile(
    r"\([ \t]*(?P<secs>" + _NUM + r"|\?)[ \t]+s,[ \t]+(?P<samples>\d{1,12}|\?)[ \t]+samples?\)"
)
RE_CPU_N = re.compile(r"CPU[ \t]+\d{1,7}:")
RE_PROGRESS = re.compile(r"\d{1,7} x \S")
# The hyphen may have become an en or em dash: blogs (WordPress) "smarten" '-' and '--'.
# The end time is missing where the run did not finish (virtbench prints the start alone).
RE_TIMES = re.compile(
    r"(\d{1,2}):(\d{2}):(\d{2})"
    r"(?:[ \t]*[-\u2013\u2014][ \t]*(\d{1,2}):(\d{2}):(\d{2}))?[ \t]*$")
RE_OS_SEP = re.compile(r" (?:--|\u2014|\u2013) ")
RE_RULE_EQ = re.compile(r"={10,}")


class _Skip(Exception):
    """A line that cannot be read: skipped, with ``reason`` in the notes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _number(token: str, what: str) -> float:
    """``token`` as a float within the sane range of ``what``."""
    if len(token) > 40 or RE_NUMBER.fullmatch(token) is None:
        raise _Skip(f"{quote(token, 40)} is not a number")
    value = float(token)
    lo, hi = RANGES[what]
    if not math.isfinite(value) or not lo <= value <= hi:
        raise _Skip(f"{what} {quote(token, 40)} is outside the sane range [{lo:g}, {hi:g}]")
    if 0 < value < MIN_POSITIVE:
        # UnixBench prints one decimal: a positive value this small (a denormal like 1e-320)
        # was not printed by it, and its index would underflow to 0.
        raise _Skip(f"{what} {quote(token, 40)} is positive but below {MIN_POSITIVE:g}")
    return value


def _known(value: str) -> str | None:
    """A header value, or None where the report says it is not known ('?', 'unknown': what
    virtbench prints for a missing value, so that its own reports read back as missing)."""
    return None if value.lower() in ("", "?", "unknown") else value


def _count(token: str, what: str, lo: int = 0) -> int:
    if not token.isdigit() or len(token) > 7 or not lo <= int(token) <= MAX_COUNT:
        raise _Skip(f"{what} {quote(token, 40)} is outside the sane range [{lo}, {MAX_COUNT}]")
    return int(token)


def test_id(name: str) -> str:
    """The test id of a report name (a slug for names this importer does not know)."""
    if name in TEST_IDS:
        return TEST_IDS[name]
    if name.startswith("Shell Scripts (") and name.endswith(" concurrent)"):
        n = name[len("Shell Scripts ("):-len(" concurrent)")]
        if n.isdigit() and len(n) <= 4:
            return f"shell{n}"
    if name.startswith("C Compiler Throughput"):
        return "C"
    return re.sub(r"[^a-z0-9]+", "-", name[:80].lower()).strip("-") or "unnamed"


def profile_for(version: str | None) -> str:
    """``unixbench-6`` for 6.x, ``unixbench-<version>`` for others, ``imported`` if unknown."""
    if not version:
        return "imported"
    if version.split(".")[0] == "6":
        return "unixbench-6"
    return f"unixbench-{version}"


# ---- dates -----------------------------------------------------------------------------------
def parse_run_date(when: str) -> tuple[datetime, datetime] | None:
    """(start, end) of ``%a %b %d %Y HH:MM:SS - HH:MM:SS`` in any locale, or ``None``."""
    when = when[:QUOTE]
    tm = RE_TIMES.search(when)
    if not tm:
        return None
    date_part = when[: tm.start()]
    years = re.findall(r"(?<!\d)(\d{4})(?!\d)", date_part)
    if not years:
        return None
    year = int(years[-1])
    rest = re.sub(r"(?<!\d)\d{4}(?!\d)", " ", date_part)
    month: int | None = None
    m = re.search(r"(?<!\d)(\d{1,2})[ \t]*(?:月|월)", rest)
    if m:
        month = int(m.group(1))
        rest = rest[: m.start()] + " " + rest[m.end():]
    else:
        # '%a %b %d': the month is the last month name before the day; the weekday comes
        # first and may spell like a month (Spanish, French and Italian Tuesday: 'mar').
        for word in re.findall(r"[^\W\d_]+", rest.lower()):
            if word in _MONTHS:
                month = _MONTHS[word]
            elif word[:3] in _MONTHS and len(word) >= 3:
                month = _MONTHS[word[:3]]
    # Only numbers standing alone: 'T2' (a Vietnamese weekday) is not a day or a month.
    days = [int(d) for d in re.findall(r"(?<![\w])(\d{1,2})(?![\w])", rest)]
    days = [d for d in days if 1 <= d <= 31]
    if month is None and len(days) >= 2 and days[0] <= 12:
        # A numeric month whose suffix did not survive decoding: UnixBench's format is
        # "%a %b %d %Y", so the month comes before the day.
        month, days = days[0], days[1:]
    if month is None or not days:
        return None
    try:
        h1, m1, s1 = (int(g) for g in tm.groups()[:3])
        h2, m2, s2 = (int(g) if g is not None else v
                      for g, v in zip(tm.groups()[3:], (h1, m1, s1), strict=True))
        start = datetime(year, month, days[-1], h1, m1, s1)
        end = datetime(year, month, days[-1], h2, m2, s2)
    except (ValueError, OverflowError):
        return None
    if end < start:
        end += timedelta(days=1)
    return start, end


# ---- parsing ---------------------------------------------------------------------------------
@dataclass
class _IndexRow:
    line: int
    name: str
    baseline: float | None
    result: float
    index: float | None


@dataclass
class _Section:
    line: int
    when: str | None
    cpus: int | None = None
    copies: int | None = None
    tests: list[TestResult] = field(default_factory=list)
    test_lines: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    """Report name -> test id, for reading index rows."""
    index_rows: dict[str, list[_IndexRow]] = field(default_factory=dict)
    scores: dict[str, tuple[float, bool, int]] = field(default_factory=dict)
    """category -> (reported score, partial, line)."""
    no_index: list[str] = field(default_factory=list)
    category: str | None = None
    done: bool = False
    """The index score (or 'No index results') was read: the section is over."""
    from_table: list[int] = field(default_factory=list)
    """Lines of index rows that were the only score of their test (no result line)."""


@dataclass
class _Report:
    start: int
    """Index (0-based) of the report's first line in the file."""
    env: Environment = field(default_factory=Environment)
    version: str | None = None
    version_line: int = 0
    cpus: list[tuple[str, float]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    language: str | None = None
    graphics: str | None = None
    system: str | None = None
    runlevel: str | None = None
    sections: list[_Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: int = 0

    def skip(self, no: int, reason: str) -> None:
        self.line_note(f"line {no} skipped: {reason}")

    def line_note(self, note: str) -> None:
        self.skipped += 1
        if self.skipped <= MAX_SKIP_NOTES:
            self.notes.append(note)

    @property
    def has_data(self) -> bool:
        return any(s.tests for s in self.sections)


def _score_tolerance(reported_rounding: float, values: list[tuple[float, float]]) -> float:
    """Largest difference between a recomputed geometric mean of ``score/baseline*10`` and
    the reported one that rounding explains: the reported value's own rounding plus the
    effect of each score having been printed to 0.05 (relative 0.05/score, averaged by the
    geometric mean)."""
    if not values:
        return reported_rounding
    rel = sum(0.05 / s for s, _ in values if s > 0) / len(values)
    return reported_rounding + rel * geometric_mean([s / b * 10 for s, b in values]) + 1e-9


def _normalize(raw: str) -> str:
    """A line without what pasting adds around UnixBench's text: trailing blanks, a margin
    (indentation, e-mail quote marks ``>``), Markdown code fences."""
    s = raw.strip().lstrip(">").strip()
    while s.startswith(">"):
        s = s.lstrip(">").strip()
    for fence in ("```", "~~~"):
        if s.startswith(fence):
            s = s.lstrip(fence[0])
            if not s or s.replace("-", "").replace("_", "").isalnum():
                return ""  # a fence line, with or without its info string
        if s.endswith(fence):
            s = s.rstrip(fence[0]).rstrip()
    return s


def _is_rule(s: str) -> bool:
    return len(s) >= 8 and (set(s) == {"-"} or set(s) == {"="})


class _Parser:
    """One pass over the lines of a file; every line is looked at once, with linear work."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.reports: list[_Report] = [_Report(start=0)]
        self.old_version: tuple[int, str] | None = None
        self.last_cpu_line = -10

    @property
    def rep(self) -> _Report:
        return self.reports[-1]

    @property
    def cur(self) -> _Section | None:
        return self.rep.sections[-1] if self.rep.sections else None

    def run(self) -> list[_Report]:
        lines = self.lines[:MAX_LINES]
        joined: set[int] = set()
        for i, raw in enumerate(lines):
            no = i + 1
            if i in joined:
                continue
            if len(raw) > MAX_LINE:
                self.rep.skip(no, f"{len(raw)} characters long (the limit is {MAX_LINE})")
                continue
            s = _normalize(raw)
            if not s:
                continue
            wrapped = self._wrapped(s, lines, i)
            if wrapped is not None:  # a test line a forum or a mail client wrapped
                s = wrapped
                joined.add(i + 1)
                self.rep.line_note(f"line {no} joined with line {no + 1}: one test line "
                                   "wrapped in two")
            try:
                self._line(i, no, s)
            except _Skip as exc:
                self.rep.skip(no, exc.reason)
        if len(self.lines) > MAX_LINES:
            self.rep.notes.append(f"only the first {MAX_LINES} lines were read (the file has "
                                  f"{len(self.lines)})")
        return self.reports

    @staticmethod
    def _wrapped(s: str, lines: list[str], i: int) -> str | None:
        """``s`` joined with the next line when together they make the one test line that
        was wrapped (``... KBps  (30.0 s, 2`` then ``samples)``), else ``None``."""
        if i + 1 >= len(lines) or s.endswith(")") or len(s) + len(lines[i + 1]) > MAX_LINE:
            return None
        if "(" not in s and "(" not in lines[i + 1]:
            return None
        nxt = _normalize(lines[i + 1])
        if not ("(" in s or nxt.startswith("(")) or RE_TAIL.search(s):
            return None
        own = RE_TAIL.search(nxt)
        if own is not None and own.start() > 0:
            return None  # the next line is a test line of its own
        both = f"{s} {nxt}"
        return both if RE_TAIL.search(both) else None

    # -- structure ----------------------------------------------------------------------------
    def _new_report(self, i: int) -> bool:
        if len(self.reports) >= MAX_REPORTS:
            return False
        self.reports.append(_Report(start=i))
        return True

    def _report_start(self, i: int) -> int:
        """Where a report whose banner is on line index ``i`` starts: at the ``=====`` rule
        above the banner when there is one."""
        j = i - 1
        while j >= 0 and not self.lines[j].strip():
            j -= 1
        if j >= 0 and RE_RULE_EQ.fullmatch(_normalize(self.lines[j])):
            return j
        return i

    def _section(self, i: int, no: int, when: str | None) -> _Section:
        if len(self.rep.sections) >= MAX_SECTIONS:
            raise _Skip(f"more than {MAX_SECTIONS} sections in one report")
        sec = _Section(line=no, when=when)
        self.rep.sections.append(sec)
        return sec

    def _line(self, i: int, no: int, s: str) -> None:
        if "BYTE UNIX Benchmarks" in s:
            bm = RE_BANNER.search(s)
            if bm:
                self._banner(i, no, bm.group(1))
                return
        if s.startswith("Benchmark Run:"):
            when = s[len("Benchmark Run:"):].strip()[:QUOTE]
            # 'unknown': virtbench's own report of a run whose date is not known.
            self._section(i, no, None if when.lower() in ("", "unknown") else when)
            return
        if s.startswith("NOTE: ") and self.rep.sections:
            # virtbench's own report: its notes are the document's notes, kept as such.
            self.rep.notes.append(f"the report notes: {s[len('NOTE: '):]}"[:QUOTE * 2])
            return
        cm = RE_CPUS.match(s)
        if cm:
            self._cpus_line(i, no, cm)
            return
        if self.cur is None and "BASELINE" in s and "RESULT" in s and "INDEX" in s:
            self._section(i, no, None)  # the index table alone: it is the section
        if RE_PROGRESS.match(s) or _is_rule(s):
            return
        if "samples" in s or "sample)" in s:
            tm = RE_TAIL.search(s)
            if tm:
                self._test_line(i, no, s, tm)
                return
        cur = self.cur
        if cur is not None and not cur.done:
            if self._table_line(cur, no, s):
                return
            if cur.tests and self._failed_line(cur, no, s):
                return
            if cur.tests or cur.copies is not None:
                raise _Skip(f"not a line of a UnixBench report: {quote(s)}")
            return
        if cur is not None and cur.done and self._table_line(cur, no, s, after_score=True):
            return
        if not self.rep.sections:
            self._header_line(no, s)

    def _banner(self, i: int, no: int, version: str) -> None:
        if self.rep.sections or self.rep.version is not None:
            self._new_report(self._report_start(i))
        elif self.rep.start == 0 and len(self.reports) > 1:
            self.rep.start = self._report_start(i)
        self.rep.version = version
        self.rep.version_line = no
        if version.split(".")[0] in {"1", "2", "3", "4"} and self.old_version is None:
            self.old_version = (no, version)

    def _split_if_repeated(self, i: int, sec: _Section) -> None:
        """A section whose copies count the report already has, or with another CPU count,
        starts the next report (reports pasted one after the other without banners)."""
        rep = self.rep
        earlier = rep.sections[:-1]
        if not earlier:
            return
        repeated = any(e.copies == sec.copies for e in earlier) or any(
            e.cpus is not None and sec.cpus is not None and e.cpus != sec.cpus for e in earlier)
        if repeated and self._new_report(min(i, sec.line - 1)):  # from 'Benchmark Run:'
            rep.sections.pop()
            self.rep.sections.append(sec)

    def _cpus_line(self, i: int, no: int, m: re.Match[str]) -> None:
        # '?' (virtbench's own report of a run whose count is unknown) and '0' (UnixBench's
        # when the count was not available) both mean: not known.
        cpus = 0 if m.group("cpus") == "?" else _count(m.group("cpus"), "CPU count")
        copies = _count(m.group("copies"), "parallel copies", lo=1)
        cur = self.cur
        if cur is None or cur.done or cur.tests or cur.copies is not None:
            cur = self._section(i, no, None)
        cur.cpus = cpus or None  # '0 CPUs in system': the count was not available
        cur.copies = copies
        self._split_if_repeated(i, cur)

    def _test_line(self, i: int, no: int, s: str, tm: re.Match[str]) -> None:
        head = s[: tm.start()].rstrip()
        parts = head.rsplit(None, 2)
        if len(parts) != 3:
            raise _Skip(f"a test result line without a name, score or unit: {quote(s)}")
        tname, value_s, unit = parts[0].strip(), parts[1], parts[2]
        value = _number(value_s, "score")
        secs = None if tm.group("secs") == "?" else _number(tm.group("secs"), "seconds")
        samples = (None if tm.group("samples") == "?"
                   else _count(tm.group("samples"), "sample count"))
        unit = "" if unit == "?" else unit
        cur = self.cur
        if cur is None or cur.done:
            cur = self._section(i, no, None)
        tid = test_id(tname)
        if tid in cur.test_lines:
            raise _Skip(f"a second {quote(tname, 60)} result in this section (the first is on "
                        f"line {cur.test_lines[tid]})")
        ok = (samples is None or samples > 0) and value > 0
        cur.tests.append(TestResult(
            test=tid, name=tname, unit=unit[:40], copies=cur.copies or 1,
            score=value, samples=samples, elapsed=secs,
            status="ok" if ok else "failed", error=None if ok else "no measured results",
        ))
        cur.test_lines[tid] = no
        cur.names[tname] = tid
        note = s[tm.end():].strip()
        if note:
            self.rep.line_note(f"line {no} ({tname[:60]}): annotation {quote(note)}")

    def _failed_line(self, cur: _Section, no: int, s: str) -> bool:
        low = s.lower()
        for marker in ("no measured results", "failed"):
            k = low.find(marker)
            if k > 0:
                tname = s[:k].rstrip(" \t:(").strip()
                if not tname:
                    return False
                tid = test_id(tname)
                if tid in cur.test_lines:
                    return False
                cur.tests.append(TestResult(test=tid, name=tname[:200], unit="",
                                            copies=cur.copies or 1, status="failed",
                                            error=s[:QUOTE]))
                cur.test_lines[tid] = no
                cur.names[tname] = tid
                return True
        return False

    def _table_line(self, cur: _Section, no: int, s: str, after_score: bool = False) -> bool:
        """Index tables: head, rows, the score line, 'No index results'."""
        if "BASELINE" in s and "RESULT" in s and "INDEX" in s:
            for kind in (" Index Values", " Partial Index"):
                k = s.find(kind)
                if k > 0:
                    cur.category = s[:k].strip()[:80]
                    cur.index_rows.setdefault(cur.category, [])
                    cur.done = False
                    return True
        k = s.find("Index Score")
        if k > 0:
            cat = s[:k].strip()[:80]
            rest = s[k + len("Index Score"):].strip()
            partial = rest.startswith("(Partial Only)")
            if partial:
                rest = rest[len("(Partial Only)"):].strip()
            if rest.startswith(": not computed"):
                # virtbench's own report of a section without a score: none, as UnixBench's
                # 'No index results available'.
                cur.category = None
                cur.done = True
                return True
            tokens = rest.split(None, 1)
            if not tokens:
                raise _Skip(f"an index score line without a score: {quote(s)}")
            score = _number(tokens[0], "index")
            cur.scores[cat] = (score, partial, no)
            if len(tokens) > 1:
                self.rep.line_note(f"line {no} ({cat} Index Score): annotation "
                                   f"{quote(tokens[1])}")
            cur.category = None
            cur.done = True
            return True
        if s.startswith("No index results available for "):
            cur.no_index.append(s[len("No index results available for "):].strip()[:80])
            cur.done = True
            return True
        if after_score or cur.category is None:
            return False
        self._index_row(cur, no, s)
        return True

    def _index_row(self, cur: _Section, no: int, s: str) -> None:
        assert cur.category is not None
        name: str | None = None
        for known in cur.names:  # the longest test name of this section the row starts with
            if s.startswith(known) and (name is None or len(known) > len(name)) and (
                    len(s) == len(known) or s[len(known)] in " \t"):
                name = known
        if name is not None:
            tokens = s[len(name):].split()
        else:
            all_tokens = s.split()
            for k in range(1, max(1, len(all_tokens) - 2)):
                if all(t == "---" or RE_NUMBER.fullmatch(t) for t in all_tokens[k:k + 3]):
                    name, tokens = " ".join(all_tokens[:k]), all_tokens[k:]
                    break
            else:
                raise _Skip(f"expected an index row 'NAME BASELINE RESULT INDEX': {quote(s)}")
        if len(tokens) < 3:
            raise _Skip(f"expected an index row 'NAME BASELINE RESULT INDEX': {quote(s)}")
        base_s, res_s, idx_s = tokens[:3]
        row = _IndexRow(
            line=no, name=name,
            baseline=None if base_s == "---" else _number(base_s, "baseline"),
            result=_number(res_s, "score"),
            index=None if idx_s == "---" else _number(idx_s, "index"),
        )
        tid = cur.names.get(name, test_id(name))
        if tid not in cur.test_lines and len(cur.test_lines) > len(cur.from_table):
            raise _Skip(f"an index row for {quote(name, 60)}, which has no result line in this "
                        "section")
        if tid not in cur.test_lines:
            # Reports are often published as the index table alone: its RESULT column is the
            # score. What only the result line says (unit, seconds, samples) stays missing.
            # (A section with result lines keeps them as the scores: a row is a check.)
            ok = row.result > 0
            cur.tests.append(TestResult(
                test=tid, name=name[:200], unit="", copies=cur.copies or 1, score=row.result,
                status="ok" if ok else "failed", error=None if ok else "no measured results"))
            cur.test_lines[tid] = no
            cur.names[name] = tid
            cur.from_table.append(no)
        cur.index_rows[cur.category].append(row)
        if len(tokens) > 3:
            self.rep.line_note(f"line {no} ({name[:60]}, index table): annotation "
                               f"{quote(' '.join(tokens[3:]))}")

    def _header_line(self, no: int, s: str) -> None:
        rep, env = self.rep, self.rep.env
        if s.startswith("System:"):
            host, _, system = s[len("System:"):].partition(":")
            env.hostname = _known(host.strip()[:QUOTE])
            rep.system = system.strip()[:QUOTE] or None
        elif s.startswith("OS:"):
            parts = [p.strip() for p in RE_OS_SEP.split(s[len("OS:"):], 2)]
            if len(parts) == 3:
                env.os, env.kernel, env.kernel_version = (_known(p[:QUOTE]) for p in parts)
        elif s.startswith("Machine:"):
            words = s[len("Machine:"):].split(None, 1)
            if words:
                env.machine = _known(words[0].rstrip(":")[:40])
        elif s.startswith("Language:"):
            rep.language = s[len("Language:"):].strip()[:QUOTE]
        elif s.startswith("Graphics:"):
            rep.graphics = s[len("Graphics:"):].strip()[:QUOTE]
        elif RE_CPU_N.match(s):
            rest = s[s.index(":") + 1:].strip()
            k = rest.rfind("(")
            if k >= 0 and rest.endswith("bogomips)"):
                model = rest[:k].strip()[:QUOTE]
                bogo = _number(rest[k + 1:-len("bogomips)")].strip(), "bogomips")
                rep.cpus.append((model, bogo))
                if env.cpu_model is None:
                    env.cpu_model = model or None
                self.last_cpu_line = no
        elif no == self.last_cpu_line + 1 and ":" not in s:
            rep.flags.append(s[:QUOTE])
        elif "load average" in s and " up " in s:
            self._uptime(s)

    def _uptime(self, s: str) -> None:
        env = self.rep.env
        j = s.find("load average")
        before = s[:j].rstrip().rstrip(",")
        up = before[before.find(" up ") + 4:]
        up_part, _, users = up.rpartition(",")
        if "user" in users:
            env.uptime = up_part.strip()[:QUOTE] or None
        loads_part, _, rl = s[j:].partition(":")[2].partition(";")
        loads = re.findall(r"\d{1,9}[.,]\d{1,9}", loads_part)
        if len(loads) >= 3:
            with contextlib.suppress(_Skip):
                env.load_average = [_number(v.replace(",", "."), "load") for v in loads[:3]]
        rl = rl.strip()
        if rl.startswith("runlevel"):
            self.rep.runlevel = rl[len("runlevel"):].strip()[:40] or None


def _fail(name: str, line: int, message: str) -> UsageError:
    return UsageError(f"{name}:{line}: {message}")


def _infer_copies(rep: _Report) -> None:
    """Sections whose 'N CPUs in system; running M parallel copies' line is missing: the
    first pass of UnixBench is 1 copy, the second one copy per CPU."""
    cpus = next((s.cpus for s in rep.sections if s.cpus), None) or len(rep.cpus) or None
    kept: list[_Section] = []
    for sec in rep.sections:
        if not sec.tests:
            if sec.copies is not None:
                rep.notes.append(f"the section on line {sec.line} ({sec.copies} "
                                 f"cop{'y' if sec.copies == 1 else 'ies'}) has no results: "
                                 "UnixBench was stopped before its first test")
            continue
        if sec.copies is None:
            taken = {s.copies for s in kept}
            guess = 1 if 1 not in taken else (cpus if cpus and cpus not in taken else None)
            if guess is None:
                rep.notes.append(f"the results from line {sec.line} have no 'running N "
                                 "parallel copies' line and no copies count can be assumed; "
                                 "skipped")
                continue
            sec.copies = guess
            rep.notes.append(f"the results from line {sec.line} have no 'N CPUs in system; "
                             f"running N parallel copies' line: taken as {guess} "
                             f"cop{'y' if guess == 1 else 'ies'}")
        elif any(s.copies == sec.copies for s in kept):
            rep.notes.append(f"the section on line {sec.line} repeats {sec.copies} copies; "
                             "skipped")
            continue
        for t in sec.tests:
            t.copies = sec.copies
        if sec.from_table:
            n = len(sec.from_table)
            rep.notes.append(f"line {sec.from_table[0]}: {n} test result{'s' if n > 1 else ''} "
                             "read from the index table alone (its RESULT column; no result "
                             "line): unit, seconds and samples are missing")
        if not sec.done:
            rep.notes.append(f"the section on line {sec.line} has no index score: the report "
                             "is cut short there")
        kept.append(sec)
    rep.sections = kept


def _reports(text: str, name: str, first_line: int = 1) -> list[RunResult]:
    """Every report in ``text`` (the work behind :func:`parse_reports`; raises only
    ``UsageError``, and anything else is a bug)."""
    text = text.lstrip("\ufeff")
    from_html = looks_like_html_report(text)
    if from_html:
        text = html_to_text(text[:MAX_BYTES])
    from_page = not from_html and looks_like_html_page(text)
    page_cut = from_page and len(text) > MAX_PAGE
    if from_page:
        text = page_to_text(text[:MAX_PAGE])
    from_qp = not from_html and looks_quoted_printable(text)
    if from_qp:
        text = decode(quopri.decodestring(text[:MAX_BYTES].encode("utf-8", "surrogateescape")))
    lines = text.splitlines(keepends=True)
    parser = _Parser(lines)
    reports = parser.run()
    if from_html:
        for rep in reports:
            rep.notes.insert(0, "read from UnixBench's HTML report; line numbers refer to its "
                                "text form (original_text)")
    if from_page:
        for rep in reports:
            rep.notes.insert(0, "read from a web page (HTML); line numbers refer to its text "
                                "(original_text)")
            if page_cut:
                rep.notes.append(f"only the first {MAX_PAGE // (1 << 20)} MiB of the web page "
                                 "were read")
    if from_qp:
        for rep in reports:
            rep.notes.insert(0, "decoded from quoted-printable (an e-mail body: '=3D' for '=', "
                                "lines ending in '=' joined); line numbers refer to the "
                                "decoded text (original_text)")
    runs: list[RunResult] = []
    bounds = [r.start for r in reports] + [len(lines)]
    bounds[0] = 0
    skipped: list[str] = []
    for k, rep in enumerate(reports):
        if rep.skipped > MAX_SKIP_NOTES:
            rep.notes.append(f"... and {rep.skipped - MAX_SKIP_NOTES} more notes about single "
                             "lines (skipped or annotated)")
        skipped.extend(n for n in rep.notes if " skipped: " in n)
        if not rep.has_data:
            continue
        _infer_copies(rep)
        if not rep.sections:
            continue
        chunk = "".join(lines[bounds[k]:bounds[k + 1]])
        if first_line != 1:
            rep.notes = [_shift(n, first_line - 1) for n in rep.notes]
        runs.append(_build(name, chunk, rep))
    if runs:
        return runs
    last = max(len(lines), 1) + first_line - 1
    if parser.old_version is not None:
        no, version = parser.old_version
        raise _fail(name, no + first_line - 1, f"UnixBench {version} reports are not supported "
                                               "(5.1.x and 6.x are)")
    if any("FINAL SCORE" in ln or "INDEX VALUES" in ln for ln in lines[:MAX_LINES]):
        raise _fail(name, first_line, "this looks like a UnixBench 4.x report: only 5.1.x and "
                                      "6.x reports are supported")
    why = f" ({skipped[0]})" if skipped else ""
    raise _fail(name, last, "not a UnixBench report: no readable test result line like "
                            f"'Pipe Throughput  364987.0 lps  (10.0 s, 7 samples)'{why}")


_QP_SOFT_BREAK = re.compile(r"[^=\r\n]=\r?\n")
_QP_ESCAPE = re.compile(r"=(?:3D|20|09|[89A-F][0-9A-F])")


def looks_quoted_printable(text: str) -> bool:
    """Whether ``text`` is an e-mail body in quoted-printable, as mailing-list archives keep
    messages: soft line breaks (a line ending in a single ``=``, which cut test lines as
    ``(10.0 s, 7 samp=`` / ``les)``) and ``=3D`` for every ``=``. A plain report never has
    both: its only lines ending in ``=`` are ``=====`` rules."""
    head = text[:MAX_BYTES]
    return (_QP_SOFT_BREAK.search(head) is not None
            and _QP_ESCAPE.search(head) is not None
            and ("=3D" in head or "quoted-printable" in head.lower()))


def _shift(note: str, by: int) -> str:
    m = re.match(r"line (\d{1,9})", note)
    return f"line {int(m.group(1)) + by}{note[m.end():]}" if m else note


def parse_reports(text: str, name: str = "<report>", first_line: int = 1) -> list[RunResult]:
    """Every report in ``text`` (a file may hold several, one after the other). Raises
    ``UsageError`` (naming ``name`` and a line) and nothing else."""
    try:
        return _reports(text, name, first_line)
    except UsageError:
        raise
    except Exception as exc:  # a bug: still one line, never a traceback
        raise UsageError(f"{name}: could not read the report ({type(exc).__name__}: "
                         f"{quote(str(exc), 80)}); please report this") from None


def parse_text(text: str, name: str = "<report>", first_line: int = 1) -> RunResult:
    """The one report in ``text``. ``name`` (usually the file name) prefixes errors;
    ``first_line`` is the line number of the text's first line in that file."""
    runs = parse_reports(text, name, first_line)
    if len(runs) > 1:
        raise UsageError(f"{name}: holds {len(runs)} UnixBench reports; parse them with "
                         "parse_reports")
    return runs[0]


def split_reports(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each report in ``text``, as :func:`parse_reports`
    splits it."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    reports = [r for r in _Parser(lines).run()]
    bounds = [0] + [r.start for r in reports[1:]] + [len(lines)]
    return [(bounds[k] + 1, "".join(lines[bounds[k]:bounds[k + 1]]))
            for k in range(len(reports))]


# Encodings tried, in order, for a file that is not UTF-8 (reports from CJK-locale machines
# have their dates in the locale's encoding); Latin-1 last, as it accepts any byte.
_ENCODINGS = ("utf-8", "euc_jp", "shift_jis", "gb18030", "euc_kr", "latin-1")


def decode(data: bytes) -> str:
    for enc in _ENCODINGS:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # pragma: no cover (latin-1 never fails)


def read_bytes(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, as one clear error otherwise
    (a FIFO or a device is refused without blocking on it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path}: not a regular file")
        if st.st_size > limit:
            raise UsageError(f"{path}: {st.st_size} bytes; a report is at most {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UsageError(f"{path}: more than {limit} bytes; a report is smaller")
        return b"".join(chunks)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    data = read_bytes(path)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # UTF-16 with a byte-order mark: what Windows editors and PowerShell's '>' save.
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if data.startswith(b"\x1f\x8b"):
        raise UsageError(f"{path}:1: gzip-compressed: decompress it first (gunzip -k {path})")
    if b"\x00" in data[:65536]:
        raise UsageError(f"{path}:1: not a UnixBench text report (binary data)")
    return decode(data)


def parse_file_all(path: Path) -> list[RunResult]:
    """Every report in the file, each a run."""
    runs = parse_reports(_read(path), str(path))
    for run in runs:
        run.notes.insert(0, f"imported from {path.name}")
    return runs


def parse_file(path: Path) -> RunResult:
    """The one report in the file (a file with several is an error: use parse_file_all)."""
    runs = parse_file_all(path)
    if len(runs) > 1:
        raise UsageError(f"{path}: holds {len(runs)} UnixBench reports; name one file per "
                         "report, or `virtbench import` it (each report becomes a run)")
    return runs[0]


def _build(name: str, text: str, rep: _Report) -> RunResult:
    normalized = "\n".join(line.rstrip() for line in text.lstrip("\ufeff").splitlines()).strip()
    run_id = hashlib.sha256(normalized.encode()).hexdigest()[:12]
    notes: list[str] = list(rep.notes)
    _fill_environment(rep)
    started, finished = _run_times(rep.sections, notes)
    sections: list[Section] = []
    all_full = True
    for sec in rep.sections:
        section, full = _build_section(sec, notes)
        sections.append(section)
        all_full = all_full and full
    return RunResult(
        id=run_id,
        source="imported-unixbench",
        suite="unixbench",
        profile=profile_for(rep.version),
        mode="standard",
        comparable=True,
        status="complete" if all_full else "partial",
        started=started,
        finished=finished,
        environment=rep.env,
        sections=sections,
        notes=notes,
        original_text=text,
    )


def _fill_environment(rep: _Report) -> None:
    """The report's header (system, CPUs, run dates) into ``rep.env``."""
    env, cpus, flags, parsed = rep.env, rep.cpus, rep.flags, rep.sections
    env.cpu_count = next((s.cpus for s in parsed if s.cpus), None) or (len(cpus) or None)
    extra: dict[str, object] = {"unixbench_version": rep.version}
    for key, value in (("system", rep.system), ("language", rep.language),
                       ("graphics", rep.graphics), ("runlevel", rep.runlevel)):
        if value:
            extra[key] = value
    if cpus:
        extra["cpus_listed"] = len(cpus)
        extra["bogomips"] = cpus[0][1]
    if flags:
        extra["cpu_flags"] = flags[0]
    extra["benchmark_run"] = [s.when for s in parsed if s.when is not None]
    env.extra = {k: v for k, v in extra.items() if v is not None}


def _run_times(parsed: list[_Section], notes: list[str]) -> tuple[str, str | None]:
    """(started, finished) from the sections' ``Benchmark Run:`` dates; the import time (and
    a note) when there is none or it is not understood."""
    dates = [d for d in (parse_run_date(s.when) for s in parsed if s.when) if d is not None]
    if dates:
        return dates[0][0].isoformat(), dates[-1][1].isoformat()
    first_when = next((s.when for s in parsed if s.when), None)
    notes.append(f"benchmark date {quote(first_when or '')} not understood: 'started' "
                 "is the import time" if first_when else "no 'Benchmark Run:' date in the "
                 "report: 'started' is the import time")
    return utc_now(), None


def _build_section(sec: _Section, notes: list[str]) -> tuple[Section, bool]:
    """One section with its per-test indexes and its System Benchmarks Index Score, each
    recomputed and compared with the report (in ``notes``); whether the index is full."""
    assert sec.copies is not None  # _infer_copies
    section = Section(copies=sec.copies, tests=sec.tests)
    by_id = {t.test: t for t in sec.tests}

    def test_of(row_name: str) -> TestResult:
        return by_id[sec.names.get(row_name, test_id(row_name))]

    label = f"{sec.copies} cop{'y' if sec.copies == 1 else 'ies'}"
    for cat, rows in sec.index_rows.items():
        for row in rows:
            _check_index_row(cat, row, test_of(row.name), label, notes)
    # The System Benchmarks Index Score.
    sys_rows = [r for r in sec.index_rows.get(SYSTEM_CATEGORY, [])
                if r.baseline and r.index is not None]
    pairs = [(test_of(r.name).score or 0.0, r.baseline or 0.0) for r in sys_rows]
    index_tests = [test_of(r.name) for r in sys_rows]
    section.index_tests = len(index_tests)
    reported = sec.scores.get(SYSTEM_CATEGORY)
    recomputed: float | None = None
    indexes = [t.index for t in index_tests if t.index is not None]
    # A tiny positive score can still give an index of 0.0 (underflow): no mean then.
    if pairs and all(s > 0 for s, _ in pairs) and indexes and all(v > 0 for v in indexes):
        recomputed = geometric_mean(indexes)
    full = (reported is not None and not reported[1]
            and {t.test for t in index_tests} == set(INDEX_BASELINES))
    if full:
        section.index_score = recomputed
    if reported is not None:
        notes.append(_score_note(label, reported[0], reported[1], recomputed, pairs))
    for cat, (score, partial, _line) in sec.scores.items():
        if cat != SYSTEM_CATEGORY:
            notes.append(f"{label}: {cat} Index Score{' (Partial Only)' if partial else ''}"
                         f" {score} (not recomputed)")
    return section, full


def _check_index_row(cat: str, row: _IndexRow, t: TestResult, label: str,
                     notes: list[str]) -> None:
    """A per-test index value: recomputed from the score, compared with the report."""
    if t.score is not None and abs(row.result - t.score) > 0.051:
        notes.append(f"{label}: {row.name}: index table RESULT {row.result} "
                     f"differs from the result line {t.score}")
    if row.baseline is None or row.index is None or row.baseline <= 0:
        return
    t.baseline = row.baseline
    known = INDEX_BASELINES.get(t.test)
    if cat == SYSTEM_CATEGORY and known is not None and known != row.baseline:
        notes.append(f"{label}: {row.name}: baseline {row.baseline} differs from "
                     f"UnixBench's {known}")
    if t.score is None or t.score <= 0:
        return
    t.index = t.score / row.baseline * 10
    tol = 0.05 + 0.05 / row.baseline * 10 + 1e-9
    if abs(t.index - row.index) > tol:
        notes.append(f"{label}: {row.name}: reported index {row.index} but "
                     f"{t.score} / {row.baseline} x 10 = {t.index:.2f}")


def _score_note(label: str, reported: float, partial: bool, recomputed: float | None,
                pairs: list[tuple[float, float]]) -> str:
    """The reported System Benchmarks Index Score against the recomputed one."""
    kind = "Index Score (Partial Only)" if partial else "Index Score"
    if recomputed is None:
        return (f"{label}: reported System Benchmarks {kind} {reported}; "
                "cannot recompute it (a test has no positive score)")
    tol = _score_tolerance(0.05, pairs)
    verdict = ("agrees within rounding" if abs(recomputed - reported) <= tol
               else f"MISMATCH beyond rounding (tolerance {tol:.3f})")
    return (f"{label}: reported System Benchmarks {kind} {reported}, "
            f"recomputed {recomputed:.2f}: {verdict}")
