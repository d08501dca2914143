"""Building the workload programs: compile, cache, rebuild on change, errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.workloads import build
from virtbench.workloads.build import PROGRAMS, BuildInfo, ensure_built
from virtbench.workloads.profiles import (
    DEFAULT_PROFILE,
    PROFILES,
    Profile,
    get_profile,
)

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def only_two_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebuild tests compile two programs (one with two translation units), not all."""
    monkeypatch.setattr(build, "PROGRAMS", {n: PROGRAMS[n] for n in ("pipe", "dhry2reg")})


@pytest.fixture(scope="module")
def built(cache_root: Path) -> BuildInfo:
    return ensure_built(get_profile(DEFAULT_PROFILE), cache_root=cache_root)


def test_profiles() -> None:
    assert DEFAULT_PROFILE == "unixbench-6"
    six = PROFILES["unixbench-6"]
    assert six.cflags[:2] == ("-O3", "-ffast-math")
    assert "-DVB_RAW_GETPID=1" in six.defines and "-DVB_WHET_WALLCLOCK=1" in six.defines
    old = get_profile("unixbench-5.1.3")
    assert old.cflags == ("-O2", "-fomit-frame-pointer", "-fforce-addr", "-ffast-math", "-Wall")
    assert "-DVB_RAW_GETPID=0" in old.defines
    with pytest.raises(UsageError, match=r"unixbench-5\.1\.3, unixbench-6"):
        get_profile("unixbench-7")


def test_build_produces_every_program(built: BuildInfo, cache_root: Path) -> None:
    assert built.bin_dir.parent == cache_root / "build"
    for name in PROGRAMS:
        path = built.bin_dir / name
        assert path.is_file() and os.access(path, os.X_OK), name
    assert built.profile == "unixbench-6"
    assert built.cc_version and "\n" not in built.cc_version
    assert "-O3" in built.cflags and "-DVB_RAW_GETPID=1" in built.cflags
    assert len(built.source_hash) == 64 and built.source_hash == build.source_hash()
    recorded = json.loads((built.bin_dir / build.BUILD_INFO_FILE).read_text())
    assert recorded["source_hash"] == built.source_hash
    # no temporary build directory is left behind
    assert [p.name for p in built.bin_dir.parent.iterdir()] == [built.bin_dir.name]


def test_second_build_reuses_cache(built: BuildInfo, cache_root: Path) -> None:
    stamp = (built.bin_dir / "pipe").stat().st_mtime_ns
    messages: list[str] = []
    again = ensure_built(
        get_profile(DEFAULT_PROFILE), cache_root=cache_root, progress=messages.append
    )
    assert again == built
    assert messages == []  # nothing compiled
    assert (built.bin_dir / "pipe").stat().st_mtime_ns == stamp


@pytest.mark.usefixtures("only_two_programs")
def test_changed_flags_rebuild(built: BuildInfo, cache_root: Path) -> None:
    base = get_profile(DEFAULT_PROFILE)
    other = Profile(
        name=base.name, cflags=(*base.cflags, "-fno-inline-small-functions"), defines=base.defines
    )
    messages: list[str] = []
    info = ensure_built(other, cache_root=cache_root, progress=messages.append)
    assert info.bin_dir != built.bin_dir
    assert "-fno-inline-small-functions" in info.cflags
    assert any("compiling" in m for m in messages)
    assert (info.bin_dir / "dhry2reg").is_file()
    shutil.rmtree(info.bin_dir)


@pytest.mark.usefixtures("only_two_programs")
def test_force_rebuilds_in_place(cache_root: Path) -> None:
    profile = get_profile("unixbench-5.1.3")
    first = ensure_built(profile, cache_root=cache_root)
    (first.bin_dir / "marker").write_text("old build")
    second = ensure_built(profile, cache_root=cache_root, force=True)
    assert second.bin_dir == first.bin_dir
    assert not (second.bin_dir / "marker").exists()
    assert (second.bin_dir / "pipe").is_file()
    assert "-O2" in second.cflags and "-DVB_RAW_GETPID=0" in second.cflags


def test_no_compiler_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CC", "no-such-cc-virtbench")
    with pytest.raises(EnvironmentUnsupported, match=r"no C compiler found.*apt-get install gcc"):
        ensure_built(get_profile(DEFAULT_PROFILE), cache_root=tmp_path)


def test_compile_error_names_first_error_line(tmp_path: Path) -> None:
    bad = Profile(name="bad", cflags=("-O2", "-include", "/nonexistent/vb-missing.h"), defines=())
    with pytest.raises(EnvironmentUnsupported, match=r"failed: .*error.*vb-missing\.h"):
        ensure_built(bad, cache_root=tmp_path)
    # the failed build left nothing behind
    assert list((tmp_path / "build").iterdir()) == []


@pytest.mark.usefixtures("only_two_programs")
def test_cc_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cc = shutil.which("cc")
    assert cc is not None
    monkeypatch.setenv("CC", f"{cc} -std=gnu11")
    info = ensure_built(get_profile("unixbench-5.1.3"), cache_root=tmp_path)
    assert info.cc.endswith("-std=gnu11")
    assert (info.bin_dir / "pipe").is_file()
