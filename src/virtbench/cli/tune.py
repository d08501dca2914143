"""``virtbench tune``: A/B an experiment under changed sysctls, always restoring them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from virtbench.errors import UsageError
from virtbench.experiments import sysctl
from virtbench.experiments.common import progress
from virtbench.results.model import ExperimentResult

NAME = "tune"
HELP = "compare an experiment under current (A) and new (B) sysctls, A B A B, then restore"


def _rounds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    parser.usage = ("virtbench tune --set KEY=VALUE [--set ...] [--rounds N] [--json] "
                    "-- EXPERIMENT...\n       virtbench tune --restore [--json]")
    parser.add_argument("--set", dest="assignments", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a sysctl and its new value, e.g. vm.dirty_ratio=40 (repeatable)")
    parser.add_argument("--rounds", type=_rounds, default=3,
                        help="A B rounds (default 3; 2 or more for a significance test)")
    parser.add_argument("--restore", action="store_true",
                        help="put back the settings a crashed tune run left changed")
    parser.add_argument("--json", action="store_true", help="print the result document")
    parser.add_argument("--sysctl-root", type=Path, default=sysctl.PROC_SYS,
                        help="directory standing for /proc/sys (tests, captured trees)")
    parser.add_argument("experiment", nargs=argparse.REMAINDER,
                        help="the virtbench experiment command, after --")


def run(args: argparse.Namespace) -> int:
    if args.restore:
        if args.assignments or args.experiment:
            raise UsageError("--restore takes no --set and no experiment")
        return _restore(args.json)
    if not args.assignments:
        raise UsageError("nothing to tune: give at least one --set KEY=VALUE")

    from virtbench.experiments import tune  # late: it imports the experiments

    def on_event(e: tune.Event) -> None:
        if e.kind == "start":
            for a in e.extra["applied"]:
                if a.asked != a.got:
                    progress(f"warning: asked {a.key}={a.asked}, the kernel keeps {a.got!r}")
        elif e.kind == "run" and e.metric is not None:
            progress(f"tune round {e.round} {e.variant}: {e.metric.name} = {e.value:,.4g} "
                     f"{e.metric.unit}")

    params = tune.TuneParams(assignments=tuple(args.assignments),
                             command=tuple(args.experiment), rounds=args.rounds,
                             root=args.sysctl_root)
    doc = tune.run(params, on_event)
    sys.stdout.write(doc.to_json() if args.json else table(doc))
    return 0


def _restore(as_json: bool) -> int:
    journal, outcomes = sysctl.restore_journal()
    if as_json:
        sys.stdout.write(json.dumps({
            "journal": journal is not None,
            "restored": [{"key": o.key, "original": o.original, "before": o.before,
                          "now": o.now, "ok": o.ok, "error": o.error} for o in outcomes],
        }, indent=2) + "\n")
    elif journal is None:
        sys.stdout.write("nothing to restore: no tune journal was left behind\n")
    else:
        for o in outcomes:
            state = "restored" if o.ok else f"NOT restored ({o.error})"
            sys.stdout.write(f"{o.key} = {o.now} (was {o.before}): {state}\n")
    if any(not o.ok for o in outcomes):
        raise UsageError(f"some settings could not be restored; the journal "
                         f"{sysctl.journal_path()} is kept")
    return 0


def table(doc: ExperimentResult) -> str:
    p, s = doc.params, doc.summary
    m = s.get("metric", {})
    better = "lower" if m.get("lower_is_better") else "higher"
    lines = [
        "tune: " + ", ".join(f"{x['key']} {x['a']} -> {x['b']}" for x in p["settings"]),
        f"experiment: virtbench {' '.join(p['experiment'])}",
        f"main figure: {m.get('name')} ({m.get('unit')}, {better} is better)",
        "",
    ]
    rows = doc.rows
    rounds = sorted({int(r["round"]) for r in rows})
    value = {(int(r["round"]), r["variant"]): float(r["value"]) for r in rows}
    lines.append(f"{'round':>5}  {'A (current)':>14}  {'B (new)':>14}")
    for rnd in rounds:
        a, b = value.get((rnd, "A")), value.get((rnd, "B"))
        lines.append(f"{rnd:>5}  {_n(a):>14}  {_n(b):>14}")
    w = s.get("welch")
    if w:
        lines.append(f"{'mean':>5}  {_n(w['mean_a']):>14}  {_n(w['mean_b']):>14}")
        if w.get("sd_a") is not None:
            lines.append(f"{'sd':>5}  {_n(w['sd_a']):>14}  {_n(w['sd_b']):>14}")
        if w.get("ci_low") is not None:
            lines.append(f"B - A = {_n(w['difference'])} {m.get('unit', '')}, 95% CI "
                         f"{_n(w['ci_low'])} .. {_n(w['ci_high'])} (Welch t-test)")
    if "verdict" in s:
        lines.append(f"verdict: {s['verdict']}")
    restored = ", ".join(f"{r['key']}={r['value']}" for r in s.get("restore", []))
    lines.append(f"restored: {restored} ({'verified' if s.get('restored') else 'FAILED'})")
    o = s.get("overhead", {})
    if o:
        lines.append(f"overhead: {o['settings_seconds'] * 1000:.1f} ms changing settings, "
                     f"{o['tune_seconds']:.2f} s outside the experiments of "
                     f"{o['wall_seconds']:.1f} s")
    return "\n".join(lines) + "\n"


def _n(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.2f}" if abs(v) < 1e5 else f"{v:,.0f}"
