"""Take the screenshots of docs/serve.md (docs/img/serve-*.png) with headless Chromium.

The dashboard runs over the documents of its own tests (tests/serve_data.py) in a temporary
store; Playwright drives Debian's /usr/bin/chromium (no browser is downloaded).

    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/python scripts/serve_screenshots.py
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

SHOTS = [
    ("runs", "/runs?host=web1", None),
    ("run", "/runs/web1run4", "#summary"),
    ("compare", "/compare?run=web1run0&run=web1run1&run=web1run4", "#significance"),
    ("history", "/history?host=web1", None),
    ("fleet", "/fleet/20261110-000000-ab12", "#fleet-results"),
]


def main() -> int:
    from playwright.sync_api import sync_playwright

    from serve_data import fill_store, running_server
    from virtbench.serve.app import ServeConfig, create_app

    tmp = Path(tempfile.mkdtemp(prefix="vb-shots-"))
    os.environ["XDG_DATA_HOME"] = str(tmp / "data")
    out = ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    try:
        url = f"sqlite:///{tmp / 'vb.db'}"
        fill_store(url, tmp / "docs")
        with running_server(create_app(ServeConfig(db_url=url))) as base, \
                sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking", "--disable-component-update",
                      "--no-first-run"])
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            for name, path, anchor in SHOTS:
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(800)  # plotly's transitions
                if anchor:
                    page.evaluate(f"document.querySelector('{anchor}').scrollIntoView()")
                    page.wait_for_timeout(300)
                target = out / f"serve-{name}.png"
                page.screenshot(path=str(target))
                print(f"{target.relative_to(ROOT)}: {target.stat().st_size // 1024} KiB")
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
