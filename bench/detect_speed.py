"""How long `virtbench detect` takes (target: under 1 s without the steal sample).

Prints: the first call (may compile the CPUID helper), then the median of repeated in-process
calls of virtbench.probes.detect(), then the wall time of the `virtbench detect --json` process
(which includes Python start-up and importing the CLI).

    PYTHONPATH=src python bench/detect_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from virtbench.probes import detect  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    report = detect("/")
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        detect("/")
        times.append(time.perf_counter() - t0)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cli = []
    for _ in range(max(1, args.repeat // 2)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "virtbench", "detect", "--json"], env=env,
                       stdout=subprocess.DEVNULL, check=True)
        cli.append(time.perf_counter() - t0)
    print(f"summary: {report.summary}")
    print(f"detect() first call:       {first * 1000:8.1f} ms")
    print(f"detect() median of {args.repeat:<3d}:    {statistics.median(times) * 1000:8.1f} ms "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})")
    print(f"`virtbench detect --json`: {statistics.median(cli) * 1000:8.1f} ms wall (process, "
          "median)")
    print(f"load average:              {os.getloadavg()[0]:8.2f}")
    target = 1.0
    ok = statistics.median(times) < target
    print(f"target detect() < {target:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
