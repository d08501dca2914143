"""``virtbench report RUN... -o report.html``: draw runs and experiments in one file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from virtbench.cli._common import info, write_output
from virtbench.cli.resolve import resolve
from virtbench.errors import UsageError
from virtbench.report import data as report_data

NAME = "report"
HELP = "draw runs and experiments as one self-contained offline HTML page (or Markdown)"
EXAMPLES = (
    'virtbench report env=old env=new -o report.html',
    'virtbench report fleet:latest -o fleet.html',
    'virtbench report latest --format markdown',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", metavar="RUN", nargs="+",
                        help="result files, UnixBench text reports, run ids, 'latest' or "
                             "labels key=value; the first suite run is the baseline of ratios")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write here ('-': stdout; default: report.html for HTML, "
                             "stdout for Markdown)")
    parser.add_argument("--format", choices=("html", "markdown"), default="html",
                        help="html (default) or markdown")
    parser.add_argument("--title", help="the page title")
    parser.add_argument("--db", metavar="URL", default=None,
                        help="database URL of the run store (default: VIRTBENCH_DB or SQLite)")


def run(args: argparse.Namespace) -> int:
    docs = resolve(args.runs, args.db)
    if not docs:
        raise UsageError("nothing to report: the RUN arguments named no documents")
    started = time.monotonic()
    report = report_data.build(docs, title=args.title)
    if args.format == "markdown":
        from virtbench.report import markdown

        text = markdown.render(report)
        if args.output and args.output != "-":
            write_output(Path(args.output), text)
            info(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
        return 0
    from virtbench.report import html

    page = html.render(report)
    if args.output == "-":
        sys.stdout.write(page)
        out = "stdout"
    else:
        out = str(args.output or "report.html")
        write_output(Path(out), page)
    info(f"wrote {out} ({len(page.encode()) / 1e6:.1f} MB, {_n(len(report.runs), 'run')}, "
         f"{_n(len(report.experiments), 'experiment')}, {time.monotonic() - started:.2f} s)")
    return 0


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
