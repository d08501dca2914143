"""Bringing fetched documents home: import into the store, labelled with the fleet run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from virtbench.errors import UsageError
from virtbench.fleet.state import FleetState
from virtbench.results.model import (
    DOCUMENT_TYPE,
    EXPERIMENT_TYPE,
    Environment,
    ExperimentResult,
    RunResult,
    load_any,
    utc_now,
)
from virtbench.results.salvage import detect_report
from virtbench.safeio import read_json

Document = RunResult | ExperimentResult


def labels_for(state: FleetState, host: str) -> dict[str, str]:
    h = state.hosts[host]
    return {"fleet": state.id, "host": host, "groups": ",".join(h.groups)}


def wrap_report(state: FleetState, raw: dict[str, Any]) -> ExperimentResult:
    """A document that is not a run or experiment (``detect --json``'s report) is stored as an
    experiment named after the command, the report as its summary (and, for ``detect``, as
    the environment's virtualization facts)."""
    name = state.command[0] if state.command else "unknown"
    env = Environment()
    notes: list[str] = []
    if name == "detect":
        host = raw.get("hostname") if isinstance(raw.get("hostname"), str) else None
        fields = {k: v for k, v in raw.items() if k != "hostname"}
        report, error, dropped = detect_report(fields, "detect report")
        env = Environment(hostname=host, virtualization=report, virtualization_error=error)
        if dropped:
            notes.append("dropped invalid parts of the host's report: " + "; ".join(dropped))
    return ExperimentResult(
        experiment=name, status="complete", finished=utc_now(),
        command=["virtbench", *state.command], environment=env, summary=raw, notes=notes,
    )


def read_document(state: FleetState, path: Path) -> Document:
    raw = read_json(path)  # a host's file: nesting, number and file-type limits
    if not isinstance(raw, dict):
        raise UsageError("not a JSON object")
    if raw.get("type") in (DOCUMENT_TYPE, EXPERIMENT_TYPE):
        return load_any(path)
    return wrap_report(state, raw)


def summarize(doc: Document) -> str | None:
    """A few words for the progress display: the index of a run, the layers of a detect."""
    from virtbench.report.fleet import score_of

    if isinstance(doc, RunResult):
        score, partial, _idx, copies = score_of(doc, None)
        if score is not None:
            return f"index {score:.1f}{'*' if partial else ''} ({copies} cop" \
                f"{'y' if copies == 1 else 'ies'})"
        return f"run {doc.status}"
    report = doc.environment.virtualization
    return (report.group_key() if report else None) or f"{doc.experiment} {doc.status}"


def import_document(state: FleetState, host: str, path: Path) -> tuple[str, str, str | None]:
    """Import the document fetched from ``host`` into the store; (run id, document type,
    summary)."""
    from virtbench.store import save_and_record

    doc = read_document(state, path)
    doc.labels.update(labels_for(state, host))
    save_and_record(doc)
    return doc.id, doc.type, summarize(doc)
