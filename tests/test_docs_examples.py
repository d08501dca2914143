"""Every ``$ virtbench ...`` line in a ```console block of the docs runs and succeeds.

Lines run in file order in one temp working directory per page (so an example may use a file
an earlier one wrote), with an isolated data dir. A trailing ``# exit N`` comment states an
expected non-zero exit status.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, SRC, machine_sysctls_lock

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
_BLOCK = re.compile(r"^```console\n(.*?)^```", re.M | re.S)


def _examples(page: Path) -> list[tuple[str, int]]:
    out = []
    for block in _BLOCK.findall(page.read_text(encoding="utf-8")):
        for line in block.splitlines():
            if not line.startswith("$ virtbench"):
                continue
            cmd = line[2:]
            expected = 0
            m = re.search(r"\s+#\s*exit\s+(\d+)\s*$", cmd)
            if m:
                expected = int(m.group(1))
                cmd = cmd[: m.start()]
            out.append((cmd, expected))
    return out


CASES = [(p, _examples(p)) for p in PAGES]
_TESTBED = re.compile(r"<!--\s*docs-test:\s*fleet-testbed\s+hosts=(\d+)(?:\s+unreachable=(\d+))?"
                      r"\s*-->")


@contextlib.contextmanager
def _fleet_testbed(page: Path, work: Path) -> Iterator[None]:
    """A page marked ``<!-- docs-test: fleet-testbed hosts=N unreachable=M -->`` gets real
    sshd hosts on loopback (virtbench.fleet.testbed) and their inventory as ``hosts.ini``."""
    m = _TESTBED.search(page.read_text(encoding="utf-8"))
    if m is None:
        yield
        return
    if not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs openssh-server (scripts/setup-dev.sh installs it)")
    from virtbench.fleet.testbed import LocalFleet

    with LocalFleet(Path(f"/tmp/vbdoc-{os.getpid()}"), int(m.group(1)),
                    unreachable=int(m.group(2) or 0)) as fleet:
        shutil.copy(fleet.inventory, work / "hosts.ini")
        yield


@pytest.mark.timeout(1200)  # a page runs several commands (each bounded to 600 s below)
@pytest.mark.parametrize(("page", "examples"), [c for c in CASES if c[1]],
                         ids=[c[0].name for c in CASES if c[1]])
def test_documented_examples_run(page: Path, examples: list[tuple[str, int]],
                                 tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    shim = tmp_path / "bin"
    shim.mkdir()
    python = shlex.quote(sys.executable)
    (shim / "virtbench").write_text(f'#!/bin/sh\nexec {python} -m virtbench "$@"\n')
    (shim / "virtbench").chmod(0o755)
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    work = tmp_path / "work"
    work.mkdir()
    # Examples may name the sample UnixBench reports as if the user had them at hand.
    for sample in (ROOT / "tests" / "data").glob("unixbench-*.txt"):
        shutil.copy(sample, work / sample.name)
    # `virtbench tune --set` examples change the machine's real sysctls: one session at a time
    changes_sysctls = any(cmd.startswith("virtbench tune") for cmd, _ in examples)
    with _fleet_testbed(page, work), \
            machine_sysctls_lock() if changes_sysctls else contextlib.nullcontext():
        for cmd, expected in examples:
            proc = subprocess.run(cmd, shell=True, cwd=work, env=env, capture_output=True,
                                  text=True, timeout=600, check=False)
            assert proc.returncode == expected, (
                f"{page.name}: `{cmd}` exited {proc.returncode}, expected {expected}\n"
                f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def test_readme_starts_with_the_two_setup_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README must start with a sh block"
    commands = [ln for ln in block.group(1).splitlines() if ln and not ln.startswith("#")]
    assert len(commands) == 2
    assert "virtbench run" in commands[0]
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/setup-dev.sh" in ci and "-m pytest" in ci



def test_every_command_has_a_page_and_links_resolve() -> None:
    from virtbench.cli import COMMAND_MODULES

    docs = ROOT / "docs"
    for name in COMMAND_MODULES:
        name = name.rstrip("_").replace("_", "-")
        page = docs / ("runs.md" if name in ("show", "export", "rm", "db") else f"{name}.md")
        assert page.is_file(), f"no docs page for `virtbench {name}`"
    for page in [ROOT / "README.md", *docs.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name}: broken link {target}"
