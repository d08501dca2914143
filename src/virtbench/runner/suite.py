"""The suite scheduler: which passes to run, in which order, and when to stop.

For every copies count, every selected test runs its passes (all copies started together
per pass); the result document is updated and saved after each test so an interrupted run
keeps what it measured. Three modes:

* ``standard``: UnixBench's durations and pass counts; comparable with published numbers.
* ``adaptive`` (``--precision P``): short passes; a test stops once the 95% CI of its score
  has a relative half-width <= P (after at least ``ADAPTIVE_MIN_PASSES``), or when its time
  budget (the standard mode's time for that test) is spent.
* ``quick``: a smoke run (short passes, two of them), labelled not comparable.
"""

from __future__ import annotations

import math
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from virtbench.analysis import stats
from virtbench.errors import UsageError
from virtbench.results.model import (
    ConfidenceInterval,
    CopyResult,
    PassResult,
    RunResult,
    Section,
    TestResult,
    utc_now,
)
from virtbench.runner.executor import CopyOutcome, Executor
from virtbench.runner.lifecycle import lifecycle, new_workdir
from virtbench.workloads.catalog import INDEX_TESTS, WorkloadSpec
from virtbench.workloads.output import WorkloadOutputError, parse_output

ADAPTIVE_MIN_PASSES = 5
ADAPTIVE_PASS_FRACTION = 0.1  # an adaptive pass lasts a tenth of the standard pass
ADAPTIVE_MIN_DURATION = 1.0
QUICK_PASSES = 2
QUICK_DURATION = 1.0
QUICK_DURATION_LONG = 2.0  # shell and file tests: enough for a few complete loops
# Before every pass UnixBench's Run does `sync; sleep 1; sync; sleep 2`; standard mode does
# the same, adaptive mode scales the pause with its shorter passes, quick mode skips it.
SETTLE_SECONDS = 3.0


@dataclass(frozen=True)
class Plan:
    """How one test is run in the chosen mode."""

    duration: float
    """Seconds per pass."""
    min_passes: int
    max_passes: int
    budget: float
    """Seconds of passes this test may use at most (adaptive); otherwise duration x passes."""
    settle: float = 0.0
    """Seconds of sync-and-rest before each pass (not part of the budget)."""


def plan_for(spec: WorkloadSpec, mode: str) -> Plan:
    if mode == "standard":
        return Plan(spec.duration, spec.passes, spec.passes, spec.duration * spec.passes,
                    SETTLE_SECONDS)
    if mode == "quick":
        d = QUICK_DURATION_LONG if spec.duration > 10 else QUICK_DURATION
        return Plan(d, QUICK_PASSES, QUICK_PASSES, d * QUICK_PASSES)
    if mode == "adaptive":
        d = max(ADAPTIVE_MIN_DURATION, spec.duration * ADAPTIVE_PASS_FRACTION)
        budget = spec.duration * spec.passes
        return Plan(d, ADAPTIVE_MIN_PASSES, max(ADAPTIVE_MIN_PASSES, int(budget // d)), budget,
                    SETTLE_SECONDS * ADAPTIVE_PASS_FRACTION)
    raise ValueError(f"unknown mode {mode}")


@dataclass
class ProgressEvent:
    test: WorkloadSpec
    copies: int
    pass_index: int
    """0-based index of the pass about to start."""
    planned_passes: int
    test_number: int
    """1-based position of this test among all (copies, test) pairs."""
    total_tests: int
    eta_seconds: float


@dataclass
class SuiteConfig:
    tests: list[WorkloadSpec]
    copies: list[int]
    mode: str = "standard"
    precision: float | None = None
    tmpdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    bin_dir: Path = Path(".")
    pass_timeout_slack: float = 60.0


def _timeout(plan: Plan, spec: WorkloadSpec, copies: int, slack: float) -> float:
    # A copy ends itself at its duration; allow generously for start-up of many copies
    # (1024 copies on 2 CPUs) and for shell tests finishing their last loop.
    return plan.duration * 3 + slack + copies * 0.05 + (60 if spec.concurrency > 1 else 0)


def estimate_seconds(config: SuiteConfig) -> float:
    """Nominal seconds of the whole run (pass durations and pauses), for the ETA."""
    # adaptive mode: an upper bound (each test's budget); it usually stops much earlier
    per_section = 0.0
    for t in config.tests:
        plan = plan_for(t, config.mode)
        per_section += plan.budget + plan.settle * plan.max_passes
    return per_section * len(config.copies)


def check_disk_space(config: SuiteConfig) -> None:
    need = max(
        (t.min_free_bytes() * c for t in config.tests for c in config.copies if t.needs_tmpdir),
        default=0,
    )
    if not need:
        return
    try:
        usage = shutil.disk_usage(config.tmpdir)
    except OSError as exc:
        raise UsageError(f"--tmpdir {config.tmpdir}: {exc.strerror}") from None
    if usage.free < need:
        raise UsageError(
            f"--tmpdir {config.tmpdir} has {usage.free / 2**20:.0f} MiB free; the file tests "
            f"need {need / 2**20:.0f} MiB: free space or choose another --tmpdir"
        )


def copy_result(outcome: CopyOutcome) -> tuple[CopyResult | None, float, int, str | None]:
    """Parse one copy's output: (CopyResult, count-or-rate, timebase, error)."""
    if outcome.returncode != 0:
        detail = outcome.stderr.strip().splitlines()[-1:] or [""]
        if outcome.returncode < 0:
            reason = f"killed by signal {-outcome.returncode}"
        else:
            reason = f"exit status {outcome.returncode}"
        return None, 0.0, 0, f"workload failed ({reason}){': ' + detail[0] if detail[0] else ''}"
    try:
        sample = parse_output(outcome.stdout)
    except WorkloadOutputError as exc:
        return None, 0.0, 0, f"unreadable workload output: {exc}"
    copy = CopyResult(count=sample.count, elapsed=sample.elapsed)
    return copy, sample.count, sample.timebase, None


def summarize(result: TestResult, level: float = 0.95) -> None:
    """Fill score, samples, elapsed, index and CI from the passes (UnixBench arithmetic)."""
    scores = [p.score for p in result.passes]
    kept = stats.kept_scores(scores)
    if not kept or kept[0] <= 0:
        # a pass in which no copy completed a loop (a 1 s shell pass with 64 copies): its
        # score is 0 and UnixBench's geometric mean is undefined; say so instead of guessing
        result.score = result.samples = result.index = result.ci = None
        zero = sum(1 for x in scores if x <= 0)
        if zero and result.status == "ok":
            result.status = "failed"
            result.error = (f"{zero} of {len(scores)} passes completed no loop: passes too "
                            "short for this many copies (use standard mode)")
        return
    result.score, result.samples = stats.unixbench_score(scores)
    result.elapsed = math.fsum(p.elapsed for p in result.passes) / len(result.passes)
    if result.baseline:
        result.index = stats.index_value(result.score, result.baseline)
    interval = stats.t_log_interval(kept, level)
    result.ci = ConfidenceInterval(low=interval[0], high=interval[1], level=level) \
        if interval else None


def finish_section(section: Section) -> None:
    """The System Benchmarks Index Score: only from all 12 index tests, all successful."""
    indexes = [
        t.index for t in section.tests
        if t.test in INDEX_TESTS and t.status == "ok" and t.index is not None
    ]
    section.index_tests = len(indexes)
    section.index_score = stats.index_score(indexes) if len(indexes) == len(INDEX_TESTS) else None


def _self_cpu() -> float:
    """CPU seconds of this Python process only (children are not included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class SuiteRunner:
    def __init__(
        self,
        config: SuiteConfig,
        executor: Executor,
        run: RunResult,
        *,
        save: Callable[[RunResult], None] = lambda run: None,
        progress: Callable[[ProgressEvent], None] = lambda e: None,
    ) -> None:
        self.config = config
        self.executor = executor
        self.run = run
        self.save = save
        self.progress = progress
        self._remaining = estimate_seconds(config)

    def execute(self) -> RunResult:
        """Run every (copies, test) pair; the document's lifecycle (status, saves, signals)
        is :func:`virtbench.runner.lifecycle.lifecycle`'s."""
        wall0 = time.monotonic()
        cpu0 = _self_cpu()

        def on_end() -> None:
            self.run.wall_seconds = round(time.monotonic() - wall0, 3)
            self.run.harness_cpu_seconds = round(_self_cpu() - cpu0, 3)

        with lifecycle(self.run, self.save, on_end) as outcome:
            # registered before it exists: removed by the next virtbench if this one is killed
            workroot = new_workdir(f"virtbench-{self.run.id}-", self.config.tmpdir)
            try:
                self._sections(workroot)
            finally:
                shutil.rmtree(workroot, ignore_errors=True)
            if any(t.status != "ok" for s in self.run.sections for t in s.tests):
                outcome.status = "partial"
        return self.run

    def _sections(self, workroot: Path) -> None:
        total = len(self.config.tests) * len(self.config.copies)
        number = 0
        for copies in self.config.copies:
            section = Section(copies=copies, started=utc_now())
            self.run.sections.append(section)
            for spec in self.config.tests:
                number += 1
                result = TestResult(test=spec.id, name=spec.name, unit=spec.unit,
                                    copies=copies, baseline=spec.baseline)
                section.tests.append(result)  # kept, with its passes, if interrupted
                self._run_test(spec, copies, workroot, number, total, result)
                finish_section(section)
                section.finished = utc_now()
                self.save(self.run)

    def _run_test(
        self, spec: WorkloadSpec, copies: int, workroot: Path, number: int, total: int,
        result: TestResult,
    ) -> None:
        plan = plan_for(spec, self.config.mode)
        result.duration = plan.duration
        cwds = []
        for i in range(copies):
            d = workroot / f"{spec.id}-c{copies}-{i}"
            d.mkdir()
            cwds.append(d)
        argvs = [spec.argv(self.config.bin_dir, plan.duration, d) for d in cwds]
        timeout = _timeout(plan, spec, copies, self.config.pass_timeout_slack)
        started = time.monotonic()
        try:
            for pass_index in range(plan.max_passes):
                self.progress(ProgressEvent(spec, copies, pass_index, plan.min_passes if
                                            self.config.mode == "adaptive" else plan.max_passes,
                                            number, total, self._remaining))
                self.executor.settle(plan.settle)
                outcomes = self.executor.run_pass(argvs, cwds, timeout)
                self._remaining = max(0.0, self._remaining - plan.duration - plan.settle)
                parsed = [copy_result(o) for o in outcomes]
                errors = [e for (_, _, _, e) in parsed if e]
                if errors:
                    result.status = "failed"
                    result.error = f"pass {pass_index + 1}: {errors[0]}" + (
                        f" (and {len(errors) - 1} more copies)" if len(errors) > 1 else "")
                    break
                copies_done = [c for (c, _, _, _) in parsed if c is not None]
                timebase = parsed[0][2]
                score = stats.pass_score([c.count for c in copies_done],
                                         [c.elapsed for c in copies_done], timebase)
                result.passes.append(PassResult(
                    score=score, elapsed=math.fsum(c.elapsed for c in copies_done) / copies,
                    copies=copies_done,
                ))
                if self.config.mode == "adaptive" and self._adaptive_done(result, plan, started):
                    break
            else:
                if self.config.mode == "adaptive":
                    result.stop_reason = "pass limit reached"
        except BaseException:
            result.status = "interrupted" if result.status == "ok" else result.status
            summarize(result)
            raise
        finally:
            for d in cwds:
                shutil.rmtree(d, ignore_errors=True)
        # what this test did not use of its planned time is no longer ahead of us
        unused = (plan.budget + plan.settle * plan.max_passes
                  - (plan.duration + plan.settle) * len(result.passes))
        self._remaining = max(0.0, self._remaining - max(0.0, unused))
        summarize(result)
        if result.status == "ok" and result.score is None:
            result.status = "failed"
            result.error = "no pass produced a positive score"

    def _adaptive_done(self, result: TestResult, plan: Plan, started: float) -> bool:
        n = len(result.passes)
        if n >= plan.min_passes:
            kept = stats.kept_scores([p.score for p in result.passes])
            interval = stats.t_log_interval(kept)
            precision = self.config.precision or 0.02
            if interval and stats.relative_half_width(*interval) <= precision:
                result.stop_reason = f"precision reached after {n} passes"
                return True
        spent = time.monotonic() - started
        if spent + plan.duration > plan.budget:
            result.stop_reason = f"time budget spent after {n} passes"
            return True
        return False


def select_copies(values: Sequence[int] | None, cpus: int) -> list[int]:
    """UnixBench's default: 1 copy, then one per CPU when there is more than one CPU."""
    if values:
        bad = [v for v in values if v < 1]
        if bad:
            raise UsageError(f"--copies must be >= 1, got {bad[0]}")
        return list(dict.fromkeys(values))
    return [1, cpus] if cpus > 1 else [1]
