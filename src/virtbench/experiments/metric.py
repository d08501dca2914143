"""The main metric of an experiment: the one figure ``virtbench tune`` compares.

An experiment exposes it in its document as ``summary["main_metric"]``::

    {"name": "transactions_per_second", "value": 2041.3, "unit": "tx/s",
     "lower_is_better": false}

Suite runs (``virtbench run``) have no summary; their main metric is the System Benchmarks
Index Score of the run's last section, or the score of its single test.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from virtbench.errors import UsageError


@dataclass(frozen=True)
class MainMetric:
    name: str
    value: float
    unit: str
    lower_is_better: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> MainMetric:
        if not isinstance(d, dict):
            raise UsageError("main_metric is not an object")
        try:
            value = float(d["value"])
            name = str(d["name"])
        except (KeyError, TypeError, ValueError):
            raise UsageError("main_metric needs a name and a numeric value") from None
        if not math.isfinite(value):
            raise UsageError(f"main_metric {name} is not a finite number")
        return cls(name=name, value=value, unit=str(d.get("unit", "")),
                   lower_is_better=bool(d.get("lower_is_better", False)))


def main_metric_of(doc: dict[str, Any]) -> MainMetric:
    """The main metric of a result document (experiment or suite run), or ``UsageError``."""
    if doc.get("type") == "virtbench.experiment":
        summary = doc.get("summary") or {}
        if "main_metric" not in summary:
            raise UsageError(f"experiment {doc.get('experiment')!r} reports no main_metric: "
                             "it cannot be compared by tune")
        return MainMetric.from_dict(summary["main_metric"])
    if doc.get("type") == "virtbench.run":
        sections = doc.get("sections") or []
        for section in reversed(sections):
            if section.get("index_score"):
                return MainMetric("index_score", float(section["index_score"]), "index", False)
            tests = [t for t in section.get("tests", []) if t.get("score")]
            if len(tests) == 1:
                t = tests[0]
                return MainMetric(f"{t['test']}_score", float(t["score"]), str(t.get("unit", "")),
                                  False)
        raise UsageError("the run has no index score and not exactly one scored test: "
                         "tune cannot pick its main figure (run one test, or the full index)")
    raise UsageError("not a virtbench result document")
