"""The clinic-import benchmark runs in quick mode and reports its figures beside its baseline."""

from __future__ import annotations

from bench.clinic_import import run


def test_quick_run_imports_the_file_and_reports_figures_beside_the_baseline():
    result = run(quick=True)
    assert result["benchmark"] == "clinic_import" and result["quick"] is True and result["rows"] == 2000
    assert result["stored"] + result["refused"] == result["rows"] and 0 < result["refused"] < result["rows"] * 0.05
    assert result["already_imported_again"] is True
    for key in ("seconds_import", "rows_per_second", "peak_memory_mb", "baseline_csv_seconds", "baseline_csv_rows_per_second",
                "baseline_csv_peak_memory_mb", "ratio_import_to_csv", "file_mb"):
        assert result[key] > 0, key
