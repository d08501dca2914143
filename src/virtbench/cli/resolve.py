"""Turn what a user typed (``RUN`` arguments) into result documents.

A reference is, tried in this order:

1. a path to an existing file: a virtbench JSON document, or a UnixBench text report
   (imported on the fly, not stored);
2. ``latest``: the most recently started run in the index;
3. ``key=value``: every indexed run with that label, oldest first;
4. a run id, or a prefix of exactly one run id;
5. ``fleet:<id>`` (or ``fleet:latest``): the latest document of every host of a fleet run
   (``virtbench fleet``), in inventory order.

Anything else is a ``UsageError`` that names the reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from virtbench.errors import UsageError
from virtbench.results.model import (
    DOCUMENT_TYPE,
    EXPERIMENT_TYPE,
    ExperimentResult,
    RunResult,
    _read_json,
    _validate,
)
from virtbench.safeio import clip

if TYPE_CHECKING:
    from virtbench.store.store import RunRow, Store

Document = RunResult | ExperimentResult


def _head(path: Path) -> bytes:
    """The first 4 KiB of ``path``; an unreadable or empty file is one clear error."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head.strip():
        raise UsageError(f"{path}: empty file (no report or result document in it)")
    return head


def looks_like_json(head: bytes) -> bool:
    """Whether a file that starts with ``head`` is JSON, judged by its structure and not by
    its first byte alone: a console log starting with a shell prompt (``[root@host ~]# ./Run``)
    starts with ``[`` too. A JSON document here is an object (``{`` then a key or ``}``) or a
    list of them (``[`` then ``{`` or ``]``)."""
    s = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    if s[:1] == b"{":
        nxt = s[1:].lstrip()[:1]
        return nxt in (b'"', b"}") or not nxt
    if s[:1] == b"[":
        nxt = s[1:].lstrip()[:1]
        return nxt in (b"{", b"]") or not nxt
    return False


def _load_json_all(path: Path) -> list[Document]:
    """The documents of a JSON file: one document, or a list of them (what `export`,
    `show --json` and `import --json` print for several runs). Errors name the file (and
    the list item)."""
    raw = _read_json(path)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise UsageError(f"{path}: an empty JSON list, no documents")
    docs: list[Document] = []
    for i, item in enumerate(items):
        where = f"{path}" if not isinstance(raw, list) else f"{path}[{i}]"
        kind = item.get("type") if isinstance(item, dict) else None
        cls: type[RunResult] | type[ExperimentResult]
        if kind == EXPERIMENT_TYPE:
            cls = ExperimentResult
        elif kind == DOCUMENT_TYPE:
            cls = RunResult
        else:
            raise UsageError(f"{where}: not a virtbench run or experiment document")
        try:
            docs.append(_validate(cls, item, Path(where)))
        except UsageError as exc:
            text = str(exc)
            raise UsageError(text if text.startswith(where) else f"{where}: {text}") from None
    return docs


def load_file(path: Path) -> Document:
    """A JSON document, or a UnixBench text report parsed in memory (exactly one report)."""
    if looks_like_json(_head(path)):
        docs = _load_json_all(path)
        if len(docs) != 1:
            raise UsageError(f"{path}: holds {len(docs)} documents; name one")
        return docs[0]
    from virtbench.importers.unixbench import parse_file

    with _report_numbers(path):
        return parse_file(path)


def load_file_all(path: Path) -> list[Document]:
    """Like ``load_file``, but a text file holding several UnixBench reports gives them all."""
    if looks_like_json(_head(path)):
        return _load_json_all(path)
    from virtbench.importers.unixbench import parse_file_all

    with _report_numbers(path):
        return list(parse_file_all(path))


@contextmanager
def _report_numbers(path: Path) -> Iterator[None]:
    """A report whose numbers the document model refuses (out of its sane ranges) is one
    clear line, not a pydantic traceback."""
    try:
        yield
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{clip(path)}: a number is out of range ({clip(where, 80)}: "
                         f"{clip(first['msg'])})") from None


def _is_file(ref: str) -> bool:
    try:
        return Path(ref).expanduser().is_file()
    except OSError:
        return False


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or ref.endswith((".json", ".txt", ".log")) or ref.startswith("~")


def resolve_rows(store: Store, ref: str, kind: str | None = None) -> list[RunRow]:
    """The indexed runs a (non-file) reference names."""
    if ref == "latest":
        row = store.latest(kind)
        if row is None:
            what = f"{kind} runs" if kind else "runs"
            raise UsageError(f"'latest': no {what} in the index yet ({store.display_url})")
        return [row]
    if "=" in ref:
        key, _, value = ref.partition("=")
        if not key:
            raise UsageError(f"{ref!r}: a label reference is key=value")
        rows = store.with_label(key, value)
        if kind is not None:
            rows = [r for r in rows if kind in (r.kind, r.experiment)]
        if not rows:
            raise UsageError(f"{ref!r}: no run has the label {key}={value}")
        return rows
    row = store.get(ref)
    if row is not None:
        return [row]
    matches = store.find_prefix(ref) if ref else []
    if len(matches) == 1:
        return matches
    if len(matches) > 1:
        ids = ", ".join(m.id for m in matches[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise UsageError(f"{ref!r} is ambiguous: it starts {ids}{more}; type more of the id")
    raise UsageError(
        f"{ref!r}: not a file, a run id, 'latest' or a label key=value "
        "(see `virtbench runs`)"
    )


FLEET_PREFIX = "fleet:"


def is_fleet_ref(ref: str) -> bool:
    return ref.startswith(FLEET_PREFIX)


def _fleet(ref: str, db_url: str | None, kind: str | None) -> list[Document]:
    from virtbench.fleet.views import fleet_documents

    docs = fleet_documents(ref[len(FLEET_PREFIX):], db_url)
    if kind == "suite":
        docs = [d for d in docs if isinstance(d, RunResult)]
    elif kind is not None:
        docs = [d for d in docs if isinstance(d, ExperimentResult)
                and kind in ("experiment", d.experiment)]
    if not docs:
        what = "suite runs" if kind == "suite" else f"{kind} results"
        raise UsageError(f"{ref!r}: the fleet run has no {what} (it ran another command?)")
    return docs


def resolve_runs(refs: Sequence[str], db_url: str | None = None,
                 *, kind: str | None = None) -> list[Document]:
    """The documents ``refs`` name, in the order given (a label expands in place).

    ``kind`` (``suite``, ``experiment`` or an experiment name) restricts ``latest`` and
    labels to runs of that kind; files and ids are returned whatever their kind.
    The index is opened only when a reference is not a file.
    """
    from virtbench.store.store import load_recorded, open_store

    out: list[Document] = []
    store: Store | None = None
    for ref in refs:
        if ref.startswith(FLEET_PREFIX):
            out.extend(_fleet(ref, db_url, kind))
            continue
        path = Path(ref).expanduser()
        try:
            is_file, is_dir = path.is_file(), path.is_dir()
        except OSError:  # a name too long for a path (ENAMETOOLONG): not a file
            is_file = is_dir = False
        if is_file:
            out.extend(load_file_all(path))
            continue
        if is_dir:
            raise UsageError(f"{ref}: is a directory, not a result file")
        if _looks_like_path(ref) and "=" not in ref:
            raise UsageError(f"{ref}: no such file")
        if store is None:
            store = open_store(db_url)
        out.extend(load_recorded(row) for row in resolve_rows(store, ref, kind))
    return out


def resolve_one(ref: str, db_url: str | None = None, *, kind: str | None = None) -> Document:
    docs = resolve_runs([ref], db_url, kind=kind)
    if len(docs) != 1:
        raise UsageError(f"{ref!r} names {len(docs)} runs; name one")
    return docs[0]


# ---- for explain and report ----------------------------------------------------------------
def resolve(refs: Sequence[str], db_url: str | None = None) -> list[Document]:
    """The documents ``refs`` name, in order (a label expands in place)."""
    return resolve_runs(list(refs), db_url)


def resolve_run(ref: str, db_url: str | None = None, *, what: str = "RUN") -> RunResult:
    """Exactly one suite run (not an experiment)."""
    docs = resolve([ref], db_url)
    if len(docs) != 1:
        hint = ""
        if _is_file(ref):  # a text file with several reports: each is a run once imported
            hint = (f" (the file holds {len(docs)} reports: `virtbench import {ref}` prints a "
                    "run id for each; explain one of them)")
        raise UsageError(f"{what} {ref!r} names {len(docs)} runs; name exactly one{hint}")
    doc = docs[0]
    if not isinstance(doc, RunResult):
        raise UsageError(
            f"{what} {ref!r} is a {doc.experiment} experiment; explain works on suite runs "
            "(use `virtbench report` to draw experiments)"
        )
    return doc
