"""detect on hostile captured trees: FIFOs, devices, symlink loops, links that point out of the
tree, kernel logs with several boots and logs far larger than what is read.

Each detection runs in a child process with a timeout, so a regression that blocks (a FIFO
opened for reading) fails the test instead of hanging the suite."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from virtbench.probes import detect

DATA = Path(__file__).resolve().parent / "data" / "detect"


def _detect_child(root: Path) -> dict[str, object]:
    code = (
        "import json, sys\nfrom virtbench.probes import detect\n"
        "print(json.dumps(detect(sys.argv[1]).to_dict()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def test_fifos_are_listed_not_opened(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    shutil.copytree(DATA / "xen-pv-domu", tree, symlinks=True)
    for rel in ("dmesg.txt", "proc/cpuinfo", "sys/hypervisor/guest_type"):
        (tree / rel).unlink()
        os.mkfifo(tree / rel)
    doc = _detect_child(tree)
    unreadable = doc["unreadable"]
    assert isinstance(unreadable, list)
    for rel in ("/dmesg.txt", "/proc/cpuinfo", "/sys/hypervisor/guest_type"):
        assert f"{rel}: a FIFO, not read" in unreadable, unreadable
    layers = doc["layers"]
    assert isinstance(layers, list)
    assert layers[0]["name"] == "xen"  # /sys/hypervisor/type and /proc/xen still say so


def test_a_device_node_is_never_opened(tmp_path: Path) -> None:
    dev = tmp_path / "proc" / "cpuinfo"
    dev.parent.mkdir()
    try:
        os.mknod(dev, 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: endless
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    doc = _detect_child(tmp_path)
    assert "/proc/cpuinfo: a character device, not read" in doc["unreadable"]  # type: ignore[operator]


def test_absolute_links_resolve_inside_the_tree(tmp_path: Path) -> None:
    """An absolute link must never reach the live /proc or /sys of the reading machine."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "sys" / "hypervisor").mkdir(parents=True)
    (tmp_path / "proc" / "cpuinfo").symlink_to("/proc/cpuinfo")  # itself, inside the tree
    (tmp_path / "proc" / "meminfo").symlink_to("../../../../../../proc/meminfo")
    (tmp_path / "proc" / "stat").symlink_to("/proc/stat")
    (tmp_path / "captured").mkdir()
    (tmp_path / "captured" / "type").write_text("xen\n")
    (tmp_path / "sys" / "hypervisor" / "type").symlink_to("/captured/type")
    report = detect(tmp_path)
    assert report.layers[0].name == "xen"
    assert "/sys/hypervisor/type: xen" in report.layers[0].evidence
    # The live machine's CPU and memory do not leak in.
    assert report.facts["cpu"]["model"] is None
    assert report.facts["memory"]["total_kib"] is None
    assert "/proc/cpuinfo: Too many levels of symbolic links" in report.unreadable


def test_a_top_level_link_out_of_the_tree(tmp_path: Path) -> None:
    (tmp_path / "proc").symlink_to("/proc")
    (tmp_path / "sys").symlink_to("/sys")
    report = detect(tmp_path)
    assert report.facts["cpu"]["model"] is None
    assert report.layers[0].kind == "hardware"
    assert any(u.startswith("/proc/cpuinfo: Too many levels") for u in report.unreadable)


def test_symlink_loops_are_unreadable(tmp_path: Path) -> None:
    (tmp_path / "a.txt").symlink_to("b.txt")
    (tmp_path / "b.txt").symlink_to("a.txt")
    (tmp_path / "dmesg.txt").symlink_to("a.txt")
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "self").symlink_to("self/x")
    report = detect(tmp_path)
    assert "/dmesg.txt: Too many levels of symbolic links" in report.unreadable
    assert any(u.startswith("/proc/self/") for u in report.unreadable)


_KVM_BOOT = (
    "[    0.000000] Linux version 5.15.0-91-generic (buildd@lcy02-amd64-045)\n"
    "[    0.000000] DMI: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.15.0-1 04/01/2014\n"
    "[    0.000000] Hypervisor detected: KVM\n"
)
_XEN_BOOT = (
    "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)\n"
    "[    0.000000] Booting paravirtualized kernel on Xen\n"
    "[    0.000000] Hypervisor detected: Xen PV\n"
)


def test_the_latest_boot_wins(tmp_path: Path) -> None:
    syslog = [f"Nov 22 00:00:0{i % 10} web1 kernel: {line}"
              for i, line in enumerate((_KVM_BOOT + _XEN_BOOT).splitlines())]
    (tmp_path / "kern.log").write_text("\n".join(syslog) + "\n")
    report = detect(tmp_path)
    assert (report.layers[0].name, report.layers[0].variant) == ("xen", "pv")
    skipped = report.facts["kernel_log"]["skipped"]
    assert skipped and skipped[0].startswith("earlier boots: the first ")
    assert not any("KVM" in e for e in report.layers[0].evidence)


def test_journalctl_boot_separators(tmp_path: Path) -> None:
    text = ("-- Boot 0f1e2d3c4b5a69788796a5b4c3d2e1f0 --\n" + _XEN_BOOT
            + "-- Boot 00112233445566778899aabbccddeeff --\n"
            + "[    0.000000] Hypervisor detected: KVM\n")
    (tmp_path / "journal.txt").write_text(text)
    assert detect(tmp_path).layers[0].name == "kvm"


def test_a_long_boot_keeps_its_start_and_end(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from virtbench.probes import klog

    monkeypatch.setattr(klog, "HEAD", 256 * 1024)
    monkeypatch.setattr(klog, "TAIL", 64 * 1024)
    filler = "[  100.000000] audit: type=1400 apparmor=\"STATUS\" operation=\"profile_load\"\n"
    n = (klog.HEAD + klog.TAIL) // len(filler) + 20000
    with open(tmp_path / "dmesg.txt", "w") as fh:
        fh.write(_KVM_BOOT + _XEN_BOOT)
        fh.write(filler * n)
        fh.write("[ 9999.000000] virtio_net virtio1 ens3: renamed from eth0\n")
    report = detect(tmp_path)
    assert (report.layers[0].name, report.layers[0].variant) == ("xen", "pv")
    skipped = report.facts["kernel_log"]["skipped"]
    assert len(skipped) == 2 and skipped[1].startswith("the middle of the latest boot: ")
    assert report.facts["kernel_log"]["lines"] < n
    assert "virtio_net" in report.facts["devices"]["net"]["pv"]


def test_boot_marker_on_a_chunk_boundary(tmp_path: Path) -> None:
    from virtbench.probes import klog

    for pad in (klog._CHUNK - 5, klog._CHUNK, klog._CHUNK + 3, 2 * klog._CHUNK - 1):
        filler = ("x" * 99 + "\n") * (pad // 100) + "y" * (pad % 100) + "\n"
        data = (_KVM_BOOT + filler + _XEN_BOOT + "z" * 5000 + "\n").encode()
        path = tmp_path / f"log{pad}"
        path.write_bytes(data)
        fd = os.open(path, os.O_RDONLY)
        try:
            got = klog.find_last_boot(fd, len(data))
        finally:
            os.close(fd)
        assert got == data.index(b"[    0.000000] Linux version 6.1"), pad


def test_the_backward_search_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sparse file far larger than the search limit (a 1 TB 'log'): the start and the end
    are read, and the report says the boot's start was not found."""
    from virtbench.probes import klog

    monkeypatch.setattr(klog, "SCAN_LIMIT", 4 * 1024 * 1024)
    log = tmp_path / "dmesg.txt"
    with open(log, "w") as fh:
        fh.write(_XEN_BOOT)
        fh.truncate(64 * 1024 * 1024)  # sparse: no disk used
    report = detect(tmp_path)
    assert (report.layers[0].name, report.layers[0].variant) == ("xen", "pv")
    skipped = report.facts["kernel_log"]["skipped"]
    assert any(s.startswith("no boot start in the last 4.0 MB") for s in skipped), skipped


def test_one_endless_line_is_cut(tmp_path: Path) -> None:
    (tmp_path / "dmesg.txt").write_text("x" * (2 * 1024 * 1024) + "\n" + _XEN_BOOT)
    report = detect(tmp_path)
    assert report.layers[0].name == "xen"
    assert max(len(e) for e in report.layers[0].evidence) < 300


def test_huge_directories_are_listed_partly(tmp_path: Path) -> None:
    from virtbench.probes.base import MAX_ENTRIES

    block = tmp_path / "sys" / "block"
    block.mkdir(parents=True)
    for i in range(MAX_ENTRIES + 5):
        (block / f"sd{i}").mkdir()
    report = detect(tmp_path)
    assert f"/sys/block: more than {MAX_ENTRIES} entries: the rest not read" in report.unreadable


def test_no_control_character_reaches_the_terminal(tmp_path: Path) -> None:
    """Names and evidence come from the tree: escape sequences are printed escaped."""
    from virtbench.probes.render import render

    (tmp_path / "sys" / "hypervisor").mkdir(parents=True)
    (tmp_path / "sys" / "hypervisor" / "type").write_text("zz\x1b[31mred\n")
    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "environ").write_bytes(b"container=\x1b[2Jevil\0")
    (tmp_path / "dmesg.txt").write_text("[    0.000000] Hypervisor detected: \x07\x1b]0;t\x07\n")
    report = detect(tmp_path)
    assert [la.name for la in report.layers] == ["unknown", "generic"], report.summary
    text = render(report)
    assert "\x1b" not in text and "\x07" not in text
    assert "/sys/hypervisor/type: zz\\x1b[31mred" in text
