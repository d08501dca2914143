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

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from virtbench.analysis.welch import WelchResult, welch
from virtbench.errors import EnvironmentUnsupported, UsageError, VirtbenchError
from virtbench.experiments import sysctl
from virtbench.experiments.common import finish, new_document, save
from virtbench.experiments.metric import MainMetric, main_metric_of
from virtbench.results.model import ExperimentResult

CHILD_STOP_SECONDS = 30.0


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


def experiment_argv(command: Sequence[str]) -> list[str]:
    """The argv that runs the experiment as a child virtbench printing its document."""
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
    if "--json" not in cmd:
        cmd.append("--json")
    from virtbench.cli import build_parser  # late: the CLI imports this module

    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    try:
        with contextlib.redirect_stderr(devnull), contextlib.redirect_stdout(devnull):
            build_parser().parse_args(cmd)
    except SystemExit:
        raise UsageError(f"not a valid virtbench command: virtbench {' '.join(cmd)} "
                         "(try it alone first)") from None
    finally:
        devnull.close()
    return [sys.executable, "-m", "virtbench", *cmd]


def _child_setup() -> None:
    """In the child: die if tune dies (kill -9 included), so no experiment is orphaned."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # the child's own cleanup (temp files, cgroups) runs on SIGTERM
    try:
        proc.wait(CHILD_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_child(argv: list[str]) -> tuple[dict[str, Any], float]:
    """Run one experiment; (its document, wall seconds). Its stderr passes through."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", preexec_fn=_child_setup)
    try:
        out, _ = proc.communicate()
    finally:
        _stop(proc)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise EnvironmentUnsupported(f"the experiment failed (exit {proc.returncode}; its "
                                     "error is above): " + " ".join(argv[3:]))
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:
        raise EnvironmentUnsupported("the experiment printed no JSON document") from None
    if not isinstance(doc, dict):
        raise EnvironmentUnsupported("the experiment printed no JSON document")
    return doc, seconds


def _hangup_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(params: TuneParams, on_event: Callable[[Event], None] | None = None,
        runner: Callable[[list[str]], tuple[dict[str, Any], float]] = run_child
        ) -> ExperimentResult:
    """Run the A/B comparison; the settings are restored whatever happens."""
    if params.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    settings = sysctl.plan(params.assignments, params.root)
    argv = experiment_argv(params.command)
    changed = [s for s in settings if s.new is not None]
    doc = new_document("tune", {
        "settings": [{"key": s.key, "a": s.original, "b": s.new} for s in changed],
        "recorded": [{"key": s.key, "value": s.original} for s in settings if s.new is None],
        "rounds": params.rounds,
        "experiment": argv[3:],
        "sysctl_root": str(params.root),
    })
    emit = on_event or (lambda e: None)
    journal = sysctl.write_journal(settings, params.root, params.journal)
    doc.params["journal"] = str(journal)
    old_hup = signal.signal(signal.SIGHUP, _hangup_to_interrupt)
    state = "complete"
    settings_seconds = 0.0
    started = time.monotonic()
    metric: MainMetric | None = None
    try:
        # Try the new values once before measuring anything: a value the kernel refuses is
        # reported now, with everything put back.
        t0 = time.monotonic()
        try:
            applied = sysctl.apply(settings)
        finally:
            _restore_or_raise(settings)
        settings_seconds += time.monotonic() - t0
        doc.params["applied"] = [{"key": a.key, "asked": a.asked, "kernel": a.got}
                                 for a in applied]
        emit(Event("start", extra={"applied": applied}))
        for rnd in range(1, params.rounds + 1):
            for variant in ("A", "B"):
                if variant == "B":
                    t0 = time.monotonic()
                    sysctl.apply(settings)
                    settings_seconds += time.monotonic() - t0
                try:
                    child, seconds = runner(argv)
                finally:
                    if variant == "B":
                        t0 = time.monotonic()
                        _restore_or_raise(settings)
                        settings_seconds += time.monotonic() - t0
                m = main_metric_of(child)
                if metric is None:
                    metric = MainMetric(m.name, 0.0, m.unit, m.lower_is_better)
                elif m.name != metric.name:
                    raise EnvironmentUnsupported(f"the experiment's main metric changed from "
                                                 f"{metric.name} to {m.name}")
                doc.rows.append({"round": rnd, "variant": variant, "value": m.value,
                                 "seconds": round(seconds, 3), "document": child.get("id"),
                                 "status": child.get("status")})
                save(doc)
                emit(Event("run", rnd, variant, m.value, m))
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    except BaseException:
        state = "failed"
        raise
    finally:
        with sysctl.signals_deferred():
            outcomes = sysctl.restore(settings)
            restored = all(o.ok for o in outcomes)
            if restored:
                sysctl.remove_journal(journal)
        signal.signal(signal.SIGHUP, old_hup)
        doc.summary["restored"] = restored
        doc.summary["restore"] = [{"key": o.key, "value": o.now, "ok": o.ok,
                                   "error": o.error} for o in outcomes]
        wall = time.monotonic() - started
        child_seconds = sum(float(r["seconds"]) for r in doc.rows)
        doc.summary["overhead"] = {
            "settings_seconds": round(settings_seconds, 6),
            "wall_seconds": round(wall, 3),
            "experiment_seconds": round(child_seconds, 3),
            "tune_seconds": round(wall - child_seconds, 3),
        }
        if metric is not None:
            _analyze(doc, metric)
        finish(doc, state)
        with contextlib.suppress(VirtbenchError, OSError):
            save(doc)
        emit(Event("restored", extra={"outcomes": outcomes}))
        if not restored:
            bad = ", ".join(f"{o.key} ({o.error})" for o in outcomes if not o.ok)
            raise EnvironmentUnsupported(  # this must win over any other error
                f"could not restore {bad}; the journal {journal} is kept: run "
                "`virtbench tune --restore`")
    return doc


def _restore_or_raise(settings: Sequence[sysctl.Setting]) -> None:
    with sysctl.signals_deferred():
        outcomes = sysctl.restore(settings)
    bad = [o for o in outcomes if not o.ok]
    if bad:
        raise EnvironmentUnsupported("could not restore " + ", ".join(
            f"{o.key} ({o.error})" for o in bad) + ": run `virtbench tune --restore`")


def _analyze(doc: ExperimentResult, metric: MainMetric) -> None:
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
