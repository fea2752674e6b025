"""The in-process 4-item search benchmark runs and reports every figure (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from bench.juki_search import VARIATIONS, main, run_in_process


@pytest.fixture(scope="module")
def report() -> dict:
    return run_in_process(people=1500, queries=70, seed=3)


def test_report_shape_and_positive_figures(report):
    assert report["people"] == 1500 and report["queries"] == 70 and report["seed"] == 3
    assert report["population_seconds"] > 0 and report["index_build_seconds"] > 0
    search = report["four_item_search"]
    for key in ("searches_per_s", "p50_ms", "p99_ms", "max_ms"):
        assert search[key] > 0
    assert search["p50_ms"] <= search["p99_ms"] <= search["max_ms"]
    lookup = report["exact_key_lookup"]
    for key in ("lookups_per_s", "p50_us", "p99_us"):
        assert lookup[key] > 0
    assert report["four_item_vs_exact"]["p50_latency_ratio"] > 0
    assert report["four_item_vs_exact"]["throughput_ratio"] > 0


def test_every_variation_is_exercised_and_finds_its_person(report):
    by_variation = report["four_item_search"]["by_variation"]
    assert set(by_variation) == set(VARIATIONS)
    assert sum(v["queries"] for v in by_variation.values()) == 70
    for figures in by_variation.values():
        assert figures["queries"] == 10
        assert figures["top1_rate"] == 1.0
    assert report["four_item_search"]["top1_rate"] == 1.0


def test_main_prints_json(capsys):
    main(["300", "14", "2"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["people"] == 300 and printed["queries"] == 14


def test_sizes_must_be_positive():
    with pytest.raises(ValueError):
        run_in_process(people=0, queries=1)
