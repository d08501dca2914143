"""Helpers every experiment shares: its document, saving it, facts about a directory."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from virtbench import paths
from virtbench.results.environment import collect
from virtbench.results.model import ExperimentResult, utc_now


def new_document(experiment: str, params: dict[str, Any],
                 command: Sequence[str] | None = None) -> ExperimentResult:
    """A ``running`` experiment document carrying the environment it is measured in."""
    return ExperimentResult(
        experiment=experiment,
        params=params,
        command=list(command if command is not None else ["virtbench", *sys.argv[1:]]),
        environment=collect(),
    )


def finish(doc: ExperimentResult, status: str = "complete") -> None:
    doc.status = status  # type: ignore[assignment]
    doc.finished = utc_now()


def save(doc: ExperimentResult) -> Path:
    """Save the document as the master JSON and index it (``virtbench.store`` when present,
    else the JSON file alone under ``paths.results_dir()``). Returns the JSON path."""
    try:
        store = importlib.import_module("virtbench.store")
    except ImportError:
        store = None
    save_and_record = getattr(store, "save_and_record", None) if store else None
    if save_and_record is not None:
        path: Path = save_and_record(doc)
        return path
    day = doc.started[:10] if len(doc.started) >= 10 else datetime.now(UTC).strftime("%Y-%m-%d")
    return doc.save(paths.results_dir() / f"{day}-{doc.id}.json")


def progress(message: str) -> None:
    """A progress line on stderr (stdout stays clean for ``--json``)."""
    sys.stderr.write(f"virtbench: {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class MountInfo:
    mount_point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        digits = field[i + 1:i + 4]
        if field[i] == "\\" and len(digits) == 3 and digits.isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_of(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> MountInfo | None:
    """The mount holding ``path`` (longest matching mount point), or ``None``."""
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    target = os.path.realpath(path)
    best: MountInfo | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 2:
            continue
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = MountInfo(point, rfields[0], _unescape(rfields[1]))
    return best


def location_facts(path: Path) -> dict[str, Any]:
    """Where an I/O experiment ran: directory, file system type, device, free space."""
    facts: dict[str, Any] = {"directory": str(path)}
    mount = mount_of(path)
    if mount is not None:
        facts.update(mount_point=mount.mount_point, fstype=mount.fstype, device=mount.source)
    try:
        st = os.statvfs(path)
        facts["free_bytes"] = st.f_bavail * st.f_frsize
        facts["size_bytes"] = st.f_blocks * st.f_frsize
    except OSError:
        pass
    return facts


MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})
