"""The move-in benchmark runs end to end over real processes and reports both paths."""

import json
import subprocess
import sys

from bench import move_in
from renkei.testkit import TEST_DATABASE_URL


def test_the_move_in_benchmark_reports_the_secured_path_beside_its_baseline():
    figures = move_in.run(queries=30, in_flight=4, postgres_url=TEST_DATABASE_URL)
    assert figures["benchmark"] == "move_in" and figures["queries"] == 30
    assert figures["database"] == ("postgresql" if TEST_DATABASE_URL else "sqlite")
    for path in ("secured", "baseline_without_permits_signatures_encryption"):
        assert figures[path]["completed"] == 30
        assert figures[path]["per_s"] > 0 and 0 < figures[path]["p50_ms"] <= figures[path]["p99_ms"]
    assert abs(figures["ratio"] - figures["secured"]["per_s"] / figures["baseline_without_permits_signatures_encryption"]["per_s"]) < 0.001


def test_the_command_prints_nothing_but_the_figures():
    done = subprocess.run(
        [sys.executable, "-m", "bench.move_in", "--queries", "10", "--in-flight", "2"], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(done.stdout)["secured"]["completed"] == 10
