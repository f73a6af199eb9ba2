"""The publish-cost benchmark runs on a small history and prints every stage's figures."""

from __future__ import annotations

import re

import pytest

from bench.publish_cost import main

NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
STAGE = re.compile(
    rf"^  (1/4 of M|1/2 of M|1/1 of M|live    )  ledger\s+({NUMBER})"
    rf"  prune\s+({NUMBER}) ms  compute\s+({NUMBER}) ms"
    rf"  delta\s+({NUMBER}) ms  publish\s+({NUMBER}) ms  cpu\s+({NUMBER}) ms"
    rf"  ratio to 1/4\s+({NUMBER})x",
    re.MULTILINE,
)


def test_a_short_run_prints_each_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--events", "2000", "--rounds", "2", "--between", "50"]) == 0
    out = capsys.readouterr().out
    stages = STAGE.findall(out)
    assert [stage[0] for stage in stages] == ["1/4 of M", "1/2 of M", "1/1 of M", "live    "], out
    ledgers = [int(stage[1].replace(",", "")) for stage in stages]
    assert ledgers == sorted(ledgers) and ledgers[0] >= 500, out  # the history grew
    publish_ms = [float(stage[5]) for stage in stages]
    assert all(ms > 0 for ms in publish_ms), out
    for stage in stages:  # the publish is its three parts, each printed to 0.1 ms
        parts = sum(float(stage[i]) for i in (2, 3, 4))
        assert abs(parts - float(stage[5])) <= 0.2, out
    first = publish_ms[0]
    for stage, ms in zip(stages, publish_ms, strict=True):  # each ratio is to the 1/4 figure
        # the printed figures are rounded to 0.1 ms, the ratio to 0.01
        slack = ms / first * (0.05 / ms + 0.05 / first) + 0.005
        assert abs(float(stage[7]) - ms / first) <= slack, out


def test_a_contended_run_says_so_and_prints_each_stage(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--events", "2000", "--rounds", "2", "--between", "50", "--contend"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "--contend" in out and "a second thread applies events" in out, out
    assert len(STAGE.findall(out)) == 4, out
