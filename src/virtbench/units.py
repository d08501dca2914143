"""Sizes and durations as people write them: one parser for every option that takes bytes,
one for every option that takes a duration.

``4096``, ``4k``, ``512K``, ``10M``, ``1.5G``, ``200MB``, ``10MiB`` and ``2t`` are binary
units (k = 1024), as ``dd``, QEMU and the kernel's sysfs use them; case does not matter.
Durations: ``90`` or ``90s``, ``10m``, ``1.5h``, ``1h30m``, ``2m30s``.
"""

from __future__ import annotations

import re

from virtbench.errors import UsageError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB
MAX_SIZE = 1 << 62
"""Larger values are typos (or attacks on an int64 further down), not sizes."""

_SIZE = re.compile(r"(\d{1,20}(?:\.\d{1,9})?)\s*([kmgt]?)(?:i?b)?")
_SCALE = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": TiB}


def parse_size(
    text: str,
    what: str = "size",
    *,
    positive: bool = False,
    kind: str = "size like 4096, 512K, 10M or 1.5G",
) -> int:
    """``text`` as a number of bytes; :class:`UsageError` (one line naming ``what``) if it is
    not a size (``kind`` says what one looks like), is negative, is zero while ``positive``,
    or is absurdly large."""
    m = _SIZE.fullmatch(text.strip().lower())
    if m is None:
        raise UsageError(f"{what}: {text[:40]!r} is not a {kind}")
    value = int(float(m.group(1)) * _SCALE[m.group(2)])
    if value > MAX_SIZE:
        raise UsageError(f"{what}: {text[:40]!r} is too large")
    if positive and value <= 0:
        raise UsageError(f"{what}: must be positive, not {text[:40]!r}")
    return value


def format_size(n: float) -> str:
    """``n`` bytes for people: ``1.5 GiB``, ``12.0 MiB``, ``512 B``."""
    for unit, scale in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


MAX_DURATION = 7 * 24 * 3600.0
"""Longer durations are typos, not benchmark budgets."""
_DURATION = re.compile(r"(?:(\d{1,6}(?:\.\d{1,6})?)h)?\s*(?:(\d{1,6}(?:\.\d{1,6})?)m(?:in)?)?"
                       r"\s*(?:(\d{1,9}(?:\.\d{1,6})?)s?)?")


def parse_duration(text: str, what: str = "duration") -> float:
    """``text`` (``90``, ``90s``, ``10m``, ``1.5h``, ``1h30m``) as seconds > 0;
    :class:`UsageError` (one line naming ``what``) otherwise."""
    raw = text.strip().lower()
    m = _DURATION.fullmatch(raw)
    if not raw or m is None or not any(m.groups()):
        raise UsageError(f"{what}: {text[:40]!r} is not a duration like 90s, 10m or 1h")
    h, mi, se = (float(g) if g else 0.0 for g in m.groups())
    seconds = h * 3600 + mi * 60 + se
    if seconds <= 0:
        raise UsageError(f"{what}: must be longer than 0 s, not {text[:40]!r}")
    if seconds > MAX_DURATION:
        raise UsageError(f"{what}: {text[:40]!r} is longer than a week")
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` for people: ``45 s``, ``12m05s``, ``1h02m``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
