"""``virtbench compare --fail-above P%``: the regression gate of a CI job (docs/compare.md).

A run other than the baseline **fails the gate** when, in a section both runs have:

* a test is **worse beyond noise** (Welch's t-test on the logarithms of the kept pass
  scores, ``p < 0.05``; the same test ``compare`` marks ``- worse``) **and** its ratio to the
  baseline is below ``1 − P/100``; or
* the **index** (geometric mean of the per-test index ratios) is below ``1 − P/100`` **and**
  the tests got worse consistently: a one-sample t-test on the logarithms of the per-test
  index ratios (the tests as the sample, ``k − 1`` degrees of freedom) gives ``p < 0.05``.
  This needs no passes, so it also judges imported UnixBench reports.

Tests without passes on both sides cannot be tested (``-? untested``): they never fail the
gate on their own; the gate lists them so the job log says what was not judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from virtbench.analysis.compare import ALPHA, Comparison, SectionComparison


@dataclass
class GateResult:
    threshold: float  # P, a percentage
    failures: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def to_dict(self) -> dict[str, object]:
        return {"fail_above_pct": self.threshold, "failed": self.failed,
                "failures": self.failures, "untested": self.untested}


def index_p_value(sc: SectionComparison, i: int) -> float | None:
    """One-sided p of "run ``i`` is worse than the baseline" from its per-test index ratios
    (one-sample t-test of their logarithms against 0); None with fewer than 3 tests."""
    logs = [math.log(row.indexes[i] / row.indexes[0]) for row in sc.tests  # type: ignore[operator]
            if row.indexes[0] and row.indexes[i]]
    k = len(logs)
    if k < 3:
        return None
    mean = math.fsum(logs) / k
    var = math.fsum((x - mean) ** 2 for x in logs) / (k - 1)
    if var == 0:
        return 0.0 if mean < 0 else 1.0
    from virtbench.analysis.student_t import t_cdf

    return t_cdf(mean / math.sqrt(var / k), k - 1)


def gate(comp: Comparison, threshold_pct: float, letters: list[str]) -> GateResult:
    """Check every run against the baseline; ``letters`` name the runs as the table does."""
    res = GateResult(threshold=threshold_pct)
    limit = 1 - threshold_pct / 100
    for sc in comp.sections:
        where = _section(sc)
        for row in sc.tests:
            for i in range(1, len(comp.runs)):
                d = row.deltas[i]
                if d is None or d.ratio is None:
                    continue
                if d.change == "worse" and d.ratio < limit:
                    res.failures.append(
                        f"{where}: {row.name}: {letters[i]}/A = {d.ratio:.3f} "
                        f"({(1 - d.ratio) * 100:.1f}% worse, p={d.p_value:.3g})")
                elif d.change == "worse-untested" and d.ratio < limit:
                    res.untested.append(f"{where}: {row.name}: {letters[i]}/A = {d.ratio:.3f} "
                                        "(no passes to test)")
        for i in range(1, len(comp.runs)):
            g = sc.geomean_ratios[i]
            if g is None or g >= limit:
                continue
            p = index_p_value(sc, i)
            if p is not None and p < ALPHA:
                res.failures.append(f"{where}: index: {letters[i]}/A = {g:.3f} "
                                    f"({(1 - g) * 100:.1f}% worse over "
                                    f"{sc.geomean_tests[i]} tests, p={p:.3g})")
            else:
                res.untested.append(f"{where}: index: {letters[i]}/A = {g:.3f} "
                                    f"(not consistent across tests, p={_p(p)})")
    return res


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def _section(sc: SectionComparison) -> str:
    counts = sorted({c for c in sc.copies if c is not None})
    return f"{'/'.join(map(str, counts))} cop{'y' if counts == [1] else 'ies'}"
