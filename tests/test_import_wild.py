"""Reports as people publish them (issue 14): console logs with prompts and progress lines,
Markdown fences, several reports per file, empty trailing sections, partial reports, lines
annotated by their author. Content decides the format, never the first byte."""

from __future__ import annotations

import quopri
from pathlib import Path

import pytest

from clihelp import vb
from virtbench.cli.resolve import load_file_all, looks_like_json
from virtbench.errors import UsageError
from virtbench.importers.unixbench import (
    looks_quoted_printable,
    parse_reports,
    parse_text,
)
from virtbench.importers.unixbench_html import looks_like_html_page
from virtbench.results.model import RunResult
from virtbench.store import dispose_engines

DATA = Path(__file__).resolve().parent / "data"
REF = DATA / "unixbench-centos6-xen-pv.txt"
MULTI = DATA / "unixbench-5.1.3-16cpu-1-16copies.txt"


@pytest.fixture(autouse=True)
def _fresh_engines() -> None:
    dispose_engines()


def _scores(text: str) -> list[tuple[int, str, float | None]]:
    return [(s.copies, t.test, t.score) for r in parse_reports(text, "x.txt")
            for s in r.sections for t in s.tests]


def test_console_log_with_prompt_build_output_and_progress(tmp_path: Path) -> None:
    log = ("[root@centos6 UnixBench]# ./Run\nmake all\nmake[1]: Entering directory `/root/x'\n"
           "Checking distribution of files\n./pgms  exists\n\n"
           "1 x Dhrystone 2 using register variables  1 2 3 4 5 6 7 8 9 10\n\n"
           "1 x Double-Precision Whetstone  1 2 3 4 5 6 7 8 9 10\n\n"
           + REF.read_text() + "\n[root@centos6 UnixBench]# \n")
    f = tmp_path / "console.log"
    f.write_text(log)
    assert looks_like_json(f.read_bytes()[:4096]) is False
    docs = load_file_all(f)  # what `explain FILE`, `show FILE` and `import` use
    assert len(docs) == 1
    assert _scores(log) == _scores(REF.read_text())
    rc, out, err = vb("explain", str(f))
    assert rc == 0, err
    rc, out, err = vb("import", "--dry-run", str(f))
    assert rc == 0 and "checked" in out, err


def test_explain_on_a_file_of_several_reports_says_how_to_name_one(tmp_path: Path) -> None:
    text = REF.read_text()
    f = tmp_path / "two.md"
    f.write_text("before\n```\n" + text + "```\nafter\n```\n" + MULTI.read_text() + "```\n")
    rc, out, err = vb("explain", str(f))
    assert rc == 2 and err.count("\n") == 1
    assert "names 2 runs" in err and "virtbench import" in err
    rc, out, err = vb("import", "--dry-run", str(f))
    assert rc == 0 and out.count("checked") == 2, err


def test_json_is_recognised_by_structure() -> None:
    assert looks_like_json(b'  {"type": "virtbench-run"}')
    assert looks_like_json(b"[\n  {\n")
    assert looks_like_json(b"[]")
    assert not looks_like_json(b"[root@host ~]# ./Run\n")
    assert not looks_like_json(b"{ results below }\n")


def test_empty_trailing_section_then_prompt() -> None:
    text = (REF.read_text() + "\n------------------------------------------------------------"
            "------------\nBenchmark Run: Mon Aug 17 2015 05:10:14 - 05:10:14\n1 CPU in system; "
            "running 2 parallel copies of tests\n\n^C\n[root@centos6 UnixBench]# exit\n")
    run = parse_text(text, "stopped.txt")
    assert [s.copies for s in run.sections] == [1]
    assert run.sections[0].index_score == pytest.approx(440.9, abs=0.06)
    assert any("has no results" in n for n in run.notes)


def test_partial_report_without_benchmark_run_line() -> None:
    body = REF.read_text().split("1 CPU in system;", 1)[1]
    text = "4 CPUs in system;" + body.replace("running 1 parallel copy", "running 1 parallel copy")
    run = parse_text(text, "partial.txt")
    assert run.environment.cpu_count == 4
    assert len(run.sections[0].tests) == 12
    assert any("'Benchmark Run:'" in n for n in run.notes)  # no date: said so


def test_headless_first_section_is_one_copy() -> None:
    # What a reader copies from a terminal when the top scrolled away: results without the
    # 'Benchmark Run' and 'N CPUs' lines, then the N-copy section in full.
    lines = MULTI.read_text().splitlines(keepends=True)
    first = next(i for i, ln in enumerate(lines) if ln.startswith("Dhrystone 2"))
    run = parse_text("".join(lines[first:]), "scrolled.txt")
    assert [s.copies for s in run.sections] == [1, 16]
    assert any("taken as 1 copy" in n for n in run.notes)


def test_annotated_lines_keep_the_annotation_as_a_note() -> None:
    text = REF.read_text()
    text = text.replace("(10.0 s, 7 samples)\nDouble", "(10.0 s, 7 samples)   <- fast CPU\nDouble")
    text = text.replace("SYSCALL/SYSRET\n", "SYSCALL/SYSRET\n")
    text = text.replace("System Call Overhead                          15000.0     312263.9    "
                        "208.2", "System Call Overhead                          15000.0     "
                        "312263.9    208.2  # PV!")
    text = text.replace("Process Creation                               2630.6 lps   (30.0 s, 2 "
                        "samples)", "Process Creation                               2630.6 lps   "
                        "(30.0 s, 2 samples)\nthis one is slow, see below")
    run = parse_text(text, "annotated.txt")
    assert run.sections[0].index_score == pytest.approx(440.9, abs=0.06)
    notes = "\n".join(run.notes)
    assert "annotation '<- fast CPU'" in notes and "annotation '# PV!'" in notes
    assert "skipped: not a line of a UnixBench report: 'this one is slow, see below'" in notes


def test_reports_back_to_back_without_banners_are_split() -> None:
    def body(path: Path) -> str:
        text = path.read_text()
        return text[text.index("------------------------------------------------------------"
                               "------------\nBenchmark Run"):]
    text = "## box A\n```\n" + body(MULTI) + "```\n## box B\n```\n" + body(REF) + "```\n"
    runs = parse_reports(text, "two.md")
    assert [[s.copies for s in r.sections] for r in runs] == [[1, 16], [1]]
    assert [r.environment.cpu_count for r in runs] == [16, 1]


def test_out_of_range_numbers_are_refused_with_their_line() -> None:
    lines = REF.read_text().splitlines(keepends=True)
    k = next(i for i, ln in enumerate(lines) if ln.startswith("Pipe Throughput") and
             "12440.0" in ln)  # the index table row
    for bad in ("1e-320", "-12440.0", "0.0", "nan", "inf", "1" * 500, "9" * 5000):
        edited = list(lines)
        edited[k] = lines[k].replace("12440.0", bad)
        run = parse_text("".join(edited), "bad.txt")
        note = next(n for n in run.notes if n.startswith(f"line {k + 1} skipped: "))
        assert len(note) < 400
        pipe = run.sections[0].test("pipe")
        assert pipe is not None and pipe.score == 364987.0
        assert pipe.baseline is None  # the row was not used
        assert run.sections[0].index_score is None


def test_messages_quote_at_most_200_characters() -> None:
    text = REF.read_text().replace("Execl Throughput    ", "Execl Throughput " + "x" * 3000, 1)
    run = parse_text(text, "long.txt")
    assert max(len(n) for n in run.notes) < 320
    with pytest.raises(UsageError) as err:
        parse_text("Benchmark Run: x\n1 CPU in system; running 1 parallel copy of tests\n"
                   + "y" * 100_000 + "\n", "junk.txt")
    assert len(str(err.value)) < 400


def test_unixbench_html_report_reads_like_the_text_one() -> None:
    # UnixBench also writes its report as HTML (results/HOST-DATE-NN.html); published as is.
    f = DATA / "published" / "kose-nuc10i5-2020-11-15-01.html"
    (run,) = load_file_all(f)
    assert isinstance(run, RunResult)
    assert [s.copies for s in run.sections] == [1, 8]
    assert run.environment.machine == "x86_64" and run.environment.cpu_count == 8
    assert run.started == "2020-11-15T19:12:29"  # date from the page title, time per section
    dhry = run.sections[0].test("dhry2reg")
    assert dhry is not None and dhry.score == 49815325.2 and dhry.samples == 7
    assert run.sections[0].index_score == pytest.approx(2200.9, abs=0.06)
    assert any("HTML" in n for n in run.notes)
    assert all("agrees within rounding" in n for n in run.notes if "recomputed" in n)


def test_html_that_is_not_a_report_is_refused() -> None:
    with pytest.raises(UsageError, match="not a UnixBench report"):
        parse_text("<html><body><table><tr><td>Benchmark Run: soon</td></tr></table>"
                   "<script>alert(1)</script></body></html>", "page.html")


def test_test_lines_wrapped_by_a_forum_are_joined() -> None:
    text = REF.read_text().replace("251160.8 KBps  (30.0 s, 2 samples)",
                                   "251160.8 KBps  (30.0 s, 2\nsamples)")
    text = text.replace("364987.0 lps   (10.0 s, 7 samples)", "364987.0 lps\n(10.0 s, 7 samples)")
    run = parse_text(text, "wrapped.txt")
    assert run.sections[0].index_score == pytest.approx(440.9, abs=0.06)
    assert sum("joined with line" in n for n in run.notes) == 2


def test_denormal_score_is_refused_with_its_line() -> None:
    lines = REF.read_text().splitlines(keepends=True)
    k = next(i for i, ln in enumerate(lines) if ln.startswith("Pipe Throughput  "))
    lines[k] = lines[k].replace("364987.0", "1e-320")
    run = parse_text("".join(lines), "tiny.txt")
    assert any(n.startswith(f"line {k + 1} skipped: ") and "1e-320" in n for n in run.notes)
    assert run.sections[0].test("pipe") is None and run.sections[0].index_score is None


def test_quoted_printable_mail_body_is_decoded() -> None:
    # A report as mailing-list archives keep it: quoted-printable, test lines cut by soft
    # breaks ('(10.0 s, 7 samp=' / 'les)'), '=' written '=3D' (tests/data/published).
    f = DATA / "published" / "lkml-2018-xeon-e3-1245v5-qp-excerpt.txt"
    assert "samp=\nles)" in f.read_text()
    (run,) = load_file_all(f)
    assert isinstance(run, RunResult)
    assert [s.copies for s in run.sections] == [1, 8]
    assert run.sections[0].index_score == pytest.approx(2547.7, abs=0.06)
    assert run.environment.cpu_model == "Intel(R) Xeon(R) CPU E3-1245 v5 @ 3.50GHz"
    assert run.started == "2018-06-11T05:00:01"
    assert any("quoted-printable" in n for n in run.notes)
    assert all("agrees within rounding" in n for n in run.notes if "recomputed" in n)
    # Encoded here by the standard library: the same scores as the plain report.
    encoded = quopri.encodestring(REF.read_bytes()).decode()
    assert "=3D" in encoded and _scores(encoded) == _scores(REF.read_text())
    # A plain report (its '=====' rules end in '=') is never taken for quoted-printable.
    for p in (REF, MULTI, *sorted((DATA / "published").glob("*.txt"))):
        text = p.read_text(encoding="utf-8", errors="replace")
        assert looks_quoted_printable(text) == ("samp=\n" in text), p.name


def test_a_web_page_is_read_as_a_reader_sees_it() -> None:
    # A blog post saved as HTML: one <br> per line, blanks as &nbsp;, a script that must not
    # be read, the banner in a heading. A reader sees the report; so does the importer.
    lines = REF.read_text().splitlines()
    page = ("<!DOCTYPE html><html><head><title>my vps</title><style>p{}</style></head><body>"
            "<div class=post><p>" + "<br>".join(ln.replace("  ", "&nbsp; ") for ln in lines)
            + "</p><script>document.write('Pipe Throughput 1.0 lps (10.0 s, 7 samples)')"
            "</script></div></body></html>")
    (run,) = parse_reports(page, "post.html")
    assert _scores(page) == _scores(REF.read_text())
    assert run.sections[0].index_score == pytest.approx(440.9, abs=0.06)
    assert run.environment.cpu_model == "Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz"
    assert any("web page" in n for n in run.notes)
    assert looks_like_html_page(page)
    # Markdown with a few inline tags is text (a corpus post with <details> and <picture>).
    assert not looks_like_html_page("<details>\n<summary>x</summary>\n```\n" + REF.read_text())


def test_blog_typography_dashes_are_read() -> None:
    # WordPress and the like turn '--' into an em dash and '-' into an en dash.
    (run,) = load_file_all(DATA / "published" / "blog-shanda-cloud-2011.md")
    assert isinstance(run, RunResult)
    assert run.environment.kernel == "2.6.18-274.el5xen" and run.environment.os == "GNU/Linux"
    assert run.started == "2011-11-17T17:54:15" and run.finished == "2011-11-17T18:22:09"


def test_the_index_table_alone_is_a_report() -> None:
    # Blogs often publish only the index table: its RESULT column is the score; unit, seconds
    # and samples stay missing, and the printed index is still checked.
    text = REF.read_text()
    table = text[text.index("System Benchmarks Index Values"):]
    run = parse_text("My VPS:\n\n" + table, "table.txt")
    (sec,) = run.sections
    assert sec.copies == 1 and len(sec.tests) == 12
    assert sec.index_score == pytest.approx(440.9, abs=0.06)
    pipe = sec.test("pipe")
    assert pipe is not None and pipe.score == 364987.0 and pipe.baseline == 12440.0
    assert pipe.samples is None and pipe.elapsed is None and pipe.unit == ""
    assert any("index table alone" in n for n in run.notes)
    assert all("agrees within rounding" in n for n in run.notes if "recomputed" in n)
    # With result lines, the table only checks them (no test is read twice).
    full = parse_text(text, "full.txt")
    assert not any("index table alone" in n for n in full.notes)
