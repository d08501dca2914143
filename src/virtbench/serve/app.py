"""``virtbench serve``: the results dashboard, a Starlette application over the store.

Pages (docs/serve.md): runs list, run page, compare, history, fleet, experiments; every page
downloads as JSON, CSV or Markdown (``?format=``) and a selection as the static report.
The run and compare pages ARE the static report (``report.html.j2``, the same data from
``virtbench.report.data``) inside the app's header, with plotly.js served from ``/static``
instead of inlined. Read-only unless started with ``--allow-write`` and a token.

Handlers are plain functions (Starlette runs them in its thread pool): the store is
SQLAlchemy's synchronous engine, as for every other command.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import io
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import markupsafe
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from virtbench import __version__, paths
from virtbench.errors import VirtbenchError
from virtbench.report import data as report_data
from virtbench.report import html as report_html
from virtbench.results.model import ExperimentResult, RunResult, load_any
from virtbench.serve import queries as Q
from virtbench.store import Store, StoreError, open_store
from virtbench.store.store import RunRow
from virtbench.workloads.catalog import CATALOG

Document = RunResult | ExperimentResult
FORMATS = ("html", "json", "csv", "md")
MAX_COMPARE = 10
MAX_REPORT = 50


@dataclass
class ServeConfig:
    db_url: str | None = None
    allow_write: bool = False
    token: str | None = None
    """Required on every request when set (``Authorization: Bearer``, or ``?token=`` once,
    which sets a cookie); always required for write actions."""
    history_limit: int = 1000


class PageError(Exception):
    """A clear 4xx/5xx page (HTML) or JSON error for a bad request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---- documents -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=128)
def _load(path: str, _mtime_ns: int, _size: int) -> Document:
    return load_any(Path(path))


def load_doc(row: RunRow) -> Document:
    """The master document of an indexed run (cached while its file is unchanged)."""
    try:
        st = os.stat(row.path)
    except OSError:
        raise PageError(410, f"run {row.id}: its file {row.path} is missing (moved or "
                             "deleted?): `virtbench db rebuild` re-indexes the result files") \
            from None
    try:
        return _load(row.path, st.st_mtime_ns, st.st_size)
    except VirtbenchError as exc:
        raise PageError(422, f"run {row.id}: {exc}") from None


# ---- rendering helpers ----------------------------------------------------------------------
def _templates() -> jinja2.Environment:
    env = report_html.template_env(jinja2.PackageLoader("virtbench.serve", "templates"))
    env.globals["qs"] = _qs
    env.globals["fmt_score"] = _fmt_score
    env.globals["describe_kind"] = _describe_kind
    env.globals["SORTS"] = Q.SORTS
    return env


def _qs(params: Sequence[tuple[str, Any]] | dict[str, Any]) -> str:
    items = params.items() if isinstance(params, dict) else params
    pairs = [(k, str(v)) for k, v in items if v not in (None, "")]
    return ("?" + urlencode(pairs)) if pairs else ""


def _fmt_score(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:,.1f}"


def _describe_kind(row: RunRow) -> str:
    if row.kind == "experiment":
        return row.experiment or "experiment"
    return "imported" if row.source.startswith("imported") else "suite"


def _filename(text: str) -> str:
    """A download's file name in ASCII letters, digits and ``-_.`` (a header is Latin-1: a
    host named ``łódź`` made the history's CSV a 500)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-"
                   for c in text).strip("-.")
    return safe[:80] or "virtbench"


def _content_disposition(name: str, ext: str) -> str:
    """``attachment`` with the ASCII name, and the full name in UTF-8 (RFC 6266
    ``filename*``) when it has more than ASCII."""
    value = f'attachment; filename="{_filename(name)}.{ext}"'
    full = "".join(c for c in name if c.isprintable() and c not in "/\\")[:80].strip(". ")
    if full and not full.isascii():
        value += f"; filename*=UTF-8''{quote(full, safe='')}.{ext}"
    return value


def _download(body: str, fmt: str, name: str) -> Response:
    media = {"json": "application/json", "csv": "text/csv; charset=utf-8",
             "md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}[fmt]
    headers = {}
    if fmt != "json":
        headers["Content-Disposition"] = _content_disposition(name, fmt)
    return Response(body, media_type=media, headers=headers)


def _json(data: Any) -> str:
    return json.dumps(report_html._finite(data), indent=2, allow_nan=False, default=str) + "\n"


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def _md(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return ("" if v is None else str(v)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _format(request: Request) -> str:
    fmt = request.query_params.get("format") or "html"
    if fmt not in FORMATS:
        raise PageError(400, f"format={fmt[:20]!r}: expected one of {', '.join(FORMATS)}")
    return fmt


# ---- the application -------------------------------------------------------------------------
class Dashboard:
    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.env = _templates()
        self._store: Store | None = None
        self._facets: tuple[float, Q.Facets] | None = None

    def facets(self) -> Q.Facets:
        """The filter suggestions, recomputed at most every 30 s (four DISTINCT scans)."""
        now = time.monotonic()
        if self._facets is None or now - self._facets[0] > 30:
            self._facets = (now, Q.facets(self.store))
        return self._facets[1]

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.cfg.db_url)
        return self._store

    # -- responses --
    def page(self, request: Request, template: str, status: int = 200,
             **context: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        path = request.url.path
        if base and path.startswith(base):  # uvicorn puts the root path in front
            path = path[len(base):]
        html = self.env.get_template(template).render(
            base=base, version=__version__, request_path=path, query=request.url.query,
            allow_write=self.cfg.allow_write, db=self.store_label(), **context)
        return HTMLResponse(html, status_code=status)

    def store_label(self) -> str:
        try:
            return f"{self.store.backend} · {self.store.display_url}"
        except VirtbenchError:
            return "store unavailable"

    def report_page(self, request: Request, template: str, docs: Sequence[Document], *,
                    title: str | None = None, **context: Any) -> HTMLResponse:
        """A page that is the static report (``report.html.j2``) in the app's frame."""
        report = report_data.build(docs, title=title)
        charts: list[dict[str, Any]] = []

        def chart(fig: dict[str, Any]) -> str:
            charts.append(fig)
            return f"chart-{len(charts)}"

        return self.page(request, template, r=report, chart=chart,
                         plotly_js=markupsafe.Markup(""),
                         severity=report_data.SEVERITY_LABEL, **context)

    def error(self, request: Request, status: int, message: str) -> Response:
        if request.query_params.get("format") == "json" or request.url.path.startswith(
                "/api/"):
            return JSONResponse({"error": message, "status": status}, status_code=status)
        titles = {400: "Bad request", 401: "Token required", 403: "Forbidden",
                  404: "Not found", 405: "Method not allowed", 410: "Gone",
                  413: "Too large", 415: "Unsupported form", 422: "Unreadable document",
                  503: "Store unavailable"}
        return self.page(request, "error.html.j2", status=status,
                         title=titles.get(status, "Error"), message=message, code=status)

    # -- runs --
    def runs(self, request: Request) -> Response:
        fmt = _format(request)
        rq = Q.parse_run_query(request.query_params)
        page = Q.run_page(self.store, rq)
        if fmt == "json":
            return _download(_json({"total": page.total, "page": rq.page, "pages": page.pages,
                                    "per": rq.per,
                                    "runs": [r.to_dict() for r in page.rows]}), fmt, "runs")
        if fmt in ("csv", "md"):
            header = ["id", "started", "kind", "host", "profile", "copies", "index", "status",
                      "labels"]
            rows = [[r.id, r.started, _describe_kind(r), r.hostname, r.profile,
                     ",".join(str(c) for c in r.copies),
                     " ".join(f"{c}:{s:.1f}" for c, s in sorted(r.scores.items())), r.status,
                     " ".join(f"{k}={v}" for k, v in sorted(r.labels.items()))]
                    for r in page.rows]
            return _download(_csv(header, rows) if fmt == "csv" else _md(header, rows), fmt,
                             "runs")
        return self.page(request, "runs.html.j2", title="Runs", p=page, rq=rq,
                         facets=self.facets())

    def _row(self, run_id: str) -> RunRow:
        if len(run_id) > 64 or not run_id.isprintable():
            raise PageError(400, "a run id is at most 64 printable characters")
        row = Q.find_run(self.store, run_id)
        if row is None:
            raise PageError(404, f"no run {run_id!r} in the store (see the runs list)")
        return row

    def run(self, request: Request) -> Response:
        fmt = _format(request)
        row = self._row(request.path_params["run_id"])
        if row.id != request.path_params["run_id"]:
            return RedirectResponse(f"{request.scope.get('root_path', '')}/runs/{row.id}"
                                    + (f"?{request.url.query}" if request.url.query else ""),
                                    status_code=307)
        doc = load_doc(row)
        name = f"virtbench-{row.id}"
        if fmt == "json":
            return _download(doc.to_json(), fmt, name)
        if fmt == "md":
            from virtbench.report import markdown

            return _download(markdown.render(report_data.build([doc])), fmt, name)
        if fmt == "csv":
            return _download(_csv(*_doc_table(doc)), fmt, name)
        layers = _layers(doc)
        return self.report_page(request, "run.html.j2", [doc], row=row, doc=doc,
                                layers=layers, detect=_detect(doc),
                                page_title=f"Run {row.id}")

    # -- compare --
    def _docs(self, refs: list[str], low: int, high: int, what: str) -> list[Document]:
        ids: list[str] = []
        for ref in refs:
            ids += [x for x in ref.replace(",", " ").split() if x]
        if not low <= len(ids) <= high:
            raise PageError(400, f"{what} takes {low} to {high} runs (run=ID&run=ID...); "
                                 f"got {len(ids)}")
        rows = [self._row(i) for i in ids]
        if len(rows) <= 2:
            return [load_doc(r) for r in rows]
        # Reading ten files one after the other waits on the disk ten times.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(4, len(rows))) as pool:
            return list(pool.map(load_doc, rows))

    def compare(self, request: Request) -> Response:
        fmt = _format(request)
        docs = self._docs(request.query_params.getlist("run"), 2, MAX_COMPARE, "compare")
        exps = [d.id for d in docs if isinstance(d, ExperimentResult)]
        if exps:
            raise PageError(400, f"compare takes suite runs; {', '.join(exps)} "
                                 f"{'is an experiment' if len(exps) == 1 else 'are experiments'}"
                                 " (open it on its own page)")
        from virtbench.analysis.compare import compare

        runs = [d for d in docs if isinstance(d, RunResult)]
        comparison = compare(runs)
        name = "virtbench-compare-" + "-".join(d.id[:6] for d in runs)
        if fmt == "json":
            return _download(_json(comparison.to_dict()), fmt, name)
        if fmt == "csv":
            return _download(_csv(*_compare_table(comparison)), fmt, name)
        if fmt == "md":
            from virtbench.report import markdown

            return _download(markdown.render(report_data.build(runs)), fmt, name)
        sig = _significance(comparison)
        return self.report_page(request, "compare.html.j2", runs, comparison=comparison,
                                sig=sig, page_title=f"Compare {len(runs)} runs",
                                ids=[d.id for d in runs])

    def report(self, request: Request) -> Response:
        docs = self._docs(request.query_params.getlist("run"), 1, MAX_REPORT, "report")
        html = report_html.render(report_data.build(docs))
        return _download(html, "html", "virtbench-report-" + "-".join(d.id[:6] for d in docs))

    # -- history --
    def history(self, request: Request) -> Response:
        fmt = _format(request)
        qp = request.query_params
        host = Q._text("host", qp.get("host"))
        labels = Q.parse_labels(qp.getlist("label"))
        if not host and not labels:
            if fmt != "html":  # the pick page is links, not data: say what to download
                raise PageError(400, f"format={fmt}: a history needs host=HOST or "
                                     "label=KEY=VALUE")
            return self.page(request, "history_pick.html.j2", title="History",
                             facets=self.facets())
        available = Q.history_copies(self.store, host=host, labels=labels)
        copies = Q._int("copies", qp.get("copies"), available[0] if available else 1, 1, 4096)
        limit = Q._int("limit", qp.get("limit"), self.cfg.history_limit, 2, 100_000)
        points, total = Q.history(self.store, host=host, labels=labels, copies=copies,
                                  limit=limit)
        if total == 0:
            who = f"host {host!r}" if host else "label " + ", ".join(
                f"{k}={v}" for k, v in labels.items())
            raise PageError(404, f"no suite runs of {who} in the store")
        changes = Q.changes(points)
        subject = host or ", ".join(f"{k}={v}" for k, v in labels.items())
        name = "virtbench-history-" + subject
        tests = _history_tests(points)
        if fmt == "json":
            return _download(_json({
                "host": host, "labels": labels, "copies": copies, "total": total,
                "points": [p.__dict__ for p in points],
                "changes": [c.__dict__ for c in changes]}), fmt, name)
        if fmt in ("csv", "md"):
            header = ["run", "started", "host", "kernel", "virtualization", "cpu", "profile",
                      "index", *[n for _, n in tests]]
            rows = [[p.run_id, p.started, p.hostname, p.kernel, p.virtualization, p.cpu_model,
                     p.profile, _round(p.score), *[_round(p.tests.get(t)) for t, _ in tests]]
                    for p in points]
            return _download(_csv(header, rows) if fmt == "csv" else _md(header, rows), fmt,
                             name)
        figures = _history_figures(points, changes, tests, copies)
        charts: list[dict[str, Any]] = []

        def chart(fig: dict[str, Any]) -> str:
            charts.append(fig)
            return f"chart-{len(charts)}"

        return self.page(request, "history.html.j2", title=f"History of {subject}",
                         host=host, labels=labels, points=points, total=total,
                         changes=changes, figures=figures, chart=chart, copies=copies,
                         available=available, limit=limit,
                         default_limit=self.cfg.history_limit)

    # -- fleet --
    def fleets(self, request: Request) -> Response:
        fmt = _format(request)
        listed = Q.fleets(self.store)
        local = _local_fleets()
        ids = [f.id for f in listed] + [s for s in local if s not in {f.id for f in listed}]
        if fmt in ("json", "csv", "md"):
            rows = [[f.id, f.hosts, f.runs, f.first, f.last, local.get(f.id, "")]
                    for f in listed]
            header = ["fleet", "hosts", "runs", "first", "last", "state"]
            if fmt == "json":
                return _download(_json([dict(zip(header, r, strict=True)) for r in rows]),
                                 fmt, "fleets")
            return _download(_csv(header, rows) if fmt == "csv" else _md(header, rows), fmt,
                             "fleets")
        return self.page(request, "fleets.html.j2", title="Fleet runs", fleets=listed,
                         local=local, ids=ids)

    def fleet(self, request: Request) -> Response:
        fmt = _format(request)
        fid = request.path_params["fleet_id"]
        if len(fid) > 100 or not fid.isprintable():
            raise PageError(400, "a fleet run id is at most 100 printable characters")
        state = _fleet_state(fid)
        table = self._fleet_table(fid, state)
        if table is None and state is None:
            raise PageError(404, f"no fleet run {fid!r}: no run in the store has the label "
                                 f"fleet={fid} and this controller has no such fleet state")
        name = f"virtbench-fleet-{fid}"
        if fmt == "json":
            data = table.to_dict() if table else {"fleet": fid, "hosts": []}
            if state is not None:
                data["state"] = {"status": state.status, "counts": state.counts()}
            return _download(_json(data), fmt, name)
        if fmt in ("csv", "md"):
            if table is None:
                raise PageError(404, f"fleet run {fid!r} has no results yet")
            if fmt == "md":
                from virtbench.report.fleet import render_markdown

                return _download(render_markdown(table), fmt, name)
            from virtbench.report.fleet import host_cells

            header = ["host", "groups", "virtualization", "index", "vs_median", "note",
                      "run_id"]
            rows = [[*host_cells(r).values(), r.run_id] for r in table.rows]
            return _download(_csv(header, rows), fmt, name)
        return self.page(request, "fleet.html.j2", title=f"Fleet {fid}", fid=fid,
                         state=state, table=table, live=_live(state))

    def fleet_status(self, request: Request) -> Response:
        fid = request.path_params["fleet_id"]
        state = _fleet_state(fid)
        if state is None:
            raise PageError(404, f"this controller has no state for fleet run {fid!r}")
        return self.page(request, "fleet_status.html.j2", state=state, live=_live(state))

    def _fleet_table(self, fid: str, state: Any) -> Any:
        from virtbench.report.fleet import HostRow, build_table, row_for

        recs = self.store.with_label("fleet", fid)
        latest: dict[str, Document] = {}
        for rec in recs:  # oldest first: each host's latest wins
            try:
                doc = load_doc(rec)
            except PageError:
                continue
            latest[doc.labels.get("host") or doc.environment.hostname or doc.id] = doc
        if not latest and state is None:
            return None
        rows = []
        for host, doc in latest.items():
            groups = [g for g in doc.labels.get("groups", "").split(",") if g]
            row = row_for(doc, host, groups, None)
            if state is not None and host in state.hosts:
                row.status = state.hosts[host].status
            rows.append(row)
        if state is not None:
            for h in state.hosts.values():
                if h.name not in latest:
                    rows.append(HostRow(host=h.name, groups=list(h.groups), status=h.status,
                                        reason=h.reason))
        return build_table(rows, latest, fleet=fid,
                           command=list(state.command) if state is not None else [],
                           copies=None)

    # -- experiments --
    def experiments(self, request: Request) -> Response:
        fmt = _format(request)
        name = Q._text("experiment", request.query_params.get("experiment"))
        counts = Q.experiment_counts(self.store)
        rq = Q.RunQuery(kind=name or "experiment", per=Q._int(
            "per", request.query_params.get("per"), 50, 1, 500),
            page=Q._int("page", request.query_params.get("page"), 1, 1, 10**9))
        page = Q.run_page(self.store, rq)
        if fmt in ("json", "csv", "md"):
            header = ["id", "experiment", "started", "host", "status", "labels"]
            rows = [[r.id, r.experiment, r.started, r.hostname, r.status,
                     " ".join(f"{k}={v}" for k, v in sorted(r.labels.items()))]
                    for r in page.rows]
            if fmt == "json":
                return _download(_json({"experiments": [
                    {"experiment": n, "documents": c, "latest": last} for n, c, last in counts],
                    "documents": [dict(zip(header, r, strict=True)) for r in rows]}), fmt,
                    "experiments")
            return _download(_csv(header, rows) if fmt == "csv" else _md(header, rows), fmt,
                             "experiments")
        from virtbench.report.experiments import view_for

        titles = {n: view_for(n).title for n, _, _ in counts}
        return self.page(request, "experiments.html.j2", title="Experiments", counts=counts,
                         titles=titles, p=page, rq=rq, selected=name)

    # -- writing --
    def _check_write(self, form: Any) -> None:
        if not self.cfg.allow_write:
            raise PageError(403, "this server is read-only (start it with --allow-write and "
                                 "a --token to change labels or remove runs)")
        token = form.get("token") or ""
        if not self.cfg.token or not hmac.compare_digest(str(token).encode(),
                                                         self.cfg.token.encode()):
            raise PageError(403, "a write needs the server's token in the form")

    async def set_label(self, request: Request) -> Response:
        form = await _form(request)
        self._check_write(form)
        key = str(form.get("key") or "").strip()
        value = str(form.get("value") or "").strip()
        if (not key or len(key) > 64 or "=" in key or len(value) > 200
                or not (key + value).isprintable()):
            raise PageError(400, "a label is KEY (1-64 printable characters, no '=') and "
                                 "VALUE (printable, at most 200; empty removes the label)")
        from starlette.concurrency import run_in_threadpool

        run_id = await run_in_threadpool(self._set_label, request.path_params["run_id"], key,
                                         value)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/runs/{run_id}",
                                status_code=303)

    def _set_label(self, ref: str, key: str, value: str) -> str:
        row = self._row(ref)
        doc = load_doc(row)
        if value:
            doc.labels[key] = value
        else:
            doc.labels.pop(key, None)
        path = Path(row.path)
        doc.save(path)
        self.store.record(doc, path)
        _load.cache_clear()
        self._facets = None
        return row.id

    async def delete(self, request: Request) -> Response:
        form = await _form(request)
        self._check_write(form)
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(self._delete, request.path_params["run_id"])
        return RedirectResponse(f"{request.scope.get('root_path', '')}/runs", status_code=303)

    def _delete(self, ref: str) -> None:
        row = self._row(ref)
        path = Path(row.path)
        try:
            inside = path.resolve().is_relative_to(paths.results_dir().resolve())
        except OSError:
            inside = False
        if inside and path.exists():
            path.unlink()  # the file first: if it cannot go, the run stays indexed
        self.store.remove(row.id)
        _load.cache_clear()
        self._facets = None


async def _form(request: Request, limit: int = 16_384) -> dict[str, str]:
    """A small urlencoded form (what the run page's forms send), without python-multipart."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise PageError(415, "expected an application/x-www-form-urlencoded form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PageError(413, f"form larger than {limit} bytes")
    from urllib.parse import parse_qsl

    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "the form is not valid UTF-8 urlencoded text") from None


# ---- page data -------------------------------------------------------------------------------
def _round(v: float | None, digits: int = 2) -> float | None:
    return None if v is None else round(v, digits)


def _layers(doc: Document) -> list[dict[str, Any]]:
    """The detect report's layers, outermost first, as display rows."""
    rep = doc.environment.virtualization
    return [{"kind": x.kind, "name": x.name, "variant": x.variant or "",
             "confidence": x.confidence, "evidence": x.evidence[:20],
             "details": report_data.fmt(x.details) if x.details else ""}
            for x in (rep.layers if rep else [])]


def _detect(doc: Document) -> dict[str, Any]:
    env = doc.environment
    rep = env.virtualization
    if rep is None and env.virtualization_error is None:
        return {"ran": False, "summary": None, "advice": []}
    return {"ran": True, "error": env.virtualization_error,
            "summary": env.virtualization_summary(),
            "advice": list(rep.advice) if rep else []}


def _doc_table(doc: Document) -> tuple[list[str], list[list[Any]]]:
    if isinstance(doc, ExperimentResult):
        cols: list[str] = []
        for r in doc.rows:
            for k, v in r.items():
                if k not in cols and (v is None or isinstance(v, str | int | float | bool)):
                    cols.append(k)
        return cols, [[r.get(c) for c in cols] for r in doc.rows]
    header = ["copies", "test", "name", "score", "unit", "index", "ci_low", "ci_high",
              "samples", "status"]
    rows: list[list[Any]] = []
    for s in doc.sections:
        for t in s.tests:
            rows.append([s.copies, t.test, t.name, t.score, t.unit, t.index,
                         t.ci.low if t.ci else None, t.ci.high if t.ci else None, t.samples,
                         t.status])
        if s.index_score is not None:
            rows.append([s.copies, "index_score", "System Benchmarks Index Score",
                         s.index_score, "index", None, None, None, s.index_tests, "ok"])
    return header, rows


CHANGE_MARK = {"better": "▲", "worse": "▼", "same": "=", "none": "", "missing": "—",
               "better-untested": "△", "worse-untested": "▽"}


def _significance(c: Any) -> list[dict[str, Any]]:
    """Compare's tables as display rows: per section, per test, each run's ratio to the
    baseline with its 95% interval, p and the change mark."""
    out = []
    for sc in c.sections:
        rows = []
        for row in sc.tests:
            cells = []
            for d in row.deltas[1:]:
                if d is None or d.ratio is None:
                    cells.append({"text": "—", "cls": "missing", "title": "missing"})
                    continue
                title = (f"95% CI {d.ci_low:.3f}-{d.ci_high:.3f}, p={d.p_value:.3g}"
                         if d.tested and d.ci_low is not None and d.p_value is not None
                         else "no passes: not tested for significance")
                cells.append({"text": f"{d.ratio:.3f}x {CHANGE_MARK.get(d.change, '')}",
                              "cls": d.change, "title": title,
                              "ci": f"{d.ci_low:.3f}–{d.ci_high:.3f}" if d.tested and
                              d.ci_low is not None and d.ci_high is not None else "",
                              "p": f"{d.p_value:.3g}" if d.p_value is not None else ""})
            rows.append({"name": row.name, "cells": cells})
        geo = [f"{g:.3f}x" if g is not None else "—" for g in sc.geomean_ratios[1:]]
        base = sc.copies[0]
        label = f"{base} cop{'y' if base == 1 else 'ies'}"
        if any(x != base for x in sc.copies[1:]):
            label += " (the others: " + ", ".join(
                "none" if x is None else str(x) for x in sc.copies[1:]) + ")"
        out.append({"copies": label, "rows": rows, "geomean": geo})
    return out


def _compare_table(c: Any) -> tuple[list[str], list[list[Any]]]:
    header = ["copies", "test", "name", "run", "baseline", "score", "baseline_score", "ratio",
              "ci_low", "ci_high", "p_value", "change"]
    rows: list[list[Any]] = []
    base = c.runs[0].id
    for sc in c.sections:
        for row in sc.tests:
            for i, d in enumerate(row.deltas[1:], 1):
                if d is None:
                    continue
                rows.append([sc.copies[i], row.test, row.name, c.runs[i].id, base,
                             row.scores[i], row.scores[0], d.ratio, d.ci_low, d.ci_high,
                             d.p_value, d.change])
    return header, rows


def _history_tests(points: Sequence[Q.HistoryPoint]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for p in points:
        for t in p.tests:
            seen.setdefault(t, p.names.get(t, t))
    return list(seen.items())


def _history_figures(points: Sequence[Q.HistoryPoint], changes: Sequence[Q.Change],
                     tests: Sequence[tuple[str, str]], copies: int) -> list[dict[str, Any]]:
    xs = [p.started for p in points]
    shapes, notes = [], []
    for n, ch in enumerate(changes):
        x = points[ch.index].started
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x,
                       "y0": 0, "y1": 1, "line": {"color": "#c0392b", "width": 1,
                                                  "dash": "dash"}})
        text = "; ".join(f"{what}: {b or '—'}" for what, _a, b in ch.what)
        text = text if len(text) <= 48 else text[:47] + "…"
        notes.append({"xref": "x", "yref": "paper", "x": x, "y": 1 - 0.07 * (n % 3),
                      "text": text, "showarrow": False, "xanchor": "left",
                      "font": {"size": 10, "color": "#c0392b"},
                      "hovertext": "<br>".join(f"{w}: {a or '—'} → {b or '—'}"
                                               for w, a, b in ch.what)})
    hover = [f"{p.run_id}<br>{p.kernel or '?'}<br>{p.virtualization or 'not detected'}"
             f"<br>{p.profile or ''}" for p in points]
    figs = []
    scored = [(x, p.score, h) for x, p, h in zip(xs, points, hover, strict=True)
              if p.score is not None]
    if scored:
        layout = report_data._layout(
            f"System Benchmarks Index Score, {copies} cop{'y' if copies == 1 else 'ies'} "
            "(dashed: the environment changed)", "index")
        layout.update(shapes=shapes, annotations=notes, showlegend=False)
        layout["xaxis"] = {"type": "date", "automargin": True}
        figs.append({"data": [{"type": "scatter", "mode": "lines+markers", "name": "index",
                               "x": [s[0] for s in scored], "y": [s[1] for s in scored],
                               "hovertext": [s[2] for s in scored],
                               "hoverinfo": "text+y", "line": {"color": report_data.PALETTE[0]},
                               "customdata": [s[2].split("<br>")[0] for s in scored]}],
                     "layout": layout})
    data = []
    for n, (tid, name) in enumerate(tests):
        tx = [(p.started, p.tests[tid]) for p in points if tid in p.tests]
        if not tx:
            continue
        data.append({"type": "scatter", "mode": "lines+markers",
                     "name": CATALOG[tid].label if tid in CATALOG else name,
                     "x": [a for a, _ in tx], "y": [b for _, b in tx],
                     "line": {"color": report_data.PALETTE[n % len(report_data.PALETTE)]},
                     "marker": {"size": 4}})
    if data:
        layout = report_data._layout("Index of each test over time (log scale)", "index")
        layout.update(shapes=shapes, height=480)
        layout["yaxis"]["type"] = "log"
        layout["xaxis"] = {"type": "date", "automargin": True}
        layout["legend"] = {"orientation": "v", "x": 1.02, "y": 1}
        figs.append({"data": data, "layout": layout})
    return figs


def _fleet_state(fid: str) -> Any:
    from virtbench.fleet.state import FleetState, fleet_root

    if not (fleet_root() / fid / "state.json").is_file() or "/" in fid or fid.startswith("."):
        return None
    try:
        return FleetState.load(fid)
    except VirtbenchError:
        return None


def _local_fleets() -> dict[str, str]:
    from virtbench.fleet.state import list_runs

    try:
        return {s.id: s.status for s in list_runs()}
    except OSError:
        return {}


def _live(state: Any) -> bool:
    if state is None:
        return False
    from virtbench.fleet.state import ACTIVE

    return state.status == "running" or any(h.status in ACTIVE for h in state.hosts.values())


# ---- middleware and app factory --------------------------------------------------------------
class _Security:
    """Token check (when configured) and headers: no third-party origin may load anything."""

    CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
           "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
           "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token
        self.cookie = ("vb_token_" + hashlib.sha256(token.encode()).hexdigest()[:8]
                       if token else "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token:
            request = Request(scope)
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                # Once by URL, then by cookie; the token does not stay in the address bar.
                params = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                # One leading slash: //evil.example/?token=... must not leave this site.
                root, path = scope.get("root_path", ""), "/" + request.url.path.lstrip("/")
                resp: Response = RedirectResponse(
                    (path if path.startswith(root) else root + path) + _qs(params), 303)
                resp.set_cookie(self.cookie, self.token, httponly=True, samesite="strict")
                await resp(scope, receive, send)
                return
            header = request.headers.get("authorization", "")
            bearer = header[7:] if header.lower().startswith("bearer ") else ""
            cookie = request.cookies.get(self.cookie, "")
            if not any(hmac.compare_digest(x.encode(), self.token.encode())
                       for x in (bearer, cookie) if x):
                resp = PlainTextResponse(
                    "401 token required: open this page once with ?token=TOKEN, or send "
                    "'Authorization: Bearer TOKEN'\n", 401)
                await resp(scope, receive, send)
                return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", self.CSP.encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"same-origin")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _static_plotly(request: Request) -> Response:
    body = report_html.plotly_js()
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/javascript",
                    headers={"Cache-Control": "public, max-age=86400", "ETag": etag})


def create_app(cfg: ServeConfig | None = None) -> Starlette:
    cfg = cfg or ServeConfig()
    dash = Dashboard(cfg)

    def wrap(fn: Callable[[Request], Response]) -> Callable[[Request], Response]:
        @functools.wraps(fn)
        def handler(request: Request) -> Response:
            try:
                return fn(request)
            except PageError as exc:
                return dash.error(request, exc.status, exc.message)
            except Q.BadQuery as exc:
                return dash.error(request, exc.status, str(exc))
            except StoreError as exc:
                return dash.error(request, 503, str(exc))
            except VirtbenchError as exc:
                return dash.error(request, 422, str(exc))
        return handler

    def awrap(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        @functools.wraps(fn)
        async def handler(request: Request) -> Response:
            try:
                resp: Response = await fn(request)
                return resp
            except PageError as exc:
                return dash.error(request, exc.status, exc.message)
            except StoreError as exc:
                return dash.error(request, 503, str(exc))
            except VirtbenchError as exc:
                return dash.error(request, 422, str(exc))
        return handler

    def home(request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/runs", status_code=307)

    def health(request: Request) -> Response:
        counts = dash.store.counts()
        return JSONResponse({"status": "ok", "version": __version__, "runs": counts["run"],
                             "store": dash.store.backend})

    routes = [
        Route("/", home),
        Route("/runs", wrap(dash.runs)),
        Route("/runs/{run_id:str}", wrap(dash.run)),
        Route("/runs/{run_id:str}/labels", awrap(dash.set_label), methods=["POST"]),
        Route("/runs/{run_id:str}/delete", awrap(dash.delete), methods=["POST"]),
        Route("/compare", wrap(dash.compare)),
        Route("/report", wrap(dash.report)),
        Route("/history", wrap(dash.history)),
        Route("/fleet", wrap(dash.fleets)),
        # a fleet run's id may hold "/" (its label): the status route is tried first
        Route("/fleet/{fleet_id:path}/status", wrap(dash.fleet_status)),
        Route("/fleet/{fleet_id:path}", wrap(dash.fleet)),
        Route("/experiments", wrap(dash.experiments)),
        Route("/static/plotly.js", _static_plotly),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/healthz", wrap(health)),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"no page {request.url.path!r} (see the links above)",
                   405: f"{request.method} is not allowed here"}.get(exc.status_code,
                                                                      str(exc.detail))
        return dash.error(request, exc.status_code, message)

    return Starlette(
        routes=routes,
        middleware=[Middleware(_Security, token=cfg.token)],
        exception_handlers={HTTPException: http_error, Exception: _server_error},
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    """A bug: one generic line for the client; the traceback goes to the server's log, not
    to whoever sent the request (a path, a database URL or a query can be in the message)."""
    import traceback

    traceback.print_exception(exc, file=sys.stderr)
    return PlainTextResponse("500 internal error: the server's log has the details\n", 500)


def new_token() -> str:
    return secrets.token_urlsafe(24)
