"""Bad input to detect: junk reports, non-ASCII numbers, an archive that cannot be extracted.
Each gives one clear line (or one ValueError), never a traceback."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from virtbench.probes.model import DetectReport

DATA = Path(__file__).parent / "data" / "detect"

JUNK: list[Any] = [
    [], "report", 42, None,
    {"layers": 3},
    {"layers": [{}]},
    {"layers": [{"kind": "hypervisor"}]},
    {"layers": ["kvm"]},
    {"layers": [{"kind": "hypervisor", "name": "kvm", "confidence": "high"}]},
    {"layers": [{"kind": "hypervisor", "name": "kvm", "confidence": float("nan")}]},
    {"layers": [{"kind": "hypervisor", "name": "kvm", "evidence": 5}]},
    {"layers": [{"kind": "hypervisor", "name": "kvm", "details": [1, 2]}]},
    {"facts": [1]},
    {"advice": 5},
    {"schema_version": "one"},
    {"schema_version": [1]},
    {"duration_s": "1e999999"},
    {"duration_s": {}},
]


@pytest.mark.parametrize("junk", JUNK, ids=[repr(j)[:40] for j in JUNK])
def test_from_dict_junk_is_one_value_error(junk: Any) -> None:
    with pytest.raises(ValueError) as info:
        DetectReport.from_dict(junk)
    text = str(info.value)
    assert text.startswith("not a detect report") and "\n" not in text, text
    assert type(info.value) is ValueError  # not a pydantic error leaking through


def test_from_dict_round_trip_still_works() -> None:
    from virtbench.probes import detect

    report = detect(DATA / "xen-pv-domu")
    again = DetectReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.hypervisor is not None and again.hypervisor.name == "xen"
    assert again.hypervisor.variant == report.hypervisor.variant  # type: ignore[union-attr]


def _cli(*args: str, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # in the child: writes beyond `fsize` bytes fail with EFBIG
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "virtbench", *args], capture_output=True,
                          text=True, timeout=60, check=False, preexec_fn=limit)


@pytest.mark.parametrize("value", ["١٢", "٣", "१०", "１２", "nan", "inf", "1_0", " 5", "-1", "1e1"])
def test_steal_accepts_ascii_numbers_only(value: str) -> None:
    proc = _cli("detect", "--steal", value)
    assert proc.returncode == 2, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--steal" in lines[0] and "not a number" in lines[0], lines


def test_steal_ascii_number_is_parsed() -> None:
    # A valid number reaches the next check (with --root, --steal is refused for that).
    proc = _cli("detect", "--steal", "2.5", "--root", str(DATA / "bare-metal"))
    assert proc.returncode == 2 and "cannot be used with --root" in proc.stderr


def test_archive_that_cannot_be_extracted_is_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "snap.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(DATA / "bare-metal", arcname=".")
    cpuinfo = (DATA / "bare-metal" / "proc" / "cpuinfo").stat().st_size
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # Every file written beyond 1000 bytes fails (EFBIG), as on a full disk: cpuinfo is more.
    assert cpuinfo > 1000
    import os

    env_tmp = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)
    try:
        proc = _cli("detect", "--root", str(archive), fsize=1000)
    finally:
        if env_tmp is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = env_tmp
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "cannot extract" in lines[0] and "too large" in lines[0], lines
    assert list(tmp.iterdir()) == []  # the half-extracted tree is gone


def test_truncated_archive_is_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "snap.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(DATA / "bare-metal", arcname=".")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    proc = _cli("detect", "--root", str(cut))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "cannot extract" in lines[0], lines
