"""virtbench detect: what this server runs on, layer by layer, with evidence."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from virtbench.errors import UsageError

NAME = "detect"
HELP = "show what this system runs on (hypervisor, container), with evidence and advice"
EXAMPLES = (
    'virtbench detect',
    'virtbench detect --json',
)


_ASCII_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def _seconds(text: str) -> float:
    """An ASCII decimal number of seconds: ``float()`` alone would take '١٢' (Arabic-Indic
    digits), ' 5 ', '1_0', 'nan' and 'inf'."""
    if not _ASCII_NUMBER.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (digits 0-9 "
                                         "and one '.')")
    return float(text)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="analyse a captured tree (DIR/proc, DIR/sys, DIR/dmesg.txt, DIR/cpuid.txt) or a "
        "'virtbench snapshot' archive instead of the live system",
    )
    parser.add_argument(
        "--steal",
        metavar="SECONDS",
        type=_seconds,
        default=0.0,
        help="sample CPU steal time over this many seconds (live only; default: off)",
    )
    parser.add_argument(
        "--dir",
        metavar="DIR",
        help="the directory file tests will use (file system, device, scheduler, tmpfs check)",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON report only")


def run(args: argparse.Namespace) -> int:
    from virtbench.probes import detect
    from virtbench.probes.render import render

    if args.root is not None and not Path(args.root).exists():
        raise UsageError(f"--root {args.root}: no such directory or snapshot archive")
    if not 0.0 <= args.steal <= 60.0:
        raise UsageError("--steal must be between 0 and 60 seconds")
    if args.steal and args.root:
        raise UsageError("--steal samples the live system; it cannot be used with --root")
    if args.dir is not None and args.root is None and not Path(args.dir).is_dir():
        raise UsageError(f"--dir {args.dir}: not a directory")
    test_dir = str(Path(args.dir).resolve()) if args.dir and args.root is None else args.dir
    if args.root is None:
        report = detect("/", steal_sample_s=args.steal, test_dir=test_dir)
    else:
        import tarfile

        from virtbench.probes.snapshot import opened_root

        try:
            with opened_root(args.root) as root:
                _check_tree(args.root, root)
                report = detect(root, test_dir=test_dir)
        except (FileNotFoundError, tarfile.TarError) as exc:
            text = str(exc)
            prefix = f"{args.root}: "  # the error usually names the path already
            raise UsageError(f"--root {args.root}: {text.removeprefix(prefix)}") from None
        report.root = args.root
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(report))
    return 0


def _check_tree(name: str, root: Path) -> None:
    """A --root without any evidence file is a mistake (a wrong directory), not a bare-metal
    machine: say so instead of reporting 'bare metal' from nothing."""
    from virtbench.probes import _TREE_MARKERS, _tree_root

    tree = _tree_root(root)
    if tree.resolve() == Path("/"):
        return
    markers = (*_TREE_MARKERS, "var/log/dmesg", "var/log/kern.log", "devkvm.txt")
    if not any((tree / m).exists() for m in markers):
        raise UsageError(
            f"--root {name}: not a captured tree: none of {', '.join(markers)} in it "
            "(see `virtbench snapshot`)")
