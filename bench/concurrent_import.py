"""Concurrent re-imports of one report: is any label lost, does the index agree with the file?

N writer processes (spawned interpreters, each running ``virtbench import`` in-process in a
loop) re-import the same UnixBench report at the same moment (a barrier per round), each
with its own ``--label wI-rJ=1``. Afterwards the master document must hold every label and
the index exactly the master's labels. Prints ``lost: 0`` and ``index disagrees: 0`` when
nothing was lost (docs/reliability.md).

    .venv/bin/python bench/concurrent_import.py --writers 8 --rounds 100

Uses a temporary data directory (SQLite index) unless --db is given.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "tests" / "data" / "unixbench-centos6-xen-pv.txt"


def writer(index: int, rounds: int, data_home: str, report: str, db: str | None,
           barrier: Any, errors: Any) -> None:
    os.environ["XDG_DATA_HOME"] = data_home
    import virtbench.cli as cli

    argv_db = ["--db", db] if db else []
    for r in range(rounds):
        barrier.wait(timeout=120)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(["import", "--label", f"w{index}-r{r}=1", *argv_db, report])
        if rc != 0:
            errors.put(f"writer {index} round {r}: rc {rc}: {err.getvalue().strip()}")


def check(data_home: str, db: str | None, writers: int, rounds: int) -> tuple[int, int, str]:
    """(labels lost, labels on which index and file disagree, run id)."""
    os.environ["XDG_DATA_HOME"] = data_home
    from virtbench.results.model import load_any
    from virtbench.store import open_store

    store = open_store(db)
    rows = store.list_runs()
    if len(rows) != 1:
        raise SystemExit(f"expected one run in the index, found {len(rows)}")
    row = rows[0]
    master = load_any(Path(row.path)).labels
    expected = {f"w{i}-r{r}" for i in range(writers) for r in range(rounds)}
    lost = len(expected - set(master))
    disagree = len(set(master.items()) ^ set(row.labels.items()))
    return lost, disagree, row.id


def run(writers: int, rounds: int, data_home: str, db: str | None = None,
        report: Path = REPORT) -> tuple[int, int, list[str]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(writers)
    errors = ctx.Queue()
    procs = [ctx.Process(target=writer, args=(i, rounds, data_home, str(report), db, barrier,
                                              errors)) for i in range(writers)]
    for p in procs:
        p.start()
    failures: list[str] = []
    for p in procs:
        p.join(timeout=60 + rounds * 30)
        if p.is_alive():
            p.kill()
            p.join()
            failures.append(f"writer pid {p.pid} hung")
        elif p.exitcode != 0:
            failures.append(f"writer pid {p.pid} exited {p.exitcode}")
    while not errors.empty():
        failures.append(errors.get())
    lost, disagree, _ = check(data_home, db, writers, rounds)
    return lost, disagree, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--db", default=None, help="index URL (default: SQLite in a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vb-concurrent-") as home:
        start = time.monotonic()
        lost, disagree, failures = run(args.writers, args.rounds, home, args.db)
        took = time.monotonic() - start
    print(f"writers: {args.writers}  rounds: {args.rounds}  "
          f"imports: {args.writers * args.rounds}  seconds: {took:.1f}")
    print(f"lost: {lost}")
    print(f"index disagrees: {disagree}")
    print(f"failed imports: {len(failures)}")
    for f in failures[:10]:
        print(f"  {f}")
    return 0 if lost == disagree == len(failures) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
