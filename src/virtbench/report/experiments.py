"""How ``virtbench report`` draws experiment documents: ONE registry keyed by experiment name.

An :class:`~virtbench.results.model.ExperimentResult` has ``rows`` (one dict per measured
condition, fields documented on each experiment's docs page) and ``summary``. The report shows
every document as a table of its rows plus charts. What the table shows and which charts are
drawn come from :data:`VIEWS`; an experiment without an entry gets the generic view (every
scalar field in the table, and a bar chart of the first numeric field against the first text
field). To give a new experiment better charts, add one entry here (see docs/report.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

ChartKind = Literal["bar", "stacked-bar", "line"]


@dataclass(frozen=True)
class Chart:
    """One chart of an experiment's rows.

    ``x``: the row field on the x axis (categories, in row order). ``y``: numeric row fields,
    one trace each. ``group``: instead, split rows into one trace per value of this field
    (then only ``y[0]`` is drawn). Rows missing a field are skipped for that trace.
    """

    title: str
    x: str
    y: tuple[str, ...]
    kind: ChartKind = "bar"
    group: str | None = None
    y_title: str = ""
    log_y: bool = False


@dataclass(frozen=True)
class ExperimentView:
    title: str
    columns: tuple[str, ...] = ()
    """Row fields shown in the table, in order (empty: every scalar field)."""
    charts: tuple[Chart, ...] = ()
    """Empty: the generic chart."""
    description: str = ""
    summary_keys: tuple[str, ...] = field(default_factory=tuple)
    """Summary entries shown, dotted for nested ones (``median.seconds_total``); empty: every
    entry."""


# The registry. Keys are ``ExperimentResult.experiment`` names.
VIEWS: dict[str, ExperimentView] = {
    "consolidate": ExperimentView(
        title="Consolidation",
        description="The same fixed work alone and with 1, 2, 3 instances side by side: "
                    "seconds per condition, slowdown against the solo baseline, and fairness "
                    "across instances (Jain's index, 1.0 = equal shares).",
        columns=("condition", "instances", "loaded", "seconds", "seconds_min", "seconds_max",
                 "slowdown", "fairness", "steal_share", "throttled_s", "repeats"),
        charts=(
            Chart("Seconds per condition", x="condition", y=("seconds",), y_title="seconds"),
            Chart("Slowdown against solo", x="condition", y=("slowdown",), y_title="x solo"),
        ),
    ),
    "cap": ExperimentView(
        title="CPU cap",
        description="A workload with a known share of system calls under decreasing CPU "
                    "quotas: where the CPU time goes (user vs system) and how often the "
                    "quota throttled it.",
        columns=("condition", "quota", "seconds", "units_per_s", "throughput_rel",
                 "cpus_used", "cpu_user_s", "cpu_system_s", "system_share", "nr_throttled",
                 "throttled_share", "throttled_s", "p50_ns", "p99_ns"),
        charts=(
            Chart("User vs system CPU time per quota", x="condition",
                  y=("cpu_user_s", "cpu_system_s"), kind="stacked-bar", y_title="CPU seconds"),
            Chart("Throughput relative to uncapped", x="condition", y=("throughput_rel",),
                  y_title="x uncapped"),
            Chart("System-call latency", x="condition", y=("p50_ns", "p90_ns", "p99_ns"),
                  kind="line", y_title="ns", log_y=True),
        ),
    ),
    "postmark": ExperimentView(
        title="Postmark",
        columns=("run", "condition", "transactions", "seconds_total",
                 "transactions_per_second", "read_bytes_per_second",
                 "written_bytes_per_second"),
        charts=(Chart("Transactions per second", x="run", y=("transactions_per_second",),
                      y_title="transactions/s"),),
        summary_keys=("runs", "median.seconds_total", "median.transactions_per_second",
                      "median.read_bytes_per_second", "median.written_bytes_per_second",
                      "main_metric"),
    ),
    "seqread": ExperimentView(
        title="Sequential read",
        columns=("run", "condition", "bytes_read", "seconds_read", "read_mib_per_second",
                 "cache_state"),
        charts=(Chart("Sequential read throughput", x="run", y=("read_mib_per_second",),
                      y_title="MiB/s"),),
        summary_keys=("runs", "median.read_mib_per_second", "cache_method", "from_cache",
                      "main_metric"),
    ),
    "tune": ExperimentView(
        title="Tuning (A/B)",
        description="The experiment run with the current settings (A) and the new ones (B), "
                    "interleaved.",
        columns=("round", "variant", "value", "seconds", "status"),
        charts=(Chart("Main metric per round", x="round", y=("value",), group="variant"),),
        summary_keys=("metric", "verdict", "welch.mean_a", "welch.mean_b",
                      "welch.difference_pct", "welch.ci_low", "welch.ci_high",
                      "welch.p_value", "restored", "overhead.settings_seconds"),
    ),
    "migrate": ExperimentView(
        title="Live migration",
        description="A running guest moved between two QEMU processes at each bandwidth and "
                    "dirty rate: total time and downtime rise as bandwidth falls, until the "
                    "guest dirties memory faster than it can be sent and the migration no "
                    "longer converges (converged = false). Guest work per second before, "
                    "during and after the move; the guest's counter proves it never restarted.",
        # The figures that tell the story; every field stays in the JSON and `virtbench show`.
        columns=("point", "converged", "total_time_s", "downtime_ms", "guest_downtime_ms",
                 "iterations", "transferred_mb", "throughput_before", "throughput_during",
                 "throughput_after", "counter_continues"),
        charts=(
            Chart("Total migration time vs bandwidth", x="bandwidth", y=("total_time_s",),
                  kind="line", group="dirty_rate_mb_s", y_title="seconds"),
            Chart("Downtime per point (QMP and as the guest saw it)", x="point",
                  y=("downtime_ms", "guest_downtime_ms"), y_title="ms"),
            Chart("Iterations per point", x="point", y=("iterations",), y_title="iterations"),
            Chart("Guest throughput before / during / after", x="point",
                  y=("throughput_before", "throughput_during", "throughput_after"),
                  y_title="work chunks/s"),
        ),
    ),
}


# Human column names with units for the report's tables and chart legends (docs/report.md).
# A field not listed gets a title from its name and unit suffix (column_title).
FIELD_TITLES: dict[str, str] = {
    "condition": "Condition", "instances": "Instances", "loaded": "Loaded",
    "seconds": "Time (s)", "seconds_min": "Fastest (s)", "seconds_max": "Slowest (s)",
    "slowdown": "Slowdown (× solo)", "fairness": "Fairness (Jain, 1 = equal)",
    "steal_share": "Steal (share of CPU)", "throttled_s": "Throttled (s)",
    "repeats": "Repeats", "quota": "CPU quota", "units_per_s": "Work (units/s)",
    "throughput_rel": "Throughput (× uncapped)", "cpus_used": "CPUs used",
    "cpu_user_s": "User CPU (s)", "cpu_system_s": "System CPU (s)",
    "system_share": "System (share of CPU)", "nr_throttled": "Times throttled",
    "throttled_share": "Periods throttled (share)", "p50_ns": "Syscall p50 (ns)",
    "p90_ns": "Syscall p90 (ns)", "p99_ns": "Syscall p99 (ns)", "run": "Run",
    "transactions": "Transactions", "seconds_total": "Total time (s)",
    "transactions_per_second": "Transactions/s", "read_bytes_per_second": "Read (bytes/s)",
    "written_bytes_per_second": "Written (bytes/s)", "bytes_read": "Read (bytes)",
    "seconds_read": "Read time (s)", "read_mib_per_second": "Read (MiB/s)",
    "cache_state": "Cache", "round": "Round", "variant": "Variant", "value": "Value",
    "status": "Status", "point": "Point", "bandwidth": "Bandwidth",
    "dirty_rate_mb_s": "Dirty rate (MB/s)", "storage": "Storage", "converged": "Converged",
    "total_time_s": "Total time (s)", "downtime_ms": "Downtime, QEMU (ms)",
    "guest_downtime_ms": "Downtime, guest (ms)", "iterations": "Iterations",
    "transferred_mb": "Sent (MB)", "remaining_mb": "Left (MB)",
    "dirty_mb_s_qemu": "Dirty rate, QEMU (MB/s)", "throughput_before": "Work before (/s)",
    "throughput_during": "Work during (/s)", "throughput_after": "Work after (/s)",
    "counter_continues": "Counter continues", "same_boot": "Same boot", "reason": "Reason",
}
_UNIT_SUFFIXES = (("_mib_per_second", "MiB/s"), ("_per_second", "/s"), ("_mb_s", "MB/s"),
                  ("_ms", "ms"), ("_ns", "ns"), ("_us", "µs"), ("_mb", "MB"), ("_s", "s"),
                  ("_bytes", "bytes"), ("_share", "share"), ("_pct", "%"))


def column_title(field_name: str) -> str:
    """``guest_downtime_ms`` -> ``Downtime, guest (ms)``; an unknown ``foo_bar_s`` ->
    ``Foo bar (s)``."""
    if field_name in FIELD_TITLES:
        return FIELD_TITLES[field_name]
    for suffix, unit in _UNIT_SUFFIXES:
        if field_name.endswith(suffix) and len(field_name) > len(suffix):
            words = field_name[: -len(suffix)].replace("_", " ").strip()
            return f"{words[:1].upper()}{words[1:]} ({unit})"
    words = field_name.replace("_", " ").replace(".", " · ").strip()
    return f"{words[:1].upper()}{words[1:]}" if words else field_name


def accelerator(doc: Any) -> str | None:
    """``TCG`` or ``KVM`` when the document ran in virtual machines (the accelerator is in its
    params, params.backend or summary), else None."""
    places: list[Any] = [getattr(doc, "params", {}), getattr(doc, "summary", {})]
    if isinstance(places[0], dict):
        places.append(places[0].get("backend"))
    for place in places:
        if isinstance(place, dict) and isinstance(place.get("accel"), str):
            accel = place["accel"].lower()
            return str({"tcg": "TCG", "kvm": "KVM"}.get(accel, accel.upper()))
    return None


def accel_note(accel: str | None) -> str:
    if accel == "TCG":
        return "VMs under TCG (QEMU's emulator, no hardware virtualization)"
    if accel == "KVM":
        return "VMs under KVM"
    return f"VMs under {accel}" if accel else ""


def view_for(name: str) -> ExperimentView:
    return VIEWS.get(name, ExperimentView(title=name))


def is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def is_number(v: Any) -> TypeGuard[int | float]:
    """A finite int or float (not a bool): something a chart can draw."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def table_columns(view: ExperimentView, rows: Sequence[dict[str, Any]]) -> list[str]:
    """The table's columns: the view's (those present in some row), else every scalar field."""
    present: list[str] = []
    for row in rows:
        for k, v in row.items():
            if k not in present and is_scalar(v):
                present.append(k)
    if view.columns:
        chosen = [c for c in view.columns if c in present]
        if chosen:
            return chosen
    return present


def generic_chart(rows: Sequence[dict[str, Any]]) -> Chart | None:
    """A bar chart of the first numeric field against the first text field (or row number)."""
    x = y = None
    for row in rows:
        for k, v in row.items():
            if x is None and isinstance(v, str):
                x = k
            if y is None and is_number(v):
                y = k
    if y is None:
        return None
    return Chart(f"{y} per row", x=x or "#", y=(y,))


def charts_for(view: ExperimentView, rows: Sequence[dict[str, Any]]) -> list[Chart]:
    if view.charts:
        usable = [c for c in view.charts
                  if any(is_number(r.get(f)) for r in rows for f in c.y)]
        if usable:
            return usable
    chart = generic_chart(rows)
    return [chart] if chart else []
