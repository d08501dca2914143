"""``virtbench runs`` without SQLAlchemy: a read-only listing of a SQLite index with the
standard library's ``sqlite3``.

Importing SQLAlchemy (and pydantic, through the store) costs more than the 0.25 s start-up
budget of ``virtbench runs`` (bench/cli_startup.py). This module answers the common case, an
existing SQLite index of this version, with the same query as ``Store.list_runs``; in every
other case (PostgreSQL, no index yet, another schema version, any sqlite3 error) it returns
None and the caller opens the store, which creates, checks and explains.
tests/test_cli_startup.py checks that both give the same rows for every filter.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from virtbench import paths
from virtbench.store.rows import STORE_SCHEMA_VERSION, RunFilter, RunRow, day_end, parse_copies

_COLUMNS = ("r.id, r.kind, r.experiment, r.source, r.profile, r.mode, r.comparable, r.copies, "
            "r.status, r.started, r.finished, r.path, r.tool_version, e.hostname, e.cpu_model, "
            "e.kernel, e.virtualization")


def sqlite_path(url: str | None) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (``url``, else ``$VIRTBENCH_DB``, else the
    default index); None for anything else."""
    chosen = url or os.environ.get("VIRTBENCH_DB")
    if not chosen:
        return paths.data_dir() / "virtbench.db"
    if not chosen.startswith("sqlite:///") or "?" in chosen:
        return None
    rest = chosen[len("sqlite:///"):]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)


def list_runs(url: str | None, flt: RunFilter) -> list[RunRow] | None:
    """The runs ``Store.list_runs(flt)`` would return, or None (use the store)."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                               timeout=30)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        version = conn.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
        if version is None or version[0] != str(STORE_SCHEMA_VERSION):
            return None
        return _query(conn, flt)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _query(conn: sqlite3.Connection, flt: RunFilter) -> list[RunRow]:
    where: list[str] = []
    args: list[object] = []
    if flt.host:
        text = flt.host.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
        where.append("lower(e.hostname) LIKE ? ESCAPE '/'")
        args.append(f"%{text}%")
    for key, value in flt.labels.items():
        where.append("r.id IN (SELECT run_id FROM label WHERE key = ? AND value = ?)")
        args += [key, value]
    if flt.since:
        where.append("r.started >= ?")
        args.append(flt.since)
    if flt.until:
        where.append("r.started < ?")
        args.append(day_end(flt.until))
    if flt.profile:
        where.append("r.profile = ?")
        args.append(flt.profile)
    if flt.kind:
        where.append("r.kind = ?" if flt.kind in ("suite", "experiment") else "r.experiment = ?")
        args.append(flt.kind)
    if flt.source:
        where.append("r.source = ?")
        args.append(flt.source)
    sql = (f"SELECT {_COLUMNS} FROM run r JOIN environment e ON e.id = r.environment_id"
           + (" WHERE " + " AND ".join(where) if where else ""))
    if flt.limit is not None:
        sql += " ORDER BY r.started DESC, r.id DESC LIMIT ?"
        args.append(flt.limit)
    else:
        sql += " ORDER BY r.started, r.id"
    out = [RunRow(id=m[0], kind=m[1], experiment=m[2], source=m[3], profile=m[4], mode=m[5],
                  comparable=None if m[6] is None else bool(m[6]), copies=parse_copies(m[7]),
                  status=m[8], started=m[9], finished=m[10], path=m[11], tool_version=m[12],
                  hostname=m[13], cpu_model=m[14], kernel=m[15], virtualization=m[16])
           for m in conn.execute(sql, args)]
    if flt.limit is not None:
        out.reverse()
    by_id = {row.id: row for row in out}
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for run_id, key, value in conn.execute(
                f"SELECT run_id, key, value FROM label WHERE run_id IN ({marks})", chunk):
            by_id[run_id].labels[key] = value
        for run_id, copies, value in conn.execute(
                f"SELECT run_id, copies, value FROM result WHERE run_id IN ({marks}) "
                "AND kind = 'score'", chunk):
            if value is not None and copies is not None:
                by_id[run_id].scores[int(copies)] = float(value)
    return out
