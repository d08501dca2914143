"""Welch's unequal-variance t-test for two independent samples (A vs B).

The one Welch test: ``virtbench tune`` uses :func:`welch` to say whether new settings changed an
experiment's main figure; ``virtbench compare`` uses :func:`welch_log` (the same test on
logarithms) for the ratio of two runs' geometric means.
Computed directly (not ``scipy.stats.ttest_ind``) so that degenerate samples — identical
values, a single value — give defined answers instead of NaN and warnings.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class WelchResult:
    mean_a: float
    mean_b: float
    sd_a: float | None
    sd_b: float | None
    n_a: int
    n_b: int
    difference: float
    """``mean_b - mean_a``."""
    difference_pct: float | None
    """``difference / mean_a * 100`` (``None`` when ``mean_a`` is 0)."""
    t: float | None
    df: float | None
    p_value: float | None
    """Two-sided; ``None`` with fewer than two values on a side."""
    ci_low: float | None
    ci_high: float | None
    """Confidence interval of ``difference`` at ``level``."""
    level: float = 0.95

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value is not None and self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> WelchResult:
    if not a or not b:
        raise ValueError("Welch's test needs at least one value on each side")
    ma, mb = math.fsum(a) / len(a), math.fsum(b) / len(b)
    diff = mb - ma
    pct = diff / ma * 100 if ma != 0 else None
    if len(a) < 2 or len(b) < 2:
        return WelchResult(ma, mb, None, None, len(a), len(b), diff, pct, None, None, None,
                           None, None, level)
    va, vb = statistics.variance(a), statistics.variance(b)
    qa, qb = va / len(a), vb / len(b)
    se = math.sqrt(qa + qb)
    if se == 0.0:
        df = float(len(a) + len(b) - 2)
        p = 1.0 if diff == 0 else 0.0
        # no spread at all: t is infinite (or undefined); it is left out (JSON has no inf)
        return WelchResult(ma, mb, 0.0, 0.0, len(a), len(b), diff, pct, None, df, p, diff,
                           diff, level)
    from virtbench.analysis.student_t import t_ppf, t_sf

    df = (qa + qb) ** 2 / ((qa * qa / (len(a) - 1) if qa else 0.0)
                           + (qb * qb / (len(b) - 1) if qb else 0.0))
    t = diff / se
    p = 2 * t_sf(abs(t), df)
    half = t_ppf(0.5 + level / 2, df) * se
    return WelchResult(ma, mb, math.sqrt(va), math.sqrt(vb), len(a), len(b), diff, pct, t, df,
                       p, diff - half, diff + half, level)


def welch_log(base: Sequence[float], other: Sequence[float], level: float = 0.95
              ) -> tuple[float, float, float, float] | None:
    """(ratio, ci_low, ci_high, p) of geometric means ``other / base`` from their samples,
    by :func:`welch` on logarithms; None with fewer than two positive samples a side."""
    if len(base) < 2 or len(other) < 2 or min(*base, *other) <= 0:
        return None
    w = welch([math.log(x) for x in base], [math.log(x) for x in other], level)
    assert w.p_value is not None and w.ci_low is not None and w.ci_high is not None
    return math.exp(w.difference), math.exp(w.ci_low), math.exp(w.ci_high), w.p_value
