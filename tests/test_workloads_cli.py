"""``virtbench build`` as a user runs it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import run_cli
from virtbench.workloads.build import PROGRAMS

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("virtbench.cli.run") is None,
    reason="the CLI needs every registered command module (virtbench.cli.run not landed yet)",
)


def test_build_json_then_cached(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    first = run_cli("build", "--profile", "unixbench-5.1.3", "--json", env=env, check=True)
    info = json.loads(first.stdout)
    assert info["profile"] == "unixbench-5.1.3"
    assert "-O2" in info["cflags"] and "-DVB_WHET_WALLCLOCK=0" in info["cflags"]
    bin_dir = Path(info["bin_dir"])
    assert bin_dir.parent == tmp_path / "virtbench" / "build"
    assert all((bin_dir / name).is_file() for name in PROGRAMS)
    assert "compiling" in first.stderr
    second = run_cli("build", "--profile", "unixbench-5.1.3", env=env, check=True)
    assert "compiling" not in second.stderr  # reused
    assert f"programs  {bin_dir}" in second.stdout
    assert "profile   unixbench-5.1.3" in second.stdout


def test_build_errors_are_one_line(tmp_path: Path) -> None:
    bad = run_cli("build", "--profile", "unixbench-7")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "virtbench: error: unknown profile 'unixbench-7' (valid: unixbench-5.1.3, unixbench-6)"
    ]
    no_cc = run_cli("build", env={"CC": "no-such-compiler", "XDG_CACHE_HOME": str(tmp_path)})
    assert no_cc.returncode == 3
    assert no_cc.stdout == ""
    assert no_cc.stderr.strip().splitlines() == [
        "virtbench: error: no C compiler found (no-such-compiler): "
        "install it with `apt-get install gcc`"
    ]
