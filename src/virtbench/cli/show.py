"""``virtbench show RUN...``: print a stored run's report again (docs/runs.md)."""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable
from typing import Any, cast

from virtbench.cli._common import add_db_option, print_json
from virtbench.cli.resolve import Document, resolve_runs
from virtbench.errors import UsageError
from virtbench.results.model import ExperimentResult, RunResult

NAME = "show"
HELP = "print a stored run's report again (UnixBench layout), or its JSON"
EXAMPLES = (
    'virtbench show latest',
    'virtbench show --original env=xen-pv',
    'virtbench show f4b553a4 --json',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run id or prefix, 'latest', label KEY=VALUE, or a result file")
    parser.add_argument("--original", action="store_true",
                        help="imported runs: print the report text exactly as imported")
    parser.add_argument("--json", action="store_true",
                        help="print the document(s) as JSON (a list when several)")
    add_db_option(parser)


def render_run(run: RunResult) -> str:
    """The suite's text report (``virtbench.report.text.render``, UnixBench's layout)."""
    try:
        mod = importlib.import_module("virtbench.report.text")
        render = cast(Callable[[RunResult], str], mod.render)
    except (ImportError, AttributeError):
        return _basic_render(run)
    return render(run)


def _basic_render(run: RunResult) -> str:
    """Used only while ``virtbench.report.text`` is not installed: the same facts, plainly."""
    env = run.environment
    out = [f"virtbench run {run.id} ({run.source}, profile {run.profile}, {run.status})",
           f"   System: {env.hostname or '?'}   CPU: {env.cpu_model or '?'} "
           f"({env.cpu_count or '?'} CPUs)   kernel: {env.kernel or '?'}",
           f"   Started: {run.started}"]
    for s in run.sections:
        out.append("")
        out.append(f"{s.copies} parallel cop{'y' if s.copies == 1 else 'ies'}")
        for t in s.tests:
            if t.score is None:
                out.append(f"{t.name:<40} {'failed':>12}")
                continue
            secs = f"{t.elapsed:.1f}" if t.elapsed is not None else "?"
            out.append(f"{t.name:<40} {t.score:12.1f} {t.unit or '?':<5} "
                       f"({secs} s, {'?' if t.samples is None else t.samples} samples)"
                       + (f"   index {t.index:8.1f}" if t.index is not None else ""))
        if s.index_score is not None:
            out.append(f"{'System Benchmarks Index Score':<66} {s.index_score:8.1f}")
    return "\n".join(out) + "\n"


def render_experiment(doc: ExperimentResult) -> str:
    """A header, then what the experiment's own command printed (its spec's ``render``:
    human headers, fitted to the terminal); a document the spec cannot render (another
    version, an unknown experiment) gets the generic table."""
    out = [f"virtbench experiment {doc.experiment} {doc.id} ({doc.status})",
           f"   started {doc.started}" + (f", finished {doc.finished}" if doc.finished else ""),
           f"   host {doc.environment.hostname or '?'}", ""]
    own = _own_render(doc)
    if own is not None:
        return "\n".join(out) + "\n" + own
    for k, v in doc.params.items():
        out.append(f"   {k}: {_cell(v)}")
    if doc.rows:
        keys: list[str] = []
        for row in doc.rows:
            keys.extend(k for k in row if k not in keys and not isinstance(row[k], dict | list))
        from virtbench.report.experiments import column_title
        from virtbench.table import Col, output_width, render

        cols = [Col(column_title(k), wrap=True, min_width=8)
                if any(isinstance(r.get(k), str) for r in doc.rows)
                else Col(column_title(k), right=True) for k in keys]
        out.append("")
        out.append(render(cols, [[_cell(r.get(k)) for k in keys] for r in doc.rows],
                          width=output_width()).rstrip("\n"))
        if any(isinstance(v, dict | list) for r in doc.rows for v in r.values()):
            out.append("(nested row fields: --json)")
    if doc.summary:
        out.append("")
        for k, v in doc.summary.items():
            out.append(f"{k}: {_cell(v)}")
    for note in doc.notes:
        out.append(f"note: {note}")
    return "\n".join(out) + "\n"


def _own_render(doc: ExperimentResult) -> str | None:
    from virtbench.experiments import registry

    if doc.experiment not in registry.EXPERIMENTS:
        return None
    try:
        text = registry.get(doc.experiment).render(doc)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError):
        return None  # not the shape this version writes: the generic table
    return text if text.endswith("\n") else text + "\n"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e6 else f"{v:.3f}".rstrip("0").rstrip(".")
    if isinstance(v, dict | list):
        return json.dumps(v, default=str)
    return str(v)


def render(doc: Document) -> str:
    if isinstance(doc, RunResult):
        return render_run(doc)
    return render_experiment(doc)


def run(args: argparse.Namespace) -> int:
    docs = resolve_runs(args.runs, args.db)
    if args.json:
        print_json(docs[0].to_dict() if len(docs) == 1 else [d.to_dict() for d in docs])
        return 0
    for i, doc in enumerate(docs):
        if i:
            print()
        if args.original:
            if not isinstance(doc, RunResult) or doc.original_text is None:
                raise UsageError(f"run {doc.id} was not imported from a text report")
            text = doc.original_text
            print(text if text.endswith("\n") else text + "\n", end="")
            continue
        print(render(doc), end="")
    return 0
