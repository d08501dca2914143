"""``virtbench build``: compile the workload programs now (``run`` does it on first use)."""

from __future__ import annotations

import argparse
import json
import sys

from virtbench.workloads.build import ensure_built
from virtbench.workloads.profiles import DEFAULT_PROFILE, PROFILES, get_profile

NAME = "build"
HELP = "compile the workload programs for a profile into the cache (run does it on first use)"
EXAMPLES = (
    'virtbench build',
    'virtbench build --profile unixbench-5.1.3 --json',
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        metavar="NAME",
        help=f"compiler profile: {', '.join(PROFILES)} (default: {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even when a cached build exists"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the build information as JSON on stdout"
    )


def _progress(message: str) -> None:
    """Silent with ``-q``."""
    from virtbench import console

    console.info(message)


def run(args: argparse.Namespace) -> int:
    profile = get_profile(args.profile)
    info = ensure_built(profile, force=args.force, progress=_progress)
    if args.json:
        sys.stdout.write(json.dumps(info.to_dict(), indent=2) + "\n")
        return 0
    rows = (
        ("profile", info.profile),
        ("compiler", f"{info.cc_version}  ({info.cc})"),
        ("flags", " ".join(info.cflags)),
        ("programs", str(info.bin_dir)),
        ("sources", f"sha256 {info.source_hash}"),
    )
    for key, value in rows:
        sys.stdout.write(f"{key:<10}{value}\n")
    return 0
