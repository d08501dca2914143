"""Budgeted runs (``--budget``) and adaptive runs (``--precision``): passes go where they
narrow the index's interval most, and passes of different tests are interleaved.

Per copies setting, the System Benchmarks Index is a geometric mean over the ``k`` tests,
so in log space it is the mean of the tests' mean logs and its variance is
``sum_i s_i² / (m_i k²)`` (``s_i`` the spread of test ``i``'s pass logs, ``m_i`` its
passes). A pass of test ``i`` costs ``c_i`` seconds (pass, pause, start-up). Minimizing the
summed variance of the sections' indexes for the seconds left is the classic optimal
allocation (``m_i`` proportional to ``s_i / sqrt(c_i)``); :func:`allocate` does it in whole
passes, greedily: the next pass goes to the test whose variance falls most per second.

The run is: a pilot of :data:`PILOT_PASSES` passes per (copies, test), round-robin in a
shuffled order per round; then batches, each a share of what :func:`allocate` plans for the
time left, run in rounds of shuffled order (:func:`interleave`), re-planned after each
batch with the spreads measured so far. So a slow drift or a change of regime of the
machine lands on every test alike. Budgeted mode stops when the next pass would not fit in
the budget; adaptive mode also stops once every section's index interval is within the
target precision, and never spends more than the standard run would.

Pass lengths are :data:`virtbench.workloads.catalog.BUDGET_PASS_SECONDS` (the shortest
pass without short-pass bias, measured by ``bench/pass_length.py``).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence

from virtbench.workloads.catalog import WorkloadSpec, budget_pass_seconds

PILOT_PASSES = 2
"""Passes every (copies, test) gets before any allocation: a first spread (3 passes would
keep 2 as well, UnixBench dropping the worst third)."""
MIN_LOG_SD = 0.002
"""Floor on a test's spread for allocation: a pilot of near-identical passes must not make a
test look exact (its spread is an estimate from 2 kept passes)."""
PRIOR_DF = 2.0
"""Degrees of freedom the pooled spread counts for in :func:`shrunk_spreads`."""
BATCH_FRACTION = 0.3
"""Share of the planned passes run before re-planning with the spreads measured since."""
START_OVERHEAD = 0.3
"""Seconds a pass costs beyond its length and pause (start, gate, reap, parse), nominal."""
PER_COPY_OVERHEAD = 0.02
"""Seconds each further copy adds to a pass's start-up, nominal."""
FIXED_OVERHEAD = 5.0
"""Seconds a run needs outside its passes (build check, environment record, detection,
saving), counted in the minimum budget."""
FINISH_RESERVE = 2.0
"""Seconds kept free at the end for the summaries, the report and the interpreter's exit
(plus twice the longest save seen during the run, for the last save)."""
CHECKPOINT_SECONDS = 15.0
"""Budgeted and adaptive runs save their document at most this often (and only when passes
ran since the last save)."""


BUDGET_SETTLE_FRACTION = 0.1
BUDGET_MIN_SETTLE = 0.3


def budget_settle(duration: float) -> float:
    """Seconds of sync-and-rest before a pass of ``duration`` s (budgeted and adaptive
    modes): a tenth of the pass, at least 0.3 s. The sync still writes out the previous
    pass's dirty pages, which is what keeps passes independent."""
    return max(BUDGET_MIN_SETTLE, duration * BUDGET_SETTLE_FRACTION)


def pass_cost(spec: WorkloadSpec, copies: int) -> float:
    """Nominal wall seconds of one budgeted pass of ``spec`` with ``copies`` copies."""
    d = budget_pass_seconds(spec)
    return d + budget_settle(d) + START_OVERHEAD + PER_COPY_OVERHEAD * (copies - 1)


def minimum_budget(tests: Sequence[WorkloadSpec], copies: Sequence[int]) -> float:
    """The smallest budget for the selection: the pilot passes of every (copies, test)
    pair plus :data:`FIXED_OVERHEAD`."""
    return FIXED_OVERHEAD + FINISH_RESERVE + PILOT_PASSES * math.fsum(
        pass_cost(t, c) for c in copies for t in tests)


def inverse(n: int) -> float:
    """``1 / n``: a mean's variance per unit of spread, the textbook allocation."""
    return 1.0 / n


_PENALTY: dict[int, float] = {}


def t_penalized(n: int) -> float:
    """The squared half-width of a 95% interval from ``n`` passes, per unit of spread:
    UnixBench's rule keeps ``m`` of them (``n - n // 3``; smoothed here to ``(2n + 1) / 3``
    so that every further pass counts) and the interval is ``t(m - 1) s / sqrt(m)``, so
    ``t(m - 1)² / m``. With the t factor, a test with few passes (t = 12.7 at 2 kept) is
    expensive for the interval and gets passes first, where ``1/n`` alone would leave a test
    whose pilot passes happened to agree at its pilot. Decreasing and convex in ``n``."""
    if n not in _PENALTY:
        from virtbench.analysis.student_t import t_ppf

        m = (2.0 * n + 1.0) / 3.0
        _PENALTY[n] = t_ppf(0.975, max(m - 1.0, 0.5)) ** 2 / m
    return _PENALTY[n]


def allocate(weights: Sequence[float], costs: Sequence[float], have: Sequence[int],
             seconds: float, value: Callable[[int], float] = inverse) -> list[int]:
    """Extra passes per unit for ``seconds`` more.

    Unit ``i`` contributes ``weights[i] * value(n_i)`` to the variance being minimized
    (``weights[i] = s_i² / k²`` for the index of its section; ``value`` is ``1/n`` for a
    mean, :func:`t_penalized` for the width of its interval), has ``have[i] >= 1`` passes
    and costs ``costs[i] > 0`` seconds a pass. Greedy in whole passes: the next pass goes to
    the unit whose contribution falls most per second,
    ``w (value(n) - value(n + 1)) / c`` (``w / (n (n + 1)) / c`` for ``1/n``); a unit whose
    pass no longer fits in the seconds left is dropped."""
    if not (len(weights) == len(costs) == len(have)):
        raise ValueError("one weight, cost and pass count per unit")
    if any(c <= 0 for c in costs) or any(n < 1 for n in have):
        raise ValueError("costs must be positive and every unit needs a pass already")

    def gain(i: int, n: int) -> float:
        return weights[i] * (value(n) - value(n + 1)) / costs[i]

    extra = [0] * len(weights)
    heap = [(-gain(i, n), i) for i, n in enumerate(have)]
    heapq.heapify(heap)
    left = seconds
    while heap:
        _, i = heapq.heappop(heap)
        if costs[i] > left:
            continue
        extra[i] += 1
        left -= costs[i]
        heapq.heappush(heap, (-gain(i, have[i] + extra[i]), i))
    return extra


def shrunk_spreads(spreads: Sequence[float], dfs: Sequence[int],
                   prior_df: float = PRIOR_DF) -> list[float]:
    """Each unit's spread shrunk toward the pooled one: ``(df s² + d0 s_pool²) / (df + d0)``
    (``d0 = prior_df``), floored at :data:`MIN_LOG_SD`. A pilot's spread has one degree of
    freedom and can be far too small by chance; the pooled spread of all tests tempers it
    until the test's own passes outweigh it."""
    if not spreads:
        return []
    total_df = sum(dfs)
    pooled = (math.fsum(d * s * s for s, d in zip(spreads, dfs, strict=True)) / total_df
              if total_df else 0.0)
    return [max(MIN_LOG_SD, math.sqrt((d * s * s + prior_df * pooled) / (d + prior_df)))
            for s, d in zip(spreads, dfs, strict=True)]


def interleave(counts: Sequence[int], rng: random.Random) -> list[int]:
    """An order of passes in which unit ``i`` appears ``counts[i]`` times: rounds in which
    every unit with passes left runs once, each round in a shuffled order (so no test always
    runs first or after the same neighbour)."""
    left = list(counts)
    order: list[int] = []
    while any(n > 0 for n in left):
        rnd = [i for i, n in enumerate(left) if n > 0]
        rng.shuffle(rnd)
        order += rnd
        for i in rnd:
            left[i] -= 1
    return order
