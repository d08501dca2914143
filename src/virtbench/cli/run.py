"""``virtbench run``: the UnixBench-compatible suite.

The options, their checks and the run itself are :mod:`virtbench.runner.invoke`'s (``tune
-- run`` runs the suite through it too); this module lists the tests and prints the
document.
"""

from __future__ import annotations

import argparse
import sys

from virtbench.report.text import render
from virtbench.runner.invoke import (
    Progress,
    SuiteInterrupted,
    add_options,
    finish,
    invoke,
    prepare,
    process_started,
)

NAME = "run"
HELP = "run the UnixBench-compatible suite (default: the 12 index tests)"


def register(p: argparse.ArgumentParser) -> None:
    add_options(p)


EXAMPLES = (
    "virtbench run                       # the 12 index tests: 1 copy, then one per CPU",
    "virtbench run --list                # the test ids and groups to name",
    "virtbench run dhry2reg pipe -c 1    # two tests, one copy",
    "virtbench run --quick               # a smoke run (not comparable)",
    "virtbench run --precision 2% --label env=vm -o result.json",
    "virtbench run --budget 10m          # the index at 1 and N copies in 10 minutes, with CIs",
)


def list_tests() -> str:
    """``run --list``: every test of the catalog, then the groups."""
    from virtbench.table import Col, output_width, render
    from virtbench.workloads.catalog import CATALOG, GROUPS

    cols = [Col("TEST"), Col("NAME", wrap=True, min_width=16), Col("UNIT"),
            Col("BASELINE", right=True), Col("PASSES", right=True), Col("SECONDS", right=True),
            Col("GROUPS", wrap=True, min_width=6, breakable=False, hyphens=True,
                wrap_after=",")]
    rows = [[s.id, s.name, s.unit, f"{s.baseline:.1f}" if s.baseline else "-", str(s.passes),
             f"{s.duration:g}", ",".join(s.groups)] for s in CATALOG.values()]
    width = output_width()
    out = [render(cols, rows, width=width)]
    out.append("BASELINE: the index's reference score (George, a SPARCstation 20-61: index 10)\n"
               "SECONDS: one pass\n")
    out.append(render([Col("GROUP"), Col("TESTS", wrap=True, breakable=False)],
                      [[g, " ".join(ids)] for g, ids in GROUPS.items()], width=width))
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    if args.list:
        sys.stdout.write(list_tests())
        return 0
    budget_start = process_started()
    progress = Progress(adaptive=bool(args.precision))
    inv = prepare(args)  # nothing is made before the options are checked
    try:
        doc = invoke(inv, progress, ["virtbench", *sys.argv[1:]], budget_start)
    except SuiteInterrupted:  # said with where the partial document is
        return 130
    sys.stdout.write(doc.to_json() if args.json else render(doc))
    return finish(doc, progress)
