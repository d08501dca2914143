"""The run index: a database over the JSON master documents.

* ``open_store(url)`` opens (and on first use creates) the index. ``url`` defaults to
  ``$VIRTBENCH_DB`` and then to SQLite at ``data_dir()/virtbench.db`` (WAL, foreign keys,
  busy timeout). PostgreSQL: ``postgresql+psycopg://user@host:port/db`` (psycopg 3); a plain
  ``postgresql://`` URL is taken to mean psycopg 3 too.
* ``Store.record(doc, path)`` indexes a saved document; recording the same id again replaces
  its rows (idempotent), in one transaction.
* ``save_and_record(doc)`` writes the master JSON under ``results_dir()`` then indexes it; a
  database failure is a warning on stderr, never a lost document.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from virtbench import paths
from virtbench.errors import UsageError, VirtbenchError
from virtbench.results.model import (
    Environment,
    ExperimentResult,
    RunResult,
    load_any,
    utc_now,
)
from virtbench.sigmask import signals_deferred
from virtbench.store import schema as S
from virtbench.store.master import master_path, warn
from virtbench.store.rows import RunFilter, RunRow, day_end, parse_copies

Document = RunResult | ExperimentResult


class StoreError(VirtbenchError):
    """The index database cannot be used (unreachable, wrong schema version, bad URL)."""

    exit_code = 4


# ---- URLs ------------------------------------------------------------------------------------
def default_url() -> str:
    return f"sqlite:///{paths.data_dir() / 'virtbench.db'}"


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$VIRTBENCH_DB``, else the default SQLite file."""
    chosen = url or os.environ.get("VIRTBENCH_DB") or default_url()
    if chosen.startswith("postgresql://") or chosen.startswith("postgres://"):
        chosen = "postgresql+psycopg://" + chosen.split("://", 1)[1]
    return chosen


def display_url(url: str) -> str:
    """The URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


# ---- engines (one per URL per process: cheap repeated opens) ---------------------------------
_ENGINES: dict[str, Engine] = {}
_READY: set[str] = set()
_LOCK = threading.Lock()


_BUSY_TIMEOUT_MS = 30000
_PG_SCHEMA_LOCK = 7626762
"""PostgreSQL advisory lock key under which a new index's tables are created (an arbitrary
constant; advisory locks are per database, so it only has to be virtbench's own)."""


def _switch_to_wal(cur: Any) -> None:
    """Put the database in WAL mode (once per file; a no-op when it already is).

    The switch needs an exclusive lock, and SQLite answers "database is locked" at once,
    without its busy handler, when another connection holds a lock the switch would wait on
    (several processes opening a brand-new index at the same moment: seen in CI with 8
    concurrent ``import``s). So: skip it when the file is already WAL, else retry it for up
    to the busy timeout.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            mode = cur.execute("PRAGMA journal_mode").fetchone()
            if mode is not None and str(mode[0]).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own implicit
        # transactions cannot be IMMEDIATE).
        dbapi_conn.isolation_level = None
        # Ctrl-C held: a raw connection interrupted here (mid-switch to WAL, holding the
        # file's lock) is no pooled connection SQLAlchemy rolls back; kept alive by the
        # traceback, it made the interrupted run's final save wait out the busy timeout
        # (CI: a Ctrl-C of `io postmark` took 30.2 s to end).
        with signals_deferred():
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys = ON")
            _switch_to_wal(cur)
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front so two writers queue on busy_timeout instead
        # of failing with "database is locked" when upgrading a read lock.
        if conn.get_execution_options().get("vb_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _engine(url: str) -> Engine:
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(f"not a database URL: {url!r}") from None
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            db = parsed.database
            if db and db != ":memory:":
                parent = Path(db).expanduser().parent
                if url == default_url():
                    parent.mkdir(parents=True, exist_ok=True)
                elif not parent.is_dir():
                    # A URL the user typed: a typo must not create directories (as root,
                    # anywhere); sqlite3 itself refuses this too.
                    raise StoreError(f"database {display_url(url)}: directory {parent} "
                                     "does not exist")
            engine = create_engine(url, connect_args={"timeout": 30})
            _sqlite_setup(engine)
        elif backend == "postgresql":
            try:
                engine = create_engine(url, pool_pre_ping=True)
            except ImportError as exc:
                raise StoreError(
                    "a PostgreSQL index needs the [postgres] extra (psycopg 3): "
                    f"pip install 'virtbench[postgres]' ({exc})"
                ) from None
        else:
            raise StoreError(
                f"unsupported database {backend!r} in {display_url(url)}: use sqlite:///PATH "
                "or postgresql+psycopg://USER@HOST/DB"
            )
        _ENGINES[url] = engine
        return engine


def dispose_engines(close: bool = True) -> None:
    """Forget every engine and its pooled connections (tests; long-lived processes switching
    databases). In a forked child pass ``close=False``: the parent's connections are left
    alone and the child opens its own."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose(close=close)
        _ENGINES.clear()
        _READY.clear()


# ---- rows (virtbench.store.rows: light, shared with the fast listing) -------------------------
@dataclass
class RebuildReport:
    indexed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(file, reason) for files that are not virtbench documents."""
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(file, id) for documents whose id was already indexed from another file."""


# ---- what gets indexed -----------------------------------------------------------------------
_FINGERPRINT_FIELDS = (
    "hostname", "os", "kernel", "kernel_version", "machine", "cpu_model", "cpu_count",
    "memory_bytes", "compiler", "compiler_version", "cflags", "workload_hash",
)


def environment_fingerprint(env: Environment) -> str:
    facts = {k: getattr(env, k) for k in _FINGERPRINT_FIELDS}
    facts["virtualization"] = env.virtualization_summary()
    blob = json.dumps(facts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _env_row(env: Environment) -> dict[str, Any]:
    return {
        "fingerprint": environment_fingerprint(env),
        "hostname": env.hostname,
        "os": env.os,
        "kernel": env.kernel,
        "kernel_version": env.kernel_version,
        "machine": env.machine,
        "cpu_model": env.cpu_model,
        "cpu_count": env.cpu_count,
        "memory_bytes": env.memory_bytes,
        "compiler": env.compiler,
        "compiler_version": env.compiler_version,
        "cflags": " ".join(env.cflags) if env.cflags else None,
        "workload_hash": env.workload_hash,
        "virtualization": env.virtualization_summary(),
        "facts": json.dumps(env.model_dump(mode="json"), sort_keys=True, default=str),
    }


def _result_rows(doc: Document) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    base = {"run_id": doc.id, "samples": None, "ci_low": None, "ci_high": None,
            "status": "ok", "name": None, "copies": None, "unit": None}
    if isinstance(doc, RunResult):
        for section in doc.sections:
            for t in section.tests:
                raw = dict(base, test=t.test, name=t.name, copies=section.copies, kind="raw",
                           value=t.score, unit=t.unit, samples=t.samples, status=t.status)
                if t.ci is not None:
                    raw.update(ci_low=t.ci.low, ci_high=t.ci.high)
                rows.append(raw)
                if t.index is not None:
                    idx = dict(base, test=t.test, name=t.name, copies=section.copies,
                               kind="index", value=t.index, unit="index", samples=t.samples,
                               status=t.status)
                    if t.ci is not None and t.baseline:
                        idx.update(ci_low=t.ci.low / t.baseline * 10,
                                   ci_high=t.ci.high / t.baseline * 10)
                    rows.append(idx)
            if section.index_score is not None:
                rows.append(dict(base, test="index_score",
                                 name="System Benchmarks Index Score", copies=section.copies,
                                 kind="score", value=section.index_score, unit="index",
                                 samples=section.index_tests))
    else:
        for key, value in sorted(doc.summary.items()):
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            rows.append(dict(base, test=str(key), kind="summary", value=float(value)))
    return rows


def _run_row(doc: Document, env_id: int, path: Path) -> dict[str, Any]:
    common = {
        "id": doc.id,
        "environment_id": env_id,
        "tool_version": doc.environment.tool_version,
        "status": doc.status,
        "started": doc.started,
        "finished": doc.finished,
        "path": str(path.resolve()),
        "recorded": utc_now(),
    }
    if isinstance(doc, RunResult):
        return dict(
            common, kind="suite", experiment=None, source=doc.source, suite=doc.suite,
            profile=doc.profile, mode=doc.mode, comparable=doc.comparable,
            copies=",".join(str(s.copies) for s in doc.sections),
        )
    copies = doc.params.get("copies")
    return dict(
        common, kind="experiment", experiment=doc.experiment, source="native", suite=None,
        profile=doc.params.get("profile") if isinstance(doc.params.get("profile"), str)
        else None,
        mode=None, comparable=None,
        copies=str(copies) if isinstance(copies, int) else None,
    )


_day_end = day_end


# ---- the store -------------------------------------------------------------------------------
class Store:
    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    @property
    def display_url(self) -> str:
        return display_url(self.url)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    # -- connections --
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(vb_write=True) as conn, conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.display_url}: {_short(exc)}") from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction for queries over the index tables (``virtbench.store.schema``;
        the dashboard's); a database error becomes one ``StoreError`` line."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.display_url}: {_short(exc)}") from exc

    # -- schema --
    def ensure_schema(self, *, check: bool = True) -> None:
        """Create the tables on first use; refuse an index of another schema version."""
        with self._write() as conn:
            if self.backend == "postgresql":
                # Two processes creating the tables of a new database at once: one waits
                # for the other (SQLite's BEGIN IMMEDIATE does this there), instead of failing
                # on a duplicate type or table.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
            names = set(inspect(conn).get_table_names())
            if "schema_info" in names:
                version = conn.execute(
                    select(S.schema_info.c.value).where(S.schema_info.c.key == "version")
                ).scalar_one_or_none()
                if check and version != str(S.STORE_SCHEMA_VERSION):
                    raise StoreError(
                        f"the index at {self.display_url} has schema version {version}; this "
                        f"virtbench uses {S.STORE_SCHEMA_VERSION}: run `virtbench db rebuild` "
                        "(the JSON result files are the master copies)"
                    )
                if version is not None:
                    return
            S.metadata.create_all(conn, checkfirst=True)
            conn.execute(delete(S.schema_info).where(S.schema_info.c.key == "version"))
            conn.execute(insert(S.schema_info).values(
                key="version", value=str(S.STORE_SCHEMA_VERSION)))

    def drop_all(self) -> None:
        with self._write() as conn:
            names = set(inspect(conn).get_table_names())
            for table in S.ALL_TABLES:
                if table.name in names:
                    table.drop(conn)

    # -- writing --
    def record(self, doc: Document, path: Path) -> None:
        """Index a saved document. Recording an id again replaces its rows."""
        for attempt in range(3):
            try:
                with self._write() as conn:
                    self._record(conn, doc, path)
                return
            except StoreError as exc:
                # Two writers racing on a new environment fingerprint (PostgreSQL): retry.
                if attempt < 2 and isinstance(exc.__cause__, IntegrityError):
                    continue
                raise

    def record_many(self, items: Sequence[tuple[Document, Path]]) -> None:
        """Index several documents in one transaction: all or nothing."""
        with self._write() as conn:
            for doc, path in items:
                self._record(conn, doc, path)

    def _record(self, conn: Connection, doc: Document, path: Path) -> None:
        env = _env_row(doc.environment)
        env_id = conn.execute(
            select(S.environment.c.id).where(S.environment.c.fingerprint == env["fingerprint"])
        ).scalar_one_or_none()
        if env_id is None:
            pk = conn.execute(insert(S.environment).values(**env)).inserted_primary_key
            assert pk is not None
            env_id = pk[0]
        conn.execute(delete(S.label).where(S.label.c.run_id == doc.id))
        conn.execute(delete(S.result).where(S.result.c.run_id == doc.id))
        conn.execute(delete(S.run).where(S.run.c.id == doc.id))
        conn.execute(insert(S.run).values(**_run_row(doc, int(env_id), path)))
        if doc.labels:
            conn.execute(insert(S.label), [
                {"run_id": doc.id, "key": k, "value": v} for k, v in sorted(doc.labels.items())
            ])
        rows = _result_rows(doc)
        if rows:
            conn.execute(insert(S.result), rows)

    def remove(self, run_id: str) -> RunRow | None:
        """Delete a run's index rows (not its file); returns what was removed."""
        with self._write() as conn:
            rows = self.runs_where(conn, S.run.c.id == run_id)
            if not rows:
                return None
            conn.execute(delete(S.label).where(S.label.c.run_id == run_id))
            conn.execute(delete(S.result).where(S.result.c.run_id == run_id))
            conn.execute(delete(S.run).where(S.run.c.id == run_id))
            used = select(S.run.c.environment_id)
            conn.execute(delete(S.environment).where(S.environment.c.id.not_in(used)))
            return rows[0]

    def rebuild(self, directory: Path | None = None) -> RebuildReport:
        """Drop the index and recreate it from every document under ``directory``."""
        directory = directory or paths.results_dir()
        report = RebuildReport()
        docs: list[tuple[Document, Path]] = []
        seen: dict[str, Path] = {}
        files = sorted(directory.rglob("*.json")) if directory.is_dir() else []
        for f in files:
            try:
                doc = load_any(f)
            except VirtbenchError as exc:
                report.skipped.append((str(f), str(exc)))
                continue
            if doc.id in seen:
                report.duplicates.append((str(f), doc.id))
                continue
            seen[doc.id] = f
            docs.append((doc, f))
        # One transaction (SQLite and PostgreSQL both have transactional DDL): a failure or
        # Ctrl-C half-way leaves the old index as it was, not an empty one.
        with self._write() as conn:
            names = set(inspect(conn).get_table_names())
            for table in S.ALL_TABLES:
                if table.name in names:
                    table.drop(conn)
            S.metadata.create_all(conn)
            conn.execute(insert(S.schema_info).values(
                key="version", value=str(S.STORE_SCHEMA_VERSION)))
            for doc, path in docs:
                self._record(conn, doc, path)
        report.indexed = len(docs)
        return report

    # -- reading --
    def runs_where(self, conn: Connection, *where: Any, order_desc: bool = False,
                   limit: int | None = None) -> list[RunRow]:
        """The runs matching every SQL condition ``where`` (over ``schema.run`` and
        ``schema.environment``), oldest first (``order_desc``: newest first), with their
        labels and index scores, inside a transaction of :meth:`reading`."""
        r, e = S.run, S.environment
        q = (select(r, e.c.hostname, e.c.cpu_model, e.c.kernel, e.c.virtualization)
             .join(e, e.c.id == r.c.environment_id))
        for w in where:
            q = q.where(w)
        order = (r.c.started.desc(), r.c.id.desc()) if order_desc else (r.c.started, r.c.id)
        q = q.order_by(*order)
        if limit is not None:
            q = q.limit(limit)
        out: list[RunRow] = []
        for m in conn.execute(q).mappings():
            copies = parse_copies(m["copies"])
            out.append(RunRow(
                id=m["id"], kind=m["kind"], experiment=m["experiment"], source=m["source"],
                profile=m["profile"], mode=m["mode"],
                comparable=None if m["comparable"] is None else bool(m["comparable"]),
                copies=copies, status=m["status"], started=m["started"],
                finished=m["finished"], path=m["path"], tool_version=m["tool_version"],
                hostname=m["hostname"], cpu_model=m["cpu_model"], kernel=m["kernel"],
                virtualization=m["virtualization"],
            ))
        if out:
            ids = [row.id for row in out]
            by_id = {row.id: row for row in out}
            for chunk_start in range(0, len(ids), 500):
                chunk = ids[chunk_start:chunk_start + 500]
                for lm in conn.execute(
                    select(S.label).where(S.label.c.run_id.in_(chunk))
                ).mappings():
                    by_id[lm["run_id"]].labels[lm["key"]] = lm["value"]
                for sm in conn.execute(
                    select(S.result.c.run_id, S.result.c.copies, S.result.c.value)
                    .where(and_(S.result.c.run_id.in_(chunk), S.result.c.kind == "score"))
                ).mappings():
                    if sm["value"] is not None and sm["copies"] is not None:
                        by_id[sm["run_id"]].scores[int(sm["copies"])] = float(sm["value"])
        return out

    def get(self, run_id: str) -> RunRow | None:
        with self.reading() as conn:
            rows = self.runs_where(conn, S.run.c.id == run_id)
        return rows[0] if rows else None

    def find_prefix(self, prefix: str) -> list[RunRow]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.reading() as conn:
            return self.runs_where(conn, S.run.c.id.like(escaped + "%", escape="\\"))

    def latest(self, kind: str | None = None) -> RunRow | None:
        where = [] if kind is None else [_kind_clause(kind)]
        with self.reading() as conn:
            rows = self.runs_where(conn, *where, order_desc=True, limit=1)
        return rows[0] if rows else None

    def with_label(self, key: str, value: str) -> list[RunRow]:
        sub = select(S.label.c.run_id).where(
            and_(S.label.c.key == key, S.label.c.value == value))
        with self.reading() as conn:
            return self.runs_where(conn, S.run.c.id.in_(sub))

    def list_runs(self, flt: RunFilter | None = None) -> list[RunRow]:
        """Runs matching ``flt``, oldest first (the newest ``limit`` when a limit is set)."""
        flt = flt or RunFilter()
        r = S.run
        where: list[Any] = []
        if flt.host:
            # autoescape: '%' and '_' in the text are literal, not LIKE wildcards.
            where.append(func.lower(S.environment.c.hostname).contains(flt.host.lower(),
                                                                        autoescape=True))
        for key, value in flt.labels.items():
            where.append(r.c.id.in_(select(S.label.c.run_id).where(
                and_(S.label.c.key == key, S.label.c.value == value))))
        if flt.since:
            where.append(r.c.started >= flt.since)
        if flt.until:
            where.append(r.c.started < _day_end(flt.until))
        if flt.profile:
            where.append(r.c.profile == flt.profile)
        if flt.kind:
            where.append(_kind_clause(flt.kind))
        if flt.source:
            where.append(r.c.source == flt.source)
        with self.reading() as conn:
            if flt.limit is not None:
                rows = self.runs_where(conn, *where, order_desc=True, limit=flt.limit)
                rows.reverse()
                return rows
            return self.runs_where(conn, *where)

    def counts(self) -> dict[str, int]:
        with self.reading() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (S.run, S.environment, S.result, S.label)
            }

    def schema_version(self) -> str | None:
        with self.reading() as conn:
            value: str | None = conn.execute(
                select(S.schema_info.c.value).where(S.schema_info.c.key == "version")
            ).scalar_one_or_none()
            return value


def _kind_clause(kind: str) -> Any:
    if kind in ("suite", "experiment"):
        return S.run.c.kind == kind
    return S.run.c.experiment == kind


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if first in ("file is not a database", "database disk image is malformed"):
        # db rebuild cannot repair a damaged file; the JSON files hold every run.
        first += (": move the file away, then `virtbench db rebuild` recreates the index from "
                  "the JSON result files")
    return first


def open_store(url: str | None = None, *, check: bool = True) -> Store:
    """Open the index at ``url`` (see ``resolve_url``), creating its tables on first use.

    ``check=False`` skips the schema-version check (``virtbench db rebuild`` uses it to
    replace an index of another version).
    """
    full = resolve_url(url)
    engine = _engine(full)
    store = Store(engine, full)
    if full not in _READY or not check:
        store.ensure_schema(check=check)
        if check:
            _READY.add(full)
    return store


# ---- saving: see virtbench.store.files ----------------------------------------------------


def load_recorded(row: RunRow) -> Document:
    """The master document of an indexed run."""
    path = Path(row.path)
    if not path.exists():
        raise UsageError(
            f"run {row.id}: its file {path} is missing (moved or deleted?): run "
            "`virtbench db rebuild` to re-index the result files, or `virtbench rm "
            f"{row.id}` to forget it"
        )
    return load_any(path)


__all__ = [
    "Document", "RebuildReport", "RunFilter", "RunRow", "Store", "StoreError",
    "default_url", "dispose_engines", "environment_fingerprint", "load_recorded",
    "master_path", "open_store", "resolve_url",
    "warn",
]
