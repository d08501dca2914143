"""Labels of a result document: ``KEY=VALUE`` words from ``--label``, checked once."""

from __future__ import annotations

from collections.abc import Sequence

from virtbench.errors import UsageError


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--label {item!r}: expected KEY=VALUE")
        if any(not ch.isprintable() for ch in item):
            # A newline or tab would break every table that lists labels.
            raise UsageError(f"--label {item!r}: control characters are not allowed")
        labels[key] = value.strip()
    return labels
