"""Latency of ``virtbench serve`` pages with 10,000 runs stored (targets: p95 under 200 ms for
the runs list and a run page, under 500 ms for a 10-run compare).

The store is filled with real documents: the ones the dashboard's tests use
(``tests/serve_data.py``: suite runs built from published UnixBench figures with pass scores
and confidence intervals, and the experiment documents under ``tests/data/experiments``),
copied with new ids, spread over 60 hosts, three labels and a year of dates, each saved as
its own JSON file and indexed with ``Store.record_many``. The server is ``virtbench serve``
as a separate process; each page is fetched sequentially over loopback (a warm-up request
first, then ``--requests`` timed ones; run pages and compares pick different runs each time,
so the document cache does not hide the file reads).

    PYTHONPATH=src:tests python bench/serve_latency.py [--runs 10000] [--requests 40]
        [--db sqlite|postgresql|URL ...]

``--db postgresql`` starts a throwaway PostgreSQL server as the tests do (initdb + pg_ctl in
a temporary directory, stopped and removed at the end).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]


def _docs(n: int, seed: int = 1) -> Iterator[Any]:
    from serve_data import documents

    templates = documents()
    rnd = random.Random(seed)
    start = time.mktime((2025, 12, 1, 0, 0, 0, 0, 0, 0))
    for i in range(n):
        doc = templates[i % len(templates)].model_copy(deep=True)
        doc.id = f"b{i:06d}{rnd.randrange(16**5):05x}"
        ts = start + i * (365 * 86400 / n)
        doc.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
        host = f"host{rnd.randrange(60):02d}"
        doc.environment.hostname = host
        doc.labels = {k: v for k, v in doc.labels.items() if k not in ("fleet", "host")}
        doc.labels["team"] = rnd.choice(("db", "web", "batch"))
        if i % 50 == 0:
            doc.labels["fleet"] = f"fleet{i // 500:02d}"
            doc.labels["host"] = host
        yield doc


def fill(url: str, directory: Path, n: int) -> float:
    from virtbench.store import dispose_engines, open_store

    t0 = time.monotonic()
    store = open_store(url)
    batch = []
    for doc in _docs(n):
        path = directory / f"{doc.id}.json"
        doc.save(path)
        batch.append((doc, path))
        if len(batch) == 500:
            store.record_many(batch)
            batch = []
    if batch:
        store.record_many(batch)
    dispose_engines()
    return time.monotonic() - t0


@contextmanager
def serving(url: str, env: dict[str, str]) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "virtbench", "serve", "--db", url,
                             "--port", "0"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"serving (http://127\.0\.0\.1:\d+)/", line)
        if not m:
            raise SystemExit(f"serve did not start: {line}{proc.stderr.read()}")
        yield m.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


# Issue 18's targets for the p95 with 10,000 runs stored (every view of the runs list).
TARGETS_MS = {"runs list": 200, "run page": 200, "compare 10 runs": 500}


def measure(base: str, ids: list[str], suite_ids: list[str], hosts: list[str],
            fleets: list[str], requests: int) -> None:
    """Time each page; hosts (of suite runs) and fleets are those stored, so that a small
    ``--runs`` works too."""
    import httpx

    rnd = random.Random(7)
    deep = min(150, -(-len(ids) // 50))  # page 150 of 200 with 10,000 runs; the last if fewer
    pages: list[tuple[str, object]] = [
        ("runs list, page 1", lambda: "/runs"),
        ("runs list, host filter", lambda: f"/runs?host=host{rnd.randrange(60):02d}"),
        ("runs list, sorted by index", lambda: "/runs?sort=-score"),
        ("runs list, search", lambda: "/runs?q=xeon"),
        (f"runs list, page {deep}", lambda: f"/runs?page={deep}"),
        ("run page", lambda: f"/runs/{rnd.choice(suite_ids)}"),
        ("experiment page", lambda: f"/runs/{rnd.choice([i for i in ids if i not in sset])}"),
        ("compare 10 runs", lambda: "/compare?" + "&".join(
            f"run={i}" for i in rnd.sample(suite_ids, 10))),
        ("history of a host", lambda: f"/history?host={rnd.choice(hosts)}"),
        ("fleet run", lambda: f"/fleet/{rnd.choice(fleets)}"),
        ("experiments", lambda: "/experiments"),
    ]
    sset = set(suite_ids)
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, make in pages:
            path = make()  # type: ignore[operator]
            r = client.get(path)  # warm-up (imports, plans, page cache)
            if r.status_code != 200:
                raise SystemExit(f"{name}: GET {path} -> {r.status_code}: {r.text[:300]}")
            times = []
            for _ in range(requests):
                path = make()  # type: ignore[operator]
                t0 = time.perf_counter()
                r = client.get(path)
                times.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise SystemExit(f"{name}: GET {path} -> {r.status_code}")
            times.sort()
            p95 = times[max(0, round(0.95 * len(times)) - 1)]
            target = TARGETS_MS.get(name.split(",")[0])
            verdict = "" if target is None else (
                f"   target {target} ms: {'met' if p95 * 1000 < target else 'MISSED'}")
            print(f"  {name:28s} p50 {statistics.median(times) * 1000:7.1f} ms   "
                  f"p95 {p95 * 1000:7.1f} ms   ({len(times)} requests, {len(r.content):,} B)"
                  + verdict)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--db", action="append", default=None,
                    help="sqlite, postgresql (a throwaway server) or a URL; repeatable "
                         "(default: both)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vb-serve-bench-"))
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "data"),
               PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    os.environ["XDG_DATA_HOME"] = env["XDG_DATA_HOME"]
    try:
        for which in args.db or ["sqlite", "postgresql"]:
            with _database(which, tmp) as url:
                docs_dir = tmp / f"docs-{which.split(':')[0]}"
                docs_dir.mkdir(parents=True)
                took = fill(url, docs_dir, args.runs)
                from virtbench.store import dispose_engines, open_store

                store = open_store(url)
                rows = store.list_runs()
                ids = [r.id for r in rows]
                suite_ids = [r.id for r in rows if r.kind == "suite"]
                hosts = sorted({r.hostname for r in rows if r.kind == "suite" and r.hostname})
                fleets = sorted({r.labels["fleet"] for r in rows if "fleet" in r.labels})
                dispose_engines()
                print(f"{which}: {len(ids):,} runs ({len(suite_ids):,} suite runs) stored "
                      f"in {took:.0f} s")
                with serving(url, env) as base:
                    print("  load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
                    measure(base, ids, suite_ids, hosts, fleets, args.requests)
                    print("  load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


@contextmanager
def _database(which: str, tmp: Path) -> Iterator[str]:
    if which == "sqlite":
        yield f"sqlite:///{tmp / 'vb.db'}"
    elif which == "postgresql":
        import pgserver

        gen = pgserver.postgres_url.__wrapped__()  # type: ignore[attr-defined]
        try:
            yield next(gen)
        finally:
            gen.close()
    else:
        yield which


if __name__ == "__main__":
    raise SystemExit(main())
