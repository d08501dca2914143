"""The experiment registry and the one document lifecycle (docs/design.md, "Adding an
experiment"): every registered experiment has its command with the common options, its docs
page and its report view; the lifecycle gives every document the same status transitions."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from virtbench.experiments import registry
from virtbench.experiments.spec import (
    COMMON_OPTIONS,
    Context,
    ExperimentSpec,
    ExperimentView,
    Row,
    Summary,
    execute,
)
from virtbench.results.model import ExperimentResult, RunResult
from virtbench.runner.lifecycle import lifecycle

ROOT = Path(__file__).resolve().parent.parent


def _subparser(words: tuple[str, ...]) -> argparse.ArgumentParser:
    from virtbench.cli import build_parser

    parser = build_parser()
    for word in words:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


@pytest.mark.parametrize("name", list(registry.EXPERIMENTS))
def test_every_experiment_is_complete(name: str) -> None:
    spec = registry.get(name)
    words, module = registry.EXPERIMENTS[name]
    assert spec.name == name and " ".join(spec.command) == words
    assert module == f"virtbench.experiments.{name}"
    # its command, with the common options
    opts = _options(_subparser(spec.command))
    assert set(COMMON_OPTIONS) | {"-o"} <= opts, f"{name}: missing common options"
    # its docs page names the command
    page = ROOT / "docs" / spec.docs
    assert page.is_file(), f"{name}: no docs page {spec.docs}"
    assert f"virtbench {' '.join(spec.command)}" in page.read_text(encoding="utf-8")
    # its report view, with real columns
    from virtbench.report.experiments import view_for

    assert view_for(name) is spec.view
    assert isinstance(spec.view, ExperimentView) and spec.view.columns
    # typed params, rows and summary; the fast top-level help reads the same one-liner
    assert dataclasses.is_dataclass(spec.params)
    assert issubclass(spec.row, Row) and issubclass(spec.summary, Summary)
    assert spec.main_metric
    if spec.command[0] not in registry.GROUPS:
        assert registry.help_of(spec.command[0]) == spec.help


def test_the_suite_has_the_common_options_too() -> None:
    assert set(COMMON_OPTIONS) | {"-o"} <= _options(_subparser(("run",)))


def test_find_and_unknown() -> None:
    found = registry.find(["io", "seqread", "--size", "1G"])
    assert found is not None and found[0].name == "seqread" and found[1] == ["--size", "1G"]
    assert registry.find(["io", "nosuch"]) is None
    assert registry.find(["detect"]) is None


# ---- the lifecycle ------------------------------------------------------------------------------
def _doc() -> ExperimentResult:
    return ExperimentResult(experiment="toy")


@pytest.mark.parametrize(("raise_", "status"), [
    (None, "complete"),
    (KeyboardInterrupt, "interrupted"),
    (ValueError, "failed"),
])
def test_status_transitions(raise_: type[BaseException] | None, status: str) -> None:
    doc = _doc()
    saved: list[str] = []
    try:
        with lifecycle(doc, lambda d: saved.append(d.status)):
            saved.append("work")
            if raise_ is not None:
                raise raise_
    except BaseException as exc:
        assert raise_ is not None and isinstance(exc, raise_)
    assert doc.status == status and doc.finished is not None
    assert saved == ["running", "work", status]  # at creation, the work, at the end


def test_partial_and_the_suite_document() -> None:
    run = RunResult(profile="unixbench-6")
    with lifecycle(run, lambda d: None) as outcome:
        outcome.status = "partial"
    assert run.status == "partial"


def test_sigterm_and_sighup_interrupt_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        doc = _doc()
        with pytest.raises(KeyboardInterrupt), lifecycle(doc, lambda d: None):
            os.kill(os.getpid(), sig)
            signal.sigtimedwait([], 0)  # let the handler run here, not later
            raise AssertionError("the signal did not interrupt")
        assert doc.status == "interrupted"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def test_a_failing_last_save_does_not_hide_the_error() -> None:
    calls = []

    def save(d: ExperimentResult) -> None:
        calls.append(d.status)
        if d.status != "running":
            raise OSError(28, "No space left on device")

    with pytest.raises(ValueError, match="the real error"), lifecycle(_doc(), save):
        raise ValueError("the real error")
    assert calls == ["running", "failed"]


# ---- a toy experiment through execute() --------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ToyParams:
    steps: int = 3
    fail_at: int | None = None


class ToyRow(Row):
    step: int
    value: float


class ToySummary(Summary):
    total: float


def _toy_run(params: ToyParams, ctx: Context) -> None:
    ctx.summarize = lambda d: setattr(d, "summary", {"total": sum(r["value"] for r in d.rows)})
    ctx.open({"steps": params.steps})
    for i in range(params.steps):
        if i == params.fail_at:
            raise KeyboardInterrupt
        ctx.add_row({"step": i, "value": i * 1.5})


def _toy(**changes: Any) -> ExperimentSpec[ToyParams]:
    spec: ExperimentSpec[ToyParams] = ExperimentSpec(
        name="toy", command=("toy",), help="a toy", params=ToyParams, row=ToyRow,
        summary=ToySummary, main_metric="none", add_options=lambda p: None,
        params_from_args=lambda a: ToyParams(), run=_toy_run, render=lambda d: "",
        view=ExperimentView(title="Toy"), docs="design.md")
    return dataclasses.replace(spec, **changes)


def test_execute_saves_after_every_step(tmp_path: Path) -> None:
    out = tmp_path / "doc.json"
    seen: list[tuple[str, int]] = []

    def save(d: ExperimentResult) -> None:
        seen.append((d.status, len(d.rows)))
        d.save(out)

    doc = execute(_toy(), ToyParams(), Context(_toy(), save, labels={"k": "v"}))
    assert seen == [("running", 0), ("running", 1), ("running", 2), ("running", 3),
                    ("complete", 3)]
    on_disk = json.loads(out.read_text())
    assert on_disk["status"] == "complete" and on_disk["labels"] == {"k": "v"}
    assert on_disk["summary"] == {"total": 4.5} and doc.summary == {"total": 4.5}


def test_execute_interrupted_keeps_what_was_measured() -> None:
    docs: list[ExperimentResult] = []
    ctx = Context(_toy(), lambda d: docs.append(d))
    with pytest.raises(KeyboardInterrupt):
        execute(_toy(), ToyParams(steps=5, fail_at=2), ctx)
    assert ctx.doc.status == "interrupted" and len(ctx.doc.rows) == 2
    assert ctx.doc.summary == {"total": 1.5}


def test_a_row_that_does_not_match_its_model_fails_the_run() -> None:
    def bad_run(params: ToyParams, ctx: Context) -> None:
        ctx.open({})
        ctx.add_row({"step": "x", "value": 1.0})

    ctx = Context(_toy(run=bad_run), lambda d: None)
    with pytest.raises(TypeError, match="toy row does not match its model at step"):
        execute(ctx.spec, ToyParams(), ctx)
    assert ctx.doc.status == "failed"


# ---- one module plus one registry line -----------------------------------------------------
READER = '''
"""A new experiment as docs/design.md says to write one: it reads a number from a file."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from virtbench.errors import UsageError
from virtbench.experiments.spec import Context, ExperimentSpec, ExperimentView, Row, Summary
from virtbench.results.model import ExperimentResult


@dataclass(frozen=True)
class ReaderParams:
    path: Path

    def validate(self) -> None:
        if not self.path.is_file():
            raise UsageError(f"--read {self.path}: no such file")


class ReaderRow(Row):
    value: float


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--read", type=Path, required=True)


def run(params: ReaderParams, ctx: Context) -> None:
    params.validate()
    ctx.summarize = lambda d: d.summary.update(main_metric={
        "name": "value", "value": d.rows[-1]["value"], "unit": "u", "lower_is_better": False})
    ctx.open({"path": str(params.path)})
    ctx.add_row({"value": float(params.path.read_text())})


def render(doc: ExperimentResult) -> str:
    return f"reader: {doc.rows[-1]['value']:g}\\n"


SPEC = ExperimentSpec(
    name="reader", command=("reader",), help="read a number from a file",
    params=ReaderParams, row=ReaderRow, summary=Summary, main_metric="the number read",
    add_options=add_options, params_from_args=lambda a: ReaderParams(a.read), run=run,
    render=render, view=ExperimentView(title="Reader", columns=("value",)),
    docs="reader.md")
'''


def test_one_module_and_one_registry_line_make_an_experiment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A module written as the design page says and its registry line (nothing else) give a
    command with the common options and its text, a report view, and an experiment that
    `tune` runs A/B in its own process (the number read is the setting tune changed)."""
    (tmp_path / "reader_experiment.py").write_text(READER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.EXPERIMENTS, "reader", ("reader", "reader_experiment"))
    sysroot = tmp_path / "sys"
    (sysroot / "vm").mkdir(parents=True)
    ratio = sysroot / "vm" / "dirty_ratio"
    ratio.write_text("20\n")
    sigterm = signal.getsignal(signal.SIGTERM)  # main() makes SIGTERM a KeyboardInterrupt
    try:
        _reader_checks(tmp_path, ratio, capsys)
    finally:
        signal.signal(signal.SIGTERM, sigterm)


def _reader_checks(tmp_path: Path, ratio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from virtbench.cli import main
    from virtbench.report.experiments import view_for

    sysroot = ratio.parent.parent
    assert set(COMMON_OPTIONS) | {"-o"} <= _options(_subparser(("reader",)))
    assert view_for("reader") is registry.get("reader").view
    out = tmp_path / "doc.json"
    assert main(["reader", "--read", str(ratio), "--label", "k=v", "-o", str(out)]) == 0
    assert capsys.readouterr().out == "reader: 20\n"
    doc = json.loads(out.read_text())
    assert doc["experiment"] == "reader" and doc["status"] == "complete"
    assert doc["labels"] == {"k": "v"} and doc["rows"] == [{"value": 20.0}]

    assert main(["tune", "--sysctl-root", str(sysroot), "--set", "vm.dirty_ratio=40",
                 "--rounds", "2", "--json", "--", "reader", "--read", str(ratio)]) == 0
    tuned = json.loads(capsys.readouterr().out)
    assert [(r["variant"], r["value"]) for r in tuned["rows"]] == [
        ("A", 20.0), ("B", 40.0), ("A", 20.0), ("B", 40.0)]
    assert tuned["summary"]["welch"]["difference"] == 20.0
    assert tuned["summary"]["restored"] is True and ratio.read_text().strip() == "20"
    assert main(["reader", "--read", str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err
