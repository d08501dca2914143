"""UnixBench-shaped RunResult documents built from published figures (for explain/report tests).

The figures are facts, not fitted values:

* ``PV_INDEX``: the Xen PV report in ``../shared/reference/unixbench-centos6-xen-pv.txt``
  (UnixBench 5.1.3, 1 copy, Xeon E5-2683 v3).
* ``HVM_INDEX``: the Xen HVM guest on the same Xeon, as quoted in the issue and shared README
  (only the tests given there; Whetstone is given as "similar" to PV, so PV's value is used).
* ``REFERENCE_SCORES``: byte-unixbench 6.0 on this kind of machine (shared unixbench-facts.md),
  1 and 2 copies.
"""

from __future__ import annotations

from virtbench.analysis.stats import geometric_mean
from virtbench.results.model import Environment, PassResult, RunResult, Section, TestResult
from virtbench.workloads.catalog import CATALOG

PV_INDEX = {
    "dhry2reg": 2023.7, "whetstone-double": 456.6, "execl": 310.6, "fstime": 634.2,
    "fsbuffer": 395.2, "fsdisk": 1511.8, "pipe": 293.4, "context1": 160.2, "spawn": 208.8,
    "shell1": 504.9, "shell8": 481.5, "syscall": 208.2,
}
HVM_INDEX = {
    "dhry2reg": 2017.5, "whetstone-double": 456.6, "execl": 801.9, "pipe": 1055.5,
    "context1": 682.3, "spawn": 912.8, "syscall": 1336.9,
}
REFERENCE_SCORES = {
    1: {
        "dhry2reg": 48547976.6, "whetstone-double": 7314.8, "execl": 3087.3,
        "fstime": 1731034.8, "fsbuffer": 516203.3, "fsdisk": 4251841.6, "pipe": 2519709.3,
        "context1": 111841.5, "spawn": 6969.8, "shell1": 10247.5, "shell8": 2003.2,
        "syscall": 1603407.8,
    },
    2: {
        "dhry2reg": 84057294.7, "whetstone-double": 13705.5, "execl": 5737.8,
        "fstime": 3189604.9, "fsbuffer": 962802.4, "fsdisk": 7966858.4, "pipe": 4976900.3,
        "context1": 793436.4, "spawn": 18729.4, "shell1": 18726.8, "shell8": 2372.9,
        "syscall": 3608436.2,
    },
}
UNITS = {"whetstone-double": "MWIPS", "fstime": "KBps", "fsbuffer": "KBps", "fsdisk": "KBps",
         "shell1": "lpm", "shell8": "lpm"}


def make_test(test_id: str, copies: int, *, index: float | None = None,
              score: float | None = None, passes: list[float] | None = None) -> TestResult:
    name, baseline = CATALOG[test_id].name, CATALOG[test_id].baseline
    assert baseline is not None, test_id
    if score is None:
        assert index is not None
        score = index * baseline / 10.0
    if index is None:
        index = score / baseline * 10.0
    return TestResult(
        test=test_id, name=name, unit=UNITS.get(test_id, "lps"), copies=copies,
        score=score, baseline=baseline, index=index, samples=len(passes) if passes else None,
        passes=[PassResult(score=p, elapsed=10.0) for p in (passes or [])],
    )


def make_section(copies: int, *, indexes: dict[str, float] | None = None,
                 scores: dict[str, float] | None = None) -> Section:
    if indexes is not None:
        tests = [make_test(t, copies, index=v) for t, v in indexes.items()]
    else:
        assert scores is not None
        tests = [make_test(t, copies, score=v) for t, v in scores.items()]
    idx = [t.index for t in tests if t.index is not None]
    full = len(idx) == 12
    return Section(copies=copies, tests=tests, index_tests=len(idx),
                   index_score=geometric_mean(idx) if full else None)


def make_run(sections: list[Section], *, profile: str = "unixbench-5.1.3",
             environment: Environment | None = None, run_id: str | None = None,
             source: str = "imported-unixbench") -> RunResult:
    run = RunResult(profile=profile, status="complete", sections=sections,
                    environment=environment or Environment(), source=source)  # type: ignore[arg-type]
    if run_id:
        run.id = run_id
    return run


def pv_run(**kw: object) -> RunResult:
    env = Environment(hostname="centos6.takara.org", cpu_count=1,
                      cpu_model="Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz")
    return make_run([make_section(1, indexes=PV_INDEX)], environment=env, run_id="xenpv",
                    **kw)  # type: ignore[arg-type]


def hvm_run() -> RunResult:
    env = Environment(hostname="hvm", cpu_count=1,
                      cpu_model="Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz")
    return make_run([make_section(1, indexes=HVM_INDEX)], environment=env, run_id="xenhvm")


def reference_run() -> RunResult:
    env = Environment(hostname="ref", cpu_count=2, cpus_usable=2,
                      cpu_model="this kind of machine (2 vCPU nested micro-VM)",
                      cflags=["-O3", "-ffast-math", "-march=native", "-mtune=native"])
    return make_run([make_section(c, scores=s) for c, s in REFERENCE_SCORES.items()],
                    profile="unixbench-6", environment=env, run_id="reference",
                    source="native")
