"""The HTTP 4-item search benchmark runs against a real juki_cs process and reports every
figure (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from bench.juki_search import VARIATIONS
from bench.juki_search_http import TARGET_P99_MS, main, run


@pytest.fixture(scope="module")
def report() -> dict:
    return run(quick=True)


def test_report_shape_and_positive_figures(report):
    assert report["people"] == 5_000 and report["queries"] == 140
    for key in ("population_seconds", "database_load_seconds", "service_start_seconds"):
        assert report[key] > 0
    search, lookup = report["four_item_search"], report["exact_key_lookup"]
    for figures, rate in ((search, "searches_per_s"), (lookup, "lookups_per_s")):
        assert figures[rate] > 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    ratios = report["four_item_vs_exact"]
    assert ratios["p50_latency_ratio"] > 0 and ratios["p99_latency_ratio"] > 0 and ratios["throughput_ratio"] > 0
    assert report["target_p99_ms"] == TARGET_P99_MS
    assert report["meets_target"] == (search["p99_ms"] <= TARGET_P99_MS)


def test_every_variation_goes_through_http_and_finds_its_person(report):
    by_variation = report["four_item_search"]["by_variation"]
    assert set(by_variation) == set(VARIATIONS)
    assert sum(v["queries"] for v in by_variation.values()) == 140
    assert report["four_item_search"]["top1_rate"] == 1.0


def test_main_prints_json(capsys):
    main(["--people", "300", "--queries", "14"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["people"] == 300 and printed["queries"] == 14
    assert printed["four_item_search"]["searches_per_s"] > 0


def test_sizes_must_be_positive():
    with pytest.raises(ValueError):
        run(people=0)
