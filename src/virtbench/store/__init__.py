"""The run index (SQLAlchemy Core over SQLite or PostgreSQL); see docs/store.md."""

from virtbench.store.store import (
    Document,
    RebuildReport,
    RunFilter,
    RunRow,
    Store,
    StoreError,
    default_url,
    dispose_engines,
    load_recorded,
    master_path,
    open_store,
    resolve_url,
    save_and_record,
)

__all__ = [
    "Document", "RebuildReport", "RunFilter", "RunRow", "Store", "StoreError", "default_url",
    "dispose_engines", "load_recorded", "master_path", "open_store", "resolve_url",
    "save_and_record",
]
