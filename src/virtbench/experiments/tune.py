"""``virtbench tune``: does changing kernel settings change an experiment's result?

The experiment (any virtbench command whose document names a main metric, see
:mod:`virtbench.experiments.metric`) runs with the current settings (A) and with the new
ones (B), interleaved ``A B A B ...`` for ``rounds`` rounds; Welch's t-test on the main
metric says whether the difference is real. The settings are changed through
:mod:`virtbench.experiments.sysctl`: the restore journal is written before the first change
and the originals are put back after every B run, on any error, on Ctrl-C/SIGTERM/SIGHUP,
and by ``virtbench tune --restore`` after a crash.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtbench.errors import EnvironmentUnsupported, UsageError, VirtbenchError
from virtbench.experiments import registry, sysctl
from virtbench.experiments.common import save
from virtbench.experiments.invoke import Invocation, invoke, prepare, saved_places
from virtbench.experiments.metric import MainMetric, main_metric_of
from virtbench.experiments.spec import (
    Chart,
    Context,
    ExperimentSpec,
    ExperimentView,
    OptionParser,
    Row,
    Summary,
    execute,
)
from virtbench.results.model import ExperimentResult
from virtbench.runner import invoke as suite
from virtbench.runner.lifecycle import track, untrack

if TYPE_CHECKING:
    from virtbench.analysis.welch import WelchResult

@dataclass(frozen=True)
class TuneParams:
    assignments: tuple[str, ...]
    command: tuple[str, ...]
    """The experiment as typed after ``--`` (with or without the leading ``virtbench``)."""
    rounds: int = 3
    root: Path = sysctl.PROC_SYS
    journal: Path | None = None
    """Default: :func:`virtbench.experiments.sysctl.journal_path`."""


@dataclass
class Event:
    """Progress callback payload."""

    kind: str  # "start", "run", "restored"
    round: int = 0
    variant: str = ""
    value: float | None = None
    metric: MainMetric | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """The experiment tune compares, checked before anything changes: its words after ``--``
    and what tune runs in its own process: an experiment of the registry (its invocation,
    typed params) or the suite (``run``: its checked configuration)."""

    words: tuple[str, ...]
    invocation: Invocation | None = None
    suite: suite.SuiteInvocation | None = None


def experiment_of(command: Sequence[str]) -> Experiment:
    """The experiment as typed after ``--`` (with or without ``virtbench``), checked through
    the experiment registry (its options become typed params by the experiment's own spec)
    or, for ``run``, by the suite's own options and checks."""
    cmd = list(command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if cmd and Path(cmd[0]).name == "virtbench":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("no experiment to run: put it after --, e.g. "
                         "`virtbench tune --set vm.dirty_ratio=40 -- io postmark`")
    if cmd[0] == "tune":
        raise UsageError("tune cannot run tune")
    if cmd[0] == "run":
        return Experiment(tuple(cmd), suite=_suite_of(cmd))
    found = registry.find(cmd)
    if found is None:
        raise UsageError(f"not a valid virtbench command: virtbench {' '.join(cmd)} "
                         "(tune runs `run` or an experiment: "
                         + ", ".join(c for c, _ in registry.EXPERIMENTS.values()
                                     if c != "tune") + ")")
    spec, rest = found
    try:
        invocation = prepare(spec, spec.parser().parse_args(rest))
    except (UsageError, SystemExit) as exc:
        raise UsageError(f"not a valid virtbench command: virtbench {' '.join(cmd)} "
                         f"({exc})") from None
    return Experiment(tuple(cmd), invocation)


def _suite_of(cmd: list[str]) -> suite.SuiteInvocation:
    """``run ...``: the suite's options parsed and checked as ``virtbench run`` does (tests,
    copies, --tmpdir, --output, budget, free disk), before any setting changes."""
    parser = OptionParser(prog="virtbench run", add_help=False)
    suite.add_options(parser)
    try:
        args = parser.parse_args(cmd[1:])
        if args.list:
            raise UsageError("--list runs nothing")
        return suite.prepare(args)
    except (UsageError, SystemExit) as exc:
        raise UsageError(f"not a valid virtbench command: virtbench {' '.join(cmd)} "
                         f"({exc})") from None


def run_experiment(exp: Experiment) -> tuple[dict[str, Any], float]:
    """Run the experiment once, in tune's process: (its document, wall seconds). Its work
    directory is registered with tune's document too, so the next virtbench removes it if
    tune is killed outright (the sweep on start)."""
    start = time.monotonic()
    if exp.suite is not None:
        doc = _run_suite(exp.suite, exp.words)
    else:
        assert exp.invocation is not None
        doc = _run_in_process(exp.invocation, exp.words)
    return doc, time.monotonic() - start


def _failed(words: tuple[str, ...], exit_code: int) -> EnvironmentUnsupported:
    return EnvironmentUnsupported(f"the experiment failed (exit {exit_code}; its error is "
                                  "above): " + " ".join(words))


def _run_in_process(inv: Invocation, words: tuple[str, ...]) -> dict[str, Any]:
    from virtbench import console

    try:
        result = invoke(inv, ["virtbench", *words])
    except VirtbenchError as exc:  # said as the experiment's own command would say it
        sys.stderr.write(f"virtbench: error: {exc}\n")
        raise _failed(words, exc.exit_code) from None
    console.info("result saved: " + " and ".join(saved_places(result, inv.output,
                                                              inv.no_save)))
    doc: dict[str, Any] = json.loads(result.to_json())
    return doc


def _run_suite(inv: suite.SuiteInvocation, words: tuple[str, ...]) -> dict[str, Any]:
    """The suite as ``virtbench run`` runs it (progress, saves, the lines on stderr); a test
    that failed fails the experiment, as ``run``'s exit status 1 does."""
    progress = suite.Progress(adaptive=inv.mode == "adaptive")
    try:
        result = suite.invoke(inv, progress, ["virtbench", *words])
    except VirtbenchError as exc:
        sys.stderr.write(f"virtbench: error: {exc}\n")
        raise _failed(words, exc.exit_code) from None
    rc = suite.finish(result, progress)
    if rc != 0:
        raise _failed(words, rc)
    doc: dict[str, Any] = json.loads(result.to_json())
    return doc


Runner = Callable[[Experiment], tuple[dict[str, Any], float]]


def run(params: TuneParams, on_event: Callable[[Event], None] | None = None,
        runner: Runner = run_experiment) -> ExperimentResult:
    """Run the A/B comparison (saved in the results directory); the settings are restored
    whatever happens."""
    spec = replace(SPEC, run=lambda p, ctx: ab(p, ctx, on_event, runner))
    return execute(spec, params, Context(spec, save))


@dataclass
class _State:
    settings_seconds: float = 0.0
    metric: MainMetric | None = None
    started: float = field(default_factory=time.monotonic)


def ab(params: TuneParams, ctx: Context, on_event: Callable[[Event], None] | None = None,
       runner: Runner = run_experiment) -> None:
    """``run(params, ctx)`` of the spec: check, record the originals, A B A B, restore."""
    if params.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    settings = sysctl.plan(params.assignments, params.root)
    experiment = experiment_of(params.command)
    changed = [s for s in settings if s.new is not None]
    doc = ctx.open({
        "settings": [{"key": s.key, "a": s.original, "b": s.new} for s in changed],
        "recorded": [{"key": s.key, "value": s.original} for s in settings if s.new is None],
        "rounds": params.rounds,
        "experiment": list(experiment.words),
        "sysctl_root": str(params.root),
    })
    emit = on_event or (lambda e: None)
    journal = sysctl.write_journal(settings, params.root, params.journal)
    track(journal, journal=True)  # replayed by the next virtbench if tune is killed outright
    doc.params["journal"] = str(journal)
    state = _State()
    outcomes: list[sysctl.Restored] = []
    try:
        _try_once(settings, doc, state, emit)
        for rnd in range(1, params.rounds + 1):
            for variant in ("A", "B"):
                _one_run(settings, experiment, rnd, variant, runner, ctx, state, emit)
    finally:
        with sysctl.signals_deferred():
            outcomes = sysctl.restore(settings)
            restored = all(o.ok for o in outcomes)
            if restored:
                sysctl.remove_journal(journal)
                untrack(journal, journal=True)
        _finish_summary(doc, outcomes, state)
        emit(Event("restored", extra={"outcomes": outcomes}))
        if not restored:
            bad = ", ".join(f"{o.key} ({o.error})" for o in outcomes if not o.ok)
            raise EnvironmentUnsupported(  # this must win over any other error
                f"could not restore {bad}; the journal {journal} is kept: run "
                "`virtbench tune --restore`")


def _try_once(settings: list[sysctl.Setting], doc: ExperimentResult, state: _State,
              emit: Callable[[Event], None]) -> None:
    """Try the new values once before measuring anything: a value the kernel refuses is
    reported now, with everything put back."""
    t0 = time.monotonic()
    try:
        applied = sysctl.apply(settings)
    finally:
        _restore_or_raise(settings)
    state.settings_seconds += time.monotonic() - t0
    doc.params["applied"] = [{"key": a.key, "asked": a.asked, "kernel": a.got}
                             for a in applied]
    emit(Event("start", extra={"applied": applied}))


def _one_run(settings: list[sysctl.Setting], experiment: Experiment, rnd: int, variant: str,
             runner: Runner, ctx: Context, state: _State,
             emit: Callable[[Event], None]) -> None:
    if variant == "B":
        t0 = time.monotonic()
        sysctl.apply(settings)
        state.settings_seconds += time.monotonic() - t0
    try:
        child, seconds = runner(experiment)
    finally:
        if variant == "B":
            t0 = time.monotonic()
            _restore_or_raise(settings)
            state.settings_seconds += time.monotonic() - t0
    m = main_metric_of(child)
    if state.metric is None:
        state.metric = MainMetric(m.name, 0.0, m.unit, m.lower_is_better)
    elif m.name != state.metric.name:
        raise EnvironmentUnsupported(f"the experiment's main metric changed from "
                                     f"{state.metric.name} to {m.name}")
    ctx.add_row({"round": rnd, "variant": variant, "value": m.value,
                 "seconds": round(seconds, 3), "document": child.get("id"),
                 "status": child.get("status")})
    emit(Event("run", rnd, variant, m.value, m))


def _finish_summary(doc: ExperimentResult, outcomes: Sequence[sysctl.Restored],
                    state: _State) -> None:
    doc.summary["restored"] = all(o.ok for o in outcomes)
    doc.summary["restore"] = [{"key": o.key, "value": o.now, "ok": o.ok,
                               "error": o.error} for o in outcomes]
    wall = time.monotonic() - state.started
    child_seconds = sum(float(r["seconds"]) for r in doc.rows)
    doc.summary["overhead"] = {
        "settings_seconds": round(state.settings_seconds, 6),
        "wall_seconds": round(wall, 3),
        "experiment_seconds": round(child_seconds, 3),
        "tune_seconds": round(wall - child_seconds, 3),
    }
    if state.metric is not None:
        _analyze(doc, state.metric)


def _restore_or_raise(settings: Sequence[sysctl.Setting]) -> None:
    with sysctl.signals_deferred():
        outcomes = sysctl.restore(settings)
    bad = [o for o in outcomes if not o.ok]
    if bad:
        raise EnvironmentUnsupported("could not restore " + ", ".join(
            f"{o.key} ({o.error})" for o in bad) + ": run `virtbench tune --restore`")


def _analyze(doc: ExperimentResult, metric: MainMetric) -> None:
    from virtbench.analysis.welch import welch  # late: it imports scipy

    a = [float(r["value"]) for r in doc.rows if r["variant"] == "A"]
    b = [float(r["value"]) for r in doc.rows if r["variant"] == "B"]
    doc.summary["metric"] = {"name": metric.name, "unit": metric.unit,
                             "lower_is_better": metric.lower_is_better}
    if not a or not b:
        return
    w = welch(a, b)
    doc.summary["welch"] = w.to_dict()
    doc.summary["significant"] = w.significant()
    doc.summary["verdict"] = verdict(w, metric.lower_is_better)
    if w.difference_pct is not None:
        doc.summary["main_metric"] = MainMetric("difference_pct", w.difference_pct, "%",
                                                metric.lower_is_better).to_dict()


def verdict(w: WelchResult, lower_is_better: bool) -> str:
    pct = f"{w.difference_pct:+.1f}%" if w.difference_pct is not None else \
        f"{w.difference:+.4g}"
    if w.p_value is None:
        return f"B - A = {pct}; too few rounds for a significance test (use --rounds 2 or more)"
    if not w.significant():
        return f"no significant difference (B - A = {pct}, p = {w.p_value:.3g})"
    better = (w.difference > 0) != lower_is_better
    return (f"B (new settings) is {'better' if better else 'worse'}: {pct}, "
            f"p = {w.p_value:.3g}")


# ---- the command: options, --restore, text, report view ---------------------------------------
class TuneRow(Row):
    round: int
    variant: str
    value: float
    seconds: float
    document: str | None
    status: str | None


class TuneSummary(Summary):
    restored: bool | None = None
    verdict: str | None = None
    significant: bool | None = None


def _rounds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.usage = ("virtbench tune --set KEY=VALUE [--set ...] [--rounds N] [--json] "
                    "-- EXPERIMENT...\n       virtbench tune --restore [--json]")
    parser.add_argument("--set", dest="assignments", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a sysctl and its new value, e.g. vm.dirty_ratio=40 (repeatable)")
    parser.add_argument("--rounds", type=_rounds, default=3,
                        help="A B rounds (default 3; 2 or more for a significance test)")
    parser.add_argument("--restore", action="store_true",
                        help="put back the settings a crashed tune run left changed")
    parser.add_argument("--sysctl-root", type=Path, default=sysctl.PROC_SYS,
                        help="directory standing for /proc/sys (tests, captured trees)")
    parser.add_argument("experiment", nargs=argparse.REMAINDER,
                        help="the virtbench experiment command, after --")


def params_from_args(args: argparse.Namespace) -> TuneParams:
    if not args.assignments:
        raise UsageError("nothing to tune: give at least one --set KEY=VALUE")
    return TuneParams(assignments=tuple(args.assignments), command=tuple(args.experiment),
                      rounds=args.rounds, root=args.sysctl_root)


def restore_command(args: argparse.Namespace) -> int | None:
    """``tune --restore``: put back what a crashed run left changed (no document)."""
    if not args.restore:
        return None
    if args.assignments or args.experiment:
        raise UsageError("--restore takes no --set and no experiment")
    journal, outcomes = sysctl.restore_journal()
    if args.json:
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


def _command_run(params: TuneParams, ctx: Context) -> None:
    def on_event(e: Event) -> None:
        if e.kind == "start":
            for a in e.extra["applied"]:
                if a.asked != a.got:
                    ctx.say(f"warning: asked {a.key}={a.asked}, the kernel keeps {a.got!r}")
        elif e.kind == "run" and e.metric is not None:
            ctx.say(f"tune round {e.round} {e.variant}: {e.metric.name} = {e.value:,.4g} "
                    f"{e.metric.unit}")

    ab(params, ctx, on_event)


def render(doc: ExperimentResult) -> str:
    p, s = doc.params, doc.summary
    m = s.get("metric", {})
    better = "lower" if m.get("lower_is_better") else "higher"
    lines = [
        "tune: " + ", ".join(f"{x['key']} {x['a']} -> {x['b']}" for x in p["settings"]),
        f"experiment: virtbench {' '.join(p['experiment'])}",
        f"main figure: {m.get('name')} ({m.get('unit')}, {better} is better)",
        "",
    ]
    from virtbench.table import Col, output_width, render

    value = {(int(r["round"]), r["variant"]): float(r["value"]) for r in doc.rows}
    table = [[str(rnd), _n(value.get((rnd, "A"))), _n(value.get((rnd, "B")))]
             for rnd in sorted({int(r["round"]) for r in doc.rows})]
    w = s.get("welch")
    if w:
        table.append(["mean", _n(w["mean_a"]), _n(w["mean_b"])])
        if w.get("sd_a") is not None:
            table.append(["sd", _n(w["sd_a"]), _n(w["sd_b"])])
    lines.append(render([Col("round", right=True), Col("A (current)", right=True),
                         Col("B (new)", right=True)], table, width=output_width(),
                        rule=False).rstrip("\n"))
    if w and w.get("ci_low") is not None:
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


VIEW = ExperimentView(
    title="Tuning (A/B)",
    description="The experiment run with the current settings (A) and the new ones (B), "
                "interleaved.",
    columns=("round", "variant", "value", "seconds", "status"),
    charts=(Chart("Main metric per round", x="round", y=("value",), group="variant"),),
    summary_keys=("metric", "verdict", "welch.mean_a", "welch.mean_b",
                  "welch.difference_pct", "welch.ci_low", "welch.ci_high",
                  "welch.p_value", "restored", "overhead.settings_seconds"),
)

SPEC: ExperimentSpec[TuneParams] = ExperimentSpec(
    name="tune", command=("tune",),
    help="compare an experiment under current (A) and new (B) sysctls, A B A B, then restore",
    params=TuneParams, row=TuneRow, summary=TuneSummary,
    main_metric="difference B - A of the experiment's main metric, in %",
    add_options=add_options, params_from_args=params_from_args, run=_command_run,
    render=render, view=VIEW, docs="tune.md", before=restore_command,
    examples=(
        "virtbench tune --set vm.dirty_ratio=40 --set vm.dirty_background_ratio=30 "
        "--rounds 2 -- io postmark --files 200",
        "virtbench tune --set vm.dirty_ratio=5 -- run --quick -c 1 fstime-w",
        "virtbench tune --restore   # after a crash: put the settings back",
    ),
)
