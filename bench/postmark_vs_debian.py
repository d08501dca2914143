#!/usr/bin/env python3
"""virtbench's Postmark against Debian's ``postmark`` (NetApp 1.5x) at identical settings.

Runs both, interleaved (order alternating by round) or, with ``--concurrent``, started
together in each round, each in a fresh directory under ``--dir``, and prints per-round
figures and the ratios virtbench / Debian of transactions per second and of total time,
with the medians. Target: within ±10%.

Debian's Postmark times with ``time()`` (1 s resolution), so its own figures are integers;
the script also times both processes from outside (wall clock) and reads their CPU
time (user + system, from ``getrusage``), which a busy machine disturbs less than the wall
clock. Operation counts must be identical (same seed → same operations).

    PYTHONPATH=src python bench/postmark_vs_debian.py [--rounds 3] [--files 2000]
        [--transactions 40000] [--size 500:10000] [--dir /var/tmp] [--preset paper]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from virtbench.analysis.stats import geometric_mean, t_log_interval
from virtbench.experiments import postmark


@dataclass
class _Running:
    who: str
    proc: subprocess.Popen[str]
    workdir: contextlib.AbstractContextManager[Path]
    t0: float


def _start(who: str, params: postmark.PostmarkParams, base: Path, exe: Path) -> _Running:
    ctx = postmark.workdir(base)
    wd = ctx.__enter__()
    t0 = time.monotonic()
    if who == "ours":
        proc = subprocess.Popen(postmark.command(params, wd, exe), stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
    else:
        proc = subprocess.Popen(["postmark"], stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                                cwd=wd, text=True)
        assert proc.stdin is not None
        proc.stdin.write(postmark.reference_script(params))
        proc.stdin.close()
    return _Running(who, proc, ctx, t0)


def _reap(running: list[_Running], params: postmark.PostmarkParams
          ) -> dict[str, dict[str, float]]:
    """Wait for every process; each one's wall time ends when it exits, its CPU time is
    its own (wait4), so concurrent runs are measured separately."""
    out: dict[str, dict[str, float]] = {}
    by_pid = {r.proc.pid: r for r in running}
    while by_pid:
        pid, status, ru = os.wait4(-1, 0)
        r = by_pid.pop(pid, None)
        if r is None:
            continue
        wall = time.monotonic() - r.t0
        r.proc.returncode = os.waitstatus_to_exitcode(status)
        assert r.proc.stdout is not None
        text = r.proc.stdout.read()
        r.workdir.__exit__(None, None, None)
        if r.proc.returncode != 0:
            raise SystemExit(f"{r.who} postmark failed (exit {r.proc.returncode})")
        cpu = ru.ru_utime + ru.ru_stime
        if r.who == "ours":
            p = postmark.parse(text)
            out[r.who] = {"wall": wall, "cpu": cpu, "total": p.seconds_total,
                          "tx_seconds": p.seconds_transactions,
                          "tps": p.transactions_per_second, "created": p.files_created,
                          "read": p.files_read, "appended": p.files_appended,
                          "deleted": p.files_deleted}
        else:
            d = postmark.parse_reference_report(text)
            tx_seconds = max(1, d["seconds_transactions"])
            out[r.who] = {"wall": wall, "cpu": cpu, "total": d["seconds_total"],
                          "tx_seconds": tx_seconds, "tps": params.transactions / tx_seconds,
                          "created": d["files_created"], "read": d["files_read"],
                          "appended": d["files_appended"], "deleted": d["files_deleted"]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preset", choices=sorted(postmark.PRESETS), default="default")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--transactions", type=int, default=40000)
    ap.add_argument("--size", default=None, help="MIN:MAX (default: the preset's)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--concurrent", action="store_true",
                    help="start both at once in each round (they share the machine's load "
                    "at the same moments; slow drifts cancel)")
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
        if args.concurrent:
            res = _reap([_start(who, params, base, exe) for who in order], params)
        else:
            for who in order:
                res.update(_reap([_start(who, params, base, exe)], params))
        for who in order:
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
