"""Every `$ virtbench ...` example in docs/detect.md and docs/snapshot.md runs, and the
captured-tree example output in docs/detect.md is what virtbench prints today."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from clihelp import vb

ROOT = Path(__file__).resolve().parent.parent


def _examples(doc: str) -> list[str]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(r"^\$ virtbench (.+)$", text, re.M)]


@pytest.mark.parametrize(
    "line", _examples("detect.md") + _examples("snapshot.md"), ids=lambda s: s[:50]
)
def test_doc_example_runs(line: str) -> None:
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        rc, out, err = vb(*shlex.split(line))
    finally:
        os.chdir(cwd)
    assert rc == 0, (line, err)
    assert out.strip()


def test_documented_xen_pv_output_is_current() -> None:
    text = (ROOT / "docs" / "detect.md").read_text(encoding="utf-8")
    block = text.split("## Example: a Xen PV guest (captured tree)", 1)[1].split("```")[1]
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        rc, out, _ = vb("detect", "--root", "tests/data/detect/xen-pv-domu")
    finally:
        os.chdir(cwd)
    assert rc == 0
    if os.environ.get("VIRTBENCH_UPDATE_DOCS") == "1":  # regenerate after a deliberate change
        path = ROOT / "docs" / "detect.md"
        path.write_text(text.replace(block.strip("\n"), out.rstrip("\n")), encoding="utf-8")
        return
    # The first line carries the elapsed time.
    assert out.strip().splitlines()[1:] == block.strip().splitlines()[1:]
