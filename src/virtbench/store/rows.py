"""The light half of the run index: the rows ``virtbench runs`` lists, its filter, and the
index's schema version. Standard library only, shared by ``virtbench.store.store``
(SQLAlchemy) and ``virtbench.store.quick`` (the fast read-only listing)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STORE_SCHEMA_VERSION = 1
"""Independent of the document ``SCHEMA_VERSION``: it increases when the index's tables
change (virtbench.store.schema)."""


@dataclass
class RunRow:
    """One indexed run, as ``virtbench runs`` lists it."""

    id: str
    kind: str
    experiment: str | None
    source: str
    profile: str | None
    mode: str | None
    comparable: bool | None
    copies: list[int]
    status: str
    started: str
    finished: str | None
    path: str
    tool_version: str | None
    hostname: str | None
    cpu_model: str | None
    kernel: str | None
    virtualization: str | None
    labels: dict[str, str] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)
    """Suite runs: System Benchmarks Index Score by number of copies."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scores"] = {str(k): v for k, v in self.scores.items()}
        return d


@dataclass
class RunFilter:
    host: str | None = None
    """Substring of the hostname (case-insensitive)."""
    labels: dict[str, str] = field(default_factory=dict)
    since: str | None = None
    """ISO date or timestamp: runs started at or after it."""
    until: str | None = None
    """ISO date or timestamp: runs started before the end of it."""
    profile: str | None = None
    kind: str | None = None
    """``suite``, ``experiment``, or an experiment name."""
    source: str | None = None
    limit: int | None = None


def day_end(value: str) -> str:
    """``2026-11-22`` -> ``2026-11-22T99`` so that ``started < it`` includes the whole day;
    a timestamp gets ``~`` (above every digit, ``.``, ``+``, ``Z``) so that the run started
    at exactly that time (with any fraction or time zone after it) is included too."""
    return value + "T99" if len(value) == 10 else value + "~"


def parse_copies(text: str | None) -> list[int]:
    return [int(c) for c in (text or "").split(",") if c.strip().isdigit()]
