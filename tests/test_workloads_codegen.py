"""What the compiler may assume about the CPU workloads decides their score.

Whetstone's section sizes must reach whetstone() as a run-time multiplier, as in the
classic program.  Written as compile-time constants, gcc -O2 (the 5.1.3 profile) folds
them and restructures the loops, and the build scored ~3% above the classic build
(measured side by side, alternating runs).  These tests compile the real source with the
profile's real flags and look at the generated code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from virtbench.workloads.build import SOURCE_DIR, compiler_command, effective_cflags
from virtbench.workloads.profiles import get_profile

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")

# Inner pass counts of the sections at the multiplier 100 (section constant x 100).
FOLDED_SIZES = {"N3": 345 * 100, "N6": 899 * 100, "N7": 616 * 100, "N4": 210 * 100}


def function_body(asm: str, name: str) -> str:
    """The assembly between ``name:`` and its ``.size`` directive (GNU as syntax)."""
    match = re.search(
        rf"^{re.escape(name)}:\n(.*?)^\s*\.size\s+{re.escape(name)},", asm, re.M | re.S
    )
    assert match is not None, f"function {name} not found in the generated assembly"
    return match.group(1)


def compile_to_asm(profile_name: str, source: Path, tmp_path: Path) -> str:
    profile = get_profile(profile_name)
    cc = compiler_command()
    out = tmp_path / "out.s"
    cmd = [
        *cc,
        *effective_cflags(profile, cc),
        *profile.defines,
        "-I",
        str(SOURCE_DIR),
        "-S",
        str(source),
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return out.read_text()


def folded_immediates(body: str) -> list[str]:
    immediates = {int(v, 0) for v in re.findall(r"\$(-?(?:0x[0-9a-fA-F]+|\d+))\b", body)}
    return sorted(k for k, v in FOLDED_SIZES.items() if v in immediates)


def test_whetstone_section_sizes_are_run_time_values(tmp_path: Path) -> None:
    asm = compile_to_asm("unixbench-5.1.3", SOURCE_DIR / "whets.c", tmp_path)
    body = function_body(asm, "whetstone")
    assert "call" in body  # the real function, with its library calls
    assert folded_immediates(body) == []


def test_the_check_sees_folded_sizes(tmp_path: Path) -> None:
    # The same source with the multiplier fixed at compile time: the check above must fail.
    src = (SOURCE_DIR / "whets.c").read_text()
    fixed = re.sub(
        r"void whetstone\(long extra, long scale\)\n\{\n",
        "void whetstone(long extra, long unused_scale)\n{\n    const long scale = 100;\n"
        "    (void)unused_scale;\n",
        src,
        count=1,
    )
    assert fixed != src, "whets.c no longer defines whetstone(long extra, long scale)"
    variant = tmp_path / "whets.c"
    variant.write_text(fixed)
    asm = compile_to_asm("unixbench-5.1.3", variant, tmp_path)
    assert folded_immediates(function_body(asm, "whetstone")) != []
