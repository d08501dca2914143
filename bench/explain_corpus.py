"""Import and explain every published UnixBench report in ``tests/data/published/`` and print
how right ``explain`` is on the Xen PV question, per platform as each report's author stated
it (``provenance.tsv``), plus import coverage and the index recomputation check.

    .venv/bin/python bench/explain_corpus.py [DIR]

PV flagged = a finding ``pv-kernel-entry``, ``pv-kernel-entry-32``, ``xen-pv`` or
``xen-pv-kernel``. The truth is the ``class`` column: ``xen-pv`` should be flagged, every
other known platform not;
``vps-unknown`` (the author did not say) is listed but not scored.
"""

from __future__ import annotations

import csv
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from virtbench.analysis.explain import explain  # noqa: E402
from virtbench.errors import UsageError  # noqa: E402
from virtbench.importers.unixbench import parse_file_all  # noqa: E402

PV_RULES = frozenset({"pv-kernel-entry", "pv-kernel-entry-32", "xen-pv", "xen-pv-kernel"})
VIRT_RULES = PV_RULES | {"emulated-disk", "emulated-cpu", "steal", "slow-clocksource"}
UNSCORED = frozenset({"vps-unknown"})
# Words of virtualization advice (as tests/test_published_corpus.py): none is for bare metal.
VIRT_WORDS = re.compile(r"virtio|vCPU|\bHVM\b|\bPVH\b|\bsteal|nested|in a guest|the provider",
                        re.IGNORECASE)


@dataclass
class Row:
    file: str
    cls: str
    arch: str
    version: str
    imported: bool = False
    error: str = ""
    runs: int = 0
    sections: int = 0
    tests: int = 0
    pv_flagged: bool = False
    rules: list[str] = field(default_factory=list)
    virt_advice: list[str] = field(default_factory=list)
    index_checked: int = 0
    index_mismatch: list[str] = field(default_factory=list)

    @property
    def pv_truth(self) -> bool | None:
        return None if self.cls in UNSCORED else self.cls == "xen-pv"

    @property
    def pv_right(self) -> bool | None:
        return None if self.pv_truth is None else self.pv_truth == self.pv_flagged


def evaluate(directory: Path) -> list[Row]:
    rows: list[Row] = []
    with (directory / "provenance.tsv").open(encoding="utf-8") as fh:
        meta = list(csv.DictReader(fh, delimiter="\t"))
    for m in meta:
        row = Row(file=m["file"], cls=m["class"], arch=m["arch"],
                  version=m["unixbench_version"])
        rows.append(row)
        try:
            runs = parse_file_all(directory / m["file"])
        except UsageError as exc:
            row.error = str(exc)
            continue
        row.imported = True
        row.runs = len(runs)
        for run in runs:
            row.sections += len(run.sections)
            row.tests += sum(len(s.tests) for s in run.sections)
            for note in run.notes:
                if "recomputed" in note:
                    row.index_checked += 1
                    if "MISMATCH" in note:
                        row.index_mismatch.append(note)
            ex = explain(run)
            for f in ex.findings:
                row.rules.append(f.rule)
                if f.rule in PV_RULES:
                    row.pv_flagged = True
                if f.virtualization_advice or f.rule in VIRT_RULES or VIRT_WORDS.search(
                        f.advice):
                    row.virt_advice.append(f.rule)
    return rows


def main(argv: list[str]) -> int:
    directory = Path(argv[1]) if len(argv) > 1 else ROOT / "tests" / "data" / "published"
    rows = evaluate(directory)
    imported = [r for r in rows if r.imported]
    print(f"import coverage: {len(imported)}/{len(rows)} files, "
          f"{sum(r.runs for r in rows)} runs, {sum(r.sections for r in rows)} sections, "
          f"{sum(r.tests for r in rows)} test results")
    for r in rows:
        if not r.imported:
            print(f"  NOT IMPORTED {r.file}: {r.error[:160]}")
    checked = sum(r.index_checked for r in rows)
    mismatches = [n for r in rows for n in r.index_mismatch]
    print(f"index recomputation: {checked} printed index scores checked, "
          f"{len(mismatches)} beyond rounding")
    for n in mismatches:
        print(f"  {n}")
    print()
    print("PV question (flagged = pv-kernel-entry, pv-kernel-entry-32, xen-pv or xen-pv-kernel):")
    print(f"  {'platform (as stated)':<14} {'reports':>7} {'flagged':>8} {'not flagged':>12}"
          f" {'right':>6}")
    by: dict[str, list[Row]] = defaultdict(list)
    for r in imported:
        by[r.cls].append(r)
    for cls in sorted(by):
        rs = by[cls]
        flagged = sum(r.pv_flagged for r in rs)
        right = "-" if cls in UNSCORED else str(sum(bool(r.pv_right) for r in rs))
        print(f"  {cls:<14} {len(rs):>7} {flagged:>8} {len(rs) - flagged:>12} {right:>6}")
    scored = [r for r in imported if r.pv_right is not None]
    right_n = sum(bool(r.pv_right) for r in scored)
    pct = 100.0 * right_n / len(scored) if scored else 0.0
    print(f"  right on the PV question: {right_n}/{len(scored)} ({pct:.1f}%)")
    for r in scored:
        if not r.pv_right:
            print(f"  WRONG {r.file} ({r.cls}): flagged={r.pv_flagged}")
    bare = [r for r in imported if r.cls == "bare-metal"]
    advised = [r for r in bare if r.virt_advice]
    print(f"virtualization advice on bare metal: {len(advised)}/{len(bare)} reports")
    for r in advised:
        print(f"  {r.file}: {', '.join(sorted(set(r.virt_advice)))}")
    print()
    counts = Counter(rule for r in imported for rule in set(r.rules))
    print("findings (reports where each rule fired): " + ", ".join(
        f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
