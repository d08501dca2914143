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
from collections.abc import Sequence

from virtbench.workloads.catalog import WorkloadSpec, budget_pass_seconds

PILOT_PASSES = 3
"""Passes every (copies, test) gets before any allocation: two kept for a first spread."""
MIN_LOG_SD = 0.002
"""Floor on a test's spread for allocation: a pilot of near-identical passes must not make a
test look exact (its spread is an estimate from 2 kept passes)."""
BATCH_FRACTION = 0.3
"""Share of the planned passes run before re-planning with the spreads measured since."""
START_OVERHEAD = 0.3
"""Seconds a pass costs beyond its length and pause (start, gate, reap, parse), nominal."""
PER_COPY_OVERHEAD = 0.02
"""Seconds each further copy adds to a pass's start-up, nominal."""
FIXED_OVERHEAD = 5.0
"""Seconds a run needs outside its passes (build check, environment record, detection,
saving), counted in the minimum budget."""
FINISH_RESERVE = 1.0
"""Seconds kept free at the end for the summaries and the last save."""


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


def allocate(weights: Sequence[float], costs: Sequence[float], have: Sequence[int],
             seconds: float) -> list[int]:
    """Extra passes per unit for ``seconds`` more.

    Unit ``i`` contributes ``weights[i] / n_i`` to the variance being minimized
    (``weights[i] = s_i² / k²`` for the index of its section), has ``have[i] >= 1`` passes
    and costs ``costs[i] > 0`` seconds a pass. Greedy in whole passes: the next pass goes to
    the unit whose contribution falls most per second, ``w / (n (n + 1)) / c``; a unit whose
    pass no longer fits in the seconds left is dropped."""
    if not (len(weights) == len(costs) == len(have)):
        raise ValueError("one weight, cost and pass count per unit")
    if any(c <= 0 for c in costs) or any(n < 1 for n in have):
        raise ValueError("costs must be positive and every unit needs a pass already")
    extra = [0] * len(weights)
    heap = [(-w / (n * (n + 1)) / c, i)
            for i, (w, c, n) in enumerate(zip(weights, costs, have, strict=True))]
    heapq.heapify(heap)
    left = seconds
    while heap:
        _, i = heapq.heappop(heap)
        if costs[i] > left:
            continue
        extra[i] += 1
        left -= costs[i]
        n = have[i] + extra[i]
        heapq.heappush(heap, (-weights[i] / (n * (n + 1)) / costs[i], i))
    return extra


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
