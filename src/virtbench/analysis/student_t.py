"""Student's t distribution for any real degrees of freedom (Welch's df are not integers):
the tail probability and the quantile, in pure Python.

virtbench needs only these two numbers (p-values and confidence intervals); importing scipy
for them cost about a second of start-up. The tail comes from the regularized incomplete beta
function, ``P(T > t) = I_x(df/2, 1/2) / 2`` with ``x = df / (df + t²)``, evaluated by its
continued fraction (modified Lentz); the quantile inverts it by Newton steps inside a bisection
bracket. tests/test_student_t.py checks both against values computed with scipy 1.17.
"""

from __future__ import annotations

import math

_EPS = 1e-16
_TINY = 1e-300


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b): 1 + d1/(1 + d2/(1 + ...)), modified Lentz."""
    f, c, d = 1.0, 1.0, 0.0
    for m in range(1, 10_000):
        k = (m - 1) // 2
        if m % 2:  # d_{2k+1}
            num = -(a + k) * (a + b + k) * x / ((a + 2 * k) * (a + 2 * k + 1))
        else:  # d_{2k}, k >= 1
            k = m // 2
            num = k * (b - k) * x / ((a + 2 * k - 1) * (a + 2 * k))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + num / (c if abs(c) > _TINY else _TINY)
        step = c * d
        f *= step
        if abs(step - 1.0) < _EPS:
            break
    return f


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0, 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (a * math.log(x) + b * math.log1p(-x)
                 + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) / (a * _betacf(a, b, x))
    return 1.0 - math.exp(log_front) / (b * _betacf(b, a, 1.0 - x))


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` > 0 degrees of freedom."""
    if df <= 0 or math.isnan(t) or math.isnan(df):
        raise ValueError(f"t_sf: bad arguments t={t}, df={df}")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """P(T <= t)."""
    return t_sf(-t, df)


def t_pdf(t: float, df: float) -> float:
    return math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
                    - 0.5 * math.log(df * math.pi) - (df + 1) / 2 * math.log1p(t * t / df))


def t_ppf(q: float, df: float) -> float:
    """The quantile: the t with P(T <= t) = q, for 0 < q < 1."""
    if not 0.0 < q < 1.0 or df <= 0:
        raise ValueError(f"t_ppf: bad arguments q={q}, df={df}")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    # Upper half: solve t_sf(t) = 1 - q (no cancellation in the tail).
    target = 1.0 - q
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > target:
        lo, hi = hi, hi * 2.0
        if hi > 1e300:
            return math.inf
    t = (lo + hi) / 2.0
    for _ in range(200):
        err = t_sf(t, df) - target  # decreasing in t
        if err > 0:
            lo = t
        else:
            hi = t
        if err == 0 or hi - lo <= 4 * _EPS * max(1.0, abs(t)):
            break
        step = err / t_pdf(t, df)  # Newton: sf' = -pdf
        nxt = t + step
        t = nxt if lo < nxt < hi else (lo + hi) / 2.0
    return t
