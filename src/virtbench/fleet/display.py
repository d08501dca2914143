"""Live progress of a fleet run on stderr: a rich table on a terminal, one line per host
transition otherwise (logs, CI, pipes). Stdout is never touched (``--json`` owns it)."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Group
from rich.table import Table

from virtbench.fleet.state import FleetState, HostState

STYLE = {
    "queued": "dim", "checking": "cyan", "installing": "cyan", "running": "yellow",
    "fetching": "cyan", "fetched": "green", "failed": "bold red",
}


def summary_line(state: FleetState) -> str:
    c = state.counts()
    parts = [f"{c[s]} {s}" for s in ("fetched", "running", "installing", "checking",
                                      "fetching", "queued", "failed") if c.get(s)]
    n = len(state.hosts)
    return f"fleet {state.id}: {n} host{'' if n == 1 else 's'}: " + ", ".join(parts)


def _age(ts: str | None) -> str:
    if not ts:
        return ""
    try:
        t = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return ""
    secs = int((datetime.now(UTC) - t).total_seconds())
    return f"{secs // 60}m{secs % 60:02d}s" if secs >= 60 else f"{secs}s"


def host_detail(h: HostState) -> str:
    detail = _detail(h)
    if h.slow and h.status in ("fetched", "failed"):
        return f"{detail}; {h.slow}" if detail else h.slow
    return detail


def _detail(h: HostState) -> str:
    if h.status == "failed":
        return h.reason or ""
    if h.status == "running":
        return f"up {_age(h.launched)}" + (f", polled {_age(h.last_poll)} ago"
                                           if h.last_poll else "")
    if h.status == "fetched":
        run = h.run_ids[-1] if h.run_ids else ""
        return f"{h.summary}, run {run}" if h.summary else run
    return h.reason or ""


class Display:
    """Plain lines: ``fleet ID: host: status detail``."""

    def __init__(self, state: FleetState, stream: TextIO | None = None) -> None:
        self.state = state
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        self._last: dict[str, str] = {}
        self._t0 = time.monotonic()

    def start(self) -> None:
        n = len(self.state.hosts)
        self.note(f"fleet {self.state.id}: {n} host{'' if n == 1 else 's'}, "
                  f"command: virtbench {' '.join(self.state.command)}")

    def host(self, h: HostState) -> None:
        # One line per change of state (not per poll: a running host's detail is its age).
        key = f"{h.status}|{h.reason or ''}|{h.summary or ''}"
        with self.lock:
            if self._last.get(h.name) == key:
                return
            self._last[h.name] = key
        line = f"{h.status} {host_detail(h)}".strip()
        self.note(f"  {h.name}: {line}")

    def note(self, message: str) -> None:
        elapsed = int(time.monotonic() - self._t0)
        with self.lock:
            self.stream.write(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}\n")
            self.stream.flush()

    def tick(self) -> None:
        pass

    def stop(self) -> None:
        self.note(summary_line(self.state))


class RichDisplay(Display):
    """A live table (at most ``max_rows`` hosts: active and failed ones first)."""

    max_rows = 30

    def __init__(self, state: FleetState, stream: TextIO | None = None) -> None:
        super().__init__(state, stream)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=self.stream, stderr=stream is None)
        self.live = Live(console=self.console, refresh_per_second=4, transient=False,
                         get_renderable=self._render)
        self._t0 = time.monotonic()

    def _render(self) -> Group:
        from rich.text import Text

        order = {"failed": 0, "fetching": 1, "running": 2, "installing": 3, "checking": 4,
                 "queued": 5, "fetched": 6}
        hosts = sorted(self.state.hosts.values(), key=lambda h: (order.get(h.status, 9), h.name))
        elapsed = int(time.monotonic() - self._t0)
        table = Table(expand=False, box=None, pad_edge=False)
        table.add_column("host")
        table.add_column("groups", style="dim")
        table.add_column("state")
        table.add_column("detail", overflow="fold", max_width=90)
        for h in hosts[: self.max_rows]:
            table.add_row(h.name, ",".join(h.groups), Text(h.status, style=STYLE.get(h.status, "")),
                          host_detail(h))
        if len(hosts) > self.max_rows:
            table.add_row(f"... {len(hosts) - self.max_rows} more", "", "", "")
        head = Text(f"{summary_line(self.state)}  [{elapsed // 60}:{elapsed % 60:02d}]",
                    style="bold")
        return Group(head, table)

    def start(self) -> None:
        self.live.start()

    def host(self, h: HostState) -> None:
        pass  # the table is re-rendered from the state

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)

    def stop(self) -> None:
        self.live.stop()


class QuietDisplay(Display):
    """``-q``: no progress at all (the outcome is said at the end when something failed)."""

    def note(self, message: str) -> None:
        pass


def make_display(state: FleetState, quiet: bool = False) -> Display:
    if quiet:
        return QuietDisplay(state)
    if sys.stderr.isatty():
        return RichDisplay(state)
    return Display(state)
