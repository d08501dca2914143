"""``virtbench db rebuild|info``: the index database (docs/store.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from virtbench import paths
from virtbench.cli._common import add_db_option, info, print_json
from virtbench.errors import UsageError
from virtbench.results.model import load_any

NAME = "db"
HELP = "the run index: 'rebuild' it from the JSON result files, or show 'info'"
EXAMPLES = (
    'virtbench db info',
    'virtbench db rebuild',
    'virtbench db rebuild --db postgresql://me@dbhost/virtbench',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["rebuild", "info"],
                        help="rebuild: recreate the index from the JSON result files; "
                             "info: database, counts, files not indexed")
    parser.add_argument("--dir", type=Path, metavar="DIR",
                        help="rebuild from the JSON files under DIR (default: the results dir)")
    parser.add_argument("--json", action="store_true", help="the outcome as JSON on stdout")
    add_db_option(parser)


def run(args: argparse.Namespace) -> int:
    from virtbench.store import open_store

    if args.action == "rebuild":
        if args.dir is not None and not args.dir.is_dir():
            # Rebuilding from a typo'd directory would empty the index.
            raise UsageError(f"--dir {args.dir}: no such directory; the index is unchanged")
        store = open_store(args.db, check=False)
        directory = args.dir or paths.results_dir()
        from virtbench.store.lock import store_lock

        with store_lock():  # no import or save slips in between the scan and the swap
            report = store.rebuild(directory)
        out = {"database": store.display_url, "directory": str(directory),
               "indexed": report.indexed,
               "skipped": [{"file": f, "reason": r} for f, r in report.skipped],
               "duplicates": [{"file": f, "id": i} for f, i in report.duplicates]}
        for f, reason in report.skipped:
            # The reason usually starts with the file name already: name it once.
            info(reason if reason.startswith(f"{f}:") else f"skipped {f}: {reason}")
        for f, run_id in report.duplicates:
            info(f"skipped {f}: run {run_id} already indexed from another file")
        if args.json:
            print_json(out)
        else:
            print(f"indexed {report.indexed} runs from {directory} into {store.display_url}")
        return 0
    store = open_store(args.db)
    counts = store.counts()
    directory = paths.results_dir()
    files = sorted(f for f in directory.rglob("*.json") if f.is_file()) \
        if directory.is_dir() else []
    indexed_paths = {r.path for r in store.list_runs()}
    unindexed = [str(f) for f in files if str(f.resolve()) not in indexed_paths]
    not_docs = []
    for f in unindexed:
        try:
            load_any(Path(f))
        except Exception:
            not_docs.append(f)
    data = {"database": store.display_url, "backend": store.backend,
            "schema_version": store.schema_version(), "results_dir": str(directory),
            "runs": counts["run"], "environments": counts["environment"],
            "results": counts["result"], "labels": counts["label"],
            "files": len(files),
            "files_not_indexed": [f for f in unindexed if f not in not_docs],
            "files_not_documents": not_docs}
    if args.json:
        print_json(data)
        return 0
    for key in ("database", "backend", "schema_version", "results_dir", "runs",
                "environments", "results", "labels", "files"):
        print(f"{key:<16}{data[key]}")
    missing = data["files_not_indexed"]
    assert isinstance(missing, list)
    print(f"{'not indexed':<16}{len(missing)}"
          + ("  (run `virtbench db rebuild`)" if missing else ""))
    if not_docs:
        print(f"{'not documents':<16}{len(not_docs)}  (unreadable or not virtbench JSON; "
              "`virtbench db rebuild` names them)")
    return 0
