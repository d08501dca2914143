"""The scheduler and its statistics, driven by a fake executor (nothing is timed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from virtbench.analysis import stats
from virtbench.results.model import RunResult
from virtbench.runner.budget import PILOT_PASSES
from virtbench.runner.executor import CopyOutcome, FakeExecutor
from virtbench.runner.suite import (
    SuiteConfig,
    SuiteRunner,
    plan_for,
    select_copies,
)
from virtbench.workloads.catalog import CATALOG, INDEX_TESTS, select


def ok(count: float, elapsed: float, timebase: int = 1, unit: str = "lps") -> CopyOutcome:
    return CopyOutcome(f"COUNT|{count}|{timebase}|{unit}|{elapsed}\n", "", 0, elapsed)


def _runner(tmp_path: Path, tests: list[str], copies: list[int], script: object,
            mode: str = "standard", precision: float | None = None,
            budget: float | None = None) -> tuple[SuiteRunner, FakeExecutor, list[int]]:
    ex = FakeExecutor(script)  # type: ignore[arg-type]
    saves: list[int] = []
    cfg = SuiteConfig(tests=select(tests), copies=copies, mode=mode, precision=precision,
                      budget=budget, tmpdir=tmp_path, bin_dir=tmp_path)
    run = RunResult(profile="unixbench-6", mode=mode)  # type: ignore[arg-type]
    return SuiteRunner(cfg, ex, run, save=lambda r: saves.append(len(r.sections))), ex, saves


def test_multi_copy_pass_is_sum_of_counts_over_mean_time(tmp_path: Path) -> None:
    # copy 0: 1000 loops in 10 s, copy 1: 3000 loops in 10 s -> 400 lps per pass
    def script(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        return ok(1000 * (1 + 2 * copy) * (1 + pass_index / 100), 10.0)

    runner, ex, _ = _runner(tmp_path, ["pipe"], [2], script)
    run = runner.execute()
    t = run.sections[0].tests[0]
    assert len(ex.calls) == 10 and all(len(c) == 2 for c in ex.calls)
    expected = [4000 * (1 + i / 100) / 10 for i in range(10)]
    assert [p.score for p in t.passes] == pytest.approx(expected)
    assert t.samples == 7
    assert t.score == pytest.approx(stats.geometric_mean(sorted(expected)[3:]))
    assert t.index == pytest.approx(t.score / 12440.0 * 10)
    assert t.ci is not None and t.ci.low < t.score < t.ci.high
    assert run.status == "complete"


def test_full_index_score_is_geometric_mean_of_twelve(tmp_path: Path) -> None:
    def script(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        spec = CATALOG[ids[pass_index // 2]]  # quick mode: 2 passes per test
        # every test scores exactly 20x its baseline -> index 200 each, overall 200
        base = spec.baseline or 1.0
        if spec.timebase == 0:
            return ok(base * 20, 9.0, 0, spec.unit)
        return ok(base * 20 * 5 / spec.timebase, 5.0, spec.timebase, spec.unit)

    ids = [s.id for s in select(["index"])]  # run order
    runner, _, saves = _runner(tmp_path, ["index"], [1], script, mode="quick")
    run = runner.execute()
    sec = run.sections[0]
    assert [t.test for t in sec.tests] == ids and sorted(ids) == sorted(INDEX_TESTS)
    assert all(t.index == pytest.approx(200.0) for t in sec.tests)
    assert sec.index_tests == 12
    assert sec.index_score == pytest.approx(200.0)
    assert len(saves) == 14  # at creation, after each test, and once at the end


def test_failed_workload_marks_test_and_others_continue(tmp_path: Path) -> None:
    def script(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        if "syscall" in argv[0]:
            return CopyOutcome("", "syscall: boom\n", 3, 0.1)
        if "pipe" in argv[0]:
            return CopyOutcome("garbage\n", "", 0, 0.1)
        return ok(100.0, 1.0)

    runner, _, _ = _runner(tmp_path, ["syscall", "pipe", "dhry2reg"], [1], script, mode="quick")
    run = runner.execute()
    by_id = {t.test: t for t in run.sections[0].tests}
    assert by_id["syscall"].status == "failed"
    assert "exit status 3" in (by_id["syscall"].error or "")
    assert "syscall: boom" in (by_id["syscall"].error or "")
    assert by_id["pipe"].status == "failed"
    assert "unreadable workload output" in (by_id["pipe"].error or "")
    assert by_id["dhry2reg"].status == "ok" and by_id["dhry2reg"].score == pytest.approx(100.0)
    assert run.status == "partial"
    assert run.sections[0].index_score is None


def test_adaptive_stops_when_the_index_interval_reaches_the_precision(tmp_path: Path) -> None:
    # identical passes: the interval is the point after the pilot, so adaptive mode stops
    runner, ex, _ = _runner(tmp_path, ["dhry2reg", "pipe"], [1], lambda a, c, p: ok(1000.0, 1.0),
                            mode="adaptive", precision=0.02)
    section = runner.execute().sections[0]
    assert len(ex.calls) == 2 * PILOT_PASSES
    for t in section.tests:
        assert t.stop_reason == "index within ±2%"
        assert t.duration == plan_for(CATALOG[t.test], "adaptive").duration == 2.0
        assert t.allocation is not None and t.allocation.passes == PILOT_PASSES


def test_adaptive_never_spends_more_than_the_standard_time(tmp_path: Path) -> None:
    def noisy(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        return ok(1000.0 * (1.5 if pass_index % 2 else 1.0), 1.0)

    runner, ex, _ = _runner(tmp_path, ["dhry2reg"], [1], noisy, mode="adaptive",
                            precision=0.001)
    t = runner.execute().sections[0].tests[0]
    # standard: 10 passes of 10 s and 3 s pauses = 130 s; a 2 s pass costs 2.6 s nominal
    # (2 + 0.3 pause + 0.3 start), and 2 s are kept for the end: 49 passes start before
    # 128 s - 2.6 s
    assert len(ex.calls) == 49
    assert t.stop_reason == "standard mode's time spent before the index reached ±0.1%"


def test_interrupt_keeps_measured_passes(tmp_path: Path) -> None:
    def script(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        if pass_index == 3:
            raise KeyboardInterrupt
        return ok(500.0, 1.0)

    runner, _, saves = _runner(tmp_path, ["pipe", "syscall"], [1], script)
    with pytest.raises(KeyboardInterrupt):
        runner.execute()
    assert runner.run.status == "interrupted"
    interrupted = runner.run.sections[0].tests[0]
    assert interrupted.status == "interrupted"
    assert len(interrupted.passes) == 3 and interrupted.score == pytest.approx(500.0)
    assert runner.run.finished is not None
    assert saves  # saved on the way out
    assert list(tmp_path.glob("virtbench-*")) == []  # work dirs removed


def test_default_copies_follow_cpu_count() -> None:
    assert select_copies(None, 1) == [1]
    assert select_copies(None, 8) == [1, 8]
    assert select_copies([4, 1, 4], 2) == [4, 1]
    assert math.isfinite(plan_for(CATALOG["shell8"], "quick").duration)


def test_passes_without_a_completed_loop_fail_the_test_with_a_reason(tmp_path: Path) -> None:
    def script(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        return ok(0.0, 2.0, 60, "lpm")

    runner, _, _ = _runner(tmp_path, ["shell8"], [1], script, mode="quick")
    t = runner.execute().sections[0].tests[0]
    assert t.status == "failed" and t.score is None
    assert t.error == ("2 of 2 passes completed no loop: passes too short for this many copies "
                       "(use standard mode)")


def test_one_zero_pass_among_many_is_dropped_as_the_worst(tmp_path: Path) -> None:
    def script(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        return ok(0.0 if pass_index == 0 else 30.0, 60.0, 60, "lpm")

    runner, _, _ = _runner(tmp_path, ["shell1"], [1], script)  # 3 passes, worst one dropped
    t = runner.execute().sections[0].tests[0]
    assert t.status == "ok" and t.score == pytest.approx(30.0) and t.samples == 2


def test_index_runs_in_unixbench_order_syscall_before_the_shell_tests() -> None:
    # ./Run's order; the report sorts by name, which puts System Call Overhead last
    assert [s.id for s in select(["index"])] == [
        "dhry2reg", "whetstone-double", "execl", "fstime", "fsbuffer", "fsdisk",
        "pipe", "context1", "spawn", "syscall", "shell1", "shell8",
    ]


def test_every_pass_is_preceded_by_a_settle_scaled_to_the_mode(tmp_path: Path) -> None:
    def script(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        return ok(1000 + pass_index, 10.0)

    for mode, expected in (("standard", 3.0), ("adaptive", 0.3), ("budget", 0.3), ("quick", 0.0)):
        runner, ex, _ = _runner(tmp_path, ["pipe"], [1], script, mode=mode, precision=0.5,
                                budget=30.0)
        runner.execute()
        assert len(ex.settles) == len(ex.calls) > 0
        assert ex.settles == pytest.approx([expected] * len(ex.calls)), mode


def test_eta_counts_the_settle_pauses(tmp_path: Path) -> None:
    from virtbench.runner.suite import estimate_seconds

    cfg = SuiteConfig(tests=select(["pipe", "spawn"]), copies=[1, 2], tmpdir=tmp_path)
    # pipe 10 x (10 + 3) s, spawn 3 x (30 + 3) s, twice
    assert estimate_seconds(cfg) == pytest.approx(2 * (10 * 13 + 3 * 33))
