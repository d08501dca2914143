"""Human-readable text for a DetectReport."""

from __future__ import annotations

from typing import Any

from virtbench.probes.base import printable
from virtbench.probes.classify import describe
from virtbench.probes.model import DetectReport


def _kib(v: Any) -> str:
    return f"{v / 2**20:.1f} GiB" if isinstance(v, int) else "?"


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else "?"


def fact_lines(facts: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    cs = facts.get("clocksource") or {}
    if cs.get("current"):
        rows.append(("clocksource", f"{cs.get('current')} (available: "
                     f"{' '.join(cs.get('available') or []) or '?'})"))
    cpu = facts.get("cpu") or {}
    if cpu.get("logical_cpus"):
        quota = cpu.get("cgroup_quota_cpus")
        rows.append((
            "cpu",
            f"{cpu.get('model') or '?'}; {cpu.get('logical_cpus')} logical, usable "
            f"{_num(cpu.get('usable_cpus'))} "
            f"(affinity {cpu.get('affinity') or '?'}, "
            f"{'cgroup quota ' + str(quota) if quota else 'no cgroup quota'})",
        ))
        smt = cpu.get("smt") or {}
        rows.append((
            "topology",
            f"SMT {smt.get('control') or '?'} (threads/core {smt.get('threads_per_core')}), "
            f"NUMA nodes {cpu.get('numa_nodes') or '?'}, governor {cpu.get('governor') or 'none'}",
        ))
    st = facts.get("steal") or {}
    if st.get("since_boot_pct") is not None:
        s = f"{st.get('since_boot_pct')}% since boot"
        if st.get("sample_pct") is not None:
            s += f", {st['sample_pct']}% over {st.get('sample_s')} s"
        rows.append(("steal", s))
    mem = facts.get("memory") or {}
    if mem.get("total_kib"):
        lim = mem.get("cgroup_limit_bytes")
        rows.append((
            "memory",
            f"{_kib(mem.get('total_kib'))} total, {_kib(mem.get('available_kib'))} available, "
            f"THP {mem.get('thp')}"
            + (f", cgroup limit {lim / 2**30:.1f} GiB" if lim else ""),
        ))
    mit = facts.get("mitigations") or {}
    if mit.get("vulnerabilities"):
        rows.append((
            "mitigations",
            f"mitigated: {', '.join(mit.get('mitigated') or []) or 'none'}; vulnerable: "
            f"{', '.join(mit.get('vulnerable') or []) or 'none'}"
            + (f"; cmdline {' '.join(mit['cmdline'])}" if mit.get("cmdline") else ""),
        ))
    sto = facts.get("storage") or {}
    if sto.get("fs_type"):
        rot = sto.get("rotational")
        rows.append((
            "storage",
            f"{sto.get('path')}: {sto.get('fs_type')} on {sto.get('device') or sto.get('source')}"
            + (f" ({sto['device_kind']})" if sto.get("device_kind") else "")
            + f", scheduler {sto.get('scheduler') or '?'}, "
            f"{'rotational' if rot else 'non-rotational' if rot is False else 'rotational ?'}",
        ))
    nest = facts.get("nesting") or {}
    if nest.get("cpu_flags_known") or nest.get("dev_kvm") != "absent":
        s = f"vmx/svm: {nest.get('cpu_flag') or 'no'}; /dev/kvm: {nest.get('dev_kvm')}"
        if nest.get("kvm_backend"):
            s += f" via {nest['kvm_backend']}"
        rows.append(("nesting", s))
    log = facts.get("kernel_log") or {}
    if log.get("skipped"):
        rows.append(("kernel log", f"{log.get('source')}: latest boot only; skipped "
                     + "; ".join(log["skipped"])))
    dev = facts.get("devices") or {}
    if dev:
        for cat in ("disk", "net"):
            d = dev.get(cat) or {}
            names = (d.get("pv") or []) + (d.get("emulated") or [])
            rows.append((cat, f"{d.get('state')} ({', '.join(names) or 'no driver seen'})"))
    return rows


def render(report: DetectReport) -> str:
    """The report as text: on a terminal (or with ``$COLUMNS``) the long lines wrap under
    their own indentation, in a pipe one line each (virtbench.table's rules)."""
    from virtbench.table import output_width

    width = output_width()
    out: list[str] = []

    def say(text: str, indent: str = "", hang: str = "") -> None:
        text = printable(text)  # escaped before it is measured and wrapped
        if width is None or len(indent) + len(text) <= width:
            out.append(indent + text)
            return
        import textwrap

        out.extend(textwrap.wrap(text, max(20, width), initial_indent=indent,
                                 subsequent_indent=indent + hang, break_long_words=False,
                                 break_on_hyphens=False))

    where = "live system" if report.live else f"captured tree {report.root}"
    say(f"virtbench detect: {where} ({report.duration_s:.2f} s)", hang="  ")
    out.append("")
    say(f"Summary: {report.summary}", hang="  ")
    out.append("")
    out.append("Layers (outermost first):")
    for i, layer in enumerate(report.layers, 1):
        say(f"{i}. {layer.kind:<10} {describe(layer)}   confidence {layer.confidence:.2f}",
            "  ", "   ")
        for ev in layer.evidence:
            say(ev, "       ", "  ")
    out.append("")
    out.append("Facts:")
    for key, value in fact_lines(report.facts):
        say(f"{key:<12} {value}", "  ", " " * 13)
    if report.advice:
        out.append("")
        out.append("Advice:")
        for a in report.advice:
            say(f"- {a}", "  ", "  ")
    if report.unreadable:
        out.append("")
        out.append("Unreadable (lowers confidence):")
        for u in report.unreadable:
            say(f"- {u}", "  ", "  ")
    # Every string may come from a captured tree: no control character reaches the terminal.
    return "\n".join(printable(line) for line in out) + "\n"
