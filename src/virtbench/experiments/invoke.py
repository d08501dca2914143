"""Running an experiment of the registry as its options ask, for the command line
(``cli/_experiment.py``) and for ``tune`` (which runs one in its own process, A and B in
turn): the common options (``--label``, ``-o/--output``, ``--db``, and ``migrate``'s
``--no-save``) decide where the document is saved, the spec's hook turns its own options
into typed params, and :func:`virtbench.experiments.spec.execute` runs it under the one
document lifecycle.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virtbench.errors import UsageError
from virtbench.experiments.spec import Context, ExperimentSpec, execute
from virtbench.results.labels import parse_labels
from virtbench.results.model import ExperimentResult


@dataclass(frozen=True)
class Invocation:
    """An experiment with its checked, typed params and where its document goes."""

    spec: ExperimentSpec[Any]
    params: Any
    labels: dict[str, str] = field(default_factory=dict)
    output: Path | None = None
    db: str | None = None
    no_save: bool = False
    """Only the ``--output`` file (``migrate --no-save``)."""


def prepare(spec: ExperimentSpec[Any], args: argparse.Namespace) -> Invocation:
    """The invocation the parsed options ask for; ``UsageError`` for a bad one (nothing is
    made yet)."""
    labels = parse_labels(args.label)
    output = args.output
    if output is not None and not output.parent.is_dir():
        raise UsageError(f"--output {output}: directory {output.parent} does not exist")
    return Invocation(spec, spec.params_from_args(args), labels, output, args.db,
                      bool(getattr(args, "no_save", False)))


def invoke(inv: Invocation, command: list[str] | None = None) -> ExperimentResult:
    """Run it; the document once it ends (saved after every step). ``command``: what the
    document records as its command line (default: this process's)."""
    from virtbench.store import master_path, save_and_record

    def save(doc: ExperimentResult) -> None:
        if inv.no_save:
            if inv.output is not None:
                doc.save(inv.output)
            return
        save_and_record(doc, output=inv.output, db_url=inv.db)

    ctx = Context(inv.spec, save, labels=dict(inv.labels))
    if command is not None:
        ctx.command = list(command)
    try:
        return execute(inv.spec, inv.params, ctx)
    except KeyboardInterrupt:
        if ctx.opened:
            ctx.say(f"interrupted: partial result saved ({master_path(ctx.doc)})")
        raise


def saved_places(doc: ExperimentResult, output: Path | None, no_save: bool) -> list[str]:
    """Where the document was saved: the results directory unless ``no_save``, and
    ``output``."""
    from virtbench.store import master_path

    places = [] if no_save else [str(master_path(doc))]
    if output:
        places.append(str(output))
    return places
