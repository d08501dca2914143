"""``virtbench migrate``: measure a real live migration between two QEMU processes.

Per (dirty rate, bandwidth) point a running guest is moved from one QEMU process to another
on this host (:mod:`virtbench.vm.migration` does the moving); one row per point. The guest
programs and QEMU are found and the accelerator is chosen before the document is opened.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from virtbench.errors import UsageError
from virtbench.experiments.common import table
from virtbench.experiments.spec import (
    Chart,
    Context,
    ExperimentSpec,
    ExperimentView,
    Row,
    Summary,
)
from virtbench.results.model import ExperimentResult
from virtbench.vm import migration as mig


@dataclass(frozen=True)
class MigrateParams:
    bandwidths: tuple[int, ...]
    """Bytes/s limits (0: unlimited)."""
    dirty_rates: tuple[float, ...]
    """MB/s the guest workload dirties."""
    options: mig.MigrateOptions
    kernel: str | None = None
    accel: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        o = self.options
        return {
            "bandwidths": [mig.fmt_rate(b) for b in self.bandwidths],
            "dirty_rates_mb_s": list(self.dirty_rates),
            "memory_mb": o.memory_mb, "vcpus": o.vcpus, "wss_mb": o.wss_mb,
            "storage": o.storage, "disk_mb": o.disk_mb if o.storage != "none" else None,
            "downtime_limit_ms": o.downtime_limit_ms, "auto_converge": o.auto_converge,
            "postcopy": o.postcopy, "timeout_s": o.timeout, "settle_s": o.settle,
            "pin": o.pin, "accel_requested": self.accel,
        }


class MigrateRow(Row):
    point: str
    bandwidth: str
    dirty_rate_mb_s: float
    converged: bool
    total_time_s: float | None
    downtime_ms: float | None
    counter_continues: bool
    same_boot: bool


class MigrateSummary(Summary):
    accel: str
    kernel: str
    qemu: str


def run(params: MigrateParams, ctx: Context) -> None:
    from virtbench.vm import accel as accel_mod
    from virtbench.vm import kernel as kernel_mod
    from virtbench.vm.initramfs import find_busybox
    from virtbench.vm.qemu import find_qemu, qemu_version, session

    kernel = kernel_mod.find_kernel(params.kernel)
    qemu = find_qemu()
    find_busybox()
    choice = accel_mod.choose(kernel, params.accel)
    ctx.say(f"accelerator: {choice.label()} -- {choice.reason}")
    doc = ctx.open(params.to_dict())
    ctx.summarize = _summarise
    doc.summary = {"accel": choice.accel, "accel_reason": choice.reason,
                   "kernel": str(kernel), "qemu": str(qemu), "qemu_version": qemu_version(qemu)}
    if choice.accel == "tcg":
        doc.notes.append("guests ran under TCG (software emulation): absolute times are slower "
                         "than under KVM; trends across bandwidth and dirty rate still hold")
    with session(prefix="virtbench-migrate-") as s:
        m = mig.Migrator(s, kernel, choice.accel, params.options, log=ctx.say)
        m.boot()
        doc.summary.update({"boot_seconds": round(m.boot_seconds or 0, 2),
                            "guest_boot_id": m.boot_id, "guest_kernel_args": m.kernel_args})
        for rate in params.dirty_rates:
            for bw in params.bandwidths:
                _point(m, mig.Point(bw, rate), doc, ctx)
    _crashes(doc)


def _point(m: mig.Migrator, point: mig.Point, doc: ExperimentResult, ctx: Context) -> None:
    if m.current is None:  # the guest crashed in the previous move
        ctx.say("booting a new guest for the remaining points")
        m.boot()
        doc.summary.setdefault("guest_boot_ids", [doc.summary["guest_boot_id"]])
        doc.summary["guest_boot_ids"].append(m.boot_id)
    result = m.run_point(point)
    row = dict(result.row)
    row["iteration_log"] = result.iterations
    row["samples"] = result.samples
    r = result.row
    ctx.say(f"  {r['bandwidth']}/s, {point.dirty_rate_mb:g} MB/s dirty: "
            + (f"{r['total_time_s']} s total, downtime {r['downtime_ms']} ms "
               f"(guest saw {r['guest_downtime_ms']} ms), {r['iterations']} "
               "iterations" if r["converged"] else r.get("reason", "failed")))
    ctx.add_row(row)


def _crashes(doc: ExperimentResult) -> None:
    doc.summary["moves"] = sum(1 for r in doc.rows
                               if r["converged"] and not r.get("guest_crashed"))
    crashed = [r["point"] for r in doc.rows if r.get("guest_crashed")]
    if crashed:
        doc.summary["guest_crashed"] = crashed
        doc.notes.append(
            "the guest's kernel crashed right after the move at " + ", ".join(crashed)
            + ": its memory arrived inconsistent (seen with QEMU 7.2 under TCG on long, "
            "many-iteration migrations); the points after it used a newly booted guest")


def _summarise(doc: ExperimentResult) -> None:
    """Where migration stops converging: per dirty rate, the highest bandwidth that failed."""
    points = []
    for rate in sorted({r["dirty_rate_mb_s"] for r in doc.rows}):
        rows = [r for r in doc.rows if r["dirty_rate_mb_s"] == rate]
        failed = [r for r in rows if not r["converged"]]
        if failed:
            worst = max(failed, key=lambda r: r.get("bandwidth_bytes_per_s") or 0)
            points.append(f"{worst['bandwidth']}/s at {rate:g} MB/s dirty")
    if points:
        doc.summary["non_convergence"] = "; ".join(points)


# ---- the command: options, text, exit status, report view ---------------------------------
def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bandwidth", default="5M,10M,20M,50M,200M", metavar="LIST",
                   help="migration bandwidth limits, bytes/s with K/M/G (binary), comma "
                        "separated, or 'unlimited' (default: 5M,10M,20M,50M,200M)")
    p.add_argument("--dirty-rate", default="8", metavar="LIST",
                   help="MB/s the guest workload dirties, comma separated (default: 8)")
    p.add_argument("--memory", type=int, default=128, metavar="MB",
                   help="guest memory (default: 128)")
    p.add_argument("--vcpus", type=int, default=1, help="guest vCPUs (default: 1)")
    p.add_argument("--wss", type=int, default=32, metavar="MB",
                   help="working set the guest fills and dirties (default: 32)")
    p.add_argument("--storage", default="none", choices=("none", "shared", "block"),
                   help="guest disk: none, shared (one file both QEMUs open) or block "
                        "(local disks, mirrored over NBD) (default: none)")
    p.add_argument("--disk-size", type=int, default=64, metavar="MB",
                   help="guest disk size for --storage shared/block (default: 64)")
    p.add_argument("--downtime-limit", type=int, default=300, metavar="MS",
                   help="largest pause QEMU may take to switch over (default: 300)")
    p.add_argument("--auto-converge", action="store_true",
                   help="let QEMU throttle the guest's vCPUs until the migration converges")
    p.add_argument("--postcopy", action="store_true",
                   help="switch to post-copy after --postcopy-after iterations")
    p.add_argument("--postcopy-after", type=int, default=2, metavar="N",
                   help="pre-copy iterations before post-copy (default: 2)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds of pre-copy after which a migration counts as not converging "
                        "and is cancelled (default: 30)")
    p.add_argument("--settle", type=float, default=2.0, metavar="S",
                   help="seconds of guest throughput measured before and after (default: 2)")
    p.add_argument("--kernel", default=None, metavar="PATH",
                   help="guest kernel (default: $VIRTBENCH_KERNEL or the newest /boot/vmlinuz-*)")
    p.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"),
                   help="auto: KVM if a guest really boots under it, else TCG (default: auto)")
    p.add_argument("--pin", default=None, metavar="CPUS",
                   help="pin vCPU threads to these host CPUs, e.g. 0 or 0,1")
    p.add_argument("--no-save", action="store_true",
                   help="do not store the result in the results directory")


def _cpus(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        cpus = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--pin {text!r}: expected CPU numbers like 0,1") from None
    return cpus or None


def params_from_args(args: argparse.Namespace) -> MigrateParams:
    bandwidths = mig.parse_list(args.bandwidth, lambda t: mig.parse_rate(t, "bandwidth"))
    try:
        rates = [float(x) for x in args.dirty_rate.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--dirty-rate {args.dirty_rate!r}: expected MB/s numbers") from None
    if not bandwidths or not rates or any(r < 0 for r in rates):
        raise UsageError("--bandwidth and --dirty-rate need at least one non-negative value")
    for name, value in (("--memory", args.memory), ("--vcpus", args.vcpus),
                        ("--timeout", args.timeout), ("--disk-size", args.disk_size)):
        if value <= 0:
            raise UsageError(f"{name} must be positive")
    if args.wss > args.memory - mig.GUEST_RESERVE_MB or args.wss < 1:
        raise UsageError(f"--wss must be between 1 and --memory - {mig.GUEST_RESERVE_MB} MB "
                         f"(the guest kernel needs the rest): at most "
                         f"{max(0, args.memory - mig.GUEST_RESERVE_MB)} for --memory "
                         f"{args.memory}")
    options = mig.MigrateOptions(
        memory_mb=args.memory, vcpus=args.vcpus, wss_mb=args.wss, storage=args.storage,
        disk_mb=args.disk_size, downtime_limit_ms=args.downtime_limit,
        auto_converge=args.auto_converge, postcopy=args.postcopy,
        postcopy_after=args.postcopy_after, timeout=args.timeout, settle=args.settle,
        pin=_cpus(args.pin),
    )
    return MigrateParams(tuple(bandwidths), tuple(rates), options, args.kernel, args.accel)


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _table(rows: list[dict[str, Any]]) -> str:
    """Two tables, each fitting an 80-column terminal: the move (time, downtime, what was
    sent), then the guest's work per second around it; the point (bandwidth, dirty rate)
    starts every row of both."""
    move = ["bandwidth", "dirty MB/s", "converged", "total s", "downtime ms",
            "guest gap ms", "iter", "sent MB", "dirty MB/s (qemu)"]
    work = ["bandwidth", "dirty MB/s", "before", "during", "after", "counter"]
    first, second = [], []
    for r in rows:
        point = [r["bandwidth"], _fmt(r["dirty_rate_mb_s"], 0)]
        first.append([
            *point, _fmt(r["converged"]) + (" (post-copy)" if r.get("postcopy") else ""),
            _fmt(r["total_time_s"]), _fmt(r["downtime_ms"]), _fmt(r["guest_downtime_ms"], 1),
            _fmt(r["iterations"]), _fmt(r["transferred_mb"], 1), _fmt(r["dirty_mb_s_qemu"]),
        ])
        second.append([
            *point, _fmt(r["throughput_before"], 0), _fmt(r["throughput_during"], 0),
            _fmt(r["throughput_after"], 0),
            "CRASHED" if r.get("guest_crashed") else
            "continues" if r["counter_continues"] else "BROKEN",
        ])
    return ("live migration\n" + table(move, first)
            + "\nguest work (chunks/s) before, during and after the move\n"
            + table(work, second))


def render(doc: ExperimentResult) -> str:
    out = [_table(doc.rows)]
    nc = doc.summary.get("non_convergence")
    if nc:
        out.append(f"migration stops converging at {nc}\n")
    moved = [r for r in doc.rows if r["converged"]]
    good = [r for r in moved if r["same_boot"] and r["counter_continues"]]
    boots = doc.summary.get("guest_boot_ids") or [doc.summary.get("guest_boot_id") or "?"]
    out.append(f"{len(good)} of {len(moved)} completed moves: the guest kept running (same "
               f"boot id, counter continued); guest boot id(s): "
               + ", ".join(str(b)[:8] for b in boots) + "\n")
    for point in doc.summary.get("guest_crashed", []):
        row = next(r for r in doc.rows if r["point"] == point)
        out.append(f"{point}: {row['reason']}\n")
    return "".join(out)


def exit_code(doc: ExperimentResult) -> int:
    broken = [r for r in doc.rows if not (r["counter_continues"] and r["same_boot"])]
    return 1 if broken else 0


VIEW = ExperimentView(
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
)

SPEC = ExperimentSpec(
    name="migrate", command=("migrate",),
    help="measure a live migration of a running guest between two QEMU processes on this host",
    params=MigrateParams, row=MigrateRow, summary=MigrateSummary,
    main_metric="none (rows per point; tune cannot compare migrate)",
    add_options=add_options, params_from_args=params_from_args, run=run, render=render,
    view=VIEW, docs="migrate.md", exit_code=exit_code,
    examples=(
        "virtbench migrate",
        "virtbench migrate --bandwidth 20M --dirty-rate 2,8,32 --storage block",
        "virtbench migrate --bandwidth 8M --dirty-rate 16 --postcopy",
    ),
)
