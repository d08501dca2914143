"""parse_output on captured good lines and on garbage."""

from __future__ import annotations

import pytest

from virtbench.workloads.output import Sample, WorkloadOutputError, parse_output


def test_lps_line() -> None:
    s = parse_output("COUNT|48547976|1|lps|10.000123\n")
    assert s == Sample(count=48547976.0, timebase=1, unit="lps", elapsed=10.000123)
    assert s.rate == pytest.approx(48547976 / 10.000123)


def test_rate_and_lpm_lines() -> None:
    whet = parse_output("COUNT|7314.800|0|MWIPS|15.2\n")
    assert (whet.count, whet.timebase, whet.unit) == (7314.8, 0, "MWIPS")
    assert whet.rate == 7314.8  # time base 0: the count is the rate
    shell = parse_output("COUNT|10247|60|lpm|60.01\n")
    assert shell.rate == pytest.approx(10247 / (60.01 / 60))


def test_last_count_line_wins_and_noise_is_ignored() -> None:
    text = "calibrating...\nCOUNT|1|1|lps|1.0\nnoise\nCOUNT|2|1|lps|2.0\ntrailing words\n"
    s = parse_output(text)
    assert (s.count, s.elapsed) == (2.0, 2.0)


def test_zero_count_is_valid() -> None:
    # 64 copies of shell16 on 2 cores may finish no script in a short pass.
    assert parse_output("COUNT|0|60|lpm|1.5").count == 0.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty output"),
        ("Segmentation fault\n", "no COUNT line"),
        ("COUNT|12|1|lps\n", "5 '|'-separated fields"),
        ("COUNT|abc|1|lps|1.0", "count is not a number"),
        ("COUNT|-5|1|lps|1.0", "negative"),
        ("COUNT|nan|1|lps|1.0", "not finite"),
        ("COUNT|inf|1|lps|1.0", "not finite"),
        ("COUNT|5|7|lps|1.0", "time base must be 0, 1 or 60"),
        ("COUNT|5|x|lps|1.0", "time base is not an integer"),
        ("COUNT|5|1||1.0", "bad unit"),
        ("COUNT|5|1|lps|0", "elapsed time must be > 0"),
        ("COUNT|5|1|lps|-1", "elapsed time must be > 0"),
        ("COUNT|5|1|lps|soon", "elapsed time is not a number"),
    ],
)
def test_garbage_is_refused_with_reason(text: str, reason: str) -> None:
    with pytest.raises(WorkloadOutputError, match=reason):
        parse_output(text)


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_output("garbage")


# Lines captured from the real programs (virtbench 2026-11-22, 2-vCPU VM), one per program.
CAPTURED = {
    "dhry2reg": ("COUNT|101711570|1|lps|2.000063", 101711570 / 2.000063),
    "whetstone-double": ("COUNT|8475.882|0|MWIPS|4.421687", 8475.882),
    "syscall": ("COUNT|2835462|1|lps|3.000080", 2835462 / 3.000080),
    "pipe": ("COUNT|3794448|1|lps|3.000083", 3794448 / 3.000083),
    "context1": ("COUNT|336887|1|lps|3.000227", 336887 / 3.000227),
    "spawn": ("COUNT|18044|1|lps|3.000090", 18044 / 3.000090),
    "execl": ("COUNT|5272|1|lps|3.000196", 5272 / 3.000196),
    "fstime": ("COUNT|664345.713|0|KBps|3.000062", 664345.713),
    "looper": ("COUNT|103|60|lpm|3.000227", 103 / (3.000227 / 60)),
}


@pytest.mark.parametrize("program", sorted(CAPTURED))
def test_captured_program_lines(program: str) -> None:
    line, score = CAPTURED[program]
    sample = parse_output(line + "\n")
    assert sample.rate == pytest.approx(score)
    assert sample.unit in ("lps", "MWIPS", "KBps", "lpm")
