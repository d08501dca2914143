"""How ``virtbench report`` draws experiment documents: each experiment's spec has its view.

An :class:`~virtbench.results.model.ExperimentResult` has ``rows`` (one dict per measured
condition, fields documented on each experiment's docs page) and ``summary``. The report shows
every document as a table of its rows plus charts. What the table shows and which charts are
drawn come from the experiment's spec (``SPEC.view``, see
:mod:`virtbench.experiments.registry` and docs/report.md); an unknown experiment gets the
generic view (every scalar field in the table, and a bar chart of the first numeric field
against the first text field).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeGuard

from virtbench.experiments.spec import Chart, ChartKind, ExperimentView

__all__ = ["Chart", "ChartKind", "ExperimentView", "charts_for", "generic_chart", "is_number",
           "is_scalar", "table_columns", "view_for"]


def view_for(name: str) -> ExperimentView:
    """The view of a registered experiment (its spec's ``view``), else the generic one."""
    from virtbench.experiments import registry

    if name in registry.EXPERIMENTS:
        return registry.get(name).view
    return ExperimentView(title=name)


def is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def is_number(v: Any) -> TypeGuard[int | float]:
    """A finite int or float (not a bool): something a chart can draw."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def table_columns(view: ExperimentView, rows: Sequence[dict[str, Any]]) -> list[str]:
    """The table's columns: the view's (those present in some row), else every scalar field."""
    present: list[str] = []
    for row in rows:
        for k, v in row.items():
            if k not in present and is_scalar(v):
                present.append(k)
    if view.columns:
        chosen = [c for c in view.columns if c in present]
        if chosen:
            return chosen
    return present


def generic_chart(rows: Sequence[dict[str, Any]]) -> Chart | None:
    """A bar chart of the first numeric field against the first text field (or row number)."""
    x = y = None
    for row in rows:
        for k, v in row.items():
            if x is None and isinstance(v, str):
                x = k
            if y is None and is_number(v):
                y = k
    if y is None:
        return None
    return Chart(f"{y} per row", x=x or "#", y=(y,))


def charts_for(view: ExperimentView, rows: Sequence[dict[str, Any]]) -> list[Chart]:
    if view.charts:
        usable = [c for c in view.charts
                  if any(is_number(r.get(f)) for r in rows for f in c.y)]
        if usable:
            return usable
    chart = generic_chart(rows)
    return [chart] if chart else []
