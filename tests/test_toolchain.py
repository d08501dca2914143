"""The one build cache and the one reading of ``$CC``, with real compilations."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SRC, run_cli
from virtbench import toolchain
from virtbench.errors import EnvironmentUnsupported
from virtbench.experiments import programs as exp_programs
from virtbench.probes import cpuid
from virtbench.toolchain import BUILD_INFO_FILE, Program
from virtbench.vm import build as vm_build
from virtbench.workloads import build as wl_build
from virtbench.workloads.profiles import get_profile

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")

HELLO = '#include <stdio.h>\n#include "hello.h"\nint main(void) { puts(GREETING); return 0; }\n'


@pytest.fixture
def hello(tmp_path: Path) -> Program:
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.c").write_text(HELLO)
    (src / "hello.h").write_text('#define GREETING "hello"\n')
    return Program("hello", src, ("hello.c",))


def wrapper(tmp_path: Path, *, delay_s: float = 0.0) -> tuple[str, Path]:
    """A compiler wrapper in a directory with a space (so ``$CC`` needs quoting) that logs
    every call: ``(CC value, log file)``. With ``delay_s``, a compilation into a build's
    temporary directory first touches ``<log>.started`` and sleeps."""
    bin_dir = tmp_path / "my tools"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "cc.log"
    script = bin_dir / "wrap"
    script.write_text(
        "#!/bin/sh\n"
        f"echo \"$*\" >> '{log}'\n"
        + (f"case \"$*\" in */.tmp-*) touch '{log}.started'; sleep {delay_s};; esac\n"
           if delay_s else "")
        + 'exec "$@"\n'
    )
    script.chmod(0o755)
    return f"'{script}' cc", log


def test_cc_is_split_like_a_shell_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "  cc   -std=gnu11 ")
    assert toolchain.compiler_command() == ["cc", "-std=gnu11"]
    monkeypatch.delenv("CC")
    assert toolchain.compiler_command() == ["cc"]
    monkeypatch.setenv("CC", "gcc '-O2")
    with pytest.raises(EnvironmentUnsupported) as bad:
        toolchain.compiler_command()
    assert str(bad.value) == "CC=\"gcc '-O2\" is not a valid command: No closing quotation"
    monkeypatch.setenv("CC", "ccache-not-here-virtbench gcc")
    with pytest.raises(EnvironmentUnsupported, match=r"^no C compiler found \(ccache-not-here"):
        toolchain.compiler_command()


def test_build_caches_by_sources_flags_and_compiler(
    hello: Program, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cache"
    first = toolchain.build_program(hello, ("-O2",), cache_root=root)
    assert subprocess.run([first], capture_output=True, text=True).stdout == "hello\n"
    stamp = first.stat().st_mtime_ns
    assert toolchain.build_program(hello, ("-O2",), cache_root=root) == first
    assert first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    # a header next to the source is an input
    (hello.source_dir / "hello.h").write_text('#define GREETING "changed"\n')
    second = toolchain.build_program(hello, ("-O2",), cache_root=root)
    assert second != first
    assert subprocess.run([second], capture_output=True, text=True).stdout == "changed\n"
    # flags are an input
    third = toolchain.build_program(hello, ("-O1",), cache_root=root)
    assert third.parent not in (first.parent, second.parent)
    # the compiler command is an input (a wrapper answers the same --version)
    cc, log = wrapper(tmp_path)
    monkeypatch.setenv("CC", cc)
    fourth = toolchain.build_program(hello, ("-O1",), cache_root=root)
    assert fourth.parent != third.parent
    assert "-O1" in log.read_text() and "--version" in log.read_text()
    # every entry is complete; no temporary directory is left
    entries = sorted(p.name for p in (root / "build").iterdir())
    assert len(entries) == 4 and not any(e.startswith(".") for e in entries)
    assert all((root / "build" / e / BUILD_INFO_FILE).is_file() for e in entries)


def test_compile_error_leaves_nothing(hello: Program, tmp_path: Path) -> None:
    (hello.source_dir / "hello.c").write_text("int main(void) { return undeclared_thing; }\n")
    with pytest.raises(EnvironmentUnsupported, match=r"'hello' with cc failed: .*undeclared"):
        toolchain.build_program(hello, ("-O2",), cache_root=tmp_path / "cache")
    assert list((tmp_path / "cache" / "build").iterdir()) == []


def test_unwritable_cache_builds_privately(
    hello: Program, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    exe = toolchain.build_program(hello, ("-O2",))
    assert not exe.is_relative_to(blocker)
    assert subprocess.run([exe], capture_output=True, text=True).stdout == "hello\n"


def test_one_declaration_per_program() -> None:
    assert exp_programs.PROGRAMS["dhry2reg"] is wl_build.PROGRAMS["dhry2reg"]
    assert exp_programs.PROGRAMS["whetstone-double"] is wl_build.PROGRAMS["whetstone-double"]
    src = Path(toolchain.__file__).parent
    declared = [
        *wl_build.PROGRAMS.values(),
        *(p for n, p in exp_programs.PROGRAMS.items() if n not in wl_build.PROGRAMS),
        *vm_build.PROGRAMS.values(),
        cpuid.HELPER,
    ]
    sources = [str(p.relative_to(src)) for prog in declared for p in prog.source_paths()]
    assert len(sources) == len(set(sources))
    on_disk = {str(p.relative_to(src)) for p in src.glob("*/c/*.c")}
    assert on_disk == set(sources)  # every C source is declared, and exactly once


def test_wrapper_cc_works_for_every_builder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CC`` with a wrapper (as ``ccache gcc`` is) builds workloads, experiment programs,
    static guest programs and the CPUID helper, all through the wrapper."""
    cc, log = wrapper(tmp_path)
    monkeypatch.setenv("CC", cc)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(wl_build, "PROGRAMS", {"pipe": wl_build.PROGRAMS["pipe"]})
    info = wl_build.ensure_built(get_profile("unixbench-5.1.3"))
    assert info.cc == cc
    assert (info.bin_dir / "pipe").is_file() and (info.bin_dir / "tst.sh").is_file()
    sysmix = exp_programs.build("sysmix")
    assert sysmix.is_file() and os.access(sysmix, os.X_OK)
    calls = log.read_text()
    assert "pipe.c" in calls and "sysmix.c" in calls
    if Path("/usr/lib/x86_64-linux-gnu/libc.a").exists() or shutil.which("musl-gcc"):
        vmload = vm_build.static_binary("vmload")
        assert vmload.is_file() and "-static" in log.read_text()
    if cpuid.is_x86():
        helper = cpuid.helper_path()
        assert isinstance(helper, Path), helper
        assert "hypervisor_bit=" in subprocess.run([helper], capture_output=True,
                                                   text=True).stdout
        assert "cpuid.c" in log.read_text()
    assert exp_programs.compiler_facts()[0] == cc


def test_cli_reports_a_malformed_cc_in_one_line(tmp_path: Path) -> None:
    proc = run_cli("build", env={"CC": "gcc '-O2", "XDG_CACHE_HOME": str(tmp_path)})
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == [
        "virtbench: error: CC=\"gcc '-O2\" is not a valid command: No closing quotation"
    ]


def _wait_for(path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_killed_build_leaves_no_half_built_entry(hello: Program, tmp_path: Path) -> None:
    """SIGKILL mid-build: no entry appears; the next build removes the temporary one."""
    cc, log = wrapper(tmp_path, delay_s=60)
    root = tmp_path / "cache"
    code = (
        "import sys; from pathlib import Path; from virtbench import toolchain;"
        f"toolchain.build_program(toolchain.Program('hello', Path({str(hello.source_dir)!r}),"
        f" ('hello.c',)), ('-O2',), cache_root=Path({str(root)!r}))"
    )
    env = dict(os.environ, CC=cc, PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        _wait_for(Path(f"{log}.started"))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    left = [p.name for p in (root / "build").iterdir()]
    assert len(left) == 1 and left[0].startswith(f".tmp-{proc.pid}-"), left
    exe = toolchain.build_program(hello, ("-O2",), cache_root=root)
    assert [p.name for p in (root / "build").iterdir()] == [exe.parent.name]


def test_sigterm_removes_the_temporary_build(tmp_path: Path) -> None:
    """``virtbench build`` stopped by SIGTERM mid-compile exits non-zero and leaves nothing."""
    cc, log = wrapper(tmp_path, delay_s=2)
    env = dict(os.environ, CC=cc, XDG_CACHE_HOME=str(tmp_path / "cache"),
               PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-m", "virtbench", "build"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(Path(f"{log}.started"))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in err
    build_dir = tmp_path / "cache" / "virtbench" / "build"
    assert list(build_dir.iterdir()) == []


@pytest.mark.skipif(shutil.which("ccache") is None, reason="ccache is in setup-dev.sh")
def test_ccache_gcc_builds_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``CC="ccache gcc"``, the issue's case: workloads (what ``run`` builds), experiment
    programs and static guest programs all compile through ccache, and ccache caches them:
    the same programs built again (an empty virtbench build cache) are ccache hits. (They
    were compiled and linked in one call, which ccache runs without caching:
    ``called_for_link``, never a hit.)"""
    monkeypatch.setenv("CC", "ccache gcc")
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(wl_build, "PROGRAMS", {"pipe": wl_build.PROGRAMS["pipe"]})
    info = wl_build.ensure_built(get_profile("unixbench-5.1.3"))
    assert info.cc == "ccache gcc" and (info.bin_dir / "pipe").is_file()
    assert exp_programs.build("sysmix").is_file()
    if Path("/usr/lib/x86_64-linux-gnu/libc.a").exists():
        assert vm_build.static_binary("vmload").is_file()

    def stats() -> dict[str, int]:
        out = subprocess.run(["ccache", "--print-stats"], capture_output=True, text=True,
                             check=True).stdout
        return {k: int(v) for k, v in (ln.split("\t")[:2] for ln in out.splitlines())
                if v.isdigit()}

    first = stats()
    compiled = first.get("cache_miss", 0)
    assert compiled >= 2 and first.get("direct_cache_hit", 0) == 0, first
    assert first.get("called_for_link", 0) >= 2, first  # the link steps, not cacheable
    # Again from an empty build cache: every compilation is a ccache hit.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache2"))
    info2 = wl_build.ensure_built(get_profile("unixbench-5.1.3"))
    assert info2.bin_dir != info.bin_dir and (info2.bin_dir / "pipe").is_file()
    assert exp_programs.build("sysmix").is_file()
    if Path("/usr/lib/x86_64-linux-gnu/libc.a").exists():
        assert vm_build.static_binary("vmload").is_file()
    second = stats()
    hits = second.get("direct_cache_hit", 0) + second.get("preprocessed_cache_hit", 0)
    assert hits == compiled and second.get("cache_miss", 0) == compiled, second
    out = subprocess.run([info2.bin_dir / "pipe", "1"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("cc", [["gcc"], ["ccache", "gcc"]])
def test_flag_probe_tells_flags_apart_and_makes_no_file(
    cc: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe compiles from stdin to stdout: a SIGKILL during it can leave nothing behind
    (bench/kill_points.py once found its temporary directory after a killed ``run``). Python's
    temporary directory is made unusable: a probe that still made one fails here."""
    if shutil.which(cc[0]) is None:
        pytest.skip(f"{cc[0]} not installed")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the compiler's, if it made any
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache"))
    monkeypatch.setattr(toolchain, "_FLAG_PROBES", {})
    monkeypatch.setattr(toolchain.tempfile, "tempdir", str(tmp_path / "absent"))
    assert toolchain.flag_works(cc, "-O2") is True
    assert toolchain.flag_works(cc, "-march=no-such-cpu") is False
    assert [p.name for p in tmp_path.iterdir() if p.name != "ccache"] == []
