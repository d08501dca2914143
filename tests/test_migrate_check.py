"""``virtbench migrate-check`` on fixture host pairs (detect reports and captured trees)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from virtbench.analysis.migration_check import (
    COMPATIBLE,
    COMPATIBLE_BASELINE,
    NOT_COMPATIBLE,
    RULES,
    GuestSpec,
    check,
    facts_from_detect,
)
from virtbench.cli import main
from virtbench.probes.migration import x86_64_level

V2 = "fpu cx8 cmov mmx fxsr sse sse2 syscall nx lm pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm"
SANDY = V2 + " aes pclmulqdq avx xsave rdtscp"
HASWELL = SANDY + " avx2 bmi1 bmi2 fma f16c abm movbe rdrand fsgsbase erms invpcid"
EPYC = HASWELL + " sse4a misalignsse 3dnowprefetch adx rdseed sha_ni clzero clflushopt xsaveopt"


def host(vendor: str = "GenuineIntel", family: int = 6, model: int = 63, flags: str = HASWELL,
         hv: str = "kvm", version: str = "7.2.0", mounts: list[dict[str, Any]] | None = None,
         available_mb: int = 16000, hugepages_free: int = 0) -> dict[str, Any]:
    """A detect report (schema 1) as ``virtbench detect --json`` writes it, trimmed."""
    layers: list[dict[str, Any]] = [{"kind": "hardware", "name": "bare-metal", "variant": None,
                                     "confidence": 0.9, "evidence": [], "details": {}}]
    facts: dict[str, Any] = {"cpu": {"vendor": vendor, "model": "fixture CPU"}}
    if hv == "xen":
        layers = [{"kind": "hypervisor", "name": "xen", "variant": "pv", "confidence": 0.98,
                   "evidence": [], "details": {"role": "dom0"}}]
        facts["xen_version"] = version
    else:
        facts["nesting"] = {"dev_kvm": "usable"}
    facts["migration"] = {
        "cpu": {"vendor": vendor, "family": family, "model": model, "stepping": 2,
                "flags": sorted(flags.split()), "level": x86_64_level(set(flags.split()))},
        "memory": {"total_kib": 32 * 1024 * 1024, "available_kib": available_mb * 1024},
        "hugepages": {"size_kib": 2048, "total": hugepages_free, "free": hugepages_free},
        "mounts": mounts if mounts is not None else [
            {"mountpoint": "/", "fstype": "ext4", "source": "/dev/sda1", "network": False},
            {"mountpoint": "/var/lib/images", "fstype": "nfs4",
             "source": "filer:/export/images", "network": True},
        ],
        "arch": "x86_64",
        "qemu": {"version": version, "machines": ["pc", "pc-i440fx-7.2", "q35"]}
        if hv == "kvm" else None,
    }
    return {"schema_version": 1, "root": "/", "live": True, "summary": "fixture",
            "layers": layers, "facts": facts, "advice": [], "unreadable": []}


def verdict(src: dict[str, Any], dst: dict[str, Any], **guest: Any) -> dict[str, Any]:
    return check(facts_from_detect(src, "a"), facts_from_detect(dst, "b"), GuestSpec(**guest))


def rule(result: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(r for r in result["rules"] if r["rule"] == rid)


def test_identical_hosts_are_compatible() -> None:
    r = verdict(host(), host(), disk="/var/lib/images/g.qcow2", memory_mb=2048)
    assert r["verdict"] == COMPATIBLE, r["reasons"]
    assert r["reasons"] == [] and r["missing_flags"] == []
    assert rule(r, "shared-storage")["status"] == "ok"
    assert "filer:/export/images" in rule(r, "shared-storage")["message"]


def test_intel_to_amd_is_not_compatible() -> None:
    r = verdict(host(), host(vendor="AuthenticAMD", family=23, model=49, flags=EPYC))
    assert r["verdict"] == NOT_COMPATIBLE
    assert rule(r, "cpu-vendor")["status"] == "fail"
    assert "GenuineIntel -> AuthenticAMD" in rule(r, "cpu-vendor")["message"]


def test_missing_avx2_needs_the_v2_baseline() -> None:
    r = verdict(host(), host(model=42, flags=SANDY))
    assert r["verdict"] == COMPATIBLE_BASELINE
    assert r["baseline"] == "x86-64-v2"
    assert {"avx2", "bmi1", "bmi2", "fma", "movbe"} <= set(r["missing_flags"])
    assert "avx" not in r["missing_flags"]
    assert rule(r, "cpu-flags")["status"] == "baseline"
    # the other direction loses nothing
    back = verdict(host(model=42, flags=SANDY), host())
    assert back["missing_flags"] == [] and back["verdict"] == COMPATIBLE_BASELINE  # model differs
    # with host CPU passthrough a different CPU is a hard stop
    assert verdict(host(), host(model=42, flags=SANDY),
                   cpu_passthrough=True)["verdict"] == NOT_COMPATIBLE


def test_xen_versions_must_match() -> None:
    same = verdict(host(hv="xen", version="3.4.2"), host(hv="xen", version="3.4.2"))
    assert same["verdict"] == COMPATIBLE
    r = verdict(host(hv="xen", version="3.4.2"), host(hv="xen", version="4.0.1"))
    assert r["verdict"] == NOT_COMPATIBLE
    assert "3.4.2 -> 4.0.1" in rule(r, "hypervisor-version")["message"]
    mixed = verdict(host(hv="xen", version="4.0.1"), host())
    assert rule(mixed, "hypervisor-type")["status"] == "fail"


def test_qemu_only_migrates_forward() -> None:
    assert verdict(host(version="7.2.0"), host(version="8.1.0"))["verdict"] == COMPATIBLE
    r = verdict(host(version="8.1.0"), host(version="7.2.0"))
    assert r["verdict"] == NOT_COMPATIBLE and "older" in rule(r, "hypervisor-version")["message"]


def test_local_disk_vs_nfs() -> None:
    local = verdict(host(), host(), disk="/srv/vm/g.img")
    assert local["verdict"] == NOT_COMPATIBLE
    assert "/dev/sda1 (ext4)" in rule(local, "shared-storage")["message"]
    assert verdict(host(), host(), disk="/srv/vm/g.img",
                   block_migration=True)["verdict"] == COMPATIBLE
    other_filer = host(mounts=[{"mountpoint": "/var/lib/images", "fstype": "nfs4",
                                "source": "filer2:/export/images"}])
    r = verdict(host(), other_filer, disk="/var/lib/images/g.img")
    assert r["verdict"] == NOT_COMPATIBLE  # both NFS, but not the same export


def test_memory_and_hugepages() -> None:
    r = verdict(host(), host(available_mb=1000), memory_mb=4096)
    assert r["verdict"] == NOT_COMPATIBLE and rule(r, "memory-headroom")["status"] == "fail"
    r = verdict(host(), host(hugepages_free=100), memory_mb=1024, hugepages=True)
    assert rule(r, "hugepages")["status"] == "fail"  # 1024 MB needs 512 pages of 2 MiB
    r = verdict(host(), host(hugepages_free=600), memory_mb=1024, hugepages=True)
    assert rule(r, "hugepages")["status"] == "ok"
    r = verdict(host(), host(), machine="pc-q35-9.0")
    assert rule(r, "machine-type")["status"] == "fail"


def test_missing_facts_are_unknown_not_guessed() -> None:
    bare = {"schema_version": 1, "layers": [], "facts": {"cpu": {"vendor": "GenuineIntel"}}}
    r = verdict(bare, bare, memory_mb=512)
    assert r["verdict"] == COMPATIBLE
    assert {"cpu-flags", "cpu-family-model", "hypervisor-type", "memory-headroom"} <= set(
        r["unknown"])
    assert "facts.migration.cpu.flags" in r["missing_facts"]["source"]


def test_every_rule_cites_a_rationale_and_is_documented() -> None:
    doc = (Path(__file__).parent.parent / "docs/migrate-check.md").read_text()
    for r in RULES:
        assert len(r.rationale) > 40
        assert f"`{r.id}`" in doc


def _tree(root: Path, cpuinfo: str, mountinfo: str) -> Path:
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(cpuinfo)
    (root / "proc/meminfo").write_text(
        "MemTotal: 16000000 kB\nMemAvailable: 12000000 kB\nHugePages_Total: 0\n"
        "HugePages_Free: 0\nHugepagesize: 2048 kB\n")
    (root / "proc/self/mountinfo").write_text(mountinfo)
    return root


def _cpuinfo(vendor: str, family: int, model: int, flags: str) -> str:
    return "".join(
        f"processor\t: {i}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
        f"model name\t: fixture\nstepping\t: 1\nflags\t\t: {flags}\n\n" for i in range(2))


MI_NFS = ("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
          "40 22 0:50 / /var/lib/images rw - nfs4 filer:/export/images rw\n")
MI_LOCAL = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"


def test_cli_on_captured_trees(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _tree(tmp_path / "a", _cpuinfo("GenuineIntel", 6, 63, HASWELL), MI_NFS)
    b = _tree(tmp_path / "b", _cpuinfo("GenuineIntel", 6, 63, HASWELL), MI_NFS)
    c = _tree(tmp_path / "c", _cpuinfo("GenuineIntel", 6, 42, SANDY), MI_LOCAL)
    assert main(["migrate-check", str(a), str(b), "--disk", "/var/lib/images/g.img",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == COMPATIBLE
    assert rule(out, "shared-storage")["status"] == "ok"
    assert main(["migrate-check", str(a), str(c), "--disk", "/var/lib/images/g.img"]) == 1
    text = capsys.readouterr().out
    assert "NOT COMPATIBLE" in text and "avx2" in text and "/dev/sda1 (ext4)" in text


def test_cli_on_documents_and_errors(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src.json"
    src.write_text(json.dumps(host()))
    run_doc = tmp_path / "run.json"
    run_doc.write_text(json.dumps({"type": "virtbench.run", "schema_version": 1,
                                   "environment": {"virtualization": host(flags=SANDY,
                                                                          model=42)}}))
    assert main(["migrate-check", str(src), str(run_doc), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == COMPATIBLE_BASELINE and out["baseline"] == "x86-64-v2"
    assert main(["migrate-check", str(src), str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["migrate-check", str(src), str(bad)]) == 2
    assert main(["migrate-check", "local", "local", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == COMPATIBLE


def test_stored_documents_by_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Fleet hosts: detect reports stored as experiments labelled host=NAME."""
    from virtbench.results.model import Environment, ExperimentResult
    from virtbench.store import save_and_record

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    db = f"sqlite:///{tmp_path / 'index.db'}"
    for i, (name, report) in enumerate((("h1", host()),
                                        ("h2", host(vendor="AuthenticAMD", flags=EPYC)),
                                        ("h1", host(model=42, flags=SANDY)))):
        doc = ExperimentResult(experiment="detect", status="complete", labels={"host": name},
                               started=f"2026-11-22T00:00:0{i}Z",
                               environment=Environment(virtualization=report), summary=report)
        save_and_record(doc, db_url=db)
    assert main(["migrate-check", "host=h1", "host=h2", "--db", db, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert rule(out, "cpu-vendor")["status"] == "fail"
    # the newest h1 document (Sandy Bridge) is the one used
    assert "family 6 model 42" in rule(out, "cpu-family-model")["message"]
    assert main(["migrate-check", "host=nope", "host=h2", "--db", db]) == 2
