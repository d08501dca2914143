"""The suite scheduler: which passes to run, in which order, and when to stop.

For every copies count, every selected test runs its passes (all copies started together
per pass); the result document is updated and saved after each test (after each batch of
passes in budgeted and adaptive modes) so an interrupted run keeps what it measured. Modes:

* ``standard``: UnixBench's durations and pass counts; comparable with published numbers.
* ``budget`` (``--budget D``): the whole selection within ``D`` seconds; passes of the
  short, unbiased length (``catalog.BUDGET_PASS_SECONDS``) are allocated across tests where
  they narrow the index's interval most and interleaved (:mod:`virtbench.runner.budget`).
* ``adaptive`` (``--precision P``): the same machinery, stopping once every section's
  index interval is within ``P``, or when the standard mode's time is spent.
* ``quick``: a smoke run (short passes, two of them), labelled not comparable.
"""

from __future__ import annotations

import math
import random
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
    Allocation,
    ConfidenceInterval,
    CopyResult,
    PassResult,
    RunResult,
    Section,
    TestResult,
    utc_now,
)
from virtbench.runner import budget as alloc
from virtbench.runner.executor import CopyOutcome, Executor
from virtbench.runner.lifecycle import lifecycle, new_workdir, remove_workdir
from virtbench.units import format_duration
from virtbench.workloads.catalog import INDEX_TESTS, WorkloadSpec, budget_pass_seconds
from virtbench.workloads.output import WorkloadOutputError, parse_output

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
    """Seconds of passes of this test in standard and quick modes: duration x passes."""
    settle: float = 0.0
    """Seconds of sync-and-rest before each pass (not part of the budget)."""


def plan_for(spec: WorkloadSpec, mode: str) -> Plan:
    if mode == "standard":
        return Plan(spec.duration, spec.passes, spec.passes, spec.duration * spec.passes,
                    SETTLE_SECONDS)
    if mode == "quick":
        d = QUICK_DURATION_LONG if spec.duration > 10 else QUICK_DURATION
        return Plan(d, QUICK_PASSES, QUICK_PASSES, d * QUICK_PASSES)
    if mode in ("adaptive", "budget"):  # passes are allocated across tests, see budget.py
        d = budget_pass_seconds(spec)
        return Plan(d, alloc.PILOT_PASSES, alloc.PILOT_PASSES, d * alloc.PILOT_PASSES,
                    alloc.budget_settle(d))
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
    budget_left: float | None = None
    """Budgeted and adaptive modes: seconds of the budget left (then ``test_number`` is the
    pass's number in the run and ``total_tests`` 0)."""


@dataclass
class SuiteConfig:
    tests: list[WorkloadSpec]
    copies: list[int]
    mode: str = "standard"
    precision: float | None = None
    budget: float | None = None
    """Budgeted mode: seconds the whole run may take (passes, pauses and overheads)."""
    budget_start: float | None = None
    """``time.monotonic()`` when the budget started (the command's start); default: when
    the runner starts."""
    tmpdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    bin_dir: Path = Path(".")
    pass_timeout_slack: float = 60.0


def _timeout(plan: Plan, spec: WorkloadSpec, copies: int, slack: float) -> float:
    # A copy ends itself at its duration; allow generously for start-up of many copies
    # (1024 copies on 2 CPUs) and for shell tests finishing their last loop.
    return plan.duration * 3 + slack + copies * 0.05 + (60 if spec.concurrency > 1 else 0)


def estimate_seconds(config: SuiteConfig) -> float:
    """Nominal seconds of the whole run (pass durations and pauses), for the ETA. Budgeted
    mode: the budget; adaptive mode: the standard mode's time, an upper bound."""
    if config.mode == "budget" and config.budget is not None:
        return config.budget
    mode = "standard" if config.mode == "adaptive" else config.mode
    per_section = 0.0
    for t in config.tests:
        plan = plan_for(t, mode)
        per_section += plan.budget + plan.settle * plan.max_passes
    return per_section * len(config.copies)


def check_budget(config: SuiteConfig) -> None:
    """A ``UsageError`` when the budget cannot hold the pilot passes of the selection,
    saying the minimum."""
    if config.budget is None:
        return
    need = alloc.minimum_budget(config.tests, config.copies)
    if config.budget < need:
        raise UsageError(
            f"--budget {format_duration(config.budget)} is too small for {len(config.tests)} "
            f"test{'s' if len(config.tests) > 1 else ''} x copies {config.copies}: it needs "
            f"at least {math.ceil(need)} s "
            f"({alloc.PILOT_PASSES} pilot passes of each); give more time or select fewer "
            "tests or copies")


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


def record_pass(result: TestResult, outcomes: Sequence[CopyOutcome], copies: int,
                pass_index: int, seq: int | None = None) -> bool:
    """Add the pass the copies' ``outcomes`` make to ``result``; False (and the test marked
    failed with the first copy's reason) when a copy failed."""
    parsed = [copy_result(o) for o in outcomes]
    errors = [e for (_, _, _, e) in parsed if e]
    if errors:
        result.status = "failed"
        result.error = f"pass {pass_index + 1}: {errors[0]}" + (
            f" (and {len(errors) - 1} more copies)" if len(errors) > 1 else "")
        return False
    copies_done = [c for (c, _, _, _) in parsed if c is not None]
    score = stats.pass_score([c.count for c in copies_done],
                             [c.elapsed for c in copies_done], parsed[0][2])
    result.passes.append(PassResult(
        score=score, elapsed=math.fsum(c.elapsed for c in copies_done) / copies,
        copies=copies_done, seq=seq,
    ))
    return True


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
    """The System Benchmarks Index Score: only from all 12 index tests, all successful; and
    its 95% interval (the tests' log variances summed over 144)."""
    tests = [
        t for t in section.tests
        if t.test in INDEX_TESTS and t.status == "ok" and t.index is not None
    ]
    indexes = [t.index for t in tests if t.index is not None]
    section.index_tests = len(indexes)
    section.index_score = stats.index_score(indexes) if len(indexes) == len(INDEX_TESTS) else None
    section.index_ci = None
    if section.index_score is not None:
        kept = [stats.kept_scores([p.score for p in t.passes]) for t in tests]
        interval = stats.mean_of_logs_interval(kept, section.index_score)
        if interval:
            section.index_ci = ConfidenceInterval(low=interval[0], high=interval[1],
                                                  method="t-log-sum")


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
        self.save_seconds = 0.0
        """The longest save of the document so far (budgeted runs keep it free at the end)."""

        def timed_save(doc: RunResult) -> None:
            t0 = time.monotonic()
            save(doc)
            self.save_seconds = max(self.save_seconds, time.monotonic() - t0)

        self.save = timed_save
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
                remove_workdir(workroot)
            if any(t.status != "ok" for s in self.run.sections for t in s.tests):
                outcome.status = "partial"
        return self.run

    def _sections(self, workroot: Path) -> None:
        if self.config.mode in ("budget", "adaptive"):
            _Budgeted(self, workroot).run()
            return
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
        try:
            for pass_index in range(plan.max_passes):
                self.progress(ProgressEvent(spec, copies, pass_index, plan.max_passes,
                                            number, total, self._remaining))
                self.executor.settle(plan.settle)
                outcomes = self.executor.run_pass(argvs, cwds, timeout)
                self._remaining = max(0.0, self._remaining - plan.duration - plan.settle)
                if not record_pass(result, outcomes, copies, pass_index):
                    break
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


@dataclass
class _Unit:
    """One (copies, test) pair of a budgeted or adaptive run."""

    spec: WorkloadSpec
    copies: int
    section: Section
    result: TestResult
    cwds: list[Path]
    argvs: list[list[str]]
    duration: float
    settle: float
    nominal: float
    """Nominal seconds a pass costs (:func:`budget.pass_cost`)."""
    walls: list[float] = field(default_factory=list)
    """Measured seconds of each pass, pause included."""

    @property
    def live(self) -> bool:
        return self.result.status == "ok"

    def cost(self) -> float:
        """Seconds a pass is expected to cost: the measured mean, at least the nominal."""
        return max(self.nominal, math.fsum(self.walls) / len(self.walls) if self.walls else 0)

    def worst(self) -> float:
        """Seconds to keep free before starting a pass: the longest seen, at least nominal."""
        return max([self.nominal, *self.walls])

    def log_variance(self) -> float | None:
        """Variance of the mean log of the kept pass scores (``s² / m``), if defined."""
        part = stats.log_variance_of_mean(stats.kept_scores([p.score for p in
                                                              self.result.passes]))
        return part[0] if part else None

    def spread(self) -> tuple[float, int]:
        """(per-pass standard deviation of the kept logs, its degrees of freedom)."""
        kept = stats.kept_scores([p.score for p in self.result.passes])
        part = stats.log_variance_of_mean(kept)
        return (math.sqrt(part[0] * len(kept)), part[1]) if part else (0.0, 0)


class _Budgeted:
    """The budgeted and adaptive schedule (see :mod:`virtbench.runner.budget`)."""

    def __init__(self, runner: SuiteRunner, workroot: Path) -> None:
        self.runner = runner
        cfg = runner.config
        self.cfg = cfg
        self.start = cfg.budget_start if cfg.budget_start is not None else time.monotonic()
        self.total = (cfg.budget if cfg.mode == "budget" and cfg.budget is not None
                      else estimate_seconds(SuiteConfig(tests=cfg.tests, copies=cfg.copies)))
        self.charged = 0.0  # nominal seconds of the passes run: the clock of a fake executor
        self.seq = 0
        self.rng = random.Random(runner.run.id)
        self.precise = False
        self.units: list[_Unit] = []
        for copies in cfg.copies:
            section = Section(copies=copies, started=utc_now())
            runner.run.sections.append(section)
            for spec in cfg.tests:
                d = budget_pass_seconds(spec)
                result = TestResult(test=spec.id, name=spec.name, unit=spec.unit, copies=copies,
                                    baseline=spec.baseline, duration=d)
                section.tests.append(result)
                cwds = []
                for i in range(copies):
                    cwd = workroot / f"{spec.id}-c{copies}-{i}"
                    cwd.mkdir()
                    cwds.append(cwd)
                self.units.append(_Unit(
                    spec, copies, section, result, cwds,
                    [spec.argv(cfg.bin_dir, d, cwd) for cwd in cwds], d,
                    alloc.budget_settle(d), alloc.pass_cost(spec, copies)))

    # ---- clock -------------------------------------------------------------------------
    def spent(self) -> float:
        return max(time.monotonic() - self.start, self.charged)

    def left(self) -> float:
        """Seconds left for passes: the budget minus what is spent, the reserve for the end
        and twice the longest save seen (the last save is still ahead, on a disk that may be
        busier by then)."""
        return (self.total - self.spent() - alloc.FINISH_RESERVE
                - 2 * self.runner.save_seconds)

    # ---- the schedule ------------------------------------------------------------------
    def run(self) -> None:
        try:
            for _ in range(alloc.PILOT_PASSES):
                order = [u for u in self.units if u.live]
                self.rng.shuffle(order)
                for u in order:
                    self._maybe_pass(u)
                self._checkpoint()
            while not self.precise:
                live = [u for u in self.units if u.live and u.result.passes]
                if not live:
                    break
                measured = [u.spread() for u in live]
                spreads = alloc.shrunk_spreads([m[0] for m in measured], [m[1] for m in measured])
                extra = alloc.allocate(
                    [s * s / self._k(u) ** 2 for s, u in zip(spreads, live, strict=True)],
                    [u.cost() for u in live], [len(u.result.passes) for u in live], self.left(),
                    alloc.t_penalized)
                if not any(extra):
                    break
                batch = [math.ceil(e * alloc.BATCH_FRACTION) for e in extra]
                ran = 0
                for i in alloc.interleave(batch, self.rng):
                    if self.precise:
                        break
                    ran += self._maybe_pass(live[i])
                self._checkpoint()
                if not ran:
                    break
        except BaseException:
            self.interrupted = True
            for u in self.units:
                if u.result.status == "ok" and u is self._current:
                    u.result.status = "interrupted"
            self._finish()
            raise
        finally:
            for u in self.units:
                for d in u.cwds:
                    shutil.rmtree(d, ignore_errors=True)
        self._finish()

    _current: _Unit | None = None
    interrupted = False
    _saved_at = -math.inf
    _saved_seq = 0

    def _k(self, u: _Unit) -> int:
        return sum(1 for v in self.units if v.section is u.section)

    def _maybe_pass(self, u: _Unit) -> int:
        """Run one pass of ``u`` if it is live and fits in the time left; 1 if it ran."""
        if not u.live or u.worst() > self.left():
            return 0
        runner = self.runner
        runner.progress(ProgressEvent(u.spec, u.copies, len(u.result.passes), 0, self.seq + 1,
                                      0, max(0.0, self.total - self.spent()),
                                      budget_left=max(0.0, self.total - self.spent())))
        timeout = max(u.duration * 3 + 10,
                      min(_timeout(Plan(u.duration, 1, 1, u.duration), u.spec, u.copies,
                                   self.cfg.pass_timeout_slack), self.left() + 10))
        self._current = u
        t0 = time.monotonic()
        runner.executor.settle(u.settle)
        outcomes = runner.executor.run_pass(u.argvs, u.cwds, timeout)
        u.walls.append(time.monotonic() - t0)
        self._current = None
        self.charged += u.nominal
        record_pass(u.result, outcomes, u.copies, len(u.result.passes), self.seq)
        self.seq += 1
        if self.cfg.mode == "adaptive" and self.cfg.precision is not None:
            self.precise = self._precise(self.cfg.precision)
        return 1

    def index_interval(self, section: Section) -> tuple[float, float, float] | None:
        """(point, low, high) of the geometric mean over the section's tests (the System
        Benchmarks Index when the selection is the 12 index tests)."""
        units = [u for u in self.units if u.section is section]
        kept = [stats.kept_scores([p.score for p in u.result.passes]) for u in units]
        if any(len(k) < 2 for k in kept) or any(u.result.status != "ok" for u in units):
            return None
        point = stats.geometric_mean([stats.geometric_mean(k) for k in kept])
        interval = stats.mean_of_logs_interval(kept, point)
        return (point, *interval) if interval else None

    def _precise(self, precision: float) -> bool:
        for section in self.runner.run.sections:
            got = self.index_interval(section)
            if got is None or stats.relative_half_width(got[1], got[2]) > precision:
                return False
        return True

    def _checkpoint(self) -> None:
        """Save the document when passes ran since the last save and at least
        :data:`budget.CHECKPOINT_SECONDS` have gone by: an interrupted run keeps what it
        measured, and saves (slow on a busy disk) take little of the budget."""
        now = time.monotonic()
        if self.seq == self._saved_seq or now - self._saved_at < alloc.CHECKPOINT_SECONDS:
            return
        self._saved_at, self._saved_seq = now, self.seq
        for u in self.units:
            summarize(u.result)
        for section in self.runner.run.sections:
            finish_section(section)
            section.finished = utc_now()
        self.runner.save(self.runner.run)

    def _finish(self) -> None:
        totals: dict[int, float] = {}
        variances = {id(u): u.log_variance() for u in self.units}
        for u in self.units:
            totals[id(u.section)] = totals.get(id(u.section), 0.0) + (variances[id(u)] or 0.0)
        for u in self.units:
            r = u.result
            summarize(r)
            if r.status == "ok" and r.score is None:
                r.status = "failed"
                r.error = ("budget spent before its pilot passes" if len(r.passes) < 2
                           else "no pass produced a positive score")
            var, total = variances[id(u)], totals[id(u.section)]
            r.allocation = Allocation(
                pilot=min(len(r.passes), alloc.PILOT_PASSES), passes=len(r.passes),
                seconds=round(math.fsum(u.walls), 3),
                variance_share=round(var / total, 4) if var is not None and total > 0 else None)
            r.stop_reason = self._stop_reason()
        for section in self.runner.run.sections:
            finish_section(section)
            section.finished = utc_now()

    def _stop_reason(self) -> str:
        if self.interrupted:
            return "interrupted"
        if self.cfg.mode == "adaptive":
            p = f"{(self.cfg.precision or 0) * 100:g}%"
            return (f"index within ±{p}" if self.precise
                    else f"standard mode's time spent before the index reached ±{p}")
        return f"budget {format_duration(self.total)} spent"


def select_copies(values: Sequence[int] | None, cpus: int) -> list[int]:
    """UnixBench's default: 1 copy, then one per CPU when there is more than one CPU."""
    if values:
        bad = [v for v in values if v < 1]
        if bad:
            raise UsageError(f"--copies must be >= 1, got {bad[0]}")
        return list(dict.fromkeys(values))
    return [1, cpus] if cpus > 1 else [1]
