"""virtbench detect on the live machine, and the detect CLI."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from virtbench.probes import detect

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "detect"


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    code = (
        "import argparse, sys\n"
        "from virtbench.cli import detect\n"
        "p = argparse.ArgumentParser(); detect.register(p)\n"
        "sys.exit(detect.run(p.parse_args(sys.argv[1:])))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


def test_live_detection_prints_and_names_layers() -> None:
    report = detect("/")
    # Printed on purpose: CI logs show what the machine was.
    print(f"\nlive: {report.summary}")
    for layer in report.layers:
        print(f"  {layer.kind} {layer.name} {layer.variant} {layer.confidence}")
        for ev in layer.evidence:
            print(f"    {ev}")
    print(f"  unreadable: {report.unreadable}")
    assert report.live
    assert report.layers, "at least the outermost layer"
    assert report.layers[0].kind in ("hardware", "hypervisor")
    assert report.summary
    assert report.facts["cpu"]["logical_cpus"] == len(
        [b for b in Path("/proc/cpuinfo").read_text().split("\n\n") if "processor" in b]
    )
    assert report.facts["cpu"]["affinity_cpus"] == len(os.sched_getaffinity(0))


def _on_this_sandbox() -> bool:
    try:
        return "--firecracker-init" in Path("/proc/1/cmdline").read_text(errors="replace")
    except OSError:
        return False


@pytest.mark.skipif(not _on_this_sandbox(), reason="only on the project's firecracker sandbox")
def test_live_sandbox_is_kvm_microvm_with_container_markers() -> None:
    report = detect("/")
    got = [(la.kind, la.name) for la in report.layers]
    assert got == [("hypervisor", "kvm"), ("container", "docker")]
    assert report.layers[0].variant == "firecracker-like"
    assert report.summary == "kvm (firecracker-like micro-VM) > container (docker-like markers)"


def test_live_agrees_with_systemd_detect_virt() -> None:
    tool = shutil.which("systemd-detect-virt")
    if tool is None:
        pytest.skip("systemd-detect-virt not installed")
    names = {la.name for la in detect("/").layers}
    vm = subprocess.run([tool, "--vm"], capture_output=True, text=True, check=False)
    ct = subprocess.run([tool, "--container"], capture_output=True, text=True, check=False)
    mapping = {"microsoft": "hyper-v", "oracle": "virtualbox", "qemu": "qemu-tcg"}
    for proc in (vm, ct):
        word = proc.stdout.strip()
        if proc.returncode == 0 and word and word != "none":
            assert mapping.get(word, word) in names or (word == "qemu" and "kvm" in names), (
                word, names)


def test_cli_json_and_text() -> None:
    proc = _cli("--json", "--root", str(DATA / "xen-pv-domu"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["summary"] == "xen (pv)"
    assert doc["layers"][0]["variant"] == "pv"
    text = _cli("--root", str(DATA / "xen-dom0"))
    assert text.returncode == 0
    assert "Summary: xen dom0 (pv)" in text.stdout
    assert "/proc/xen/capabilities: control_d" in text.stdout


def test_cli_errors_are_one_line() -> None:
    from virtbench.cli import detect as mod
    from virtbench.errors import UsageError

    p = argparse.ArgumentParser()
    mod.register(p)
    with pytest.raises(UsageError):
        mod.run(p.parse_args(["--root", "/nonexistent/tree"]))
    with pytest.raises(UsageError):
        mod.run(p.parse_args(["--root", str(DATA / "kvm-virtio"), "--steal", "1"]))


def test_steal_sample_is_live_and_short() -> None:
    report = detect("/", steal_sample_s=0.2)
    steal = report.facts["steal"]
    assert steal["sample_s"] == 0.2
    assert steal["sample_pct"] is not None and 0.0 <= steal["sample_pct"] <= 100.0


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to drop to an unprivileged user",
)
def test_unprivileged_user_gets_the_same_layers(tmp_path: Path) -> None:
    """The main answer never needs root: as 'nobody' the layers are the same."""
    # A home the unprivileged user cannot write to: the CPUID helper must still be built
    # (privately), and nothing may need root.
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / "cache"),
               PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "virtbench", "detect", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd="/",
    )
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip(f"cannot run the interpreter as nobody: {proc.stderr.strip()[:120]}")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    as_root = detect("/")
    print(f"\nunprivileged: {doc['summary']}; unreadable: {doc['unreadable']}")
    assert [(la["kind"], la["name"]) for la in doc["layers"]] == [
        (la.kind, la.name) for la in as_root.layers
    ]
    assert not any(u.startswith("probe ") for u in doc["unreadable"]), doc["unreadable"]
