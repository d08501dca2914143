"""Packaging (issue 16): the core installs what `virtbench run` needs, each optional part is
an extra that its command names in one line, `.[dev]` holds every extra, CI installs the
pinned versions of constraints.txt."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, SRC

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# distribution name -> the module it provides
MODULES = {"pydantic": "pydantic", "sqlalchemy": "sqlalchemy", "jinja2": "jinja2",
           "plotly": "plotly", "qemu.qmp": "qemu", "shtab": "shtab",
           "psycopg": "psycopg", "ansible-core": "ansible", "ansible-runner": "ansible_runner",
           "rich": "rich", "starlette": "starlette", "uvicorn": "uvicorn"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower()


def test_core_and_extras() -> None:
    core = {_name(r) for r in PYPROJECT["dependencies"]}
    extras = {k: {_name(r) for r in v} for k, v in PYPROJECT["optional-dependencies"].items()}
    assert not core & {"psycopg", "ansible-core", "ansible-runner", "numpy", "scipy", "rich"}
    assert extras["postgres"] == {"psycopg"}
    assert {"ansible-core", "ansible-runner"} <= extras["fleet"]
    dev = PYPROJECT["optional-dependencies"]["dev"]
    selfref = next(r for r in dev if r.startswith("virtbench["))
    named = set(selfref[len("virtbench["):selfref.index("]")].split(","))
    assert named == set(extras) - {"dev"}, "`.[dev]` must hold every extra"


def test_every_dependency_is_imported_somewhere() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in (SRC / "virtbench").rglob("*.py"))
    deps = [*PYPROJECT["dependencies"]]
    for extra, reqs in PYPROJECT["optional-dependencies"].items():
        if extra != "dev":
            deps += reqs
    for req in deps:
        module = MODULES[_name(req)]
        used = re.search(rf"^\s*(import|from) {re.escape(module)}\b", text, re.M)
        if module == "psycopg":  # SQLAlchemy's dialect loads it for postgresql+psycopg URLs
            used = used or "postgresql+psycopg://" in text
        if module == "ansible":  # its programs are run
            used = used or '"ansible-playbook"' in text
        assert used, req


def test_ci_installs_pinned_versions() -> None:
    setup = (ROOT / "scripts" / "setup-dev.sh").read_text(encoding="utf-8")
    assert re.search(r"pip install .*-c constraints\.txt.*'\.\[dev\]'", setup)
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, line
            pins[name.lower().replace("_", "-")] = version
    wanted = [*PYPROJECT["dependencies"]]
    for reqs in PYPROJECT["optional-dependencies"].values():
        wanted += [r for r in reqs if not r.startswith("virtbench")]
    for req in wanted:
        assert _name(req).replace("_", "-").replace(".", "-") in {
            n.replace(".", "-") for n in pins}, f"{req} is not pinned in constraints.txt"
    assert "virtbench" not in pins
    assert (ROOT / "scripts" / "refresh-constraints.sh").is_file()


def _missing(modules: list[str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = ("import sys\n"
            f"for m in {modules!r}: sys.modules[m] = None  # as if not installed\n"
            "from virtbench.cli import main\n"
            f"raise SystemExit(main({argv!r}))\n")
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, env={"PYTHONPATH": str(SRC),
                                                         "PATH": "/usr/bin:/bin",
                                                         "XDG_DATA_HOME": os.environ[
                                                             "XDG_DATA_HOME"]})


def test_commands_name_the_extra_they_need() -> None:
    proc = _missing(["psycopg", "psycopg2"], ["runs", "--db", "postgresql://u@127.0.0.1:1/x"])
    assert proc.returncode != 0
    assert "pip install 'virtbench[postgres]'" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = _missing(["ansible_runner"], ["fleet", "status"])
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == [
        "virtbench: error: virtbench fleet needs the [fleet] extra (ansible_runner is "
        "missing): pip install 'virtbench[fleet]'"]


def test_throwaway_postgresql_block_runs(tmp_path: Path) -> None:
    """docs/database.md's throw-away PostgreSQL, run as written (on a free port)."""
    import glob
    import os

    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries not found (scripts/setup-dev.sh installs them)")
        pytest.skip("PostgreSQL is not installed")
    page = (ROOT / "docs" / "database.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- docs-test: throwaway-postgres -->\n```sh\n(.*?)```", page, re.S)
    assert block
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "virtbench").write_text(f'#!/bin/sh\nexec {sys.executable} -m virtbench "$@"\n')
    (shim / "virtbench").chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(SRC), PATH=f"{shim}:{os.environ['PATH']}",
               XDG_DATA_HOME=str(tmp_path / "data"))
    # The port is free when chosen, but the block's server binds it only after its initdb:
    # another process may take it in between. Then (the server's log says so, and only
    # then) the block runs again on another port.
    for _ in range(3):
        proc, log = _run_throwaway_block(block.group(1), env)
        if proc.returncode == 0 or "Address already in use" not in log:
            break
    assert proc.returncode == 0, proc.stdout + proc.stderr + log
    assert any(ln.split()[:2] == ["ID", "STARTED"] for ln in proc.stdout.splitlines())
    assert "server stopped" in proc.stdout


def _run_throwaway_block(script: str, env: dict[str, str]
                         ) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the block on a free port, its ``mktemp -d`` in a directory of ours (the server's
    user must reach it, as it reaches /tmp); the run and the server's log. A server the
    block left running (it failed before its last line) is stopped, and its files removed."""
    import shutil
    import socket
    import tempfile

    from pgserver import _as_user, _bin, _server_user

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    top = Path(tempfile.mkdtemp(prefix="vb-pgdoc-", dir="/tmp"))
    top.chmod(0o755)
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c",
                               script.replace("54329", str(port))], capture_output=True,
                              text=True, timeout=300, env=dict(env, TMPDIR=str(top)),
                              check=False)
        log = "".join(p.read_text(errors="replace") for p in top.glob("*/log"))
        return proc, log
    finally:
        pg_ctl = _bin("pg_ctl")
        for pid in top.glob("*/data/postmaster.pid"):
            assert pg_ctl
            subprocess.run(_as_user([pg_ctl, "-D", str(pid.parent), "-m", "immediate", "-w",
                                     "stop"], _server_user()),
                           capture_output=True, timeout=120, check=False, cwd="/")
        shutil.rmtree(top, ignore_errors=True)


def test_no_numpy_or_scipy_at_run_time(tmp_path: Path) -> None:
    """Neither is a dependency (scipy is only in [dev], to check virtbench's own Student t):
    no module imports them, and comparing runs with passes (Welch t-tests, the gate) and
    drawing the report work with both missing."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in (SRC / "virtbench").rglob("*.py"))
    assert not re.search(r"^\s*(import|from) (numpy|scipy)\b", text, re.M)
    from virtbench.results import model

    files = []
    for k, factor in enumerate((1.0, 0.9)):
        run = model.RunResult(profile="unixbench-6", status="complete")
        section = model.Section(copies=1)
        scores = [1000.0 * factor * (1 + 0.002 * (i % 5)) for i in range(8)]
        section.tests.append(model.TestResult(
            test="pipe", name="Pipe Throughput", unit="lps", copies=1, score=scores[3],
            baseline=12440.0, index=scores[3] / 1244.0, samples=8,
            passes=[model.PassResult(score=s, elapsed=10.0) for s in scores]))
        run.sections.append(section)
        files.append(tmp_path / f"run{k}.json")
        files[-1].write_text(run.to_json(), encoding="utf-8")
    blocked = ["numpy", "scipy"]
    proc = _missing(blocked, ["compare", *map(str, files), "--fail-above", "5%"])
    assert proc.returncode == 1, proc.stderr  # the gate judged: 10% worse beyond noise
    assert "gate: FAIL" in proc.stderr and "p=" in proc.stderr
    proc = _missing(blocked, ["report", *map(str, files), "-o", str(tmp_path / "r.html")])
    assert proc.returncode == 0, proc.stderr
