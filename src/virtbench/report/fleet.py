"""The fleet at a glance: index per host, grouped by inventory group and by detected
virtualization, outliers marked and explained.

A host is an **outlier** of a group (of at least ``MIN_GROUP`` hosts with a score) when its
score is more than ``K`` MADs below the group's median:
``score < median - K * max(MAD, NOISE_FLOOR * median)``. The MAD (median absolute deviation
from the median) is robust: one slow host does not drag the yardstick it is measured
against. The floor (1% of the median) stops a group of near-identical hosts (MAD ~ 0) from
calling measurement noise an outlier. Each outlier gets the ``explain`` findings of its run,
compared with the group's median host.

Works from documents alone (their ``fleet``/``host``/``groups`` labels), so ``compare`` and
``report`` can use it for ``fleet:<id>`` references; ``fleet results``
(:mod:`virtbench.fleet.views`) adds the hosts that have no result (failed, unreachable) from
the fleet state.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from virtbench.results.model import ExperimentResult, RunResult

Document = RunResult | ExperimentResult

K = 3.0
NOISE_FLOOR = 0.01
MIN_GROUP = 3


@dataclass
class HostRow:
    host: str
    groups: list[str]
    status: str
    run_id: str | None = None
    virtualization: str | None = None
    """Detected layers, outermost first, e.g. ``kvm(firecracker-like) > docker``."""
    score: float | None = None
    """System Benchmarks Index Score of the chosen section (geometric mean of the index
    values present when the run did not have all 12 tests: ``partial``)."""
    partial: bool = False
    tests: dict[str, float] = field(default_factory=dict)
    copies: int | None = None
    vs_median: float | None = None
    """Score relative to the fleet median (1.0 = median)."""
    outlier_in: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass
class GroupStat:
    by: str
    """``group`` (inventory group), ``virtualization`` or ``fleet`` (all hosts)."""
    name: str
    hosts: list[str]
    scored: int
    median: float | None = None
    mad: float | None = None
    threshold: float | None = None
    outliers: list[str] = field(default_factory=list)


@dataclass
class FleetTable:
    fleet: str | None
    command: list[str]
    rows: list[HostRow]
    groups: list[GroupStat]
    copies: int | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "virtbench.fleet-results", "fleet": self.fleet,
                "command": self.command, "copies": self.copies,
                "rule": {"k_mad": K, "noise_floor": NOISE_FLOOR, "min_group": MIN_GROUP},
                "hosts": [asdict(r) for r in self.rows],
                "groups": [asdict(g) for g in self.groups], "notes": self.notes}


# ---- per document ------------------------------------------------------------------------------
def _section(run: RunResult, copies: int | None) -> Any:
    if not run.sections:
        return None
    if copies is not None:
        return run.section(copies)
    return min(run.sections, key=lambda s: s.copies)


def score_of(run: RunResult, copies: int | None) -> tuple[float | None, bool, dict[str, float],
                                                           int | None]:
    """(score, partial, index per test, copies) of the chosen section."""
    from virtbench.analysis.explain import section_indexes

    sec = _section(run, copies)
    if sec is None:
        return None, False, {}, None
    idx = section_indexes(sec)
    if sec.index_score is not None and sec.index_score > 0:
        return float(sec.index_score), False, idx, sec.copies
    values = [v for v in idx.values() if v > 0]
    if not values:
        return None, False, idx, sec.copies
    gm = math.exp(sum(math.log(v) for v in values) / len(values))
    return gm, True, idx, sec.copies


def row_for(doc: Document, host: str, groups: list[str], copies: int | None) -> HostRow:
    env = doc.environment
    row = HostRow(host=host, groups=groups, status="fetched", run_id=doc.id,
                  virtualization=env.virtualization.group_key()
                  if env.virtualization else None)
    if isinstance(doc, RunResult):
        row.score, row.partial, row.tests, row.copies = score_of(doc, copies)
        if doc.status != "complete":
            row.reason = f"run status {doc.status}"
    return row


# ---- the table ---------------------------------------------------------------------------------
def _mad_stats(values: list[float]) -> tuple[float, float, float]:
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values)
    return med, mad, med - K * max(mad, NOISE_FLOOR * med)


def build_table(rows: list[HostRow], docs: dict[str, Document], *, fleet: str | None,
                command: list[str], copies: int | None) -> FleetTable:
    groups: list[GroupStat] = []
    members: dict[tuple[str, str], list[HostRow]] = {("fleet", "all hosts"): list(rows)}
    for r in rows:
        for g in r.groups:
            members.setdefault(("group", g), []).append(r)
        if r.virtualization:
            members.setdefault(("virtualization", r.virtualization), []).append(r)
    notes: list[str] = []
    scored_all = [r.score for r in rows if r.score is not None]
    fleet_median = statistics.median(scored_all) if scored_all else None
    for r in rows:
        if r.score is not None and fleet_median:
            r.vs_median = r.score / fleet_median
    medians: dict[tuple[str, str], HostRow] = {}
    for (by, name), rs in sorted(members.items(), key=lambda kv: (
            ["fleet", "group", "virtualization"].index(kv[0][0]), kv[0][1])):
        scored = [r for r in rs if r.score is not None]
        st = GroupStat(by=by, name=name, hosts=[r.host for r in rs], scored=len(scored))
        if scored:
            med, mad, thr = _mad_stats([r.score for r in scored if r.score is not None])
            st.median, st.mad = med, mad
            if len(scored) >= MIN_GROUP:
                st.threshold = thr
                for r in scored:
                    if r.score is not None and r.score < thr:
                        st.outliers.append(r.host)
                        label = name if by != "fleet" else "fleet"
                        r.outlier_in.append(f"{by}:{label}" if by != "fleet" else "fleet")
                medians[(by, name)] = min(scored, key=lambda r: abs((r.score or 0) - med))
        groups.append(st)
    rank = {"group": 0, "virtualization": 1, "fleet": 2}
    for r in rows:  # the most specific yardstick first
        r.outlier_in.sort(key=lambda o: rank.get(o.split(":", 1)[0], 3))
    if any(r.partial for r in rows):
        notes.append("partial: the run did not have all 12 index tests; its score is the "
                     "geometric mean of the index values it has")
    if rows and not scored_all:
        notes.append("no host has an index score (the command was not a suite run)")
    _explain_outliers(rows, groups, medians, docs)
    return FleetTable(fleet=fleet, command=command, rows=rows, groups=groups, copies=copies,
                      notes=notes)


def _explain_outliers(rows: list[HostRow], groups: list[GroupStat],
                      medians: dict[tuple[str, str], HostRow],
                      docs: dict[str, Document]) -> None:
    try:
        from virtbench.analysis.explain import explain
    except ImportError:  # pragma: no cover - explain ships with virtbench
        return
    by_host = {r.host: r for r in rows}
    # The most specific yardstick first: the inventory group, then the virtualization type,
    # then the whole fleet.
    order = {"group": 0, "virtualization": 1, "fleet": 2}
    for g in sorted(groups, key=lambda g: order[g.by]):
        ref = medians.get((g.by, g.name))
        for host in g.outliers:
            r = by_host[host]
            run = docs.get(host)
            if not isinstance(run, RunResult) or r.findings:
                continue
            against = docs.get(ref.host) if ref is not None and ref.host != host else None
            try:
                ex = explain(run, against if isinstance(against, RunResult) else None)
            except Exception as exc:  # explain must never break the table
                r.findings.append(f"(explain failed: {exc})")
                continue
            where = (f" (vs {ref.host}, the median host of {g.name})"
                     if against is not None and ref is not None else "")
            pct = (1 - (r.score or 0) / g.median) * 100 if g.median else 0.0
            r.findings.append(f"{pct:.0f}% below the {g.name} median{where}")
            for f in ex.findings[:3]:
                r.findings.append(f"[{f.severity}] {f.title}: {f.message}")
            if not ex.findings:
                r.findings.append("no explain rule fired: compare the per-test indexes "
                                  f"(virtbench compare {ref.run_id if ref else ''} "
                                  f"{r.run_id})")


def table_for_documents(docs: Sequence[Document], copies: int | None = None) -> FleetTable:
    """The same table from documents alone (hosts and groups from their fleet labels, or the
    environment's hostname)."""
    rows: list[HostRow] = []
    by_host: dict[str, Document] = {}
    fleets = {d.labels.get("fleet") for d in docs}
    for d in docs:
        host = d.labels.get("host") or d.environment.hostname or d.id
        if host in by_host:
            host = f"{host}#{d.id[:6]}"
        groups = [g for g in d.labels.get("groups", "").split(",") if g]
        by_host[host] = d
        rows.append(row_for(d, host, groups, copies))
    fleet = next(iter(fleets)) if len(fleets) == 1 else None
    return build_table(rows, by_host, fleet=fleet, command=[], copies=copies)


# ---- text --------------------------------------------------------------------------------------
def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def host_cells(r: HostRow) -> dict[str, str]:
    """A host row as display strings (text, Markdown and the HTML report)."""
    if r.score is not None:
        idx = _fmt(r.score) + ("*" if r.partial else "")
        vs = f"{(r.vs_median - 1) * 100:+.1f}%" if r.vs_median is not None else "-"
    else:
        idx, vs = "-", "-"
    if r.outlier_in:
        note = "OUTLIER in " + ", ".join(r.outlier_in)
    elif r.status != "fetched" or r.reason:
        note = f"{r.status}: {r.reason}" if r.reason else r.status
    else:
        note = ""
    return {"host": r.host, "groups": ",".join(r.groups), "virt": r.virtualization or "-",
            "index": idx, "vs": vs, "note": note}


def group_cells(g: GroupStat) -> dict[str, str]:
    label = {"fleet": "fleet", "group": "group", "virtualization": "virt"}[g.by]
    thr = _fmt(g.threshold) if g.threshold is not None else (
        f"(<{MIN_GROUP} scored)" if g.median is not None else "-")
    return {"name": f"{label} {g.name}" if g.by != "fleet" else "all hosts",
            "hosts": str(len(g.hosts)), "scored": str(g.scored), "median": _fmt(g.median),
            "mad": _fmt(g.mad), "threshold": thr, "outliers": ", ".join(g.outliers) or "-"}


def render_markdown(t: FleetTable) -> str:
    lines = ["| host | groups | virtualization | index | vs median | note |",
             "|---|---|---|---:|---:|---|"]
    for r in t.rows:
        c = host_cells(r)
        lines.append(f"| {c['host']} | {c['groups']} | {c['virt']} | {c['index']} | {c['vs']} "
                     f"| {c['note']} |")
    lines += ["", "| group | hosts | median | MAD | outlier below | outliers |",
              "|---|---:|---:|---:|---:|---|"]
    for g in t.groups:
        c = group_cells(g)
        lines.append(f"| {c['name']} | {c['hosts']} | {c['median']} | {c['mad']} "
                     f"| {c['threshold']} | {c['outliers']} |")
    for r in t.rows:
        if r.findings:
            lines += ["", f"**{r.host}** ({r.run_id}):"] + [f"- {f}" for f in r.findings]
    lines += [f"\n_{n}_" for n in t.notes]
    return "\n".join(lines) + "\n"


def render_table(t: FleetTable) -> str:
    lines: list[str] = []
    cmd = f": virtbench {' '.join(t.command)}" if t.command else ""
    scored = sum(1 for r in t.rows if r.score is not None)
    lines.append(f"fleet {t.fleet or '(documents)'}{cmd}")
    lines.append(f"{len(t.rows)} hosts, {scored} with an index score"
                 + (f", {t.copies} cop{'y' if t.copies == 1 else 'ies'}" if t.copies else ""))
    lines.append("")
    from virtbench.table import Col, output_width, render

    width = output_width()
    hosts = [host_cells(r) for r in t.rows]
    lines.append(render(
        [Col("HOST"), Col("GROUPS", wrap=True, min_width=8, breakable=False),
         Col("VIRTUALIZATION", wrap=True, min_width=14), Col("INDEX", right=True),
         Col("VS MEDIAN", right=True), Col("NOTE", wrap=True, min_width=12)],
        [[c["host"], c["groups"], c["virt"], c["index"], c["vs"], c["note"]] for c in hosts],
        width=width, rule=False).rstrip("\n"))
    lines.append("")
    cells = [group_cells(g) for g in t.groups]
    lines.append(render(
        [Col("GROUP", wrap=True, min_width=10), Col("HOSTS", right=True),
         Col("SCORED", right=True), Col("MEDIAN", right=True), Col("MAD", right=True),
         Col("OUTLIER BELOW", right=True), Col("OUTLIERS", wrap=True, min_width=12,
                                               breakable=False)],
        [[c["name"], str(c["hosts"]), str(c["scored"]), c["median"], c["mad"], c["threshold"],
          c["outliers"]] for c in cells], width=width, rule=False).rstrip("\n"))
    explained = [r for r in t.rows if r.findings]
    if explained:
        lines.append("")
        lines.append(f"outliers (score < median - {K:g} x MAD) explained:")
        for r in explained:
            lines.append(f"  {r.host} ({r.run_id}):")
            for f in r.findings:
                lines.append(f"    - {f}")
    for n in t.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines) + "\n"
