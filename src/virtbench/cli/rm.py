"""``virtbench rm RUN...``: forget stored runs (index rows and the JSON master file)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from virtbench import paths
from virtbench.cli._common import add_db_option, info, print_json
from virtbench.errors import UsageError, VirtbenchError
from virtbench.safeio import path_kind
from virtbench.store.lock import store_lock

if TYPE_CHECKING:
    from virtbench.store import RunRow, Store

NAME = "rm"
HELP = "remove stored runs: their index rows and JSON master files (--keep-file keeps it)"
EXAMPLES = (
    'virtbench rm latest',
    'virtbench rm --keep-file env=test',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run id or unique prefix, 'latest', or label KEY=VALUE")
    parser.add_argument("--keep-file", action="store_true",
                        help="remove from the index only; keep the JSON file")
    parser.add_argument("--json", action="store_true", help="what was removed, as JSON")
    add_db_option(parser)


def run(args: argparse.Namespace) -> int:
    from virtbench.cli.resolve import resolve_rows
    from virtbench.store import open_store

    store = open_store(args.db)
    # Resolve everything first so a typo in the third ref removes nothing.
    rows: list[RunRow] = []
    for ref in args.runs:
        if path_kind(Path(ref).expanduser()) == "file":
            raise UsageError(
                f"{ref}: rm takes run ids, prefixes, 'latest' or labels, not files "
                f"(the run in this file: `virtbench rm {_file_ids(Path(ref).expanduser())}`)")
        for row in resolve_rows(store, ref):
            if row.id not in {r.id for r in rows}:
                rows.append(row)
    results = paths.results_dir()
    removed: list[dict[str, object]] = []
    with store_lock():  # file and index row go together (a concurrent import re-adds both)
        failed = _remove(rows, results, store, args, removed)
    if args.json:
        print_json(removed)
    return 1 if failed else 0


def _remove(rows: list[RunRow], results: Path, store: Store, args: argparse.Namespace,
            removed: list[dict[str, object]]) -> int:
    failed = 0
    for row in rows:
        path = Path(row.path)
        deleted = False
        outside = not _inside(path, results)
        if not args.keep_file and not outside and path.exists():
            try:
                path.unlink()  # the file first: if it cannot go, the run stays indexed
            except OSError as exc:
                info(f"run {row.id} not removed: cannot delete {path}: "
                     f"{exc.strerror or exc}")
                failed += 1
                continue
            deleted = True
        store.remove(row.id)
        removed.append({"id": row.id, "started": row.started, "host": row.hostname,
                        "file": str(path), "file_deleted": deleted})
        if not args.json:
            what = f"deleted {path}" if deleted else (
                f"kept {path}" + (" (outside the results directory: indexed by `db rebuild "
                                  "--dir`, so not virtbench's to delete)"
                                  if outside and not args.keep_file else "")
                if path.exists() else f"file {path} was already gone")
            print(f"removed run {row.id} ({row.started}, {row.hostname or '?'}); {what}")
    return failed


def _file_ids(path: Path) -> str:
    from virtbench.cli.resolve import load_file_all

    try:
        return " ".join(d.id for d in load_file_all(path))
    except VirtbenchError:
        return "ID"


def _inside(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except OSError:
        return False
