"""``virtbench build`` as a user runs it."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from conftest import run_cli
from virtbench.cli import main
from virtbench.workloads.build import PROGRAMS

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("virtbench.cli.run") is None,
    reason="the CLI needs every registered command module (virtbench.cli.run not landed yet)",
)


def test_build_json_then_cached() -> None:
    # the session's shared compile cache (tests/conftest.py): compiles at most once
    first = run_cli("build", "--json", check=True)
    info = json.loads(first.stdout)
    assert info["profile"] == "unixbench-6"
    assert "-O3" in info["cflags"] and "-DVB_WHET_WALLCLOCK=1" in info["cflags"]
    bin_dir = Path(info["bin_dir"])
    assert bin_dir.parent == Path(os.environ["XDG_CACHE_HOME"]) / "virtbench" / "build"
    assert all((bin_dir / name).is_file() for name in PROGRAMS)
    second = run_cli("build", check=True)
    assert "compiling" not in second.stderr  # reused
    assert f"programs  {bin_dir}" in second.stdout
    assert "profile   unixbench-6" in second.stdout


def test_build_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--profile", "unixbench-7"]) == 2
    bad = capsys.readouterr()
    assert bad.err.strip().splitlines() == [
        "virtbench: error: unknown profile 'unixbench-7' (valid: unixbench-5.1.3, unixbench-6)"
    ]
    monkeypatch.setenv("CC", "no-such-compiler")
    assert main(["build"]) == 3
    no_cc = capsys.readouterr()
    assert no_cc.out == ""
    assert no_cc.err.strip().splitlines() == [
        "virtbench: error: no C compiler found (no-such-compiler): "
        "install it with `apt-get install gcc`"
    ]
