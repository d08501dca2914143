"""Parse the result line a workload program prints.

Protocol (one line on stdout; when several are printed, the last ``COUNT|`` line wins)::

    COUNT|<count>|<timebase>|<unit>|<elapsed_seconds>

``elapsed`` is the program's own wall time on ``CLOCK_MONOTONIC`` over which ``count`` was
measured.  Time base 1: score = count / elapsed (lps).  60: score = count / (elapsed / 60)
(lpm).  0: count already is the rate (MWIPS, KBps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TIMEBASES = (0, 1, 60)


class WorkloadOutputError(ValueError):
    """A workload printed something that is not a valid result line."""


@dataclass(frozen=True)
class Sample:
    count: float
    timebase: int
    unit: str
    elapsed: float

    @property
    def rate(self) -> float:
        """The score of this sample: count per second, per minute, or count itself."""
        if self.timebase == 0:
            return self.count
        return self.count / (self.elapsed / self.timebase)


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise WorkloadOutputError(f"{what} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise WorkloadOutputError(f"{what} is not finite: {text!r}")
    return value


def parse_output(text: str) -> Sample:
    """The :class:`Sample` of the last ``COUNT|`` line in ``text``.

    Raises :class:`WorkloadOutputError` (a ``ValueError``) saying what is wrong.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("COUNT|")]
    if not lines:
        shown = text.strip().splitlines()[-1][:80] if text.strip() else ""
        raise WorkloadOutputError(
            f"no COUNT line in the output (last line: {shown!r})" if shown else "empty output"
        )
    line = lines[-1]
    fields = line.split("|")
    if len(fields) != 5:
        raise WorkloadOutputError(f"expected 5 '|'-separated fields, got {len(fields)}: {line!r}")
    _, count_s, timebase_s, unit, elapsed_s = fields
    count = _number(count_s, "count")
    if count < 0:
        raise WorkloadOutputError(f"count is negative: {count_s!r}")
    try:
        timebase = int(timebase_s)
    except ValueError:
        raise WorkloadOutputError(f"time base is not an integer: {timebase_s!r}") from None
    if timebase not in TIMEBASES:
        raise WorkloadOutputError(f"time base must be 0, 1 or 60, got {timebase}")
    if not unit or not unit.isprintable() or " " in unit:
        raise WorkloadOutputError(f"bad unit: {unit!r}")
    elapsed = _number(elapsed_s, "elapsed time")
    if elapsed <= 0:
        raise WorkloadOutputError(f"elapsed time must be > 0, got {elapsed_s!r}")
    return Sample(count=count, timebase=timebase, unit=unit, elapsed=elapsed)
