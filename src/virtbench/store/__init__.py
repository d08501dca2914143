"""The run index (SQLAlchemy Core over SQLite or PostgreSQL); see docs/store.md.

Everything is loaded on first use, so importing this package (or its light modules ``rows``
and ``quick``, which ``virtbench runs`` uses) imports neither SQLAlchemy nor pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from virtbench.store.files import master_path, save_and_record
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
    if name in ("master_path", "save_and_record"):
        from virtbench.store import files

        return getattr(files, name)
    if name in _LAZY:
        from virtbench.store import store

        return getattr(store, name)
    raise AttributeError(f"module 'virtbench.store' has no attribute {name!r}")


__all__ = [
    "Document", "RebuildReport", "RunFilter", "RunRow", "Store", "StoreError", "default_url",
    "dispose_engines", "load_recorded", "master_path", "open_store", "resolve_url",
    "save_and_record",
]
