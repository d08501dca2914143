"""Statistics: UnixBench's arithmetic, exactly, plus confidence intervals.

UnixBench rules (see docs/statistics.md):

* a pass's score is the sum of its copies' counts divided by the mean of their elapsed
  times scaled by the time base (time base 0: the counts already are rates, so they add);
* a test's score is the geometric mean of its pass scores after sorting them and dropping
  the lowest ``floor(n/3)``;
* a test's index is ``score / baseline * 10``; the System Benchmarks Index Score is the
  geometric mean of the index values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def geometric_mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("geometric mean of no values")
    if any(v <= 0 for v in values):
        raise ValueError("geometric mean needs positive values")
    return math.exp(math.fsum(math.log(v) for v in values) / len(values))


def pass_score(counts: Sequence[float], elapsed: Sequence[float], timebase: int) -> float:
    """Score of one pass from its copies' counts and elapsed seconds."""
    if not counts or len(counts) != len(elapsed):
        raise ValueError("a pass needs one elapsed time per copy")
    total = math.fsum(counts)
    if timebase == 0:
        return total
    mean_time = math.fsum(elapsed) / len(elapsed)
    if mean_time <= 0:
        raise ValueError("elapsed time must be positive")
    return total / (mean_time / timebase)


def kept_scores(pass_scores: Sequence[float]) -> list[float]:
    """The pass scores UnixBench keeps: sorted, the lowest ``floor(n/3)`` dropped."""
    ordered = sorted(pass_scores)
    return ordered[len(ordered) // 3 :]


def unixbench_score(pass_scores: Sequence[float]) -> tuple[float, int]:
    """(score, samples): geometric mean of the kept pass scores and how many were kept."""
    kept = kept_scores(pass_scores)
    return geometric_mean(kept), len(kept)


def index_value(score: float, baseline: float) -> float:
    return score / baseline * 10.0


def index_score(index_values: Sequence[float]) -> float:
    return geometric_mean(index_values)


def t_log_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval for the geometric mean of ``values`` (computed on their logs).

    Returns ``None`` with fewer than two values. With identical values the interval is the
    single value.
    """
    if len(values) < 2 or any(v <= 0 for v in values):
        return None
    logs = [math.log(v) for v in values]
    n = len(logs)
    mean = math.fsum(logs) / n
    var = math.fsum((x - mean) ** 2 for x in logs) / (n - 1)
    sem = math.sqrt(var / n)
    from virtbench.analysis.student_t import t_ppf

    t = t_ppf(0.5 + level / 2, n - 1)
    return math.exp(mean - t * sem), math.exp(mean + t * sem)


def relative_half_width(low: float, high: float) -> float:
    mid = (low + high) / 2
    return (high - low) / 2 / mid if mid > 0 else math.inf


def log_variance_of_mean(values: Sequence[float]) -> tuple[float, int] | None:
    """(variance of the mean of ``log(values)``, its degrees of freedom): ``s² / n`` and
    ``n - 1``; ``None`` with fewer than two positive values."""
    if len(values) < 2 or any(v <= 0 for v in values):
        return None
    logs = [math.log(v) for v in values]
    n = len(logs)
    mean = math.fsum(logs) / n
    return math.fsum((x - mean) ** 2 for x in logs) / (n - 1) / n, n - 1


def mean_of_logs_interval(
    kept_per_test: Sequence[Sequence[float]], center: float, level: float = 0.95
) -> tuple[float, float] | None:
    """Interval for a geometric mean over tests (the System Benchmarks Index): ``center``
    is the point estimate; in log space it is the mean of the tests' mean logs, so its
    variance is the sum of theirs over ``k²``. The t quantile uses the Welch-Satterthwaite
    degrees of freedom. ``None`` when a test has fewer than two kept passes."""
    parts = [log_variance_of_mean(kept) for kept in kept_per_test]
    if not parts or center <= 0 or any(p is None for p in parts):
        return None
    k = len(parts)
    var = math.fsum(p[0] for p in parts if p) / (k * k)
    if var <= 0:
        return center, center
    denom = math.fsum(p[0] ** 2 / p[1] for p in parts if p and p[0] > 0)
    df = math.fsum(p[0] for p in parts if p) ** 2 / denom
    from virtbench.analysis.student_t import t_ppf

    half = t_ppf(0.5 + level / 2, df) * math.sqrt(var)
    return center * math.exp(-half), center * math.exp(half)
