"""What a report shows, computed once for both the HTML and the Markdown renderers.

Input: result documents (suite runs and experiments) in the order the user gave them; the
first suite run is the baseline of every ratio. Output: plain dicts/lists (tables, findings)
and plotly figure specs (``{"data": [...], "layout": {...}}``), so renderers only format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from virtbench import __version__
from virtbench.analysis.explain import (
    KERNEL_ENTRY_LOW,
    SYSCALL_LOW,
    Explanation,
    canonical_id,
    explain,
    section_indexes,
    section_scores,
    test_index,
)
from virtbench.report.experiments import (
    Chart,
    accel_note,
    accelerator,
    charts_for,
    column_title,
    is_number,
    is_scalar,
    table_columns,
    view_for,
)
from virtbench.results.model import ExperimentResult, RunResult, Section, TestResult, utc_now
from virtbench.workloads.catalog import CATALOG, INDEX_TESTS

Document = RunResult | ExperimentResult

# Short axis labels for the UnixBench tests (full names are in hover text and tables).
# One colour per run, in order (colour-blind-safe palette).
PALETTE = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB",
           "#332288", "#117733", "#882255")
SEVERITY_LABEL = {"high": "Important", "warn": "Warning", "info": "Note"}


def short_name(test: TestResult) -> str:
    """The catalog's short label of the test (``Context switch``), else its name."""
    spec = CATALOG.get(canonical_id(test))
    return spec.label if spec else test.name


def _copies_label(copies: int) -> str:
    return f"{copies} cop{'y' if copies == 1 else 'ies'}"


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        a = abs(v)
        if not math.isfinite(v):
            return str(v)
        if a >= 1e6:
            return f"{v:,.0f}"
        if a >= 1e4:  # separators from five digits on, like the millions next to them
            return f"{v:,.{digits}f}"
        if a >= 100:
            return f"{v:.{digits}f}"
        if a >= 1:
            return f"{v:.2f}"
        return "0" if a == 0 else f"{v:.3g}"
    if isinstance(v, dict | list):
        text = json.dumps(v, separators=(", ", ": "))
        return text if len(text) <= 120 else text[:117] + "…"
    return str(v)


fmt = _fmt


@dataclass
class RunView:
    doc: RunResult
    label: str
    color: str
    explanation: Explanation
    against_label: str | None = None


@dataclass
class ExperimentSection:
    doc: ExperimentResult
    label: str
    title: str
    description: str
    columns: list[str]
    """Human column titles with units (report.experiments.column_title)."""
    rows: list[list[str]]
    numeric: list[bool]
    """Per column: all its values are numbers (right-aligned)."""
    summary: list[tuple[str, str]]
    figures: list[dict[str, Any]]
    accel: str = ""
    """``VMs under TCG (...)`` / ``VMs under KVM`` for documents that ran in VMs."""


@dataclass
class Report:
    title: str
    generated: str
    version: str
    runs: list[RunView]
    copies: list[int]
    summary_rows: list[dict[str, Any]]
    numbers: dict[int, dict[str, Any]]
    environment: list[tuple[str, list[str]]]
    figures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    experiments: list[ExperimentSection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fleet: Any = None
    """``virtbench.report.fleet.FleetTable`` when the documents are the hosts of one fleet run
    (their ``fleet`` label): index per host, groups, virtualization, outliers explained."""


# ---- labels ----------------------------------------------------------------------------------
def run_label(doc: Document) -> str:
    """How the report names a run: its ``name`` (or ``label``) label, else its other labels
    (``env=xen-pv``), else its host and date; the id only when there is nothing else. Two runs
    with the same name get ``#2``, ``#3`` (``_unique``)."""
    name = doc.labels.get("name") or doc.labels.get("label")
    if name:
        return name
    shown = {k: v for k, v in doc.labels.items() if k != "fleet"}
    if shown:
        return ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
    host = doc.environment.hostname
    date = (doc.started or "")[:10]
    if host:
        return f"{host} {date}".strip()
    return doc.id


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        n = seen.get(lab, 0)
        seen[lab] = n + 1
        out.append(lab if n == 0 else f"{lab} #{n + 1}")
    return out


# ---- figures ---------------------------------------------------------------------------------
def _layout(title: str, y_title: str = "", **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 90},
        "height": 380,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
                 "size": 12, "color": "#1f2933"},
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#e4e7eb", "zerolinecolor": "#cbd2d9"},
        "xaxis": {"tickangle": -30, "automargin": True},
        "legend": {"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
        "hoverlabel": {"namelength": -1},
    }
    layout.update(extra)
    return layout


def _ordered_tests(runs: Sequence[RunView], copies: int) -> list[tuple[str, str, str]]:
    """(id, short name, full name) of the tests in the given section of any run, first-seen."""
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for rv in runs:
        section = rv.doc.section(copies)
        for t in section.tests if section else []:
            tid = canonical_id(t)
            if tid not in seen:
                seen.add(tid)
                out.append((tid, short_name(t), t.name))
    return out


def _tests_by_id(run: RunResult, copies: int) -> dict[str, TestResult]:
    section = run.section(copies)
    return {canonical_id(t): t for t in section.tests} if section else {}


def index_figure(runs: Sequence[RunView], copies: int) -> dict[str, Any] | None:
    tests = _ordered_tests(runs, copies)
    data = []
    for rv in runs:
        by_id = _tests_by_id(rv.doc, copies)
        xs, ys, hover = [], [], []
        for tid, short, full in tests:
            t = by_id.get(tid)
            idx = test_index(t) if t else None
            if idx is None:
                continue
            xs.append(short)
            ys.append(round(idx, 2))
            assert t is not None
            hover.append(f"{full}<br>index {idx:,.1f}<br>score {_fmt(t.score)} {t.unit}")
        if xs:
            data.append({"type": "bar", "name": rv.label, "x": xs, "y": ys,
                         "marker": {"color": rv.color}, "hovertext": hover,
                         "hoverinfo": "text+name"})
    if not data:
        return None
    return {"data": data, "layout": _layout(
        f"Index per test, {_copies_label(copies)} (higher is better)", "index",
        barmode="group", xaxis={"tickangle": -30, "automargin": True,
                                "categoryorder": "array",
                                "categoryarray": [s for _, s, _ in tests]})}


PROFILE_GROUPS: tuple[tuple[str, str], ...] = (
    ("Kernel entry", "kernel_entry_ratio"), ("Syscall + pipe", "syscall_ratio"),
    ("File copy", "file_ratio"), ("Shell scripts", "shell_ratio"),
)


def profile_figure(runs: Sequence[RunView], copies: int) -> dict[str, Any] | None:
    """Test groups relative to the CPU tests (explain's derived metrics), with the thresholds
    of the kernel-entry rule drawn in."""
    data = []
    for rv in runs:
        m = rv.explanation.sections.get(copies)
        if not m:
            continue
        xs, ys, hover = [], [], []
        for name, key in PROFILE_GROUPS:
            v = m.get(key)
            if isinstance(v, float):
                xs.append(name)
                ys.append(round(v, 4))
                hover.append(f"{name}: {v:.2f}x the CPU tests' index")
        if xs:
            data.append({"type": "bar", "name": rv.label, "x": xs, "y": ys,
                         "marker": {"color": rv.color}, "hovertext": hover,
                         "hoverinfo": "text+name"})
    if not data:
        return None
    layout = _layout(f"Test groups vs the CPU tests, {_copies_label(copies)}",
                     "÷ CPU-test index",
                     barmode="group", xaxis={"automargin": True},
                     legend={"orientation": "h", "y": -0.12, "x": 0, "xanchor": "left",
                             "yanchor": "top"},
                     margin={"l": 60, "r": 20, "t": 50, "b": 40})
    line = {"color": "#c0392b", "width": 1.5, "dash": "dash"}
    layout["shapes"] = [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 1, "y1": 1,
         "line": {"color": "#52606d", "width": 1.5, "dash": "dot"}},
        {"type": "line", "xref": "x", "x0": -0.45, "x1": 0.45, "y0": KERNEL_ENTRY_LOW,
         "y1": KERNEL_ENTRY_LOW, "line": line},
        {"type": "line", "xref": "x", "x0": 0.55, "x1": 1.45, "y0": SYSCALL_LOW,
         "y1": SYSCALL_LOW, "line": line},
    ]
    layout["annotations"] = [{"xref": "x", "x": 0, "y": KERNEL_ENTRY_LOW, "yshift": 9,
                              "text": "PV-like below", "showarrow": False,
                              "font": {"size": 10, "color": "#c0392b"}}]
    return {"data": data, "layout": layout}


def ratio_figure(runs: Sequence[RunView], copies: int) -> dict[str, Any] | None:
    if len(runs) < 2:
        return None
    base = runs[0]
    base_tests = _tests_by_id(base.doc, copies)
    if not base_tests:
        return None
    tests = _ordered_tests(runs, copies)
    data = []
    lo, hi = 1.0, 1.0
    for rv in runs[1:]:
        by_id = _tests_by_id(rv.doc, copies)
        xs, ys, hover = [], [], []
        for tid, short, full in tests:
            a, b = by_id.get(tid), base_tests.get(tid)
            if a is None or b is None:
                continue
            va, vb = test_index(a), test_index(b)
            if va is None or vb is None:
                va = a.score if a.status == "ok" else None
                vb = b.score if b.status == "ok" else None
            if not va or not vb:
                continue
            r = va / vb
            lo, hi = min(lo, r), max(hi, r)
            xs.append(short)
            ys.append(round(r - 1, 6))  # bars grow from 1.0 (base) to the ratio
            hover.append(f"{full}<br>{_fmt(va)} vs {_fmt(vb)}<br><b>{r:.2f}x</b>")
        if xs:
            data.append({"type": "bar", "name": rv.label, "x": xs, "y": ys, "base": 1,
                         "marker": {"color": rv.color}, "hovertext": hover,
                         "hoverinfo": "text+name"})
    if not data:
        return None
    low, high = min(lo, 1.0) / 1.25, max(hi, 1.0) * 1.25
    layout = _layout(
        f"Ratio to {base.label}, {_copies_label(copies)} (1.0 = same; log scale)",
        "ratio (log scale)", barmode="group",
        xaxis={"tickangle": -30, "automargin": True, "categoryorder": "array",
               "categoryarray": [s for _, s, _ in tests]},
    )
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
             if low <= t <= high]
    layout["yaxis"].update({"type": "log", "range": [math.log10(low), math.log10(high)],
                            "tickvals": ticks, "ticktext": [f"{t:g}x" for t in ticks]})
    layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 1, "y1": 1,
                         "line": {"color": "#52606d", "width": 1.5, "dash": "dot"}}]
    return {"data": data, "layout": layout}


def scaling_figure(runs: Sequence[RunView]) -> dict[str, Any] | None:
    data = []
    categories: list[str] = []
    for rv in runs:
        one = rv.doc.section(1)
        if one is None:
            continue
        s1 = section_scores(one)
        cpus = rv.doc.environment.usable_cpus()
        for section in sorted(rv.doc.sections, key=lambda s: s.copies):
            if section.copies <= 1:
                continue
            expected = min(section.copies, cpus) if cpus else section.copies
            xs, ys, hover = [], [], []
            for t in section.tests:
                tid = canonical_id(t)
                sn = t.score if t.status == "ok" else None
                if not sn or tid not in s1:
                    continue
                eff = sn / (s1[tid] * expected)
                xs.append(short_name(t))
                ys.append(round(eff * 100, 1))
                hover.append(f"{t.name}<br>{_fmt(s1[tid])} → {_fmt(sn)} {t.unit}"
                             f"<br>{sn / s1[tid]:.2f}x with {section.copies} copies "
                             f"(ideal {expected}x)")
                if xs[-1] not in categories:
                    categories.append(xs[-1])
            if xs:
                data.append({"type": "bar", "name": f"{rv.label}: {section.copies} copies",
                             "x": xs, "y": ys, "marker": {"color": rv.color},
                             "hovertext": hover, "hoverinfo": "text+name"})
    if not data:
        return None
    layout = _layout("N-copy vs 1-copy scaling: score(N) / (score(1) × min(N, usable CPUs))",
                     "% of ideal", barmode="group",
                     xaxis={"tickangle": -30, "automargin": True, "categoryorder": "array",
                            "categoryarray": categories})
    layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 100,
                         "y1": 100, "line": {"color": "#52606d", "width": 1.5, "dash": "dot"}}]
    return {"data": data, "layout": layout}


def passes_figure(runs: Sequence[RunView], copies: int) -> dict[str, Any] | None:
    tests = _ordered_tests(runs, copies)
    data = []
    for rv in runs:
        by_id = _tests_by_id(rv.doc, copies)
        xs: list[str] = []
        ys: list[float] = []
        texts: list[str] = []
        for tid, short, _full in tests:
            t = by_id.get(tid)
            if t is None or not t.score or len(t.passes) < 2:
                continue
            for i, p in enumerate(t.passes, 1):
                xs.append(short)
                ys.append(round((p.score / t.score - 1) * 100, 3))
                texts.append(f"pass {i}: {_fmt(p.score)} {t.unit}")
        if xs:
            data.append({"type": "box", "name": rv.label, "x": xs, "y": ys, "text": texts,
                         "boxpoints": "all", "jitter": 0.4, "pointpos": 0,
                         "marker": {"color": rv.color, "size": 5},
                         "line": {"color": rv.color}, "hoverinfo": "text+y+name"})
    if not data:
        return None
    return {"data": data, "layout": _layout(
        f"Pass scores around each test's score, {_copies_label(copies)}",
        "% from the test's score", boxmode="group",
        xaxis={"tickangle": -30, "automargin": True, "categoryorder": "array",
               "categoryarray": [s for _, s, _ in tests]})}


def experiment_figure(chart: Chart, rows: Sequence[dict[str, Any]],
                      colors: Sequence[str] = PALETTE, accel: str | None = None
                      ) -> dict[str, Any] | None:
    """One chart of an experiment's rows; legends and axes use human field names, and the
    title says ``(TCG)``/``(KVM)`` when the document ran in virtual machines."""
    def xval(i: int, row: dict[str, Any]) -> str:
        if chart.x == "#":
            return str(i + 1)
        return _fmt(row.get(chart.x)) if not isinstance(row.get(chart.x), str) else str(
            row[chart.x])

    traces: list[tuple[str, list[str], list[float]]] = []
    title = chart.title + (f" ({accel})" if accel else "")
    if chart.group:
        groups: dict[str, tuple[list[str], list[float]]] = {}
        for i, row in enumerate(rows):
            v = row.get(chart.y[0])
            if not is_number(v):
                continue
            g = str(row.get(chart.group))
            xs, ys = groups.setdefault(g, ([], []))
            xs.append(xval(i, row))
            ys.append(float(v))
        traces = [(g, xs, ys) for g, (xs, ys) in groups.items()]
    else:
        for field_name in chart.y:
            xs, ys = [], []
            for i, row in enumerate(rows):
                v = row.get(field_name)
                if is_number(v):
                    xs.append(xval(i, row))
                    ys.append(float(v))
            if xs:
                traces.append((column_title(field_name), xs, ys))
    if not traces:
        return None
    data = []
    for n, (name, xs, ys) in enumerate(traces):
        color = colors[n % len(colors)]
        if chart.kind == "line":
            data.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": xs,
                         "y": ys, "line": {"color": color}, "marker": {"color": color}})
        else:
            data.append({"type": "bar", "name": name, "x": xs, "y": ys,
                         "marker": {"color": color}})
    layout = _layout(title, chart.y_title,
                     barmode="stack" if chart.kind == "stacked-bar" else "group",
                     xaxis={"type": "category", "tickangle": -30, "automargin": True,
                            "title": {"text": "" if chart.x == "#" else column_title(chart.x)}})
    if chart.log_y:
        layout["yaxis"]["type"] = "log"
    if len(data) == 1:
        layout["showlegend"] = False
    return {"data": data, "layout": layout}


# ---- tables ----------------------------------------------------------------------------------
def _environment_rows(docs: Sequence[Document]) -> list[tuple[str, list[str]]]:
    def virt(d: Document) -> str:
        return d.environment.virtualization_line()

    def cpus(d: Document) -> str:
        e = d.environment
        if e.cpu_count is None and e.cpus_usable is None:
            return "—"
        if e.cpus_usable is not None and e.cpus_usable != e.cpu_count:
            return f"{e.cpus_usable} usable of {_fmt(e.cpu_count)}"
        return _fmt(e.cpu_count or e.cpus_usable)

    def mem(d: Document) -> str:
        b = d.environment.memory_bytes
        return f"{b / 2**30:.1f} GiB" if b else "—"

    def compiler(d: Document) -> str:
        e = d.environment
        parts = [p for p in (e.compiler, e.compiler_version) if p]
        flags = " ".join(e.cflags)
        return " ".join(parts + ([flags] if flags else [])) or "—"

    def kind(d: Document) -> str:
        if isinstance(d, RunResult):
            return f"suite {d.suite} ({d.source})"
        return f"experiment {d.experiment}"

    def profile(d: Document) -> str:
        if isinstance(d, RunResult):
            return f"{d.profile}, {d.mode}" + ("" if d.comparable else " (not comparable)")
        return "—"

    fields: list[tuple[str, Any]] = [
        ("Document", kind),
        ("Host", lambda d: d.environment.hostname or "—"),
        ("OS", lambda d: d.environment.os or "—"),
        ("Kernel", lambda d: d.environment.kernel or "—"),
        ("CPU", lambda d: d.environment.cpu_model or "—"),
        ("CPUs", cpus),
        ("Memory", mem),
        ("Virtualization", virt),
        ("Compiler / flags", compiler),
        ("Profile, mode", profile),
        ("Started", lambda d: d.started or "—"),
        ("Status", lambda d: d.status),
        ("Labels", lambda d: ", ".join(f"{k}={v}" for k, v in d.labels.items()) or "—"),
        ("virtbench", lambda d: d.environment.tool_version or "—"),
    ]
    return [(name, [str(get(d)) for d in docs]) for name, get in fields]


def index_value(section: Section | None) -> tuple[str, str]:
    """(the section's System Benchmarks Index Score, a note). A section without one (a
    partial or interrupted run) gets the geometric mean of the index values it has and the
    note ``partial: 9 of 12 tests``, as the fleet table does (report.fleet.score_of)."""
    if section is None:
        return "—", ""
    if section.index_score:
        return _fmt(section.index_score), ""
    values = [v for v in section_indexes(section).values() if v > 0]
    if not values:
        return "—", ""
    gm = math.exp(math.fsum(math.log(v) for v in values) / len(values))
    return _fmt(gm), f"partial: {len(values)} of {len(INDEX_TESTS)} tests"


def index_text(section: Section | None) -> str:
    value, note = index_value(section)
    return f"{value} ({note})" if note else value


def _numbers(all_runs: Sequence[RunView], copies: int) -> dict[str, Any]:
    """The numbers table of one copies count: the runs that have that section, each with
    score and index, and the ratio to the first run when the first run has the section."""
    runs = [rv for rv in all_runs if rv.doc.section(copies) is not None]
    base_run = all_runs[0] if all_runs and runs and runs[0] is all_runs[0] else None
    base = _tests_by_id(base_run.doc, copies) if base_run else {}
    columns = [{"label": rv.label, "color": rv.color,
                "ratio": base_run is not None and rv is not base_run} for rv in runs]
    rows = []
    for tid, _short, full in _ordered_tests(runs, copies):
        cells: list[dict[str, Any]] = []
        for rv, col in zip(runs, columns, strict=True):
            t = _tests_by_id(rv.doc, copies).get(tid)
            cell: dict[str, Any] = {"score": "—", "index": "—", "ratio": None, "unit": "",
                                    "ci": "", "show_ratio": col["ratio"]}
            cells.append(cell)
            if t is None:
                continue
            if t.status != "ok":
                cell["score"] = t.status
                continue
            idx = test_index(t)
            b = base.get(tid)
            if col["ratio"] and b is not None:
                vb = test_index(b) if idx is not None else b.score
                va = idx if idx is not None else t.score
                if va and vb:
                    cell["ratio"] = va / vb
            if t.ci is not None:
                cell["ci"] = f"±{t.ci.half_width_rel * 100:.1f}%"
            cell.update(score=_fmt(t.score), unit=t.unit, index=_fmt(idx))
        rows.append({"name": full, "cells": cells})
    index_scores = []
    for rv, col in zip(runs, columns, strict=True):
        sec = rv.doc.section(copies)
        value, note = index_value(sec)
        index_scores.append({"score": value, "partial": note, "show_ratio": col["ratio"]})
    return {"columns": columns, "rows": rows, "index_scores": index_scores}


# ---- the report ------------------------------------------------------------------------------
def build(docs: Sequence[Document], *, title: str | None = None) -> Report:
    """Everything the renderers need; ``docs`` in the user's order."""
    runs_docs = [d for d in docs if isinstance(d, RunResult)]
    exps = [d for d in docs if isinstance(d, ExperimentResult)]
    labels = _unique([run_label(d) for d in docs])
    label_of = {id(d): lab for d, lab in zip(docs, labels, strict=True)}
    runs: list[RunView] = []
    for n, d in enumerate(runs_docs):
        against = runs_docs[0] if n > 0 else None
        runs.append(RunView(doc=d, label=label_of[id(d)], color=PALETTE[n % len(PALETTE)],
                            explanation=explain(d, against),
                            against_label=label_of[id(runs_docs[0])] if against else None))
    copies = sorted({s.copies for d in runs_docs for s in d.sections})
    summary_rows = []
    for rv in runs:
        m1 = rv.explanation.sections
        scores = []
        for c in copies:
            scores.append((_copies_label(c), index_text(rv.doc.section(c))))
        summary_rows.append({
            "label": rv.label, "color": rv.color,
            "scores": scores,
            "kernel_entry": ", ".join(
                f"{m['kernel_entry_ratio']:.2f}" for c, m in m1.items()
                if isinstance(m.get("kernel_entry_ratio"), float)) or "—",
            "findings": sum(1 for f in rv.explanation.findings if f.severity != "info"),
            "headline": _headline(rv),
        })
    figures: dict[str, list[dict[str, Any]]] = {"profile": [], "index": [], "ratio": [],
                                                "scaling": [], "passes": []}
    for c in copies:
        for key, fig in (("profile", profile_figure(runs, c)), ("index", index_figure(runs, c)),
                         ("ratio", ratio_figure(runs, c)), ("passes", passes_figure(runs, c))):
            if fig:
                figures[key].append(fig)
    scaling = scaling_figure(runs)
    if scaling:
        figures["scaling"].append(scaling)
    notes = []
    if runs and not figures["passes"]:
        notes.append("No pass-by-pass scores in these documents (imported reports keep only "
                     "the final scores), so there are no pass distributions.")
    profiles = {d.profile for d in runs_docs}
    if len(profiles) > 1:
        notes.append("The runs were built with different profiles (" + ", ".join(
            sorted(profiles)) + "): CPU-bound tests depend on compiler flags.")
    experiments = [_experiment_section(d, label_of[id(d)]) for d in exps]
    fleets = {d.labels.get("fleet") for d in docs}
    fleet = None
    if len(docs) >= 2 and len(fleets) == 1 and None not in fleets:
        from virtbench.report.fleet import table_for_documents

        fleet = table_for_documents(list(docs))
    return Report(
        title=title or _default_title(runs, exps),
        generated=utc_now(),
        version=__version__,
        runs=runs,
        copies=copies,
        summary_rows=summary_rows,
        numbers={c: _numbers(runs, c) for c in copies},
        environment=_environment_rows([*runs_docs, *exps]),
        figures=figures,
        experiments=experiments,
        notes=notes,
        fleet=fleet,
    )


def _headline(rv: RunView) -> str | None:
    """``against the baseline (1 copy): overall 1.79x; CPU 1.00x; kernel entry 4.07x``."""
    for copies, vs in sorted(rv.explanation.comparison_metrics.items()):
        parts = [f"{name} {vs[key]:.2f}x" for name, key in (
            ("overall", "vs.overall"), ("CPU", "vs.cpu"), ("kernel entry", "vs.kernel_entry"),
            ("file", "vs.file"), ("shell", "vs.shell")) if isinstance(vs.get(key), float)]
        if parts:
            return f"Against the baseline ({_copies_label(copies)}): " + "; ".join(parts)
    return None


def _default_title(runs: Sequence[RunView], exps: Sequence[ExperimentResult]) -> str:
    if runs and not exps:
        return "virtbench report: " + (runs[0].label if len(runs) == 1 else
                                       f"{len(runs)} runs compared")
    if exps and not runs:
        names = sorted({e.experiment for e in exps})
        return "virtbench report: " + ", ".join(names)
    return (f"virtbench report: {len(runs)} run{'s' if len(runs) != 1 else ''}, "
            f"{len(exps)} experiment{'s' if len(exps) != 1 else ''}")


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict) and value and all(is_scalar(v) for v in value.values()) and len(
            value) <= 12:
        out.append((prefix, ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())))
    elif isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append((prefix, _fmt(value)))


def _experiment_section(doc: ExperimentResult, label: str) -> ExperimentSection:
    view = view_for(doc.experiment)
    rows = [r for r in doc.rows if isinstance(r, dict)]
    columns = table_columns(view, rows)
    table = [[_fmt(r.get(c)) for c in columns] for r in rows]
    numeric = [all(is_number(r.get(c)) or r.get(c) is None for r in rows) for c in columns]
    summary: list[tuple[str, str]] = []
    if view.summary_keys:
        for key in view.summary_keys:
            value: Any = doc.summary
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                _flatten(key, value, summary)
    else:
        for k, v in doc.summary.items():
            _flatten(k, v, summary)
    # Parameters one per line (nested ones dotted), never a truncated JSON dump.
    params: list[tuple[str, str]] = []
    for k, v in doc.params.items():
        _flatten(k, v, params)
    summary[:0] = [(f"parameter {k}", v) for k, v in params]
    accel = accelerator(doc)
    figures = [f for f in (experiment_figure(c, rows, accel=accel)
                           for c in charts_for(view, rows)) if f]
    title = view.title + (f" — {accel_note(accel)}" if accel else "")
    return ExperimentSection(doc=doc, label=label, title=title,
                             description=view.description,
                             columns=[column_title(c) for c in columns], rows=table,
                             numeric=numeric,
                             summary=summary, figures=figures, accel=accel_note(accel))
