"""How long the UnixBench importer takes on hostile lines (issue 12: 40k spaces took 19 s
and a 10 MB line never ended). Prints wall and CPU seconds per input and CPU nanoseconds per
character: every input must be refused or read in time linear in its size (the ns/char
column stays flat as inputs grow).

    .venv/bin/python bench/import_linear.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from virtbench.errors import UsageError  # noqa: E402
from virtbench.importers.unixbench import parse_reports  # noqa: E402

REF = (ROOT / "tests" / "data" / "unixbench-centos6-xen-pv.txt").read_text()


def cases() -> list[tuple[str, str]]:
    out = []
    for n in (40_000, 400_000, 4_000_000):
        out.append((f"{n} spaces then 'Benchmark Run:'", " " * n + "Benchmark Run: x\n" + REF))
    for n in (1_000_000, 10_000_000):
        out.append((f"one line of {n // 1_000_000} MB", "x" * n + "\n"))
    for n in (5_000, 20_000):  # 4x the input: about 4x the time if linear
        out.append((f"4000-char lines of spaces x {n}", ("Pipe" + " " * 4000 + "1\n") * n))
    out.append(("4000-char lines of '(' x 20000", ("(" * 4000 + "\n") * 20_000))
    out.append(("4000-char lines of digits x 20000", ("1" * 4000 + "\n") * 20_000))
    out.append(("report + 200k noise lines", REF + "noise\n" * 200_000))
    for n in (1_000_000, 4_000_000):  # a web page (HTML): the tokenizer must stay linear
        out.append((f"web page of {n // 1_000_000}M '<br>'", "<html>" + "<br>" * n))
        out.append((f"web page of {n // 1_000_000}M '<'", "<html>" + "<" * n))
    out.append(("web page of 64M '<' (8 MiB read)", "<html>" + "<" * 64_000_000))
    return out


def main() -> int:
    worst = 0.0
    for label, text in cases():
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            runs = parse_reports(text, "bench.txt")
            outcome = f"{len(runs)} run(s)"
        except UsageError as exc:
            outcome = f"refused: {str(exc)[:70]}"
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        worst = max(worst, dt)
        print(f"{dt:8.3f} s wall {cpu:8.3f} s CPU  {cpu / len(text) * 1e9:6.1f} ns/char  "
              f"{len(text):>10} chars  {label}: {outcome[:60]}")
    print(f"worst: {worst:.3f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
