"""The schedule benchmark runs in quick mode and reports its figures beside its baselines."""

from __future__ import annotations

from bench.schedule import AS_OF, population, run
from services.health_mgmt.schedule import evaluate

KEYS = {
    "benchmark", "quick", "people", "doses", "series", "evaluations_per_second", "doses_per_second", "seconds_evaluating",
    "baseline_iterate_per_second", "baseline_one_series_per_second", "ratio_iterate_to_evaluate", "ratio_one_series_to_evaluate",
    "valid_dose_share",
}


def test_quick_run_reports_positive_figures():
    result = run(quick=True)
    assert set(result) == KEYS
    assert result["benchmark"] == "schedule" and result["quick"] is True
    for key in KEYS - {"benchmark", "quick"}:
        assert result[key] > 0, key
    assert 0 < result["valid_dose_share"] <= 1


def test_the_synthetic_population_is_reproducible_and_mostly_on_schedule():
    first, second = population(50), population(50)
    assert first == second
    judged = [e for person, history in first for e in evaluate(person, history, AS_OF).doses]
    assert judged and sum(e.valid for e in judged) / len(judged) > 0.8
