#!/usr/bin/env python3
"""Harness overhead and wall time of the suite, and adaptive vs standard mode.

Prints figures; asserts nothing. Examples:

    python bench/suite_overhead.py                       # quick index run, 1 copy
    python bench/suite_overhead.py --args "pipe syscall dhry2reg -c 1"       # standard
    python bench/suite_overhead.py --adaptive 2% --args "pipe syscall dhry2reg -c 1"

For each run: wall time vs the sum of nominal pass durations (the scheduling overhead), the
Python harness's own CPU seconds vs wall (it must stay idle while workloads are timed), and
per test the score, passes and CI half-width. With --adaptive, runs the same tests in
standard and adaptive mode and prints time saved and the score difference per test.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from virtbench.results.model import RunResult  # noqa: E402


def run(args: list[str]) -> RunResult:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        subprocess.run([sys.executable, "-m", "virtbench", "run", *args, "--no-detect",
                        "-o", str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
        return RunResult.from_dict(json.loads(out.read_text()))


def describe(run: RunResult) -> dict[str, float]:
    nominal = sum(len(t.passes) * (t.duration or 0) for s in run.sections for t in s.tests)
    wall = run.wall_seconds or 0.0
    cpu = run.harness_cpu_seconds or 0.0
    print(f"mode {run.mode}: wall {wall:.1f} s, nominal pass time {nominal:.1f} s, "
          f"overhead {wall - nominal:.1f} s ({(wall - nominal) / max(nominal, 1e-9):.1%}); "
          f"harness CPU {cpu:.2f} s = {cpu / max(wall, 1e-9):.2%} of wall")
    scores = {}
    for s in run.sections:
        for t in s.tests:
            hw = t.ci.half_width_rel if t.ci else float("nan")
            print(f"  {t.name:<40s} c={s.copies:<3d} {t.score or 0:14.1f} {t.unit:<5s} "
                  f"passes={len(t.passes):<3d} CI ±{hw:.1%}  {t.stop_reason or ''}")
            scores[f"{t.test}/{s.copies}"] = t.score or 0.0
        if s.index_score:
            print(f"  index score: {s.index_score:.1f}")
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--args", default="--quick -c 1", help="arguments for `virtbench run`")
    ap.add_argument("--adaptive", metavar="P", help="also run adaptive mode at precision P")
    ns = ap.parse_args()
    base = shlex.split(ns.args)
    std = run(base)
    s1 = describe(std)
    if ns.adaptive:
        ad = run([*base, "--precision", ns.adaptive])
        s2 = describe(ad)
        ratio = (ad.wall_seconds or 0) / (std.wall_seconds or 1)
        print(f"adaptive/standard wall time: {ratio:.2f}")
        for k in s1:
            if k in s2 and s1[k]:
                print(f"  {k:<24s} adaptive/standard score {s2[k] / s1[k]:.3f}")


if __name__ == "__main__":
    main()
