#!/usr/bin/env python3
"""Score versus pass length, per test: the shortest pass with no short-pass bias.

Prints figures; asserts nothing. For every test, passes of a few lengths (the standard
pass and shorter ones) run in one shuffled sequence, each preceded by the pause the budgeted
mode uses (the standard pass by UnixBench's 3 s pause), so drift of the machine lands on
every length alike. For each shorter length it prints the ratio of its geometric mean to
the standard pass's and the ratio's 95% interval (Welch on logarithms), and picks the
shortest length whose interval, and that of every longer candidate, overlaps
[0.99, 1.01]: no evidence of a bias beyond 1%. Where an interval is wider than ±2%, the
machine was too noisy to resolve 1% with this many repetitions: the line says so and the
test gets no pick (run again on a quieter machine or with more --reps). The picks go into
``virtbench.workloads.catalog.BUDGET_PASS_SECONDS``. Examples:

    nice -n 10 python bench/pass_length.py                      # the 12 index tests
    nice -n 10 python bench/pass_length.py --reps 5 context1 fsdisk
    python bench/pass_length.py --lengths 1,2,5 -c 2 pipe

Runs in a throw-away work directory under --tmpdir (default $TMPDIR); takes about
reps x (sum of the lengths + pauses) per test: ~30 min for the index tests at --reps 3.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from virtbench.analysis import stats  # noqa: E402
from virtbench.analysis.welch import welch_log  # noqa: E402
from virtbench.runner.budget import budget_settle  # noqa: E402
from virtbench.runner.executor import LocalExecutor  # noqa: E402
from virtbench.runner.suite import SETTLE_SECONDS, copy_result  # noqa: E402
from virtbench.workloads.build import ensure_built  # noqa: E402
from virtbench.workloads.catalog import BUDGET_PASS_SECONDS, INDEX_TESTS, select  # noqa: E402
from virtbench.workloads.profiles import DEFAULT_PROFILE, get_profile  # noqa: E402

TOLERANCE = 0.01


def default_lengths(standard: float) -> list[float]:
    """A tenth, a fifth and a third of the standard pass (at least 1 s), then the standard."""
    short = {max(1.0, round(standard * f)) for f in (0.1, 0.2, 1 / 3)}
    return [*sorted(x for x in short if x < standard), standard]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("tests", nargs="*", default=list(INDEX_TESTS))
    ap.add_argument("--reps", type=int, default=3, help="passes per length (default 3)")
    ap.add_argument("--lengths", help="comma-separated seconds (default: per test)")
    ap.add_argument("-c", "--copies", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tmpdir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--profile", default=DEFAULT_PROFILE)
    args = ap.parse_args()
    if args.reps < 2:
        ap.error("--reps must be at least 2 (an interval needs two passes)")

    build = ensure_built(get_profile(args.profile))
    executor = LocalExecutor(gate=build.bin_dir / "vbgate")
    rng = random.Random(args.seed)
    print(f"# pass length vs score: {args.copies} copies, {args.reps} passes per length; "
          f"load at start {os.getloadavg()[0]:.2f}; nice {os.nice(0)}; "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
    print(f"# {'test':<17} {'length':>6} {'score':>14} {'ratio':>6} {'95% interval':>15}"
          f"  verdict")
    picks: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="vb-pass-length-", dir=args.tmpdir))
    try:
        for spec in select(args.tests):
            standard = spec.duration
            lengths = ([float(x) for x in args.lengths.split(",")] if args.lengths
                       else default_lengths(standard))
            if standard not in lengths:
                lengths.append(standard)
            lengths.sort()
            order = [length for length in lengths for _ in range(args.reps)]
            rng.shuffle(order)
            cwds = [work / f"{spec.id}-{i}" for i in range(args.copies)]
            for d in cwds:
                d.mkdir()
            scores: dict[float, list[float]] = {length: [] for length in lengths}
            load0 = os.getloadavg()[0]
            for length in order:
                executor.settle(SETTLE_SECONDS if length == standard else budget_settle(length))
                argvs = [spec.argv(build.bin_dir, length, d) for d in cwds]
                outcomes = executor.run_pass(argvs, cwds, length * 3 + 60)
                parsed = [copy_result(o) for o in outcomes]
                if any(e for (_, _, _, e) in parsed):
                    print(f"  {spec.id:<17} {length:6g} failed: "
                          f"{next(e for (_, _, _, e) in parsed if e)}")
                    continue
                done = [c for (c, _, _, _) in parsed if c is not None]
                score = stats.pass_score([c.count for c in done], [c.elapsed for c in done],
                                         parsed[0][2])
                if score > 0:
                    scores[length].append(score)
            for d in cwds:
                shutil.rmtree(d, ignore_errors=True)
            ref = scores[standard]
            agree: dict[float, bool] = {}
            resolved: dict[float, bool] = {}
            for length in lengths:
                got = scores[length]
                if len(got) < 2 or len(ref) < 2:
                    print(f"  {spec.id:<17} {length:6g} too few passes")
                    agree[length] = False
                    continue
                gm = stats.geometric_mean(got)
                if length == standard:
                    print(f"  {spec.id:<17} {length:6g} {gm:14.1f}  (standard pass)")
                    continue
                w = welch_log(ref, got)
                assert w is not None
                ratio, low, high, _p = w
                overlaps = low <= 1 + TOLERANCE and high >= 1 - TOLERANCE
                agree[length] = overlaps
                resolved[length] = (high - low) / 2 <= 0.02
                verdict = ("agrees" if overlaps else "BIASED") + (
                    " (interval > +-2%: too noisy to resolve 1%)" if (high - low) / 2 > 0.02
                    else "")
                print(f"  {spec.id:<17} {length:6g} {gm:14.1f} {ratio:6.3f} "
                      f"[{low:6.3f}, {high:6.3f}]  {verdict}")
            catalog = BUDGET_PASS_SECONDS.get(spec.id, standard)
            load = f"load {load0:.2f} -> {os.getloadavg()[0]:.2f}"
            if any(not resolved.get(x, False) for x in lengths if x < standard):
                print(f"  {spec.id:<17} no pick: too noisy to resolve 1% (catalog keeps "
                      f"{catalog:g} s); {load}", flush=True)
                continue
            pick = standard
            for length in sorted((x for x in lengths if x < standard), reverse=True):
                if not agree.get(length):
                    break
                pick = length
            picks[spec.id] = pick
            print(f"  {spec.id:<17} pick {pick:g} s (catalog: {catalog:g} s); {load}",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("# picks: " + ", ".join(f"{k} {v:g}" for k, v in picks.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
