"""Keep what is valid of untrusted data: validate it, drop the parts that fail, say which.

Older documents and documents fetched from fleet hosts may carry anything where a typed
model is now expected (``environment.virtualization`` was a free-form mapping before schema
version 2). :func:`salvage` validates such data against the model; each part that fails is
removed (the innermost list item holding the error, or the offending key) and validation is
tried again, so one bad layer costs that layer, not the report. What was removed is returned
as short, printable lines for the document's notes.
"""

from __future__ import annotations

import copy
import json
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from virtbench.probes.model import DetectReport

T = TypeVar("T")

MAX_PASSES = 10
MAX_LINES = 24
_EXTRA = ("extra_forbidden", "unexpected_keyword_argument")
_GONE = object()

Loc = tuple[int | str, ...]


def _clean(text: object, limit: int = 60) -> str:
    s = "".join(c if c.isprintable() else "?" for c in str(text))
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _path(where: str, loc: Loc) -> str:
    out = where
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{_clean(part, 40)}"
    return out


def _target(err: ErrorDetails) -> Loc:
    """What to remove for one error: the unexpected key itself, else the innermost list item
    around the error, else the top-level field (which then takes its default)."""
    loc = tuple(err["loc"])
    if err["type"] in _EXTRA or not loc:
        return loc
    ints = [i for i, part in enumerate(loc) if isinstance(part, int)]
    return loc[: ints[-1] + 1] if ints else loc[:1]


def _remove(data: Any, loc: Loc, touched: list[list[Any]]) -> bool:
    parent = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
    key = loc[-1]
    if isinstance(parent, dict) and key in parent:
        del parent[key]
        return True
    if isinstance(parent, list) and isinstance(key, int) and 0 <= key < len(parent) \
            and parent[key] is not _GONE:
        parent[key] = _GONE  # indexes of the other errors stay valid until the pass ends
        touched.append(parent)
        return True
    return False


def salvage(kind: type[T], raw: Any, where: str) -> tuple[T | None, list[str]]:
    """``raw`` validated as ``kind``, with what failed removed; and one line per removal.

    ``None`` when ``raw`` is not a mapping or nothing valid remains."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [f"{where}: not an object ({type(raw).__name__})"]
    try:
        data: Any = copy.deepcopy(raw)
    except RecursionError:
        return None, [f"{where}: nested too deeply"]
    adapter = TypeAdapter(kind)
    dropped: list[str] = []
    for _ in range(MAX_PASSES):
        try:
            return adapter.validate_python(data), dropped
        except ValidationError as exc:
            errors = exc.errors()
        touched: list[list[Any]] = []
        removed = [(_target(e), e) for e in errors]
        removed = [(loc, e) for loc, e in removed if loc and _remove(data, loc, touched)]
        for lst in touched:
            lst[:] = [x for x in lst if x is not _GONE]
        if not removed:
            break
        dropped += [_line(where, loc, e) for loc, e in removed]
    return None, [*dropped, f"{where}: still invalid"]


def _line(where: str, target: Loc, err: ErrorDetails) -> str:
    inner = tuple(err["loc"])[len(target):]
    at = f"{_path('', inner).lstrip('.')}: " if inner else ""
    msg = "unknown field" if err["type"] in _EXTRA else _clean(err["msg"])
    return f"{_path(where, target)} ({at}{msg})"


def cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_LINES:
        return lines
    return [*lines[: MAX_LINES - 1], f"... and {len(lines) - MAX_LINES + 1} more"]


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def detect_report(raw: Any, where: str) -> tuple[DetectReport | None, str | None, list[str]]:
    """A stored ``virtualization`` value of any age or origin, read as (report, the error
    detection reported instead, what was dropped). An old ``{"error": ...}`` entry is the
    error; a report with no layers, summary or facts left is no report."""
    if isinstance(raw, DetectReport):
        return raw, None, []
    error = None
    if isinstance(raw, dict) and "error" in raw:
        raw = dict(raw)
        value = raw.pop("error")
        error = _clean(value, 500) if isinstance(value, str) and value.strip() else None
        if not raw:
            return None, error, []
    report, dropped = salvage(DetectReport, raw, where)
    if report is not None and not _json_safe(report.facts):
        report.facts = {}
        dropped.append(f"{where}.facts (not JSON: a value is NaN, infinite or not data)")
    if report is not None and not (report.layers or report.summary or report.facts):
        if raw:
            dropped.append(f"{where}: nothing valid left")
        report = None
    return report, error, cap(dropped)
