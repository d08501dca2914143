"""The run index against SQLite and a real PostgreSQL server; the RUN resolver."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from virtbench import paths
from virtbench.cli.resolve import resolve_one, resolve_runs
from virtbench.errors import UsageError
from virtbench.results import model
from virtbench.store import (
    RunFilter,
    Store,
    StoreError,
    dispose_engines,
    master_path,
    open_store,
    save_and_record,
)
from virtbench.store import schema as S

DATA = Path(__file__).resolve().parent / "data"


def make_run(*, started: str = "2026-11-20T10:00:00Z", host: str = "h1",
             labels: dict[str, str] | None = None, score: float = 1000.0,
             copies: tuple[int, ...] = (1,), profile: str = "unixbench-6") -> model.RunResult:
    run = model.RunResult(profile=profile, started=started, status="complete",
                          labels=labels or {})
    run.environment.hostname = host
    run.environment.cpu_model = "Test CPU"
    run.environment.cpu_count = 2
    for c in copies:
        t = model.TestResult(
            test="pipe", name="Pipe Throughput", unit="lps", copies=c,
            score=score * c, samples=7, elapsed=10.0, baseline=12440.0,
            index=score * c / 12440.0 * 10,
            ci=model.ConfidenceInterval(low=score * c * 0.98, high=score * c * 1.02),
        )
        run.sections.append(model.Section(copies=c, tests=[t], index_score=t.index,
                                          index_tests=1))
    return run


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    dispose_engines()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    url: str = request.getfixturevalue("postgres_url")
    store = open_store(url, check=False)
    store.drop_all()
    dispose_engines()
    yield url


def test_default_is_sqlite_in_data_dir_with_wal() -> None:
    store = open_store()
    assert store.backend == "sqlite"
    db = paths.data_dir() / "virtbench.db"
    assert db.exists()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_a_new_index_opens_while_another_process_holds_its_write_lock(tmp_path: Path) -> None:
    """Switching a new file to WAL needs an exclusive lock, and SQLite refuses it at once
    (no busy handler) while another connection holds the write lock: 8 concurrent imports
    into a new index failed that way in CI. The switch must wait like any other writer."""
    db = tmp_path / "new.db"
    holder = subprocess.Popen(  # holds the write lock until its stdin says (or closes)
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
         "c.execute('CREATE TABLE t (x)'); c.execute('BEGIN IMMEDIATE')\n"
         "c.execute('INSERT INTO t VALUES (1)'); print('held', flush=True)\n"
         "sys.stdin.readline(); c.execute('COMMIT')\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdin is not None and holder.stdout is not None
    opened: list[object] = []

    def _open() -> None:
        try:
            opened.append(open_store(f"sqlite:///{db}"))
        except Exception as exc:  # the test reports it
            opened.append(exc)

    opener = threading.Thread(target=_open)
    try:
        assert holder.stdout.readline().strip() == "held"
        opener.start()
        # The lock stays held until the opener had 2 s to fail: before the fix it failed at
        # once ("database is locked"); now it waits (up to the 30 s busy timeout). Only then
        # is the lock released, so a slow machine cannot make the test pass without waiting.
        opener.join(timeout=2)
        assert opened == [], opened
        holder.stdin.write("commit\n")
        holder.stdin.flush()
        opener.join(timeout=60)
        (store,) = opened
        assert isinstance(store, Store), store
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert store.counts()["run"] == 0
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
        holder.stdout.close()
        if opener.ident is not None:
            opener.join(timeout=60)
        dispose_engines()


def test_env_var_selects_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("VIRTBENCH_DB", url)
    save_and_record(make_run())
    assert (tmp_path / "other.db").exists()
    assert not (paths.data_dir() / "virtbench.db").exists()


def test_record_is_idempotent_and_round_trips(db_url: str | None) -> None:
    run = make_run(labels={"env": "pv"}, copies=(1, 2))
    path = save_and_record(run, db_url=db_url)
    assert path == paths.results_dir() / f"2026-11-20-{run.id}.json"
    assert model.load_document(path) == run
    store = open_store(db_url)
    before = store.counts()
    assert before == {"run": 1, "environment": 1, "result": 6, "label": 1}
    # Record again after the run progressed: same id, updated rows, nothing duplicated.
    run.labels["env"] = "hvm"
    run.sections[0].tests[0].score = 2000.0
    save_and_record(run, db_url=db_url)
    assert store.counts() == before
    row = store.get(run.id)
    assert row is not None
    assert row.labels == {"env": "hvm"}
    assert row.copies == [1, 2]
    assert row.scores[2] == pytest.approx(2000.0 / 12440.0 * 10)
    assert row.hostname == "h1"
    with store.engine.connect() as conn:
        value = conn.execute(text(
            "SELECT value FROM result WHERE run_id=:i AND kind='raw' AND copies=1"),
            {"i": run.id}).scalar_one()
        assert value == 2000.0
        ci = conn.execute(text(
            "SELECT ci_low, ci_high FROM result WHERE run_id=:i AND kind='index' "
            "AND copies=2"), {"i": run.id}).one()
        assert ci[0] == pytest.approx(1960.0 / 12440.0 * 10)
    assert resolve_one(run.id, db_url) == run


def test_environment_shared_by_fingerprint(db_url: str | None) -> None:
    a, b, c = make_run(), make_run(), make_run(host="h2")
    for r in (a, b, c):
        save_and_record(r, db_url=db_url)
    store = open_store(db_url)
    assert store.counts()["environment"] == 2
    removed = store.remove(c.id)
    assert removed is not None and removed.hostname == "h2"
    assert store.counts()["environment"] == 1
    assert store.remove(c.id) is None


def test_list_and_filter(db_url: str | None) -> None:
    old = make_run(started="2026-01-05T00:00:00Z", labels={"env": "pv"}, host="alpha")
    mid = make_run(started="2026-02-05T00:00:00Z", labels={"env": "hvm"}, host="beta",
                   profile="unixbench-5.1.3")
    new = make_run(started="2026-03-05T00:00:00Z", labels={"env": "pv", "k": "x"},
                   host="alpha")
    exp = model.ExperimentResult(experiment="consolidate", started="2026-03-06T00:00:00Z",
                                 summary={"slowdown": 1.5, "note": "text", "n": 3})
    for d in (new, old, mid, exp):
        save_and_record(d, db_url=db_url)
    store = open_store(db_url)
    ids = lambda rows: [r.id for r in rows]  # noqa: E731
    assert ids(store.list_runs()) == [old.id, mid.id, new.id, exp.id]
    assert ids(store.list_runs(RunFilter(host="ALPH"))) == [old.id, new.id]
    assert ids(store.list_runs(RunFilter(labels={"env": "pv"}))) == [old.id, new.id]
    assert ids(store.list_runs(RunFilter(labels={"env": "pv", "k": "x"}))) == [new.id]
    assert ids(store.list_runs(RunFilter(since="2026-02-01", until="2026-03-05"))) == [
        mid.id, new.id]
    assert ids(store.list_runs(RunFilter(profile="unixbench-5.1.3"))) == [mid.id]
    assert ids(store.list_runs(RunFilter(kind="experiment"))) == [exp.id]
    assert ids(store.list_runs(RunFilter(kind="consolidate"))) == [exp.id]
    assert ids(store.list_runs(RunFilter(kind="suite", limit=2))) == [mid.id, new.id]
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT test, value FROM result WHERE run_id=:i ORDER BY test"),
            {"i": exp.id}).all()
    assert [(r[0], r[1]) for r in rows] == [("n", 3.0), ("slowdown", 1.5)]
    # The resolver: latest, labels (oldest first), kinds.
    assert [d.id for d in resolve_runs(["latest"], db_url)] == [exp.id]
    assert [d.id for d in resolve_runs(["latest"], db_url, kind="suite")] == [new.id]
    assert [d.id for d in resolve_runs(["env=pv", mid.id], db_url)] == [old.id, new.id, mid.id]


def test_resolver_refs(tmp_path: Path) -> None:
    a = make_run()
    save_and_record(a)
    # A file path, a JSON document anywhere.
    f = a.save(tmp_path / "copy.json")
    assert resolve_runs([str(f)])[0] == a
    # A UnixBench text report is imported on the fly and not stored.
    report = tmp_path / "ub.txt"
    shutil.copy(DATA / "unixbench-centos6-xen-pv.txt", report)
    doc = resolve_one(str(report))
    assert isinstance(doc, model.RunResult) and doc.source == "imported-unixbench"
    assert open_store().get(doc.id) is None
    # Unique prefixes and the errors.
    assert resolve_one(a.id[:5]).id == a.id
    with pytest.raises(UsageError, match="'nope'"):
        resolve_runs(["nope"])
    with pytest.raises(UsageError, match="no such file"):
        resolve_runs(["missing/file.json"])
    with pytest.raises(UsageError, match="no run has the label"):
        resolve_runs(["env=none"])
    b = make_run()
    b.id = a.id[:3] + "zzzzzzzzz"
    save_and_record(b)
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_runs([a.id[:3]])
    # A deleted master file: a clear error, not a traceback.
    master_path(b).unlink()
    with pytest.raises(UsageError, match="missing"):
        resolve_runs([b.id])


def test_store_failure_keeps_the_json(capfd: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    run = make_run()
    out = tmp_path / "out" / "r.json"
    bad = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    path = save_and_record(run, output=out, db_url=bad)
    assert model.load_document(path) == run
    assert model.load_document(out) == run
    err = capfd.readouterr().err
    assert "warning" in err and run.id in err and "db rebuild" in err
    with pytest.raises(StoreError):
        open_store(bad)


def test_schema_version_mismatch_then_rebuild(db_url: str | None) -> None:
    runs = [make_run(started=f"2026-11-0{i}T00:00:00Z") for i in range(1, 4)]
    for r in runs:
        save_and_record(r, db_url=db_url)
    # An unrelated JSON file and a broken one are skipped, not fatal.
    (paths.results_dir() / "notes.json").write_text('{"hello": 1}')
    (paths.results_dir() / "broken.json").write_text("{")
    store = open_store(db_url)
    with store.engine.begin() as conn:
        conn.execute(S.schema_info.update().values(value="999"))
    dispose_engines()
    with pytest.raises(StoreError, match="db rebuild"):
        open_store(db_url)
    store = open_store(db_url, check=False)
    report = store.rebuild()
    assert report.indexed == 3
    assert sorted(Path(f).name for f, _ in report.skipped) == ["broken.json", "notes.json"]
    dispose_engines()
    store = open_store(db_url)
    assert store.schema_version() == str(S.STORE_SCHEMA_VERSION)
    assert [r.id for r in store.list_runs()] == [r.id for r in runs]


def _opener(data_home: str, url: str | None, barrier: Any, out: Any) -> None:
    os.environ["XDG_DATA_HOME"] = data_home
    barrier.wait(timeout=120)
    try:
        open_store(url)
    except Exception as exc:  # the test reports it
        out.put(f"{type(exc).__name__}: {exc}")
        return
    out.put("ok")


def test_processes_creating_a_new_index_at_once_all_open_it(
        db_url: str | None, tmp_path: Path) -> None:
    """Processes open a new index at the same moment: each must wait for the one that creates
    the tables (SQLite: the switch to WAL, "database is locked"; PostgreSQL: the tables' types,
    "duplicate key value violates unique constraint pg_type_typname_nsp_index")."""
    if db_url is not None:
        open_store(db_url, check=False).drop_all()
        dispose_engines()
    ctx = multiprocessing.get_context("spawn")  # not fork: see test_concurrent_writers
    barrier, out = ctx.Barrier(5), ctx.Queue()
    procs = [ctx.Process(target=_opener, args=(str(tmp_path / "home"), db_url, barrier, out))
             for _ in range(5)]
    for p in procs:
        p.start()
    outcomes = sorted(out.get(timeout=240) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert outcomes == ["ok"] * 5
    dispose_engines()
    assert open_store(db_url).schema_version() == str(S.STORE_SCHEMA_VERSION)


def _writer(args: tuple[str, str | None, int]) -> int:
    data_home, url, n = args
    os.environ["XDG_DATA_HOME"] = data_home
    dispose_engines(close=False)  # the parent's connections are not ours
    for i in range(n):
        # Same environment in every process: they race to insert its row.
        save_and_record(make_run(started=f"2026-11-2{i % 10}T00:00:00Z"), db_url=url)
    return n


def test_concurrent_writers(db_url: str | None, capfd: pytest.CaptureFixture[str]) -> None:
    data_home = os.environ["XDG_DATA_HOME"]
    open_store(db_url)
    # Fresh interpreters, not forks: a fork of this multi-threaded test process can inherit
    # a lock another thread held and hang for ever (seen in a CI run: one writer asleep on a
    # futex, the pool waiting on it). The timeout turns any other hang into a failure.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        done = pool.map_async(_writer, [(data_home, db_url, 15)] * 3).get(timeout=300)
    assert sum(done) == 45
    assert "warning" not in capfd.readouterr().err  # every record made it into the index
    dispose_engines()
    counts = open_store(db_url).counts()
    assert counts["run"] == 45 and counts["environment"] == 1


def test_master_file_is_json_document(db_url: str | None) -> None:
    run = make_run()
    path = save_and_record(run, db_url=db_url)
    doc = json.loads(path.read_text())
    assert doc["id"] == run.id and doc["type"] == "virtbench.run"
    row = open_store(db_url).get(run.id)
    assert row is not None and Path(row.path) == path.resolve()


def test_documented_sql_query_runs(db_url: str | None) -> None:
    import re

    from virtbench.importers.unixbench import parse_file

    page = (Path(__file__).resolve().parent.parent / "docs" / "database.md").read_text()
    block = re.search(r"```sql\n(.*?)```", page, re.S)
    assert block is not None
    pv = parse_file(DATA / "unixbench-centos6-xen-pv.txt")
    pv.labels["env"] = "xen-pv"
    save_and_record(pv, db_url=db_url)
    save_and_record(make_run(labels={"env": "other"}), db_url=db_url)
    with open_store(db_url).engine.connect() as conn:
        rows = conn.execute(text(block.group(1).strip().rstrip(";"))).all()
    assert len(rows) == 1
    assert rows[0][0] == pv.id and rows[0][2] == "centos6.takara.org"
    assert rows[0][3] == pytest.approx(208.18, abs=0.01)


def test_public_read_api_and_no_private_use_outside_the_store(tmp_path: Path) -> None:
    """`Store.reading()` and `Store.runs_where()` are the public way to query the index
    (the dashboard's queries used the private `_read()`/`_runs()`); nothing outside
    `virtbench.store` reaches for a private member of a Store."""
    import ast

    old = make_run(started="2026-11-20T10:00:00Z", host="a", labels={"k": "1"})
    new = make_run(started="2026-11-21T10:00:00Z", host="b")
    for r in (old, new):
        save_and_record(r)
    store = open_store()
    with store.reading() as conn:
        both = store.runs_where(conn)
        newest = store.runs_where(conn, S.run.c.id.in_([old.id, new.id]), order_desc=True,
                                  limit=1)
        only_a = store.runs_where(conn, S.environment.c.hostname == "a")
    assert [r.id for r in both] == [old.id, new.id]
    assert [r.id for r in newest] == [new.id]
    assert [(r.id, r.labels, r.scores[1]) for r in only_a] == [
        (old.id, {"k": "1"}, pytest.approx(1000.0 / 12440.0 * 10))]
    with pytest.raises(StoreError, match="database"), store.reading() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))

    src = Path(__file__).resolve().parents[1] / "src" / "virtbench"
    private = {"_read", "_runs", "_write", "_record"}
    found = []
    for path in src.rglob("*.py"):
        if path.parent.name == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in private \
                    and isinstance(node.value, ast.Name) and node.value.id == "store":
                found.append(f"{path.relative_to(src)}:{node.lineno}: store.{node.attr}")
    assert found == []
