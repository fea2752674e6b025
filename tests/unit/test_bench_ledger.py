"""The ledger benchmark runs end to end in quick mode and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import ledger as bench

FIGURES = (
    "appends_per_s",
    "baseline_unsigned_inserts_per_s",
    "appends_to_baseline_ratio",
    "single_appends_per_s",
    "fill_appends_per_s_including_record_building",
    "records",
    "inclusion_proof_ms_median",
    "inclusion_proof_ms_max",
    "consistency_proof_ms_median",
    "verify_s",
    "verify_records_per_s",
)


def test_quick_run_reports_every_figure_beside_its_target():
    result = bench.run(quick=True)
    for name in FIGURES:
        assert isinstance(result[name], int | float) and result[name] > 0, name
    assert result["records"] == bench.QUICK["total"]
    assert result["target_appends_per_s"] == 10_000 and result["target_verify_s"] == 60
    assert json.loads(json.dumps(result)) == result


def test_module_prints_json():
    done = subprocess.run([sys.executable, "-m", "bench.ledger", "--quick"], capture_output=True, text=True, check=True)
    printed = json.loads(done.stdout)
    assert set(FIGURES) <= set(printed)
