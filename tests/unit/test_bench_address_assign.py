"""The address assignment benchmark runs end to end and reports its figures beside its baselines."""

import json
import subprocess
import sys

from bench import address_assign
from renkei.testkit import TEST_DATABASE_URL


def test_address_assign_benchmark_reports_every_path_and_the_ratios():
    figures = address_assign.run(quick=True, people=60, in_flight=4, postgres_url=TEST_DATABASE_URL)
    assert figures["benchmark"] == "address-assign" and figures["people"] == 60
    assert figures["database"] == ("postgresql" if TEST_DATABASE_URL else "sqlite")
    for path in ("assign_new", "assign_existing", "lookup"):
        assert figures[path]["per_s"] > 0
        assert 0 < figures[path]["p50_ms"] <= figures[path]["p99_ms"]
    assert figures["direct_insert"]["per_s"] > 0
    ratios = figures["ratios"]
    assert abs(ratios["assign_new_vs_direct_insert"] - figures["assign_new"]["per_s"] / figures["direct_insert"]["per_s"]) < 0.001
    assert abs(ratios["assign_new_vs_assign_existing"] - figures["assign_new"]["per_s"] / figures["assign_existing"]["per_s"]) < 0.001
    assert abs(ratios["assign_new_vs_lookup"] - figures["assign_new"]["per_s"] / figures["lookup"]["per_s"]) < 0.001


def test_the_command_prints_nothing_but_the_figures():
    done = subprocess.run(
        [sys.executable, "-m", "bench.address_assign", "--quick", "--people", "20", "--in-flight", "2"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert json.loads(done.stdout)["assign_new"]["per_s"] > 0
