"""detect on real captured trees of other projects (tests/data/detect-captured/README.md):
identity, PV/HVM type and role, on the trees detect was once wrong about."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from virtbench.probes import detect
from virtbench.probes.snapshot import _safe_extract

DATA = Path(__file__).parent / "data" / "detect-captured"

# tree -> (accepted innermost hypervisors or None: any, PV/HVM type or None, role or None)
EXPECTED: dict[str, tuple[set[str] | None, str | None, set[str] | None]] = {
    "x86_64-el5xen.tar.gz": ({"xen"}, "pv", {"domU"}),
    "i386-xenpara": ({"xen"}, "pv", {"domU"}),
    "x86_64-xenfull": ({"xen"}, "hvm", None),
    "vbox-win.tar.gz": ({"virtualbox"}, None, None),
    "s390-nested-virt.tar.gz": ({"kvm"}, None, None),
    "ppc-qemu.tar.gz": ({"qemu-tcg", "kvm"}, None, None),
    "loongarch-kvm_on_loongson_3c6000.tar.gz": ({"kvm"}, None, None),
    "sparc64-UltraSparc-T1.tar.gz": ({"ldoms"}, None, {"control", "root"}),
    "20s390-2g6s4c.tar.bz2": ({"prsm"}, None, None),
    "2s390-2c.tar.bz2": ({"zvm", "kvm"}, None, None),
    "pt-dmesg-006": ({"xen"}, "pv", {"domU"}),
    "newrelic-docker-24.0.2": (None, None, None),
}

# tree -> the container it must show (every other tree: no container)
CONTAINERS: dict[str, str] = {
    "newrelic-docker-24.0.2": "docker",
}


def _trees(name: str, tmp: Path) -> list[Path]:
    src = DATA / name
    if src.is_dir():
        return [src]
    with tarfile.open(src) as tar:
        _safe_extract(tar, tmp)
    return sorted(p.parent.parent for p in tmp.rglob("proc/cpuinfo"))


def test_every_captured_tree_is_listed() -> None:
    on_disk = {p.name for p in DATA.iterdir() if p.name != "README.md"}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_captured_tree(name: str, tmp_path: Path) -> None:
    names, variant, roles = EXPECTED[name]
    trees = _trees(name, tmp_path)
    assert trees, name
    for tree in trees:
        report = detect(tree)
        hv = report.inner_hypervisor
        if name in CONTAINERS:
            assert report.container is not None, report.summary
            assert report.container.name == CONTAINERS[name], report.summary
        else:
            assert report.container is None, report.summary
        if names is None:
            continue
        assert hv is not None and hv.name in names, (tree.name, report.summary)
        if variant is not None:
            assert hv.variant == variant, (tree.name, report.summary, hv.evidence)
        if roles is not None:
            assert hv.details.get("role") in roles, (tree.name, hv.details)


def test_heldout_bench_without_mirrors_is_one_line() -> None:
    import subprocess
    import sys

    bench = Path(__file__).parent.parent / "bench" / "detect_heldout.py"
    proc = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "util-linux/util-linux" in lines[0], lines


@pytest.mark.parametrize(("source", "name"), [
    ("/docker/containers/" + "b0" * 32 + "/hostname", "docker"),
    ("/containers/storage/overlay-containers/" + "3f" * 32 + "/userdata/hosts", "podman"),
    ("/var/lib/kubelet/pods/6f1d2c3e-0a1b-4c5d-8e9f-0123456789ab/etc-hosts", "kubernetes"),
    ("/srv/etc/hostname", None),
])
def test_engine_bind_mounts_name_the_engine(tmp_path: Path, source: str, name: str | None) -> None:
    """A container engine's bind-mounted /etc files name it even without the root mount line."""
    target = "/etc/hosts" if "hosts" in source else "/etc/hostname"
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "mountinfo").write_text(
        f"1026 1013 254:1 {source} {target} rw,relatime - ext4 /dev/vda1 rw\n")
    report = detect(tmp_path)
    assert (report.container.name if report.container else None) == name, report.summary
