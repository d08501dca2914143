"""virtbench io postmark: semantics (counts add up, seeds reproduce, same operations as
NetApp's Postmark 1.5), the experiment document, errors and cleanup."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import SRC, run_cli

from virtbench.errors import UsageError
from virtbench.experiments import postmark
from virtbench.experiments.postmark import PostmarkParams

TINY = PostmarkParams(files=60, size_min=100, size_max=4000, transactions=400, seed=11)

CAPTURED = """program=virtbench-postmark
version=1
status=ok
seconds_total=0.277064805
seconds_create=0.072001952
seconds_transactions=0.196352524
seconds_delete=0.008710329
transactions=2000
files_initial=500
files_created=1529
files_read=1018
files_appended=980
files_deleted=1529
files_deleted_alone=558
bytes_read=6479970
bytes_written=9859393
user_seconds=0.003900
system_seconds=0.269114
"""


def test_parse_captured_output() -> None:
    r = postmark.parse(CAPTURED)
    assert r.files_created == 1529 and r.files_created_mixed == 1029
    assert r.files_deleted_mixed == 1529 - 558
    f = r.figures()
    assert f["transactions_per_second"] == pytest.approx(2000 / 0.196352524)
    assert f["created_per_second"] == pytest.approx(1529 / 0.277064805)
    assert f["read_bytes_per_second"] == pytest.approx(6479970 / 0.277064805)
    with pytest.raises(ValueError):
        postmark.parse(CAPTURED.replace("files_read=1018\n", ""))
    with pytest.raises(ValueError):
        postmark.parse("hello=1\n")


def _leftovers(d: Path) -> list[str]:
    return [p.name for p in d.iterdir()]


def test_counts_add_up(tmp_path: Path) -> None:
    r = postmark.run_once(TINY, tmp_path)
    assert r.status == "ok" and r.transactions == TINY.transactions
    # every file created is deleted, some during transactions, the rest at the end
    assert r.files_created == r.files_deleted
    assert r.files_created == r.files_initial + r.files_created_mixed
    assert r.files_deleted == r.files_deleted_alone + r.files_deleted_mixed
    # each transaction has at most one read-or-append and one create-or-delete
    assert 0 < r.files_read + r.files_appended <= TINY.transactions
    assert r.files_created_mixed + r.files_deleted_mixed <= TINY.transactions
    assert r.files_created_mixed > 0 and r.files_deleted_mixed > 0
    # the pool at the end is what the initial pool became
    assert r.files_deleted_alone == TINY.files + r.files_created_mixed - r.files_deleted_mixed
    # reads read whole files within the size bounds; writes cover at least the creations
    assert TINY.size_min * r.files_read <= r.bytes_read <= TINY.size_max * r.files_read
    assert r.bytes_written >= TINY.size_min * r.files_created
    assert _leftovers(tmp_path) == []


def test_biases_select_operations(tmp_path: Path) -> None:
    only_reads = postmark.run_once(postmark.with_overrides(TINY, bias_read=10), tmp_path)
    assert only_reads.files_read == TINY.transactions and only_reads.files_appended == 0
    no_create = postmark.run_once(
        postmark.with_overrides(TINY, bias_create=-1, subdirs=3), tmp_path)
    assert no_create.files_created == TINY.files
    assert no_create.files_deleted_alone == TINY.files
    assert _leftovers(tmp_path) == []


def test_seeded_runs_reproduce(tmp_path: Path) -> None:
    def counts(r: postmark.PostmarkResult) -> tuple[int, ...]:
        return (r.files_created, r.files_read, r.files_appended, r.files_deleted,
                r.files_deleted_alone, r.bytes_read, r.bytes_written)

    a = postmark.run_once(TINY, tmp_path)
    b = postmark.run_once(TINY, tmp_path)
    c = postmark.run_once(postmark.with_overrides(TINY, seed=12), tmp_path)
    assert counts(a) == counts(b)
    assert counts(a) != counts(c)


@pytest.mark.skipif(shutil.which("postmark") is None, reason="Debian's postmark not installed")
@pytest.mark.parametrize("params", [
    TINY,
    PostmarkParams(files=120, size_min=1, size_max=20000, transactions=700, subdirs=4,
                   bias_read=3, bias_create=6, read_block=4096, write_block=1000, seed=5),
    PostmarkParams(files=80, transactions=300, buffered=False, bias_read=-1, seed=99),
])
def test_same_operations_as_debian_postmark(tmp_path: Path, params: PostmarkParams) -> None:
    """Same seed and settings → exactly the operations NetApp's Postmark performs."""
    ours = postmark.run_once(params, tmp_path)
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    proc = subprocess.run(["postmark"], input=postmark.reference_script(params), text=True,
                          capture_output=True, cwd=ref_dir, timeout=120, check=True)
    ref = postmark.parse_reference_report(proc.stdout)
    for key in ("files_created", "files_initial", "files_read", "files_appended",
                "files_deleted", "files_deleted_alone"):
        assert getattr(ours, key) == ref[key], key
    assert _leftovers(ref_dir) == []


def test_validation_errors() -> None:
    with pytest.raises(UsageError, match="MAX >= MIN"):
        PostmarkParams(size_min=10, size_max=5).validate()
    with pytest.raises(UsageError, match="bias-read"):
        PostmarkParams(bias_read=11).validate()
    with pytest.raises(UsageError, match="MIN:MAX"):
        postmark.parse_size_range("100")
    assert postmark.parse_size_range("1:100k") == (1, 102400)


def test_out_of_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ran out of files"):
        postmark.run_once(PostmarkParams(files=3, transactions=500, bias_create=0), tmp_path)
    assert _leftovers(tmp_path) == []


def test_cli_json_document(tmp_path: Path) -> None:
    proc = run_cli("io", "postmark", "--files", "50", "--transactions", "300", "--size",
                   "200:3000", "--seed", "3", "--repeat", "2", "--dir", str(tmp_path),
                   "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["type"] == "virtbench.experiment" and doc["experiment"] == "postmark"
    assert doc["status"] == "complete"
    assert doc["params"]["files"] == 50 and doc["params"]["size_max"] == 3000
    assert doc["params"]["location"]["fstype"]
    assert len(doc["rows"]) == 2
    assert doc["rows"][0]["files_created"] == doc["rows"][1]["files_created"]
    mm = doc["summary"]["main_metric"]
    assert mm["name"] == "transactions_per_second" and mm["value"] > 0
    assert not mm["lower_is_better"]
    assert doc["environment"]["kernel"]
    saved = list(Path(os.environ["XDG_DATA_HOME"], "virtbench", "results").glob("*.json"))
    assert any(json.loads(p.read_text())["id"] == doc["id"] for p in saved)
    assert _leftovers(tmp_path) == []


def test_cli_table_and_errors(tmp_path: Path) -> None:
    proc = run_cli("io", "postmark", "--preset", "postmark", "--dir", str(tmp_path),
                   check=True)
    assert "transactions/s" in proc.stdout and "deletion alone" in proc.stdout
    assert "500 files" in proc.stdout
    bad = run_cli("io", "postmark", "--size", "10:5")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "MAX >= MIN" in bad.stderr
    with pytest.raises(UsageError, match="not a directory"):
        postmark.run_once(TINY, tmp_path / "nope")
    with pytest.raises(UsageError, match="not enough free space"):
        postmark.run_once(postmark.with_overrides(TINY, files=100_000_000), tmp_path)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_removes_files(tmp_path: Path, sig: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen(
        [sys.executable, "-m", "virtbench", "io", "postmark", "--files", "300",
         "--transactions", "100000000", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            p.is_dir() and any(p.iterdir()) for p in tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert _leftovers(tmp_path) == []
