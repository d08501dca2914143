from __future__ import annotations

import argparse
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from unixbench_runs import hvm_run, pv_run, reference_run
from virtbench.cli import report as cli_report
from virtbench.errors import UsageError
from virtbench.report import data as rdata
from virtbench.report import experiments as rexp
from virtbench.report import html as rhtml
from virtbench.report import markdown as rmd
from virtbench.results.model import ExperimentResult, PassResult, RunResult

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def with_passes(run: RunResult) -> RunResult:
    """Give every test deterministic pass scores around its score (spread of a few %)."""
    for section in run.sections:
        for n, t in enumerate(section.tests):
            assert t.score is not None
            count = 10 if t.test in ("dhry2reg", "whetstone-double", "syscall") else 3
            t.passes = [PassResult(score=t.score * (1 + 0.01 * (((i * 7 + n) % 9) - 4)),
                                   elapsed=10.0) for i in range(count)]
    return run


def consolidate_doc() -> ExperimentResult:
    rows = [{"condition": c, "instances": i, "loaded": ld, "seconds": s, "slowdown": s / 72.0,
             "fairness": f, "per_instance": [1, 2], "samples": [{"x": 1}]}
            for c, i, ld, s, f in (("host", 0, "-", 72.0, None), ("1 guest", 1, "one", 84.0, 1.0),
                                   ("2 guests, 1 loaded", 2, "one", 80.0, 1.0),
                                   ("2 guests loaded", 2, "all", 152.0, 0.99),
                                   ("3 guests loaded", 3, "all", 229.0, 0.97))]
    return ExperimentResult(experiment="consolidate", status="complete",
                            params={"kind": "process", "instances": [1, 2, 3]}, rows=rows,
                            summary={"solo_seconds": 72.0,
                                     "slowdown": {r["condition"]: r["slowdown"] for r in rows}})


def mystery_doc() -> ExperimentResult:
    return ExperimentResult(
        experiment="mystery", status="complete",
        rows=[{"setting": "a", "ok": True, "ms": 12.5, "nested": {"k": 1}},
              {"setting": "b", "ok": False, "ms": 20.0}])


def test_registry_and_generic_fallback() -> None:
    view = rexp.view_for("consolidate")
    rows = consolidate_doc().rows
    assert rexp.table_columns(view, rows) == ["condition", "instances", "loaded", "seconds",
                                              "slowdown", "fairness"]
    assert [c.title for c in rexp.charts_for(view, rows)] == ["Seconds per condition",
                                                              "Slowdown against solo"]
    generic = rexp.view_for("mystery")
    mrows = mystery_doc().rows
    # Every scalar field (nested ones left out); the chart: first numeric vs first text field.
    assert rexp.table_columns(generic, mrows) == ["setting", "ok", "ms"]
    (chart,) = rexp.charts_for(generic, mrows)
    assert (chart.x, chart.y) == ("setting", ("ms",))
    fig = rdata.experiment_figure(chart, mrows)
    assert fig is not None and fig["data"][0]["x"] == ["a", "b"]
    assert fig["data"][0]["y"] == [12.5, 20.0]
    assert rexp.charts_for(generic, [{"only": "text"}]) == []
    # A registered view whose fields are absent falls back to the generic chart.
    assert rexp.charts_for(view, mrows)[0].y == ("ms",)


def test_grouped_and_stacked_experiment_charts() -> None:
    rows = [{"round": r, "variant": v, "value": 10.0 + r + (v == "B")}
            for r in (1, 2) for v in ("A", "B")]
    (chart,) = rexp.view_for("tune").charts
    fig = rdata.experiment_figure(chart, rows)
    assert fig is not None
    assert [t["name"] for t in fig["data"]] == ["A", "B"]
    assert fig["data"][1]["y"] == [12.0, 13.0]
    stacked = rexp.view_for("cap").charts[0]
    fig = rdata.experiment_figure(stacked, [{"condition": "1.0", "cpu_user_s": 1.0,
                                             "cpu_system_s": 0.5}])
    assert fig is not None and fig["layout"]["barmode"] == "stack" and len(fig["data"]) == 2


def test_report_data_hand_checked() -> None:
    pv, hvm = pv_run(), hvm_run()
    report = rdata.build([pv, hvm])
    # named by a `name` label, else other labels, else host and date
    assert [rv.label for rv in report.runs] == [f"centos6.takara.org {pv.started[:10]}",
                                                f"hvm {hvm.started[:10]}"]
    (ratio,) = report.figures["ratio"]
    bars = dict(zip(ratio["data"][0]["x"], ratio["data"][0]["y"], strict=True))
    # Bars start at 1.0 (base) and reach the ratio: HVM / PV per test.
    assert ratio["data"][0]["base"] == 1
    assert bars["Syscall"] + 1 == pytest.approx(1336.9 / 208.2, rel=1e-5)
    assert bars["Dhrystone"] + 1 == pytest.approx(2017.5 / 2023.7, rel=1e-5)
    assert "File copy 1K" not in bars  # the HVM figures have no file tests
    (index,) = report.figures["index"]
    assert [t["name"] for t in index["data"]] == [rv.label for rv in report.runs]
    assert report.figures["passes"] == [] and report.notes  # imported runs have no passes
    cells = {row["name"]: row["cells"] for row in report.numbers[1]["rows"]}
    assert cells["System Call Overhead"][1]["ratio"] == pytest.approx(1336.9 / 208.2)
    assert cells["File Copy 256 bufsize 500 maxblocks"][1]["score"] == "—"
    pv_rules = {f.rule for f in report.runs[0].explanation.findings}
    assert "pv-kernel-entry" in pv_rules
    assert {f.rule for f in report.runs[1].explanation.findings} == {"vs-kernel-entry-better"}


def test_scaling_and_pass_figures() -> None:
    report = rdata.build([with_passes(reference_run())])
    (scaling,) = report.figures["scaling"]
    bars = dict(zip(scaling["data"][0]["x"], scaling["data"][0]["y"], strict=True))
    assert bars["Dhrystone"] == pytest.approx(84057294.7 / (2 * 48547976.6) * 100, abs=0.05)
    assert len(report.figures["passes"]) == 2
    box = report.figures["passes"][0]["data"][0]
    assert box["type"] == "box" and box["x"].count("Dhrystone") == 10
    assert max(abs(y) for y in box["y"]) < 6


def test_html_is_self_contained_with_plotly_inlined_once() -> None:
    page = rhtml.render(rdata.build([pv_run(), hvm_run(), consolidate_doc(), mystery_doc()]))
    assert page.count("* plotly.js v") == 1
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=\"?https?:", page)
    assert "@import" not in page
    specs = re.findall(r'<script type="application/json" data-chart="(chart-\d+)">', page)
    # profile, index, ratio (1 copy) + consolidate 2 + mystery 1.
    assert specs == [f"chart-{i}" for i in range(1, 7)]
    for spec in re.findall(r'data-chart="chart-\d+">(.*?)</script>', page):
        assert json.loads(spec)["data"]
    assert "several times slower than this CPU predicts" in page
    assert "2 guests loaded" in page and "Consolidation" in page and "mystery" in page


def test_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = rmd.render(rdata.build([pv_run(), hvm_run(), consolidate_doc()]))
    # Thousands separators from five digits on, consistently (not '312300.0' beside
    # '2,005,350').
    assert re.search(r"\| System Call Overhead \| 312,300\.0 lps \| 208\.2 \| 2,005,350 lps \| "
                     r"1336\.9 \| 6\.42x \|", text), text
    assert "**Important: Kernel entry and fork/exec are several times slower" in text
    assert "| 3 guests loaded | 3 | all | 229.0 | 3.18 | 0.97 |" in text
    assert "| Virtualization | not detected | not detected | not detected |" in text
    out = tmp_path / "r.md"
    rc = _cli([*_save(tmp_path, pv_run(), hvm_run()), "--format", "markdown", "-o", str(out)],
              capsys)
    assert rc == 0 and out.read_text().startswith("# virtbench report")
    rc = _cli([*_save(tmp_path, pv_run()), "--format", "markdown"], capsys)
    assert rc == 0 and "| Execl Throughput |" in capsys.readouterr().out


def _save(tmp_path: Path, *docs: RunResult | ExperimentResult) -> list[str]:
    paths = []
    for n, d in enumerate(docs):
        paths.append(str(d.save(tmp_path / f"doc{n}-{d.id}.json")))
    return paths


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    parser = argparse.ArgumentParser()
    cli_report.register(parser)
    return cli_report.run(parser.parse_args(argv))


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match="missing"):
        _cli([str(tmp_path / "missing.json")], capsys)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot write"):
        _cli([*_save(tmp_path, pv_run()), "-o", str(blocker / "r.html")], capsys)


def _png_colors(path: Path) -> int:
    """Distinct colours of an 8-bit RGB/RGBA PNG (enough of a decoder for Chromium's output)."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos:pos + 4])
        kind, body = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, _height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    data = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colors: set[bytes] = set()
    for y in range(len(data) // (stride + 1)):
        ftype = data[y * (stride + 1)]
        line = bytearray(data[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 8 == 0:
            colors.update(bytes(line[x:x + 3]) for x in range(0, stride, bpp * 4))
        prev = line
    return len(colors)


def _chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium is not installed (scripts/setup-dev.sh installs it)"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    docs = _save(tmp_path, pv_run(), hvm_run(), with_passes(reference_run()), consolidate_doc(),
                 mystery_doc())
    assert _cli([*docs, "-o", str(out)], capsys) == 0
    page = out.read_text(encoding="utf-8")
    expected = len(re.findall(r'data-chart="chart-\d+">', page))
    # profile x2, index x2, ratio x1 (the baseline has no 2-copy section), scaling,
    # passes x2, consolidate x2, mystery x1
    assert expected == 11
    # (how long Chromium takes to draw them is a figure of bench/report_speed.py, not a test)
    dom = _chromium(tmp_path, out.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(0)))
    assert attrs["render-errors"] == "0"
    assert attrs["charts-expected"] == str(expected)
    assert attrs["charts-rendered"] == str(expected)
    assert dom.stdout.count('class="main-svg"') >= expected
    assert dom.stdout.count('class="point"') > 50  # bars and box points were drawn
    console = [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], console
    shot = tmp_path / "report.png"
    res = _chromium(tmp_path, out.as_uri(), "--window-size=1280,2400", f"--screenshot={shot}")
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert shot.stat().st_size > 60_000
    assert _png_colors(shot) > 40  # charts, colour swatches, text: not a blank page


def test_numbers_table_only_has_runs_with_that_section() -> None:
    ref = reference_run()
    report = rdata.build([pv_run(), ref])
    one, two = report.numbers[1], report.numbers[2]
    assert [c["ratio"] for c in one["columns"]] == [False, True]
    assert [c["label"] for c in two["columns"]] == [f"ref {ref.started[:10]}"]
    assert two["columns"][0]["ratio"] is False  # the baseline has no 2-copy section
    cells = {row["name"]: row["cells"] for row in one["rows"]}
    assert cells["Process Creation"][1]["ratio"] == pytest.approx(
        6969.8 / 126.0 * 10 / 208.8, rel=1e-6)
    text = rmd.render(report)
    assert f"| test | ref {ref.started[:10]} score | index |\n" in text


EXPERIMENTS = Path(__file__).resolve().parent / "data" / "experiments"


@pytest.mark.parametrize("name", ["consolidate", "cap", "postmark", "seqread"])
def test_real_experiment_documents_use_their_registered_charts(name: str) -> None:
    """Documents written by the experiments on this machine (tests/data/experiments/)."""
    from virtbench.results.model import load_any

    doc = load_any(EXPERIMENTS / f"{name}.json")
    assert isinstance(doc, ExperimentResult) and doc.experiment == name
    (section,) = rdata.build([doc]).experiments
    view = rexp.view_for(name)
    assert [f["layout"]["title"]["text"] for f in section.figures] == [c.title for c in view.charts]
    assert section.columns == [rexp.column_title(c) for c in view.columns
                               if any(c in r for r in doc.rows)]
    assert all(c[:1].isupper() and "_" not in c for c in section.columns)  # human names
    assert len(section.rows) == len(doc.rows)
    assert section.summary  # parameters at least


def test_user_text_is_escaped() -> None:
    run = pv_run()
    run.environment.hostname = "</script><script>alert(1)</script>"
    run.labels = {"note": "<b>x</b>"}
    page = rhtml.render(rdata.build([run]))
    assert "<script>alert(1)" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    # Inside chart specs the label (its labels: note=<b>x</b>) is JSON with <, > escaped.
    assert "note=\\u003cb\\u003ex\\u003c/b\\u003e" in page


def test_summary_headline_against_the_baseline() -> None:
    hvm = hvm_run()
    report = rdata.build([pv_run(), hvm])
    assert report.summary_rows[0]["headline"] is None
    headline = report.summary_rows[1]["headline"]
    ke = (1336.9 / 208.2 * 1055.5 / 293.4 * 682.3 / 160.2 * 912.8 / 208.8 * 801.9 / 310.6) ** 0.2
    assert headline.startswith("Against the baseline (1 copy): overall ")
    assert f"kernel entry {ke:.2f}x" in headline and "CPU 1.00x" in headline
    assert "file" not in headline  # the HVM figures have no file tests
    assert f"- hvm {hvm.started[:10]}: {headline}" in rmd.render(report)


def test_backticks_become_code_after_escaping() -> None:
    assert str(rhtml._codeticks("run `virtbench detect` <now>")) == (
        "run <code>virtbench detect</code> &lt;now&gt;")


def test_non_finite_experiment_values_are_not_drawn() -> None:
    doc = ExperimentResult(experiment="mystery", rows=[
        {"setting": "a", "ms": float("inf")}, {"setting": "b", "ms": 3.0},
        {"setting": "c", "ms": float("nan")}])
    page = rhtml.render(rdata.build([doc]))
    spec = json.loads(re.findall(r'data-chart="chart-1">(.*?)</script>', page)[0])
    assert spec["data"][0]["x"] == ["b"] and spec["data"][0]["y"] == [3.0]


def test_profile_chart_shows_explains_ratios() -> None:
    report = rdata.build([pv_run(), hvm_run()])
    (profile,) = report.figures["profile"]
    pv, hvm = profile["data"]
    assert pv["x"] == ["Kernel entry", "Syscall + pipe", "File copy", "Shell scripts"]
    assert pv["y"][0] == pytest.approx(0.2386, abs=1e-4)
    assert hvm["x"] == ["Kernel entry", "Syscall + pipe"]  # no file or shell tests
    assert [s["y0"] for s in profile["layout"]["shapes"]] == [1, 0.5, 0.4]


# ---- polish (issue 16): human names, accelerator, partial index, tables that fit ------------
def vm_consolidate_doc() -> ExperimentResult:
    doc = consolidate_doc()
    doc.params = {"kind": "vm", "instances": [1, 2, 3],
                  "backend": {"kind": "vm", "vcpus": 1, "memory_mb": 128, "pin": None,
                              "kernel": "/boot/vmlinuz-6.1.0-28-amd64", "accel": "tcg",
                              "accel_reason": "no /dev/kvm"}}
    for r in doc.rows:
        r.update(seconds_min=r["seconds"] * 0.98, seconds_max=r["seconds"] * 1.02,
                 steal_share=0.01, throttled_s=0.0, repeats=3)
    return doc


def migrate_doc() -> ExperimentResult:
    rows = []
    for n, (bw, rate) in enumerate([("100MiB", 2.0), ("32MiB", 2.0), ("16MiB", 64.0)]):
        rows.append({"point": f"{bw}/s @ {rate:g} MB/s", "bandwidth": bw,
                     "dirty_rate_mb_s": rate, "storage": "shared", "converged": n < 2,
                     "total_time_s": 1.5 + n, "downtime_ms": 30.0 + n,
                     "guest_downtime_ms": 41.5 + n, "iterations": 3 + n,
                     "transferred_mb": 130.2 + n, "remaining_mb": 0.0 if n < 2 else 60.0,
                     "dirty_mb_s_qemu": 2.1, "throughput_before": 1000.0 + n,
                     "throughput_during": 700.0, "throughput_after": 990.0,
                     "counter_continues": True, "same_boot": True,
                     "reason": "" if n < 2 else "not converged: dirty rate >= bandwidth"})
    return ExperimentResult(experiment="migrate", status="complete",
                            params={"memory_mb": 128}, rows=rows,
                            summary={"accel": "tcg", "accel_reason": "no /dev/kvm"})


def partial_run() -> RunResult:
    run = reference_run()
    run.status = "partial"
    run.labels = {"env": "vm-a"}
    sec = run.sections[0]
    sec.tests = sec.tests[:9]
    sec.index_score = None
    return run


def test_polish_names_accelerator_partial() -> None:
    part = partial_run()
    report = rdata.build([part, vm_consolidate_doc(), migrate_doc()])
    assert report.runs[0].label == "env=vm-a"  # its labels name it
    (scores,) = [row["scores"] for row in report.summary_rows]
    assert scores[0][1].endswith("(partial: 9 of 12 tests)")
    assert float(scores[0][1].split()[0]) > 0
    first = report.numbers[1]["index_scores"][0]
    assert f"{first['score']} ({first['partial']})" == scores[0][1]
    cons, mig = report.experiments
    for section in (cons, mig):
        assert "TCG" in section.title
        assert section.figures and all(f["layout"]["title"]["text"].endswith("(TCG)")
                                       for f in section.figures)
        assert all("_" not in c for c in section.columns)
        for fig in section.figures:
            assert all("_" not in (t.get("name") or "") for t in fig["data"])
    assert cons.accel.startswith("VMs under TCG") and mig.accel == cons.accel  # table caption
    assert "Downtime, guest (ms)" in mig.columns and len(mig.columns) <= 11
    assert "Slowest (s)" in cons.columns and "Steal (share of CPU)" in cons.columns
    params = dict(cons.summary)
    assert "accel: tcg" in params["parameter backend"]  # not hidden in a cut JSON dump
    assert "…" not in params["parameter backend"]
    assert rexp.column_title("foo_bar_ms") == "Foo bar (ms)"
    # cap --kind container,vm: one backend per kind; the VM rows' accelerator is still said
    mixed = ExperimentResult(experiment="cap", status="complete", rows=[{"condition": "x"}],
                             params={"backend": {"container": {"kind": "container"},
                                                 "vm": {"kind": "vm", "accel": "kvm"}}})
    (section,) = rdata.build([mixed]).experiments
    assert "KVM" in section.title and section.accel == "VMs under KVM"
    assert rexp.accelerator(ExperimentResult(
        experiment="cap", params={"backend": {"container": {"kind": "container"}}})) is None


@pytest.mark.slow
@pytest.mark.parametrize("width", [1024, 1400])
def test_tables_fit_their_card_in_headless_chromium(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], width: int) -> None:
    out = tmp_path / "report.html"
    long_env = pv_run()
    long_env.environment.cflags = ["-O3", "-ffast-math", "-march=native", "-mtune=native",
                                   "-fno-strict-aliasing", "-DVERY_LONG_DEFINE_" + "X" * 60]
    docs = _save(tmp_path, long_env, hvm_run(), partial_run(), vm_consolidate_doc(),
                 migrate_doc(), mystery_doc())
    assert _cli([*docs, "-o", str(out)], capsys) == 0
    dom = _chromium(tmp_path, out.as_uri(), f"--window-size={width},3000", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(0)))
    assert attrs["render-errors"] == "0"
    assert attrs["charts-rendered"] == attrs["charts-expected"]
    assert attrs.get("overflowing-tables") == "0", attrs.get("overflowing-which")
    assert "(partial: 9 of 12 tests)" in dom.stdout and ">partial: 9 of 12 tests<" in dom.stdout
    assert dom.stdout.count("(TCG)") >= 4  # chart titles of both VM experiments
    assert dom.stdout.count("<caption>VMs under TCG") == 2  # and their tables
