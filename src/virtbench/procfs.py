"""Facts about processes and this boot from ``/proc``, without heavy imports: every command's
sweep on start judges whether the owner of a leftover is gone, and start-up must stay light
(``tests/test_cli_startup.py``)."""

from __future__ import annotations

BOOT_ID = "/proc/sys/kernel/random/boot_id"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which ``pid`` started (``/proc/PID/stat`` field 22), or
    ``None`` when there is no such process."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()  # the name in (...) may hold spaces
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def boot_id() -> str | None:
    text = _read(BOOT_ID)
    return text.strip() if text else None
