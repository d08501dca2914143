"""Sizes as people write them: one parser for every option that takes bytes.

``4096``, ``4k``, ``512K``, ``10M``, ``1.5G``, ``200MB``, ``10MiB`` and ``2t`` are binary
units (k = 1024), as ``dd``, QEMU and the kernel's sysfs use them; case does not matter.
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
