"""Compare runs test by test against the first (the baseline). See docs/compare.md.

For every test present in the baseline's section and in the other run's matching section
(same number of copies):

* ``ratio`` = other score / baseline score (> 1 is better: every UnixBench score is a rate);
* when both runs kept at least two pass scores, Welch's t-test on the logarithms of the kept
  pass scores (the same passes the scores are the geometric means of) gives ``p`` and a 95%
  confidence interval of the ratio: ``exp(d ± t(0.975, df) · se)`` with ``d`` the difference
  of mean logs, ``se = sqrt(s1²/n1 + s2²/n2)`` and Welch–Satterthwaite ``df``;
* a change is **beyond noise** when ``p < 0.05`` and ``|ratio − 1| > 2%`` (both: a tiny
  but consistent difference is not worth a mark, nor is a large but noisy one);
* without passes (imported UnixBench reports keep only scores) there is no noise estimate:
  a change of 10% or more is marked ``untested`` (UnixBench's own pass-to-pass variation is
  typically 1–13%), anything smaller is not marked.

Per section, ``geomean_ratio`` is the geometric mean of the per-test index ratios over the
index tests both runs have (equal to the ratio of the index scores when all 12 are there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from virtbench.analysis.stats import geometric_mean, kept_scores
from virtbench.analysis.welch import welch_log
from virtbench.results.model import RunResult, Section, TestResult

ALPHA = 0.05
MIN_EFFECT = 0.02
UNTESTED_EFFECT = 0.10


@dataclass
class RunInfo:
    id: str
    label: str
    """A short name for tables: the labels, else the hostname, else the id."""
    source: str
    profile: str
    mode: str
    started: str
    hostname: str | None
    copies: list[int]


@dataclass
class Delta:
    """One run against the baseline for one test."""

    ratio: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    tested: bool = False
    """True when a significance test was possible (passes on both sides)."""
    change: str = "none"
    """``better``, ``worse`` (beyond noise), ``same`` (tested, within noise), ``none``
    (untested and under 10%), ``better-untested``/``worse-untested`` (no passes, ≥ 10%),
    ``missing`` (test absent or failed on one side)."""


@dataclass
class TestRow:
    __test__ = False

    test: str
    name: str
    unit: str
    scores: list[float | None]
    indexes: list[float | None]
    deltas: list[Delta | None]
    """``None`` for the baseline itself."""


@dataclass
class SectionComparison:
    copies: list[int | None]
    """Copies of the compared section in each run (None: the run has no such section)."""
    tests: list[TestRow] = field(default_factory=list)
    index_scores: list[float | None] = field(default_factory=list)
    index_score_ratios: list[float | None] = field(default_factory=list)
    geomean_ratios: list[float | None] = field(default_factory=list)
    """Geometric mean of per-test index ratios vs the baseline (None for the baseline)."""
    geomean_tests: list[int] = field(default_factory=list)


@dataclass
class Comparison:
    runs: list[RunInfo]
    sections: list[SectionComparison]
    warnings: list[str]
    rule: str = (f"beyond noise: Welch t-test on log pass scores p < {ALPHA} and "
                 f"|ratio - 1| > {MIN_EFFECT:.0%}; without passes: |ratio - 1| >= "
                 f"{UNTESTED_EFFECT:.0%} marked untested")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- statistics ------------------------------------------------------------------------------
def _kept(t: TestResult) -> list[float]:
    return kept_scores([p.score for p in t.passes]) if t.passes else []


def _ok(t: TestResult | None) -> bool:
    return t is not None and t.status == "ok" and t.score is not None and t.score > 0


def delta(base: TestResult | None, other: TestResult | None) -> Delta:
    if base is None or other is None or not _ok(base) or not _ok(other):
        return Delta(ratio=None, change="missing")
    assert base.score is not None and other.score is not None
    ratio = other.score / base.score
    w = welch_log(_kept(base), _kept(other))
    if w is None:
        change = "none"
        if abs(ratio - 1) >= UNTESTED_EFFECT:
            change = "better-untested" if ratio > 1 else "worse-untested"
        return Delta(ratio=ratio, change=change)
    _r, lo, hi, p = w
    if p < ALPHA and abs(ratio - 1) > MIN_EFFECT:
        change = "better" if ratio > 1 else "worse"
    else:
        change = "same"
    return Delta(ratio=ratio, ci_low=lo, ci_high=hi, p_value=p, tested=True, change=change)


# ---- pairing and warnings --------------------------------------------------------------------
def _pair_sections(runs: list[RunResult], warnings: list[str]
                   ) -> list[list[Section | None]]:
    base = runs[0]
    pairs: list[list[Section | None]] = []
    for s in base.sections:
        row: list[Section | None] = [s]
        for r in runs[1:]:
            match = r.section(s.copies)
            if match is None and s.copies > 1 and s is max(base.sections,
                                                          key=lambda x: x.copies):
                multi = [x for x in r.sections if x.copies > 1]
                if multi and base.section(max(multi, key=lambda x: x.copies).copies) is None:
                    match = max(multi, key=lambda x: x.copies)
                    warnings.append(
                        f"run {r.id}: comparing its {match.copies}-copy section with the "
                        f"baseline's {s.copies}-copy section (each run's all-CPU section)")
            row.append(match)
        pairs.append(row)
    return pairs


def _describe(r: RunResult) -> str:
    if r.labels:
        return ",".join(f"{k}={v}" for k, v in sorted(r.labels.items()))
    return r.environment.hostname or r.id


def check_comparable(runs: list[RunResult]) -> list[str]:
    """Warnings about differences that make ratios mean something else than intended."""
    out: list[str] = []
    base = runs[0]
    for r in runs[1:]:
        who = f"run {r.id} vs baseline {base.id}"
        if r.id == base.id:
            out.append(f"run {r.id} is the baseline itself (named twice, e.g. by an id and a "
                       "label): its ratios are 1 by construction")
        if r.profile != base.profile:
            out.append(f"{who}: different profiles ({r.profile} vs {base.profile}): the "
                       "workloads were built or scored differently")
        if r.mode != base.mode:
            out.append(f"{who}: different modes ({r.mode} vs {base.mode})")
        if [s.copies for s in r.sections] != [s.copies for s in base.sections]:
            out.append(f"{who}: different copies ({_copies(r)} vs {_copies(base)})")
        be, re_ = base.environment, r.environment
        if be.compiler and re_.compiler and (be.compiler, be.compiler_version) != (
                re_.compiler, re_.compiler_version):
            out.append(f"{who}: different compilers ({re_.compiler} {re_.compiler_version} vs "
                       f"{be.compiler} {be.compiler_version})")
        if be.cflags and re_.cflags and be.cflags != re_.cflags:
            out.append(f"{who}: different compiler flags ({' '.join(re_.cflags)} vs "
                       f"{' '.join(be.cflags)})")
        if be.workload_hash and re_.workload_hash and be.workload_hash != re_.workload_hash:
            out.append(f"{who}: different workload sources (sha256 {re_.workload_hash[:12]} vs "
                       f"{be.workload_hash[:12]})")
        if (r.source == "native") != (base.source == "native"):
            out.append(f"{who}: one run is imported ({r.source} vs {base.source}): its compiler "
                       "and flags are unknown")
    for r in runs:
        if not r.comparable:
            out.append(f"run {r.id} is marked not comparable ({r.mode} mode): its numbers "
                       "are not UnixBench-equivalent")
    return out


def _copies(r: RunResult) -> str:
    return ",".join(str(s.copies) for s in r.sections) or "none"


# ---- the comparison --------------------------------------------------------------------------
def compare(runs: list[RunResult]) -> Comparison:
    if len(runs) < 2:
        raise ValueError("compare needs at least two runs")
    warnings = check_comparable(runs)
    infos = [RunInfo(id=r.id, label=_describe(r), source=r.source, profile=r.profile,
                     mode=r.mode, started=r.started, hostname=r.environment.hostname,
                     copies=[s.copies for s in r.sections]) for r in runs]
    sections: list[SectionComparison] = []
    for pair in _pair_sections(runs, warnings):
        base = pair[0]
        assert base is not None
        sc = SectionComparison(copies=[s.copies if s else None for s in pair])
        names: list[tuple[str, str, str]] = [(t.test, t.name, t.unit) for t in base.tests]
        for s in pair[1:]:
            for t in s.tests if s else []:
                if t.test not in {n[0] for n in names}:
                    names.append((t.test, t.name, t.unit))
        for test_id, name, unit in names:
            tests = [s.test(test_id) if s else None for s in pair]
            sc.tests.append(TestRow(
                test=test_id, name=name, unit=unit,
                scores=[t.score if _ok(t) and t else None for t in tests],
                indexes=[t.index if _ok(t) and t else None for t in tests],
                deltas=[None] + [delta(tests[0], t) for t in tests[1:]],
            ))
        sc.index_scores = [s.index_score if s else None for s in pair]
        b_score = sc.index_scores[0]
        sc.index_score_ratios = [None]
        sc.index_score_ratios.extend(
            (x / b_score) if x is not None and b_score else None for x in sc.index_scores[1:])
        sc.geomean_ratios = [None]
        sc.geomean_tests = [0]
        for i in range(1, len(pair)):
            ratios = [row.indexes[i] / row.indexes[0] for row in sc.tests  # type: ignore[operator]
                      if row.indexes[0] and row.indexes[i]]
            sc.geomean_ratios.append(geometric_mean(ratios) if ratios else None)
            sc.geomean_tests.append(len(ratios))
        sections.append(sc)
    return Comparison(runs=infos, sections=sections, warnings=warnings)
