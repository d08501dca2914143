"""``virtbench import FILE...``: bring UnixBench text reports and virtbench JSON documents
into the store (docs/import.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from virtbench.cli._common import (
    add_db_option,
    add_label_option,
    info,
    parse_labels,
    print_json,
)
from virtbench.cli.resolve import Document, load_file_all
from virtbench.errors import UsageError
from virtbench.results.model import RunResult, load_any
from virtbench.safeio import atomic_write, path_kind, read_regular

NAME = "import"
HELP = "import UnixBench text reports or virtbench JSON documents into the store"
EXAMPLES = (
    'virtbench import unixbench-report.txt --label env=xen-pv',
    'virtbench import other-host/*.json',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="UnixBench report (5.1.x or 6.0 text) or virtbench JSON document")
    add_label_option(parser, "label every imported run (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="parse and check only; store nothing")
    parser.add_argument("--json", action="store_true",
                        help="print the imported documents as a JSON list on stdout")
    add_db_option(parser)


def read_documents(files: list[str], labels: dict[str, str]) -> list[tuple[Document, Path]]:
    """Parse every file first: one bad file means nothing is imported."""
    docs: list[tuple[Document, Path]] = []
    seen: dict[str, Path] = {}
    for name in files:
        path = Path(name).expanduser()
        kind = path_kind(path)
        if kind == "dir":
            raise UsageError(f"{name}: is a directory, not a report or result file")
        if kind is None:
            raise UsageError(f"{name}: no such file")
        if kind != "file":
            raise UsageError(f"{name}: not a regular file")
        for doc in load_file_all(path):
            if isinstance(doc, RunResult) and doc.source == "native":
                doc.source = "imported-virtbench"
                doc.notes.append(f"imported from {path.name}")
            doc.labels.update(labels)
            if doc.id in seen:
                info(f"{path}: same run as {seen[doc.id]} (id {doc.id}); imported once")
                continue
            seen[doc.id] = path
            docs.append((doc, path))
    return docs


def import_documents(docs: list[tuple[Document, Path]], db_url: str | None) -> list[Path]:
    """Write the master files and index them all in one transaction; on failure, remove the
    master files this import created and re-raise.

    Read-modify-write of master files (labels merged) and the index happen under the store
    lock: without it concurrent re-imports lose labels and the index disagrees with the
    files (docs/reliability.md)."""
    from virtbench.store import master_path, open_store
    from virtbench.store.lock import store_lock

    store = open_store(db_url)
    created: list[Path] = []
    previous: dict[Path, bytes] = {}  # re-imported runs: their master files as they were
    written: list[tuple[Document, Path]] = []
    with store_lock():
        try:
            for doc, _src in docs:
                target = master_path(doc)
                if target.exists():
                    previous[target] = read_regular(target)
                    # Importing again keeps the labels given the first time.
                    try:
                        old = load_any(target)
                        doc.labels = {**old.labels, **doc.labels}
                    except UsageError:
                        pass
                else:
                    created.append(target)
                doc.save(target)
                written.append((doc, target))
            store.record_many(written)
        except BaseException:
            for p in created:
                p.unlink(missing_ok=True)
            for p, data in previous.items():
                atomic_write(p, data)
            raise
    return [p for _, p in written]


def _summary(doc: Document) -> str:
    if not isinstance(doc, RunResult):
        return f"experiment {doc.experiment}"
    parts = []
    for s in doc.sections:
        score = f"{s.index_score:.1f}" if s.index_score is not None else "partial"
        parts.append(f"{s.copies} cop{'y' if s.copies == 1 else 'ies'}: {score}")
    return f"{doc.profile}, {doc.environment.hostname or '?'}, " + "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    labels = parse_labels(args.label)
    docs = read_documents(args.files, labels)
    paths = [p for _, p in docs] if args.dry_run else import_documents(docs, args.db)
    if args.json:
        print_json([doc.to_dict() for doc, _ in docs])
    for (doc, src), dest in zip(docs, paths, strict=True):
        verb = "checked" if args.dry_run else "imported"
        line = f"{verb} {src} -> {doc.id} ({_summary(doc)})"
        if args.json:
            info(line)
        else:
            print(line)
        for note in doc.notes:
            if "MISMATCH" in note or "differs" in note or "not understood" in note:
                info(f"{doc.id}: note: {note}")
        if not args.dry_run and not args.json:
            print(f"  saved {dest}")
    return 0
