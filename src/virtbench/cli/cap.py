"""``virtbench cap``: throughput, user/system split and throttling under CPU quotas."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from virtbench.cli.consolidate import add_instance_options, vm_extra
from virtbench.experiments import cap, fixedwork
from virtbench.experiments.instances import kinds

NAME = "cap"
HELP = "CPU caps: throughput, user vs system time and throttling per CPU quota"


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
        kinds = tuple(x.strip() for x in text.split(",") if x.strip())
        bad = [k for k in kinds if k not in choices]
        if bad or not kinds:
            raise argparse.ArgumentTypeError(
                f"invalid kind {','.join(bad) or text!r} (choose from {', '.join(choices)})")
        return kinds
    return parse


def register(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    params = cap.CapParams(kinds=args.kind, quotas=args.quota, workload=args.workload,
                           sys_fraction=args.sys_fraction, duration=args.duration,
                           repeat=args.repeat, period_us=args.period_us, cgroup=args.cgroup,
                           net=args.net, timeout=args.timeout, extra=vm_extra(args))
    doc = cap.run(params, command=["virtbench", *sys.argv[1:]])
    if args.json:
        sys.stdout.write(doc.to_json())
    else:
        sys.stdout.write(cap.render(doc))
        saved = doc.summary.get("saved")
        if saved:
            sys.stderr.write(f"saved {saved}\n")
    return 0
