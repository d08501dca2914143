"""The typed environment: the detect report inside ``Environment`` and the migration of
version-1 documents, whose report was a free-form mapping that may hold anything."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from virtbench.analysis import explain as ex
from virtbench.probes.model import DetectReport, KeyFacts, Layer
from virtbench.results import model
from virtbench.results.salvage import detect_report

DATA = Path(__file__).resolve().parent / "data"
V1_RUN = DATA / "documents" / "run-v1.json"
V1_HOSTILE = DATA / "documents" / "run-v1-hostile.json"


def _raw(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def test_stored_version_1_run_migrates_whole(tmp_path: Path) -> None:
    raw = _raw(V1_RUN)
    assert raw["schema_version"] == 1 and model.SCHEMA_VERSION >= 2
    virt = raw["environment"]["virtualization"]
    run = model.load_document(V1_RUN)
    report = run.environment.virtualization
    assert isinstance(report, DetectReport)
    # nothing was dropped: the typed report holds exactly the stored mapping
    assert asdict(report) == virt
    assert run.notes == raw["notes"]
    assert run.environment.virtualization_error is None
    assert run.environment.virtualization_summary() == virt["summary"]
    assert run.environment.usable_cpus() == virt["facts"]["cpu"]["usable_cpus"]
    facts = run.environment.key_facts()
    assert facts.clocksource == virt["facts"]["clocksource"]["current"]
    assert facts.steal_percent == virt["facts"]["steal"]["percent"]
    assert [x.name for x in report.layers] == [x["name"] for x in virt["layers"]]
    # the rest of the document is as stored, and the migrated one round-trips as the
    # current version
    assert run.sections[0].tests[0].score == raw["sections"][0]["tests"][0]["score"]
    again = model.load_document(run.save(tmp_path / "v2.json"))
    assert again == run
    assert json.loads((tmp_path / "v2.json").read_text())["schema_version"] == \
        model.SCHEMA_VERSION


@pytest.mark.parametrize("path", sorted((DATA / "experiments").glob("*.json")),
                         ids=lambda p: p.stem)
def test_stored_version_1_experiments_keep_their_reports(path: Path) -> None:
    raw = _raw(path)
    assert raw["schema_version"] == 1
    doc = model.load_any(path)
    assert doc.environment.virtualization is not None
    assert asdict(doc.environment.virtualization) == raw["environment"]["virtualization"]
    assert doc.notes == raw["notes"]


def test_hostile_version_1_report_keeps_what_is_valid_and_says_what_was_dropped(
        tmp_path: Path) -> None:
    raw = _raw(V1_HOSTILE)
    stored = raw["environment"]["virtualization"]
    run = model.load_document(V1_HOSTILE)
    report = run.environment.virtualization
    assert report is not None
    # the one well-formed layer survives, without its bad evidence line and unknown key
    assert [x.name for x in report.layers] == [stored["layers"][4]["name"]]
    assert report.layers[0].evidence == stored["layers"][4]["evidence"][:2]
    assert report.advice == ["Keep this advice line."]
    assert report.summary == "" and report.duration_s == 0.0
    # the valid facts are kept, the invalid sections read as unknown
    assert report.facts["cpu"] == stored["facts"]["cpu"]
    facts = report.key_facts()
    assert facts.usable_cpus == stored["facts"]["cpu"]["usable_cpus"]
    assert facts.steal_percent is None and facts.clocksource is None
    assert report.headline() == stored["layers"][4]["name"] + " (" + \
        stored["layers"][4]["variant"] + ")"
    # one note names every dropped part
    (note,) = [n for n in run.notes if n.startswith("schema 1 -> 2")]
    for part in ("layers[0]", "layers[1]", "layers[2]", "layers[3] (confidence:",
                 "layers[5] (name: Field required)", "layers[4].evidence[2]",
                 "layers[4].headline", "summary", "advice[1]", "advice[2]", "headline (",
                 "technology", "duration_s"):
        assert f"environment.virtualization.{part}" in note, part
    # and the migrated document saves and loads again as version 2, nothing more dropped
    again = model.load_document(run.save(tmp_path / "v2.json"))
    assert again == run


JUNK: list[Any] = [
    "kvm", 42, [], True, {"layers": "garbage", "facts": None}, {"summary": None},
    {"layers": [None, 3, {"kind": "container"}]}, {"facts": {"steal": math.nan}},
    {"layers": [{"kind": "hypervisor", "name": "kvm", "confidence": math.inf}]},
    {"facts": {"a" * 10_000: "\x00\x1b[2J"}, "x" * 5000: 1},
    {"error": ["not", "a", "string"]}, {"error": "detection failed: boom", "layers": 3},
]


@pytest.mark.parametrize("junk", JUNK, ids=lambda j: repr(j)[:30])
def test_any_junk_in_a_version_1_report_loads_saves_and_explains(junk: Any,
                                                                 tmp_path: Path) -> None:
    doc = _raw(V1_RUN)
    doc["environment"]["virtualization"] = junk
    run = model.RunResult.from_dict(doc)  # in memory: files with NaN are refused on read
    assert model.load_document(run.save(tmp_path / "saved.json")) == run
    ex.explain(run)
    for note in run.notes:
        assert len(note) < 2000 and note.isprintable()


def test_detection_error_of_version_1_moves_to_its_own_field() -> None:
    doc = _raw(V1_RUN)
    doc["environment"]["virtualization"] = {"error": "detection failed: boom"}
    env = model.RunResult.from_dict(doc).environment
    assert env.virtualization is None
    assert env.virtualization_error == "detection failed: boom"
    assert env.virtualization_summary() is None
    assert env.virtualization_line() == "detection failed: boom"
    assert model.Environment().virtualization_line() == "not detected"


def test_version_2_documents_are_validated_strictly(tmp_path: Path) -> None:
    run = model.load_document(V1_RUN)
    doc = run.to_dict()
    doc["environment"]["virtualization"]["layers"][0]["confidence"] = "high"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    from virtbench.errors import UsageError

    with pytest.raises(UsageError, match=r"environment\.virtualization\.layers\.0\.confidence"):
        model.load_document(path)
    env = model.Environment()
    with pytest.raises(ValidationError):
        env.virtualization = {"layers": [{"kind": 1}]}  # type: ignore[assignment]


def test_summaries_of_a_report() -> None:
    report = DetectReport(
        layers=[Layer(kind="hypervisor", name="xen", variant="pv", confidence=0.9),
                Layer(kind="hypervisor", name="qemu-tcg", variant="tcg", confidence=0.8),
                Layer(kind="container", name="docker", variant="markers-only", confidence=0.5)],
        facts={"cpu": {"usable_cpus": 1.5, "smt": {"active": "yes"}},
               "mitigations": {"vulnerabilities": {"meltdown": "Mitigation: PTI"}},
               "devices": {"disk": {"state": "emulated", "emulated": ["ata_piix", 3]}}})
    assert report.headline() == "xen (pv) > qemu-tcg (tcg) > docker (markers-only)"
    assert report.group_key() == "xen(pv) > qemu-tcg(tcg) > docker"
    assert report.inner_hypervisor is not None and report.inner_hypervisor.name == "qemu-tcg"
    assert report.emulated_cpu()
    facts = report.key_facts()
    assert facts == KeyFacts(usable_cpus=1.5, meltdown="Mitigation: PTI", disk="emulated",
                             disk_emulated=("ata_piix",))
    assert facts.pti is True and facts.smt_active is None  # "yes" is not a boolean
    assert DetectReport(summary="as recorded").headline() == "as recorded"
    assert DetectReport().headline() is None and DetectReport().group_key() is None


def test_salvage_caps_what_it_reports() -> None:
    report, error, dropped = detect_report({"advice": list(range(100))}, "v")
    assert report is None and error is None
    assert len(dropped) == 24 and dropped[-1].startswith("... and ")


def test_fleet_wraps_a_hostile_detect_report() -> None:
    from virtbench.fleet.results import wrap_report
    from virtbench.fleet.state import FleetState

    state = FleetState(id="f1", command=["detect"], inventory="hosts.ini")
    raw = dict(_raw(V1_HOSTILE)["environment"]["virtualization"], hostname="web1")
    doc = wrap_report(state, raw)
    assert doc.environment.hostname == "web1"
    assert doc.environment.virtualization is not None
    assert len(doc.environment.virtualization.layers) == 1
    assert doc.notes and "detect report.layers[0]" in doc.notes[0]


def test_collected_environment_carries_a_typed_report() -> None:
    from virtbench.results.environment import collect

    env = collect()
    assert isinstance(env.virtualization, DetectReport) or env.virtualization_error
    if env.virtualization is not None:
        assert env.virtualization_summary() == env.virtualization.summary
        assert env.usable_cpus() is not None


def test_python_api_example_of_detect_docs_runs() -> None:
    """The ```python block of docs/detect.md (the summaries included) runs as written."""
    import re

    page = (Path(__file__).resolve().parent.parent / "docs" / "detect.md").read_text()
    (block,) = re.findall(r"^```python\n(.*?)^```", page, re.M | re.S)
    scope: dict[str, Any] = {}
    exec(compile(block, "docs/detect.md", "exec"), scope)  # our own docs
    report = scope["report"]
    assert isinstance(report, DetectReport)
    assert report.headline() and report.group_key()
    assert scope["DetectReport"].from_dict(scope["doc"]) == report
