"""Small pieces the experiments share: steal time, Jain's index, saving, text tables."""

from __future__ import annotations

import importlib
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virtbench import paths
from virtbench.results.model import ExperimentResult


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat, in seconds."""

    busy: float
    idle: float
    steal: float

    @property
    def total(self) -> float:
        return self.busy + self.idle + self.steal


def read_cpu_times(stat: Path = Path("/proc/stat")) -> CpuTimes | None:
    try:
        text = stat.read_text(encoding="ascii")
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            v = [int(x) for x in parts[1:]] + [0] * 10
            user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
            # guest and guest_nice are already included in user and nice.
            return CpuTimes(busy=(user + nice + system + irq + softirq) / hz,
                            idle=(idle + iowait) / hz, steal=steal / hz)
    return None


def steal_between(before: CpuTimes | None, after: CpuTimes | None) -> tuple[
        float | None, float | None]:
    """(steal seconds, steal as a share of all CPU time) between two readings."""
    if before is None or after is None:
        return None, None
    steal = after.steal - before.steal
    total = after.total - before.total
    return round(steal, 3), (round(steal / total, 4) if total > 0 else None)


def jain_index(values: Sequence[float]) -> float | None:
    """Jain's fairness index: 1 when all equal, 1/n when one gets everything."""
    if len(values) < 2:
        return None
    s = math.fsum(values)
    sq = math.fsum(v * v for v in values)
    return (s * s) / (len(values) * sq) if sq > 0 else None


def mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def rnd(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def result_path(doc: ExperimentResult) -> Path:
    stamp = doc.started.replace(":", "").replace("-", "")
    return paths.results_dir() / f"{stamp}-{doc.experiment}-{doc.id}.json"


def save(doc: ExperimentResult) -> Path:
    """Save through the store when it exists (``virtbench.store.save_and_record``), else
    as a JSON document under ``virtbench.paths.results_dir()``."""
    try:
        store = importlib.import_module("virtbench.store")
    except ImportError:
        store = None
    save_and_record = getattr(store, "save_and_record", None)
    if save_and_record is not None:
        saved = save_and_record(doc)
        if isinstance(saved, Path):
            return saved
        return result_path(doc)
    return doc.save(result_path(doc))


def fmt(value: float | None, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain text table: first column left-aligned, others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)]) + "\n"


def progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def outcome_dicts(outcomes: Sequence[Any]) -> list[dict[str, Any]]:
    return [o.to_dict() for o in outcomes]
