"""Resolve RUN arguments for ``explain`` and ``report``.

Delegates to :func:`virtbench.results.resolve.resolve_runs` (files, UnixBench text reports,
ids, ``latest``, labels) when the store is installed; without it, RUN must be a file.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from virtbench.errors import UsageError
from virtbench.results.model import ExperimentResult, RunResult, load_any

Document = RunResult | ExperimentResult


def _load_file(path: Path) -> Document:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if head.lstrip()[:1] == b"{":
        return load_any(path)
    try:
        importer = importlib.import_module("virtbench.importers.unixbench")
    except ImportError:
        raise UsageError(f"{path}: not a virtbench JSON document") from None
    doc: RunResult = importer.parse_file(path)
    return doc


def resolve(refs: Sequence[str], db_url: str | None = None) -> list[Document]:
    """The documents ``refs`` name, in order."""
    try:
        resolver = importlib.import_module("virtbench.results.resolve")
    except ImportError:
        resolver = None
    if resolver is not None:
        docs: list[Document] = resolver.resolve_runs(list(refs), db_url)
        return docs
    out: list[Document] = []
    for ref in refs:
        path = Path(ref).expanduser()
        if not path.is_file():
            raise UsageError(f"{ref}: no such file (the run store is not available)")
        out.append(_load_file(path))
    return out


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
