"""Print the figures of `virtbench report`: page size, time to build and render the HTML, and
(when Chromium is installed) how long headless Chromium takes to load the page and draw every
chart (the page records ``performance.now()`` when the last chart resolves).

    PYTHONPATH=src python bench/report_speed.py
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from unixbench_runs import reference_run  # noqa: E402
from virtbench.cli.resolve import resolve  # noqa: E402
from virtbench.report import data, html  # noqa: E402
from virtbench.results.model import PassResult  # noqa: E402


def main() -> int:
    samples = sorted(str(p) for p in (ROOT / "tests" / "data").glob("unixbench-*.txt"))
    docs = list(resolve(samples))
    ref = reference_run()
    for section in ref.sections:
        for n, t in enumerate(section.tests):
            assert t.score
            t.passes = [PassResult(score=t.score * (1 + 0.01 * ((i + n) % 7 - 3)), elapsed=10.0)
                        for i in range(10)]
    docs.append(ref)
    t0 = time.perf_counter()
    report = data.build(docs)
    t1 = time.perf_counter()
    page = html.render(report)
    t2 = time.perf_counter()
    charts = len(re.findall(r'data-chart="chart-\d+">', page))
    print(f"documents: {len(docs)} ({len(samples)} UnixBench text reports + 1 run with passes)")
    print(f"charts: {charts}")
    print(f"build: {(t1 - t0) * 1000:.1f} ms, render: {(t2 - t1) * 1000:.1f} ms")
    print(f"size: {len(page.encode()) / 1e6:.2f} MB "
          f"(plotly.js {len(html.plotly_js().encode()) / 1e6:.2f} MB of it)")
    chromium = shutil.which("chromium")
    if not chromium:
        print("chromium: not installed, no browser figures")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        out.write_text(page, encoding="utf-8")
        for run in range(3):
            start = time.perf_counter()
            proc = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp}/profile", "--virtual-time-budget=15000",
                 "--dump-dom", out.as_uri()],
                capture_output=True, text=True, timeout=180, check=False)
            wall = time.perf_counter() - start
            body = re.search(r"<body[^>]*>", proc.stdout)
            attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(0) if body else ""))
            print(f"chromium run {run + 1}: process {wall:.2f} s, charts drawn "
                  f"{attrs.get('charts-rendered')}/{attrs.get('charts-expected')} at "
                  f"{attrs.get('render-ms')} ms after navigation start, "
                  f"errors {attrs.get('render-errors')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
