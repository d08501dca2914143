"""The dashboard's read queries over the store's index tables (SQLAlchemy Core).

Everything a list or a chart needs comes from the index (``virtbench.store.schema``), paged
and sorted in SQL, so a page costs a few indexed queries whatever the store holds; only a
run's own page (and compare) reads its master JSON document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from virtbench.store import Store
from virtbench.store import schema as S
from virtbench.store.store import RunRow

SORTS: dict[str, str] = {
    "started": "start time", "host": "host", "profile": "profile", "kind": "kind",
    "score": "1-copy index", "id": "id", "status": "status",
}
PER_PAGE = (10, 25, 50, 100, 200)
MAX_SEARCH = 200
MAX_LABELS = 10


class BadQuery(ValueError):
    """A filter, sort or page the user gave that cannot be used (a 400/404 page)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class RunQuery:
    host: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    profile: str | None = None
    kind: str | None = None
    since: str | None = None
    until: str | None = None
    q: str | None = None
    sort: str = "-started"
    page: int = 1
    per: int = 50

    def params(self, **override: Any) -> list[tuple[str, str]]:
        """The query as URL parameters (defaults left out), with ``override`` applied."""
        values: dict[str, Any] = {
            "host": self.host, "profile": self.profile, "kind": self.kind,
            "since": self.since, "until": self.until, "q": self.q,
            "sort": None if self.sort == "-started" else self.sort,
            "per": None if self.per == 50 else self.per,
            "page": None if self.page == 1 else self.page,
        }
        values.update(override)
        out = [(k, str(v)) for k, v in values.items() if v not in (None, "") and k != "label"]
        labels = override.get("label", self.labels)
        out += [("label", f"{k}={v}") for k, v in labels.items()]
        return out

    def filtered(self) -> bool:
        return any((self.host, self.labels, self.profile, self.kind, self.since, self.until,
                    self.q))


def _date(name: str, value: str | None) -> str | None:
    if not value:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name}={value!r}: expected a date YYYY-MM-DD or a timestamp "
                       "YYYY-MM-DDTHH:MM:SS") from None
    return value.replace(" ", "T", 1)


def _int(name: str, value: str | None, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    assert value is not None
    try:
        n = int(value)
    except ValueError:
        raise BadQuery(f"{name}={value[:40]!r}: expected a whole number") from None
    if not low <= n <= high:
        raise BadQuery(f"{name}={n}: expected {low} to {high}")
    return n


def _text(name: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_SEARCH or any(not ch.isprintable() for ch in value):
        raise BadQuery(f"{name}: expected printable text of at most {MAX_SEARCH} characters")
    return value.strip()


def parse_labels(items: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    if len([i for i in items if i]) > MAX_LABELS:
        # Each label is a subquery: 300 of them kept PostgreSQL planning for minutes.
        raise BadQuery(f"at most {MAX_LABELS} label filters (got {len(items)})")
    for item in items:
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadQuery(f"label={item[:60]!r}: expected KEY=VALUE")
        _text("label", item)
        labels[key.strip()] = value.strip()
    return labels


def parse_run_query(get: Any) -> RunQuery:
    """A ``RunQuery`` from request query parameters (``get(name)`` and ``getlist``);
    ``BadQuery`` for anything unusable."""
    sort = get.get("sort") or "-started"
    if sort.removeprefix("-") not in SORTS:
        raise BadQuery(f"sort={sort[:40]!r}: expected one of "
                       + ", ".join(sorted(SORTS)) + " (prefix - for descending)")
    per = _int("per", get.get("per"), 50, 1, 500)
    return RunQuery(
        host=_text("host", get.get("host")), labels=parse_labels(get.getlist("label")),
        profile=_text("profile", get.get("profile")), kind=_text("kind", get.get("kind")),
        since=_date("since", get.get("since")), until=_date("until", get.get("until")),
        q=_text("q", get.get("q")), sort=sort, per=per,
        page=_int("page", get.get("page"), 1, 1, 10**9),
    )


def _day_end(value: str) -> str:
    return value + "T99" if len(value) == 10 else value + "~"


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(rq: RunQuery) -> list[Any]:
    r, e, lab = S.run, S.environment, S.label
    where: list[Any] = []
    if rq.host:  # once per environment, as the search below
        where.append(r.c.environment_id.in_(select(e.c.id).where(
            func.lower(e.c.hostname).like(_like(rq.host), escape="\\"))))
    for key, value in rq.labels.items():
        where.append(r.c.id.in_(select(lab.c.run_id).where(
            and_(lab.c.key == key, lab.c.value == value))))
    if rq.profile:
        where.append(r.c.profile == rq.profile)
    if rq.kind:
        if rq.kind in ("suite", "experiment"):
            where.append(r.c.kind == rq.kind)
        elif rq.kind == "imported":
            where.append(r.c.source != "native")
        else:
            where.append(r.c.experiment == rq.kind)
    if rq.since:
        where.append(r.c.started >= rq.since)
    if rq.until:
        where.append(r.c.started < _day_end(rq.until))
    if rq.q:
        pat = _like(rq.q)
        # The environment's fields through a subquery: environments are shared by many runs
        # (540 for 10,000 runs in bench/serve_latency.py), so each is matched once, not once
        # per run (the search's count and page queries took 25 -> 15 ms each on SQLite).
        envs = select(e.c.id).where(or_(
            func.lower(e.c.hostname).like(pat, escape="\\"),
            func.lower(e.c.cpu_model).like(pat, escape="\\"),
            func.lower(e.c.kernel).like(pat, escape="\\"),
            func.lower(e.c.virtualization).like(pat, escape="\\")))
        where.append(or_(
            func.lower(r.c.id).like(pat, escape="\\"),
            r.c.environment_id.in_(envs),
            func.lower(r.c.experiment).like(pat, escape="\\"),
            func.lower(r.c.profile).like(pat, escape="\\"),
            r.c.id.in_(select(lab.c.run_id).where(or_(
                func.lower(lab.c.value).like(pat, escape="\\"),
                func.lower(lab.c.key).like(pat, escape="\\")))),
        ))
    return where


def _score_1() -> Any:
    """The result rows of the 1-copy System Benchmarks Index Score (joined on run_id, kind and
    copies so that both databases look them up through ix_result_run: with a ``test``
    condition SQLite picked ix_result_test and read every score row for each run)."""
    return S.result.alias("score1")


def _base(columns: list[Any], score: Any = None) -> Select[Any]:
    joined = S.run.join(S.environment, S.environment.c.id == S.run.c.environment_id)
    if score is not None:
        joined = joined.outerjoin(score, and_(score.c.run_id == S.run.c.id,
                                              score.c.kind == "score", score.c.copies == 1))
    return select(*columns).select_from(joined)


@dataclass
class RunPage:
    query: RunQuery
    rows: list[RunRow]
    total: int
    pages: int


def _rows(store: Store, conn: Any, q: Select[Any]) -> list[RunRow]:
    """RunRows (labels and scores filled) for the run ids ``q`` selects, in its order."""
    ids = [row[0] for row in conn.execute(q)]
    if not ids:
        return []
    by_id = {r.id: r for r in store.runs_where(conn, S.run.c.id.in_(ids))}
    return [by_id[i] for i in ids if i in by_id]


def run_page(store: Store, rq: RunQuery) -> RunPage:
    r, e = S.run, S.environment
    where = _where(rq)
    desc = rq.sort.startswith("-")
    key = rq.sort.removeprefix("-")
    score = _score_1() if key == "score" else None
    col: Any = {"started": r.c.started, "host": e.c.hostname, "profile": r.c.profile,
                "kind": func.coalesce(r.c.experiment, r.c.kind),
                "score": score.c.value if score is not None else None,
                "id": r.c.id, "status": r.c.status}[key]
    order = [col.desc().nulls_last() if desc else col.asc().nulls_last(),
             r.c.started.desc(), r.c.id.desc()]
    with store.reading() as conn:
        total = int(conn.execute(_base([func.count()]).where(*where)).scalar_one())
        pages = max(1, -(-total // rq.per))
        if rq.page > pages:
            raise BadQuery(f"page {rq.page}: there {'is' if pages == 1 else 'are'} only "
                           f"{pages} page{'' if pages == 1 else 's'} of {total} runs", 404)
        q = (_base([r.c.id], score).where(*where).order_by(*order)
             .limit(rq.per).offset((rq.page - 1) * rq.per))
        rows = _rows(store, conn, q)
    return RunPage(query=rq, rows=rows, total=total, pages=pages)


@dataclass
class Facets:
    hosts: list[str]
    profiles: list[str]
    kinds: list[str]
    labels: list[str]


def facets(store: Store, limit: int = 200) -> Facets:
    """The values the filter boxes suggest."""
    r, e, lab = S.run, S.environment, S.label
    with store.reading() as conn:
        hosts = [x for (x,) in conn.execute(
            select(e.c.hostname).where(e.c.hostname.is_not(None)).distinct()
            .order_by(e.c.hostname).limit(limit))]
        profiles = [x for (x,) in conn.execute(
            select(r.c.profile).where(r.c.profile.is_not(None)).distinct()
            .order_by(r.c.profile).limit(limit))]
        exps = [x for (x,) in conn.execute(
            select(r.c.experiment).where(r.c.experiment.is_not(None)).distinct()
            .order_by(r.c.experiment).limit(limit))]
        labels = [f"{k}={v}" for k, v in conn.execute(
            select(lab.c.key, lab.c.value).distinct().order_by(lab.c.key, lab.c.value)
            .limit(limit))]
    return Facets(hosts=hosts, profiles=profiles,
                  kinds=["suite", "imported", "experiment", *exps], labels=labels)


def find_run(store: Store, ref: str) -> RunRow | None:
    """A run by id or unique prefix (None when unknown or ambiguous)."""
    row = store.get(ref)
    if row is not None:
        return row
    if len(ref) >= 4:
        found = store.find_prefix(ref)
        if len(found) == 1:
            return found[0]
    return None


# ---- history -----------------------------------------------------------------------------------
@dataclass
class HistoryPoint:
    run_id: str
    started: str
    hostname: str | None
    kernel: str | None
    virtualization: str | None
    cpu_model: str | None
    profile: str | None
    score: float | None
    tests: dict[str, float] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


CHANGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("kernel", "kernel"), ("virtualization", "hypervisor/guest"), ("cpu_model", "CPU"),
    ("profile", "profile"), ("hostname", "host"),
)


@dataclass
class Change:
    index: int
    run_id: str
    started: str
    what: list[tuple[str, str | None, str | None]]
    """(field label, before, after)."""


def history(store: Store, *, host: str | None, labels: dict[str, str], copies: int,
            limit: int) -> tuple[list[HistoryPoint], int]:
    """The newest ``limit`` suite runs of a host (exact hostname) or a label, oldest first,
    with their index score and per-test index for ``copies``; and how many runs matched."""
    r, e, res, lab = S.run, S.environment, S.result, S.label
    where: list[Any] = [r.c.kind == "suite"]
    if host:
        where.append(e.c.hostname == host)
    for k, v in labels.items():
        where.append(r.c.id.in_(select(lab.c.run_id).where(and_(lab.c.key == k,
                                                                lab.c.value == v))))
    cols = [r.c.id, r.c.started, e.c.hostname, e.c.kernel, e.c.virtualization, e.c.cpu_model,
            r.c.profile]
    with store.reading() as conn:
        total = int(conn.execute(_base([func.count()]).where(*where)).scalar_one())
        runs = list(conn.execute(_base(cols).where(*where)
                                 .order_by(r.c.started.desc(), r.c.id.desc()).limit(limit)))
        runs.reverse()
        points = [HistoryPoint(run_id=m[0], started=m[1], hostname=m[2], kernel=m[3],
                               virtualization=m[4], cpu_model=m[5], profile=m[6], score=None)
                  for m in runs]
        by_id = {p.run_id: p for p in points}
        ids = list(by_id)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for run_id, test, name, kind, value in conn.execute(
                    select(res.c.run_id, res.c.test, res.c.name, res.c.kind, res.c.value)
                    .where(and_(res.c.run_id.in_(chunk), res.c.copies == copies,
                                res.c.kind.in_(("index", "score"))))):
                if value is None:
                    continue
                p = by_id[run_id]
                if kind == "score":
                    p.score = float(value)
                else:
                    p.tests[test] = float(value)
                    p.names[test] = name or test
    return points, total


def history_copies(store: Store, *, host: str | None, labels: dict[str, str]) -> list[int]:
    """The copies counts the runs of this history have (for the copies switch), from the
    run table's ``copies`` column (a join on the result table read all of it in SQLite)."""
    r, e, lab = S.run, S.environment, S.label
    where: list[Any] = [r.c.kind == "suite"]
    if host:
        where.append(e.c.hostname == host)
    for k, v in labels.items():
        where.append(r.c.id.in_(select(lab.c.run_id).where(and_(lab.c.key == k,
                                                                lab.c.value == v))))
    with store.reading() as conn:
        found: set[int] = set()
        for (text,) in conn.execute(_base([r.c.copies]).where(*where).distinct()):
            found.update(int(c) for c in (text or "").split(",") if c.strip().isdigit())
    return sorted(found)


def changes(points: list[HistoryPoint]) -> list[Change]:
    out: list[Change] = []
    for i in range(1, len(points)):
        a, b = points[i - 1], points[i]
        what = [(label, getattr(a, f), getattr(b, f)) for f, label in CHANGE_FIELDS
                if getattr(a, f) != getattr(b, f)]
        if what:
            out.append(Change(index=i, run_id=b.run_id, started=b.started, what=what))
    return out


# ---- fleets and experiments -------------------------------------------------------------------
@dataclass
class FleetSummary:
    id: str
    runs: int
    hosts: int
    first: str
    last: str


def fleets(store: Store, limit: int = 200) -> list[FleetSummary]:
    r, e, lab = S.run, S.environment, S.label
    q = (select(lab.c.value, func.count(), func.count(func.distinct(e.c.hostname)),
                func.min(r.c.started), func.max(r.c.started))
         .select_from(lab.join(r, r.c.id == lab.c.run_id)
                      .join(e, e.c.id == r.c.environment_id))
         .where(lab.c.key == "fleet").group_by(lab.c.value)
         .order_by(func.max(r.c.started).desc()).limit(limit))
    with store.reading() as conn:
        return [FleetSummary(id=v, runs=int(n), hosts=int(h), first=a, last=b)
                for v, n, h, a, b in conn.execute(q)]


def experiment_counts(store: Store) -> list[tuple[str, int, str]]:
    """(experiment, documents, newest start) for every experiment in the store."""
    r = S.run
    q = (select(r.c.experiment, func.count(), func.max(r.c.started))
         .where(r.c.kind == "experiment").group_by(r.c.experiment)
         .order_by(r.c.experiment))
    with store.reading() as conn:
        return [(name or "?", int(n), last) for name, n, last in conn.execute(q)]
