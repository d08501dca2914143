"""The text report in UnixBench's layout, so it can be pasted where UnixBench reports were.

The UnixBench part (header, per-test lines, index table, score) keeps UnixBench's column
widths; virtbench's additions (confidence intervals, mode, failures) follow each section in
a block of their own so that parsers of UnixBench reports still read the rest.
"""

from __future__ import annotations

from datetime import datetime

from virtbench.results.model import RunResult, Section, TestResult

RULE = "=" * 72
THIN = "-" * 72


def _local(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return None


def _run_span(section: Section, run: RunResult) -> str:
    if run.source != "native" and section.started is None and run.finished is None:
        # An imported report without a date: 'started' is when it was imported, not when
        # it ran; printing it as the run's date would invent one.
        return "unknown"
    start = _local(section.started or run.started)
    end = _local(section.finished or run.finished)
    if start is None:
        return "unknown"
    text = start.strftime("%a %b %d %Y %H:%M:%S")
    if end is not None:
        text += " - " + end.strftime("%H:%M:%S")
    return text


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def header(run: RunResult) -> list[str]:
    env = run.environment
    banner = f"virtbench {env.tool_version or ''} (UnixBench-compatible, profile {run.profile}"
    banner += f", {run.mode} mode" + (", NOT COMPARABLE" if not run.comparable else "") + ")"
    lines = [RULE, "   " + banner.replace("  ", " "), ""]
    lines.append(f"   System: {env.hostname or 'unknown'}: GNU/Linux")
    lines.append(f"   OS: {env.os or 'GNU/Linux'} -- {env.kernel or '?'} -- "
                 f"{env.kernel_version or '?'}")
    lines.append(f"   Machine: {env.machine or '?'} ({env.machine or '?'})")
    cpus = env.cpu_count or 0
    for i in range(min(cpus, 8)):
        lines.append(f"   CPU {i}: {env.cpu_model or 'unknown'}")
    if cpus > 8:
        lines.append(f"   ... and {cpus - 8} more CPUs of the same model")
    virt = env.virtualization_summary()
    if virt:
        lines.append(f"   Virtualization: {virt}")
    if env.compiler_version:
        lines.append(f"   Compiler: {env.compiler_version} {' '.join(env.cflags)}")
    if env.load_average:
        load = ", ".join(f"{x:.2f}" for x in env.load_average)
        lines.append(f"   up {env.uptime or '?'},  load average: {load}")
    lines.append("")
    return lines


def test_line(t: TestResult) -> str:
    if t.status != "ok" or t.score is None:
        return f"{t.name:<40s} {'FAILED':>12s}"
    # A result read from an index table alone has no unit, seconds or samples: '?', not 0.
    secs = f"{t.elapsed:.1f}" if t.elapsed is not None else "?"
    samples = _plural(t.samples, "sample", "samples") if t.samples is not None else "? samples"
    return f"{t.name:<40s} {t.score:12.1f} {t.unit or '?':<5s} ({secs} s, {samples})"


def by_name(section: Section) -> list[TestResult]:
    """The section's tests in UnixBench's report order: sorted by name (they run in another)."""
    return sorted(section.tests, key=lambda t: t.name)


def index_table(section: Section) -> list[str]:
    rows = [t for t in by_name(section) if t.baseline is not None]
    if not rows:
        return []
    title = "System Benchmarks Index Values"
    lines = [f"{title:<40s}{'BASELINE':>13s}{'RESULT':>13s}{'INDEX':>9s}"]
    for t in rows:
        if t.score is None or t.index is None:
            lines.append(f"{t.name:<40s}{t.baseline:13.1f}{'FAILED':>13s}{'':>9s}")
        else:
            lines.append(f"{t.name:<40s}{t.baseline:13.1f}{t.score:13.1f}{t.index:9.1f}")
    lines.append(" " * 67 + "========")
    if section.index_score is not None:
        lines.append(f"{'System Benchmarks Index Score':<40s}{section.index_score:35.1f}")
    else:
        lines.append(f"System Benchmarks Index Score: not computed ({section.index_tests} of 12 "
                     "index tests succeeded)")
    return lines


def extras(run: RunResult, section: Section) -> list[str]:
    budget = (f", budget {run.budget_seconds:.0f} s" if run.budget_seconds else "") + (
        f", {run.wall_seconds:.0f} s used" if run.budget_seconds and run.wall_seconds else "")
    lines = ["", f"virtbench: 95% confidence intervals ({run.mode} mode"
             + (f", target ±{run.precision * 100:g}%" if run.precision else "") + budget + ")"]
    for t in by_name(section):
        if t.status != "ok":
            lines.append(f"  {t.name:<40s} {t.status.upper()}: {t.error or ''}")
            continue
        if t.ci is None:
            lines.append(f"  {t.name:<40s} (too few passes for an interval)")
            continue
        pct = t.ci.half_width_rel * 100
        line = (f"  {t.name:<40s} {t.ci.low:12.1f} .. {t.ci.high:<12.1f} ±{pct:.1f}%"
                f"  {len(t.passes)} passes")
        if t.allocation is not None:
            line += f", {t.allocation.seconds:.0f} s"
            if t.allocation.variance_share is not None:
                line += f", {t.allocation.variance_share * 100:.0f}% of the index's variance"
        elif t.stop_reason:
            line += f" ({t.stop_reason})"
        lines.append(line)
    if section.index_ci is not None and section.index_score is not None:
        ci = section.index_ci
        lines.append(f"  {'System Benchmarks Index Score':<40s} {ci.low:12.1f} .. "
                     f"{ci.high:<12.1f} ±{ci.half_width_rel * 100:.1f}%")
    stops = {t.stop_reason for t in section.tests if t.allocation is not None and t.stop_reason}
    if stops:
        lines.append(f"  stopped: {'; '.join(sorted(stops))}")
    return lines


def render(run: RunResult) -> str:
    """The whole report as text (ends with a newline)."""
    lines = header(run)
    cpus = run.environment.cpu_count
    for section in run.sections:
        lines += [THIN, f"Benchmark Run: {_run_span(section, run)}",
                  (_plural(cpus, 'CPU', 'CPUs') if cpus else "? CPUs") + " in system; running "
                  f"{_plural(section.copies, 'parallel copy', 'parallel copies')} of tests", ""]
        lines += [test_line(t) for t in by_name(section)]
        table = index_table(section)
        if table:
            lines += ["", *table]
        if run.source == "native":
            lines += extras(run, section)
        lines.append("")
    if not run.comparable:
        lines.append("NOTE: quick mode: short passes, not comparable with UnixBench results.")
    for note in run.notes:
        lines.append(f"NOTE: {note}")
    return "\n".join(lines).rstrip("\n") + "\n"
