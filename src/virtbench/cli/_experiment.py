"""The commands of the experiment registry: ``io postmark``, ``io seqread``, ``consolidate``,
``cap``, ``tune``, ``migrate`` and any experiment added to
:mod:`virtbench.experiments.registry`.

Every one gets its own options (its spec's hook) and the common ones (``--json``,
``-o/--output``, ``--label``, ``--db``); running it is the same for all: params from the
options and :func:`virtbench.experiments.invoke.invoke` (saved through the store after every
step, as ``tune`` runs experiments too), the document (``--json``) or its text rendering on
stdout.
"""

from __future__ import annotations

import argparse
import sys
from types import SimpleNamespace
from typing import Any

from virtbench.errors import UsageError
from virtbench.experiments import registry
from virtbench.experiments.invoke import invoke, prepare, saved_places
from virtbench.experiments.spec import ExperimentSpec, add_all_options
from virtbench.results.model import ExperimentResult


def command_for(word: str) -> SimpleNamespace | None:
    """A command module (``NAME``, ``HELP``, ``register``, ``run``) for the experiments
    whose command starts with ``word``, or ``None``."""
    word = word.replace("_", "-")
    if word not in registry.command_words():
        return None
    if word in registry.GROUPS:
        return SimpleNamespace(NAME=word, HELP=registry.GROUPS[word],
                               EXAMPLES=tuple(e for s in registry.under(word) for e in s.examples),
                               register=lambda p: _register_group(word, p), run=_run_group)
    spec = registry.under(word)[0]
    return SimpleNamespace(NAME=word, HELP=spec.help, EXAMPLES=spec.examples,
                           register=lambda p: _register_one(spec, p),
                           run=lambda args: run_spec(spec, args))


def _register_one(spec: ExperimentSpec[Any], p: argparse.ArgumentParser) -> None:
    if spec.description:
        p.description = spec.description
    add_all_options(spec, p)


def _register_group(word: str, parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest=f"{word}_command", metavar="EXPERIMENT",
                                parser_class=type(parser))
    for spec in registry.under(word):
        p = sub.add_parser(spec.command[1], help=spec.help,
                           description=spec.description or spec.help)
        add_all_options(spec, p)
        p.set_defaults(_spec=spec)


def _run_group(args: argparse.Namespace) -> int:
    spec = getattr(args, "_spec", None)
    if spec is None:
        word = args.command
        names = " or ".join(f"`virtbench {' '.join(s.command)}`" for s in registry.under(word))
        raise UsageError(f"which experiment? {names}")
    return run_spec(spec, args)


def run_spec(spec: ExperimentSpec[Any], args: argparse.Namespace) -> int:
    """Run one experiment as the command line asked."""
    rc = spec.before(args)
    if rc is not None:
        return rc
    doc = invoke(prepare(spec, args))
    sys.stdout.write(doc.to_json() if args.json else spec.render(doc))
    sys.stdout.flush()
    say_where(doc, args)
    return spec.exit_code(doc)


def say_where(doc: ExperimentResult, args: argparse.Namespace) -> None:
    """One line on stderr: where the document was saved (the results directory unless
    ``--no-save``, and ``-o FILE``)."""
    from virtbench import console

    places = saved_places(doc, args.output, getattr(args, "no_save", False))
    if places:
        console.info("result saved: " + " and ".join(places))
