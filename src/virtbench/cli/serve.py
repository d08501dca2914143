"""``virtbench serve``: the results dashboard over the store (docs/serve.md)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys

from virtbench.cli._common import add_db_option
from virtbench.errors import EnvironmentUnsupported, UsageError

NAME = "serve"
HELP = "a web dashboard over the stored runs: list, run, compare, history, fleet, experiments"
EXAMPLES = (
    "virtbench serve                   # http://127.0.0.1:8080/, the default store",
    "virtbench serve --port 0          # a free port (printed on stderr)",
    "virtbench serve --host 0.0.0.0 --token s3cret --allow-write",
    "virtbench serve --db postgresql+psycopg://vb@db/virtbench --root-path /vb",
)


def register(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                        help="address to listen on (default 127.0.0.1; any other than a "
                             "loopback address needs --token)")
    parser.add_argument("--port", type=int, default=8080, metavar="PORT",
                        help="TCP port (default 8080; 0 picks a free one)")
    parser.add_argument("--token", metavar="TOKEN", default=None,
                        help="require this token on every request (or set VIRTBENCH_TOKEN); "
                             "needed for a non-loopback address and for --allow-write")
    parser.add_argument("--allow-write", action="store_true",
                        help="allow changing labels and removing runs (needs --token)")
    parser.add_argument("--root-path", default="", metavar="PATH",
                        help="the URL prefix when served behind a reverse proxy at a sub-path "
                             "(e.g. /virtbench)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("VIRTBENCH_TOKEN") or None
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected 0 to 65535")
    if not is_loopback(args.host) and not token:
        raise UsageError(f"--host {args.host}: not a loopback address; anyone who can reach "
                         "it could read every result: give --token TOKEN (or "
                         "VIRTBENCH_TOKEN), or serve on 127.0.0.1 behind a reverse proxy")
    if args.allow_write and not token:
        raise UsageError("--allow-write needs --token TOKEN (or VIRTBENCH_TOKEN): writes "
                         "must be authorized")
    if args.root_path and not args.root_path.startswith("/"):
        raise UsageError(f"--root-path {args.root_path!r}: expected a path starting with /")
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise EnvironmentUnsupported(
            f"virtbench serve needs the [serve] extra ({exc.name} is missing): "
            "pip install 'virtbench[serve]'") from None
    from virtbench.serve.app import ServeConfig, create_app
    from virtbench.store import open_store

    store = open_store(args.db)  # a bad URL or unreachable database: one line, now
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host.strip("[]"), args.port))
        # Listen before saying where: a client (a script, a test) that connects as soon as
        # it reads the "serving" line waits in the backlog until uvicorn accepts, instead of
        # being refused while uvicorn starts (it listens only once its event loop runs).
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {args.host} port {args.port}: "
                         f"{exc.strerror or exc}") from None
    port = sock.getsockname()[1]
    app = create_app(ServeConfig(db_url=args.db, allow_write=args.allow_write, token=token))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    mode = "read-write" if args.allow_write else "read-only"
    sys.stderr.write(f"virtbench: serving http://{shown}:{port}{args.root_path}/ ({mode}, "
                     f"{store.backend} {store.display_url}"
                     f"{', token required' if token else ''}); Ctrl-C stops\n")
    sys.stderr.flush()
    from virtbench import console

    verbose = console.level >= console.VERBOSE  # -v: uvicorn's log, one line per request
    import copy

    from uvicorn.config import LOGGING_CONFIG

    log_config = copy.deepcopy(LOGGING_CONFIG)
    for handler in log_config["handlers"].values():  # stderr, as every virtbench message
        handler["stream"] = "ext://sys.stderr"
    config = uvicorn.Config(app, log_level="info" if verbose else "warning",
                            access_log=verbose, lifespan="off", log_config=log_config,
                            root_path=args.root_path, proxy_headers=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
