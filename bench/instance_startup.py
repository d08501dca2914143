"""What an instance costs to start and stop: process vs container (namespaces + cgroup).

Runs a condition of N instances of a trivial workload (``/bin/true`` through the same
launcher the experiments use) several times per kind and prints the median wall time of a
whole condition (spawn, cgroup set-up, start signal, wait, cleanup). Run as root from the
project root:

    PYTHONPATH=src python bench/instance_startup.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import time

from virtbench.experiments.instances import (
    InstanceRequest,
    WorkloadCommand,
    WorkloadOutput,
    make_backend,
)


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    cmd = WorkloadCommand("true", "/bin/true", (), lambda text: WorkloadOutput(seconds=0.0))
    print(f"{'kind':<10} {'instances':>9} {'median ms':>10} {'min ms':>8}")
    for kind in ("process", "container"):
        with make_backend(kind) as backend:
            backend.check(cmd, None)
            for n in (1, 2, 3):
                times = []
                for _ in range(rounds):
                    start = time.perf_counter()
                    backend.run([InstanceRequest(i, cmd) for i in range(n)], timeout=60)
                    times.append((time.perf_counter() - start) * 1000)
                print(f"{kind:<10} {n:>9} {statistics.median(times):>10.1f} "
                      f"{min(times):>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
