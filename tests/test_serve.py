"""``virtbench serve`` over HTTP: every page, filter, download and error, against SQLite and a
real PostgreSQL, with uvicorn on an ephemeral loopback port (tests/serve_data.py)."""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the [serve] extra is not installed")
httpx = pytest.importorskip("httpx")

import serve_data  # noqa: E402
from conftest import SRC  # noqa: E402
from serve_data import fill_store, running_server, suite_run  # noqa: E402
from virtbench.serve.app import ServeConfig, create_app  # noqa: E402
from virtbench.store import dispose_engines, open_store  # noqa: E402

db = serve_data.db  # fixtures: a filled store per database, the dashboard over it
server = serve_data.server
FLEET = "20261110-000000-ab12"
ALL_IDS = {*(f"web1run{i}" for i in range(6)), "db1run0", *(f"fleetrun{i}" for i in range(4)),
           "expconsolidate", "expcap", "exppostmark", "expseqread", "exptune", "expmigrate"}
# Every request waits this long for its answer (httpx's default, 5 s, is too short for a page
# rendered while the machine is busy; a server that never answers still fails the test).
TIMEOUT = 60
EXPERIMENTS = {"expconsolidate", "expcap", "exppostmark", "expseqread", "exptune",
               "expmigrate"}


def get(base: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(base + path, params=params or None, timeout=TIMEOUT)  # type: ignore[arg-type]


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-run="([^"]+)"', html)


# ---- pages -------------------------------------------------------------------------------------
def test_runs_list_filters_sort_and_paging(server: str) -> None:
    r = get(server, "/runs")
    assert r.status_code == 200
    assert set(row_ids(r.text)) == ALL_IDS
    assert "17 runs" in r.text
    assert row_ids(r.text)[0] == "expseqread"  # newest first
    assert r.headers["content-security-policy"].startswith("default-src 'self'")

    assert set(row_ids(get(server, "/runs", host="WEB").text)) == {
        f"web1run{i}" for i in range(6)}
    assert set(row_ids(get(server, "/runs", label="env=staging").text)) == {"db1run0"}
    two = get(server, "/runs", label=["env=prod", "name=web1-3"]).text
    assert row_ids(two) == ["web1run3"]
    # the filter form keeps both (one box each; they were run together as 'env=prodname=...')
    assert re.findall(r'<input name="label" list="labels" value="([^"]*)"', two) == [
        "env=prod", "name=web1-3"]
    assert row_ids(get(server, "/runs", kind="cap").text) == ["expcap"]
    assert len(row_ids(get(server, "/runs", kind="experiment").text)) == 6
    assert row_ids(get(server, "/runs", q="e5-2683").text) == ["db1run0"]  # its CPU
    assert row_ids(get(server, "/runs", q="XEN (h").text) == ["web1run5", "web1run4"]
    assert row_ids(get(server, "/runs", q="6.5.0-1").text) == [
        "web1run5", "web1run4", "web1run3", "web1run2"]  # the kernel
    assert set(row_ids(get(server, "/runs", q="node").text)) == {  # host, and label host=
        f"fleetrun{i}" for i in range(4)}
    assert row_ids(get(server, "/runs", q="run3").text) == ["fleetrun3", "web1run3"]  # id
    assert row_ids(get(server, "/runs", q="prod", since="2026-11-05").text) == [
        "web1run5", "web1run4"]
    assert row_ids(get(server, "/runs", until="2026-11-01").text) == ["web1run0"]
    # the best 1-copy index first (db1 ran at 1.3x the reference), runs without one last
    by_score = row_ids(get(server, "/runs", sort="-score").text)
    assert by_score[0] == "db1run0" and set(by_score[-6:]) == EXPERIMENTS
    assert row_ids(get(server, "/runs", sort="id", per=3).text) == [
        "db1run0", "expcap", "expconsolidate"]
    page3 = get(server, "/runs", sort="id", per=3, page=3).text
    assert row_ids(page3) == ["exptune", "fleetrun0", "fleetrun1"]
    assert "page 3 of 6" in page3
    empty = get(server, "/runs", host="no-such-host")
    assert empty.status_code == 200 and "No runs match" in empty.text


def test_run_page_is_the_report(server: str) -> None:
    r = get(server, "/runs/web1run0")
    assert r.status_code == 200
    html = r.text
    assert "<h1>Run web1run0</h1>" in html
    assert "kvm (qemu)" in html and "confidence 0.99" in html  # detect layers
    assert "cpuid: leaf 0x40000000 signature of kvm" in html  # with their evidence
    # the environment: CPU, kernel, OS
    assert "AMD EPYC 7B13" in html and "6.1.0-13-amd64" in html and "bookworm" in html
    assert "Dhrystone 2 using register variables" in html
    assert "±1.5%" in html  # the confidence intervals
    assert 'id="findings"' in html and "Pass scores around each test" in html
    assert len(re.findall(r'data-chart="chart-\d+"', html)) == 7
    assert '<script src="/static/plotly.js">' in html
    assert "Plotly.newPlot" in html and "plotly.js v" not in html  # not inlined
    # a unique prefix redirects to the run
    prefix = get(server, "/runs/web1run")
    assert prefix.status_code == 404  # six runs share it: ambiguous
    one = httpx.get(server + "/runs/db1r", timeout=TIMEOUT, follow_redirects=False)
    assert one.status_code == 307 and one.headers["location"] == "/runs/db1run0"
    exp = get(server, "/runs/expconsolidate")
    assert exp.status_code == 200 and "Consolidation" in exp.text
    assert len(re.findall(r'data-chart="chart-\d+"', exp.text)) == 2


def test_compare_significance(server: str) -> None:
    r = get(server, "/compare?run=web1run0&run=web1run1&run=web1run4")
    assert r.status_code == 200
    html = r.text
    assert "Ratios to the baseline, with significance" in html
    # web1run4 is 0.70x web1run0 in every test, with passes: beyond noise, marked worse
    assert html.count("0.700x ▼") == 24
    assert "1.010x" in html  # web1run1: 1% better, within noise
    assert 'title="95% CI' in html
    assert len(re.findall(r'data-chart="chart-\d+"', html)) >= 8
    comma = get(server, "/compare", run="web1run0,web1run4")
    assert comma.status_code == 200
    ten = [f"web1run{i}" for i in range(6)] + ["db1run0", "fleetrun0", "fleetrun1",
                                                "fleetrun3"]
    r10 = get(server, "/compare", run=ten)
    assert r10.status_code == 200
    heads = re.findall(r'<span class="sub">vs ', r10.text)
    assert len(heads) == 9 * 2  # nine runs against the first, in both copies sections
    assert "0.500x" in r10.text  # fleetrun3, the slow node, at half web1run0


def test_history_marks_environment_changes(server: str) -> None:
    r = get(server, "/history", host="web1")
    assert r.status_code == 200
    html = r.text
    assert "6 suite runs, 1 copy; 2 environment changes" in html
    assert "6.1.0-13-amd64 → 6.5.0-1-amd64" in html
    assert "kvm (qemu) → xen (hvm)" in html
    specs = [json.loads(s) for s in re.findall(
        r'<script type="application/json" data-chart="chart-\d+">(.*?)</script>', html)]
    assert len(specs) == 2
    index = specs[0]
    assert len(index["layout"]["shapes"]) == 2  # the two change markers
    assert index["data"][0]["y"][4] < 0.75 * index["data"][0]["y"][3]  # the regression
    assert len(specs[1]["data"]) == 12  # one line per test
    two = get(server, "/history", host="web1", copies=2)
    assert "6 suite runs, 2 copies" in two.text
    by_label = get(server, "/history", label="env=prod")
    assert by_label.status_code == 200 and "6 suite runs" in by_label.text
    pick = get(server, "/history")
    assert pick.status_code == 200 and "/history?host=web1" in pick.text


def test_fleet_and_experiments(server: str) -> None:
    listing = get(server, "/fleet")
    assert listing.status_code == 200 and f"/fleet/{FLEET}" in listing.text
    r = get(server, f"/fleet/{FLEET}")
    assert r.status_code == 200
    assert re.search(r'<tr class="outlier" data-host="node3">', r.text)
    assert "OUTLIER" in r.text and 'data-outlier="node3"' in r.text
    exps = get(server, "/experiments")
    assert exps.status_code == 200
    for title in ("Consolidation (1)", "CPU cap (1)", "Postmark (1)", "Sequential read (1)"):
        assert title in exps.text
    only = get(server, "/experiments", experiment="cap")
    assert "/runs/expcap" in only.text and "/runs/expseqread" not in only.text


@pytest.mark.parametrize(("name", "title", "charts"), [
    ("consolidate", "Consolidation", ["Seconds per condition", "Slowdown against solo"]),
    ("cap", "CPU cap", ["User vs system CPU time per quota", "Throughput relative to uncapped",
                        "System-call latency"]),
    ("postmark", "Postmark", ["Transactions per second"]),
    ("seqread", "Sequential read", ["Sequential read throughput"]),
    ("tune", "Tuning (A/B)", ["Main metric per round"]),
    ("migrate", "Live migration", [  # the guest ran under TCG: every title says so
        "Total migration time vs bandwidth (TCG)",
        "Downtime per point (QMP and as the guest saw it) (TCG)", "Iterations per point (TCG)",
        "Guest throughput before / during / after (TCG)"]),
])
def test_each_experiment_page_has_its_charts(server: str, name: str, title: str,
                                             charts: list[str]) -> None:
    """Consolidation, cap, io (postmark, seqread), tune and migrate: listed under their
    title, each on its own page with its table and every chart of its view, with data."""
    listed = get(server, "/experiments")
    assert f"{title} (1)" in listed.text and f"/runs/exp{name}" in listed.text
    r = get(server, f"/runs/exp{name}")
    assert r.status_code == 200
    specs = [json.loads(x) for x in re.findall(
        r'<script type="application/json" data-chart="chart-\d+">(.*?)</script>', r.text)]
    assert [f["layout"]["title"]["text"] for f in specs] == charts
    for fig in specs:  # every chart draws numbers
        assert any(isinstance(y, int | float) for t in fig["data"] for y in t.get("y", []))
    doc = json.loads((serve_data.DATA / ("experiments-v3" if name in ("tune", "migrate")
                                         else "experiments") / f"{name}.json").read_text())
    rows = list(csv.DictReader(io.StringIO(get(server, f"/runs/exp{name}",
                                               format="csv").text)))
    assert len(rows) == len(doc["rows"])


def test_downloads(server: str) -> None:
    rows = list(csv.DictReader(io.StringIO(get(server, "/runs", format="csv", host="web1").text)))
    assert [r["id"] for r in rows] == [f"web1run{i}" for i in range(5, -1, -1)]
    data = get(server, "/runs", format="json", per=2).json()
    assert data["total"] == 17 and data["pages"] == 9 and len(data["runs"]) == 2
    md = get(server, "/runs", format="md", kind="suite")
    assert md.text.startswith("| id | started |") and "attachment" in md.headers[
        "content-disposition"]
    doc = get(server, "/runs/web1run0", format="json").json()
    assert doc["id"] == "web1run0" and doc["type"] == "virtbench.run"
    tests = list(csv.DictReader(io.StringIO(get(server, "/runs/web1run0", format="csv").text)))
    assert len(tests) == 26 and tests[-1]["test"] == "index_score"
    assert "# virtbench report" in get(server, "/runs/web1run0", format="md").text
    cmp_ = get(server, "/compare", run=["web1run0", "web1run4"], format="json").json()
    assert cmp_["runs"][1]["id"] == "web1run4"
    cmp_rows = list(csv.DictReader(io.StringIO(
        get(server, "/compare", run=["web1run0", "web1run4"], format="csv").text)))
    assert {r["change"] for r in cmp_rows} == {"worse"}
    hist = list(csv.DictReader(io.StringIO(get(server, "/history", host="web1",
                                                  format="csv").text)))
    assert [h["kernel"] for h in hist][2] == "6.5.0-1-amd64"
    fleet = get(server, f"/fleet/{FLEET}", format="json").json()
    assert [h["host"] for h in fleet["hosts"] if h["outlier_in"]] == ["node3"]
    assert "| node3 |" in get(server, f"/fleet/{FLEET}", format="md").text
    report = get(server, "/report", run=["web1run0", "web1run4", "expcap"])
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    assert "self-contained: works offline" in report.text and "plotly.js v" in report.text
    exps = get(server, "/experiments", format="json").json()
    assert {e["experiment"]: e["documents"] for e in exps["experiments"]} == {
        "cap": 1, "consolidate": 1, "migrate": 1, "postmark": 1, "seqread": 1, "tune": 1}
    assert {d["id"] for d in exps["documents"]} == EXPERIMENTS
    exp_csv = list(csv.DictReader(io.StringIO(
        get(server, "/experiments", experiment="cap", format="csv").text)))
    assert [r["id"] for r in exp_csv] == ["expcap"]
    assert get(server, "/experiments", format="md").text.startswith("| id | experiment |")
    cap_rows = list(csv.DictReader(io.StringIO(get(server, "/runs/expcap", format="csv").text)))
    assert cap_rows and "quota" in cap_rows[0]
    assert "### CPU cap" in get(server, "/runs/expcap", format="md").text
    fleets = get(server, "/fleet", format="json").json()
    assert fleets == [{"fleet": FLEET, "hosts": 4, "runs": 4, "first": fleets[0]["first"],
                       "last": fleets[0]["last"], "state": ""}]
    assert f"| {FLEET} | 4 | 4 |" in get(server, "/fleet", format="md").text
    assert get(server, "/fleet", format="csv").text.startswith("fleet,hosts,runs,")
    plotly = get(server, "/static/plotly.js")
    assert plotly.status_code == 200 and plotly.headers["etag"]
    again = httpx.get(server + "/static/plotly.js", timeout=TIMEOUT,
                      headers={"if-none-match": plotly.headers["etag"]})
    assert again.status_code == 304


def test_no_third_party_assets(server: str) -> None:
    for path in ("/runs", "/runs/web1run0", "/compare?run=web1run0&run=web1run4",
                 "/history?host=web1", f"/fleet/{FLEET}", "/experiments", "/fleet"):
        html = get(server, path).text
        external = re.findall(r'(?:src|href)="(https?:)?//[^"]*"', html)
        assert external == [], (path, external)


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/runs/no-such-run", 404, "no run 'no-such-run' in the store"),
    ("/runs?page=999999", 404, "page 999999: there is only 1 page of 17 runs"),
    ("/runs?page=0", 400, "page=0: expected 1 to"),
    ("/runs?page=abc", 400, "page='abc': expected a whole number"),
    ("/runs?per=100000", 400, "per=100000: expected 1 to 500"),
    ("/runs?since=yesterday", 400, "since='yesterday': expected a date"),
    ("/runs?sort=bogus", 400, "sort='bogus': expected one of"),
    ("/runs?label=novalue", 400, "label='novalue': expected KEY=VALUE"),
    ("/runs?" + "&".join(f"label=k{i}=v" for i in range(300)), 400,
     "at most 10 label filters (got 300)"),
    ("/history?" + "&".join(f"label=k{i}=v" for i in range(11)), 400,
     "at most 10 label filters (got 11)"),
    ("/runs?format=xml", 400, "format='xml': expected one of"),
    ("/runs?q=" + "x" * 300, 400, "at most 200 characters"),
    ("/compare?run=web1run0", 400, "compare takes 2 to 10 runs"),
    ("/compare?" + "&".join(f"run=web1run{i % 6}" for i in range(11)), 400,
     "compare takes 2 to 10 runs"),
    ("/compare?run=web1run0&run=expcap", 400, "expcap is an experiment"),
    ("/compare?run=web1run0&run=nope", 404, "no run 'nope'"),
    ("/report", 400, "report takes 1 to 50 runs"),
    ("/history?host=nobody", 404, "no suite runs of host 'nobody'"),
    ("/history?host=web1&copies=x", 400, "copies='x'"),
    ("/fleet/nope", 404, "no fleet run 'nope'"),
    ("/fleet/nope/status", 404, "this controller has no state for fleet run 'nope'"),
    ("/runs?sort=--started", 400, "sort='--started': expected one of"),
    ("/runs/" + "a" * 65, 400, "a run id is at most 64 printable characters"),
    ("/experiments?page=999", 404, "page 999: there is only 1 page of 6 runs"),
    ("/history?label=env=prod&limit=1", 400, "limit=1: expected 2 to"),
    ("/nothing/here", 404, "no page '/nothing/here'"),
])
def test_errors_are_clear_4xx_pages(server: str, path: str, status: int, text: str) -> None:
    r = httpx.get(server + path, timeout=TIMEOUT)
    assert r.status_code == status, r.text[:500]
    assert text in r.text.replace("&#39;", "'"), r.text[:2000]
    assert "<h2>" in r.text and "Back to the runs list" in r.text


def test_json_errors_and_write_refused(server: str) -> None:
    r = get(server, "/runs/nope", format="json")
    assert r.status_code == 404 and r.json()["error"].startswith("no run 'nope'")
    pick = get(server, "/history", format="csv")  # was the pick page's HTML, as a 200
    assert pick.status_code == 400 and "a history needs host=HOST" in pick.text
    assert get(server, "/history", format="json").json()["status"] == 400
    post = httpx.post(server + "/runs/web1run0/labels", data={"key": "a", "value": "b"},
                      timeout=TIMEOUT)
    assert post.status_code == 403 and "read-only" in post.text
    assert httpx.post(server + "/runs", data={}, timeout=TIMEOUT).status_code == 405


def test_history_marks_cpu_profile_and_guest_type_changes(tmp_path: Path) -> None:
    """Every kind of environment change gets its marker: the CPU model, the profile, the
    hypervisor's guest type (xen pv -> hvm) and a new layer inside the guest (a container);
    and the list filters by profile and by kind (suite, imported)."""
    kvm = serve_data.detect_report("kvm", "qemu")
    in_docker = {"schema_version": 1, "summary": "", "advice": [], "layers": [
        *kvm["layers"],  # type: ignore[index]
        {"kind": "container", "name": "docker", "variant": None, "confidence": 0.9,
         "evidence": ["/.dockerenv exists"], "details": {}}]}
    steps: list[dict[str, object]] = [
        {}, {"cpu": "Intel Xeon Gold 6248"}, {"profile": "unixbench-5.1.3"},
        {"virt": serve_data.detect_report("xen", "pv")},
        {"virt": serve_data.detect_report("xen", "hvm")}, {"virt": in_docker}]
    docs = []
    env: dict[str, object] = {"virt": kvm}
    for i, change in enumerate(steps):
        env.update(change)
        docs.append(suite_run(f"h{i}", host="box", started=f"2026-02-0{i + 1}T00:00:00Z",
                              **env))  # type: ignore[arg-type]
    docs[1].source = "imported-unixbench"
    url = f"sqlite:///{tmp_path / 'vb.db'}"
    fill_store(url, tmp_path / "docs", docs)
    with running_server(create_app(ServeConfig(db_url=url))) as base:
        r = get(base, "/history", host="box")
        assert r.status_code == 200
        assert "6 suite runs, 1 copy; 5 environment changes" in r.text
        for text in ("<b>CPU</b>: AMD EPYC 7B13 → Intel Xeon Gold 6248",
                     "<b>profile</b>: unixbench-6 → unixbench-5.1.3",
                     "<b>hypervisor/guest</b>: kvm (qemu) → xen (pv)",
                     "<b>hypervisor/guest</b>: xen (pv) → xen (hvm)",
                     "<b>hypervisor/guest</b>: xen (hvm) → kvm (qemu) &gt; docker"):
            assert text in r.text, text
        spec = json.loads(re.findall(
            r'<script type="application/json" data-chart="chart-1">(.*?)</script>', r.text)[0])
        assert [s["x0"] for s in spec["layout"]["shapes"]] == [
            f"2026-02-0{i}T00:00:00Z" for i in range(2, 7)]
        changes = get(base, "/history", host="box", format="json").json()["changes"]
        assert [c["run_id"] for c in changes] == ["h1", "h2", "h3", "h4", "h5"]
        assert row_ids(get(base, "/runs", profile="unixbench-5.1.3").text) == [
            "h5", "h4", "h3", "h2"]
        assert row_ids(get(base, "/runs", profile="unixbench-6").text) == ["h1", "h0"]
        assert row_ids(get(base, "/runs", kind="imported").text) == ["h1"]
        assert len(row_ids(get(base, "/runs", kind="suite").text)) == 6
        assert row_ids(get(base, "/runs", kind="experiment").text) == []
    dispose_engines()


def test_unicode_names_download(tmp_path: Path) -> None:
    """A host or label beyond Latin-1 names the downloads (the header carried it raw: 500)."""
    url = f"sqlite:///{tmp_path / 'vb.db'}"
    host = "höst-łódź-💩"
    fill_store(url, tmp_path / "docs", [
        suite_run(f"uni{i}", host=host, started=f"2026-01-0{i + 1}", labels={"team": "Łódź"})
        for i in range(2)])
    with running_server(create_app(ServeConfig(db_url=url))) as base:
        for params in ({"host": host}, {"label": "team=Łódź"}):
            for fmt in ("csv", "md"):
                r = get(base, "/history", format=fmt, **params)
                assert r.status_code == 200, r.text[:300]
                disp = r.headers["content-disposition"]
                assert disp.startswith('attachment; filename="virtbench-history-') and (
                    disp.isascii())
                assert "filename*=UTF-8''virtbench-history-" in disp
                assert "2026-01-02" in r.text
        page = get(base, "/history", host=host)
        assert page.status_code == 200 and f"History of {host}" in page.text
    dispose_engines()


def test_pager_and_copies_links_keep_the_page_size(server: str) -> None:
    """The experiments pager keeps ``per`` and the history's copies switch keeps ``limit``
    (both links dropped them: page 2 came back at 50 per page, the other copies' history at
    the default length)."""
    first = get(server, "/experiments", per=2)
    assert first.status_code == 200 and len(re.findall(r'href="/runs/exp', first.text)) == 2
    nxt = re.search(r'<a href="([^"]*)">next', first.text)
    assert nxt is not None and "per=2" in nxt.group(1) and "page=2" in nxt.group(1)
    second = get(server, "/experiments" + nxt.group(1).replace("&amp;", "&"))
    assert len(re.findall(r'href="/runs/exp', second.text)) == 2
    hist = get(server, "/history", host="web1", limit=3)
    switch = re.search(r'Copies: .*?<a href="([^"]*)">', hist.text)
    assert switch is not None and "limit=3" in switch.group(1), hist.text[:2000]
    assert "limit" not in get(server, "/history", host="web1").text.split("Copies:")[1][:300]


def test_a_fleet_label_with_a_slash_opens(tmp_path: Path) -> None:
    """A fleet run labelled ``team/a`` (the label is the id): the link on the fleet list
    opens its page and its live status (a path converter; the plain one was a 404)."""
    url = f"sqlite:///{tmp_path / 'vb.db'}"
    fill_store(url, tmp_path / "docs", [
        suite_run(f"sl{i}", host=f"n{i}", started=f"2026-01-0{i + 1}",
                  labels={"fleet": "team/a", "host": f"n{i}"}) for i in range(2)])
    with running_server(create_app(ServeConfig(db_url=url))) as base:
        listing = get(base, "/fleet")
        assert listing.status_code == 200
        link = re.search(r'href="(/fleet/[^"]+)"', listing.text)
        assert link is not None and "team" in link.group(1)
        page = get(base, link.group(1))
        assert page.status_code == 200 and "n0" in page.text and "n1" in page.text
        assert get(base, link.group(1) + "/status").status_code == 404  # no local state
        other = get(base, "/fleet/team/b")
        assert other.status_code == 404 and "no fleet run" in other.text and "team/b" in other.text
    dispose_engines()


def test_an_unexpected_error_tells_the_client_nothing_more(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A bug is a 500 with one generic line; its message (paths, database URLs) goes to the
    server's log only."""
    url = f"sqlite:///{tmp_path / 'vb.db'}"
    fill_store(url, tmp_path / "docs", [suite_run("b1", host="h", started="2026-01-01")])
    app = create_app(ServeConfig(db_url=url))

    async def boom(request: object) -> None:
        raise RuntimeError(f"secret path {tmp_path}")

    from starlette.routing import Route

    app.router.routes.insert(0, Route("/boom", boom))
    with running_server(app) as base:
        r = get(base, "/boom")
    assert r.status_code == 500 and str(tmp_path) not in r.text
    assert r.text == "500 internal error: the server's log has the details\n"
    assert f"RuntimeError: secret path {tmp_path}" in capfd.readouterr().err
    dispose_engines()


def test_missing_document_file_is_410(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vb.db'}"
    fill_store(url, tmp_path / "docs", [suite_run("gone1", host="h", started="2026-01-01")])
    (tmp_path / "docs" / "gone1.json").unlink()
    with running_server(create_app(ServeConfig(db_url=url))) as base:
        r = get(base, "/runs/gone1")
        assert r.status_code == 410 and "its file" in r.text and "db rebuild" in r.text
        assert get(base, "/runs").status_code == 200
    dispose_engines()


def test_behind_a_proxy_at_a_sub_path(tmp_path: Path) -> None:
    """``--root-path /vb``: the proxy strips the prefix, every link carries it."""
    url = f"sqlite:///{tmp_path / 'vb.db'}"
    fill_store(url, tmp_path / "docs", [suite_run("proxy1", host="h", started="2026-01-01")])
    with running_server(create_app(ServeConfig(db_url=url)), root_path="/vb") as base:
        r = get(base, "/runs")
        assert r.status_code == 200
        links = re.findall(r'href="(/[^"]*)"', r.text)
        assert links and all(u.startswith("/vb/") for u in links), links
        assert '<a href="/vb/runs" class="on">Runs</a>' in r.text
        moved = httpx.get(base + "/runs/prox", follow_redirects=False, timeout=TIMEOUT)
        assert moved.status_code == 307 and moved.headers["location"] == "/vb/runs/proxy1"
    app = create_app(ServeConfig(db_url=url, token="t0ken"))
    with running_server(app, root_path="/vb") as base:
        once = httpx.get(base + "/runs?token=t0ken&host=h", follow_redirects=False,
                         timeout=TIMEOUT)
        assert once.status_code == 303 and once.headers["location"] == "/vb/runs?host=h"
    with running_server(app) as base:  # the token's redirect never leaves the site
        conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=TIMEOUT)
        conn.request("GET", "//evil.example/x?token=t0ken")
        bounce = conn.getresponse()
        assert bounce.status == 303 and bounce.getheader("location") == "/evil.example/x"
        conn.close()
    dispose_engines()


# ---- write actions and the token -----------------------------------------------------------
def test_token_and_write_actions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    from virtbench import paths

    url = f"sqlite:///{tmp_path / 'vb.db'}"
    docs_dir = paths.results_dir()
    fill_store(url, docs_dir, [suite_run("w1", host="h", started="2026-01-01"),
                               suite_run("w2", host="h", started="2026-01-02")])
    app = create_app(ServeConfig(db_url=url, allow_write=True, token="s3cret"))
    with running_server(app) as base:
        assert httpx.get(base + "/runs", timeout=TIMEOUT).status_code == 401
        ok = httpx.get(base + "/runs", headers={"Authorization": "Bearer s3cret"},
                       timeout=TIMEOUT)
        assert ok.status_code == 200
        with httpx.Client(base_url=base, follow_redirects=True, timeout=TIMEOUT) as c:
            first = c.get("/runs/w1?token=s3cret")
            assert first.status_code == 200 and str(first.url).endswith("/runs/w1")
            assert "Set label" in first.text
            bad = c.post("/runs/w1/labels", data={"key": "team", "value": "a",
                                                  "token": "wrong"})
            assert bad.status_code == 403
            # `--label a=b=c` is key a: a key with '=' could never be looked up again
            eq = c.post("/runs/w1/labels", data={"key": "a=b", "value": "c",
                                                 "token": "s3cret"})
            assert eq.status_code == 400 and "no &#39;=&#39;" in eq.text
            set_ = c.post("/runs/w1/labels", data={"key": "team", "value": "blue",
                                                   "token": "s3cret"})
            assert set_.status_code == 200 and "team=blue" in set_.text
            saved = json.loads((docs_dir / "w1.json").read_text())
            assert saved["labels"] == {"team": "blue"}
            assert open_store(url).get("w1").labels == {"team": "blue"}  # type: ignore[union-attr]
            gone = c.post("/runs/w2/delete", data={"token": "s3cret"})
            assert gone.status_code == 200 and 'data-run="w2"' not in gone.text
            assert not (docs_dir / "w2.json").exists() and open_store(url).get("w2") is None
    dispose_engines()


# ---- the command -------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "virtbench", "serve", *args],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


def test_cli_refuses_unsafe_or_bad_options(tmp_path: Path) -> None:
    r = _cli("--host", "0.0.0.0", "--port", "0")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "not a loopback address" in r.stderr
    from virtbench.cli.serve import is_loopback

    # every other spelling of "not only this machine" is refused too
    assert [h for h in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "::", "0",
                        "0.0.0.0", "10.0.0.1", "example.org", "127.1", "")
            if is_loopback(h)] == ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"]
    r = _cli("--host", "::", "--port", "0")
    assert r.returncode == 2 and "--host ::: not a loopback address" in r.stderr
    r = _cli("--allow-write", "--port", "0")
    assert r.returncode == 2 and "--allow-write needs --token" in r.stderr
    r = _cli("--db", f"sqlite:///{tmp_path}/missing/dir/vb.db", "--port", "0")
    assert r.returncode == 4 and r.stderr.count("\n") == 1 and "does not exist" in r.stderr
    r = _cli("--port", "70000")
    assert r.returncode == 2 and "expected 0 to 65535" in r.stderr


def test_cli_names_the_extra_when_it_is_missing() -> None:
    code = ("import sys; sys.modules['starlette'] = None; "
            "from virtbench.cli import main; sys.exit(main(['serve', '--port', '0']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=str(SRC)), check=False)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [
        "virtbench: error: virtbench serve needs the [serve] extra (starlette is missing): "
        "pip install 'virtbench[serve]'"]


@pytest.mark.parametrize("verbose", [False, True])
def test_cli_serves_and_stops_on_sigterm(tmp_path: Path, verbose: bool) -> None:
    url = f"sqlite:///{tmp_path / 'vb.db'}"
    fill_store(url, tmp_path / "docs", [suite_run("c1", host="h", started="2026-01-01")])
    dispose_engines()
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-m", "virtbench", "serve", "--db", url,
                             "--port", "0", *(["-v"] if verbose else [])],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if verbose:  # -v: the version line first
            assert line.startswith("virtbench: virtbench "), line
            line = proc.stderr.readline()
        m = re.search(r"serving (http://(127\.0\.0\.1:\d+))/ \(read-only", line)
        assert m, line
        # The line means "connect now", at once and without a retry (it was printed before
        # the socket listened: a client that took it at its word was refused while uvicorn
        # started; httpx's slower set-up mostly hid it)
        conn = http.client.HTTPConnection(m.group(2), timeout=TIMEOUT)
        conn.request("GET", "/healthz")
        assert json.loads(conn.getresponse().read())["runs"] == 1
        conn.close()
        assert "c1" in httpx.get(m.group(1) + "/runs", timeout=TIMEOUT).text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) in (0, 130)
        rest = proc.stderr.read()
        # -v: one access-log line per request; without it, nothing per request
        assert ('"GET /runs HTTP/1.1" 200' in rest) == verbose, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
