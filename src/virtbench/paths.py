"""Where virtbench keeps things (XDG base directories)."""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / default


def data_dir() -> Path:
    """Results live here: ``$XDG_DATA_HOME/virtbench`` (``~/.local/share/virtbench``)."""
    return _xdg("XDG_DATA_HOME", ".local/share") / "virtbench"


def cache_dir() -> Path:
    """Compiled workloads live here: ``$XDG_CACHE_HOME/virtbench``."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "virtbench"


def results_dir() -> Path:
    return data_dir() / "results"
