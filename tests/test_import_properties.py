"""Hypothesis properties of the UnixBench importer (issue 12): whatever the text, the
importer returns runs or raises the project's ``UsageError``, nothing else; every number it
keeps is finite and inside its sane range; messages quote at most 200 characters of input.
Examples are bounded so the suite stays fast; ``bench/fuzz.py`` runs the big campaign."""

from __future__ import annotations

import atexit
import contextlib
import math
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, configuration, given, settings
from hypothesis import strategies as st

from virtbench.errors import UsageError
from virtbench.importers.unixbench import RANGES, _reports, parse_reports

# Hypothesis keeps caches in ./.hypothesis; keep them out of the work tree, and remove them.
_HOME = tempfile.mkdtemp(prefix="virtbench-hypothesis-")
atexit.register(shutil.rmtree, _HOME, True)
configuration.set_hypothesis_home_dir(_HOME)

DATA = Path(__file__).resolve().parent / "data"
REF_LINES = (DATA / "unixbench-centos6-xen-pv.txt").read_text().splitlines(keepends=True)
MULTI_LINES = (DATA / "unixbench-5.1.3-16cpu-1-16copies.txt").read_text().splitlines(
    keepends=True)

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["1e-320", "-0.0", "nan", "inf", "-inf", "1" * 5000, "0", "1e308",
                     "4.9e-324", "---", "", "1.2.3", "１２３"]),
)


def _check(text: str) -> None:
    try:
        runs = _reports(text, "prop.txt")  # the inner function: no safety net
    except UsageError as exc:
        assert str(exc).startswith("prop.txt")
        assert len(str(exc)) < 600
        return
    for run in runs:
        for note in run.notes:
            assert len(note) < 700
        for sec in run.sections:
            assert sec.copies >= 1
            if sec.index_score is not None:
                assert math.isfinite(sec.index_score)
            for t in sec.tests:
                for v, what in ((t.score, "score"), (t.elapsed, "seconds"),
                                (t.baseline, "baseline"), (t.index, None)):
                    if v is None:
                        continue
                    assert math.isfinite(v)
                    if what is not None:
                        lo, hi = RANGES[what]
                        assert lo <= v <= hi
        run.to_dict()  # serialisable


@SETTINGS
@given(st.text(max_size=2000))
def test_any_text(text: str) -> None:
    _check(text)


@SETTINGS
@given(st.lists(st.sampled_from(REF_LINES + MULTI_LINES + [
    "\n", "```\n", "[root@h ~]# ./Run\n", "1 x Pipe Throughput  1 2 3\n", "> \n",
    "Benchmark Run: Mon Aug 17 2015 04:42:22 - 05:10:14\n",
    "0 CPUs in system; running 1 parallel copy of tests\n",
]), max_size=120))
def test_report_lines_shuffled(lines: list[str]) -> None:
    _check("".join(lines))


@SETTINGS
@given(st.integers(min_value=0, max_value=len(REF_LINES) - 1), NUMBERS,
       st.integers(min_value=0, max_value=5))
def test_one_number_replaced(row: int, number: str, which: int) -> None:
    line = REF_LINES[row]
    tokens = line.split()
    numeric = [t for t in tokens if any(c.isdigit() for c in t)]
    if numeric:
        target = numeric[which % len(numeric)]
        line = line.replace(target, number, 1)
    _check("".join([*REF_LINES[:row], line, *REF_LINES[row + 1:]]))


@SETTINGS
@given(st.integers(min_value=0, max_value=len(REF_LINES)),
       st.text(alphabet=st.sampled_from(" \t>`(|)x0.9e-"), min_size=0, max_size=5000))
def test_inserted_noise(at: int, noise: str) -> None:
    _check("".join([*REF_LINES[:at], noise + "\n", *REF_LINES[at:]]))


@SETTINGS
@given(st.binary(max_size=3000))
def test_any_bytes_through_the_public_entry(data: bytes) -> None:
    text = data.decode("latin-1")
    with contextlib.suppress(UsageError):
        parse_reports(text, "bytes.txt")


HTML_REPORT = (DATA / "published" / "kose-nuc10i5-2020-11-15-01.html").read_text()


@SETTINGS
@given(st.integers(min_value=0, max_value=len(HTML_REPORT)),
       st.text(alphabet=st.sampled_from("<>/tdrhb &#;x1.0 :\n\"="), max_size=300),
       st.integers(min_value=0, max_value=len(HTML_REPORT)))
def test_html_report_mutated(at: int, noise: str, cut: int) -> None:
    _check(HTML_REPORT[:at] + noise + HTML_REPORT[at:cut])


TEST_ROWS = [i for i, ln in enumerate(REF_LINES) if "samples)" in ln]


@SETTINGS
@given(st.sampled_from(TEST_ROWS), NUMBERS, st.sampled_from(["score", "secs", "samples"]))
def test_a_test_line_number_replaced(row: int, number: str, field: str) -> None:
    line = REF_LINES[row]
    head, _, tail = line.partition("(")
    if field == "score":
        parts = head.rsplit(None, 2)
        line = line.replace(parts[1], number, 1)
    elif field == "secs":
        line = head + "(" + tail.replace(tail.split()[0], number, 1)
    else:
        line = head + "(" + tail.replace(tail.split()[2], number, 1)
    _check("".join([*REF_LINES[:row], line, *REF_LINES[row + 1:]]))
