"""Fuzz the importer, the loader and the CLI with generated hostile inputs (issue 12).

Every input must end in one of two ways: read (``ok``), or refused with the project's
one-line error (``refused``). Anything else is a ``traceback`` (an exception that is not a
``VirtbenchError``, or the importer's "please report this" safety net firing) or a ``hang``
(more than --hang seconds). Prints the counts per target and the first examples of each
failure; exits non-zero if there was any traceback or hang (docs/reliability.md).

    .venv/bin/python bench/fuzz.py                    # 10,000 inputs
    .venv/bin/python bench/fuzz.py --total 2000 --seed 7

Targets (shares of --total):
- ``report``: mutated UnixBench reports (the samples in tests/data): truncation, binary
  bytes, numbers made huge / negative / NaN / inf / 5,000 digits, 10 MB lines, 40k-space
  margins, deep bracket nesting, localized dates, UTF-16, CRLF; read through
  ``load_file_all`` as ``virtbench import`` reads a file.
- ``document``: mutated result documents (JSON): leaves set to hostile values, keys
  deleted, ids with ``/`` and ``..``, nesting bombs, truncated or binary JSON; read with
  ``load_any``, then saved and read back when accepted.
- ``cli``: in-process ``virtbench`` command lines with bad values (store, report and
  export commands; a temporary data directory).
- ``cli-process``: a sample of bad command lines for every command (also those that run
  workloads, with one value argparse or the command must refuse), each in a subprocess.

In-process inputs run in worker processes (one per CPU) that are killed and replaced when
an input takes longer than the hang limit; each input is generated in the worker from its
seed, so a failure can be replayed with --replay TARGET:SEED.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KILL_FACTOR = 12
"""An input is a hang when it uses more than --hang CPU seconds. One that has not ended after
KILL_FACTOR x --hang wall seconds is killed and counted as a hang when it has used more than
--hang CPU seconds by then, or is blocked (asleep, no CPU used for a second), or after
WALL_CAP seconds whatever it does: a niced run on a loaded machine may get a few percent of a
CPU (one report input, 1.3 CPU s, got no answer in 60 s at load 20 under nice 10)."""
WALL_CAP = 900.0
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_and_state(pid: int) -> tuple[float, str]:
    """CPU seconds used by process ``pid`` (user + system) and its state letter (R, S, D...);
    (0.0, "") when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0, ""
    return (int(fields[11]) + int(fields[12])) / _TICK, fields[0]


class _Watch:
    """Decides when a process working on one input is a hang (see KILL_FACTOR)."""

    def __init__(self, pid: int, hang: float) -> None:
        self.pid, self.hang = pid, hang
        self.since = time.monotonic()
        self.cpu0, _ = _cpu_and_state(pid)
        self.last_cpu, self.last_progress = self.cpu0, self.since

    def verdict(self) -> str | None:
        """Why it is a hang now, or None (keep waiting)."""
        now = time.monotonic()
        cpu, state = _cpu_and_state(self.pid)
        if cpu > self.last_cpu:
            self.last_cpu, self.last_progress = cpu, now
        if now - self.since <= self.hang * KILL_FACTOR:
            return None
        if cpu - self.cpu0 > self.hang:
            return f"{cpu - self.cpu0:.1f} CPU s, no answer in {now - self.since:.0f} s (killed)"
        if state not in ("R", "") and now - self.last_progress > 1.0:
            return f"blocked ({state}), no answer in {now - self.since:.0f} s (killed)"
        if now - self.since > WALL_CAP:
            return f"no answer in {WALL_CAP:.0f} s (killed)"
        return None
DATA = ROOT / "tests" / "data"
MAX_INPUT = 80_000_000
REPORTS = sorted(DATA.glob("unixbench-*.txt"))

BAD_NUMBERS = [
    "-1", "0", "-0.0", "nan", "NaN", "inf", "-inf", "Infinity", "1e-320", "4.9e-324",
    "1e308", "1e400", "-1e400", "9" * 30, "9" * 5000, "-" + "9" * 25, "0x10", "1,5", "1.2.3",
    "１２３", "", " ", "1e", "++1", "2147483648", "9223372036854775808", "18446744073709551616",
]
LOCAL_DATES = [
    "Fr 4. Dez 13:05:07 CET 2026", "2026年 12月 4日 金曜日 13:05:07 JST",
    "ven. 4 déc. 2026 13:05:07 CET", "jue 04 dic 2026 13:05:07 CET", "4 грудня 2026 13:05",
    "2026-12-04T13:05:07+05:30", "Thu Feb 30 25:61:61 UTC 1970", "", "9" * 300,
]
HOSTILE_JSON_VALUES: list[Any] = [
    -1, 0, 2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 1e-320, "", "x" * 100_000, None, True,
    [], {}, [[[[[[]]]]]], {"a": {"b": {"c": {}}}}, "../../../../tmp/x", "\x00\n\x1b[31m",
    "９", 3.5, -3.5,
]
HOSTILE_JSON_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "9" * 5000, "-" + "9" * 30,
                       "[" * 100_000, '{"a":' * 1000]


# ---- generators (run in the workers; deterministic from the seed) ---------------------------


def _mutate_report(rng: random.Random) -> bytes:
    text = rng.choice(REPORTS).read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(13)
        if op == 0 and lines:  # truncate
            cut = rng.randrange(len(lines))
            lines = [*lines[:cut], lines[cut][:rng.randrange(len(lines[cut]) + 1)]]
        elif op == 1 and lines:  # a number replaced by a hostile one
            i = rng.randrange(len(lines))
            words = lines[i].split(" ")
            nums = [k for k, w in enumerate(words) if any(c.isdigit() for c in w)]
            if nums:
                words[rng.choice(nums)] = rng.choice(BAD_NUMBERS)
                lines[i] = " ".join(words)
        elif op == 2:  # every number of a line hostile
            i = rng.randrange(max(1, len(lines)))
            bad = rng.choice(BAD_NUMBERS)
            if lines:
                lines[i] = "".join(bad if c.isdigit() else c for c in lines[i])
        elif op == 3:  # binary bytes
            i = rng.randrange(len(lines) + 1)
            lines.insert(i, bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
                         .decode("latin-1"))
        elif op == 4 and rng.random() < 0.02:  # a 10 MB line (rare: costs memory and time)
            lines.insert(rng.randrange(len(lines) + 1),
                         rng.choice(["x", " ", "(", "9", "Pipe "]) * 10_000_000 + "\n")
        elif op == 5:  # a long margin of spaces
            n = rng.choice([4_000, 40_000, 400_000])
            lines = [" " * n + ln for ln in lines] if rng.random() < 0.2 else \
                [" " * n + "Benchmark Run: x\n", *lines]
        elif op == 6:  # deep nesting
            lines.insert(rng.randrange(len(lines) + 1),
                         rng.choice(["(", "[", "{"]) * rng.choice([1_000, 100_000]) + "\n")
        elif op == 7:  # localized or absurd dates
            date = rng.choice(LOCAL_DATES)
            lines = [f"Benchmark Run: {date}\n" if ln.startswith("Benchmark Run") else ln
                     for ln in lines]
        elif op == 8 and lines:  # lines duplicated or removed
            i = rng.randrange(len(lines))
            if rng.random() < 0.5:
                lines.insert(i, lines[i] * rng.randint(1, 50))
            else:
                del lines[i: i + rng.randint(1, 10)]
        elif op == 9:
            lines = [ln.replace("\n", "\r\n") for ln in lines]
        elif op == 10 and lines:  # a line made very long (not 10 MB)
            i = rng.randrange(len(lines))
            lines[i] = lines[i].rstrip("\n") * rng.randint(100, 2000) + "\n"
        elif op == 11:  # control characters and unusual Unicode
            i = rng.randrange(len(lines) + 1)
            lines.insert(i, "".join(chr(rng.choice([0x1b, 0x7f, 0x85, 0x2028, 0xfeff, 0x202e,
                                                     0x0d, 0x0c, 0x300, 0xd7ff]))
                                    for _ in range(rng.randint(1, 40))) + "\n")
        elif op == 12 and lines:  # sections swapped
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
    # Mutations compound (a 10 MB line copied 50 times made a 796 MB input that took the
    # fuzzer a minute to write under load): past the importer's 64 MB limit, size adds nothing.
    out = "".join(lines)[:MAX_INPUT]
    enc = rng.random()
    if enc < 0.03:
        return b"\xff\xfe" + out.encode("utf-16-le", errors="replace")
    if enc < 0.05:
        return out.encode("latin-1", errors="replace")
    if enc < 0.07:  # random byte flips
        raw = bytearray(out.encode("utf-8", errors="replace"))
        for _ in range(rng.randint(1, 20)):
            if raw:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    return out.encode("utf-8", errors="surrogatepass")


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_leaves(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node[:20]):
            out.extend(_leaves(v, (*path, i)))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


def _mutate_document(rng: random.Random, seeds: list[dict[str, Any]]) -> bytes:
    doc = json.loads(json.dumps(rng.choice(seeds)))
    for _ in range(rng.randint(1, 4)):
        paths = [p for p in _leaves(doc) if p]
        op = rng.randrange(8)
        if op <= 2 and paths:  # a leaf set to a hostile value
            path = rng.choice(paths)
            _get(doc, path[:-1])[path[-1]] = rng.choice(HOSTILE_JSON_VALUES)
        elif op == 3 and paths:  # a key or item removed
            path = rng.choice(paths)
            parent = _get(doc, path[:-1])
            with contextlib.suppress(KeyError, IndexError, TypeError):
                del parent[path[-1]]
        elif op == 4:
            doc["id"] = rng.choice(["x/../../../../tmp/pwned", "..", ".", "a" * 65, "", "é",
                                    "a b", "-x", "a/b", "a\x00b", 12, None])
        elif op == 5:
            doc["schema_version"] = rng.choice([0, -1, 2, 99, "1", 1.5, None, 2**70])
        elif op == 6:
            doc[rng.choice(["extra", "zzz", "__proto__"])] = rng.choice(HOSTILE_JSON_VALUES)
        elif op == 7 and isinstance(doc.get("type"), str):
            doc["type"] = rng.choice(["virtbench.run", "virtbench.experiment", "x", ""])
    text = json.dumps(doc, allow_nan=True)
    kind = rng.random()
    if kind < 0.15:  # a hostile token where a value was
        marker = rng.choice(['"score": ', '"count": ', '"cpu_count": ', '"samples": ',
                             '"copies": ', '"index": '])
        if marker in text:
            i = text.index(marker) + len(marker)
            j = i
            while j < len(text) and text[j] not in ",}]":
                j += 1
            text = text[:i] + rng.choice(HOSTILE_JSON_TOKENS) + text[j:]
    elif kind < 0.22:  # truncated
        text = text[: rng.randrange(len(text))]
    elif kind < 0.27:  # a nesting bomb around it
        n = rng.choice([70, 1_000, 100_000])
        text = "[" * n + text + "]" * (n if rng.random() < 0.5 else 0)
    elif kind < 0.30:  # a list of documents
        text = "[" + ",".join([text] * rng.randint(0, 3)) + "]"
    raw = text.encode("utf-8", errors="surrogatepass")
    if rng.random() < 0.04:
        raw = bytearray(raw)
        for _ in range(rng.randint(1, 10)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        raw = bytes(raw)
    return raw


REFS = ["latest", "nope", "set=a", "=x", "a=", "fleet:../../x", "fleet:latest", "../../etc",
        "x" * 5000, "-", "0", "'", "%s%n", "\u202e", "é", "set=a,b"]


def _bad_value(rng: random.Random) -> str:
    return rng.choice([*BAD_NUMBERS, *REFS, "x" * 100_000, "/dev/full", "/proc/x",
                       "/nonexistent/dir/f", "a=b=c", "\t"])


def _cli_argv(rng: random.Random, work: Path, files: list[Path]) -> list[str]:
    f = str(rng.choice(files))
    out = str(rng.choice([work / "out" / "o.txt", Path("/dev/full"), Path("/proc/vb-x"),
                          work / "fifo.json", work, work / "loop", work / ("n" * 300)]))
    templates: list[list[str]] = [
        ["import", "--dry-run", f],
        ["import", f, "--label", _bad_value(rng)],
        ["import", "--json", f, f],
        ["show", rng.choice([f, *REFS])],
        ["show", "--json", rng.choice([f, *REFS])],
        ["export", rng.choice([f, *REFS]), "--format", rng.choice(["csv", "json", "markdown",
                                                                   "x", ""]), "-o", out],
        ["compare", rng.choice([f, *REFS]), rng.choice([f, *REFS])],
        ["compare", f, f, "--copies", _bad_value(rng)],
        ["explain", rng.choice([f, *REFS])],
        ["report", rng.choice([f, *REFS]), "--format", "markdown", "-o", out],
        ["runs", "--since", _bad_value(rng)],
        ["runs", "--label", _bad_value(rng), "--host", _bad_value(rng)],
        ["runs", "--json", "--until", rng.choice(LOCAL_DATES)],
        ["rm", rng.choice(REFS)],
        ["db", rng.choice(["info", "rebuild", "x", ""])],
        ["migrate-check", f],
        [rng.choice(["show", "export", "explain"]), str(work / "results-bomb.json")],
    ]
    argv = rng.choice(templates)
    if rng.random() < 0.1:
        argv = [*argv, rng.choice(["--db", "--label", "-o"]), _bad_value(rng)]
    return argv


# ---- the worker ----------------------------------------------------------------------------


def _setup_worker(work: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    os.chdir(work)  # relative -o names the command lines use land in the worker's directory
    os.environ["XDG_DATA_HOME"] = str(work / "data")
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    import virtbench.cli as cli
    from virtbench.cli.resolve import load_file_all
    from virtbench.results.model import ExperimentResult

    seeds: list[dict[str, Any]] = []
    for rep in REPORTS:
        seeds.extend(d.to_dict() for d in load_file_all(rep))
    seeds.append(ExperimentResult(experiment="postmark", status="complete",
                                  params={"copies": 2, "files": 100},
                                  rows=[{"tps": 10.5, "copies": 1}],
                                  summary={"tps": 10.5, "n": 3}).to_dict())
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for rep in REPORTS:
            cli.main(["import", "--label", "set=a", str(rep)])
    files = []
    for i, doc in enumerate(seeds[:3]):
        p = work / f"doc{i}.json"
        p.write_text(json.dumps(doc))
        files.append(p)
    files.extend(REPORTS)
    os.mkfifo(work / "fifo.json")
    (work / "loop").symlink_to(work / "loop")
    (work / "results-bomb.json").write_text("[" * 100_000)
    (work / "out").mkdir()
    return seeds, files


def _classify(exc: BaseException) -> tuple[str, str]:
    from virtbench.errors import VirtbenchError

    if isinstance(exc, VirtbenchError):
        text = str(exc)
        if "please report this" in text:
            return "traceback", f"safety net: {text[:300]}"
        if "\n" in text or len(text) > 1000:
            return "traceback", f"message not one short line: {text[:300]!r}"
        return "refused", ""
    tb = "".join(traceback.format_exception(exc))
    return "traceback", tb[-1500:]


_TARGET_CPU: list[float] = []
"""The thread's CPU time when the target got its input: making and writing a 10 MB input
costs the fuzzer seconds of CPU on a loaded machine, which is not the target's."""


def _target_starts() -> None:
    _TARGET_CPU[:] = [time.thread_time()]


def _run_case(target: str, seed: int, work: Path, seeds: list[dict[str, Any]],
              files: list[Path]) -> tuple[str, str]:
    rng = random.Random(seed)
    if target == "report":
        from virtbench.cli.resolve import load_file_all

        path = work / "case.txt"
        path.write_bytes(_mutate_report(rng))
        _target_starts()
        try:
            docs = load_file_all(path)
            for d in docs:
                d.to_json()
        except BaseException as exc:
            return _classify(exc)
        return "ok", ""
    if target == "document":
        from virtbench.results.model import load_any

        path = work / "case.json"
        path.write_bytes(_mutate_document(rng, seeds))
        _target_starts()
        try:
            doc = load_any(path)
            saved = doc.save(work / "saved.json")
            load_any(saved)
        except BaseException as exc:
            return _classify(exc)
        return "ok", ""
    if target == "cli":
        import virtbench.cli as cli

        argv = _cli_argv(rng, work, files)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = cli.main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:
            kind, detail = _classify(exc)
            return kind, f"{argv!r:.300}: {detail}"
        lines = err.getvalue().strip().splitlines()
        if "internal error" in err.getvalue():  # main's catch-all for a bug
            return "traceback", f"{argv!r:.300}: {err.getvalue()[:500]!r}"
        errors = [ln for ln in lines if ln.startswith(("virtbench: error", "virtbench ")) or
                  "error:" in ln]
        if rc != 0 and (len(errors) != 1 or len(errors[0]) > 1000):
            return "traceback", f"{argv!r:.300}: not one short line: {err.getvalue()[:500]!r}"
        return ("ok" if rc == 0 else "refused"), ""
    raise ValueError(target)


def _worker(conn: Connection, work: str) -> None:
    seeds, files = _setup_worker(Path(work))
    conn.send(("ready", ""))
    while True:
        task = conn.recv()
        if task is None:
            return
        target, seed = task
        _target_starts()  # again in _run_case once its input is made
        try:
            kind, detail = _run_case(target, seed, Path(work), seeds, files)
        except BaseException as exc:  # a bug of the fuzzer itself
            kind, detail = "traceback", "fuzzer: " + "".join(
                traceback.format_exception(exc))[-800:]
        conn.send((kind, detail, time.thread_time() - _TARGET_CPU[0]))


class _Slot:
    def __init__(self, base: Path, n: int) -> None:
        self.base, self.n = base, n
        self.start()

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.work = Path(tempfile.mkdtemp(prefix=f"w{self.n}-", dir=self.base))
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, str(self.work)), daemon=True)
        self.proc.start()
        child.close()
        if not self.conn.poll(120):
            raise SystemExit("fuzz: a worker did not start within 120 s")
        self.conn.recv()
        self.task: tuple[str, int] | None = None
        self.watch: _Watch | None = None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()
        shutil.rmtree(self.work, ignore_errors=True)


def run_in_process(tasks: list[tuple[str, int]], workers: int, hang: float,
                   results: dict[str, Counter[str]], examples: dict[str, list[str]]) -> None:
    base = Path(tempfile.mkdtemp(prefix="vb-fuzz-"))
    slots = [_Slot(base, i) for i in range(workers)]
    queue = list(reversed(tasks))
    try:
        while queue or any(s.task for s in slots):
            for s in slots:
                if s.task is None and queue:
                    s.task = queue.pop()
                    s.watch = _Watch(s.proc.pid or 0, hang)
                    s.conn.send(s.task)
            busy = [s for s in slots if s.task]
            ready = wait([s.conn for s in busy], timeout=0.5)
            for s in busy:
                assert s.task is not None
                target, seed = s.task
                if s.conn in ready:
                    try:
                        kind, detail, cpu = s.conn.recv()
                    except EOFError:
                        kind, detail, cpu = "traceback", "worker died", 0.0
                        s.kill()
                        s.start()
                    if cpu > hang:  # CPU seconds: other users' load does not count
                        kind, detail = "hang", f"{cpu:.1f} CPU s ({kind}) {detail}"
                elif s.watch is not None and (why := s.watch.verdict()) is not None:
                    kind, detail = "hang", why
                    s.kill()
                    s.start()
                else:
                    continue
                results[target][kind] += 1
                if kind in ("traceback", "hang") and len(examples[target]) < 5:
                    examples[target].append(f"{kind} {target}:{seed}: {detail}")
                s.task = None
    finally:
        for s in slots:
            with contextlib.suppress(Exception):
                s.conn.send(None)
            s.proc.join(timeout=5)
            if s.proc.is_alive():
                s.kill()
        shutil.rmtree(base, ignore_errors=True)


def _process_argvs(rng: random.Random, n: int) -> list[list[str]]:
    """Command lines with a value that must be refused, for every command."""
    sys.path.insert(0, str(ROOT / "src"))
    from virtbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options: list[tuple[str, str, bool]] = []  # (command, option, typed)
    for name, p in sub.choices.items():
        for a in p._actions:
            if a.option_strings and a.nargs is None and not isinstance(
                    a, argparse._StoreConstAction | argparse._HelpAction):
                # A value that must be refused: a number or a choice (a Path or a string
                # option takes anything, and a command that measures would then run).
                typed = a.choices is not None or a.type in (int, float) or (
                    callable(a.type) and getattr(a.type, "__name__", "") not in (
                        "Path", "str", "parse_label", "_label", "word_list"))
                options.append((name, a.option_strings[-1], typed))
    risky = {"tune", "fleet", "migrate", "run", "io", "consolidate", "cap", "build", "serve",
             "snapshot", "detect"}
    argvs = []
    while len(argvs) < n:
        cmd, opt, typed = rng.choice(options)
        if cmd in risky and not typed:
            continue
        # typed options of commands that measure get values no converter accepts
        value = rng.choice(["abc", "1e999x", "--", "", "x" * 5000, "-"]) if cmd in risky \
            else _bad_value(rng)
        argv = [cmd, opt, value]
        if cmd == "fleet":
            argv = ["fleet", "run", "-i", "/nonexistent", opt, value, "--", "detect"]
        argvs.append(argv)
    return argvs


_RUSAGE: dict[int, float] = {}
"""CPU seconds of the finished subprocesses, by pid (from wait4)."""


def run_subprocesses(argvs: list[list[str]], hang: float, workers: int,
                     results: dict[str, Counter[str]], examples: dict[str, list[str]]) -> None:
    home = Path(tempfile.mkdtemp(prefix="vb-fuzz-cli-"))
    env = dict(os.environ, XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "c"),
               PYTHONPATH=str(ROOT / "src"))
    running: list[tuple[subprocess.Popen[str], list[str], _Watch]] = []
    pending = list(argvs)
    try:
        while pending or running:
            while pending and len(running) < workers:
                argv = pending.pop()
                proc = subprocess.Popen([sys.executable, "-m", "virtbench", *argv], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True, cwd=home,
                                        start_new_session=True)
                running.append((proc, argv, _Watch(proc.pid, hang)))
            time.sleep(0.05)
            for item in list(running):
                proc, argv, watch = item
                if proc.returncode is None:
                    with contextlib.suppress(ChildProcessError):
                        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                        if pid:
                            _RUSAGE[pid] = usage.ru_utime + usage.ru_stime
                            proc.returncode = os.waitstatus_to_exitcode(status)
                why = watch.verdict() if proc.returncode is None else None
                if proc.returncode is None and why is None:
                    continue
                running.remove(item)
                if proc.returncode is None:
                    os.killpg(proc.pid, 9)
                    proc.wait()
                    kind, detail = "hang", str(why)
                else:
                    err = proc.stderr.read() if proc.stderr else ""
                    lines = err.strip().splitlines()
                    errors = [ln for ln in lines if "error:" in ln]
                    if "Traceback" in err or "internal error" in err or (
                            proc.returncode != 0 and len(errors) != 1):
                        kind, detail = "traceback", err[-800:]
                    elif proc.returncode == 0:
                        kind, detail = "ok", ""
                    else:
                        kind, detail = "refused", ""
                    cpu = _RUSAGE.pop(proc.pid, 0.0)
                    if cpu > hang:
                        kind, detail = "hang", f"{cpu:.1f} CPU s"
                if proc.stderr:
                    proc.stderr.close()
                results["cli-process"][kind] += 1
                if kind in ("traceback", "hang") and len(examples["cli-process"]) < 5:
                    examples["cli-process"].append(f"{kind} {argv!r:.200}: {detail}")
    finally:
        for proc, _, _ in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--total", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--hang", type=float, default=5.0,
                    help="CPU seconds the target may take on one input (making the input "
                    "is not counted; default 5)")
    ap.add_argument("--process-share", type=float, default=0.02,
                    help="share of inputs run as `virtbench` subprocesses (default 0.02)")
    ap.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    ap.add_argument("--replay", metavar="TARGET:SEED", help="run one input and show it")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    if args.replay:
        target, seed = args.replay.split(":")
        with tempfile.TemporaryDirectory() as work:
            seeds, files = _setup_worker(Path(work))
            start = time.monotonic()
            print(_run_case(target, int(seed), Path(work), seeds, files))
            print(f"{time.monotonic() - start:.2f} s")
        return 0
    rng = random.Random(args.seed)
    n_proc = int(args.total * args.process_share)
    rest = args.total - n_proc
    shares = {"report": 0.5, "document": 0.3, "cli": 0.2}
    tasks: list[tuple[str, int]] = []
    for target, share in shares.items():
        tasks.extend((target, rng.randrange(2**32)) for _ in range(int(rest * share)))
    while len(tasks) < rest:
        tasks.append(("report", rng.randrange(2**32)))
    rng.shuffle(tasks)
    results: dict[str, Counter[str]] = {t: Counter() for t in [*shares, "cli-process"]}
    examples: dict[str, list[str]] = {t: [] for t in results}
    start = time.monotonic()
    run_in_process(tasks, args.workers, args.hang, results, examples)
    run_subprocesses(_process_argvs(rng, n_proc), args.hang, args.workers, results, examples)
    took = time.monotonic() - start
    total = Counter[str]()
    print(f"{'target':<12} {'inputs':>7} {'ok':>7} {'refused':>8} {'traceback':>10} "
          f"{'hang':>5}")
    for target, c in results.items():
        total.update(c)
        print(f"{target:<12} {sum(c.values()):>7} {c['ok']:>7} {c['refused']:>8} "
              f"{c['traceback']:>10} {c['hang']:>5}")
    print(f"{'total':<12} {sum(total.values()):>7} {total['ok']:>7} {total['refused']:>8} "
          f"{total['traceback']:>10} {total['hang']:>5}")
    print(f"seed {args.seed}, hang limit {args.hang} s, {args.workers} workers, "
          f"{took:.0f} s")
    print(f"tracebacks: {total['traceback']}")
    print(f"hangs: {total['hang']}")
    for ex in examples.values():
        for e in ex:
            print(f"--- {e}")
    return 1 if total["traceback"] or total["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
