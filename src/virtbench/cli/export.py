"""``virtbench export RUN... --format json|csv|markdown``: results for other tools
(docs/runs.md)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from virtbench.cli._common import add_db_option, info, write_output
from virtbench.cli.resolve import Document, resolve_runs
from virtbench.errors import UsageError
from virtbench.results.model import ExperimentResult, RunResult

NAME = "export"
HELP = "export runs as JSON, CSV (one row per test) or markdown tables"
EXAMPLES = (
    'virtbench export env=xen-pv --format csv -o results.csv',
    'virtbench export latest --format markdown',
)

CSV_FIELDS = ["run_id", "started", "host", "profile", "source", "copies", "test", "name",
              "unit", "score", "samples", "elapsed", "baseline", "index", "ci_low", "ci_high",
              "status"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run id or prefix, 'latest', label KEY=VALUE, or a result file")
    parser.add_argument("--format", choices=["json", "csv", "markdown"], default=None,
                        help="json (default): the documents; csv: one row per test; "
                             "markdown: the same Markdown as virtbench report --format markdown")
    parser.add_argument("--json", action="store_true",
                        help="the same as --format json (like every other command)")
    parser.add_argument("-o", "--output", metavar="FILE", type=Path,
                        help="write here instead of stdout (- is stdout)")
    add_db_option(parser)


def to_json(docs: list[Document]) -> str:
    data: Any = docs[0].to_dict() if len(docs) == 1 else [d.to_dict() for d in docs]
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def _csv_runs(docs: list[RunResult]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for d in docs:
        base = {"run_id": d.id, "started": d.started, "host": d.environment.hostname or "",
                "profile": d.profile, "source": d.source}
        for s in d.sections:
            for t in s.tests:
                w.writerow({**base, "copies": s.copies, "test": t.test, "name": t.name,
                            "unit": t.unit, "score": _n(t.score), "samples": _n(t.samples),
                            "elapsed": _n(t.elapsed), "baseline": _n(t.baseline),
                            "index": _n(t.index),
                            "ci_low": _n(t.ci.low if t.ci else None),
                            "ci_high": _n(t.ci.high if t.ci else None), "status": t.status})
            if s.index_score is not None:
                w.writerow({**base, "copies": s.copies, "test": "index_score",
                            "name": "System Benchmarks Index Score", "unit": "index",
                            "index": _n(s.index_score), "samples": s.index_tests,
                            "status": "ok"})
    return buf.getvalue()


def _csv_experiments(docs: list[ExperimentResult]) -> str:
    keys: list[str] = []
    for d in docs:
        for row in d.rows:
            keys.extend(k for k in row if k not in keys)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["run_id", "experiment", *keys], lineterminator="\n")
    w.writeheader()
    for d in docs:
        for row in d.rows:
            w.writerow({"run_id": d.id, "experiment": d.experiment,
                        **{k: _n(v) if isinstance(v, int | float) else
                           (json.dumps(v) if isinstance(v, dict | list) else v)
                           for k, v in row.items()}})
    return buf.getvalue()


def to_csv(docs: list[Document]) -> str:
    runs = [d for d in docs if isinstance(d, RunResult)]
    exps = [d for d in docs if isinstance(d, ExperimentResult)]
    if runs and exps:
        raise UsageError("CSV export: suite runs and experiments have different columns; "
                         "export them separately")
    return _csv_runs(runs) if runs else _csv_experiments(exps)


def _n(v: float | int | None) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    return repr(v) if isinstance(v, float) else str(v)


def to_markdown(docs: list[Document]) -> str:
    """The one Markdown rendering of runs and experiments: ``virtbench report``'s."""
    from virtbench.report import markdown

    return markdown.render_documents(docs)


def run(args: argparse.Namespace) -> int:
    docs = resolve_runs(args.runs, args.db)
    fmt = args.format or "json"
    if args.json and fmt != "json":
        raise UsageError(f"--json and --format {fmt} contradict each other: pick one")
    text = {"json": to_json, "csv": to_csv, "markdown": to_markdown}[fmt](docs)
    if args.output and str(args.output) != "-":
        write_output(args.output, text)
        info(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0
