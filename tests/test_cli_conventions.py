"""What users of benchmark CLIs expect (issue 16): common options, help, completion, tables
that fit the terminal, the regression gate."""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import virtbench.cli as cli
from clihelp import vb
from conftest import SRC
from virtbench.results import model
from virtbench.store import dispose_engines
from virtbench.table import Col, render

DATA = Path(__file__).resolve().parent / "data"
REPORTS = sorted(DATA.glob("unixbench-*.txt"))


@pytest.fixture(autouse=True)
def _fresh_engines() -> None:
    dispose_engines()


# ---- the table renderer -----------------------------------------------------------------------
def test_render_never_cuts_numbers_and_wraps_names() -> None:
    cols = [Col("ID"), Col("NAME", wrap=True, min_width=6), Col("SCORE", right=True)]
    rows = [["f4b553a418e9", "Dhrystone 2 using register variables", "23617050.2"],
            ["1e0cf62e0db6", "Pipe", "1.5"]]
    piped = render(cols, rows)  # no width: one line per row
    assert len(piped.splitlines()) == 2 + len(rows)
    for width in (30, 40, 80):
        text = render(cols, rows, width=width)
        for ident, _, score in rows:
            assert ident in text and score in text
        if width >= 12 + 6 + 10 + 4:
            assert max(map(len, text.splitlines())) <= width
        if width >= 40:
            words = re.findall(r"[A-Za-z]+", text)
            for word in ("Dhrystone", "register", "variables"):
                assert word in words  # wrapped at spaces, not in a word
    # Unbreakable columns wider than the terminal run over; they are never cut.
    text = render(cols, rows, width=10)
    assert "f4b553a418e9" in text and "23617050.2" in text


def test_render_detail_column_and_no_break_space() -> None:
    cols = [Col("ID"), Col("RATIO", wrap=True, breakable=False, min_width=5),
            Col("LABELS", wrap=True, detail=True)]
    rows = [["abc", "0.950 [0.930,\u00a00.970]", "env=one os=x"]]
    text = render(cols, rows, width=20)
    assert "[0.930, 0.970]" in text  # kept together, printed with a plain space
    assert "0.950 [0.930" not in text  # wrapped between the ratio and its interval
    text = render(cols, rows, width=30)  # the labels go under the row, the ratio fits
    assert "0.950 [0.930, 0.970]" in text
    assert "    labels: env=one os=x" in text
    assert "labels:" not in render(cols, rows, width=200)


def _import_reports() -> list[str]:
    rc, out, err = vb("import", "--json", "--label", "owner=someone-with-a-long-name",
                      *map(str, REPORTS))
    assert rc == 0, err
    return [d["id"] for d in json.loads(out)]


@pytest.mark.parametrize("columns", [80, 200])
def test_runs_fits_the_terminal(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _import_reports()
    monkeypatch.setenv("COLUMNS", str(columns))
    rc, out, _ = vb("runs")
    assert rc == 0
    lines = out.splitlines()
    assert max(map(len, lines)) <= columns
    rc, js, _ = vb("runs", "--json")
    for run in json.loads(js):
        assert run["id"] in ids
        assert re.search(rf"(^|\s){run['id']}\s", out), run["id"]
        for copies, score in run["scores"].items():
            assert f"{copies}:{score:.1f}" in out.split()  # whole, never "1:44…"
    if columns == 200:
        assert len(lines) == 2 + len(ids)  # one line per run


@pytest.mark.parametrize("columns", [80, 200])
def test_compare_fits_the_terminal(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    pv, hvm = DATA / "unixbench-centos6-xen-pv.txt", DATA / "unixbench-xen-hvm-synthesized.txt"
    rc, out, _ = vb("compare", str(pv), str(hvm))
    assert rc == 0
    table = out.split("\n\n", 1)[1].rsplit("\n\n", 1)[0]  # the rule line may be long prose
    assert max(map(len, table.splitlines())) <= columns
    rc, js, _ = vb("compare", str(pv), str(hvm), "--json")
    for row in json.loads(js)["sections"][0]["tests"]:
        for score in row["scores"]:
            if score is not None:
                assert f"{score:.1f}" in out.split()
        name_lines = [ln for ln in table.splitlines() if ln.startswith(row["name"][:12])]
        assert name_lines, row["name"]
    if columns == 200:
        assert "Dhrystone 2 using register variables" in table


@pytest.mark.parametrize("columns", [80, 200])
def test_show_experiment_fits_the_terminal(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``show`` prints an experiment as its command did (human headers, fitted); a document
    its experiment cannot render gets a generic table that fits too."""
    from virtbench.experiments import registry
    from virtbench.store import save_and_record

    monkeypatch.setenv("COLUMNS", str(columns))
    for name in ("consolidate", "cap", "postmark", "seqread", "migrate"):
        folder = "experiments-v3" if name == "migrate" else "experiments"
        doc = model.load_any(DATA / folder / f"{name}.json")
        assert isinstance(doc, model.ExperimentResult)
        save_and_record(doc)
        rc, out, _ = vb("show", doc.id)
        assert rc == 0
        assert out.endswith(registry.get(name).render(doc))  # what the command printed
        prose = {registry.get(name).render(doc).splitlines()[0]}  # a title, a conclusion
        prose |= {ln for ln in out.splitlines() if ln.startswith("2 of 2 completed moves")}
        table = [ln for ln in out.splitlines() if ln not in prose]
        assert max(map(len, table)) <= columns, name
        assert "seconds_min" not in out and '{"' not in out  # no raw names, no JSON dump
    odd = model.ExperimentResult(
        experiment="mystery", status="complete", params={"mode": "fast", "nested": {"a": 1}},
        rows=[{"setting": f"a rather long setting name {i}", "value_ms": 123456.75 + i,
               "samples": [1, 2]} for i in range(3)])
    save_and_record(odd)
    rc, out, _ = vb("show", odd.id)
    assert rc == 0 and max(map(len, out.splitlines())) <= columns
    for i in range(3):
        assert f"{123456.75 + i:.2f}" in out.split()
    assert "Value (ms)" in out and "value_ms" not in out  # the report's human names
    assert "mode: fast" in out and "(nested row fields: --json)" in out


def test_piped_output_is_one_line_per_row() -> None:
    _import_reports()
    rc, out, _ = vb("runs")
    assert rc == 0
    assert len(out.splitlines()) == 2 + len(REPORTS)


# ---- common options, errors, help -------------------------------------------------------------
def _all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command's parser and every sub-command's (``fleet status``, ``io postmark``)."""
    found: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(words: str, parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for word, child in action.choices.items():
                    found.append((f"{words} {word}".strip(), child))
                    walk(f"{words} {word}", child)

    walk("", cli.build_parser())
    return found


def test_every_command_takes_q_v_debug() -> None:
    parsers = _all_parsers()
    names = [n for n, _ in parsers]
    assert {"fleet status", "fleet run", "io postmark", "io seqread", "serve", "migrate",
            "tune", "consolidate", "cap"} <= set(names)
    for name, p in parsers:
        opts = {o for a in p._actions for o in a.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose", "--debug"} <= opts, name
    parser = cli.build_parser()
    for argv in (["fleet", "status", "-q"], ["io", "postmark", "-v", "--debug"],
                 ["fleet", "-v", "results", "x", "--debug"], ["-q", "io", "seqread", "-v"]):
        args = parser.parse_args(argv)
        assert args.quiet == ("-q" in argv) and args.verbose == ("-v" in argv), argv
        assert args.debug == ("--debug" in argv), argv
    rc, _, err = vb("fleet", "status", "-q")
    assert rc == 0 and err == ""
    args = parser.parse_args(["-v", "runs", "--debug"])
    assert args.verbose == 1 and args.debug and not args.quiet
    args = parser.parse_args(["runs", "-vv"])
    assert args.verbose == 2
    args = parser.parse_args(["runs", "-q"])
    assert args.quiet and args.verbose == 0


def test_an_error_before_the_command_runs_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug while the parser is built or the options are read is reported like any other."""
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("no such thing")

    monkeypatch.setattr(cli, "build_parser", broken)
    rc, _, err = vb("runs")
    assert rc == 70 and err.splitlines() == [
        "virtbench: internal error: KeyError: 'no such thing'",
        "virtbench: rerun with --debug for the traceback"]
    rc, _, err = vb("runs", "--debug")
    assert rc == 70 and "Traceback (most recent call last)" in err and "broken" in err


def test_unexpected_error_is_one_line_unless_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    import virtbench.cli.runs as runs_cmd

    def boom(args: object) -> int:
        raise RuntimeError("something broke")

    monkeypatch.setattr(runs_cmd, "run", boom)
    rc, _, err = vb("runs")
    assert rc == cli.INTERNAL_ERROR == 70
    assert err.splitlines() == ["virtbench: internal error: RuntimeError: something broke",
                                "virtbench: rerun with --debug for the traceback"]
    rc, _, err = vb("runs", "--debug")
    assert rc == 70 and "Traceback (most recent call last)" in err and "boom" in err


def test_quiet_silences_info_lines(tmp_path: Path) -> None:
    rc, _, err = vb("import", str(REPORTS[0]), str(REPORTS[0]))
    assert rc == 0 and "imported once" in err
    rc, _, err = vb("-q", "import", str(REPORTS[1]), str(REPORTS[1]))
    assert rc == 0 and err == ""
    for argv in (["report", "latest", "-o", str(tmp_path / "r.html")],
                 ["report", "latest", "--format", "markdown", "-o", str(tmp_path / "r.md")],
                 ["export", "latest", "-o", str(tmp_path / "r.json")]):
        rc, _, err = vb(*argv)
        assert rc == 0 and err.startswith("virtbench: wrote "), (argv, err)
        rc, _, err = vb(*argv, "-q")
        assert rc == 0 and err == "", (argv, err)


def test_quiet_fleet_says_only_what_went_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    from virtbench.cli.fleet import _print_outcome
    from virtbench.fleet.state import FleetState, HostState

    state = FleetState(id="f-quiet", command=["detect"], inventory="h1,h2,",
                       hosts={n: HostState(name=n, status="fetched") for n in ("h1", "h2")})
    state.status = "done"
    state.save()
    rc, _, err = vb("fleet", "resume", "f-quiet")
    assert rc == 0 and "nothing to resume" in err
    rc, _, err = vb("fleet", "resume", "f-quiet", "-q")
    assert rc == 0 and err == ""
    from virtbench import console

    capsys.readouterr()
    try:
        console.configure(quiet=True)
        _print_outcome(state, interrupted=False)
        assert capsys.readouterr().err == ""
        state.hosts["h2"].status, state.hosts["h2"].reason = "failed", "unreachable"
        _print_outcome(state, interrupted=False)
        err = capsys.readouterr().err
        assert "1 failed:" in err and "h2: unreachable" in err
    finally:
        console.configure()


def test_verbose_adds_detail_lines() -> None:
    _import_reports()
    rc, out, err = vb("runs")
    assert rc == 0 and err == ""
    rc, out_v, err = vb("runs", "-v")
    assert rc == 0 and out_v == out
    assert err.startswith("virtbench: virtbench ") and f"{len(REPORTS)} runs from the index" in err


def test_bare_virtbench_prints_an_overview() -> None:
    rc, out, err = vb()
    assert rc == 0 and "virtbench run" in out and "--help" in out and err == ""


def test_help_has_examples_and_every_environment_variable() -> None:
    rc, out, _ = vb("--help")
    assert rc == 0 and "examples:" in out and "environment:" in out
    used = set()
    for path in (SRC / "virtbench").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"VIRTBENCH_[A-Z_]+", text))
        used |= set(re.findall(r"""(?:environ\.get|_xdg)\(["']([A-Z_]+)["']""", text))
    assert {"VIRTBENCH_DB", "XDG_CACHE_HOME", "COLUMNS"} <= used
    others = {"TERM", "PATH"} | {u for u in used if u.startswith("ANSIBLE_")}  # not ours
    for name in used - set(cli.INTERNAL_ENVIRONMENT) - others:
        assert re.search(rf"^\s+{name}\s", out, re.M), f"{name} is not in virtbench --help"
    parser = cli.build_parser()
    examples = list(cli.EXAMPLES)
    for name in cli.COMMAND_MODULES:
        examples += getattr(cli._load(name), "EXAMPLES", ())
    for line in examples:  # each parses (the part before a comment or a redirection)
        words = shlex.split(line.split("#")[0].split(">")[0])
        assert words[0] == "virtbench"
        parser.parse_args(words[1:])
    rc, out, _ = vb("run", "--help")
    assert "examples:" in out and "virtbench run --list" in out
    from virtbench.workloads.catalog import CATALOG

    assert all(re.search(rf"\b{re.escape(t)}\b", out) for t in CATALOG)  # the test ids
    known = {k for k, _ in cli.ENVIRONMENT}
    assert set(cli.COMMAND_ENVIRONMENT) == {n for n, _ in _all_parsers() if " " not in n}
    for name, p in _all_parsers():  # every command and sub-command
        text = p.format_help()
        assert "\nexamples:\n  virtbench " in text, name
        env = text.split("\nenvironment:\n", 1)[1].split("\n\n", 1)[0]
        listed = set(re.findall(r"^  ([A-Z_]+)  ", env, re.M))
        assert listed == set(cli.COMMAND_ENVIRONMENT[name.split()[0]]) and listed <= known, name
        assert "virtbench --help" in env, name
    for name, var in (("serve", "VIRTBENCH_TOKEN"), ("migrate", "VIRTBENCH_KERNEL"),
                      ("consolidate", "VIRTBENCH_ACCEL"), ("runs", "VIRTBENCH_DB"),
                      ("build", "CC"), ("fleet status", "VIRTBENCH_DB")):
        rc, out, _ = vb(*name.split(), "--help")
        assert rc == 0 and re.search(rf"^  {var}  ", out, re.M), (name, var)


def test_run_list_shows_tests_groups_units_baselines() -> None:
    from virtbench.workloads.catalog import CATALOG, GROUPS

    rc, out, _ = vb("run", "--list")
    assert rc == 0
    words = out.split()
    for spec in CATALOG.values():
        assert spec.id in words and spec.unit in words
        if spec.baseline:
            assert f"{spec.baseline:.1f}" in words
    for group, ids in GROUPS.items():
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [group])
        assert line.split()[1:] == list(ids)


@pytest.mark.parametrize("columns", [80, 200])
def test_run_list_fits_the_terminal(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from virtbench.workloads.catalog import CATALOG, GROUPS

    monkeypatch.setenv("COLUMNS", str(columns))
    rc, out, _ = vb("run", "--list")
    assert rc == 0 and max(map(len, out.splitlines())) <= columns
    words = out.split()
    for spec in CATALOG.values():  # ids, units and baselines whole
        assert spec.id in words and spec.unit in words
        assert not spec.baseline or f"{spec.baseline:.1f}" in words
    tests = out.split("\nGROUP ", 1)[1]
    for group, ids in GROUPS.items():  # wrapped between ids, never inside one
        assert all(i in tests.split() for i in ids), group
    rows = out.split("\n\n")[0].splitlines()[2:]
    assert (len(rows) == len(CATALOG)) == (columns == 200)  # one line per test when it fits


# ---- shell completion -------------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_generated(shell: str, tmp_path: Path) -> None:
    rc, out, _ = vb("completion", shell)
    assert rc == 0 and "compare" in out and "--fail-above" in out
    script = tmp_path / f"virtbench.{shell}"
    script.write_text(out)
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed (scripts/setup-dev.sh installs it)")
    subprocess.run([exe, "-n", str(script)], check=True, timeout=30)
    if shell == "bash":
        probe = (f"source {script}; COMP_WORDS=(virtbench comp); COMP_CWORD=1; "
                 "_shtab_virtbench; echo ${COMPREPLY[@]}; "
                 "COMP_WORDS=(virtbench compare --fail); COMP_CWORD=2; "
                 "_shtab_virtbench; echo ${COMPREPLY[@]}")
        got = subprocess.run([exe, "-c", probe], capture_output=True, text=True, timeout=30,
                             check=True).stdout.splitlines()
        assert got == ["compare completion", "--fail-above"]
    if shell == "fish":
        got = subprocess.run([exe, "-c", f"source {script}; complete -C 'virtbench comp'"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        assert [ln.split("\t")[0] for ln in got.splitlines()] == ["compare", "completion"]


# ---- the regression gate ----------------------------------------------------------------------
TESTS = ["dhry2reg", "whetstone-double", "execl", "pipe", "context1", "spawn"]


def _doc(factors: dict[str, float], noise: float, passes: bool = True) -> model.RunResult:
    run = model.RunResult(profile="unixbench-6", status="complete")
    section = model.Section(copies=1)
    for k, test in enumerate(TESTS):
        base = 1000.0 * (k + 1) * factors.get(test, 1.0)
        scores = [base * (1 + noise * ((i * 5 + k) % 7 - 3) / 3) for i in range(6)]
        kept = sorted(scores)[2:]
        score = math.exp(math.fsum(map(math.log, kept)) / len(kept))
        section.tests.append(model.TestResult(
            test=test, name=test, unit="lps", copies=1, score=score, baseline=100.0,
            index=score / 10, samples=len(kept) if passes else None,
            passes=[model.PassResult(score=s, elapsed=10.0) for s in scores] if passes else []))
    section.index_score = math.exp(math.fsum(math.log(t.index or 1) for t in section.tests)
                                   / len(section.tests))
    run.sections.append(section)
    return run


def _files(tmp_path: Path, *docs: model.RunResult) -> list[str]:
    out = []
    for i, d in enumerate(docs):
        p = tmp_path / f"run{i}.json"
        p.write_text(json.dumps(d.to_dict()))
        out.append(str(p))
    return out


def test_gate_exit_codes(tmp_path: Path) -> None:
    base = _doc({}, noise=0.005)
    slower = _doc({"pipe": 0.90}, noise=0.005)  # 10% worse, far beyond the noise
    a, b = _files(tmp_path, base, slower)
    rc, _, err = vb("compare", a, b, "--fail-above", "5%")
    assert rc == 1 and "gate: FAIL: 1 copy: pipe: B/A = 0.900" in err
    rc, _, err = vb("compare", a, b, "--fail-above", "15%")
    assert rc == 0 and "gate passed" in err
    rc, out, _ = vb("compare", a, b, "--fail-above", "5", "--json")
    assert rc == 1 and json.loads(out)["gate"]["failed"] is True
    rc, _, _ = vb("compare", a, b, "--fail-above", "5%", "--format", "markdown")
    assert rc == 1
    # Better is never a failure; noise is not a regression.
    rc, _, _ = vb("compare", b, a, "--fail-above", "1%")
    assert rc == 0
    (tmp_path / "n").mkdir()
    noisy = _files(tmp_path / "n", _doc({}, noise=0.3), _doc({"pipe": 0.9}, noise=0.3))
    rc, _, err = vb("compare", *noisy, "--fail-above", "5%")
    assert rc == 0, err
    rc, _, err = vb("compare", a, b, "--fail-above", "abc")
    assert rc == 2 and "expected a percentage" in err


def test_gate_on_the_index_without_passes(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    factors = {t: 0.88 + 0.01 * k for k, t in enumerate(TESTS)}  # all 7-12% worse
    a, b = _files(tmp_path / "x", _doc({}, 0.0, passes=False), _doc(factors, 0.0, passes=False))
    rc, _, err = vb("compare", a, b, "--fail-above", "5%")
    assert rc == 1 and "gate: FAIL: 1 copy: index: B/A = 0.9" in err
    rc, _, err = vb("compare", a, b, "--fail-above", "20%")
    assert rc == 0
    mixed = {t: (1.1 if k % 2 else 0.85) for k, t in enumerate(TESTS)}  # not consistent
    a, b = _files(tmp_path, _doc({}, 0.0, passes=False), _doc(mixed, 0.0, passes=False))
    rc, _, err = vb("compare", a, b, "--fail-above", "1%")
    assert rc == 0, err


def test_render_properties() -> None:
    """For any cells and width: unbreakable cells appear whole on one line, every wrapped
    cell keeps its words in order, and a table that can fit does fit."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    word = st.text(alphabet="abcdefghij-.:0123", min_size=1, max_size=14)
    cell = st.lists(word, min_size=1, max_size=5).map(" ".join)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(word, cell, word), min_size=0, max_size=6),
           st.integers(min_value=5, max_value=120))
    def check(rows: list[tuple[str, str, str]], width: int) -> None:
        cols = [Col("ID"), Col("NAME", wrap=True, min_width=4), Col("N", right=True)]
        text = render(cols, [list(r) for r in rows], width=width)
        lines = text.splitlines()
        for ident, _, num in rows:
            assert any(re.search(rf"(^|\s){re.escape(ident)}(\s|$)", ln) for ln in lines)
            assert any(ln.rstrip().endswith(num) or f" {num} " in ln for ln in lines)
        need = max([2, *(len(r[0]) for r in rows)]) + max([1, *(len(r[2]) for r in rows)]) + 6
        if need + 14 <= width:
            assert max(map(len, lines)) <= width, text
        assert render(cols, [list(r) for r in rows]).count("\n") == 2 + len(rows)

    check()


def test_experiments_say_where_they_saved(tmp_path: Path) -> None:
    """Every experiment command (migrate too: the same ``run_spec``) names the file it saved,
    on stderr; ``-q`` keeps it quiet."""
    small = ["io", "postmark", "--files", "20", "--transactions", "50", "--dir", str(tmp_path)]
    rc, out, err = vb(*small, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    saved = re.findall(r"^virtbench: result saved: (\S+)$", err, re.M)
    assert len(saved) == 1 and Path(saved[0]).is_file() and doc["id"] in saved[0]
    rc, _, err = vb(*small, "-o", str(tmp_path / "m.json"))
    assert rc == 0 and re.search(rf"^virtbench: result saved: \S+ and {tmp_path}/m.json$",
                                 err, re.M), err
    rc, _, err = vb(*small, "-q")
    assert rc == 0 and "result saved" not in err


@pytest.mark.parametrize("tree", ["aws-nitro", "xen-pv-domu"])
def test_detect_fits_the_terminal(tree: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """detect's long lines (evidence, facts, advice) wrap under their indentation on an
    80-column terminal; in a pipe each stays one line; the words are the same."""
    root = str(DATA / "detect" / tree)
    rc, piped, _ = vb("detect", "--root", root)
    assert rc == 0 and max(map(len, piped.splitlines())) > 80
    monkeypatch.setenv("COLUMNS", "80")
    rc, fitted, _ = vb("detect", "--root", root)
    assert rc == 0
    def words(text: str) -> list[str]:
        return [w for w in text.split() if not re.fullmatch(r"\(\d+\.\d+", w)]  # duration

    assert words(fitted) == words(piped)  # nothing cut, nothing added
    long = [ln for ln in fitted.splitlines() if len(ln) > 80]
    assert all(len(ln.split()) <= 2 for ln in long), long  # only one unbreakable word
    assert len(fitted.splitlines()) > len(piped.splitlines())


@pytest.mark.parametrize("columns", [80, 200])
def test_fleet_status_fits_the_terminal(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from virtbench.fleet.state import FleetState, HostState

    long_cmd = ["run", "--quick", "-c", "1", "dhry2reg", "whetstone-double", "syscall", "pipe",
                "context1", "spawn", "execl", "--label", "campaign=a-rather-long-label-value"]
    state = FleetState(id="20990101-000000-abcd", command=long_cmd, inventory="hosts.ini",
                       hosts={n: HostState(name=n, groups=["web", "eu-west-1"], status="failed",
                                           reason="unreachable: ssh: connect to host "
                                                  f"{n} port 22: Connection refused")
                              for n in ("web-frontend-01.example.com", "db-02.example.com")})
    state.status = "incomplete"
    state.save()
    monkeypatch.setenv("COLUMNS", str(columns))
    rc, out, _ = vb("fleet", "status")
    assert rc == 0 and max(map(len, out.splitlines())) <= columns
    assert state.id in out.split()
    rc, out, _ = vb("fleet", "status", state.id)
    table = out.split("\n\n", 1)[1].split("\n\n")[0]  # the lines above are prose
    assert rc == 0 and max(map(len, table.splitlines())) <= columns
    for name in state.hosts:
        assert name in table.split()
