from __future__ import annotations

import json
from pathlib import Path

import pytest

from virtbench.errors import UsageError
from virtbench.results import model


def _sample_run() -> model.RunResult:
    run = model.RunResult(profile="unixbench-6", mode="standard")
    run.environment.hostname = "h1"
    run.environment.cpu_count = 2
    t = model.TestResult(
        test="pipe",
        name="Pipe Throughput",
        unit="lps",
        copies=1,
        duration=10.0,
        passes=[
            model.PassResult(
                score=100.0, elapsed=10.0, copies=[model.CopyResult(count=1000.0, elapsed=10.0)]
            )
        ],
        score=100.0,
        samples=1,
        baseline=12440.0,
        index=0.08,
        ci=model.ConfidenceInterval(low=90.0, high=110.0),
    )
    run.sections.append(model.Section(copies=1, tests=[t]))
    return run


def test_round_trip_through_json(tmp_path: Path) -> None:
    run = _sample_run()
    path = run.save(tmp_path / "r.json")
    back = model.load_document(path)
    assert back == run
    assert back.sections[0].tests[0].ci is not None
    assert back.sections[0].tests[0].ci.half_width_rel == pytest.approx(0.1)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == model.SCHEMA_VERSION
    assert doc["type"] == "virtbench.run"


def test_newer_schema_refused(tmp_path: Path) -> None:
    doc = _sample_run().to_dict()
    doc["schema_version"] = model.SCHEMA_VERSION + 1
    p = tmp_path / "new.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="newer"):
        model.load_document(p)


def test_invalid_documents_give_one_line_errors(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(UsageError, match="not JSON"):
        model.load_document(p)
    doc = _sample_run().to_dict()
    doc["sections"][0]["tests"][0]["copies"] = "many"
    p.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=r"sections\.0\.tests\.0\.copies"):
        model.load_document(p)
    with pytest.raises(UsageError, match="no such file"):
        model.load_document(tmp_path / "missing.json")


def test_schema_lists_every_field() -> None:
    schema = model.json_schema()
    assert "environment" in schema["properties"]
    assert "TestResult" in schema["$defs"]


def test_experiment_document_round_trip(tmp_path: Path) -> None:
    exp = model.ExperimentResult(
        experiment="postmark", params={"files": 500}, rows=[{"condition": "solo", "seconds": 1.5}]
    )
    back = model.load_any(exp.save(tmp_path / "e.json"))
    assert isinstance(back, model.ExperimentResult)
    assert back.rows[0]["seconds"] == 1.5
    run_path = _sample_run().save(tmp_path / "r.json")
    assert isinstance(model.load_any(run_path), model.RunResult)


def test_environment_collects_real_host_facts() -> None:
    from virtbench.results.environment import collect

    env = collect(virtualization=False)
    assert env.kernel and env.kernel == __import__("os").uname().release
    assert env.cpu_count is not None and env.cpu_count >= 1
    assert env.cpus_usable is not None and 1 <= env.cpus_usable <= env.cpu_count
    assert env.memory_bytes is not None and env.memory_bytes > 1 << 20


def test_published_schema_is_current() -> None:
    from conftest import ROOT

    published = json.loads((ROOT / "docs" / "schema.json").read_text())
    assert published["run"] == model.json_schema(), "regenerate docs/schema.json"
    assert published["experiment"] == model.ExperimentResult.model_json_schema()
