"""Start-up: `virtbench --help` and `virtbench runs` import only what they need (the figures:
bench/cli_startup.py), and the fast read-only listing answers as the store does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clihelp import vb
from conftest import SRC
from virtbench.results import model
from virtbench.store import dispose_engines, open_store, quick, save_and_record
from virtbench.store.rows import RunFilter

DATA = Path(__file__).resolve().parent / "data"
HEAVY = ("sqlalchemy", "pydantic", "numpy", "scipy", "rich", "jinja2", "plotly")


@pytest.fixture(autouse=True)
def _fresh_engines() -> None:
    dispose_engines()


def _imported_modules(*argv: str) -> set[str]:
    code = ("import sys, contextlib, io\n"
            "from virtbench.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main({list(argv)!r})\n"
            "assert rc == 0, rc\n"
            "print('\\n'.join(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin",
                               "XDG_DATA_HOME": os.environ["XDG_DATA_HOME"]})
    return set(proc.stdout.split())


@pytest.mark.parametrize("argv", [["--help"], ["runs"], ["runs", "--json"], []])
def test_start_up_imports_nothing_heavy(argv: list[str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if argv[:1] == ["runs"]:
        rc, _, _ = vb("-q", "import", str(DATA / "unixbench-centos6-xen-pv.txt"))
        assert rc == 0
    mods = _imported_modules(*argv)
    heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY)
    assert heavy == [], heavy
    if argv == ["--help"]:
        loaded = sorted(m for m in mods if m.startswith("virtbench.cli."))
        assert loaded == [], loaded  # the command list comes from the sources, not imports


def test_help_lists_every_command() -> None:
    from virtbench.cli import COMMAND_MODULES, _load

    rc, out, _ = vb("--help")
    assert rc == 0
    for name in COMMAND_MODULES:
        mod = _load(name)
        assert re.search(rf"^    {mod.NAME}\b", out, re.M) and mod.HELP.split()[0] in out


def test_quick_listing_equals_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err = vb("import", "--json", "--label", "set=a", "--label", "odd=1%_x",
                      *sorted(str(p) for p in DATA.glob("unixbench-*.txt")))
    assert rc == 0, err
    exp = model.ExperimentResult(experiment="cap", started="2026-01-01T00:00:00Z",
                                 status="complete", rows=[{"quota": 50}], labels={"set": "b"})
    save_and_record(exp)
    store = open_store()
    filters = [RunFilter(), RunFilter(host="EXAMPLE"), RunFilter(host="%"), RunFilter(host="_"),
               RunFilter(labels={"set": "a"}), RunFilter(labels={"odd": "1%_x", "set": "a"}),
               RunFilter(since="2015-08-17"), RunFilter(until="2015-08-17"),
               RunFilter(until="2015-08-17T04:42:22"), RunFilter(profile="unixbench-6"),
               RunFilter(kind="suite"), RunFilter(kind="experiment"), RunFilter(kind="cap"),
               RunFilter(source="imported-unixbench"), RunFilter(limit=2),
               RunFilter(labels={"set": "a"}, limit=1), RunFilter(host="no-such-host")]
    for flt in filters:
        fast = quick.list_runs(None, flt)
        assert fast is not None, flt
        assert [r.to_dict() for r in fast] == [r.to_dict() for r in store.list_runs(flt)], flt
    assert len(quick.list_runs(None, RunFilter()) or []) == len(json.loads(out)) + 1


def test_quick_listing_steps_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert quick.list_runs(f"sqlite:///{tmp_path / 'none.db'}", RunFilter()) is None
    assert quick.list_runs("postgresql+psycopg://u@h/db", RunFilter()) is None
    db = tmp_path / "other.db"
    url = f"sqlite:///{db}"
    open_store(url)
    assert quick.list_runs(url, RunFilter()) == []
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_info SET value = '999' WHERE key = 'version'")
    assert quick.list_runs(url, RunFilter()) is None  # the store says what to do
    dispose_engines()
    rc, _, err = vb("runs", "--db", url)
    assert rc != 0 and "db rebuild" in err
    (tmp_path / "junk.db").write_text("not a database")
    assert quick.list_runs(f"sqlite:///{tmp_path / 'junk.db'}", RunFilter()) is None
