"""``virtbench migrate-check SOURCE TARGET``: can a guest live-migrate between two hosts?"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path
from typing import Any

from virtbench.cli._common import print_json
from virtbench.errors import UsageError
from virtbench.safeio import parse_json, path_kind, read_regular

NAME = "migrate-check"
HELP = "check whether a guest can live-migrate from one host to another, with reasons"
EXAMPLES = (
    'virtbench migrate-check here.json there.json',
    'virtbench migrate-check local local --disk guest.img --json',
)

EXIT_NOT_COMPATIBLE = 1


def register(p: argparse.ArgumentParser) -> None:
    for name in ("source", "target"):
        p.add_argument(name, metavar=name.upper(),
                       help="'local' (this host), a `virtbench detect --json` file, a snapshot "
                            "(tar.gz or directory), a run/experiment document, a stored run "
                            "id or a label such as host=web1 (fleet hosts)")
    p.add_argument("--disk", default=None, metavar="PATH",
                   help="the guest's disk image path (checked for shared storage)")
    p.add_argument("--guest-memory", type=int, default=None, metavar="MB",
                   help="the guest's memory (checked against the target's available memory)")
    p.add_argument("--hugepages", action="store_true",
                   help="the guest is backed by huge pages")
    p.add_argument("--machine", default=None, metavar="TYPE",
                   help="the guest's QEMU machine type, e.g. pc-i440fx-7.2")
    p.add_argument("--cpu-passthrough", action="store_true",
                   help="the guest runs with -cpu host (needs identical CPUs)")
    p.add_argument("--block-migration", action="store_true",
                   help="a local disk may be copied during the migration")
    p.add_argument("--db", default=None, metavar="URL", help="index database for run ids")
    p.add_argument("--json", action="store_true", help="print the verdict document on stdout")


def _detect_root(path: Path) -> dict[str, Any]:
    from virtbench.probes import detect
    from virtbench.probes.snapshot import opened_root

    try:
        with opened_root(path) as root:
            report: dict[str, Any] = detect(root).to_dict()
            return report
    except (FileNotFoundError, tarfile.TarError, OSError) as exc:
        raise UsageError(f"{path}: cannot analyse as a snapshot: {exc}") from None


def _from_document(doc: dict[str, Any], where: str) -> dict[str, Any]:
    if "layers" in doc and "facts" in doc:
        return doc  # a detect report
    env = doc.get("environment")
    if isinstance(env, dict):
        virt = env.get("virtualization")
        if isinstance(virt, dict) and "facts" in virt:
            return virt
        raise UsageError(f"{where}: the document carries no detect report "
                         "(environment.virtualization is empty): run `virtbench detect --json` "
                         "on that host instead")
    if "facts" in doc or "hypervisor" in doc:
        return doc  # a hand-written host description shaped like a detect report
    raise UsageError(f"{where}: not a detect report, snapshot or result document")


def load_host(ref: str, db: str | None = None) -> dict[str, Any]:
    """The detect report describing host ``ref`` (see ``register`` for what ``ref`` can be)."""
    if ref == "local":
        from virtbench.probes import detect

        report: dict[str, Any] = detect("/").to_dict()
        return report
    path = Path(ref).expanduser()
    kind = path_kind(path)
    if kind == "dir":
        return _detect_root(path)
    if kind == "file":
        if tarfile.is_tarfile(path):
            return _detect_root(path)
        doc = parse_json(read_regular(path), ref)
        if not isinstance(doc, dict):
            raise UsageError(f"{ref}: not a JSON object")
        return _from_document(doc, ref)
    if "/" in ref or ref.endswith((".json", ".gz", ".tgz")):
        raise UsageError(f"{ref}: no such file")
    from virtbench.cli.resolve import resolve_runs

    # a label (host=web1, as `virtbench fleet run -- detect` stores them) may name several
    # documents, oldest first: the newest that carries a detect report describes the host
    docs = resolve_runs([ref], db)
    for doc in reversed(docs):
        if doc.environment.virtualization is not None:
            return doc.environment.virtualization.to_dict()
    if not docs:
        raise UsageError(f"{ref!r}: no such file, run id or label")
    return _from_document(docs[-1].to_dict(), ref)


def run(args: argparse.Namespace) -> int:
    from virtbench.analysis.migration_check import (
        NOT_COMPATIBLE,
        GuestSpec,
        check,
        facts_from_detect,
    )

    if args.guest_memory is not None and args.guest_memory <= 0:
        raise UsageError("--guest-memory must be positive")
    source = facts_from_detect(load_host(args.source, args.db), args.source)
    target = facts_from_detect(load_host(args.target, args.db), args.target)
    guest = GuestSpec(disk=args.disk, memory_mb=args.guest_memory, hugepages=args.hugepages,
                      machine=args.machine, cpu_passthrough=args.cpu_passthrough,
                      block_migration=args.block_migration)
    result = check(source, target, guest)
    if args.json:
        print_json(result)
    else:
        print(render(result))
    return EXIT_NOT_COMPATIBLE if result["verdict"] == NOT_COMPATIBLE else 0


MARK = {"ok": "ok", "baseline": "BASELINE", "fail": "FAIL", "unknown": "unknown", "skip": "-"}


def render(result: dict[str, Any]) -> str:
    lines = [f"{result['source']} -> {result['target']}: {result['verdict'].upper()}"]
    if result.get("baseline"):
        lines.append(f"  CPU baseline that makes them compatible: {result['baseline']}")
    if result.get("missing_flags"):
        lines.append(f"  flags the source has and the target lacks: "
                     f"{', '.join(result['missing_flags'])}")
    lines.append("")
    from virtbench.table import Col, output_width, render

    term = output_width()
    text = render([Col(""), Col(""), Col("", wrap=True, min_width=24)],
                  [[MARK[r["status"]], r["rule"], r["message"]] for r in result["rules"]],
                  width=None if term is None else term - 2, rule=False)
    lines.extend("  " + ln for ln in text.splitlines()[1:])  # no header line
    missing = result.get("missing_facts", {})
    for side in ("source", "target"):
        if missing.get(side):
            lines.append(f"  note: {side} lacks {', '.join(missing[side])}")
    return "\n".join(lines)
