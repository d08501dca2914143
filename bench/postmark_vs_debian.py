#!/usr/bin/env python3
"""virtbench's Postmark against Debian's ``postmark`` (NetApp 1.5x) at identical settings.

Runs both, interleaved (order alternating by round), each in a fresh directory under
``--dir``, and prints per-round figures and the ratios virtbench / Debian of transactions
per second and of total time, with the medians. Target: within ±10%.

Debian's Postmark times with ``time()`` (1 s resolution), so its own figures are integers;
the script also times both processes from outside (wall clock) and reads their CPU
time (user + system, from ``getrusage``), which a busy machine disturbs less than the wall
clock. Operation counts must be identical (same seed → same operations).

    PYTHONPATH=src python bench/postmark_vs_debian.py [--rounds 3] [--files 2000]
        [--transactions 40000] [--size 500:10000] [--dir /var/tmp] [--preset paper]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from virtbench.analysis.stats import geometric_mean, t_log_interval
from virtbench.experiments import postmark


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_ours(params: postmark.PostmarkParams, base: Path, exe: Path) -> dict[str, float]:
    with postmark.workdir(base) as wd:
        t0, c0 = time.monotonic(), _cpu()
        proc = subprocess.run(postmark.command(params, wd, exe), capture_output=True,
                              text=True, check=True)
        wall, cpu = time.monotonic() - t0, _cpu() - c0
    r = postmark.parse(proc.stdout)
    return {"wall": wall, "cpu": cpu, "total": r.seconds_total,
            "tx_seconds": r.seconds_transactions,
            "tps": r.transactions_per_second, "created": r.files_created,
            "read": r.files_read, "appended": r.files_appended, "deleted": r.files_deleted}


def run_debian(params: postmark.PostmarkParams, base: Path) -> dict[str, float]:
    with postmark.workdir(base) as wd:
        t0, c0 = time.monotonic(), _cpu()
        proc = subprocess.run(["postmark"], input=postmark.reference_script(params),
                              capture_output=True, text=True, cwd=wd, check=True)
        wall, cpu = time.monotonic() - t0, _cpu() - c0
    r = postmark.parse_reference_report(proc.stdout)
    tx_seconds = max(1, r["seconds_transactions"])
    return {"wall": wall, "cpu": cpu, "total": r["seconds_total"], "tx_seconds": tx_seconds,
            "tps": params.transactions / tx_seconds, "created": r["files_created"],
            "read": r["files_read"], "appended": r["files_appended"],
            "deleted": r["files_deleted"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preset", choices=sorted(postmark.PRESETS), default="default")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--transactions", type=int, default=40000)
    ap.add_argument("--size", default=None, help="MIN:MAX (default: the preset's)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()
    if shutil.which("postmark") is None:
        print("Debian's postmark is not installed: apt-get install postmark", file=sys.stderr)
        return 2
    params = postmark.PRESETS[args.preset]
    size = postmark.parse_size_range(args.size) if args.size else (None, None)
    if args.preset == "default":
        params = postmark.with_overrides(params, files=args.files,
                                         transactions=args.transactions)
    params = postmark.with_overrides(params, size_min=size[0], size_max=size[1],
                                     seed=args.seed)
    params.validate()
    exe = postmark.binary()
    base = args.dir.resolve()
    print(f"settings: {params.files} files, sizes {params.size_min}:{params.size_max}, "
          f"{params.transactions} transactions, blocks {params.read_block}/"
          f"{params.write_block}, seed {params.seed}, in {base}")
    print(f"{'round':>5} {'who':>9} {'wall s':>8} {'cpu s':>7} {'total s':>8} {'tx s':>7} "
          f"{'tx/s':>9}")
    tps_ratios, total_ratios, wall_ratios, cpu_ratios = [], [], [], []
    shares: list[float] = []
    for rnd in range(1, args.rounds + 1):
        order = ["ours", "debian"] if rnd % 2 else ["debian", "ours"]
        res: dict[str, dict[str, float]] = {}
        for who in order:
            res[who] = run_ours(params, base, exe) if who == "ours" else \
                run_debian(params, base)
            r = res[who]
            print(f"{rnd:>5} {who:>9} {r['wall']:>8.2f} {r['cpu']:>7.2f} {r['total']:>8.2f} "
                  f"{r['tx_seconds']:>7.2f} {r['tps']:>9.0f}", flush=True)
        o, d = res["ours"], res["debian"]
        same = all(o[k] == d[k] for k in ("created", "read", "appended", "deleted"))
        if not same:
            print(f"      operation counts DIFFER: ours {o} debian {d}")
        tps_ratios.append(o["tps"] / d["tps"])
        total_ratios.append(o["total"] / max(1.0, d["total"]))
        wall_ratios.append(o["wall"] / d["wall"])
        cpu_ratios.append(o["cpu"] / d["cpu"])
        shares += [o["cpu"] / o["wall"], d["cpu"] / d["wall"]]
        print(f"      ratio ours/debian: tx/s {tps_ratios[-1]:.3f}, total time (own clocks) "
              f"{total_ratios[-1]:.3f}, wall {wall_ratios[-1]:.3f}, CPU {cpu_ratios[-1]:.3f}; "
              f"operations "
              f"{'identical' if same else 'DIFFERENT'}")
    med = statistics.median
    for label, ratios in (("transactions/s", tps_ratios), ("wall time", wall_ratios),
                          ("CPU time", cpu_ratios)):
        ci = t_log_interval(ratios)
        gm = geometric_mean(ratios)
        print(f"geometric mean ratio of {label}: {gm:.3f}" +
              (f" (95% CI {ci[0]:.3f} .. {ci[1]:.3f})" if ci else ""))
    print(f"median ratio ours/debian: transactions/s {med(tps_ratios):.3f}, total time "
          f"{med(total_ratios):.3f} (own clocks), {med(wall_ratios):.3f} (wall), CPU time "
          f"{med(cpu_ratios):.3f}")
    share = med(shares)
    if share < 0.8:
        print(f"note: while running, the programs got a median {share:.0%} of a CPU (the rest "
              "waiting for a CPU on a busy machine, or for the disk): wall-clock ratios mostly "
              "measure the machine's load, compare the CPU time")
    within = all(abs(med(x) - 1) <= 0.10 for x in (tps_ratios, wall_ratios))
    print(f"within ±10%: {'yes' if within else 'no'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
