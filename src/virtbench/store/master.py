"""Where a result document's master JSON file lives, and the store's warnings on stderr.

Below both ``virtbench.store.files`` (saving) and ``virtbench.store.store`` (the index), which
use it, so that neither imports the other's module for these.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from virtbench import paths
from virtbench.results.model import ExperimentResult, RunResult
from virtbench.safeio import check_id

Document = RunResult | ExperimentResult


def master_path(doc: Document) -> Path:
    """``results_dir()/<started-date>-<id>.json``. The id is checked again here (a document
    changed after validation): it must never name another directory."""
    check_id(doc.id)
    day = doc.started[:10]
    try:
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
    return paths.results_dir() / f"{day}-{doc.id}.json"


def warn(message: str) -> None:
    sys.stderr.write(f"virtbench: warning: {message}\n")
    sys.stderr.flush()
