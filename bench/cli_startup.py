"""Print how long `virtbench --help`, `virtbench runs` (and a few other commands) take to
start and answer, in a fresh process each time, against an index of the sample runs.

    PYTHONPATH=src python bench/cli_startup.py [--repeat N]

Per command: the median and the fastest wall time of N runs, and the median CPU time (user +
system) of the child. On a machine shared with other work the wall time includes waiting for
a CPU; the CPU time does not, so it is the figure to compare with the 0.25 s budget when the
load average is above the number of CPUs (the load is printed).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 0.25
BUDGETED: tuple[list[str], ...] = (["--help"], ["runs"])
"""The commands issue 16 gives the budget to; the others are printed for comparison."""
COMMANDS: tuple[list[str], ...] = (["--help"], ["runs"], ["runs", "--json"], [],
                                   ["compare", "--help"], ["run", "--list"])


def _measure(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "virtbench", *argv], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vb-startup-") as tmp:
        env = dict(os.environ, XDG_DATA_HOME=tmp, PYTHONPATH=str(ROOT / "src"))
        env.pop("VIRTBENCH_DB", None)
        samples = sorted(str(p) for p in (ROOT / "tests" / "data").glob("unixbench-*.txt"))
        subprocess.run([sys.executable, "-m", "virtbench", "-q", "import", "--label", "set=a",
                        *samples], env=env, check=True, stdout=subprocess.DEVNULL)
        _measure(["--version"], env, 1)  # warm the file cache
        py = []
        for _ in range(opts.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            py.append(time.perf_counter() - t0)
        load = os.getloadavg()
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on "
              f"{os.cpu_count()} CPUs; {opts.repeat} runs each; budget {BUDGET:.2f} s")
        print(f"{'command':<28} {'wall median':>11} {'wall min':>9} {'CPU median':>10}")
        print(f"{'python -c pass':<28} {statistics.median(py):>10.3f}s {min(py):>8.3f}s")
        over = 0
        for argv in COMMANDS:
            med, low, cpu = _measure(argv, env, opts.repeat)
            name = "virtbench " + " ".join(argv)
            budgeted = argv in BUDGETED
            flag = "  over budget" if budgeted and min(low, cpu) > BUDGET else ""
            over += bool(flag)
            print(f"{name:<28} {med:>10.3f}s {low:>8.3f}s {cpu:>9.3f}s{flag}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
