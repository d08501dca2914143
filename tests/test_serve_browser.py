"""``virtbench serve`` in a real browser: Playwright for Python driving Debian's Chromium
(headless, never a downloaded browser), clicking runs list -> run -> compare -> history ->
fleet -> experiments and checking what is shown, against SQLite and a real PostgreSQL.

Every chart must render (the loader counts them in ``data-charts-*`` on ``<body>``) and the
console must stay free of errors (a blocked or missing asset is one).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the [serve] extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api")

import serve_data  # noqa: E402
from virtbench.fleet.state import FleetState, HostState  # noqa: E402

db = serve_data.db
server = serve_data.server
FLEET = "20261110-000000-ab12"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# How long a page, a click or a condition may take before the test fails. Generous: a busy CI
# machine (2 CPUs, other tests' QEMU guests and databases) makes Chromium draw seven plotly
# charts slowly; a page that never gets there still fails, only later.
WAIT_S = 60.0
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/setup-dev.sh installs it)")
        pytest.skip("chromium is not installed")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A page plus everything it logged that is an error."""

    def __init__(self, browser: Any, base: str) -> None:
        self.ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(WAIT_S * 1000)
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))

    def wait_js(self, expression: str, timeout: float = WAIT_S) -> None:
        """Poll ``expression`` until true (``wait_for_function`` evaluates its predicate with
        ``eval``, which the app's Content-Security-Policy rightly forbids)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.page.evaluate(expression):
                    return
            except sync_api.Error as exc:  # the page navigated (a reload) while evaluating
                if "context was destroyed" not in str(exc):
                    raise
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)

    def charts_ok(self, expected: int | None = None) -> int:
        """Wait until every chart of the page rendered; their number."""
        p = self.page
        self.wait_js("document.body.dataset.chartsExpected !== undefined && "
                     "document.body.dataset.chartsRendered === "
                     "document.body.dataset.chartsExpected")
        n = int(p.evaluate("document.body.dataset.chartsExpected"))
        assert p.evaluate("document.body.dataset.renderErrors") == "0"
        if expected is not None:
            assert n == expected
        assert p.locator(".main-svg").count() >= n
        return n


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    pg = Page(browser, server)
    try:
        yield pg
    finally:
        pg.ctx.close()
    assert pg.errors == [], pg.errors
    foreign = [u for u in pg.requests if not u.startswith(server)]
    assert foreign == [], foreign  # no CDN, nothing from elsewhere


def test_click_through_list_run_compare_history(page: Page) -> None:
    p = page.page
    p.goto(page.base + "/")
    assert p.url.endswith("/runs")
    assert p.locator("#runs-table tbody tr").count() == 17
    # two label filters (from links) survive a new submit of the form
    p.goto(page.base + "/runs?label=env%3Dprod&label=name%3Dweb1-3")
    p.select_option("select[name=per]", "25")
    p.click("#filters button[type=submit]")
    p.wait_for_url("**per=25*")
    assert p.locator("#runs-table tbody tr").count() == 1
    p.goto(page.base + "/runs")
    # filter by host through the form
    p.fill("input[name=host]", "web1")
    p.click("#filters button[type=submit]")
    p.wait_for_url("**/runs?*host=web1*")
    assert p.locator("#runs-table tbody tr").count() == 6
    assert p.inner_text("#count").startswith("6 runs match")
    # sort by index, best first: the 0.70x runs go last
    p.click("a[data-sort=score]")
    p.wait_for_url("**sort=-score*")
    ids = p.locator("#runs-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.run)")
    assert ids[-2:] in (["web1run5", "web1run4"], ["web1run4", "web1run5"])
    # the run page
    p.click("tr[data-run=web1run0] a.run-link")
    p.wait_for_url("**/runs/web1run0")
    assert p.inner_text("h1") == "Run web1run0"
    assert page.charts_ok() == 7
    assert p.inner_text("#detect-summary") == "kvm (qemu)"
    assert "Dhrystone 2 using register variables" in p.inner_text("#numbers")
    assert "±1.5%" in p.inner_text("#numbers")
    # back to the list, select two runs, compare them
    p.go_back()
    p.check("tr[data-run=web1run0] input[type=checkbox]")
    p.check("tr[data-run=web1run4] input[type=checkbox]")
    p.click("#compare-selected")
    p.wait_for_url("**/compare?run=*")
    assert "run=web1run" in p.url
    table = p.inner_text("#significance")
    assert table.count("0.700x ▼") == 24
    assert page.charts_ok() >= 8
    shared = p.url  # the shareable address opens the same comparison
    p.goto(shared)
    assert p.inner_text("#significance").count("0.700x ▼") == 24
    # history of the host, from the run page's host link
    p.goto(page.base + "/runs/web1run4")
    p.click("#run-facts a[href*='/history']")
    p.wait_for_url("**/history?host=web1")
    assert page.charts_ok() == 2
    assert "2 environment changes" in p.inner_text("#history-count")
    changes = p.inner_text("#changes")
    assert "6.1.0-13-amd64 → 6.5.0-1-amd64" in changes and "kvm (qemu) → xen (hvm)" in changes
    # the two change markers are drawn on the index chart
    assert p.locator("#chart-1 .shapelayer path").count() >= 2
    # history of a label, from a run's label link
    p.goto(page.base + "/runs/web1run4")
    p.click("#run-facts a.lbl[href*='env%3Dprod']")
    p.wait_for_url("**/history?label=env%3Dprod")
    assert page.charts_ok() == 2
    assert p.inner_text("h1") == "History of env=prod"
    assert "6 suite runs" in p.inner_text("#history-count")


def test_downloads_in_the_browser(page: Page) -> None:
    """What a page shows, downloaded by its links: the list's CSV, a run's JSON, the history's
    Markdown, and the static report of a selection (offline: plotly inlined)."""
    p = page.page
    p.goto(page.base + "/runs?host=web1")
    with p.expect_download() as dl:
        p.click("a[data-download=CSV]")
    text = Path(dl.value.path()).read_text(encoding="utf-8")
    assert dl.value.suggested_filename == "runs.csv"
    assert [line.split(",")[0] for line in text.splitlines()[1:]] == [
        f"web1run{i}" for i in range(5, -1, -1)]
    p.check("tr[data-run=web1run0] input[type=checkbox]")
    p.check("tr[data-run=web1run4] input[type=checkbox]")
    with p.expect_download() as dl:
        p.click("#report-selected")
    report = Path(dl.value.path()).read_text(encoding="utf-8")
    assert dl.value.suggested_filename == "virtbench-report-web1ru-web1ru.html"
    assert "self-contained: works offline" in report and "plotly.js v" in report
    p.goto(page.base + "/history?host=web1")
    with p.expect_download() as dl:
        p.click("a[data-download=Markdown]")
    md = Path(dl.value.path()).read_text(encoding="utf-8")
    assert md.startswith("| run | started | host | kernel |") and md.count("| web1run") == 6
    # JSON opens in the browser (no attachment): the document itself
    p.goto(page.base + "/runs/web1run0")
    p.click("a[data-download=JSON]")
    p.wait_for_url("**/runs/web1run0?format=json")
    assert '"id": "web1run0"' in p.inner_text("body")


def test_fleet_page_updates_live(page: Page, tmp_path: Path) -> None:
    state = FleetState(id=FLEET, command=["run", "--quick"], inventory="hosts.ini",
                       controller={"pid": os.getpid(), "host": "elsewhere"})
    for n in range(4):
        state.hosts[f"node{n}"] = HostState(name=f"node{n}", groups=["web"],
                                            status="fetched" if n < 2 else "running")
    state.hosts["node4"] = HostState(name="node4", groups=["web"], status="queued")
    state.save()
    p = page.page
    p.goto(page.base + "/fleet")
    p.click(f"a[href='/fleet/{FLEET}']")
    p.wait_for_url(f"**/fleet/{FLEET}")
    assert "running" in p.inner_text("#fleet-status")
    assert p.inner_text("#fleet-hosts tr[data-host=node4] td:nth-child(3)") == "queued"
    assert "OUTLIER" in p.inner_text("#fleet-table tr[data-host=node3]")
    # the controller moves on: the page follows without a reload...
    state.hosts["node4"].status = "running"
    state.save()
    page.wait_js("document.querySelector('#fleet-hosts tr[data-host=node4] "
                 "td:nth-child(3)').textContent === 'running'")
    assert int(p.evaluate("document.body.dataset.polls || '0'")) >= 1
    # ...and reloads with the results once the run is over
    for h in state.hosts.values():
        h.status = "fetched" if h.name != "node4" else "failed"
        h.reason = "unreachable" if h.name == "node4" else None
    state.status = "incomplete"
    state.save()
    page.wait_js("!!document.querySelector('#fleet-status') && "
                 "document.querySelector('#fleet-status').dataset.live === '0' && "
                 "!document.body.dataset.polls")
    assert "incomplete" in p.inner_text("#fleet-status")
    assert "unreachable" in p.inner_text("#fleet-hosts tr[data-host=node4]")


def test_experiments_and_errors_in_the_browser(page: Page) -> None:
    p = page.page
    p.goto(page.base + "/runs")
    p.click("nav.app-nav >> text=Experiments")
    p.wait_for_url("**/experiments")
    assert p.locator("#experiments-table tbody tr").count() == 6
    p.click("#experiments-table a[href='/runs/expconsolidate']")
    p.wait_for_url("**/runs/expconsolidate")
    assert page.charts_ok() == 2
    assert "Consolidation" in p.inner_text("#experiments")
    # every kind, through its filter link: its page draws all its charts
    for name, title, charts in [("cap", "CPU cap", 3), ("postmark", "Postmark", 1),
                                ("seqread", "Sequential read", 1),
                                ("tune", "Tuning (A/B)", 1), ("migrate", "Live migration", 4)]:
        p.goto(page.base + "/experiments")
        p.click(f"#experiment-kinds a:has-text('{title} (1)')")
        p.wait_for_url(f"**/experiments?experiment={name}")
        assert p.locator("#experiments-table tbody tr").count() == 1
        p.click(f"#experiments-table a[href='/runs/exp{name}']")
        p.wait_for_url(f"**/runs/exp{name}")
        assert page.charts_ok() == charts, name
        assert title in p.inner_text("#experiments")
    before = len(page.requests)
    resp = p.goto(page.base + "/runs/no-such-run")
    assert resp is not None and resp.status == 404
    assert "no run 'no-such-run'" in p.inner_text("#error-message")
    resp = p.goto(page.base + "/runs?page=99999")
    assert resp is not None and resp.status == 404
    assert "there is only 1 page" in p.inner_text("#error-message")
    # an error page is the page alone: nothing else to load (no chart library, no script)
    assert page.requests[before:] == [page.base + "/runs/no-such-run",
                                      page.base + "/runs?page=99999"]
    # the browser logs the 404 responses themselves as console errors: not a page error
    page.errors = [e for e in page.errors if "status of 404" not in e]
