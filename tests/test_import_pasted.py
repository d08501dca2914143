"""Reports as users keep them: indented in Markdown, quoted in e-mails, saved as UTF-16,
compressed. Every number must come out as from the plain file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from virtbench.errors import UsageError
from virtbench.importers.unixbench import parse_file, parse_file_all

DATA = Path(__file__).resolve().parent / "data"
PV = DATA / "unixbench-centos6-xen-pv.txt"
MULTI = DATA / "unixbench-5.1.3-16cpu-1-16copies.txt"


def _scores(path: Path) -> list[tuple[int, str, float | None, float | None]]:
    run = parse_file(path)
    return [(s.copies, t.test, t.score, t.index) for s in run.sections for t in s.tests]


@pytest.mark.parametrize("margin", ["    ", "\t", "> ", ">> "])
def test_margin_is_removed(tmp_path: Path, margin: str) -> None:
    for src in (PV, MULTI):
        text = src.read_text(encoding="utf-8")
        pasted = tmp_path / "pasted.txt"
        lines = [(margin + ln) if ln.strip() else margin.rstrip() for ln in text.splitlines()]
        pasted.write_text("Results from the old box:\n\n" + "\n".join(lines) + "\n",
                          encoding="utf-8")
        run = parse_file(pasted)
        plain = parse_file(src)
        assert _scores(pasted) == _scores(src)
        assert [s.index_score for s in run.sections] == [s.index_score for s in plain.sections]
        assert run.environment.hostname == plain.environment.hostname
        assert run.environment.cpu_model == plain.environment.cpu_model


def test_two_indented_reports_in_one_note(tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    body = ["# PV vs 16 CPUs", ""]
    for src in (PV, MULTI):
        body += ["    " + ln for ln in src.read_text(encoding="utf-8").splitlines()] + [""]
    note.write_text("\n".join(body), encoding="utf-8")
    runs = parse_file_all(note)
    assert [[s.index_score for s in r.sections] for r in runs] == [
        [pytest.approx(440.9, abs=0.06)], [pytest.approx(1039.2, abs=0.06),
                                           pytest.approx(9898.7, abs=0.06)]]


def test_utf16_with_bom(tmp_path: Path) -> None:
    f = tmp_path / "win.txt"
    f.write_text(PV.read_text(encoding="utf-8"), encoding="utf-16")
    assert _scores(f) == _scores(PV)
    assert parse_file(f).id == parse_file(PV).id


def test_gzip_is_named(tmp_path: Path) -> None:
    f = tmp_path / "pv.txt.gz"
    f.write_bytes(gzip.compress(PV.read_bytes()))
    with pytest.raises(UsageError, match="gzip-compressed: decompress it first"):
        parse_file(f)
