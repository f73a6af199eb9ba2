"""The publish-cost benchmark runs on a small history and prints every stage's figures."""

from __future__ import annotations

import re

import pytest

from bench.publish_cost import main

NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
STAGE = re.compile(
    rf"^  (1/4|1/2|1/1) of M  ledger\s+({NUMBER})  prune\s+({NUMBER}) ms  compute\s+({NUMBER}) ms"
    rf"  publish\s+({NUMBER}) ms  ratio to 1/4\s+({NUMBER})x",
    re.MULTILINE,
)


def test_a_short_run_prints_each_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--events", "2000", "--rounds", "2", "--between", "50"]) == 0
    out = capsys.readouterr().out
    stages = STAGE.findall(out)
    assert [stage[0] for stage in stages] == ["1/4", "1/2", "1/1"], out
    ledgers = [int(stage[1].replace(",", "")) for stage in stages]
    assert ledgers == sorted(ledgers) and ledgers[0] >= 500, out  # the history grew
    assert float(stages[0][5]) == 1.0 and all(float(stage[4]) > 0 for stage in stages), out
