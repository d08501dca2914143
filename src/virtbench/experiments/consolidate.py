"""Consolidation: how much slower a fixed piece of work gets as instances share the host.

Conditions, in the paper's table shape: ``host`` (the workload alone on the host, no
instance machinery: the solo baseline), then for each instance count N: ``1`` for N = 1,
else ``N one loaded`` (one instance works, the others idle) and/or ``N all loaded``. With
``--repeat R`` the whole list is run R times, round-robin, so slow drifts of the machine hit
every condition alike.

Per condition: seconds (mean of the loaded instances' own timings), slowdown vs the solo
baseline, per-instance slowdowns, Jain's fairness index across loaded instances, host
steal time (/proc/stat) while it ran, CPU user/system seconds and CFS throttling.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from virtbench.cgroups import quota_us
from virtbench.errors import UsageError
from virtbench.experiments import common, fixedwork, programs
from virtbench.experiments.instances import (
    BackendOptions,
    InstanceBackend,
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

LOADED_CHOICES = ("one", "all")


@dataclass(frozen=True)
class ConsolidateParams:
    kind: str
    instances: tuple[int, ...] = (1, 2, 3)
    loaded: tuple[str, ...] = LOADED_CHOICES
    workload: str = "integer"
    iterations: int | None = None
    sys_fraction: float = fixedwork.DEFAULT_SYS_FRACTION
    repeat: int = 1
    cpus: float | None = None
    """Per-instance CPU quota (containers/VMs), ``None`` for none."""
    period_us: int = 100_000
    cgroup: str = "auto"
    net: bool = False
    timeout: float = 600.0
    workdir: str | None = None
    """Where instances' scratch directories go (postmark, seqread); default: temp dir."""
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.workdir is not None and not os.path.isdir(self.workdir):
            raise UsageError(f"--dir {self.workdir}: no such directory")
        if not self.instances or any(n < 1 or n > 64 for n in self.instances):
            raise UsageError("--instances takes counts between 1 and 64, e.g. 1,2,3")
        if len(set(self.instances)) != len(self.instances):
            raise UsageError("--instances lists a count twice")
        bad = [x for x in self.loaded if x not in LOADED_CHOICES]
        if bad or not self.loaded:
            raise UsageError(f"--loaded takes one, all or one,all (got {','.join(self.loaded)})")
        if self.repeat < 1:
            raise UsageError(f"--repeat must be >= 1 (got {self.repeat})")
        if self.cpus is not None and not self.cpus > 0:
            raise UsageError(f"--cpus must be > 0 (got {self.cpus:g})")
        if self.cpus is not None:
            quota_us(self.cpus, self.period_us)
        if not self.timeout > 0:
            raise UsageError("--timeout must be > 0")


@dataclass(frozen=True)
class Condition:
    label: str
    instances: int
    """0 for the host baseline."""
    loaded: int


def plan(params: ConsolidateParams) -> list[Condition]:
    conds = [Condition("host", 0, 1)]
    for n in params.instances:
        if n == 1:
            conds.append(Condition("1", 1, 1))
            continue
        if "one" in params.loaded:
            conds.append(Condition(f"{n} one loaded", n, 1))
        if "all" in params.loaded:
            conds.append(Condition(f"{n} all loaded", n, n))
    return conds


@dataclass
class Sample:
    outcomes: list[InstanceOutcome]
    steal_s: float | None
    steal_share: float | None


def requests_for(cond: Condition, workload: WorkloadCommand, params: ConsolidateParams) -> list[
        InstanceRequest]:
    if cond.instances == 0:
        return [InstanceRequest(0, workload)]
    return [InstanceRequest(i, workload if i < cond.loaded else None, params.cpus,
                            params.period_us) for i in range(cond.instances)]


def analyze(conds: list[Condition], samples: dict[str, list[Sample]]) -> tuple[
        list[dict[str, Any]], dict[str, Any]]:
    host = [o.seconds for s in samples.get("host", []) for o in s.outcomes
            if o.loaded and o.seconds is not None]
    solo = common.mean(host)
    rows: list[dict[str, Any]] = []
    for cond in conds:
        got = samples.get(cond.label, [])
        if not got:
            continue
        loaded = [o for s in got for o in s.outcomes if o.loaded and o.seconds is not None]
        secs = [o.seconds for o in loaded if o.seconds is not None]
        seconds = common.mean(secs)
        per_index: dict[int, list[float]] = {}
        for o in loaded:
            assert o.seconds is not None
            per_index.setdefault(o.index, []).append(o.seconds)
        per_instance = []
        for idx in sorted(per_index):
            m = common.mean(per_index[idx])
            per_instance.append({"index": idx, "seconds": common.rnd(m),
                                 "slowdown": common.rnd(m / solo if m and solo else None)})
        fair = [common.jain_index([1.0 / o.seconds for o in s.outcomes
                                   if o.loaded and o.seconds])
                for s in got]
        fair_vals = [f for f in fair if f is not None]
        n = len(got)

        def total(attr: str, which: bool, got: list[Sample] = got, n: int = n) -> float | None:
            vals = [getattr(o.cpu, attr) for s in got for o in s.outcomes
                    if o.loaded == which and o.cpu is not None]
            vals = [v for v in vals if v is not None]
            return common.rnd(sum(vals) / n) if vals else None

        shares_cpu = [o.cpu.usage_s / o.seconds for o in loaded
                      if o.cpu is not None and o.seconds]
        # CPUs in use: all loaded instances' CPU seconds over the span from the start signal
        # until the last one ended. Unlike the per-instance share, this is bounded by the
        # machine's CPUs even when the instances end at different times.
        used = []
        for s in got:
            busy = [(o.cpu.usage_s, o.wall_s) for o in s.outcomes
                    if o.loaded and o.cpu is not None]
            span = max((wall for _, wall in busy), default=0.0)
            if span > 0:
                used.append(sum(cpu for cpu, _ in busy) / span)
        steals = [s.steal_s for s in got if s.steal_s is not None]
        shares = [s.steal_share for s in got if s.steal_share is not None]
        rows.append({
            "condition": cond.label,
            "instances": cond.instances,
            "loaded": cond.loaded,
            "seconds": common.rnd(seconds),
            "seconds_min": common.rnd(min(secs)) if secs else None,
            "seconds_max": common.rnd(max(secs)) if secs else None,
            "slowdown": common.rnd(seconds / solo if seconds and solo else None),
            "per_instance": per_instance,
            "fairness": common.rnd(common.mean(fair_vals)),
            "steal_s": common.rnd(common.mean(steals), 3),
            "steal_share": common.rnd(common.mean(shares)),
            "cpu_share": common.rnd(common.mean(shares_cpu), 3),
            "cpus_used": common.rnd(common.mean(used), 3),
            "cpu_user_s": total("user_s", True),
            "cpu_system_s": total("system_s", True),
            "idle_cpu_s": total("usage_s", False),
            "nr_throttled": total("nr_throttled", True),
            "throttled_s": total("throttled_s", True),
            "accounting": next((o.accounting for s in got for o in s.outcomes), ""),
            "repeats": n,
            "samples": [{"steal_s": s.steal_s, "instances": common.outcome_dicts(s.outcomes)}
                        for s in got],
        })
    return rows, _summary(rows, solo)


def _summary(rows: list[dict[str, Any]], solo: float | None) -> dict[str, Any]:
    last = rows[-1] if rows else None
    summary: dict[str, Any] = {
        "solo_seconds": common.rnd(solo),
        "seconds": {r["condition"]: r["seconds"] for r in rows},
        "slowdown": {r["condition"]: r["slowdown"] for r in rows},
        "worst_fairness": min((r["fairness"] for r in rows if r["fairness"] is not None),
                              default=None),
    }
    if last is not None and last["seconds"] is not None:
        # For ``virtbench tune``: seconds of the most consolidated condition.
        summary["main_metric"] = {"name": f"seconds ({last['condition']})",
                                  "value": last["seconds"], "unit": "s",
                                  "lower_is_better": True}
    return summary


class ConsolidateRow(Row):
    condition: str
    instances: int
    loaded: int
    seconds: float | None
    slowdown: float | None
    fairness: float | None
    per_instance: list[dict[str, Any]]
    repeats: int


class ConsolidateSummary(Summary):
    solo_seconds: float | None
    seconds: dict[str, float | None]
    slowdown: dict[str, float | None]
    worst_fairness: float | None


def run(params: ConsolidateParams, ctx: Context) -> None:
    params.validate()
    workload = fixedwork.make_workload(params.workload, iterations=params.iterations,
                                       sys_fraction=params.sys_fraction)
    conds = plan(params)
    samples: dict[str, list[Sample]] = {}

    def summarize(doc: ExperimentResult) -> None:
        doc.rows, doc.summary = analyze(conds, samples)

    options = BackendOptions(cgroup=params.cgroup, net=params.net, workdir=params.workdir,
                             extra=params.extra)
    host: InstanceBackend = make_backend("process", BackendOptions(workdir=params.workdir))
    backend = make_backend(params.kind, options)
    with host, backend:
        host.check(workload, None)
        backend.check(workload, params.cpus)
        doc = ctx.open({**_params_dict(params, workload), "backend": backend.describe()})
        ctx.summarize = summarize
        doc.environment.workload_hash = programs.source_hash(workload.program) \
            if workload.program in programs.PROGRAMS else None
        for rep in range(params.repeat):
            for cond in conds:
                b = host if cond.instances == 0 else backend
                ctx.say(f"consolidate: {cond.label} ({params.kind if cond.instances else 'host'})"
                        + (f", repeat {rep + 1}/{params.repeat}" if params.repeat > 1 else ""))
                before = common.read_cpu_times()
                outcomes = b.run(requests_for(cond, workload, params), timeout=params.timeout)
                steal, share = common.steal_between(before, common.read_cpu_times())
                samples.setdefault(cond.label, []).append(Sample(outcomes, steal, share))
                summarize(doc)
                ctx.step()


def _params_dict(params: ConsolidateParams, workload: WorkloadCommand) -> dict[str, Any]:
    d = asdict(params)
    d["instances"] = list(params.instances)
    d["loaded"] = list(params.loaded)
    d["workload_args"] = list(workload.args)
    if params.workload == "sysmix":
        d["calibration"] = fixedwork.sysmix_calibration(params.sys_fraction).to_dict()
    return d


def render(doc: ExperimentResult) -> str:
    p = doc.params
    head = (f"consolidate: {p['workload']} as {p['kind']} instances "
            f"({' '.join(p.get('workload_args', []))}), {doc.environment.cpus_usable} CPUs, "
            f"{p['repeat']} repeat(s)\n")
    rows = []
    for r in doc.rows:
        per = ", ".join(common.fmt(x["slowdown"]) for x in r["per_instance"])
        idle = r["instances"] - r["loaded"] if r["instances"] else 0
        if idle:
            per += (", " if per else "") + ", ".join(["idle"] * idle)
        thr = "-" if r["throttled_s"] is None else f"{r['throttled_s']:.2f} s"
        steal = "-" if r["steal_share"] is None else f"{100 * r['steal_share']:.1f}%"
        rows.append([r["condition"], common.fmt(r["seconds"]),
                     common.fmt(r["slowdown"], ".2f") + "x", per,
                     common.fmt(r["fairness"], ".3f"), common.fmt(r.get("cpu_share"), ".2f"),
                     steal,
                     common.fmt(r["cpu_user_s"]), common.fmt(r["cpu_system_s"]), thr])
    return head + common.table(
        ["condition", "seconds", "slowdown", "per-instance slowdown", "fairness", "CPU/wall",
         "steal",
         "user s", "system s", "throttled"], rows)


# ---- the command: options, report view --------------------------------------------------------
def int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of counts: {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    return values


def word_list(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def add_instance_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by consolidate and cap."""
    parser.add_argument("--cgroup", choices=("auto", "v1", "v2"), default="auto",
                        help="cgroup version for containers/VMs (default: auto-detect)")
    parser.add_argument("--net", action="store_true",
                        help="containers: also a network namespace (loopback only)")
    parser.add_argument("--period-us", type=int, default=100_000, metavar="US",
                        help="CFS period for quotas in microseconds (default 100000)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S",
                        help="give up on a condition after S seconds (default 600)")
    vm = parser.add_argument_group("vm instances (docs/vm.md)")
    vm.add_argument("--vcpus", type=int, default=1, help="vCPUs per guest (default 1)")
    vm.add_argument("--memory", type=int, default=128, metavar="MB",
                    help="memory per guest (default 128)")
    vm.add_argument("--kernel", default=None, metavar="PATH",
                    help="guest kernel (default: $VIRTBENCH_KERNEL or newest /boot/vmlinuz-*)")
    vm.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                    help="KVM if a guest really boots under it, else TCG (default auto)")
    vm.add_argument("--pin", default=None, metavar="CPUS",
                    help="pin guest i's vCPUs to host CPU CPUS[i %% n], e.g. 0,1")


def vm_extra(args: argparse.Namespace) -> dict[str, Any]:
    """``BackendOptions.extra`` for ``--kind vm`` from the options above."""
    if getattr(args, "vcpus", 1) < 1 or getattr(args, "memory", 128) < 64:
        raise UsageError("--vcpus must be >= 1 and --memory >= 64 (MB)")
    pin = None
    if getattr(args, "pin", None):
        try:
            pin = [int(c) for c in args.pin.split(",") if c.strip()]
        except ValueError:
            raise UsageError(f"--pin {args.pin!r}: expected CPU numbers like 0,1") from None
    return {"vcpus": args.vcpus, "memory": args.memory, "kernel": args.kernel,
            "accel": args.accel, "pin": pin}


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=kinds(), required=True,
                        help="what an instance is: process, container" + (
                            ", vm" if "vm" in kinds() else ""))
    parser.add_argument("--instances", type=int_list, default=(1, 2, 3), metavar="N,N,...",
                        help="instance counts (default 1,2,3)")
    parser.add_argument("--loaded", type=word_list, default=("one", "all"),
                        metavar="one|all",
                        help="for counts >= 2: one instance loaded (others idle), all loaded, "
                             "or both (one,all; the default)")
    parser.add_argument("--workload", default="integer", metavar="NAME",
                        help=f"fixed-work workload: {', '.join(fixedwork.workload_names())} "
                             "(default integer)")
    parser.add_argument("--iterations", type=int, default=None, metavar="N",
                        help="amount of fixed work (workload units; default per workload)")
    parser.add_argument("--sys-fraction", type=float, default=fixedwork.DEFAULT_SYS_FRACTION,
                        metavar="F", help="sysmix: share of CPU time in system calls "
                                          f"(default {fixedwork.DEFAULT_SYS_FRACTION})")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run every condition N times, round-robin (default 1)")
    parser.add_argument("--cpus", type=float, default=None, metavar="CPUS",
                        help="cap every instance at CPUS CPUs (container/vm)")
    parser.add_argument("--dir", default=None, metavar="DIR",
                        help="where postmark/seqread instances get their scratch directories "
                             "(default: the temp directory)")
    add_instance_options(parser)


def params_from_args(args: argparse.Namespace) -> ConsolidateParams:
    if args.cpus is not None and args.kind == "process":
        raise UsageError("--cpus needs --kind container or vm (plain processes have no cap)")
    return ConsolidateParams(
        kind=args.kind, instances=args.instances, loaded=args.loaded, workload=args.workload,
        iterations=args.iterations, sys_fraction=args.sys_fraction, repeat=args.repeat,
        cpus=args.cpus, period_us=args.period_us, cgroup=args.cgroup, net=args.net,
        timeout=args.timeout, workdir=args.dir, extra=vm_extra(args))


VIEW = ExperimentView(
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
)

SPEC = ExperimentSpec(
    name="consolidate", command=("consolidate",),
    help="Consolidation: seconds of fixed work for the host alone and 1, 2, 3... instances",
    params=ConsolidateParams, row=ConsolidateRow, summary=ConsolidateSummary,
    main_metric="seconds of the most consolidated condition (lower is better)",
    add_options=add_options, params_from_args=params_from_args, run=run, render=render,
    view=VIEW, docs="consolidate.md",
    examples=(
        "virtbench consolidate --kind process --instances 1,2 --iterations 2000000",
        "virtbench consolidate --kind container --instances 1,2,3 --loaded all --repeat 2",
        "virtbench consolidate --kind vm --instances 1,2   # QEMU guests (KVM, else TCG)",
    ),
)
