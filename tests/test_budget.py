"""Budgeted runs (``run --budget``): duration parsing, the allocation arithmetic against
hand-computed cases, interleaving, the index interval, and a real run within its budget."""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from conftest import run_cli
from virtbench.analysis import stats
from virtbench.errors import UsageError
from virtbench.results import model
from virtbench.results.model import RunResult
from virtbench.runner import budget
from virtbench.runner.executor import CopyOutcome, FakeExecutor
from virtbench.runner.suite import SuiteConfig, SuiteRunner, check_budget
from virtbench.units import parse_duration
from virtbench.workloads.catalog import CATALOG, select


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("10m", 600), ("1h", 3600), ("1.5h", 5400), ("1h30m", 5400),
    ("2m30s", 150), ("10min", 600), (" 45S ", 45),
])
def test_durations_people_write(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("", "not a duration"), ("abc", "not a duration"), ("10x", "not a duration"),
    ("-5s", "not a duration"), ("0", "longer than 0 s"), ("0m", "longer than 0 s"),
    ("200h", "longer than a week"), ("1e3", "not a duration"),
])
def test_bad_durations_are_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_duration(text, "--budget")


def test_allocation_by_hand() -> None:
    # unit 0: weight 4, 1 s a pass; unit 1: weight 1, 4 s a pass; 2 passes each; 10 s left.
    # Gain of a pass: w / (n (n + 1)) / c. Unit 0 from n=2: 4/6, 4/12, 4/20, 4/30, 4/42,
    # 4/56, 4/72, 4/90 all beat unit 1's 1/6/4 = 0.0417 (8 passes, 8 s); then 4/110 = 0.036
    # loses to unit 1, whose 4 s no longer fit in the 2 s left: unit 0 gets the last 2.
    assert budget.allocate([4.0, 1.0], [1.0, 4.0], [2, 2], 10.0) == [10, 0]
    # equal units share equally; nothing fits in less than a pass
    assert budget.allocate([1.0, 1.0], [2.0, 2.0], [3, 3], 12.0) == [3, 3]
    assert budget.allocate([1.0, 1.0], [2.0, 2.0], [3, 3], 1.9) == [0, 0]


def test_allocation_approaches_the_optimum_for_large_budgets() -> None:
    # minimizing sum w_i / n_i under sum c_i n_i = T gives n_i proportional to
    # sqrt(w_i / c_i): here sqrt(4 / 1) : sqrt(1 / 4) = 4 : 1, i.e. n = (T/2, T/8)
    extra = budget.allocate([4.0, 1.0], [1.0, 4.0], [1, 1], 4000.0)
    n0, n1 = extra[0] + 1, extra[1] + 1
    assert n0 / n1 == pytest.approx(4.0, rel=0.02)
    assert n0 * 1.0 + n1 * 4.0 == pytest.approx(4005.0, abs=4.0)


def test_the_t_penalty_gives_few_pass_tests_passes_first() -> None:
    # value(n) = t(m-1)² / m, m = (2n+1)/3: decreasing and convex, so a test at its 2 pilot
    # passes gains most from a third pass, whatever its spread estimate
    values = [budget.t_penalized(n) for n in range(1, 40)]
    steps = [a - b for a, b in itertools.pairwise(values)]
    assert all(s > 0 for s in steps) and all(a > b for a, b in itertools.pairwise(steps))
    from virtbench.analysis.student_t import t_ppf

    assert budget.t_penalized(4) == pytest.approx(t_ppf(0.975, 2.0) ** 2 / 3)
    # equal spreads: a lucky pilot (spread 0.001) still gets its third pass before the
    # noisy test gets its fifth
    spreads = budget.shrunk_spreads([0.001, 0.05], [1, 1])
    assert spreads[0] > 0.025  # tempered by the pooled spread
    extra = budget.allocate([s * s for s in spreads], [1.0, 1.0], [2, 2], 3.0,
                            budget.t_penalized)
    assert extra[0] >= 1


def test_interleaving_runs_every_unit_once_per_round() -> None:
    order = budget.interleave([3, 1, 2], random.Random(7))
    assert sorted(order) == [0, 0, 0, 1, 2, 2]
    assert sorted(order[:3]) == [0, 1, 2]  # round 1: everyone
    assert sorted(order[3:5]) == [0, 2]  # round 2: those with passes left
    assert order[5:] == [0]


def test_index_interval_by_hand() -> None:
    # two tests, logs spread as ±d around their means: var of the mean log = d² * 2/1 / 2
    d1, d2 = 0.01, 0.03
    t1 = [100 * math.exp(d1), 100 * math.exp(-d1)]
    t2 = [50 * math.exp(d2), 50 * math.exp(-d2)]
    center = math.sqrt(100 * 50)
    low, high = stats.mean_of_logs_interval([t1, t2], center) or (0, 0)
    v1, v2 = d1 * d1, d2 * d2  # s² = 2 d², / n = 2  ->  d²
    var = (v1 + v2) / 4
    df = (v1 + v2) ** 2 / (v1 * v1 + v2 * v2)  # Welch-Satterthwaite, 1 df each
    from virtbench.analysis.student_t import t_ppf

    half = t_ppf(0.975, df) * math.sqrt(var)
    assert math.log(high / center) == pytest.approx(half)
    assert math.log(center / low) == pytest.approx(half)
    assert stats.mean_of_logs_interval([t1, [50.0]], center) is None


def _ok(count: float, elapsed: float) -> CopyOutcome:
    return CopyOutcome(f"COUNT|{count}|1|lps|{elapsed}\n", "", 0, elapsed)


def _budget_runner(tmp_path: Path, tests: list[str], copies: list[int], seconds: float,
                   script: object) -> tuple[SuiteRunner, FakeExecutor]:
    ex = FakeExecutor(script)  # type: ignore[arg-type]
    cfg = SuiteConfig(tests=select(tests), copies=copies, mode="budget", budget=seconds,
                      tmpdir=tmp_path, bin_dir=tmp_path)
    return SuiteRunner(cfg, ex, RunResult(profile="unixbench-6", mode="budget")), ex


def test_budgeted_passes_are_interleaved_and_go_to_the_noisy_test(tmp_path: Path) -> None:
    # pipe is noisy (±20% alternating), syscall steady (±0.5%): after the pilot, the
    # passes go to pipe; every pilot round runs each (copies, test) once, in any order.
    # Each (copies, test) has its own sequence: counted across both copies settings, the
    # run's random order decided each one's noise (1 run in 9 gave pipe with 2 copies the
    # passes n = 1, 4, 7...: no noise at all, and rightly few passes).
    seen: dict[tuple[str, int], int] = {}

    def script(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        key = (argv[0], len(ex.calls[-1]))  # passes of this (test, copies) so far
        n = seen[key] = seen.get(key, 0) + (copy == 0)
        wobble = 0.2 if "pipe" in argv[0] else 0.005
        return _ok(1000.0 * (1 + wobble * (n % 3 - 1)), 2.0)

    runner, ex = _budget_runner(tmp_path, ["pipe", "syscall"], [1, 2], 120.0, script)
    run = runner.execute()
    assert run.status == "complete"
    units = [(len(c), Path(c[0][0]).name) for c in ex.calls]
    pilot = len(units[:4])
    for r in range(budget.PILOT_PASSES):
        assert sorted(units[4 * r:4 * r + 4]) == sorted(
            [(1, "pipe"), (1, "syscall"), (2, "pipe"), (2, "syscall")]), units
    tests = {(s.copies, t.test): t for s in run.sections for t in s.tests}
    seqs = sorted(p.seq for t in tests.values() for p in t.passes if p.seq is not None)
    assert seqs == list(range(len(ex.calls)))  # every pass numbered once, in run order
    # budget: 120 s - 2 s kept for the end, 2.6 s (pipe, syscall; 2.62 with 2 copies) a pass
    assert len(ex.calls) == 45 and pilot == 4
    for c in (1, 2):
        pipe, syscall = tests[(c, "pipe")], tests[(c, "syscall")]
        assert pipe.allocation and syscall.allocation
        assert pipe.allocation.passes >= 1.5 * syscall.allocation.passes
        assert syscall.allocation.passes >= budget.PILOT_PASSES == syscall.allocation.pilot
        for t in (pipe, syscall):
            assert t.ci is not None and t.score is not None
            assert t.ci.low <= t.score <= t.ci.high
            assert t.stop_reason == "budget 2m00s spent"


def test_a_budget_too_small_names_the_minimum(tmp_path: Path) -> None:
    cfg = SuiteConfig(tests=select(["pipe", "syscall"]), copies=[1, 2], mode="budget",
                      budget=20.0, tmpdir=tmp_path)
    need = budget.minimum_budget(cfg.tests, cfg.copies)
    # 5 s fixed + 2 s reserve + 2 pilot passes x (2.6 + 2.6 + 2.62 + 2.62) s
    assert need == pytest.approx(7 + 2 * (2 * 2.6 + 2 * 2.62))
    with pytest.raises(UsageError, match=f"needs at least {math.ceil(need)} s"):
        check_budget(cfg)
    cfg.budget = need
    check_budget(cfg)
    assert budget.pass_cost(CATALOG["shell1"], 1) == pytest.approx(12 + 1.2 + 0.3)


def test_version_2_documents_migrate_to_3(tmp_path: Path) -> None:
    doc = RunResult(profile="unixbench-6").to_dict()
    doc["schema_version"] = 2
    for key in ("budget_seconds",):
        doc.pop(key)
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(doc))
    run = model.load_document(path)
    assert run.schema_version == model.SCHEMA_VERSION == 3 and run.budget_seconds is None


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "abc"], "not a duration like 90s, 10m or 1h"),
    (["--budget", "0s"], "longer than 0 s"),
    (["--budget", "10s", "pipe", "syscall", "-c", "1"], "needs at least 18 s"),
    (["--budget", "1m", "--precision", "2%"], "not allowed with"),
])
def test_budget_bad_input_is_one_line(args: list[str], message: str) -> None:
    proc = run_cli("run", *args, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_real_budgeted_run_finishes_within_its_budget(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    t0 = time.monotonic()
    # the minimum for this selection is 18 s; 30 s leaves room for a loaded machine's slower
    # passes (the pilot must fit)
    proc = run_cli("run", "pipe", "syscall", "-c", "1", "--budget", "30s", "--no-detect",
                   "--json", "-o", str(out), check=True, timeout=120)
    wall = time.monotonic() - t0
    run = RunResult.from_dict(json.loads(proc.stdout))
    assert run.mode == "budget" and run.budget_seconds == 30 and run.status == "complete"
    assert run.wall_seconds is not None and run.wall_seconds <= 30
    # a first run in a fresh cache compiles the programs first: the budget starts after it
    compile_seconds = sum(float(n.split("(")[1].split(" s)")[0]) for n in run.notes
                          if n.startswith("the budget started after compiling"))
    assert wall <= 30 + compile_seconds + 2  # + the interpreter starting, before the clock
    section = run.sections[0]
    for t in section.tests:
        assert t.status == "ok", t.error
        assert t.duration == 2.0 and len(t.passes) >= budget.PILOT_PASSES
        assert t.score is not None and t.ci is not None
        assert t.ci.low <= t.score <= t.ci.high
        assert t.allocation is not None and t.allocation.passes == len(t.passes)
    seqs = sorted(p.seq for t in section.tests for p in t.passes if p.seq is not None)
    assert seqs == list(range(len(seqs)))
    first_round = {t.test for t in section.tests for p in t.passes if p.seq in (0, 1)}
    assert first_round == {"pipe", "syscall"}  # interleaved from the first pass


def test_an_interrupted_budgeted_run_keeps_its_passes(tmp_path: Path) -> None:
    def script(argv: Sequence[str], copy: int, pass_index: int) -> CopyOutcome:
        if pass_index == 5:
            raise KeyboardInterrupt
        return _ok(1000.0 + pass_index, 2.0)

    runner, _ = _budget_runner(tmp_path, ["pipe", "syscall"], [1], 60.0, script)
    with pytest.raises(KeyboardInterrupt):
        runner.execute()
    run = runner.run
    assert run.status == "interrupted"
    tests = run.sections[0].tests
    assert sum(len(t.passes) for t in tests) == 5
    assert {t.stop_reason for t in tests} == {"interrupted"}
    assert sorted(t.status for t in tests) == ["interrupted", "ok"]
    assert all(t.allocation is not None for t in tests)
    assert list(tmp_path.glob("virtbench-*")) == []  # work dirs removed
