"""``virtbench compare A B [C ...]``: test-by-test ratios to the first run, with
significance when passes exist (docs/compare.md)."""

from __future__ import annotations

import argparse
import string
import sys
from typing import TYPE_CHECKING

from virtbench.cli._common import add_db_option, markdown_table, print_json, print_table
from virtbench.cli.resolve import is_fleet_ref, resolve_runs
from virtbench.errors import UsageError
from virtbench.results.model import RunResult

if TYPE_CHECKING:
    from virtbench.analysis.compare import Comparison, Delta, SectionComparison
    from virtbench.report.fleet import FleetTable

NAME = "compare"
HELP = "compare runs test by test against the first (ratios, significance, warnings)"
EXAMPLES = (
    'virtbench compare env=old env=new',
    'virtbench compare A.json B.json --copies 1',
    'virtbench compare env=old env=new --fail-above 5%   # CI gate',
    'virtbench compare fleet:latest',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run id or prefix, 'latest', label KEY=VALUE (all its runs), "
                             "fleet:ID (every host of a fleet run), "
                             "a JSON file or a UnixBench text report; the first is the baseline")
    parser.add_argument("--copies", type=int, metavar="N",
                        help="only the sections with N parallel copies")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="the comparison as JSON on stdout")
    out.add_argument("--format", choices=["table", "markdown"], default="table",
                     help="table (fitted to the terminal, one line per row in a pipe) or markdown")
    parser.add_argument("--fail-above", metavar="P%", type=_percent, default=None,
                        help="CI gate: exit 1 when a test or the index is worse than the "
                             "baseline beyond noise by more than P percent (e.g. 5%%)")
    add_db_option(parser)


def _percent(text: str) -> float:
    """``5%``, ``5`` or ``2.5%``: a percentage in [0, 100)."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a percentage such as 5%") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a percentage from 0 to 100")
    return value


def _letters(n: int) -> list[str]:
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else f"R{i + 1}" for i in range(n)]


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}"


def _ratio(d: Delta | None) -> str:
    if d is None or d.ratio is None:
        return "-"
    text = f"{d.ratio:.3f}"
    if d.ci_low is not None and d.ci_high is not None:
        # A no-break space: a narrow table wraps between the ratio and its interval only.
        text += f" [{d.ci_low:.3f},\u00a0{d.ci_high:.3f}]"
    return text


def _p(p: float | None) -> str:
    if p is None:
        return ""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def change_text(d: Delta | None) -> str:
    if d is None:
        return ""
    return {
        "better": f"+ better {_p(d.p_value)}",
        "worse": f"- worse {_p(d.p_value)}",
        "same": f"~ noise {_p(d.p_value)}",
        "none": "",
        "better-untested": "+? untested",
        "worse-untested": "-? untested",
        "missing": "missing",
    }[d.change].strip()


def section_title(sc: SectionComparison) -> str:
    counts = {c for c in sc.copies if c is not None}
    if len(counts) == 1:
        c = counts.pop()
        return f"{c} parallel cop{'y' if c == 1 else 'ies'}"
    return " vs ".join(str(c) if c is not None else "-" for c in sc.copies) + " copies"


def section_rows(sc: SectionComparison, n: int) -> tuple[list[str], list[list[str]]]:
    letters = _letters(n)
    headers = ["Test", "Unit"]
    for i, letter in enumerate(letters):
        headers.append(f"{letter} score")
        headers.append(f"{letter} index")
        if i:
            headers.extend([f"{letter}/A", f"{letter} change"])
    rows: list[list[str]] = []
    for t in sc.tests:
        row = [t.name, t.unit]
        for i in range(n):
            row.extend([_num(t.scores[i]), _num(t.indexes[i])])
            if i:
                row.extend([_ratio(t.deltas[i]), change_text(t.deltas[i])])
        rows.append(row)
    score_row = ["System Benchmarks Index Score", ""]
    geo_row = ["Geometric mean of index ratios", ""]
    for i in range(n):
        score_row.extend(["", _num(sc.index_scores[i])])
        geo_row.extend(["", ""])
        if i:
            r = sc.index_score_ratios[i]
            score_row.extend([f"{r:.3f}" if r is not None else "-", ""])
            g = sc.geomean_ratios[i]
            geo_row.extend([f"{g:.3f}" if g is not None else "-",
                            f"({sc.geomean_tests[i]} tests)"])
    if any(x is not None for x in sc.index_scores):
        rows.append(score_row)
    rows.append(geo_row)
    return headers, rows


def _right(headers: list[str]) -> list[int]:
    return [i for i, h in enumerate(headers) if h.endswith(("score", "index", "/A"))]


def _wrap(headers: list[str]) -> list[int]:
    """Columns that may wrap in a narrow terminal: test names, ratio | interval, changes."""
    return [i for i, h in enumerate(headers) if i == 0 or h.endswith(("/A", "change"))]


def legend(comp: Comparison) -> list[str]:
    return [f"{letter}: {r.id} {r.label} ({r.profile}, {r.started[:10]})"
            for letter, r in zip(_letters(len(comp.runs)), comp.runs, strict=True)]


def render_markdown(comp: Comparison) -> str:
    parts = ["Runs: " + "; ".join(legend(comp)) + "\n"]
    for sc in comp.sections:
        headers, rows = section_rows(sc, len(comp.runs))
        parts.append(f"### {section_title(sc)}\n")
        parts.append(markdown_table(headers, rows, right=_right(headers)))
    if comp.warnings:
        parts.append("Warnings:\n" + "".join(f"- {w}\n" for w in comp.warnings))
    parts.append(f"_{comp.rule}_\n")
    return "\n".join(parts)


FLEET_COLUMNS = 6
"""With a ``fleet:`` reference, the test-by-test table is printed up to this many hosts."""


def _fleet_table(refs: list[str], runs: list[RunResult], copies: int | None) -> FleetTable | None:
    """A fleet reference among the RUNs: the fleet view (index per host, groups, virtualization,
    outliers explained; docs/fleet.md) comes first."""
    if not any(is_fleet_ref(r) for r in refs):
        return None
    from virtbench.report.fleet import table_for_documents

    return table_for_documents(runs, copies=copies)


def run(args: argparse.Namespace) -> int:
    from virtbench.analysis.compare import compare

    if len(args.runs) < 1:
        raise UsageError("compare needs runs")
    docs = resolve_runs(args.runs, args.db, kind="suite")
    runs: list[RunResult] = []
    for d in docs:
        if not isinstance(d, RunResult):
            raise UsageError(f"{d.id} is a {d.experiment} experiment, not a suite run")
        runs.append(d)
    if len(runs) < 2:
        raise UsageError("compare needs at least two runs (a label may name several)")
    if args.copies is not None:
        for r in runs:
            r.sections = [s for s in r.sections if s.copies == args.copies]
            if not r.sections:
                raise UsageError(f"run {r.id} has no {args.copies}-copy section")
    comp = compare(runs)
    for w in comp.warnings:
        sys.stderr.write(f"virtbench: warning: {w}\n")
    fleet = _fleet_table(args.runs, runs, args.copies)
    if args.json:
        out = comp.to_dict()
        if fleet is not None:
            out["fleet"] = fleet.to_dict()
        if args.fail_above is not None:
            from virtbench.analysis.gate import gate

            out["gate"] = gate(comp, args.fail_above, _letters(len(comp.runs))).to_dict()
        print_json(out)
        return _gate(args, comp)
    if fleet is not None:
        from virtbench.report.fleet import render_table

        text = render_table(fleet)
        sys.stdout.write(f"```\n{text}```\n\n" if args.format == "markdown" else text + "\n")
        if len(runs) > FLEET_COLUMNS:
            sys.stdout.write(f"(test-by-test comparison of {len(runs)} hosts left out: name "
                             f"fewer runs, or use --json)\n")
            return _gate(args, comp)
    if args.format == "markdown":
        sys.stdout.write(render_markdown(comp))
        return _gate(args, comp)
    for line in legend(comp):
        print(line)
    for sc in comp.sections:
        headers, rows = section_rows(sc, len(comp.runs))
        print()
        print_table(headers, rows, right=_right(headers), title=section_title(sc),
                    color_changes=True, wrap=_wrap(headers))
    print()
    print(comp.rule)
    return _gate(args, comp)


def _gate(args: argparse.Namespace, comp: Comparison) -> int:
    """``--fail-above``: exit 1 when the gate fails (virtbench.analysis.gate), 0 otherwise;
    the verdict goes to stderr (stdout stays the report or the JSON)."""
    if args.fail_above is None:
        return 0
    from virtbench.analysis.gate import gate

    res = gate(comp, args.fail_above, _letters(len(comp.runs)))
    for line in res.untested:
        sys.stderr.write(f"virtbench: gate: not judged: {line}\n")
    for line in res.failures:
        sys.stderr.write(f"virtbench: gate: FAIL: {line}\n")
    verdict = "failed" if res.failed else "passed"
    sys.stderr.write(f"virtbench: gate {verdict}: --fail-above {args.fail_above:g}% "
                     f"({len(res.failures)} regression{'' if len(res.failures) == 1 else 's'} "
                     "beyond noise and the threshold)\n")
    return 1 if res.failed else 0
