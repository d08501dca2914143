"""virtbench snapshot: capture the evidence files detect reads into OUT.tar.gz (no secrets)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from virtbench.errors import UsageError

NAME = "snapshot"
HELP = "capture the evidence detect reads (proc, sys, kernel log, CPUID) into a tar.gz"
EXAMPLES = (
    'virtbench snapshot host.tar.gz',
    'virtbench detect --dir host.tar.gz',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT.tar.gz", help="archive to write")
    parser.add_argument(
        "--include-hostname",
        action="store_true",
        help="keep the hostname (by default it is replaced by <hostname> everywhere)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def run(args: argparse.Namespace) -> int:
    from virtbench.probes.snapshot import capture

    out = Path(args.out)
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise UsageError(f"{args.out}: the snapshot must be a .tar.gz (or .tgz) file")
    if out.exists() and not args.force:
        raise UsageError(f"{args.out} exists (use --force to overwrite)")
    if out.exists() and out.is_dir():
        raise UsageError(f"{args.out} is a directory")
    if not out.parent.is_dir():
        raise UsageError(f"{args.out}: directory {out.parent} does not exist")
    try:
        manifest = capture(out, include_hostname=args.include_hostname)
    except OSError as exc:
        raise UsageError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    if args.json:
        json.dump({"path": str(out), **manifest}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"wrote {out}: {manifest['files']} files\n")
        for u in manifest["unreadable"]:
            sys.stderr.write(f"virtbench: not captured: {u}\n")
        sys.stdout.write(f"analyse it with: virtbench detect --root {out}\n")
    return 0
