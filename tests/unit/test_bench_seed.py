"""The seed benchmark runs in quick mode and reports every figure beside its baseline (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import seed as bench

FIGURES = ("seconds", "people_per_s", "to_baseline_ratio", "rerun_seconds")


def test_quick_run_reports_every_figure_beside_the_baseline():
    result = bench.run(quick=True)

    assert result["people"] == bench.QUICK and result["target_seconds_at_340000"] == 60
    assert result["baseline_generate_seconds"] > 0 and result["baseline_generate_people_per_s"] > 0
    backends = ["sqlite"] + (["postgresql"] if "postgresql" in result else [])
    for backend in backends:
        figures = result[backend]
        for name in FIGURES:
            assert isinstance(figures[name], float) and figures[name] > 0, (backend, name)
        assert figures["added"] == figures["events"] == bench.QUICK
        assert figures["births"] + figures["move_ins"] == bench.QUICK
        assert figures["rerun_added"] == 0


def test_the_module_prints_json():
    printed = subprocess.run(
        [sys.executable, "-m", "bench.seed", "--quick"], capture_output=True, text=True, check=True, timeout=240
    ).stdout
    assert json.loads(printed)["sqlite"]["added"] == bench.QUICK
