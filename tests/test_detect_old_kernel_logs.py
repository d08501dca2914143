"""detect on kernel logs alone, in older kernels' wording (RHEL/CentOS 5 2.6.18-xen, Amazon
Linux HVM): the Xen guest type and the PV/emulated devices must come out of the log lines.

The logs in tests/data/detect-dmesg-only/ are written in the wording of those kernels."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from virtbench.probes import detect

DATA = Path(__file__).resolve().parent / "data" / "detect-dmesg-only"


def _detect(tmp_path: Path, log: str) -> tuple[dict[str, object], list[str], float]:
    shutil.copy(DATA / log, tmp_path / "dmesg.txt")
    report = detect(tmp_path).to_dict()
    (layer,) = report["layers"]
    assert layer["kind"] == "hypervisor" and layer["name"] == "xen"
    return layer, layer["evidence"], float(layer["confidence"])


def test_centos5_pv_frontends_in_2_6_18_wording(tmp_path: Path) -> None:
    layer, evidence, conf = _detect(tmp_path, "centos5-xen-pv.txt")
    assert layer["variant"] == "pv" and conf >= 0.9
    details = layer["details"]
    assert isinstance(details, dict)
    # 'blkif_init: reqs=64' / 'netfront: Initialising virtual ethernet driver.' used to
    # leave disk and net 'unknown'.
    assert details["disk"] == "pv" and details["net"] == "pv"
    assert details["pv_drivers"] == ["xen-blkfront", "xen-netfront"]
    assert "dmesg.txt: Xen reported: 2266.746 MHz processor." in evidence


def test_centos5_hvm_with_emulated_devices(tmp_path: Path) -> None:
    layer, evidence, conf = _detect(tmp_path, "centos5-xen-hvm-emulated.txt")
    assert layer["variant"] == "hvm"
    details = layer["details"]
    assert isinstance(details, dict)
    # '8139cp: 10/100 PCI Ethernet driver v1.3' used to leave net 'unknown'.
    assert details["disk"] == "emulated" and details["net"] == "emulated"
    assert details["emulated_devices"] == ["8139cp", "ata_piix"]
    # hvmloader's ACPI table (OEM Xen, table HVM) decides Xen HVM: no longer only 0.7.
    assert conf >= 0.9
    assert ("dmesg.txt: ACPI: XSDT (v001 Xen    HVM      0x00000000 HVML 0x00000000) @ "
            "0x00000000fc00a6c0") in evidence


@pytest.mark.parametrize("log", ["amazon-linux-xen-hvm.txt"])
def test_amazon_hvm_pv_drivers(tmp_path: Path, log: str) -> None:
    layer, evidence, conf = _detect(tmp_path, log)
    assert layer["variant"] == "hvm" and conf >= 0.95
    details = layer["details"]
    assert isinstance(details, dict)
    assert details["disk"] == "pv" and details["net"] == "pv"
    assert evidence[0] == "dmesg.txt: [    0.000000] Booting paravirtualized kernel on Xen HVM"
