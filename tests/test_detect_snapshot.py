"""virtbench snapshot: the archive holds the evidence, no secrets, and detect reads it."""

from __future__ import annotations

import argparse
import io
import socket
import tarfile
from pathlib import Path

import pytest

from virtbench.errors import UsageError
from virtbench.probes import detect
from virtbench.probes.snapshot import _Writer, capture, opened_root


def test_snapshot_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "snap.tar.gz"
    manifest = capture(out)
    assert out.is_file() and manifest["files"] > 10
    assert manifest["hostname_included"] is False
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        assert "proc/cpuinfo" in names and "snapshot.json" in names
        environ = tar.extractfile("proc/1/environ") if "proc/1/environ" in names else None
        if environ is not None:
            for item in environ.read().split(b"\0"):
                assert item == b"" or item.startswith(b"container=")
        dmi = [n for n in names if n.startswith("sys/class/dmi/")]
        assert not any("serial" in n or "uuid" in n for n in dmi)
        assert not any(n.startswith("var/run/secrets/") and n.count("/") > 4 for n in names)
        host = socket.gethostname()
        if len(host) >= 4:
            for member in tar.getmembers():
                if member.isfile():
                    data = tar.extractfile(member)
                    assert data is not None
                    assert host.encode() not in data.read(), member.name
    live = detect("/")
    with opened_root(out) as root:
        offline = detect(root)
    assert not offline.live
    assert [(la.kind, la.name, la.variant) for la in offline.layers] == [
        (la.kind, la.name, la.variant) for la in live.layers
    ]
    assert offline.facts["cpu"]["logical_cpus"] == live.facts["cpu"]["logical_cpus"]
    assert offline.facts["clocksource"] == live.facts["clocksource"]
    # The PCI ids the hypervisor definitions read travel in the archive (this machine's
    # virtual devices, or none on a machine without PCI).
    assert offline.facts.get("pci") == live.facts.get("pci")


def test_hostname_scrubbing_keeps_other_words() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        w = _Writer(tar, ["vm", "web01"])
        w.file("a.txt", "Hostname set to <vm>. vm.swappiness kvm web01.example.com web01x\n")
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        f = tar.extractfile("a.txt")
        assert f is not None
        text = f.read().decode()
    assert text == (
        "Hostname set to <<hostname>>. vm.swappiness kvm <hostname>.example.com web01x\n"
    )


def test_snapshot_cli_refuses_overwrite_and_bad_names(tmp_path: Path) -> None:
    from virtbench.cli import snapshot as mod

    p = argparse.ArgumentParser()
    mod.register(p)
    with pytest.raises(UsageError, match=r"tar\.gz"):
        mod.run(p.parse_args([str(tmp_path / "x.zip")]))
    existing = tmp_path / "s.tar.gz"
    existing.write_bytes(b"")
    with pytest.raises(UsageError, match="exists"):
        mod.run(p.parse_args([str(existing)]))


def test_opened_root_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tar")
    with pytest.raises(FileNotFoundError), opened_root(bad):
        pass


def test_archive_with_escaping_paths_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "evil.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(tarfile.TarError), opened_root(bad):
        pass
    assert not (tmp_path.parent / "escape.txt").exists()


def test_snapshot_captures_what_the_definitions_read(tmp_path: Path) -> None:
    """The device tree, lparcfg, /dev/mdesc...: capturing follows the hypervisor definitions
    (and leaves lparcfg's serial number out)."""
    from virtbench.probes.base import Root
    from virtbench.probes.snapshot import _safe_extract, _write_platform_files

    data = Path(__file__).resolve().parent / "data" / "detect"
    for case, expected in (("virt-what-ppc64-lpar-shared", ("powervm", "shared")),
                           ("ldoms-control", ("ldoms", None)),
                           ("arm64-qemu-kvm", ("qemu-tcg", "tcg"))):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            _write_platform_files(Root(data / case), _Writer(tar, []))
        buf.seek(0)
        out = tmp_path / case
        out.mkdir()
        with tarfile.open(fileobj=buf) as tar:
            _safe_extract(tar, out)
        layer = detect(out).layers[0]
        assert (layer.name, layer.variant) == expected, (case, layer)
    lparcfg = (tmp_path / "virt-what-ppc64-lpar-shared" / "proc/ppc64/lparcfg").read_text()
    assert "shared_processor_mode=1" in lparcfg and "serial_number" not in lparcfg
    assert (tmp_path / "ldoms-control" / "sys/class/vlds/ctrl").is_dir()
