"""CPU caps: what a CFS quota does to a workload that mixes user work and system calls.

A solo baseline first (sysmix on the host, no cap), then one capped instance per quota
(``--quota 1.0,0.5,0.3`` CPUs; for containers the quota caps the workload's cgroup, for VMs
the QEMU process). Each run lasts ``--duration`` seconds; per quota: throughput (units/s,
relative to the baseline), user vs system CPU seconds from the cgroup's accounting, the
share of system time, periods throttled and time throttled, and system-call latency
percentiles measured by the workload itself.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from virtbench.cgroups import quota_us
from virtbench.errors import UsageError
from virtbench.experiments import common, fixedwork, programs
from virtbench.experiments.instances import (
    BackendOptions,
    InstanceOutcome,
    InstanceRequest,
    WorkloadCommand,
    kinds,
    make_backend,
)
from virtbench.experiments.spec import (
    Chart,
    Context,
    ExperimentSpec,
    ExperimentView,
    Row,
    Summary,
)
from virtbench.results.model import ExperimentResult


@dataclass(frozen=True)
class CapParams:
    kinds: tuple[str, ...]
    """Instance kinds to cap, side by side (``container``, ``vm``)."""
    quotas: tuple[float, ...] = (1.0, 0.5, 0.3)
    workload: str = "sysmix"
    sys_fraction: float = fixedwork.DEFAULT_SYS_FRACTION
    duration: float = 3.0
    repeat: int = 1
    period_us: int = 100_000
    cgroup: str = "auto"
    net: bool = False
    timeout: float = 600.0
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.quotas:
            raise UsageError("--quota needs at least one value, e.g. 1.0,0.5,0.3")
        for q in self.quotas:
            if not q > 0:
                raise UsageError(f"--quota values must be > 0 CPUs (got {q:g})")
            quota_us(q, self.period_us)  # refuses quotas the kernel would refuse
        if self.workload != "sysmix":
            raise UsageError(f"cap runs --workload sysmix (got {self.workload!r})")
        fixedwork.check_fraction(self.sys_fraction)
        if not 0.05 <= self.duration <= 3600:
            raise UsageError(f"--duration must be 0.05..3600 s (got {self.duration:g})")
        if self.repeat < 1:
            raise UsageError(f"--repeat must be >= 1 (got {self.repeat})")
        if not self.kinds or len(set(self.kinds)) != len(self.kinds):
            raise UsageError("--kind takes one or more distinct kinds, e.g. container,vm")
        if "process" in self.kinds:
            raise UsageError("cap needs --kind container or vm (plain processes have no cap)")


def _row(label: str, kind: str, quota: float | None, outs: list[InstanceOutcome],
         base_rate: float | None) -> dict[str, Any]:
    def avg(get: Callable[[InstanceOutcome], float | int | None]) -> float | None:
        vals = [get(o) for o in outs]
        nums = [float(v) for v in vals if v is not None]
        return common.mean(nums) if nums else None

    rate = avg(lambda o: o.metrics.get("units_per_s"))
    user = avg(lambda o: o.cpu.user_s if o.cpu else None)
    system = avg(lambda o: o.cpu.system_s if o.cpu else None)
    usage = avg(lambda o: o.cpu.usage_s if o.cpu else None)
    secs = avg(lambda o: o.seconds)
    periods = avg(lambda o: o.cpu.nr_periods if o.cpu else None)
    throttled = avg(lambda o: o.cpu.nr_throttled if o.cpu else None)
    own_user = avg(lambda o: o.metrics.get("user_s"))
    own_sys = avg(lambda o: o.metrics.get("sys_s"))
    units = avg(lambda o: o.metrics.get("units"))
    return {
        "condition": label,
        "kind": kind,
        "quota": quota,
        "seconds": common.rnd(secs),
        "units_per_s": common.rnd(rate, 1),
        "syscalls_per_s": common.rnd(avg(lambda o: o.metrics.get("syscalls_per_s")), 0),
        "throughput_rel": common.rnd(rate / base_rate if rate and base_rate else None),
        "cpu_usage_s": common.rnd(usage),
        "cpus_used": common.rnd(usage / secs if usage is not None and secs else None),
        "cpu_user_s": common.rnd(user),
        "cpu_system_s": common.rnd(system),
        "system_share": common.rnd(system / (user + system)
                                   if user is not None and system is not None and user + system
                                   else None),
        "nr_periods": common.rnd(periods, 1),
        "nr_throttled": common.rnd(throttled, 1),
        "throttled_share": common.rnd(throttled / periods if throttled is not None and periods
                                      else None),
        "throttled_s": common.rnd(avg(lambda o: o.cpu.throttled_s if o.cpu else None)),
        # The workload's own view (its getrusage inside the container or guest): CPU time
        # per unit of work, user and system.
        "own_user_s": common.rnd(own_user),
        "own_system_s": common.rnd(own_sys),
        "own_system_share": common.rnd(own_sys / (own_user + own_sys)
                                       if own_user is not None and own_sys is not None
                                       and own_user + own_sys > 0 else None),
        "user_us_per_unit": common.rnd(1e6 * own_user / units if own_user is not None and units
                                       else None, 2),
        "system_us_per_unit": common.rnd(1e6 * own_sys / units if own_sys is not None and units
                                         else None, 2),
        "guest_steal_s": common.rnd(avg(lambda o: o.metrics.get("guest_steal_s"))),
        "p50_ns": avg(lambda o: o.metrics.get("p50_ns")),
        "p90_ns": avg(lambda o: o.metrics.get("p90_ns")),
        "p99_ns": avg(lambda o: o.metrics.get("p99_ns")),
        "max_ns": avg(lambda o: o.metrics.get("max_ns")),
        "accounting": outs[0].accounting if outs else "",
        "repeats": len(outs),
        "samples": common.outcome_dicts(outs),
    }


class CapRow(Row):
    condition: str
    kind: str
    quota: float | None
    seconds: float | None
    units_per_s: float | None
    throughput_rel: float | None
    system_share: float | None
    throttled_s: float | None
    repeats: int


class CapSummary(Summary):
    throughput_rel: dict[str, float | None]
    throttled_s: dict[str, float | None]
    system_share: dict[str, float | None]


def _plan(params: CapParams) -> list[tuple[str, str, float | None]]:
    """One condition per (kind, quota): "quota 0.5" with one kind, "vm quota 0.5" with more."""
    plan: list[tuple[str, str, float | None]] = [("host", "host", None)]
    for quota in params.quotas:
        for kind in params.kinds:
            label = f"quota {quota:g}" if len(params.kinds) == 1 else f"{kind} quota {quota:g}"
            plan.append((label, kind, quota))
    return plan


def _params_dict(params: CapParams, cal: fixedwork.SysmixCalibration,
                 workload: WorkloadCommand) -> dict[str, Any]:
    d = asdict(params)
    d["kind"] = ",".join(params.kinds)
    d["kinds"] = list(params.kinds)
    d["quotas"] = list(params.quotas)
    d["calibration"] = cal.to_dict()
    d["workload_args"] = list(workload.args)
    return d


def run(params: CapParams, ctx: Context) -> None:
    params.validate()
    ctx.say(f"cap: calibrating sysmix at full speed (system-call share {params.sys_fraction:g})")
    cal = fixedwork.sysmix_calibration(params.sys_fraction)
    workload = fixedwork.sysmix_command(cal, seconds=params.duration)
    samples: dict[str, list[InstanceOutcome]] = {}
    plan = _plan(params)
    host = make_backend("process", BackendOptions())
    options = BackendOptions(cgroup=params.cgroup, net=params.net, extra=params.extra)
    backends = {kind: make_backend(kind, options) for kind in params.kinds}

    def summarize(doc: ExperimentResult) -> None:
        base = samples.get("host")
        base_rate = _row("host", "host", None, base, None)["units_per_s"] if base else None
        doc.rows = [_row(lbl, kind, q, samples[lbl], base_rate) for lbl, kind, q in plan
                    if lbl in samples]
        doc.summary = _summary(doc.rows)

    with contextlib.ExitStack() as stack:
        stack.enter_context(host)
        for backend in backends.values():
            stack.enter_context(backend)
            backend.check(workload, min(params.quotas))
        doc = ctx.open(_params_dict(params, cal, workload))
        ctx.summarize = summarize
        doc.environment.workload_hash = programs.source_hash("sysmix")
        doc.params["backend"] = {k: b.describe() for k, b in backends.items()} \
            if len(backends) > 1 else backends[params.kinds[0]].describe()
        for rep in range(params.repeat):
            for label, kind, q in plan:
                ctx.say(f"cap: {label}" + (f", repeat {rep + 1}/{params.repeat}"
                                           if params.repeat > 1 else ""))
                b = host if q is None else backends[kind]
                out = b.run([InstanceRequest(0, workload, q, params.period_us)],
                            timeout=params.timeout + params.duration)
                samples.setdefault(label, []).extend(out)
                summarize(doc)
                ctx.step()


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    capped = [r for r in rows if r["quota"] is not None]
    summary: dict[str, Any] = {
        "throughput_rel": {r["condition"]: r["throughput_rel"] for r in capped},
        "throttled_s": {r["condition"]: r["throttled_s"] for r in capped},
        "system_share": {r["condition"]: r["system_share"] for r in rows},
    }
    tightest = min(capped, key=lambda r: float(r["quota"]), default=None)
    if tightest is not None and tightest["units_per_s"]:
        # For ``virtbench tune``: throughput under the tightest cap.
        summary["main_metric"] = {"name": f"units_per_s ({tightest['condition']})",
                                  "value": tightest["units_per_s"], "unit": "units/s",
                                  "lower_is_better": False}
    return summary


def render(doc: ExperimentResult) -> str:
    p = doc.params
    cal = p.get("calibration", {})
    head = (f"cap: sysmix as {p['kind']} for {p['duration']:g} s per quota, system-call share "
            f"{p['sys_fraction']:g} at full speed ({cal.get('user_per_unit')} user iterations + "
            f"{cal.get('sys_per_unit')} x {cal.get('call')} per unit)\n")
    rows = []
    for r in doc.rows:
        rows.append([
            r["condition"], common.fmt(r["units_per_s"], ".0f"),
            common.fmt(r["throughput_rel"], ".2f"), common.fmt(r["cpus_used"], ".2f"),
            common.fmt(r["cpu_user_s"]), common.fmt(r["cpu_system_s"]),
            common.fmt(None if r["system_share"] is None else 100 * r["system_share"], ".0f")
            + ("%" if r["system_share"] is not None else ""),
            common.fmt(r["nr_throttled"], ".0f") + "/" + common.fmt(r["nr_periods"], ".0f"),
            common.fmt(r["throttled_s"]),
            common.fmt(r.get("user_us_per_unit"), ".0f") + "/"
            + common.fmt(r.get("system_us_per_unit"), ".0f"),
            "/".join(common.fmt(r[k], ".0f") for k in ("p50_ns", "p90_ns", "p99_ns")),
        ])
    return head + common.table(
        ["condition", "units/s", "rel", "CPUs", "user s", "system s", "sys%",
         "thr/periods", "throttled s", "own us/unit usr/sys", "syscall p50/p90/p99 ns"],
        rows)


# ---- the command: options, report view --------------------------------------------------------
def float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of CPU quotas: {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    return values


def kind_list(choices: list[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        found = tuple(x.strip() for x in text.split(",") if x.strip())
        bad = [k for k in found if k not in choices]
        if bad or not found:
            raise argparse.ArgumentTypeError(
                f"invalid kind {','.join(bad) or text!r} (choose from {', '.join(choices)})")
        return found
    return parse


def add_options(parser: argparse.ArgumentParser) -> None:
    from virtbench.experiments.consolidate import add_instance_options

    capped = [k for k in kinds() if k != "process"]
    parser.add_argument("--quota", type=float_list, default=(1.0, 0.5, 0.3),
                        metavar="Q,Q,...", help="CPU quotas in CPUs (default 1.0,0.5,0.3)")
    parser.add_argument("--kind", type=kind_list(capped), default=("container",),
                        metavar="KIND[,KIND]",
                        help=f"what is capped: {', '.join(capped)}, or several side by side "
                             "(default container)")
    parser.add_argument("--workload", default="sysmix", choices=("sysmix",),
                        help="workload (sysmix: user computation + system calls)")
    parser.add_argument("--sys-fraction", type=float, default=fixedwork.DEFAULT_SYS_FRACTION,
                        metavar="F", help="share of CPU time in system calls at full speed "
                                          f"(default {fixedwork.DEFAULT_SYS_FRACTION})")
    parser.add_argument("--duration", type=float, default=3.0, metavar="S",
                        help="seconds per quota (default 3)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run every quota N times, round-robin (default 1)")
    add_instance_options(parser)


def params_from_args(args: argparse.Namespace) -> CapParams:
    from virtbench.experiments.consolidate import vm_extra

    return CapParams(kinds=args.kind, quotas=args.quota, workload=args.workload,
                     sys_fraction=args.sys_fraction, duration=args.duration,
                     repeat=args.repeat, period_us=args.period_us, cgroup=args.cgroup,
                     net=args.net, timeout=args.timeout, extra=vm_extra(args))


VIEW = ExperimentView(
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
)

SPEC = ExperimentSpec(
    name="cap", command=("cap",),
    help="CPU caps: throughput, user vs system time and throttling per CPU quota",
    params=CapParams, row=CapRow, summary=CapSummary,
    main_metric="units/s under the tightest quota",
    add_options=add_options, params_from_args=params_from_args, run=run, render=render,
    view=VIEW, docs="cap.md",
    examples=(
        "virtbench cap --kind container --quota 1.0,0.5,0.3",
        "virtbench cap --kind container --quota 0.2 --sys-fraction 0.6 --json",
        "virtbench cap --kind container,vm --quota 1.0,0.5,0.3",
    ),
)
