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

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from virtbench.analysis.stats import geometric_mean
from virtbench.errors import UsageError
from virtbench.results.model import Environment, RunResult, Section, TestResult, utc_now
from virtbench.workloads.catalog import CATALOG, INDEX_TESTS

# ---- facts about UnixBench's reports ---------------------------------------------------------
# Report name -> test id (UnixBench's own test names).
TEST_IDS: dict[str, str] = {
    "Dhrystone 2 using register variables": "dhry2reg",
    "Dhrystone 2 without register variables": "dhry2",
    "Double-Precision Whetstone": "whetstone-double",
    "System Call Overhead": "syscall",
    "Pipe-based Context Switching": "context1",
    "Pipe Throughput": "pipe",
    "Process Creation": "spawn",
    "Execl Throughput": "execl",
    "File Write 1024 bufsize 2000 maxblocks": "fstime-w",
    "File Read 1024 bufsize 2000 maxblocks": "fstime-r",
    "File Copy 1024 bufsize 2000 maxblocks": "fstime",
    "File Write 256 bufsize 500 maxblocks": "fsbuffer-w",
    "File Read 256 bufsize 500 maxblocks": "fsbuffer-r",
    "File Copy 256 bufsize 500 maxblocks": "fsbuffer",
    "File Write 4096 bufsize 8000 maxblocks": "fsdisk-w",
    "File Read 4096 bufsize 8000 maxblocks": "fsdisk-r",
    "File Copy 4096 bufsize 8000 maxblocks": "fsdisk",
    "Arithoh": "arithoh",
    "Arithmetic Test (short)": "short",
    "Arithmetic Test (int)": "int",
    "Arithmetic Test (long)": "long",
    "Arithmetic Test (float)": "float",
    "Arithmetic Test (double)": "double",
    "Dc: sqrt(2) to 99 decimal places": "dc",
    "Recursion Test -- Tower of Hanoi": "hanoi",
    "Recursion Test--Tower of Hanoi": "hanoi",
    "Grep a large file (system's grep)": "grep",
    "Exec System Call Overhead": "sysexec",
    "2D graphics: rectangles": "2d-rects",
    "2D graphics: lines": "2d-lines",
    "2D graphics: circles": "2d-circle",
    "2D graphics: ellipses": "2d-ellipse",
    "2D graphics: polygons": "2d-shapes",
    "2D graphics: aa polygons": "2d-aashapes",
    "2D graphics: complex polygons": "2d-polys",
    "2D graphics: text": "2d-text",
    "2D graphics: images and blits": "2d-blit",
    "2D graphics: windows": "2d-window",
    "3D graphics: gears": "ubgears",
}

# The System Benchmarks Index: its 12 tests and their published baselines (one table: the
# suite's catalog).
INDEX_BASELINES: dict[str, float] = {
    t: b for t in INDEX_TESTS if (b := CATALOG[t].baseline) is not None
}

SYSTEM_CATEGORY = "System Benchmarks"

# Month names in the locales UnixBench reports are commonly produced in (strftime %b),
# lower-cased, without trailing dots. Numeric months ("8月", "8월") are handled separately.
_MONTHS: dict[str, int] = {}
for _num, _names in enumerate(
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
    start=1,
):
    for _n in _names.split():
        _MONTHS.setdefault(_n, _num)

# ---- line patterns ---------------------------------------------------------------------------
_NUM = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
RE_BANNER = re.compile(r"BYTE UNIX Benchmarks \(Version\s+([^)\s]+)\s*\)")
RE_SYSTEM = re.compile(r"^\s*System:\s*(?P<host>[^:]*?)\s*:\s*(?P<system>.*?)\s*$")
RE_OS = re.compile(r"^\s*OS:\s*(?P<os>.*?)\s+--\s+(?P<rel>.*?)\s+--\s+(?P<ver>.*?)\s*$")
RE_MACHINE = re.compile(r"^\s*Machine:\s*(?P<mach>\S+)(?:\s*[:(]\s*(?P<plat>[^)]*)\)?)?\s*$")
RE_LANGUAGE = re.compile(r"^\s*Language:\s*(?P<lang>.*?)\s*$")
RE_CPU = re.compile(
    r"^\s*CPU\s+(?P<n>\d+):\s*(?P<model>.*?)\s*\((?P<bogo>" + _NUM + r")\s+bogomips\)\s*$"
)
RE_CPU_NONE = re.compile(r"^\s*CPU:\s*no details available")
RE_GRAPHICS = re.compile(r"^\s*Graphics:\s*(?P<g>.*?)\s*$")
RE_UPTIME = re.compile(
    r"\bup\s+(?P<up>.*?),\s+\d+\s+users?,\s+load averages?:\s*(?P<l1>\d+[.,]\d+),?\s+"
    r"(?P<l5>\d+[.,]\d+),?\s+(?P<l15>\d+[.,]\d+)(?:;\s*runlevel\s*(?P<rl>\S*))?"
)
RE_RUN = re.compile(r"^\s*Benchmark Run:\s*(?P<when>.*?)\s*$")
RE_TIMES = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2}):(\d{2})\s*$")
RE_CPUS = re.compile(
    r"^\s*(?P<cpus>\d+)\s+CPUs?\s+in\s+system;\s+running\s+(?P<copies>\d+)\s+parallel\s+"
    r"cop(?:y|ies)\s+of\s+tests\s*$"
)
RE_TEST = re.compile(
    r"^(?P<name>\S.*?)\s+(?P<value>" + _NUM + r")\s+(?P<unit>\S+)\s+"
    r"\(\s*(?P<secs>" + _NUM + r")\s+s,\s+(?P<samples>\d+)\s+samples?\)\s*$"
)
RE_INDEX_HEAD = re.compile(
    r"^(?P<cat>\S.*?)\s+(?P<kind>Index Values|Partial Index)\s+BASELINE\s+RESULT\s+INDEX\s*$"
)
RE_INDEX_ROW = re.compile(
    r"^(?P<name>\S.*?)\s+(?P<base>" + _NUM + r"|---)\s+(?P<res>" + _NUM + r")\s+"
    r"(?P<idx>" + _NUM + r"|---)\s*$"
)
RE_SCORE = re.compile(
    r"^(?P<cat>\S.*?)\s+Index Score(?P<partial>\s+\(Partial Only\))?\s+(?P<score>" + _NUM
    + r")\s*$"
)
RE_NO_INDEX = re.compile(r"^\s*No index results available for (?P<cat>.*?)\s*$")
RE_RULE = re.compile(r"^\s*(?:-{10,}|={8,})\s*$")
RE_FAILED = re.compile(r"^(?P<name>\S.*?)\s*:?\s+(?:\(?no measured results\)?|FAILED.*)$")


def test_id(name: str) -> str:
    """The test id of a report name (a slug for names this importer does not know)."""
    if name in TEST_IDS:
        return TEST_IDS[name]
    m = re.fullmatch(r"Shell Scripts \((\d+) concurrent\)", name)
    if m:
        return f"shell{m.group(1)}"
    if name.startswith("C Compiler Throughput"):
        return "C"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unnamed"


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
    m = re.search(r"(?<!\d)(\d{1,2})\s*(?:月|월)", rest)
    if m:
        month = int(m.group(1))
        rest = rest[: m.start()] + " " + rest[m.end():]
    else:
        for word in re.findall(r"[^\W\d_]+", rest.lower()):
            if word in _MONTHS:
                month = _MONTHS[word]
                break
            if word[:3] in _MONTHS and len(word) >= 3:
                month = _MONTHS[word[:3]]
                break
    days = [int(d) for d in re.findall(r"(?<!\d)(\d{1,2})(?!\d)", rest)]
    days = [d for d in days if 1 <= d <= 31]
    if month is None and len(days) >= 2 and days[0] <= 12:
        # A numeric month whose suffix did not survive decoding: UnixBench's format is
        # "%a %b %d %Y", so the month comes before the day.
        month, days = days[0], days[1:]
    if month is None or not days:
        return None
    try:
        h1, m1, s1, h2, m2, s2 = (int(g) for g in tm.groups())
        start = datetime(year, month, days[-1], h1, m1, s1)
        end = datetime(year, month, days[-1], h2, m2, s2)
    except ValueError:
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
    when: str
    cpus: int = 0
    copies: int = 0
    tests: list[TestResult] = field(default_factory=list)
    test_lines: dict[str, int] = field(default_factory=dict)
    index_rows: dict[str, list[_IndexRow]] = field(default_factory=dict)
    scores: dict[str, tuple[float, bool, int]] = field(default_factory=dict)
    """category -> (reported score, partial, line)."""
    no_index: list[str] = field(default_factory=list)
    phase: str = "cpus"
    category: str | None = None

    @property
    def complete(self) -> bool:
        return bool(self.scores or self.no_index)


class _Fail(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _f(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _score_tolerance(reported_rounding: float, values: list[tuple[float, float]]) -> float:
    """Largest difference between a recomputed geometric mean of ``score/baseline*10`` and
    the reported one that rounding explains: the reported value's own rounding plus the
    effect of each score having been printed to 0.05 (relative 0.05/score, averaged by the
    geometric mean)."""
    if not values:
        return reported_rounding
    rel = sum(0.05 / s for s, _ in values if s > 0) / len(values)
    return reported_rounding + rel * geometric_mean([s / b * 10 for s, b in values]) + 1e-9


def parse_text(text: str, name: str = "<report>", first_line: int = 1) -> RunResult:
    """Parse one UnixBench report. ``name`` (usually the file name) prefixes errors;
    ``first_line`` is the line number of the text's first line in that file."""
    try:
        return _parse(_strip_margin(text), name)
    except _Fail as exc:
        raise UsageError(f"{name}:{exc.line + first_line - 1}: {exc.message}") from None


RE_RULE_EQ = re.compile(r"^\s*={10,}\s*$")
RE_MARGIN = re.compile(r"^(?P<margin>[ \t]*(?:>[ \t]?)*[ \t]*)Benchmark Run:", re.MULTILINE)


def _strip_margin(text: str) -> str:
    """A report pasted with a margin (an indented Markdown code block, an e-mail quote
    ``> ``) as UnixBench printed it: the margin is what precedes ``Benchmark Run:`` (which
    UnixBench prints at column 0), removed from every line that has it. Line numbers stay."""
    m = RE_MARGIN.search(text.lstrip("\ufeff"))
    if m is None or not m.group("margin"):
        return text
    margin = m.group("margin")
    bare = margin.rstrip()  # an empty quoted line is '>' without the trailing space
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith(margin):
            line = line[len(margin):]
        elif bare and line.rstrip("\r\n") == bare:
            line = line[len(bare):]
        out.append(line)
    return "".join(out)


def split_reports(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each report in ``text``. A report starts at its banner
    (with the ``=====`` rule above it); text before the first banner goes with the first."""
    lines = text.splitlines(keepends=True)
    starts: list[int] = []
    for i, line in enumerate(lines):
        if RE_BANNER.search(line):
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            starts.append(j if j >= 0 and RE_RULE_EQ.match(lines[j]) else i)
    if len(starts) <= 1:
        return [(1, text)]
    bounds = [0, *starts[1:], len(lines)]
    return [(bounds[k] + 1, "".join(lines[bounds[k]:bounds[k + 1]]))
            for k in range(len(bounds) - 1)]


def parse_reports(text: str, name: str = "<report>") -> list[RunResult]:
    """Every report in ``text`` (a file may hold several, one after the other)."""
    return [parse_text(chunk, name, first) for first, chunk in split_reports(text)]


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


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
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


def _parse(text: str, name: str) -> RunResult:
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    env = Environment()
    version: str | None = None
    cpus_seen: list[tuple[str, float]] = []
    flags: list[str] = []
    language: str | None = None
    graphics: str | None = None
    system: str | None = None
    runlevel: str | None = None
    sections: list[_Section] = []
    cur: _Section | None = None
    last_cpu_line = -10
    after_final = False

    for no, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        bm = RE_BANNER.search(line)
        if bm:
            if sections:
                raise _Fail(no, "a second UnixBench report starts here: split the file, "
                                "one report per file")
            version = bm.group(1)
            if version.split(".")[0] in {"1", "2", "3", "4"}:
                raise _Fail(no, f"UnixBench {version} reports are not supported (5.1.x and "
                                "6.x are)")
            continue
        rm = RE_RUN.match(line)
        if rm:
            if cur is not None and not cur.complete:
                raise _Fail(no, f"the section that starts at line {cur.line} has no index "
                                "score: the report is truncated or garbled")
            cur = _Section(line=no, when=rm.group("when"))
            sections.append(cur)
            after_final = False
            continue
        if cur is None:
            _header_line(line, no, env, cpus_seen, flags, last_cpu_line)
            if RE_CPU.match(line):
                last_cpu_line = no
            elif RE_LANGUAGE.match(line):
                language = RE_LANGUAGE.match(line).group("lang")  # type: ignore[union-attr]
            elif RE_GRAPHICS.match(line):
                graphics = RE_GRAPHICS.match(line).group("g")  # type: ignore[union-attr]
            sm = RE_SYSTEM.match(line)
            if sm:
                system = sm.group("system") or None
            um = RE_UPTIME.search(line)
            if um and um.group("rl"):
                runlevel = um.group("rl")
            continue
        if RE_RULE.match(line):
            continue
        if after_final:
            continue  # trailing text after the last score (a shell prompt, a signature)
        _section_line(cur, line, no)
        if cur.complete and cur.phase == "done":
            after_final = True

    if not sections:
        if any("FINAL SCORE" in ln or "INDEX VALUES" in ln for ln in lines):
            raise _Fail(1, "this looks like a UnixBench 4.x report: only 5.1.x and 6.x "
                           "reports are supported")
        raise _Fail(max(len(lines), 1), "not a UnixBench report: no 'Benchmark Run:' line")
    last = sections[-1]
    if not last.complete:
        where = len(lines)
        if last.phase == "cpus":
            raise _Fail(last.line + 1, "the report is truncated: no 'N CPUs in system; "
                                       "running N parallel copies of tests' line")
        raise _Fail(where, f"the report is truncated: the section that starts at line "
                           f"{last.line} has no index score")

    return _build(name, text, env, version, cpus_seen, flags, language, graphics, system,
                  runlevel, sections)


def _header_line(line: str, no: int, env: Environment, cpus: list[tuple[str, float]],
                 flags: list[str], last_cpu_line: int) -> None:
    m = RE_SYSTEM.match(line)
    if m:
        env.hostname = m.group("host") or None
        return
    m = RE_OS.match(line)
    if m:
        env.os, env.kernel, env.kernel_version = m.group("os"), m.group("rel"), m.group("ver")
        return
    m = RE_MACHINE.match(line)
    if m:
        env.machine = m.group("mach")
        return
    m = RE_CPU.match(line)
    if m:
        try:
            cpus.append((m.group("model"), _f(m.group("bogo"))))
        except ValueError:
            raise _Fail(no, "unreadable bogomips in the CPU line") from None
        if env.cpu_model is None:
            env.cpu_model = m.group("model") or None
        return
    if no == last_cpu_line + 1 and line.startswith("   ") and ":" not in line:
        flags.append(line.strip())
        return
    m = RE_UPTIME.search(line)
    if m:
        env.uptime = m.group("up").strip()
        env.load_average = [float(m.group(k).replace(",", ".")) for k in ("l1", "l5", "l15")]


def _section_line(cur: _Section, line: str, no: int) -> None:
    if cur.phase == "cpus":
        m = RE_CPUS.match(line)
        if not m:
            raise _Fail(no, "expected 'N CPUs in system; running N parallel copies of tests' "
                            f"after 'Benchmark Run:', found {line.strip()!r}")
        cur.cpus, cur.copies = int(m.group("cpus")), int(m.group("copies"))
        if cur.copies < 1:
            raise _Fail(no, "the number of parallel copies must be at least 1")
        cur.phase = "tests"
        return
    if cur.phase == "tests":
        m = RE_TEST.match(line)
        if m:
            tname = m.group("name").strip()
            tid = test_id(tname)
            if tid in cur.test_lines:
                raise _Fail(no, f"{tname!r} appears twice in this section (first at line "
                                f"{cur.test_lines[tid]})")
            try:
                value, secs = _f(m.group("value")), _f(m.group("secs"))
            except ValueError:
                raise _Fail(no, f"unreadable number in {line.strip()!r}") from None
            samples = int(m.group("samples"))
            cur.tests.append(TestResult(
                test=tid, name=tname, unit=m.group("unit"), copies=cur.copies,
                score=value, samples=samples, elapsed=secs,
                status="ok" if samples > 0 and value > 0 else "failed",
                error=None if samples > 0 and value > 0 else "no measured results",
            ))
            cur.test_lines[tid] = no
            return
        fm = RE_FAILED.match(line)
        if fm and not RE_INDEX_HEAD.match(line) and not RE_NO_INDEX.match(line):
            tname = fm.group("name").strip()
            cur.tests.append(TestResult(test=test_id(tname), name=tname, unit="",
                                        copies=cur.copies, status="failed",
                                        error=line.strip()))
            cur.test_lines[test_id(tname)] = no
            return
        if not cur.tests or not (RE_INDEX_HEAD.match(line) or RE_NO_INDEX.match(line)
                                 or RE_SCORE.match(line)):
            raise _Fail(no, "not a test result line like 'Pipe Throughput  364987.0 lps   "
                            f"(10.0 s, 7 samples)': {line.strip()!r}")
        cur.phase = "index"
    # index tables and scores (one table per category)
    m = RE_INDEX_HEAD.match(line)
    if m:
        cur.category = m.group("cat").strip()
        cur.index_rows.setdefault(cur.category, [])
        return
    m = RE_SCORE.match(line)
    if m:
        cat = m.group("cat").strip()
        try:
            cur.scores[cat] = (_f(m.group("score")), bool(m.group("partial")), no)
        except ValueError:
            raise _Fail(no, f"unreadable index score in {line.strip()!r}") from None
        cur.category = None
        cur.phase = "done"
        return
    m = RE_NO_INDEX.match(line)
    if m:
        cur.no_index.append(m.group("cat"))
        cur.phase = "done"
        return
    if cur.category is not None:
        m = RE_INDEX_ROW.match(line)
        if not m:
            raise _Fail(no, f"expected an index row 'NAME BASELINE RESULT INDEX', found "
                            f"{line.strip()!r}")
        rname = m.group("name").strip()
        try:
            row = _IndexRow(
                line=no, name=rname,
                baseline=None if m.group("base") == "---" else _f(m.group("base")),
                result=_f(m.group("res")),
                index=None if m.group("idx") == "---" else _f(m.group("idx")),
            )
        except ValueError:
            raise _Fail(no, f"unreadable number in {line.strip()!r}") from None
        if test_id(rname) not in cur.test_lines:
            raise _Fail(no, f"index row for {rname!r}, which has no result line in this "
                            "section")
        cur.index_rows[cur.category].append(row)
        return
    if cur.phase == "done":
        # A new table may follow (another category); anything else ends the report.
        raise _Fail(no, f"unexpected line after the index score: {line.strip()!r}")
    raise _Fail(no, f"unexpected line in the results: {line.strip()!r}")


def _build(name: str, text: str, env: Environment, version: str | None,
           cpus: list[tuple[str, float]], flags: list[str], language: str | None,
           graphics: str | None, system: str | None, runlevel: str | None,
           parsed: list[_Section]) -> RunResult:
    normalized = "\n".join(line.rstrip() for line in text.lstrip("\ufeff").splitlines()).strip()
    run_id = hashlib.sha256(normalized.encode()).hexdigest()[:12]
    notes: list[str] = []
    env.cpu_count = parsed[0].cpus or (len(cpus) or None)
    extra: dict[str, object] = {"unixbench_version": version}
    if system:
        extra["system"] = system
    if language:
        extra["language"] = language
    if graphics:
        extra["graphics"] = graphics
    if runlevel:
        extra["runlevel"] = runlevel
    if cpus:
        extra["cpus_listed"] = len(cpus)
        extra["bogomips"] = cpus[0][1]
    if flags:
        extra["cpu_flags"] = flags[0]
    extra["benchmark_run"] = [s.when for s in parsed]
    env.extra = {k: v for k, v in extra.items() if v is not None}

    when = parse_run_date(parsed[0].when)
    end = parse_run_date(parsed[-1].when)
    if when is not None:
        started = when[0].isoformat()
        finished = end[1].isoformat() if end is not None else when[1].isoformat()
    else:
        started, finished = utc_now(), None
        notes.append(f"benchmark date {parsed[0].when!r} not understood: 'started' is the "
                     "import time")

    sections: list[Section] = []
    all_full = True
    for sec in parsed:
        if any(s.copies == sec.copies for s in sections):
            raise UsageError(f"{name}:{sec.line}: a second section with {sec.copies} "
                             "parallel copies")
        section = Section(copies=sec.copies, tests=sec.tests)
        by_id = {t.test: t for t in sec.tests}
        label = f"{sec.copies} cop{'y' if sec.copies == 1 else 'ies'}"
        # Per-test index values: recomputed from the score, compared with the report.
        for cat, rows in sec.index_rows.items():
            for row in rows:
                t = by_id[test_id(row.name)]
                if t.score is not None and abs(row.result - t.score) > 0.051:
                    notes.append(f"{label}: {row.name}: index table RESULT {row.result} "
                                 f"differs from the result line {t.score}")
                if row.baseline is None or row.index is None or row.baseline <= 0:
                    continue
                t.baseline = row.baseline
                known = INDEX_BASELINES.get(t.test)
                if cat == SYSTEM_CATEGORY and known is not None and known != row.baseline:
                    notes.append(f"{label}: {row.name}: baseline {row.baseline} differs from "
                                 f"UnixBench's {known}")
                if t.score is None or t.score <= 0:
                    continue
                t.index = t.score / row.baseline * 10
                tol = 0.05 + 0.05 / row.baseline * 10 + 1e-9
                if abs(t.index - row.index) > tol:
                    notes.append(f"{label}: {row.name}: reported index {row.index} but "
                                 f"{t.score} / {row.baseline} x 10 = {t.index:.2f}")
        # The System Benchmarks Index Score.
        sys_rows = sec.index_rows.get(SYSTEM_CATEGORY, [])
        pairs = [(by_id[test_id(r.name)].score or 0.0, r.baseline or 0.0) for r in sys_rows
                 if r.baseline and r.index is not None]
        index_tests = [by_id[test_id(r.name)] for r in sys_rows
                       if r.baseline and r.index is not None]
        section.index_tests = len(index_tests)
        reported = sec.scores.get(SYSTEM_CATEGORY)
        recomputed: float | None = None
        if pairs and all(s > 0 for s, _ in pairs):
            recomputed = geometric_mean([t.index for t in index_tests if t.index is not None])
        full = (reported is not None and not reported[1]
                and {t.test for t in index_tests} == set(INDEX_BASELINES))
        if full:
            section.index_score = recomputed
        else:
            all_full = False
        if reported is not None:
            kind = "Index Score (Partial Only)" if reported[1] else "Index Score"
            if recomputed is None:
                notes.append(f"{label}: reported System Benchmarks {kind} {reported[0]}; "
                             "cannot recompute it (a test has no positive score)")
            else:
                tol = _score_tolerance(0.05, pairs)
                verdict = ("agrees within rounding" if abs(recomputed - reported[0]) <= tol
                           else f"MISMATCH beyond rounding (tolerance {tol:.3f})")
                notes.append(f"{label}: reported System Benchmarks {kind} {reported[0]}, "
                             f"recomputed {recomputed:.2f}: {verdict}")
        for cat, (score, partial, _line) in sec.scores.items():
            if cat != SYSTEM_CATEGORY:
                notes.append(f"{label}: {cat} Index Score{' (Partial Only)' if partial else ''}"
                             f" {score} (not recomputed)")
        sections.append(section)

    return RunResult(
        id=run_id,
        source="imported-unixbench",
        suite="unixbench",
        profile=profile_for(version),
        mode="standard",
        comparable=True,
        status="complete" if all_full else "partial",
        started=started,
        finished=finished,
        environment=env,
        sections=sections,
        notes=notes,
        original_text=text,
    )
