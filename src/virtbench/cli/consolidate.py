"""``virtbench consolidate``: how a fixed piece of work slows down as instances share a host."""

from __future__ import annotations

import argparse
import sys

from virtbench.errors import UsageError
from virtbench.experiments import consolidate, fixedwork
from virtbench.experiments.instances import kinds

NAME = "consolidate"
HELP = "Consolidation: seconds of fixed work for the host alone and 1, 2, 3... instances"


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
    parser.add_argument("--json", action="store_true",
                        help="print the result document (JSON) on stdout instead of a table")
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


def vm_extra(args: argparse.Namespace) -> dict[str, object]:
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


def register(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    if args.cpus is not None and args.kind == "process":
        raise UsageError("--cpus needs --kind container or vm (plain processes have no cap)")
    params = consolidate.ConsolidateParams(
        kind=args.kind, instances=args.instances, loaded=args.loaded, workload=args.workload,
        iterations=args.iterations, sys_fraction=args.sys_fraction, repeat=args.repeat,
        cpus=args.cpus, period_us=args.period_us, cgroup=args.cgroup, net=args.net,
        timeout=args.timeout, workdir=args.dir, extra=vm_extra(args))
    doc = consolidate.run(params, command=["virtbench", *sys.argv[1:]])
    if args.json:
        sys.stdout.write(doc.to_json())
    else:
        sys.stdout.write(consolidate.render(doc))
        saved = doc.summary.get("saved")
        if saved:
            sys.stderr.write(f"saved {saved}\n")
    return 0
