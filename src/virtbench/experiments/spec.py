"""What an experiment is: :class:`ExperimentSpec`, and :class:`Context`, what its run gets.

An experiment module defines its params (a frozen dataclass with ``validate()``), its row and
summary models (pydantic, the main metric included), ``run(params, ctx)``, a text
rendering, a report view and the hook that adds its command-line options, and ends with
``SPEC = ExperimentSpec(...)``. :mod:`virtbench.experiments.registry` lists the modules;
:func:`execute` runs any of them under the one document lifecycle
(:mod:`virtbench.runner.lifecycle`). See docs/design.md, "Adding an experiment".
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from virtbench.errors import UsageError
from virtbench.results.environment import collect
from virtbench.results.model import ExperimentResult
from virtbench.runner.lifecycle import Outcome, interrupt_signals, lifecycle

P = TypeVar("P")


# ---- typed rows and summaries ----------------------------------------------------------------
class MainMetricModel(BaseModel):
    """The one figure ``virtbench tune`` compares (see :mod:`virtbench.experiments.metric`)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    value: float
    unit: str = ""
    lower_is_better: bool = False

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("the main metric must be a finite number")
        return v


class Row(BaseModel):
    """Base of an experiment's row model: the fields it declares are checked, the others
    (documented on its docs page) pass as they are."""

    model_config = ConfigDict(extra="allow")


class Summary(BaseModel):
    """Base of an experiment's summary model."""

    model_config = ConfigDict(extra="allow")
    main_metric: MainMetricModel | None = None


# ---- report view (drawn by virtbench.report) -------------------------------------------------
ChartKind = Literal["bar", "stacked-bar", "line"]


@dataclass(frozen=True)
class Chart:
    """One chart of an experiment's rows.

    ``x``: the row field on the x axis (categories, in row order). ``y``: numeric row fields,
    one trace each. ``group``: instead, split rows into one trace per value of this field
    (then only ``y[0]`` is drawn). Rows missing a field are skipped for that trace.
    """

    title: str
    x: str
    y: tuple[str, ...]
    kind: ChartKind = "bar"
    group: str | None = None
    y_title: str = ""
    log_y: bool = False


@dataclass(frozen=True)
class ExperimentView:
    title: str
    columns: tuple[str, ...] = ()
    """Row fields shown in the table, in order (empty: every scalar field)."""
    charts: tuple[Chart, ...] = ()
    """Empty: the generic chart."""
    description: str = ""
    summary_keys: tuple[str, ...] = field(default_factory=tuple)
    """Summary entries shown, dotted for nested ones (``median.seconds_total``); empty: every
    entry."""


# ---- the spec ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExperimentSpec(Generic[P]):
    name: str
    """``ExperimentResult.experiment`` of its documents."""
    command: tuple[str, ...]
    """Its words on the command line: ``("cap",)``, ``("io", "postmark")``."""
    help: str
    params: type[P]
    row: type[Row]
    summary: type[Summary]
    main_metric: str
    """What ``summary.main_metric`` is, in words (docs and ``--help``)."""
    add_options: Callable[[argparse.ArgumentParser], None]
    """Adds the experiment's own options (the common ones are added for it)."""
    params_from_args: Callable[[argparse.Namespace], P]
    run: Callable[[P, Context], None]
    render: Callable[[ExperimentResult], str]
    view: ExperimentView
    docs: str
    """Its page under ``docs/``."""
    description: str = ""
    examples: tuple[str, ...] = ()
    """Command lines shown in its ``--help`` (each is parsed by tests/test_cli_conventions.py)."""
    exit_code: Callable[[ExperimentResult], int] = lambda doc: 0
    """The command's exit status once the document is complete."""
    before: Callable[[argparse.Namespace], int | None] = lambda args: None
    """A mode of the command that produces no document (``tune --restore``): its exit
    status, or ``None`` to run the experiment."""

    def check_row(self, row: dict[str, Any]) -> None:
        _check(self.row, row, f"{self.name} row")

    def check_summary(self, summary: dict[str, Any]) -> None:
        _check(self.summary, summary, f"{self.name} summary")

    def parser(self, prog: str | None = None) -> argparse.ArgumentParser:
        """A parser of this experiment's options alone (what ``tune`` checks commands with)."""
        p = OptionParser(prog=prog or "virtbench " + " ".join(self.command), add_help=False)
        add_all_options(self, p)
        return p


def _check(model: type[BaseModel], data: dict[str, Any], what: str) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TypeError(f"{what} does not match its model at {where}: {first['msg']}") from None


class OptionParser(argparse.ArgumentParser):
    """A parser of an experiment's options (or the suite's, for ``tune -- run``) that
    raises ``UsageError`` instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


# ---- the common options -------------------------------------------------------------------
COMMON_OPTIONS = ("--json", "--output", "--label", "--db")


def add_common_options(p: argparse.ArgumentParser) -> None:
    """``--json``, ``-o/--output``, ``--label``, ``--db``: on every command that produces a
    document."""
    from pathlib import Path

    p.add_argument("--json", action="store_true",
                   help="print the result document (JSON) instead of the text report")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="also write the result document to FILE (after every step)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="label the result (repeatable)")
    p.add_argument("--db", metavar="URL", default=None,
                   help="results database URL (default: $VIRTBENCH_DB or SQLite in the data "
                        "dir)")


def add_all_options(spec: ExperimentSpec[Any], p: argparse.ArgumentParser) -> None:
    spec.add_options(p)
    add_common_options(p)


# ---- running one -------------------------------------------------------------------------------
def _say(message: str) -> None:
    from virtbench import console  # progress on stderr; silent with -q

    console.info(message)


@dataclass
class Context:
    """What ``run(params, ctx)`` gets. It calls :meth:`open` once it has checked what it
    needs (no document for a refused request), then :meth:`add_row` or :meth:`step` after
    every step; the lifecycle does the rest."""

    spec: ExperimentSpec[Any]
    save: Callable[[ExperimentResult], object]
    say: Callable[[str], None] = _say
    command: list[str] = field(default_factory=lambda: ["virtbench", *sys.argv[1:]])
    labels: dict[str, str] = field(default_factory=dict)
    summarize: Callable[[ExperimentResult], None] | None = None
    """Recomputes ``doc.summary`` from the rows: after every row and at the end."""
    _doc: ExperimentResult | None = None
    _outcome: Outcome | None = None
    _stack: contextlib.ExitStack | None = None

    @property
    def doc(self) -> ExperimentResult:
        if self._doc is None:
            raise RuntimeError(f"{self.spec.name}: the document is not open yet")
        return self._doc

    @property
    def opened(self) -> bool:
        return self._doc is not None

    def open(self, params: dict[str, Any], *, notes: Sequence[str] = ()) -> ExperimentResult:
        """Create the ``running`` document with the environment, save it, and hand it to the
        lifecycle."""
        if self._stack is None or self._doc is not None:
            raise RuntimeError("Context.open: called outside execute() or twice")
        doc = ExperimentResult(experiment=self.spec.name, params=params,
                               command=list(self.command), environment=collect())
        doc.labels.update(self.labels)
        doc.notes.extend(notes)
        self._doc = doc
        self._outcome = self._stack.enter_context(lifecycle(doc, self._save, self._end))
        return doc

    def partial(self) -> None:
        """End ``partial`` rather than ``complete``: some part failed, the rest is valid."""
        if self._outcome is not None:
            self._outcome.status = "partial"

    def add_row(self, row: dict[str, Any]) -> None:
        self.doc.rows.append(row)
        self.step()

    def step(self) -> None:
        """A step is done: summarize, check and save."""
        doc = self.doc
        if doc.rows and self.summarize is not None:
            self.summarize(doc)
        self._save(doc)

    def _end(self) -> None:
        doc = self.doc
        if doc.rows and self.summarize is not None:
            with contextlib.suppress(Exception):
                self.summarize(doc)

    def _save(self, doc: ExperimentResult) -> None:
        for row in doc.rows:
            self.spec.check_row(row)
        if doc.summary:
            self.spec.check_summary(doc.summary)
        self.save(doc)


def execute(spec: ExperimentSpec[P], params: P, ctx: Context) -> ExperimentResult:
    """Run ``spec`` with ``params`` under the one lifecycle; the document once it ends."""
    with interrupt_signals(), contextlib.ExitStack() as stack:
        ctx._stack = stack
        spec.run(params, ctx)
    ctx._stack = None
    return ctx.doc
