"""The fleet table of a fleet run (its state and the store): every host, with its latest
document, or why it has none. The table itself, from documents alone, is
:mod:`virtbench.report.fleet`."""

from __future__ import annotations

from virtbench.errors import UsageError
from virtbench.fleet.state import FleetState
from virtbench.report.fleet import Document, FleetTable, HostRow, build_table, row_for


def fleet_table(state: FleetState, copies: int | None = None,
                db_url: str | None = None) -> FleetTable:
    """The table of a fleet run: every host of the state, with its latest document from the
    store at ``db_url`` (default: ``$VIRTBENCH_DB`` or SQLite in the data dir)."""
    from virtbench.store import load_recorded, open_store

    rows: list[HostRow] = []
    docs: dict[str, Document] = {}
    store = None
    for h in state.hosts.values():
        doc = None
        if h.run_ids:
            store = store or open_store(db_url)
            rec = store.get(h.run_ids[-1])
            if rec is not None:
                try:
                    doc = load_recorded(rec)
                except UsageError:
                    doc = None
        if doc is None:
            rows.append(HostRow(host=h.name, groups=list(h.groups), status=h.status,
                                reason=h.reason))
            continue
        row = row_for(doc, h.name, list(h.groups), copies)
        row.status = h.status
        if h.status != "fetched":
            row.reason = h.reason
        docs[h.name] = doc
        rows.append(row)
    return build_table(rows, docs, fleet=state.id, command=state.command, copies=copies)


def fleet_documents(ref: str, db_url: str | None = None) -> list[Document]:
    """The documents of a fleet run, one per host (its latest), for ``fleet:<id>`` refs.
    From the fleet state when this controller has it, else from the ``fleet`` label."""
    from virtbench.store import load_recorded, open_store

    if not ref:
        raise UsageError("fleet: needs a fleet run id, e.g. fleet:latest")
    try:
        state: FleetState | None = FleetState.load(ref)
    except UsageError:
        state = None
    store = open_store(db_url)
    out: list[Document] = []
    if state is not None:
        for h in state.hosts.values():
            if h.run_ids:
                rec = store.get(h.run_ids[-1])
                if rec is not None:
                    out.append(load_recorded(rec))
        if not out:
            raise UsageError(f"fleet:{ref}: no host of fleet run {state.id} has a result yet")
        return out
    rows = store.with_label("fleet", ref)
    if not rows:
        raise UsageError(f"fleet:{ref}: no such fleet run (see `virtbench fleet status`)")
    latest: dict[str, Document] = {}
    for rec in rows:  # oldest first: the latest per host wins
        doc = load_recorded(rec)
        latest[doc.labels.get("host") or doc.id] = doc
    return list(latest.values())
