#!/usr/bin/env python3
"""Run each workload program once (1 copy) and print its figure next to byte-unixbench 6.0's.

Prints figures; asserts nothing. The reference is byte-unixbench 6.0.0 with 1 copy on this
kind of machine (2 vCPU nested micro-VM, /work/shared/unixbench-facts.md). The machine is
shared, so each line also shows the load average and the share of a CPU the program got
(its user+system time / wall time): a single-threaded program far below 1.0 was starved,
and its "per CPU" figure (rate / share) is then the better one to compare. Examples:

    python bench/workloads_vs_reference.py                    # all 12 index tests, nominal
    python bench/workloads_vs_reference.py --duration 3 pipe syscall
    python bench/workloads_vs_reference.py --profile unixbench-5.1.3 dhry2reg
    python bench/workloads_vs_reference.py --fifo --repeat 3 --duration 2 pipe

On a machine others are using, --fifo (root) runs the programs with SCHED_FIFO priority so
they get their CPU (host contention still shows), and --repeat N keeps the best of N runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from virtbench.workloads.build import ensure_built  # noqa: E402
from virtbench.workloads.catalog import INDEX_TESTS, select  # noqa: E402
from virtbench.workloads.output import parse_output  # noqa: E402
from virtbench.workloads.profiles import DEFAULT_PROFILE, get_profile  # noqa: E402

# byte-unixbench 6.0.0, 1 copy, 2026-11-21 (unixbench-facts.md).
REFERENCE = {
    "dhry2reg": 48547976.6,
    "whetstone-double": 7314.8,
    "execl": 3087.3,
    "fstime": 1731034.8,
    "fsbuffer": 516203.3,
    "fsdisk": 4251841.6,
    "pipe": 2519709.3,
    "context1": 111841.5,
    "spawn": 6969.8,
    "shell1": 10247.5,
    "shell8": 2003.2,
    "syscall": 1603407.8,
}


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("tests", nargs="*", default=list(INDEX_TESTS))
    ap.add_argument("--duration", type=float, default=None, help="seconds (default: nominal)")
    ap.add_argument("--profile", default=DEFAULT_PROFILE)
    ap.add_argument("--repeat", type=int, default=1, help="runs per test; the best is shown")
    ap.add_argument("--fifo", action="store_true", help="run with SCHED_FIFO priority (root)")
    args = ap.parse_args()

    def realtime() -> None:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))

    info = ensure_built(get_profile(args.profile))
    print(f"# {info.cc_version}; {' '.join(info.cflags)}")
    print(
        f"# {'test':<17} {'score':>13} {'reference':>13} {'ratio':>6} {'share':>6} "
        f"{'per CPU':>13} {'ratio':>6}  load"
    )
    for spec in select(args.tests):
        duration = args.duration or spec.duration
        runs = []
        for _ in range(max(1, args.repeat)):
            with tempfile.TemporaryDirectory(prefix="vb-bench-") as work:
                load = os.getloadavg()[0]
                cpu0, t0 = children_cpu(), time.monotonic()
                proc = subprocess.run(
                    spec.argv(info.bin_dir, duration, Path(work)),
                    cwd=work,
                    capture_output=True,
                    text=True,
                    check=False,
                    start_new_session=True,
                    preexec_fn=realtime if args.fifo else None,
                )
                wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
            if proc.returncode != 0:
                print(f"  {spec.id:<17} FAILED: {proc.stderr.strip()[:100]}")
                break
            runs.append((parse_output(proc.stdout), wall, cpu, load))
        if not runs:
            continue
        sample, wall, cpu, load = max(runs, key=lambda r: r[0].rate)
        ref = REFERENCE.get(spec.id)
        share = cpu / wall if wall > 0 else float("nan")
        per_cpu = sample.rate / share if share > 0 else float("nan")
        ratio = f"{sample.rate / ref:6.2f}" if ref else "     -"
        ratio_cpu = f"{per_cpu / ref:6.2f}" if ref else "     -"
        print(
            f"  {spec.id:<17} {sample.rate:13.1f} {ref or 0:13.1f} {ratio} {share:6.2f} "
            f"{per_cpu:13.1f} {ratio_cpu}  {load:.2f}"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
