from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
SHARED = ROOT.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"

# CLI tables fit $COLUMNS when it is set (virtbench.table); tests that check widths set it.
os.environ.pop("COLUMNS", None)


@pytest.fixture(autouse=True)
def _isolated_xdg(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the user's real data dir; share one compile cache across the session."""
    data = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    cache = os.environ.get("VIRTBENCH_TEST_CACHE")
    if cache is None:
        cache = str(tmp_path_factory.getbasetemp() / "xdg-cache")
        os.environ["VIRTBENCH_TEST_CACHE"] = cache
    monkeypatch.setenv("XDG_CACHE_HOME", cache)


def run_cli(
    *args: str, timeout: float = 300, check: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``virtbench`` as a user would (a real process), from this source tree."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(SRC) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "virtbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"virtbench {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
