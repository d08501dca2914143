"""Resolve RUN arguments for ``explain`` and ``report`` (through the run store's resolver:
files, UnixBench text reports, ids, ``latest``, labels)."""

from __future__ import annotations

from collections.abc import Sequence

from virtbench.errors import UsageError
from virtbench.results.model import ExperimentResult, RunResult
from virtbench.results.resolve import resolve_runs

Document = RunResult | ExperimentResult


def resolve(refs: Sequence[str], db_url: str | None = None) -> list[Document]:
    """The documents ``refs`` name, in order (a label expands in place)."""
    return resolve_runs(list(refs), db_url)


def resolve_run(ref: str, db_url: str | None = None, *, what: str = "RUN") -> RunResult:
    """Exactly one suite run (not an experiment)."""
    docs = resolve([ref], db_url)
    if len(docs) != 1:
        raise UsageError(f"{what} {ref!r} names {len(docs)} runs; name exactly one")
    doc = docs[0]
    if not isinstance(doc, RunResult):
        raise UsageError(
            f"{what} {ref!r} is a {doc.experiment} experiment; explain works on suite runs "
            "(use `virtbench report` to draw experiments)"
        )
    return doc
