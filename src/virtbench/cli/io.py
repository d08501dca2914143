"""``virtbench io postmark`` and ``virtbench io seqread``: file-system workloads on the host."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from virtbench.errors import UsageError
from virtbench.experiments import postmark, seqread
from virtbench.experiments.common import progress
from virtbench.results.model import ExperimentResult
from virtbench.units import parse_size

NAME = "io"
HELP = "I/O experiments: Postmark small-file transactions, sequential read of a large file"


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _bytes(text: str) -> int:
    try:
        return parse_size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="io_command", metavar="EXPERIMENT",
                                parser_class=type(parser))

    pm = sub.add_parser("postmark", help="Postmark 1.5 small-file transactions",
                        description="Postmark 1.5 small-file transactions (C, seeded, "
                        "reproducible). Defaults: Postmark 1.5's, with 1000 files and 20000 "
                        "transactions; --preset postmark gives 1.5's own 500/500, --preset "
                        "paper 30000 files of 1..100000 bytes.")
    pm.add_argument("--preset", choices=sorted(postmark.PRESETS), default="default",
                    help="starting settings; the options below override them")
    pm.add_argument("--files", type=_int, help="initial pool of files (default 1000)")
    pm.add_argument("--size", metavar="MIN:MAX",
                    help="file sizes in bytes, uniform in [MIN, MAX) (default 500:10000)")
    pm.add_argument("--transactions", type=_int, help="transactions (default 20000)")
    pm.add_argument("--subdirs", type=_int, help="spread files over N subdirectories (0)")
    pm.add_argument("--read-block", type=_bytes, help="read block size in bytes (512)")
    pm.add_argument("--write-block", type=_bytes, help="write block size in bytes (512)")
    pm.add_argument("--bias-read", type=_int,
                    help="chance out of 10 of read over append; -1 disables (5)")
    pm.add_argument("--bias-create", type=_int,
                    help="chance out of 10 of create over delete; -1 disables (5)")
    pm.add_argument("--unbuffered", action="store_true",
                    help="use read(2)/write(2) instead of C stdio buffered I/O")
    pm.add_argument("--seed", type=_int, help="random seed (42); same seed, same operations")
    pm.add_argument("--dir", type=Path, help="where the files go (default: the temp dir)")
    pm.add_argument("--repeat", type=_int, default=1, help="runs (default 1)")
    pm.add_argument("--json", action="store_true", help="print the result document")
    pm.set_defaults(_io=_postmark)

    sr = sub.add_parser("seqread", help="sequential read of a large file, page cache out",
                        description="Write a file (default 2x RAM, capped by free space "
                        "minus a margin), drop it from the page cache, time one sequential "
                        "read.")
    sr.add_argument("--size", type=_bytes,
                    help="file size (bytes, or with k/m/g); default 2x RAM capped by free space")
    sr.add_argument("--block", type=_bytes, default=seqread.MiB,
                    help="read/write size (default 1m)")
    sr.add_argument("--cache", choices=seqread.CACHE_METHODS, default="auto",
                    help="how to keep the page cache out (default auto: drop when root, "
                    "else O_DIRECT)")
    sr.add_argument("--dir", type=Path, help="where the file goes (default: the temp dir)")
    sr.add_argument("--repeat", type=_int, default=1, help="runs (default 1)")
    sr.add_argument("--json", action="store_true", help="print the result document")
    sr.set_defaults(_io=_seqread)


def run(args: argparse.Namespace) -> int:
    fn = getattr(args, "_io", None)
    if fn is None:
        raise UsageError("which I/O experiment? `virtbench io postmark` or `virtbench io "
                         "seqread`")
    rc: int = fn(args)
    return rc


def _postmark_params(args: argparse.Namespace) -> postmark.PostmarkParams:
    size_min = size_max = None
    if args.size is not None:
        size_min, size_max = postmark.parse_size_range(args.size)
    params = postmark.with_overrides(
        postmark.PRESETS[args.preset], files=args.files, size_min=size_min, size_max=size_max,
        transactions=args.transactions, subdirs=args.subdirs, read_block=args.read_block,
        write_block=args.write_block, bias_read=args.bias_read,
        bias_create=args.bias_create, seed=args.seed,
        buffered=False if args.unbuffered else None)
    params.validate()
    return params


def _postmark(args: argparse.Namespace) -> int:
    params = _postmark_params(args)
    progress(f"postmark: {params.files} files of {params.size_min}..{params.size_max - 1} "
             f"bytes, {params.transactions} transactions, seed {params.seed}")

    def on_run(i: int, r: postmark.PostmarkResult) -> None:
        progress(f"postmark run {i}/{args.repeat}: {r.seconds_total:.2f} s, "
                 f"{r.transactions_per_second:.0f} transactions/s")

    doc = postmark.run_experiment(params, args.dir, args.repeat, on_run=on_run)
    _emit(doc, args.json, _postmark_table)
    return 0


def _seqread(args: argparse.Namespace) -> int:
    params = seqread.SeqreadParams(size=args.size, block=args.block, cache=args.cache)

    def on_run(i: int, r: seqread.SeqreadResult) -> None:
        progress(f"seqread run {i}/{args.repeat}: {r.read_mib_per_second:.0f} MiB/s "
                 f"({r.cache_state})")

    doc = seqread.run_experiment(params, args.dir, args.repeat, on_run=on_run)
    _emit(doc, args.json, _seqread_table)
    return 0


def _emit(doc: ExperimentResult, as_json: bool, table: object) -> None:
    if as_json:
        sys.stdout.write(doc.to_json())
    else:
        assert callable(table)
        sys.stdout.write(table(doc))
    sys.stdout.flush()


def _fmt(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(title: str, rows: list[dict[str, object]], keys: list[tuple[str, str]],
           summary: dict[str, float] | None) -> str:
    headers = ["", *(f"run {r['run']}" for r in rows)]
    if summary is not None and len(rows) > 1:
        headers.append("median")
    lines = [[label, *(_fmt(r.get(k)) for r in rows)] for k, label in keys]
    if summary is not None and len(rows) > 1:
        for line, (k, _) in zip(lines, keys, strict=True):
            line.append(_fmt(summary.get(k, "")))
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *lines, strict=True)]
    out = [title]
    for line in [headers, *lines]:
        out.append("  ".join([str(line[0]).ljust(widths[0]),
                              *(str(c).rjust(w) for c, w in zip(line[1:], widths[1:],
                                                                 strict=True))]).rstrip())
    return "\n".join(out) + "\n"


def _where(doc: ExperimentResult) -> str:
    loc = doc.params.get("location", {})
    return f"{loc.get('directory')} ({loc.get('fstype', '?')} on {loc.get('device', '?')})"


def _postmark_table(doc: ExperimentResult) -> str:
    p = doc.params
    title = (f"Postmark in {_where(doc)}: {p['files']} files of {p['size_min']}.."
             f"{p['size_max'] - 1} bytes, {p['transactions']} transactions, seed {p['seed']}")
    keys = [
        ("seconds_total", "total time (s)"),
        ("seconds_transactions", "transaction time (s)"),
        ("transactions_per_second", "transactions/s"),
        ("files_created", "files created"),
        ("created_per_second", "  per second"),
        ("files_initial", "  creation alone"),
        ("created_alone_per_second", "    per second"),
        ("files_created_mixed", "  mixed with transactions"),
        ("files_read", "files read"),
        ("read_per_second", "  per second"),
        ("files_appended", "files appended"),
        ("appended_per_second", "  per second"),
        ("files_deleted", "files deleted"),
        ("deleted_per_second", "  per second"),
        ("files_deleted_alone", "  deletion alone"),
        ("deleted_alone_per_second", "    per second"),
        ("files_deleted_mixed", "  mixed with transactions"),
        ("bytes_read", "bytes read"),
        ("read_bytes_per_second", "  per second"),
        ("bytes_written", "bytes written"),
        ("written_bytes_per_second", "  per second"),
        ("user_seconds", "user CPU (s)"),
        ("system_seconds", "system CPU (s)"),
    ]
    text = _table(title, doc.rows, keys, doc.summary.get("median"))
    return text + "".join(f"note: {n}\n" for n in doc.notes)


def _seqread_table(doc: ExperimentResult) -> str:
    size = doc.params["size_used"]
    title = (f"Sequential read in {_where(doc)}: {size / seqread.MiB:,.0f} MiB file, "
             f"{doc.params['block']:,}-byte blocks")
    keys = [
        ("read_mib_per_second", "read MiB/s"),
        ("seconds_read", "read time (s)"),
        ("write_mib_per_second", "write MiB/s (with fsync)"),
        ("cache_method", "cache method"),
        ("resident_before", "cached before read"),
        ("from_cache", "read from cache"),
    ]
    text = _table(title, doc.rows, keys, doc.summary.get("median"))
    states = dict.fromkeys(str(r["cache_state"]) for r in doc.rows)
    return text + "".join(f"cache: {s}\n" for s in states) + \
        "".join(f"note: {n}\n" for n in doc.notes)
