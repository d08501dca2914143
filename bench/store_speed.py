"""How fast the store, the importer and compare are (targets: a save_and_record well under
50 ms so `run` can call it after every test; an import of a report under 1 s end to end).

Prints, in a temporary data directory (your own is never touched):

* parse time of the shared UnixBench report (median of in-process repeats);
* save_and_record latency on SQLite: a new run, and the same run recorded again;
* `virtbench import` and `virtbench compare` of the PV report and its synthesized HVM
  counterpart as processes (including Python start-up and CLI imports);
* the compare figures themselves (PV vs HVM ratios of the kernel-entry tests).

    PYTHONPATH=src python bench/store_speed.py [--repeat N] [--db URL]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT / "src"))


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.1f} ms (min {min(samples) * 1000:.1f})"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--db", default=None, help="database URL (default: SQLite in a temp dir)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vb-store-bench-"))
    os.environ["XDG_DATA_HOME"] = str(tmp)
    try:
        return _bench(args)
    finally:
        from virtbench.store import dispose_engines

        dispose_engines()
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(args: argparse.Namespace) -> int:

    from virtbench.importers.unixbench import parse_file
    from virtbench.store import open_store, save_and_record

    pv, hvm = DATA / "unixbench-centos6-xen-pv.txt", DATA / "unixbench-xen-hvm-synthesized.txt"
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        parse_file(pv)
        times.append(time.perf_counter() - t0)
    print(f"parse {pv.name}: {_ms(times)}")

    t0 = time.perf_counter()
    open_store(args.db)
    print(f"open_store (first, creates tables): {(time.perf_counter() - t0) * 1000:.1f} ms")
    new, again = [], []
    for _ in range(args.repeat):
        doc = parse_file(pv)
        doc.id = os.urandom(6).hex()
        t0 = time.perf_counter()
        save_and_record(doc, db_url=args.db)
        new.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        save_and_record(doc, db_url=args.db)
        again.append(time.perf_counter() - t0)
    print(f"save_and_record, new run (12 tests): {_ms(new)}")
    print(f"save_and_record, same run again:     {_ms(again)}")

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    if args.db:
        env["VIRTBENCH_DB"] = args.db

    def cli(*a: str) -> tuple[float, str]:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "virtbench", *a], env=env, check=True,
                           capture_output=True, text=True)
        return time.perf_counter() - t0, p.stdout

    t_imp, _ = cli("import", str(pv), str(hvm))
    print(f"`virtbench import` of 2 reports (process): {t_imp * 1000:.0f} ms")
    t_cmp, out = cli("compare", str(pv), str(hvm), "--json")
    print(f"`virtbench compare` PV vs HVM (process):   {t_cmp * 1000:.0f} ms")
    t_help, _ = cli("--version")
    print(f"`virtbench --version` (process start-up):   {t_help * 1000:.0f} ms")
    comp = json.loads(out)
    sec = comp["sections"][0]
    print("PV -> HVM ratios:", ", ".join(
        f"{t['test']} {t['deltas'][1]['ratio']:.2f}" for t in sec["tests"]
        if t["deltas"][1]["ratio"] and abs(t["deltas"][1]["ratio"] - 1) > 0.01))
    print(f"index score {sec['index_scores'][0]:.1f} -> {sec['index_scores'][1]:.1f} "
          f"(x{sec['index_score_ratios'][1]:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
