"""UnixBench arithmetic against hand-computed cases and the shared reference report."""

from __future__ import annotations

import math
import re

import pytest

from conftest import DATA, SHARED
from virtbench.analysis import stats

BASELINES = {
    "Dhrystone 2 using register variables": 116700.0,
    "Double-Precision Whetstone": 55.0,
    "Execl Throughput": 43.0,
    "File Copy 1024 bufsize 2000 maxblocks": 3960.0,
    "File Copy 256 bufsize 500 maxblocks": 1655.0,
    "File Copy 4096 bufsize 8000 maxblocks": 5800.0,
    "Pipe Throughput": 12440.0,
    "Pipe-based Context Switching": 4000.0,
    "Process Creation": 126.0,
    "Shell Scripts (1 concurrent)": 42.4,
    "Shell Scripts (8 concurrent)": 6.0,
    "System Call Overhead": 15000.0,
}


def test_geometric_mean_hand_computed() -> None:
    assert stats.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert stats.geometric_mean([1.0, 10.0, 100.0]) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        stats.geometric_mean([])
    with pytest.raises(ValueError):
        stats.geometric_mean([1.0, 0.0])


def test_drop_worst_third_ten_passes_keeps_seven() -> None:
    passes = [10.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 6.0, 5.0, 4.0]
    assert stats.kept_scores(passes) == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    score, samples = stats.unixbench_score(passes)
    assert samples == 7
    assert score == pytest.approx((4 * 5 * 6 * 7 * 8 * 9 * 10) ** (1 / 7))


def test_drop_worst_third_three_passes_keeps_two() -> None:
    score, samples = stats.unixbench_score([100.0, 50.0, 400.0])
    assert samples == 2
    assert score == pytest.approx(200.0)  # sqrt(100 * 400)


def test_pass_score_sums_counts_over_mean_time() -> None:
    # two copies: 1000 loops in 10 s and 800 loops in 8 s -> 1800 / 9 s
    assert stats.pass_score([1000, 800], [10.0, 8.0], 1) == pytest.approx(200.0)
    # shell tests: time base 60 (loops per minute)
    assert stats.pass_score([30], [60.0], 60) == pytest.approx(30.0)
    assert stats.pass_score([15, 15], [30.0, 30.0], 60) == pytest.approx(60.0)
    # time base 0: counts are rates already (MWIPS, KBps): they add
    assert stats.pass_score([7000.0, 6000.0], [10.0, 10.0], 0) == pytest.approx(13000.0)


def test_index_and_overall() -> None:
    assert stats.index_value(116700.0, 116700.0) == pytest.approx(10.0)
    assert stats.index_value(23617050.2, 116700.0) == pytest.approx(2023.7, abs=0.05)
    assert stats.index_score([10.0, 1000.0]) == pytest.approx(100.0)


def test_reference_report_index_recomputed_from_raw_results() -> None:
    # tests/data carries a copy so the test travels with the project; ../shared/ is checked
    # against it where it exists.
    text = (DATA / "unixbench-centos6-xen-pv.txt").read_text(encoding="utf-8")
    shared = SHARED / "reference" / "unixbench-centos6-xen-pv.txt"
    if shared.is_file():
        assert shared.read_text(encoding="utf-8") == text
    section = text.split("System Benchmarks Index Values")[1]
    indexes = []
    for name, baseline in BASELINES.items():
        m = re.search(re.escape(name) + r"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", section)
        assert m, name
        base, result, idx = (float(g) for g in m.groups())
        assert base == baseline
        mine = stats.index_value(result, baseline)
        assert mine == pytest.approx(idx, abs=0.051), name
        indexes.append(mine)
    overall = stats.index_score(indexes)
    reported = float(re.search(r"System Benchmarks Index Score\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    assert reported == 440.9
    assert overall == pytest.approx(reported, abs=0.051)


def test_t_log_interval_contains_geometric_mean_and_narrows() -> None:
    few = [95.0, 105.0, 100.0]
    many = few * 10
    lo1, hi1 = stats.t_log_interval(few)  # type: ignore[misc]
    lo2, hi2 = stats.t_log_interval(many)  # type: ignore[misc]
    g = stats.geometric_mean(few)
    assert lo1 < g < hi1
    assert lo2 < g < hi2
    assert (hi2 - lo2) < (hi1 - lo1)
    # hand check for n=2: t(0.975, 1) = 12.706
    _lo, hi = stats.t_log_interval([100.0, 100.0 * math.e**0.02])  # type: ignore[misc]
    mean = 0.01 + math.log(100.0)
    sem = math.sqrt(((0.01) ** 2 * 2) / 1 / 2)
    assert math.log(hi) == pytest.approx(mean + 12.7062 * sem, rel=1e-4)
    assert stats.t_log_interval([5.0]) is None
