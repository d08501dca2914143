"""``virtbench runs / show / export / rm / db``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from clihelp import vb
from virtbench import paths
from virtbench.results import model
from virtbench.store import dispose_engines, open_store, save_and_record

DATA = Path(__file__).resolve().parent / "data"
PV = DATA / "unixbench-centos6-xen-pv.txt"
MULTI = DATA / "unixbench-5.1.3-16cpu-1-16copies.txt"


@pytest.fixture(autouse=True)
def _fresh_engines() -> None:
    dispose_engines()


def _import(*files: Path, label: str = "set=a") -> list[str]:
    rc, out, err = vb("import", "--json", "--label", label, *map(str, files))
    assert rc == 0, err
    return [d["id"] for d in json.loads(out)]


def test_runs_lists_and_filters() -> None:
    pv, multi = _import(PV, MULTI)
    exp = model.ExperimentResult(experiment="cap", started="2026-01-01T00:00:00Z",
                                 status="complete", rows=[{"quota": 50, "slowdown": 1.9}],
                                 summary={"slowdown": 1.9})
    save_and_record(exp)
    rc, out, _ = vb("runs")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "STARTED", "KIND", "HOST"]
    assert [ln.split()[0] for ln in lines[2:]] == [pv, multi, exp.id]  # oldest first
    assert "1:440.9" in lines[2] and "1:1039.2 16:9898.7" in lines[3]
    rc, out, _ = vb("runs", "--json", "--host", "bigbox")
    assert [r["id"] for r in json.loads(out)] == [multi]
    rc, out, _ = vb("runs", "--json", "--kind", "cap")
    assert [r["id"] for r in json.loads(out)] == [exp.id]
    rc, out, _ = vb("runs", "--json", "--label", "set=a", "--until", "2020-01-01")
    assert [r["id"] for r in json.loads(out)] == [pv]
    rc, out, _ = vb("runs", "--json", "--profile", "unixbench-6")
    assert json.loads(out) == []
    rc, _, err = vb("runs", "--label", "nolabel")
    assert rc == 2 and "KEY=VALUE" in err


def test_show_prints_the_report_and_original() -> None:
    (pv,) = _import(PV)
    rc, out, _ = vb("show", pv[:6])
    assert rc == 0
    assert "System Call Overhead" in out and "312263.9" in out and "440.9" in out
    rc, out, _ = vb("show", "--original", "latest")
    assert rc == 0 and out == PV.read_text() + ("" if PV.read_text().endswith("\n") else "\n")
    rc, out, _ = vb("show", "--json", "set=a")
    assert json.loads(out)["id"] == pv


def test_show_uses_the_text_report_module() -> None:
    # The lead's UnixBench-layout renderer, once on main, is what `show` prints.
    text = pytest.importorskip("virtbench.report.text")
    (pv,) = _import(PV)
    doc = model.load_document(Path(open_store().get(pv).path))  # type: ignore[union-attr]
    rc, out, _ = vb("show", pv)
    assert rc == 0 and out.rstrip("\n") == text.render(doc).rstrip("\n")


def test_show_experiment() -> None:
    exp = model.ExperimentResult(experiment="cap", status="complete",
                                 rows=[{"quota": 50, "slowdown": 1.9}], summary={"n": 1})
    save_and_record(exp)
    rc, out, _ = vb("show", exp.id)
    assert rc == 0 and "experiment cap" in out and "Slowdown" in out and "1.9" in out


def test_export_formats(tmp_path: Path) -> None:
    pv, multi = _import(PV, MULTI)
    rc, out, _ = vb("export", pv, multi, "--format", "csv")
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3 * 13  # 3 sections x (12 tests + index score)
    sc = next(r for r in rows if r["run_id"] == pv and r["test"] == "syscall")
    assert float(sc["score"]) == 312263.9 and sc["unit"] == "lps"
    assert float(sc["index"]) == pytest.approx(208.2, abs=0.05)
    idx = [r for r in rows if r["test"] == "index_score" and r["run_id"] == multi]
    assert [r["copies"] for r in idx] == ["1", "16"]
    rc, out, _ = vb("export", pv, "--format", "markdown")
    # the one Markdown rendering of runs: the report's
    assert "| System Call Overhead | 312,263.9 lps | 208.2 |" in out
    assert "**440.9**" in out and "## Findings" in out
    target = tmp_path / "x" / "run.json"
    rc, _, err = vb("export", pv, "-o", str(target))
    assert rc == 0 and str(target) in err
    assert model.load_document(target).id == pv
    rc, out, _ = vb("export", "set=a")
    assert [d["id"] for d in json.loads(out)] == [pv, multi]


def test_rm_removes_rows_and_file() -> None:
    pv, multi = _import(PV, MULTI)
    store = open_store()
    pv_path = Path(store.get(pv).path)  # type: ignore[union-attr]
    multi_path = Path(store.get(multi).path)  # type: ignore[union-attr]
    rc, out, _ = vb("rm", pv)
    assert rc == 0 and f"removed run {pv}" in out and f"deleted {pv_path}" in out
    assert not pv_path.exists() and store.get(pv) is None
    rc, out, _ = vb("rm", "--keep-file", multi[:4])
    assert rc == 0 and "kept" in out and multi_path.exists()
    assert store.counts() == {"run": 0, "environment": 0, "result": 0, "label": 0}
    rc, _, err = vb("rm", "nothing")
    assert rc == 2 and "'nothing'" in err
    # rebuild brings back the kept file
    rc, out, _ = vb("db", "rebuild")
    assert rc == 0 and "indexed 1 runs" in out
    assert store.get(multi) is not None


def test_db_info_and_rebuild_json(tmp_path: Path) -> None:
    _import(PV, MULTI)
    rc, out, _ = vb("db", "info", "--json")
    info = json.loads(out)
    assert info["runs"] == 2 and info["files"] == 2 and info["files_not_indexed"] == []
    assert info["backend"] == "sqlite" and info["schema_version"] == "1"
    # A document dropped into the results dir by hand shows as not indexed until rebuild.
    extra = model.RunResult(profile="unixbench-6", started="2026-01-01T00:00:00Z")
    extra.save(paths.results_dir() / "by-hand.json")
    rc, out, _ = vb("db", "info")
    assert "not indexed     1" in out
    rc, out, _ = vb("db", "rebuild", "--json")
    assert json.loads(out)["indexed"] == 3
    rc, out, _ = vb("runs", "--json")
    assert len(json.loads(out)) == 3
    # --db points elsewhere.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    rc, out, _ = vb("runs", "--json", "--db", other)
    assert json.loads(out) == []
    rc, _, err = vb("runs", "--db", "mysql://x/y")
    assert rc == 4 and "unsupported database" in err


def test_commands_against_postgresql(request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue("postgres_url")
    open_store(url, check=False).drop_all()
    dispose_engines()
    rc, _, err = vb("import", str(PV), "--label", "env=pv", "--db", url)
    assert rc == 0, err
    rc, out, _ = vb("runs", "--json", "--db", url)
    (row,) = json.loads(out)
    assert row["hostname"] == "centos6.takara.org" and row["labels"] == {"env": "pv"}
    rc, out, _ = vb("compare", "env=pv", str(MULTI), "--copies", "1", "--json", "--db", url)
    assert rc == 0
    assert json.loads(out)["sections"][0]["index_scores"][1] == pytest.approx(1039.2, abs=0.05)
    rc, out, _ = vb("db", "info", "--json", "--db", url)
    assert json.loads(out)["backend"] == "postgresql" and json.loads(out)["runs"] == 1
    rc, out, _ = vb("rm", "env=pv", "--db", url)
    assert rc == 0 and "removed run" in out
    rc, out, _ = vb("db", "rebuild", "--json", "--db", url)
    assert json.loads(out)["indexed"] == 0
