"""Hypothesis properties of the result-document loader (issue 12): whatever the bytes in a
result file, ``load_any`` returns a document or raises the project's ``UsageError`` (one
short line), nothing else; a document it accepts can be saved and read back unchanged.
Examples are bounded so the suite stays fast; ``bench/fuzz.py`` runs the big campaign."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virtbench.errors import UsageError
from virtbench.importers.unixbench import parse_file
from virtbench.results.model import ExperimentResult, RunResult, load_any
from virtbench.safeio import MAX_QUOTE, clip_message, parse_json

DATA = Path(__file__).resolve().parent / "data"
SEED_DOC = parse_file(DATA / "unixbench-centos6-xen-pv.txt").to_dict()
SEED_EXPERIMENT = ExperimentResult(experiment="postmark", status="complete",
                                   params={"copies": 2}, rows=[{"tps": 1.5}],
                                   summary={"tps": 1.5}).to_dict()

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

SCALARS = st.one_of(
    st.none(), st.booleans(), st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["../../x", "", "a" * 300, 1e-320, -0.0, 10**18]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node[:8]):
            out.extend(_paths(v, (*path, i)))
    return out


def _check_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "doc.json"
        path.write_bytes(data)
        try:
            doc = load_any(path)
        except UsageError as exc:
            text = str(exc)
            assert "\n" not in text and len(text) < 4 * MAX_QUOTE, text[:500]
            return
        # Accepted: finite numbers only, and it round-trips through save.
        saved = doc.save(Path(d) / "saved.json")
        again = load_any(saved)
        assert again.to_dict() == doc.to_dict()
        for p in _paths(doc.to_dict()):
            value: Any = doc.to_dict()
            for key in p:
                value = value[key]
            if isinstance(value, float):
                assert math.isfinite(value)


@SETTINGS
@given(st.data())
def test_a_document_with_any_leaf_replaced_loads_or_is_refused(data: st.DataObject) -> None:
    doc = json.loads(json.dumps(data.draw(st.sampled_from([SEED_DOC, SEED_EXPERIMENT]))))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        path = data.draw(st.sampled_from(paths))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON_VALUES)
    _check_file(json.dumps(doc, allow_nan=True).encode())


@SETTINGS
@given(JSON_VALUES)
def test_any_json_value_loads_or_is_refused(value: Any) -> None:
    _check_file(json.dumps(value, allow_nan=True).encode())


@SETTINGS
@given(st.binary(max_size=400), st.integers(0, 400))
def test_any_bytes_spliced_into_a_document_load_or_are_refused(junk: bytes, at: int) -> None:
    raw = json.dumps(SEED_DOC).encode()
    at = min(at, len(raw))
    _check_file(raw[:at] + junk + raw[at:])


@SETTINGS
@given(st.text(max_size=300))
def test_parse_json_raises_only_usage_errors(text: str) -> None:
    try:
        parse_json(text, "t.json")
    except UsageError as exc:
        assert str(exc).startswith("t.json: ")


@SETTINGS
@given(st.text(max_size=3000))
def test_messages_are_one_line_and_bounded(text: str) -> None:
    out = clip_message(text)
    assert "\n" not in out and "\r" not in out
    assert len(out) <= 3 * MAX_QUOTE + 40
    if len(text) <= MAX_QUOTE and text.isprintable():
        assert out == text


def test_the_seed_documents_themselves_load() -> None:
    # The properties above would pass vacuously if every input were refused.
    assert RunResult.model_validate(SEED_DOC).id == SEED_DOC["id"]
    assert ExperimentResult.model_validate(SEED_EXPERIMENT).experiment == "postmark"
