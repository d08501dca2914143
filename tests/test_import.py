"""The UnixBench text importer and ``virtbench import``, on the real shared report and on
synthesized variants (multi-section, 6.0, localized dates, partial, truncated, garbage)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from clihelp import vb
from virtbench.errors import UsageError
from virtbench.importers.unixbench import (
    parse_file,
    parse_file_all,
    parse_reports,
    parse_run_date,
    parse_text,
)
from virtbench.results.model import load_document
from virtbench.store import dispose_engines, open_store

DATA = Path(__file__).resolve().parent / "data"
REF = DATA / "unixbench-centos6-xen-pv.txt"
MULTI = DATA / "unixbench-5.1.3-16cpu-1-16copies.txt"
V6 = DATA / "unixbench-6.0-2cpu.txt"

# Every number in the reference report, as printed: name -> (score, unit, secs, samples,
# baseline, index).
REF_NUMBERS = {
    "dhry2reg": (23617050.2, "lps", 10.0, 7, 116700.0, 2023.7),
    "whetstone-double": (2511.5, "MWIPS", 9.9, 7, 55.0, 456.6),
    "execl": (1335.5, "lps", 30.0, 2, 43.0, 310.6),
    "fstime": (251160.8, "KBps", 30.0, 2, 3960.0, 634.2),
    "fsbuffer": (65406.4, "KBps", 30.0, 2, 1655.0, 395.2),
    "fsdisk": (876849.4, "KBps", 30.0, 2, 5800.0, 1511.8),
    "pipe": (364987.0, "lps", 10.0, 7, 12440.0, 293.4),
    "context1": (64080.7, "lps", 10.0, 7, 4000.0, 160.2),
    "spawn": (2630.6, "lps", 30.0, 2, 126.0, 208.8),
    "shell1": (2140.9, "lpm", 60.0, 2, 42.4, 504.9),
    "shell8": (288.9, "lpm", 60.1, 2, 6.0, 481.5),
    "syscall": (312263.9, "lps", 10.0, 7, 15000.0, 208.2),
}


@pytest.fixture(autouse=True)
def _fresh_engines() -> None:
    dispose_engines()


def test_reference_report_every_number() -> None:
    run = parse_file(REF)
    assert run.source == "imported-unixbench"
    assert run.profile == "unixbench-5.1.3"
    assert run.status == "complete"
    assert run.original_text == REF.read_text(encoding="utf-8")
    assert run.started == "2015-08-17T04:42:22"  # from the Japanese date line
    assert run.finished == "2015-08-17T05:10:14"
    env = run.environment
    assert env.hostname == "centos6.takara.org"
    assert env.kernel == "2.6.32-504.23.4.el6.x86_64"
    assert env.kernel_version == "#1 SMP Tue Jun 9 20:57:37 UTC 2015"
    assert env.os == "GNU/Linux"
    assert env.machine == "x86_64"
    assert env.cpu_model == "Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz"
    assert env.cpu_count == 1
    assert env.load_average == [0.18, 0.30, 0.16]
    assert env.uptime == "12 min"
    assert env.extra["bogomips"] == 4000.1
    assert [s.copies for s in run.sections] == [1]
    sec = run.sections[0]
    assert {t.test for t in sec.tests} == set(REF_NUMBERS)
    for t in sec.tests:
        score, unit, secs, samples, baseline, index = REF_NUMBERS[t.test]
        assert (t.score, t.unit, t.elapsed, t.samples, t.baseline) == (
            score, unit, secs, samples, baseline)
        assert t.copies == 1 and t.passes == [] and t.status == "ok"
        assert t.index is not None
        assert t.index == pytest.approx(score / baseline * 10)
        assert abs(t.index - index) <= 0.05 + 1e-9  # recomputed within the report's rounding
    assert sec.index_tests == 12
    assert sec.index_score is not None
    assert abs(sec.index_score - 440.9) < 0.05
    assert any("reported System Benchmarks Index Score 440.9, recomputed 440.9" in n
               and "agrees within rounding" in n for n in run.notes)
    # Same text -> same id (re-import updates instead of duplicating).
    assert parse_file(REF).id == run.id


def test_multi_section_report() -> None:
    run = parse_file(MULTI)
    assert [s.copies for s in run.sections] == [1, 16]
    assert run.environment.cpu_count == 16
    assert run.environment.extra["cpus_listed"] == 16
    assert run.environment.hostname == "bigbox.example.com"
    assert run.environment.uptime == "3 days,  4:05"
    one, sixteen = run.sections
    assert one.index_score is not None and sixteen.index_score is not None
    assert abs(one.index_score - 1039.2) <= 0.06
    assert abs(sixteen.index_score - 9898.7) <= 0.06
    assert all(t.copies == 16 for t in sixteen.tests)
    pipe16 = sixteen.test("pipe")
    assert pipe16 is not None and pipe16.score == 11920001.5
    assert run.started == "2024-11-03T10:01:02" and run.finished == "2024-11-03T11:02:13"
    assert sum("agrees within rounding" in n for n in run.notes) == 2


def test_6_0_layout_and_midnight() -> None:
    run = parse_file(V6)
    assert run.profile == "unixbench-6"
    assert run.environment.extra["unixbench_version"] == "6.0.0"
    assert run.environment.cpu_model == "AMD EPYC 7B13 64-Core Processor"
    # The second section ends after midnight: finished is the next day.
    assert run.started == "2026-11-21T23:40:01"
    assert run.finished == "2026-11-22T00:17:30"
    s1, s2 = run.sections
    assert s1.index_score is not None and abs(s1.index_score - 1788.7) < 0.05
    assert s2.index_score is not None and abs(s2.index_score - 3746.2) < 0.05


@pytest.mark.parametrize(("when", "expected"), [
    ("月  8月 17 2015 04:42:22 - 05:10:14", "2015-08-17T04:42:22"),
    ("Mon Aug 17 2015 04:42:22 - 05:10:14", "2015-08-17T04:42:22"),
    ("Mo Aug 17 2015 04:42:22 - 05:10:14", "2015-08-17T04:42:22"),
    ("lun. août 17 2015 04:42:22 - 05:10:14", "2015-08-17T04:42:22"),
    ("lun dic 07 2015 04:42:22 - 05:10:14", "2015-12-07T04:42:22"),
    ("월  8월 17 2015 04:42:22 - 05:10:14", "2015-08-17T04:42:22"),
    ("一 12月 01 2014 23:59:59 - 00:30:00", "2014-12-01T23:59:59"),
    # Russian, Czech, Finnish, Greek, Turkish (glibc's %a %b).
    ("Пн мар 25 2019 15:18:55 - 15:47:22", "2019-03-25T15:18:55"),
    ("po bře 25 2019 15:18:55 - 15:47:22", "2019-03-25T15:18:55"),
    ("ma maalis 25 2019 15:18:55 - 15:47:22", "2019-03-25T15:18:55"),
    ("Δευ Μαρ 25 2019 15:18:55 - 15:47:22", "2019-03-25T15:18:55"),
    ("Sal Ara 03 2019 10:00:00 - 10:28:00", "2019-12-03T10:00:00"),
    # A Tuesday in Spanish, French or Italian spells like March: the month is the last name.
    ("mar abr 02 2019 15:18:55 - 15:47:22", "2019-04-02T15:18:55"),
    ("mar. avril 02 2019 15:18:55 - 15:47:22", "2019-04-02T15:18:55"),
])
def test_localized_dates(when: str, expected: str) -> None:
    parsed = parse_run_date(when)
    assert parsed is not None
    assert parsed[0].isoformat() == expected
    assert parsed[1] > parsed[0]


def test_load_average_with_decimal_commas() -> None:
    text = REF.read_text().replace("load average: 0.18, 0.30, 0.16",
                                   "load average: 0,18, 0,30, 0,16")
    assert parse_text(text, "de.txt").environment.load_average == [0.18, 0.30, 0.16]


def test_unreadable_date_is_noted_not_fatal() -> None:
    text = REF.read_text().replace("月  8月 17 2015", "ХХ ЮЮ 17 2015")
    run = parse_text(text, "odd.txt")
    assert any("not understood" in n for n in run.notes)
    assert run.started.endswith("Z")  # the import time
    assert run.sections[0].index_score is not None


def test_partial_report() -> None:
    text = """Benchmark Run: Thu Aug 08 2019 22:09:06 - 22:11:17
8 CPUs in system; running 8 parallel copies of tests

System Call Overhead                         154641.0 lps   (10.1 s, 7 samples)

System Benchmarks Partial Index              BASELINE       RESULT    INDEX
System Call Overhead                          15000.0     154641.0    103.1
                                                                   ========
System Benchmarks Index Score (Partial Only)                          103.1
"""
    run = parse_text(text, "partial.txt")
    assert run.status == "partial"
    assert run.profile == "imported"  # no banner
    sec = run.sections[0]
    assert sec.copies == 8 and sec.index_score is None and sec.index_tests == 1
    t = sec.test("syscall")
    assert t is not None and t.index == pytest.approx(103.094, abs=1e-3)
    assert any("Partial Only) 103.1" in n and "agrees" in n for n in run.notes)


def test_mismatch_beyond_rounding_is_noted() -> None:
    text = REF.read_text().replace("Index Score                                         440.9",
                                   "Index Score                                         450.9")
    text = text.replace("160.2\n", "170.2\n")
    run = parse_text(text, "edited.txt")
    assert any("MISMATCH" in n and "450.9" in n for n in run.notes)
    assert any("Pipe-based Context Switching: reported index 170.2" in n for n in run.notes)
    # The recomputed values stand.
    assert abs((run.sections[0].index_score or 0) - 440.9) < 0.05


def _lines() -> list[str]:
    return REF.read_text().splitlines(keepends=True)


@pytest.mark.parametrize("cut", range(13, 43))
def test_truncated_at_every_line_keeps_what_is_there(cut: int) -> None:
    # Before the first test line there is nothing to import: one error naming the file.
    # From the first test line on, what is there is imported and the rest stays missing.
    text = "".join(_lines()[:cut])
    read = [ln for ln in _lines()[:cut] if "samples)" in ln]
    if not read:
        with pytest.raises(UsageError, match=r"^cut\.txt:\d+: not a UnixBench report"):
            parse_text(text, "cut.txt")
        return
    run = parse_text(text, "cut.txt")
    assert len(run.sections[0].tests) == len(read)
    assert [t.score for t in run.sections[0].tests] == [
        REF_NUMBERS[t.test][0] for t in run.sections[0].tests]
    if cut < 42:
        assert run.status == "partial" and run.sections[0].index_score is None
        assert any("no index score" in n for n in run.notes)


def test_truncated_mid_line() -> None:
    lines = _lines()
    text = "".join(lines[:18]) + lines[18][:52] + "\n" + "".join(lines[19:])
    run = parse_text(text, "mid.txt")
    assert any(n.startswith("line 19 skipped: ") and "251160." in n for n in run.notes)
    assert run.sections[0].test("fstime") is None  # missing stays missing
    assert run.sections[0].test("fsbuffer") is not None
    assert run.sections[0].index_score is None and run.status == "partial"


@pytest.mark.parametrize("text", [
    "",
    "hello world\nthis is not a report\n",
    '{"json": "but not a virtbench document"}',
    "Benchmark Run: yesterday\nnonsense here\n",
    "Benchmark Run: Mon Aug 17 2015 04:42:22 - 05:10:14\n1 CPU in system; running 1 "
    "parallel copy of tests\n\nDhrystone 2 using register variables  abc lps (10.0 s, 7 "
    "samples)\n",
])
def test_garbage_is_one_clear_error(text: str) -> None:
    with pytest.raises(UsageError, match=r"^junk\.txt:\d+: "):
        parse_text(text, "junk.txt")


def test_binary_garbage(tmp_path: Path) -> None:
    f = tmp_path / "bin.txt"
    f.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UsageError, match=r"bin\.txt:1: not a UnixBench text report"):
        parse_file(f)


def test_several_reports_in_one_file(tmp_path: Path) -> None:
    # As pasted into notes: prose and code fences around each report.
    text = ("# results\n\n```log\n" + REF.read_text() + "\n```\n\n## same box, 6.0\n\n```\n"
            + V6.read_text() + "\n```\n")
    runs = parse_reports(text, "notes.md")
    assert [r.environment.hostname for r in runs] == ["centos6.takara.org", "vb-guest"]
    assert [r.profile for r in runs] == ["unixbench-5.1.3", "unixbench-6"]
    assert abs((runs[1].sections[1].index_score or 0) - 3746.2) < 0.05
    f = tmp_path / "notes.md"
    f.write_text(text)
    with pytest.raises(UsageError, match="holds 2 UnixBench reports"):
        parse_file(f)
    assert len(parse_file_all(f)) == 2
    rc, _, err = vb("import", str(f))
    assert rc == 0, err
    assert open_store().counts()["run"] == 2
    # A line of the second report that cannot be read is named by its line in the file.
    bad = text.replace("Pipe Throughput                             2519709.3 lps   (10.0 s, "
                       "7 samples)", "Pipe Throughput                             2519709.3")
    line = bad.splitlines().index(
        next(ln for ln in bad.splitlines() if ln.endswith("2519709.3"))) + 1
    runs = parse_reports(bad, "notes.md")
    assert any(n.startswith(f"line {line} skipped: ") for n in runs[1].notes)
    assert runs[1].sections[0].test("pipe") is None


def test_cjk_report_in_its_locale_encoding(tmp_path: Path) -> None:
    f = tmp_path / "eucjp.txt"
    f.write_bytes(REF.read_text().encode("euc_jp"))
    run = parse_file(f)
    assert run.started == "2015-08-17T04:42:22"
    assert run.original_text == REF.read_text()
    # Even with the month's suffix lost, "%a %b %d %Y" puts the month first.
    mangled = REF.read_text().replace("月  8月 17 2015", "\ufffd\ufffd  8\ufffd\ufffd 17 2015")
    assert parse_text(mangled, "m.txt").started == "2015-08-17T04:42:22"


def test_unixbench_4_is_refused_clearly() -> None:
    text = "  BYTE UNIX Benchmarks (Version 4.1.0)\n  System -- Linux\n"
    with pytest.raises(UsageError, match=r"^old\.txt:1: UnixBench 4\.1\.0 reports are not"):
        parse_text(text, "old.txt")
    text = "        INDEX VALUES\nTEST   BASELINE  RESULT  INDEX\n     FINAL SCORE  1.0\n"
    with pytest.raises(UsageError, match=r"UnixBench 4\.x report"):
        parse_text(text, "old.txt")


# ---- the command -----------------------------------------------------------------------------
def test_import_command_stores_and_is_idempotent(tmp_path: Path) -> None:
    rc, out, err = vb("import", str(REF), str(MULTI), "--label", "env=pv", "--label", "dc=1")
    assert rc == 0, err
    assert "imported" in out and "440.9" in out
    store = open_store()
    rows = store.list_runs()
    assert len(rows) == 2
    ref_row = next(r for r in rows if r.hostname == "centos6.takara.org")
    assert ref_row.labels == {"env": "pv", "dc": "1"}
    assert ref_row.source == "imported-unixbench"
    assert ref_row.scores[1] == pytest.approx(440.9, abs=0.05)
    master = load_document(Path(ref_row.path))
    assert master.original_text == REF.read_text()
    counts = store.counts()
    # Again, with one more label: same runs, labels merged.
    rc, out, err = vb("import", str(REF), "--label", "note=again")
    assert rc == 0, err
    assert store.counts() == {**counts, "label": counts["label"] + 1}
    row = store.get(ref_row.id)
    assert row is not None and row.labels == {"env": "pv", "dc": "1", "note": "again"}


def test_import_batch_with_one_bad_file_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("".join(_lines()[:15]) + "(the run was stopped here)\n")  # no test line
    rc, _out, err = vb("import", str(REF), str(bad))
    assert rc == 2
    assert err.startswith("virtbench: error: ") and "bad.txt:" in err
    assert len(err.strip().splitlines()) == 1
    assert open_store().counts()["run"] == 0
    from virtbench import paths

    assert not list(paths.results_dir().glob("*.json")) if paths.results_dir().exists() else True


def test_import_json_and_dry_run(tmp_path: Path) -> None:
    rc, out, _ = vb("import", "--dry-run", "--json", str(V6))
    assert rc == 0
    docs = json.loads(out)
    assert len(docs) == 1 and docs[0]["profile"] == "unixbench-6"
    assert open_store().counts()["run"] == 0
    # A virtbench JSON document from elsewhere is imported as imported-virtbench.
    f = tmp_path / "doc.json"
    doc = parse_file(V6)
    doc.source = "native"
    doc.save(f)
    rc, out, err = vb("import", str(f), "--label", "from=json")
    assert rc == 0, err
    row = open_store().get(doc.id)
    assert row is not None and row.source == "imported-virtbench"
    assert row.labels == {"from": "json"}


def test_import_index_recomputation_agrees_on_all_samples() -> None:
    for f in (REF, MULTI, V6):
        run = parse_file(f)
        for sec in run.sections:
            idx = [t.index for t in sec.tests if t.index is not None]
            assert len(idx) == 12
            gm = math.exp(sum(math.log(i) for i in idx) / 12)
            assert sec.index_score == pytest.approx(gm)
        assert not any("MISMATCH" in n for n in run.notes)


def test_text_report_lists_tests_in_unixbench_order_whatever_order_they_ran() -> None:
    # UnixBench runs syscall before the shell tests but reports sorted by name; a run's
    # tests are kept in run order, so the report must sort them itself.
    from virtbench.report.text import render

    run = parse_file(REF)
    names = [t.name for t in run.sections[0].tests]
    run.sections[0].tests.reverse()
    out = render(run).splitlines()
    original = REF.read_text(encoding="utf-8").splitlines()

    def order(lines: list[str], start: str) -> list[str]:
        i = next(n for n, line in enumerate(lines) if line.startswith(start))
        block = [line for line in lines[i:i + 20] if any(line.startswith(n) for n in names)]
        return [next(n for n in names if line.startswith(n)) for line in block][:12]

    for start in ("Dhrystone 2", "System Benchmarks Index Values"):
        assert order(out, start) == order(original, start), start
    assert order(out, "Dhrystone 2")[-1] == "System Call Overhead"


def test_a_date_that_cannot_be_read_is_not_guessed() -> None:
    # 'T2' is a weekday (Vietnamese), not February: no date rather than a wrong one.
    assert parse_run_date("T2 Th03 25 2019 15:18:55 - 15:47:22") is None


def test_a_run_date_without_its_end_time_is_read() -> None:
    # virtbench prints the start alone for a run that did not finish.
    parsed = parse_run_date("Sat Dec 05 2026 00:56:25")
    assert parsed is not None
    assert parsed[0].isoformat() == "2026-12-05T00:56:25" and parsed[1] == parsed[0]


def test_what_a_report_does_not_say_stays_unknown_through_show_and_import() -> None:
    from virtbench.report.text import render

    first = parse_text("Dhrystone 2 using register variables 9880922.0 lps (10.0 s, 7 samples)\n"
                       "Pipe Throughput 449392.8 lps (10.0 s, 7 samples)\n", "bare.txt")
    env = first.environment
    assert (env.cpu_count, env.hostname, env.kernel, env.machine) == (None, None, None, None)
    shown = render(first)
    # Not "0 CPUs" and not the import time as the run's date.
    assert "Benchmark Run: unknown\n? CPUs in system; running 1 parallel copy" in shown
    again = parse_text(shown, "shown.txt")
    env = again.environment
    assert (env.cpu_count, env.hostname, env.kernel, env.kernel_version, env.machine) == (
        None, None, None, None, None)
    assert again.sections[0].started is None and again.finished is None
    assert [t.score for t in again.sections[0].tests] == [9880922.0, 449392.8]
    assert not any("skipped" in n for n in again.notes), again.notes
    assert any(n.startswith("the report notes: the results from line 1 have no 'N CPUs")
               for n in again.notes), again.notes
    assert render(again).count("Benchmark Run: unknown") == 1


def test_results_from_an_index_table_alone_show_and_read_back_without_invented_values() -> None:
    from virtbench.report.text import render

    first = parse_text(
        "System Benchmarks Index Values               BASELINE       RESULT    INDEX\n"
        "Dhrystone 2 using register variables         116700.0   23617050.2   2023.7\n"
        "Pipe Throughput                               12440.0     364987.0    293.4\n",
        "table.txt")
    shown = render(first)
    # Not "(0.0 s, 0 samples)": those would read back as measured values.
    assert "23617050.2 ?     (? s, ? samples)" in shown
    from virtbench.cli.show import _basic_render  # show's plain fallback (lean bundle)

    assert "23617050.2 ?     (? s, ? samples)" in _basic_render(first)
    again = parse_text(shown, "shown.txt")
    assert not any("skipped" in n for n in again.notes), again.notes
    tests = {t.test: t for t in again.sections[0].tests}
    assert tests["dhry2reg"].score == 23617050.2 and tests["pipe"].score == 364987.0
    assert all((t.samples, t.elapsed, t.unit, t.status) == (None, None, "", "ok")
               for t in tests.values())
    assert again.sections[0].index_score is None
