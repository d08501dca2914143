"""``virtbench runs``: list the stored runs, newest last (docs/runs.md)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING

from virtbench import console
from virtbench.cli._common import (
    add_db_option,
    add_label_option,
    parse_labels,
    print_json,
)
from virtbench.errors import UsageError
from virtbench.table import Col, print_table

if TYPE_CHECKING:
    from virtbench.store.rows import RunRow

NAME = "runs"
HELP = "list stored runs (filter by host, label, date, profile, kind)"
EXAMPLES = (
    'virtbench runs',
    'virtbench runs --label env=xen-pv --since 2026-01-01',
    'virtbench runs --host centos6 --json',
    'virtbench runs --kind consolidate --limit 5',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", metavar="TEXT", help="hostname contains TEXT")
    add_label_option(parser, "only runs with this label (repeatable: all must match)")
    parser.add_argument("--since", metavar="DATE", help="started on or after DATE (YYYY-MM-DD)")
    parser.add_argument("--until", metavar="DATE", help="started on or before DATE")
    parser.add_argument("--profile", metavar="NAME", help="e.g. unixbench-6, unixbench-5.1.3")
    parser.add_argument("--kind", metavar="KIND",
                        help="suite, experiment, or an experiment name (e.g. consolidate)")
    parser.add_argument("--source", choices=["native", "imported-unixbench",
                                             "imported-virtbench"],
                        help="measured here (native) or imported from a UnixBench text "
                             "report or another machine's JSON")
    parser.add_argument("--limit", type=int, metavar="N", help="only the newest N")
    parser.add_argument("--json", action="store_true", help="the list as JSON on stdout")
    add_db_option(parser)


# Ids, dates, copies, index values and statuses are never cut; names and labels wrap.
RUNS_COLUMNS = [
    Col("ID"), Col("STARTED", wrap=True, min_width=10, breakable=False),
    Col("KIND", wrap=True, min_width=8, breakable=False),
    Col("HOST", wrap=True, min_width=8, hyphens=True),
    Col("PROFILE", wrap=True, min_width=8, breakable=False, hyphens=True),
    Col("COPIES", wrap=True, min_width=6, breakable=False),
    Col("INDEX", wrap=True, min_width=8, breakable=False), Col("STATUS"),
    Col("LABELS", wrap=True, min_width=10, breakable=False, detail=True),
]


def describe_kind(row: RunRow) -> str:
    if row.kind == "experiment":
        return row.experiment or "experiment"
    return "imported" if row.source.startswith("imported") else "suite"


def scores_text(row: RunRow) -> str:
    return " ".join(f"{c}:{s:.1f}" for c, s in sorted(row.scores.items()))


def _date(option: str, value: str | None) -> str | None:
    """A ``--since``/``--until`` value as given, after checking it is a date: a typo must
    not silently list nothing (or everything)."""
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} {value!r}: expected a date YYYY-MM-DD or a timestamp "
            "YYYY-MM-DDTHH:MM:SS") from None
    return value.replace(" ", "T", 1)  # stored timestamps have the T


def run(args: argparse.Namespace) -> int:
    from virtbench.store.quick import list_runs
    from virtbench.store.rows import RunFilter

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: expected a number of runs, 1 or more")
    args.since = _date("--since", args.since)
    args.until = _date("--until", args.until)

    flt = RunFilter(host=args.host, labels=parse_labels(args.label), since=args.since,
                    until=args.until, profile=args.profile, kind=args.kind,
                    source=args.source, limit=args.limit)
    rows = list_runs(args.db, flt)  # the fast read-only path, else the store
    how = "sqlite3, read-only"
    if rows is None:
        from virtbench.store import open_store

        store = open_store(args.db)
        rows = store.list_runs(flt)
        how = store.display_url
    console.detail(f"{len(rows)} run{'' if len(rows) == 1 else 's'} from the index ({how})")
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0
    table = [
        [r.id, r.started[:19].replace("T", " "), describe_kind(r), r.hostname or "-",
         r.profile or "-", ",".join(str(c) for c in r.copies) or "-",
         scores_text(r) or "-", r.status,
         " ".join(f"{k}={v}" for k, v in sorted(r.labels.items()))]
        for r in rows
    ]
    print_table(RUNS_COLUMNS, table)
    return 0
