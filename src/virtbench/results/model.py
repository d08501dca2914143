"""The result document: typed, versioned, self-describing.

A *run* (``RunResult``) is the master record of one invocation of the suite (or one imported
UnixBench report). It carries the environment it was measured in, so a number is never
orphaned, and every pass of every test, so statistics can be recomputed later.

The JSON form is ``RunResult.to_json()``; it is documented in ``docs/schema.md`` and its
JSON Schema is ``json_schema()``. ``SCHEMA_VERSION`` increases on every incompatible change;
``load_document`` migrates older documents forward (``MIGRATIONS``) and refuses newer ones.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from virtbench.errors import UsageError
from virtbench.probes.model import DetectReport, KeyFacts
from virtbench.results.salvage import detect_report
from virtbench.safeio import ID_PATTERN, atomic_write, clip, read_json

SCHEMA_VERSION = 3
DOCUMENT_TYPE: Literal["virtbench.run"] = "virtbench.run"

Mode = Literal["standard", "adaptive", "budget", "quick"]
RunStatus = Literal["running", "complete", "partial", "failed", "interrupted", "abandoned"]
TestStatus = Literal["ok", "failed", "interrupted"]
Source = Literal["native", "imported-unixbench", "imported-virtbench"]


def utc_now() -> str:
    """ISO-8601 UTC timestamp with seconds precision, e.g. ``2026-11-22T00:21:22Z``."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class _Model(BaseModel):
    # NaN and infinities are not JSON numbers; a document holding one could not be saved.
    model_config = ConfigDict(extra="forbid", validate_assignment=False, allow_inf_nan=False)


_D = TypeVar("_D", bound="_Document")

# Sane ranges: a number outside them is a corrupt or hostile document, refused on load
# (docs/reliability.md). Counts fit SQLite's 64-bit INTEGER; a baseline is a positive number
# large enough that score / baseline * 10 stays finite.
MAX_COUNT = 10**15
MAX_CPUS = 1 << 20
MAX_COPIES = 1 << 20
MAX_VALUE = 1e18
MIN_BASELINE = 1e-6
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Cpus = Annotated[int, Field(ge=0, le=MAX_CPUS)]
Copies = Annotated[int, Field(ge=1, le=MAX_COPIES)]
Value = Annotated[float, Field(ge=0, le=MAX_VALUE)]
DocumentId = Annotated[str, Field(pattern=ID_PATTERN)]


class Environment(_Model):
    """Where a number was measured. Facts we could not read are ``None``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    hostname: str | None = None
    os: str | None = None
    """Operating system family and release, e.g. ``GNU/Linux -- Debian GNU/Linux 12 (bookworm)``."""
    kernel: str | None = None
    """``uname -r``."""
    kernel_version: str | None = None
    """``uname -v``."""
    machine: str | None = None
    """``uname -m``."""
    cpu_model: str | None = None
    cpu_count: Cpus | None = None
    """CPUs online in the system."""
    cpus_usable: Cpus | None = None
    """CPUs this process may run on (affinity), which can be fewer than ``cpu_count``."""
    memory_bytes: Count | None = None
    compiler: str | None = None
    compiler_version: str | None = None
    cflags: list[str] = Field(default_factory=list)
    workload_hash: str | None = None
    """sha256 of the workload sources: results from different sources are not comparable."""
    tool_version: str | None = None
    python_version: str | None = None
    load_average: list[float] | None = None
    uptime: str | None = None
    virtualization: DetectReport | None = None
    """The ``virtbench detect`` report (see docs/detect.md), when detection ran."""
    virtualization_error: str | None = None
    """Why there is no report although detection ran (``detection failed: ...``)."""
    extra: dict[str, Any] = Field(default_factory=dict)

    # ---- summaries (explain, store, fleet and report read these, never the raw facts) -----
    def key_facts(self) -> KeyFacts:
        """The detect report's typed key facts (all unset when there is no report)."""
        return self.virtualization.key_facts() if self.virtualization else KeyFacts()

    def usable_cpus(self) -> float | None:
        """CPUs the run could use: the detect report's figure (affinity and cgroup quota)
        when present, else the affinity count, else the CPUs in the system."""
        usable = self.key_facts().usable_cpus
        if usable is not None:
            return usable
        for n in (self.cpus_usable, self.cpu_count):
            if n is not None and n > 0:
                return float(n)
        return None

    def virtualization_summary(self) -> str | None:
        """The detected layers in one line, outermost first; ``None`` when not detected."""
        return self.virtualization.headline() if self.virtualization else None

    def virtualization_line(self) -> str:
        """For tables: the layers, else why detection failed, else ``not detected``."""
        return self.virtualization_summary() or self.virtualization_error or "not detected"


class Owner(_Model):
    """The process that writes a ``running`` document. Once it is gone (another boot, or no
    process with this pid and start time on this host), the next virtbench command marks the
    document ``abandoned``, removes its work directories and replays its journals
    (docs/schema.md)."""

    hostname: str | None = None
    pid: int
    boot_id: str | None = None
    """``/proc/sys/kernel/random/boot_id`` when the document was created."""
    start_time: int | None = None
    """When the process started, in clock ticks after boot (``/proc/PID/stat`` field 22)."""
    workdirs: list[str] = Field(default_factory=list)
    """Temporary directories the run works in (removed if it is abandoned)."""
    journals: list[str] = Field(default_factory=list)
    """Restore journals of kernel settings the run changed (``tune``): replayed if it is
    abandoned."""


class CopyResult(_Model):
    """One copy of a workload in one pass, as the program reported it."""

    count: Value
    elapsed: Value
    """Seconds, the program's own wall clock from start to end of its timed loop."""


class PassResult(_Model):
    """One pass: all copies started together. ``score`` follows UnixBench: the sum of the
    copies' counts over the mean of their times (scaled by the time base)."""

    score: Value
    elapsed: Value
    """Mean of the copies' elapsed seconds."""
    copies: list[CopyResult] = Field(default_factory=list)
    seq: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = None
    """Budgeted and adaptive runs: the pass's position in the run's order of passes (tests
    and copies settings are interleaved; see docs/statistics.md)."""


class Allocation(_Model):
    """Budgeted and adaptive runs: what a test got of the time (docs/statistics.md)."""

    pilot: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    """Passes of the pilot round-robin every test gets first."""
    passes: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    """Passes run in all (pilot included)."""
    seconds: Value
    """Wall seconds spent on this test's passes and the pauses before them."""
    variance_share: Annotated[float, Field(ge=0, le=1)] | None = None
    """This test's share of the variance of its section's index (in log space) at the end:
    where more passes would have narrowed the index's interval."""


class ConfidenceInterval(_Model):
    low: float
    high: float
    level: float = 0.95
    method: str = "t-log"
    """``t-log``: Student t interval on the logarithms of the kept pass scores, transformed
    back (an interval for their geometric mean). See docs/statistics.md."""

    @property
    def half_width_rel(self) -> float:
        mid = (self.high + self.low) / 2
        return (self.high - self.low) / 2 / mid if mid > 0 else float("inf")


class TestResult(_Model):
    __test__ = False  # not a pytest test class

    test: str
    """Workload id, e.g. ``dhry2reg``."""
    name: str
    """UnixBench report name, e.g. ``Dhrystone 2 using register variables``."""
    unit: str
    copies: Copies
    status: TestStatus = "ok"
    error: str | None = None
    duration: Value | None = None
    """Nominal seconds of one pass."""
    passes: list[PassResult] = Field(default_factory=list)
    score: Value | None = None
    """UnixBench score: geometric mean of the pass scores after dropping the worst third."""
    samples: Count | None = None
    """Number of pass scores the score is made of (after dropping)."""
    elapsed: Value | None = None
    """Mean seconds of the passes (UnixBench's ``(10.0 s, 7 samples)``)."""
    baseline: Annotated[float, Field(ge=MIN_BASELINE, le=MAX_VALUE)] | None = None
    index: Value | None = None
    """``score / baseline * 10`` for index tests."""
    ci: ConfidenceInterval | None = None
    stop_reason: str | None = None
    """Adaptive and budgeted modes: why passes stopped (``precision reached``, ``budget
    spent``, ...)."""
    allocation: Allocation | None = None
    """Budgeted and adaptive modes: the passes and seconds this test was given."""


class Section(_Model):
    """All tests run with one number of parallel copies."""

    copies: Copies
    started: str | None = None
    finished: str | None = None
    tests: list[TestResult] = Field(default_factory=list)
    index_score: Value | None = None
    """Geometric mean of the 12 index values; ``None`` unless all 12 succeeded."""
    index_tests: Annotated[int, Field(ge=0, le=1000)] = 0
    """How many index tests contributed (12 for a full System Benchmarks Index Score)."""
    index_ci: ConfidenceInterval | None = None
    """95% interval of ``index_score`` (method ``t-log-sum``: the tests' log variances
    summed over 144, Welch-Satterthwaite degrees of freedom; docs/statistics.md)."""

    def test(self, test_id: str) -> TestResult | None:
        for t in self.tests:
            if t.test == test_id:
                return t
        return None


class _Document(_Model):
    """What every document type shares: JSON form, versioned loading, atomic saving."""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Self:
        return cls.model_validate(migrate(doc))

    def save(self, path: Path) -> Path:
        """Write atomically (``safeio.atomic_write``) so a crash, a full disk or Ctrl-C never
        leaves half a document; a failure is one ``UsageError`` line."""
        try:
            text = self.to_json()
        except ValueError as exc:  # inf/NaN set after validation: refuse, do not crash
            raise UsageError(f"{clip(path)}: cannot save the document: {exc}") from None
        return atomic_write(path, text)


class RunResult(_Document):
    schema_version: int = SCHEMA_VERSION
    type: Literal["virtbench.run"] = DOCUMENT_TYPE
    id: DocumentId = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    source: Source = "native"
    suite: str = "unixbench"
    profile: str
    """Build/semantics profile: ``unixbench-6`` or ``unixbench-5.1.3`` (or ``imported``)."""
    mode: Mode = "standard"
    comparable: bool = True
    """False for ``--quick`` runs: their numbers must not be compared with published ones."""
    precision: float | None = None
    """Adaptive mode: target relative half-width of the index's interval (0.02 for 2%)."""
    budget_seconds: Value | None = None
    """Budgeted mode (``--budget``): the wall time the whole run was given."""
    status: RunStatus = "running"
    started: str = Field(default_factory=utc_now)
    finished: str | None = None
    command: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    owner: Owner | None = None
    """The process writing the document (see :class:`Owner`)."""
    wall_seconds: float | None = None
    """Wall time of the whole run."""
    harness_cpu_seconds: float | None = None
    """CPU time virtbench's own Python process used (workloads excluded): the harness cost."""
    environment: Environment = Field(default_factory=Environment)
    sections: list[Section] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    original_text: str | None = None
    """Imported runs: the report text as it was."""

    # ---- helpers -------------------------------------------------------------------------
    def section(self, copies: int) -> Section | None:
        for s in self.sections:
            if s.copies == copies:
                return s
        return None



# ---- versions --------------------------------------------------------------------------------
# MIGRATIONS[n] turns a version-n document into a version-(n+1) document.
def _v1_environment(doc: dict[str, Any]) -> dict[str, Any]:
    """1 -> 2: ``environment.virtualization`` becomes a typed detect report. The free-form
    mapping of version 1 may hold anything (old producers, fleet hosts): what validates is
    kept, what does not is dropped and named in ``notes``; an ``{"error": ...}`` entry moves
    to ``environment.virtualization_error``."""
    env = doc.get("environment")
    if not isinstance(env, dict) or "virtualization" not in env:
        return doc
    report, error, dropped = detect_report(env["virtualization"], "environment.virtualization")
    env = dict(env, virtualization=report, virtualization_error=error)
    doc["environment"] = env
    if dropped and isinstance(doc.get("notes", []), list):
        doc["notes"] = [*doc.get("notes", []),
                        "schema 1 -> 2: dropped invalid parts: " + "; ".join(dropped)]
    return doc


def _v2_budget(doc: dict[str, Any]) -> dict[str, Any]:
    """2 -> 3: budgeted mode (``mode: budget``, ``budget_seconds``, per-test ``allocation``,
    per-pass ``seq``, per-section ``index_ci``). Every new field is optional and a version-2
    document has none of them: nothing to change."""
    return doc


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_environment, 2: _v2_budget,
}


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UsageError("not a virtbench result document (no integer schema_version)")
    if version < 1:
        raise UsageError(f"schema version {version}: no virtbench ever wrote it")
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"result document has schema version {version}, newer than this virtbench "
            f"understands ({SCHEMA_VERSION}): upgrade virtbench"
        )
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise UsageError(f"schema version {version}: no migration from it")
        doc = MIGRATIONS[version](dict(doc))
        version += 1
        doc["schema_version"] = version
    return doc


def _read_json(path: Path) -> Any:
    """Hostile-file-safe: regular files only, nesting and number limits (``safeio``)."""
    return read_json(path)


def _validate(cls: type[_D], raw: dict[str, Any], path: Path) -> _D:
    try:
        return cls.from_dict(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        kind = "experiment" if cls is ExperimentResult else "result"
        raise UsageError(f"{clip(path)}: invalid {kind} document at {clip(where, 80)}: "
                         f"{clip(first['msg'])}") from None


def load_document(path: Path) -> RunResult:
    """Read a run document; any problem is one clear ``UsageError``."""
    raw = _read_json(path)
    if not isinstance(raw, dict) or raw.get("type") != DOCUMENT_TYPE:
        raise UsageError(f"{path}: not a virtbench run document")
    return _validate(RunResult, raw, path)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the current document version (published in docs/schema.md)."""
    return RunResult.model_json_schema()


# ---- experiments -----------------------------------------------------------------------------
EXPERIMENT_TYPE: Literal["virtbench.experiment"] = "virtbench.experiment"
ExperimentStatus = Literal["running", "complete", "partial", "failed", "interrupted",
                           "abandoned"]


class ExperimentResult(_Document):
    """The document of one experiment (postmark, seqread, consolidate, cap, tune, migrate...).

    ``params`` are the experiment's settings as given; ``rows`` its table, one dict per
    measured condition (each experiment documents its row fields in its docs page);
    ``summary`` the derived figures. Shares versioning and environment with ``RunResult``.
    """

    schema_version: int = SCHEMA_VERSION
    type: Literal["virtbench.experiment"] = EXPERIMENT_TYPE
    id: DocumentId = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    experiment: str
    status: ExperimentStatus = "running"
    started: str = Field(default_factory=utc_now)
    finished: str | None = None
    command: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    owner: Owner | None = None
    """The process writing the document (see :class:`Owner`)."""
    environment: Environment = Field(default_factory=Environment)
    params: dict[str, Any] = Field(default_factory=dict)
    rows: list[dict[str, Any]] = Field(default_factory=list)
    summary: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)



def load_any(path: Path) -> RunResult | ExperimentResult:
    """Read a run or an experiment document; problems are one clear ``UsageError``."""
    raw = _read_json(path)
    if isinstance(raw, dict) and raw.get("type") == EXPERIMENT_TYPE:
        return _validate(ExperimentResult, raw, path)
    if not isinstance(raw, dict) or raw.get("type") != DOCUMENT_TYPE:
        raise UsageError(f"{path}: not a virtbench run or experiment document")
    return _validate(RunResult, raw, path)
