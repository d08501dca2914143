"""``virtbench explain RUN [--against RUN]``: why the numbers look the way they do."""

from __future__ import annotations

import argparse
import json
import sys

from virtbench.analysis.explain import explain, format_text
from virtbench.cli.resolve import resolve_run

NAME = "explain"
HELP = "say why a run's numbers look the way they do (rules with thresholds, in plain words)"
EXAMPLES = (
    'virtbench explain latest',
    'virtbench explain env=new --against env=old',
    'virtbench explain unixbench-report.txt --json',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN",
                        help="a result file, UnixBench text report, run id, 'latest' or label")
    parser.add_argument("--against", metavar="RUN",
                        help="explain relative to another run (ratios per test)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--db", metavar="URL", default=None,
                        help="database URL of the run store (default: VIRTBENCH_DB or SQLite)")


def run(args: argparse.Namespace) -> int:
    target = resolve_run(args.run, args.db)
    other = resolve_run(args.against, args.db, what="--against") if args.against else None
    ex = explain(target, other)
    if args.json:
        sys.stdout.write(json.dumps(ex.to_dict(), indent=2, allow_nan=False) + "\n")
    else:
        sys.stdout.write(format_text(target, ex, other))
    return 0
