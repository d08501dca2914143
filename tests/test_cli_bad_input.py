"""Bad input to the store/report commands: one clear line, a non-zero exit, nothing lost
(regressions found by trying the commands as a new user would)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from clihelp import vb
from virtbench import paths
from virtbench.store import dispose_engines, open_store

DATA = Path(__file__).resolve().parent / "data"
PV = DATA / "unixbench-centos6-xen-pv.txt"
HVM = DATA / "unixbench-xen-hvm-synthesized.txt"


@pytest.fixture(autouse=True)
def _fresh_engines() -> None:
    dispose_engines()


def _one_line_error(rc: int, err: str, expected_rc: int = 2) -> str:
    assert rc == expected_rc, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("virtbench"), err
    assert "Traceback" not in err
    return lines[0]


def _import(*files: Path, label: str = "set=a") -> list[str]:
    rc, out, err = vb("import", "--json", "--label", label, *map(str, files))
    assert rc == 0, err
    return [d["id"] for d in json.loads(out)]


def test_export_to_unwritable_paths_is_one_line(tmp_path: Path) -> None:
    _import(PV)
    rc, _, err = vb("export", "latest", "--format", "csv", "-o", "/proc/virtbench-x.csv")
    assert "/proc/virtbench-x.csv: cannot write" in _one_line_error(rc, err)
    rc, _, err = vb("export", "latest", "-o", str(tmp_path))
    assert "is a directory" in _one_line_error(rc, err)
    rc, _, err = vb("export", "latest", "-o", "/dev/full")
    assert "No space left" in _one_line_error(rc, err)


def test_writing_to_a_device_writes_it_and_never_replaces_it() -> None:
    # It used to rename a temporary file over the target: `-o /dev/full` replaced the device
    # node by a 5 MB regular file (as root) and reported success.
    before = os.stat("/dev/full")
    rc, _, err = vb("report", str(PV), "-o", "/dev/full")
    assert "No space left" in _one_line_error(rc, err)
    after = os.stat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert not [p for p in Path("/dev").iterdir() if p.name.endswith(".tmp")]


def test_write_output_follows_symlinks_and_keeps_old_content_on_failure(
        tmp_path: Path) -> None:
    from virtbench.cli._common import write_output
    from virtbench.errors import UsageError

    real = tmp_path / "real.csv"
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_output(link, "a,b\n")
    assert link.is_symlink() and real.read_text() == "a,b\n"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_output(fifo, "through the pipe\n")
        assert os.read(rfd, 100) == b"through the pipe\n"
    finally:
        os.close(rfd)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(UsageError, match="cannot write"):
        write_output(real / "under-a-file.csv", "x")  # parent is a file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "link.csv", "real.csv"]


def test_snapshot_to_unwritable_path_is_one_line() -> None:
    rc, _, err = vb("snapshot", "/proc/virtbench-x.tar.gz")
    assert "cannot write" in _one_line_error(rc, err)
    rc, _, err = vb("snapshot", "/nonexistent-dir-qa/x.tar.gz")
    assert "does not exist" in _one_line_error(rc, err)


def test_runs_rejects_bad_dates_and_limits() -> None:
    (pv,) = _import(PV)
    for args in (["--since", "notadate"], ["--until", "2015-13-45"]):
        rc, out, err = vb("runs", *args)
        assert "expected a date" in _one_line_error(rc, err) and out == ""
    rc, _, err = vb("runs", "--limit", "0")
    assert "--limit 0" in _one_line_error(rc, err)
    rc, _, err = vb("runs", "--limit", "-1")
    assert "--limit -1" in _one_line_error(rc, err)
    # A full timestamp is inclusive, with a space or a T (the PV run started 04:42:22).
    for until in ("2015-08-17 04:42:22", "2015-08-17T04:42:22"):
        rc, out, _ = vb("runs", "--json", "--until", until)
        assert [r["id"] for r in json.loads(out)] == [pv]
    rc, out, _ = vb("runs", "--json", "--since", "2015-08-17T04:42:23")
    assert json.loads(out) == []


def test_rebuild_from_a_missing_dir_keeps_the_index() -> None:
    (pv,) = _import(PV)
    rc, _, err = vb("db", "rebuild", "--dir", "/nonexistent-qa-dir")
    assert "index is unchanged" in _one_line_error(rc, err)
    assert [r.id for r in open_store().list_runs()] == [pv]


def test_rebuild_names_each_bad_file_once_and_goes_on() -> None:
    _import(PV)
    bad = paths.results_dir() / "2020-01-01-broken.json"
    bad.write_text('{"schema_version": 1, "id": "x')
    rc, out, err = vb("db", "rebuild")
    assert rc == 0 and "indexed 1 runs" in out
    (line,) = [ln for ln in err.splitlines() if "broken" in ln]
    assert line.count(str(bad)) == 1 and "not JSON" in line
    rc, out, _ = vb("db", "info", "--json")
    info = json.loads(out)
    assert info["files"] == 2 and info["files_not_indexed"] == []
    assert info["files_not_documents"] == [str(bad)]
    rc, out, _ = vb("db", "info")
    assert "not documents   1" in out


def test_explicit_sqlite_url_never_creates_directories(tmp_path: Path) -> None:
    target = tmp_path / "no" / "dir" / "x.db"
    rc, _, err = vb("runs", "--db", f"sqlite:///{target}")
    assert "does not exist" in _one_line_error(rc, err, 4)
    assert not (tmp_path / "no").exists()
    rc, _, err = vb("import", str(PV), "--db", f"sqlite:///{target}")
    _one_line_error(rc, err, 4)
    assert list(paths.results_dir().glob("*.json")) == [] if paths.results_dir().is_dir() \
        else True


def test_import_names_directories_devices_and_empty_files(tmp_path: Path) -> None:
    rc, _, err = vb("import", str(tmp_path))
    assert "is a directory" in _one_line_error(rc, err)
    rc, _, err = vb("import", "/dev/null")
    assert "not a regular file" in _one_line_error(rc, err)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    for cmd in ("import", "show", "compare", "explain"):
        rc, _, err = vb(cmd, str(empty))
        assert "empty.txt: empty file" in _one_line_error(rc, err)


def test_failed_reimport_restores_the_master_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (pv,) = _import(PV, label="env=pv")
    master = next(paths.results_dir().glob(f"*-{pv}.json"))
    before = master.read_bytes()
    from virtbench.store.store import Store

    def boom(self: Store, docs: object) -> None:
        raise RuntimeError("index write failed")

    monkeypatch.setattr(Store, "record_many", boom)
    rc, _, err = vb("import", "--label", "extra=1", str(PV), str(HVM))
    assert rc == 70 and "internal error: RuntimeError: index write failed" in err
    assert master.read_bytes() == before  # the label extra=1 is not left in the master
    assert sorted(p.name for p in paths.results_dir().iterdir()) == [master.name]


def test_export_of_several_runs_imports_back(tmp_path: Path) -> None:
    ids = _import(PV, HVM)
    out = tmp_path / "both.json"
    rc, _, err = vb("export", "set=a", "-o", str(out))
    assert rc == 0, err
    assert isinstance(json.loads(out.read_text()), list)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    rc, stdout, err = vb("import", "--dry-run", str(out), "--db", other)
    assert rc == 0, err
    assert [ln.split(" -> ")[1].split()[0] for ln in stdout.splitlines()] == ids
    rc, stdout, err = vb("compare", str(out), "--json")
    assert rc == 0, err
    comp = json.loads(stdout)
    syscall = next(t for t in comp["sections"][0]["tests"] if t["test"] == "syscall")
    assert syscall["deltas"][1]["ratio"] == pytest.approx(2005350.0 / 312263.9, rel=1e-6)
    rc, _, err = vb("explain", str(out))
    assert "names 2 runs" in _one_line_error(rc, err)


def test_json_errors_name_the_file_and_item(tmp_path: Path) -> None:
    (pv,) = _import(PV)
    rc, doc, _ = vb("export", pv)
    data = json.loads(doc)
    newer = tmp_path / "v99.json"
    newer.write_text(json.dumps({**data, "schema_version": 99}))
    rc, _, err = vb("import", str(newer))
    assert _one_line_error(rc, err).startswith(f"virtbench: error: {newer}: result document "
                                               "has schema version 99")
    items = tmp_path / "items.json"
    items.write_text(json.dumps([data, {"a": 1}]))
    rc, _, err = vb("show", str(items))
    assert f"{items}[1]: not a virtbench run" in _one_line_error(rc, err)
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    rc, _, err = vb("import", str(empty))
    assert "empty JSON list" in _one_line_error(rc, err)


def test_experiment_markdown_has_no_none_cells() -> None:
    from virtbench.report.experiments import column_title

    cap = DATA / "experiments" / "cap.json"
    rc, out, err = vb("export", str(cap), "--format", "markdown")
    assert rc == 0, err
    rows = [ln for ln in out.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    host = dict(zip(header, (c.strip() for c in rows[1].strip("|").split("|")), strict=True))
    raw = json.loads(cap.read_text())["rows"][0]
    title = column_title  # human column names with units, as in the HTML report
    assert raw["quota"] is None and host[title("quota")] == "—"
    assert "None" not in out
    assert "Samples" not in header  # a per-sample list: in the JSON/CSV, not in the table
    assert host[title("condition")] == "host" and float(host[title("seconds")]) == pytest.approx(
        raw["seconds"], rel=0.01)


def test_ctrl_c_during_import_and_report_leaves_nothing_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from virtbench.report import html
    from virtbench.store.store import Store

    def interrupt(*_args: object, **_kw: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Store, "record_many", interrupt)
        rc, _, err = vb("import", str(PV), str(HVM))
    assert rc == 130 and "interrupted" in err
    results = paths.results_dir()
    assert not results.is_dir() or list(results.iterdir()) == []
    assert open_store().list_runs() == []

    page = tmp_path / "report.html"
    page.write_text("the previous report")
    with monkeypatch.context() as m:
        m.setattr(html, "render", interrupt)
        rc, _, err = vb("report", str(PV), "-o", str(page))
    assert rc == 130
    assert page.read_text() == "the previous report"

    import virtbench.cli._common as common

    real_replace = os.replace
    with monkeypatch.context() as m:
        m.setattr(common.os, "replace", interrupt)
        rc, _, _ = vb("report", str(PV), "-o", str(page))
    assert rc == 130 and common.os.replace is real_replace
    assert page.read_text() == "the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temp file


def test_labels_with_control_characters_are_refused() -> None:
    for bad in ("k=v\nx", "k\t=v", "k=\x1b[31mred"):
        rc, _, err = vb("import", "--dry-run", "--label", bad, str(PV))
        assert "control characters" in _one_line_error(rc, err)
    rc, out, err = vb("import", "--dry-run", "--json", "--label", "env=xen pv ü", str(PV))
    assert rc == 0, err
    assert json.loads(out)[0]["labels"] == {"env": "xen pv ü"}


def test_corrupt_database_says_what_to_do_and_is_left_alone(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    garbage = bytes(range(256)) * 20
    bad.write_bytes(garbage)
    for args in (["runs"], ["db", "info"], ["db", "rebuild"], ["import", str(PV)]):
        rc, _, err = vb(*args, "--db", f"sqlite:///{bad}")
        line = _one_line_error(rc, err, 4)
        assert "file is not a database: move the file away" in line
    assert bad.read_bytes() == garbage
    results = paths.results_dir()
    assert not results.is_dir() or list(results.iterdir()) == []


def test_rm_never_deletes_files_outside_the_results_dir(tmp_path: Path) -> None:
    (pv,) = _import(PV)
    backup = tmp_path / "backup"
    backup.mkdir()
    master = next(paths.results_dir().glob(f"*-{pv}.json"))
    copy = backup / master.name
    copy.write_bytes(master.read_bytes())
    master.unlink()
    rc, _, err = vb("db", "rebuild", "--dir", str(backup))
    assert rc == 0, err
    rc, out, err = vb("rm", pv)
    assert rc == 0, err
    assert "outside the results directory" in out and f"kept {copy}" in out
    assert copy.exists()
    assert open_store().list_runs() == []


def test_detect_root_without_evidence_is_an_error_not_bare_metal(tmp_path: Path) -> None:
    rc, out, err = vb("detect", "--root", str(tmp_path))
    assert "not a captured tree" in _one_line_error(rc, err) and out == ""
    # A tree with only the kernel log under var/log is a captured tree.
    log = tmp_path / "var" / "log" / "kern.log"
    log.parent.mkdir(parents=True)
    log.write_text("Nov 22 00:00:01 host kernel: [    0.000000] Hypervisor detected: KVM\n")
    rc, out, err = vb("detect", "--root", str(tmp_path), "--json")
    assert rc == 0, err
    assert [la["name"] for la in json.loads(out)["layers"]] == ["kvm"]


def test_runs_host_filter_is_literal_text() -> None:
    pv, hvm = _import(PV, HVM)  # centos6.takara.org, centos6-hvm.example.org
    for text, expected in (("%", []), ("_", []), ("centos6_", []), ("CENTOS6.", [pv]),
                           ("centos6", [pv, hvm]), ("-hvm", [hvm])):
        rc, out, err = vb("runs", "--json", f"--host={text}")
        assert rc == 0, err
        assert [r["id"] for r in json.loads(out)] == expected, text


def test_report_html_to_stdout_with_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.chdir(tmp_path)
    rc, out, err = vb("report", str(PV), "-o", "-")
    assert rc == 0, err
    assert out.startswith("<!DOCTYPE html>") and "centos6.takara.org" in out
    assert "wrote stdout" in err
    assert list(tmp_path.iterdir()) == []  # no file named '-'


def test_export_dash_is_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rc, out, err = vb("export", str(PV), "--format", "csv", "-o", "-")
    assert rc == 0, err
    assert out.splitlines()[0].startswith("run_id,started,host")
    assert list(tmp_path.iterdir()) == []


def test_rebuild_failing_half_way_keeps_the_old_index(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _import(PV, HVM, label="env=both")
    from virtbench.store.store import Store

    real = Store._record
    calls: list[str] = []

    def second_fails(self: Store, conn: object, doc: object, path: Path) -> None:
        calls.append(str(path))
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(self, conn, doc, path)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "_record", second_fails)
    rc, _, err = vb("db", "rebuild")
    assert rc == 130 and len(calls) == 2
    monkeypatch.setattr(Store, "_record", real)
    dispose_engines()
    rows = open_store().list_runs()
    assert sorted(r.id for r in rows) == sorted(ids)
    assert all(r.labels == {"env": "both"} for r in rows)
    rc, out, err = vb("db", "rebuild")
    assert rc == 0 and "indexed 2 runs" in out, err


def test_rm_keeps_the_run_indexed_when_its_file_cannot_be_deleted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pv, hvm = _import(PV, HVM)
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if pv in self.name:
            raise PermissionError(13, "Permission denied")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    rc, out, err = vb("rm", pv, hvm)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert rc == 1
    assert f"run {pv} not removed: cannot delete" in err and "Permission denied" in err
    assert f"removed run {hvm}" in out and pv not in out
    assert [r.id for r in open_store().list_runs()] == [pv]
    assert [p.name.endswith(f"{pv}.json") for p in paths.results_dir().iterdir()] == [True]
