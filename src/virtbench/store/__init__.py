"""The run index (SQLAlchemy Core over SQLite or PostgreSQL); see docs/store.md.

``master_path`` and ``save_and_record`` are imported eagerly (they are light); everything
else is loaded on first use, so importing this package does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from virtbench.store.files import master_path, save_and_record

if TYPE_CHECKING:
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
        open_store,
        resolve_url,
    )

_LAZY = {
    "Document", "RebuildReport", "RunFilter", "RunRow", "Store", "StoreError", "default_url",
    "dispose_engines", "load_recorded", "open_store", "resolve_url",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from virtbench.store import store

        return getattr(store, name)
    raise AttributeError(f"module 'virtbench.store' has no attribute {name!r}")


__all__ = [
    "Document", "RebuildReport", "RunFilter", "RunRow", "Store", "StoreError", "default_url",
    "dispose_engines", "load_recorded", "master_path", "open_store", "resolve_url",
    "save_and_record",
]
