"""The test catalog: ids, groups, selection, duplicates, command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtbench.errors import UsageError
from virtbench.workloads import catalog
from virtbench.workloads.build import PROGRAMS
from virtbench.workloads.catalog import (
    CATALOG,
    GROUPS,
    INDEX_TESTS,
    WorkloadSpec,
    register,
    select,
)

# UnixBench's index baselines ("George", SPARCstation 20-61).
BASELINES = {
    "dhry2reg": 116700.0,
    "whetstone-double": 55.0,
    "execl": 43.0,
    "fstime": 3960.0,
    "fsbuffer": 1655.0,
    "fsdisk": 5800.0,
    "pipe": 12440.0,
    "context1": 4000.0,
    "spawn": 126.0,
    "shell1": 42.4,
    "shell8": 6.0,
    "syscall": 15000.0,
}


def test_index_tests_in_report_order_with_baselines() -> None:
    assert INDEX_TESTS == (
        "dhry2reg",
        "whetstone-double",
        "execl",
        "fstime",
        "fsbuffer",
        "fsdisk",
        "pipe",
        "context1",
        "spawn",
        "shell1",
        "shell8",
        "syscall",
    )
    for test_id, baseline in BASELINES.items():
        assert CATALOG[test_id].baseline == baseline
    assert [s.id for s in CATALOG.values() if s.baseline is not None] == list(INDEX_TESTS)


def test_report_names_durations_passes_units() -> None:
    assert CATALOG["dhry2reg"].name == "Dhrystone 2 using register variables"
    assert CATALOG["fsbuffer"].name == "File Copy 256 bufsize 500 maxblocks"
    assert CATALOG["fsdisk-r"].name == "File Read 4096 bufsize 8000 maxblocks"
    assert CATALOG["shell8"].name == "Shell Scripts (8 concurrent)"
    for test_id in ("dhry2reg", "whetstone-double", "syscall", "pipe", "context1"):
        assert (CATALOG[test_id].duration, CATALOG[test_id].passes) == (10.0, 10)
    for test_id in ("spawn", "execl", "fstime", "fsbuffer", "fsdisk"):
        assert (CATALOG[test_id].duration, CATALOG[test_id].passes) == (30.0, 3)
    assert (CATALOG["shell1"].duration, CATALOG["shell1"].timebase) == (60.0, 60)
    assert CATALOG["whetstone-double"].timebase == 0
    assert CATALOG["fstime"].unit == "KBps" and CATALOG["fstime"].timebase == 0
    assert CATALOG["shell16"].concurrency == 16 and CATALOG["shell16"].baseline is None


def test_every_spec_in_all_and_programs_known() -> None:
    assert set(GROUPS["all"]) == set(CATALOG)
    assert len(CATALOG) == 19
    for spec in CATALOG.values():
        assert "all" in spec.groups
        assert spec.program in PROGRAMS


def test_groups() -> None:
    # run order: UnixBench's ./Run runs syscall before the shell tests
    assert set(GROUPS["index"]) == set(INDEX_TESTS)
    assert GROUPS["index"][-3:] == ("syscall", "shell1", "shell8")
    assert GROUPS["system"] == (
        "execl", "fstime", "fsbuffer", "fsdisk", "pipe", "context1", "spawn", "syscall",
        "shell1", "shell8", "shell16",
    )
    assert set(GROUPS["fs"]) == {
        f"{base}{suffix}"
        for base in ("fstime", "fsbuffer", "fsdisk")
        for suffix in ("", "-r", "-w")
    }
    assert GROUPS["shell"] == ("shell1", "shell8", "shell16")
    assert "dhry2reg" not in GROUPS["system"] and "shell16" in GROUPS["system"]


def test_select_mixes_ids_and_groups_without_duplicates() -> None:
    got = [s.id for s in select(["pipe", "shell", "shell1", "dhry2reg"])]
    assert got == ["pipe", "shell1", "shell8", "shell16", "dhry2reg"]
    assert [s.id for s in select([])] == list(GROUPS["index"])
    assert [s.id for s in select(["all"])] == list(GROUPS["all"])


def test_select_unknown_names_lists_valid_ones() -> None:
    with pytest.raises(UsageError) as info:
        select(["pipe", "dhrystone", "bogus"])
    msg = str(info.value)
    assert "'dhrystone'" in msg and "'bogus'" in msg
    assert "dhry2reg" in msg and "index" in msg and "shell16" in msg


def test_register_refuses_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "CATALOG", dict(CATALOG))
    spec = CATALOG["pipe"]
    with pytest.raises(ValueError, match="duplicate"):
        register(spec)
    with pytest.raises(ValueError, match="group"):
        register(WorkloadSpec(**{**spec.__dict__, "id": "index"}))
    added = register(WorkloadSpec(**{**spec.__dict__, "id": "pipe2", "groups": ()}))
    assert added.groups == ("all",) and "pipe2" in catalog.CATALOG
    assert "pipe2" not in CATALOG


def test_argv_for_one_copy(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    work = tmp_path / "copy-3"
    assert CATALOG["dhry2reg"].argv(bin_dir, 10.0, work) == [str(bin_dir / "dhry2reg"), "10"]
    assert CATALOG["fsbuffer-w"].argv(bin_dir, 0.5, work) == [
        str(bin_dir / "fstime"), "-w", "-b", "256", "-m", "500", "-d", str(work), "0.5",
    ]  # fmt: skip
    assert CATALOG["shell8"].argv(bin_dir, 60, work) == [
        str(bin_dir / "looper"), "60", "/bin/sh", str(bin_dir / "multi.sh"), "8",
    ]  # fmt: skip
    with pytest.raises(UsageError):
        CATALOG["pipe"].argv(bin_dir, 0, work)


def test_min_free_bytes() -> None:
    assert CATALOG["pipe"].min_free_bytes() == 0
    # copy: two files of maxblocks KiB (plus slack); read/write: one file
    assert CATALOG["fsdisk"].min_free_bytes() >= 2 * 8000 * 1024
    assert 8000 * 1024 <= CATALOG["fsdisk-r"].min_free_bytes() < 2 * 8000 * 1024


def test_captured_lines_cover_every_program() -> None:
    from test_workloads_output import CAPTURED

    # every program a test runs has a captured output line (vbgate is runner support)
    assert set(CAPTURED) == {spec.program for spec in CATALOG.values()}


def test_one_table_of_per_test_facts() -> None:
    """The importer, explain and the reports read names, short labels and baselines from
    the catalog (no table of their own)."""
    from virtbench.analysis.explain import canonical_id, test_index
    from virtbench.importers.unixbench import INDEX_BASELINES, test_id
    from virtbench.report.data import short_name
    from virtbench.results.model import TestResult

    for spec in CATALOG.values():
        assert test_id(spec.name) == spec.id
        # an imported report's spelling: the name in another case, blanks around it
        t = TestResult(test=spec.name.upper(), name=f"  {spec.name.lower()} ", unit=spec.unit,
                       copies=1, score=spec.baseline or 1.0)
        assert canonical_id(t) == spec.id
        assert short_name(t) == spec.label and spec.short
        assert test_index(t) == (pytest.approx(10.0) if spec.baseline else None)
    assert len({s.label for s in CATALOG.values()}) == len(CATALOG)
    assert {i: CATALOG[i].baseline for i in INDEX_TESTS} == INDEX_BASELINES
    assert test_id("Recursion Test--Tower of Hanoi") == "hanoi"  # not run by virtbench
    assert catalog.lookup("no such test") is None
    unknown = TestResult(test="mystery", name="Mystery", unit="lps", copies=1, score=5.0)
    assert canonical_id(unknown) == "mystery" and short_name(unknown) == "Mystery"
    assert test_index(unknown) is None
