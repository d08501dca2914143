"""virtbench io seqread: sizes, cache handling and its report, errors, cleanup."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.conftest import run_cli

from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.experiments import seqread
from virtbench.experiments.common import MountInfo, mount_of
from virtbench.experiments.seqread import GiB, MiB, SeqreadParams

SIZE = 16 * MiB


def _leftovers(d: Path) -> list[str]:
    return [p.name for p in d.iterdir()]


@pytest.mark.parametrize("cache", ["fadvise", "direct"])
def test_cold_read(tmp_path: Path, cache: str) -> None:
    r = seqread.run_once(SeqreadParams(size=SIZE, block=256 * 1024, cache=cache), tmp_path,
                         SIZE, seqread.binary())
    assert r.bytes_read == SIZE and r.bytes_written == SIZE
    assert r.pages_total == SIZE // os.sysconf("SC_PAGESIZE")
    assert r.seconds_read > 0 and r.read_mib_per_second > 0
    if r.cache_method == "fadvise":
        assert r.pages_resident_before == 0
    else:
        assert r.cache_method == "direct"
    assert not r.from_cache
    assert _leftovers(tmp_path) == []


def test_warm_read_is_reported_as_cached(tmp_path: Path) -> None:
    r = seqread.run_once(SeqreadParams(size=SIZE, cache="none"), tmp_path, SIZE,
                         seqread.binary())
    assert r.cache_method == "none"
    assert r.resident_before > 0.9 and r.from_cache
    assert "from the page cache" in r.cache_state


def test_default_size_is_twice_ram_capped_by_free_space(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = os.statvfs(tmp_path)
    usable = st.f_bavail * st.f_frsize - seqread.margin_bytes(st.f_blocks * st.f_frsize)
    monkeypatch.setattr(seqread, "memory_bytes", lambda: 64 * MiB)
    size, notes = seqread.plan_size(SeqreadParams(), tmp_path)
    assert size == 128 * MiB and notes == []
    monkeypatch.setattr(seqread, "memory_bytes", lambda: usable)
    size, notes = seqread.plan_size(SeqreadParams(), tmp_path)
    assert size <= usable and size > usable - MiB
    assert notes and "capped" in notes[0]
    with pytest.raises(UsageError, match="not enough free space"):
        seqread.plan_size(SeqreadParams(size=usable + GiB), tmp_path)
    size, _ = seqread.plan_size(SeqreadParams(size=10 * MiB + 5, block=MiB), tmp_path)
    assert size == 10 * MiB


def test_cli_json_document(tmp_path: Path) -> None:
    proc = run_cli("io", "seqread", "--size", "8m", "--block", "64k", "--dir", str(tmp_path),
                   "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["experiment"] == "seqread" and doc["status"] == "complete"
    row = doc["rows"][0]
    assert row["bytes_read"] == 8 * MiB
    expected = {"drop_caches", "direct", "fadvise"}
    assert row["cache_method"] in expected
    if row["cache_method"] != "direct":
        assert row["pages_resident_before"] == 0 and row["from_cache"] is False
    assert row["cache_state"]
    assert doc["summary"]["main_metric"]["name"] == "read_mib_per_second"
    assert doc["summary"]["main_metric"]["value"] > 0
    assert _leftovers(tmp_path) == []


def test_cli_table_and_errors(tmp_path: Path) -> None:
    proc = run_cli("io", "seqread", "--size", "4m", "--cache", "fadvise", "--dir",
                   str(tmp_path), check=True)
    assert "read MiB/s" in proc.stdout and "cache:" in proc.stdout
    bad = run_cli("io", "seqread", "--size", "100000g", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "not enough free space" in bad.stderr
    assert bad.stderr.count("\n") == 1
    with pytest.raises(UsageError, match="--block"):
        SeqreadParams(size=MiB, block=100).validate()
    with pytest.raises(UsageError, match="--cache"):
        SeqreadParams(cache="maybe").validate()
    assert _leftovers(tmp_path) == []


def test_auto_without_root_reads_with_o_direct(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    r = seqread.run_once(SeqreadParams(size=4 * MiB, cache="auto"), tmp_path, 4 * MiB,
                         seqread.binary())
    assert r.cache_method in ("direct", "fadvise")  # fadvise where O_DIRECT is refused
    assert not r.from_cache
    with pytest.raises(EnvironmentUnsupported, match="needs root"):
        seqread.run_once(SeqreadParams(size=4 * MiB, cache="drop"), tmp_path, 4 * MiB,
                         seqread.binary())
    assert _leftovers(tmp_path) == []


def test_mount_of_reads_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
        "30 22 0:25 / /dev/shm rw - tmpfs tmpfs rw\n"
        "31 22 8:2 / /srv/my\\040data rw - xfs /dev/sdb1 rw\n")
    assert mount_of(Path("/srv/my data/x"), info) == MountInfo("/srv/my data", "xfs",
                                                                "/dev/sdb1")
    assert mount_of(Path("/dev/shm"), info) == MountInfo("/dev/shm", "tmpfs", "tmpfs")
    assert mount_of(Path("/dev/shmx"), info) == MountInfo("/", "ext4", "/dev/sda1")
    assert mount_of(Path("/x"), tmp_path / "missing") is None
