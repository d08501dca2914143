"""How ``virtbench report`` draws experiment documents: ONE registry keyed by experiment name.

An :class:`~virtbench.results.model.ExperimentResult` has ``rows`` (one dict per measured
condition, fields documented on each experiment's docs page) and ``summary``. The report shows
every document as a table of its rows plus charts. What the table shows and which charts are
drawn come from the experiment's spec (``SPEC.view``, see
:mod:`virtbench.experiments.registry`); an unknown experiment gets the generic view (every
scalar field in the table, and a bar chart of the first numeric field against the first text
field). To give a new experiment better charts, add one entry here (see docs/report.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeGuard

from virtbench.experiments.spec import Chart, ChartKind, ExperimentView

__all__ = ["FIELD_TITLES", "Chart", "ChartKind", "ExperimentView", "accel_note", "accelerator",
           "charts_for", "column_title", "generic_chart", "is_number", "is_scalar",
           "table_columns", "view_for"]


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
    params, params.backend, one of several backends (``cap --kind container,vm``:
    params.backend.vm) or summary), else None."""
    places: list[Any] = [getattr(doc, "params", {}), getattr(doc, "summary", {})]
    if isinstance(places[0], dict):
        backend = places[0].get("backend")
        places.append(backend)
        if isinstance(backend, dict):
            places.extend(v for v in backend.values() if isinstance(v, dict))
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
    """The view of a registered experiment (its spec's ``view``), else the generic one."""
    from virtbench.experiments import registry

    if name in registry.EXPERIMENTS:
        return registry.get(name).view
    return ExperimentView(title=name)


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
