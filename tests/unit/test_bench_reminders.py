"""The reminder benchmark runs in quick mode and reports its figures beside its baseline."""

from __future__ import annotations

from bench.reminders import run


def test_quick_run_reports_the_batch_beside_the_baseline_and_sends_nothing_twice():
    result = run(quick=True)
    assert result["benchmark"] == "reminders" and result["quick"] is True and result["residents"] == 3000
    assert 0 < result["notices"] <= result["due_doses"] and result["pdfs"] == result["notices"]
    assert result["second_run_notices"] == 0 and result["second_run_already_sent"] >= result["due_doses"]
    assert result["notices_before_june"] > result["notices"]  # the earlier months' notices are not sent again
    for key in ("seconds_batch", "residents_per_second", "pdf_kb_average", "seconds_evaluating", "baseline_iterate_seconds",
                "baseline_iterate_residents_per_second", "ratio_batch_to_iterate"):
        assert result[key] > 0, key
