"""Documents and a running dashboard for the ``virtbench serve`` tests.

The documents are the test suite's own: the UnixBench-shaped runs of ``unixbench_runs``
(published figures), the experiment documents under ``tests/data/experiments`` and
``tests/data/experiments-v3`` (real outputs), and a real ``virtbench detect`` report shape;
varied in id, host, label, kernel, virtualization and date so that every page has something
to show.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from unixbench_runs import REFERENCE_SCORES, make_section
from virtbench.results.model import (
    ConfidenceInterval,
    Environment,
    ExperimentResult,
    PassResult,
    RunResult,
)
from virtbench.store import dispose_engines, open_store

DATA = Path(__file__).resolve().parent / "data"


def detect_report(name: str, variant: str | None = None) -> dict[str, Any] | None:
    """A detect report in ``virtbench detect --json``'s shape (one hypervisor layer), or the
    bare-metal one for ``name == 'bare'``."""
    if name == "bare":
        return {"schema_version": 1, "summary": "bare metal", "layers": [], "advice": []}
    layer = {"kind": "hypervisor", "name": name, "variant": variant, "confidence": 0.99,
             "evidence": [f"cpuid: leaf 0x40000000 signature of {name}"],
             "details": {"disk": "pv", "net": "pv"}}
    summary = f"{name} ({variant})" if variant else name
    return {"schema_version": 1, "summary": summary, "layers": [layer],
            "advice": [f"{name}: use paravirtual devices"]}


def suite_run(run_id: str, *, host: str, started: str, factor: float = 1.0,
              kernel: str = "6.1.0-13-amd64", virt: dict[str, Any] | None = None,
              labels: dict[str, str] | None = None, profile: str = "unixbench-6",
              passes: bool = True, cpu: str = "AMD EPYC 7B13") -> RunResult:
    """A 1- and 2-copy suite run: the reference scores times ``factor``, with pass scores
    (a deterministic few-% spread) and confidence intervals, as ``virtbench run`` writes."""
    sections = [make_section(c, scores={t: v * factor for t, v in s.items()})
                for c, s in REFERENCE_SCORES.items()]
    for section in sections:
        for n, t in enumerate(section.tests):
            assert t.score is not None
            if passes:
                t.passes = [PassResult(score=t.score * (1 + 0.01 * (((i * 7 + n) % 9) - 4)),
                                       elapsed=10.0) for i in range(6)]
                t.samples = 4
                t.ci = ConfidenceInterval(low=t.score * 0.985, high=t.score * 1.015)
    env = Environment(hostname=host, cpu_count=2, cpus_usable=2, cpu_model=cpu,
                      kernel=kernel, os="GNU/Linux -- Debian GNU/Linux 12 (bookworm)",
                      virtualization=virt, tool_version="0.1.0")
    run = RunResult(id=run_id, profile=profile, status="complete", sections=sections,
                    environment=env, source="native", started=started, finished=started,
                    labels=labels or {})
    return run


def experiment(name: str, run_id: str, started: str, host: str = "vm",
               directory: str = "experiments") -> ExperimentResult:
    raw = json.loads((DATA / directory / f"{name}.json").read_text(encoding="utf-8"))
    doc = ExperimentResult.from_dict(raw)
    doc.id = run_id
    doc.started = started
    doc.environment.hostname = host
    return doc


def documents() -> list[RunResult | ExperimentResult]:
    kvm = detect_report("kvm", "qemu")
    xen = detect_report("xen", "hvm")
    docs: list[RunResult | ExperimentResult] = []
    # web1: six runs; the kernel changes at the 3rd, the hypervisor at the 5th (a regression)
    for i, (kernel, virt, factor) in enumerate([
            ("6.1.0-13-amd64", kvm, 1.00), ("6.1.0-13-amd64", kvm, 1.01),
            ("6.5.0-1-amd64", kvm, 1.02), ("6.5.0-1-amd64", kvm, 0.99),
            ("6.5.0-1-amd64", xen, 0.70), ("6.5.0-1-amd64", xen, 0.71)]):
        docs.append(suite_run(f"web1run{i}", host="web1", started=f"2026-11-0{i + 1}T10:00:00Z",
                              factor=factor, kernel=kernel, virt=copy.deepcopy(virt),
                              labels={"env": "prod", "name": f"web1-{i}"}))
    docs.append(suite_run("db1run0", host="db1", started="2026-11-03T12:00:00Z", factor=1.3,
                          virt=detect_report("bare"), labels={"env": "staging"},
                          cpu="Intel Xeon E5-2683 v3"))
    # a fleet run of four hosts, one slow (an outlier)
    for n, factor in enumerate((1.0, 1.01, 0.99, 0.5)):
        host = f"node{n}"
        docs.append(suite_run(f"fleetrun{n}", host=host, started=f"2026-11-10T0{n}:00:00Z",
                              factor=factor, virt=copy.deepcopy(kvm), passes=False,
                              labels={"fleet": "20261110-000000-ab12", "host": host,
                                      "groups": "web"}))
    # tune and migrate: schema version 3 documents (tests/data/experiments-v3/README.md)
    for n, name in enumerate(("tune", "migrate")):
        docs.append(experiment(name, f"exp{name}", f"2026-11-1{n + 5}T08:00:00Z",
                               directory="experiments-v3"))
    for n, name in enumerate(("consolidate", "cap", "postmark", "seqread")):
        docs.append(experiment(name, f"exp{name}", f"2026-11-2{n}T08:00:00Z"))
    return docs


def fill_store(url: str, directory: Path,
               docs: list[RunResult | ExperimentResult] | None = None) -> list[str]:
    """Save ``docs`` (default: ``documents()``) under ``directory`` and index them at
    ``url``; their ids."""
    directory.mkdir(parents=True, exist_ok=True)
    store = open_store(url)
    items = []
    for doc in docs if docs is not None else documents():
        path = directory / f"{doc.id}.json"
        doc.save(path)
        items.append((doc, path))
    store.record_many(items)
    return [d.id for d, _ in items]


@contextmanager
def running_server(app: Any, root_path: str = "") -> Iterator[str]:
    """``app`` under uvicorn on an ephemeral loopback port, in a thread; always stopped."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False,
                                           lifespan="off", root_path=root_path))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60  # generous: a busy machine starts it slowly
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[str]:
    """A store filled with ``documents()``: SQLite, then a real PostgreSQL (tests/pgserver.py;
    conftest.py provides its ``postgres_url`` fixture)."""
    base = tmp_path_factory.mktemp(f"serve-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{base / 'vb.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        open_store(url, check=False).drop_all()
        dispose_engines()
    fill_store(url, base / "docs")
    yield url
    dispose_engines()


@pytest.fixture(scope="module")
def server(db: str) -> Iterator[str]:
    """The dashboard over ``db``, read-only, on an ephemeral loopback port."""
    from virtbench.serve.app import ServeConfig, create_app

    with running_server(create_app(ServeConfig(db_url=db))) as url:
        yield url
